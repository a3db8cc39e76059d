#!/usr/bin/env python3
"""Every command's options in every position, from one table.

For each row (a command, one of its options, its positional arguments) the
same command line is run in several shapes on a fresh copy of one store:
the option before the arguments, after them, between them, as --opt=value,
before a "--" that ends the options, and with an unknown option before and
after (exit 2, nothing on stdout, nothing changed). Every accepted shape must
exit as the row says and, unless the output is a measurement, print the same.

usage: test_cli_options.py PATH/TO/cow
"""
import os
import shutil
import subprocess
import sys
import tempfile

COW = sys.argv[1]
base = tempfile.mkdtemp()
tmpl = os.path.join(base, "tmpl")
work = os.path.join(base, "w")
os.mkdir(tmpl)
fails = 0


def cow(args, store, stdin=None, check=True):
    env = dict(os.environ, COW_STORE=store)
    with open(stdin or os.devnull, "rb") as f:
        r = subprocess.run([COW] + args, stdin=f, capture_output=True, env=env, timeout=300)
    if check and r.returncode != 0:
        sys.exit(f"setup failed: cow {' '.join(args)}: {r.stderr.decode()}")
    return r


# The template store every shape starts from.
S = os.path.join(tmpl, "s.cow")
with open(os.path.join(tmpl, "line.tsv"), "w") as f:
    f.write("a\tb\n")
with open(os.path.join(tmpl, "file.bin"), "wb") as f:
    f.write(os.urandom(9000))
for args in (["init"], ["map", "create", "m"], ["put", "m", "k", "v"], ["put", "m", "k2", "v2"],
             ["vol", "create", "disk", "1M"], ["snapshot", "disk@a"],
             ["vol", "create", "other", "64K"], ["snapshot", "other@x"],
             ["clone", "disk@a", "c"], ["snapshot", "disk@b"], ["list"]):
    cow(args, S, stdin=os.path.join(tmpl, "line.tsv"))
with open(os.path.join(tmpl, "stream"), "wb") as f:
    f.write(cow(["send", "disk@a"], S).stdout)

W = work
T = tmpl
# exit | command words | one option (with its value) | positional arguments | stdin | compare
ROWS = [
    (0, "init", "", f"{W}/new.cow", None, True),
    (0, "stat", "--json", "", None, True),
    (0, "map create", "", "m2", None, True),
    (0, "map drop", "", "m", None, True),
    (0, "put", "", "m k3 v3", None, True),
    (0, "get", "--json", "m k", None, True),
    (0, "del", "", "m k", None, True),
    (0, "scan", "--limit 1", "m", None, True),
    (0, "scan", "--prefix k2", "m", None, True),
    (0, "scan", "--from k2", "m", None, True),
    (0, "scan", "--to k", "m", None, True),
    (0, "scan", "--reverse", "m", None, True),
    (0, "scan", "--keys-only", "m", None, True),
    (0, "diff", "--keys-only", "disk@a disk", None, True),
    (0, "load", "", "m", f"{T}/line.tsv", True),
    (0, "vol create", "", "v2 1M", None, True),
    (0, "vol write", "", "disk 100", f"{T}/line.tsv", True),
    (0, "vol read", "", "disk 0 16", None, True),
    (0, "vol resize", "", "disk 2M", None, True),
    (0, "import", "", f"{T}/file.bin v3", None, True),
    (0, "export", "", f"disk {W}/out.img", None, True),
    (0, "snapshot", "", "disk@s2", None, True),
    (0, "clone", "", "disk@a c2", None, True),
    (0, "list", "-t snapshot", "", None, True),
    (0, "list", "--type snapshot", "", None, True),
    (0, "diff", "--json", "disk@a disk", None, True),
    (0, "rollback", "", "disk@b", None, True),
    (0, "destroy", "-r", "other", None, True),
    (0, "promote", "", "c", None, True),
    (0, "rename", "", "m m2", None, True),
    (0, "trim", "--json", "", None, True),
    (0, "du", "--json", "disk", None, True),
    (0, "send", "-i disk@a", "disk@b", None, True),
    (0, "send", "--incremental disk@a", "disk@b", None, True),
    (0, "recv", "", "r", f"{T}/stream", True),
    (0, "fsck", "--json", f"{W}/s.cow", None, True),
    (0, "scrub", "--json", f"{W}/s.cow", None, True),
    (0, "backup", "--json", f"{W}/copy.cow", None, True),
    (0, "share", "--smaps-only", str(os.getpid()), None, False),
    (0, "share", "--count 1", f"--watch 0.01 {os.getpid()}", None, False),
    (0, "mem probe", "--json", "", None, True),
    (0, "mem checkpoint", "--size 1M", "", None, False),
    (0, "mem restore", "--size 1M", "", None, False),
    (0, "mem snapshot", "--size 1M", "--backend fork", None, False),
    (0, "tour", "--step 99", "", None, False),
    (1, "get", "--json", "m nokey", None, True),
    (2, "scan", "--limit x", "m", None, True),
    (2, "list", "-t bogus", "", None, True),
]


def shapes(opt, pos):
    """(label, argv after the command words) for each shape of one row."""
    o, p = opt.split(), pos.split()
    out = [("option first", o + p), ("option last", p + o)]
    if len(p) >= 2 and not any(a.startswith("-") for a in p):
        out.append(("option between", p[:1] + o + p[1:]))
    if len(o) == 2 and o[0].startswith("--"):
        out.append(("--opt=value", [o[0] + "=" + o[1]] + p))
    if len(o) == 2 and not o[0].startswith("--"):
        out.append(("-xVALUE", [o[0] + o[1]] + p))
    if not any(a.startswith("-") for a in p):
        out.append(("-- before the arguments", o + ["--"] + p))
    return out


def fresh():
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(tmpl, work)
    return os.path.join(work, "s.cow")


def digest(path):
    with open(path, "rb") as f:
        return f.read()


n = 0
for want, words, opt, pos, stdin, compare in ROWS:
    w = words.split()
    first = None
    for label, rest in shapes(opt, pos):
        n += 1
        r = cow(w + rest, fresh(), stdin, check=False)
        line = " ".join(["cow"] + w + rest)
        if r.returncode != want:
            print(f"FAIL: {line} ({label}): exit {r.returncode}, expected {want}: "
                  f"{r.stderr.decode(errors='replace')}")
            fails += 1
        if first is None:
            first = r.stdout
        elif compare and r.stdout != first:
            print(f"FAIL: {line} ({label}): prints other output than the first shape")
            fails += 1
    for label, rest in (("unknown option first", ["--no-such-option"] + opt.split() + pos.split()),
                        ("unknown option last", opt.split() + pos.split() + ["--no-such-option"]),
                        ("unknown short option", ["-Z"] + pos.split())):
        n += 1
        store = fresh()
        before = digest(store)
        r = cow(w + rest, store, stdin, check=False)
        line = " ".join(["cow"] + w + rest)
        if r.returncode != 2 or r.stdout or (want != 2 and b"unknown option" not in r.stderr):
            print(f"FAIL: {line} ({label}): exit {r.returncode}, stdout {r.stdout[:80]!r}, "
                  f"stderr {r.stderr.decode(errors='replace')!r}")
            fails += 1
        if digest(store) != before:
            print(f"FAIL: {line} ({label}) changed the store")
            fails += 1

# `cow help CMD` and `cow CMD --help` describe every command of the table.
for words in sorted({r[1] for r in ROWS}):
    for args in (["help"] + words.split(), words.split() + ["--help"]):
        n += 1
        r = cow(args, fresh(), check=False)
        if r.returncode != 0 or not r.stdout.startswith(b"usage: cow " + words.encode()):
            print(f"FAIL: cow {' '.join(args)}: exit {r.returncode}: {r.stdout[:80]!r}")
            fails += 1

shutil.rmtree(base)
print(f"{n} command lines checked")
if fails:
    print(f"{fails} checks failed")
    sys.exit(1)
