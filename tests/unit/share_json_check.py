#!/usr/bin/env python3
"""Check `cow share --json` against the schema in docs/share.md, and the
figures of a synthetic family: the writer child wrote exactly K of the N
pages of the mapping at ADDR.

usage: share_json_check.py COW PARENT WRITER ADDR N K FRAMES
"""
import json
import os
import pwd
import subprocess
import sys

cow, parent, writer, addr, n, k, frames = sys.argv[1:8]
parent, writer, n, k = int(parent), int(writer), int(n), int(k)
frames = frames == "1"
PAGE = 4096
FIGS = ["rss", "pss", "shared", "private_clean", "private_dirty", "swap",
        "pages", "pages_all", "pages_some", "pages_none"]
KINDS = ["heap", "stack", "anon", "file", "shmem", "other"]


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def run(args, user=None):
    pre = None
    if user:
        pw = pwd.getpwnam(user)

        def pre():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
    return subprocess.run([cow] + args, capture_output=True, text=True,
                          preexec_fn=pre, timeout=60)


def check_figs(f, with_frames, where):
    expect(isinstance(f, dict) and sorted(f) == sorted(FIGS), f"{where}: keys {f}")
    for key in FIGS[:6]:
        expect(isinstance(f[key], int) and f[key] >= 0, f"{where}.{key} = {f[key]}")
    expect(f["rss"] == f["shared"] + f["private_clean"] + f["private_dirty"],
           f"{where}: rss != shared + private")
    for key in FIGS[6:]:
        if with_frames:
            expect(isinstance(f[key], int) and f[key] >= 0, f"{where}.{key}")
        else:
            expect(f[key] is None, f"{where}.{key} must be null without frames")
    if with_frames:
        expect(f["pages"] == f["pages_all"] + f["pages_some"] + f["pages_none"],
               f"{where}: pages != all + some + none")


def check_doc(doc, watch=False, maps=False):
    for key, typ in [("version", int), ("page_size", int), ("frames", bool),
                     ("note", str), ("elapsed_ns", int), ("skipped", int),
                     ("processes", list)]:
        expect(isinstance(doc.get(key), typ), f"top-level {key}: {doc.get(key)!r}")
    expect(doc["version"] == 1 and doc["page_size"] == PAGE, "version/page_size")
    expect(doc["frames"] == (doc["note"] == ""), "note is empty exactly when frames")
    if watch:
        expect(isinstance(doc.get("t"), float), "t in watch mode")
    for p in doc["processes"]:
        where = f"pid {p.get('pid')}"
        for key, typ in [("pid", int), ("ppid", int), ("comm", str), ("total", dict),
                         ("kinds", dict)]:
            expect(isinstance(p.get(key), typ), f"{where}: {key}")
        check_figs(p["total"], doc["frames"], where + " total")
        expect(list(p["kinds"]) == KINDS, f"{where}: kinds {list(p['kinds'])}")
        for kname, f in p["kinds"].items():
            check_figs(f, doc["frames"], f"{where} {kname}")
        for key in ["rss", "private_dirty"]:
            expect(sum(f[key] for f in p["kinds"].values()) == p["total"][key],
                   f"{where}: kinds do not sum to total {key}")
        if watch:
            expect("unshare_bytes_per_s" in p and "unshare_pages_per_s" in p, "rates")
        if maps:
            expect(isinstance(p.get("maps"), list) and p["maps"], f"{where}: maps")
            for m in p["maps"]:
                expect(sorted(m) == sorted(["start", "end", "perms", "kind", "name", "figs"]),
                       f"{where}: map keys {sorted(m)}")
                expect(m["kind"] in KINDS and len(m["perms"]) == 4, "map kind/perms")
                expect(int(m["start"], 16) < int(m["end"], 16), "map range")
                check_figs(m["figs"], doc["frames"], f"{where} map {m['start']}")
        else:
            expect("maps" not in p, "maps only with --maps")


def region(doc, pid):
    p = [p for p in doc["processes"] if p["pid"] == pid]
    expect(len(p) == 1, f"pid {pid} listed once")
    m = [m for m in p[0]["maps"] if int(m["start"], 16) == int(addr, 16)]
    expect(len(m) == 1, f"pid {pid}: mapping at {addr}")
    return p[0], m[0]


# 1. The family, found through --children, with every mapping.
r = run(["share", "--json", "--maps", "--children", str(parent)])
expect(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
doc = json.loads(r.stdout)
check_doc(doc, maps=True)
if frames:
    expect(doc["frames"] is True, "CAP_SYS_ADMIN must get frame numbers")
pids = [p["pid"] for p in doc["processes"]]
expect(pids[0] == parent and writer in pids, f"family {pids}")
wp, wm = region(doc, writer)
_, pm = region(doc, parent)
expect(wp["ppid"] == parent, "writer's parent")
expect(wm["kind"] == "anon" and wm["perms"] == "rw-p", "region kind")
expect(wm["figs"]["rss"] == n * PAGE, "writer rss")
expect(wm["figs"]["private_dirty"] == k * PAGE, f"writer private dirty {wm['figs']}")
expect(wm["figs"]["shared"] == (n - k) * PAGE, "writer shared")
expect(pm["figs"]["private_dirty"] == k * PAGE, "parent's originals are private now")
if doc["frames"]:
    # Only the parent and the writer map the region (the test's shell, if
    # any, is not a descendant of the parent).
    expect(wm["figs"]["pages_none"] == k, f"writer pages alone {wm['figs']}")
    expect(wm["figs"]["pages_all"] + wm["figs"]["pages_some"] == n - k, "writer shared pages")
    expect(pm["figs"]["pages_none"] == k, "parent pages alone")

# 2. Smaps only: pages are null, a note says why.
r = run(["share", "--json", "--smaps-only", str(parent), str(writer)])
expect(r.returncode == 0, r.stderr)
doc = json.loads(r.stdout)
check_doc(doc)
expect(doc["frames"] is False and "smaps" in doc["note"], "smaps-only note")
expect([p["pid"] for p in doc["processes"]] == [parent, writer], "named order")

# 3. Watch: one JSON document per line, with rates from the second on.
r = run(["share", "--json", "--watch", "0.05", "--count", "2", str(writer)])
expect(r.returncode == 0, r.stderr)
lines = r.stdout.strip().split("\n")
expect(len(lines) == 2, f"two rounds, got {len(lines)}")
docs = [json.loads(x) for x in lines]
for d in docs:
    check_doc(d, watch=True)
expect(docs[0]["processes"][0]["unshare_bytes_per_s"] is None, "no rate in round 1")
expect(isinstance(docs[1]["processes"][0]["unshare_bytes_per_s"], (int, float)), "rate")
r = run(["share", "--watch", "0.05", "--count", "2", str(writer)])
expect(r.returncode == 0 and r.stdout.count("t=") == 2 and "MiB/s" in r.stdout,
       f"text watch: {r.stdout}")

# 4. Text output names every process and the kinds.
r = run(["share", str(parent), str(writer)])
expect(r.returncode == 0 and f"pid {writer}" in r.stdout and "anon" in r.stdout, r.stdout)

# 5. Errors: usage, a PID that does not exist, no permission.
for args in [["share"], ["share", "abc"], ["share", "-5"], ["share", "1", "--watch", "x"],
             ["share", "1", "--count", "2"]]:
    r = run(args)
    expect(r.returncode == 2 and "cow share" in r.stderr, f"{args}: {r.returncode} {r.stderr}")
r = run(["share", "2147483000"])
expect(r.returncode == 1 and "process 2147483000 does not exist" in r.stderr,
       f"missing pid: {r.stderr}")


def unreachable_as(user):
    """Why @user cannot run the cow binary (e.g. the build sits in a home
    directory only its owner may enter), or None if it can."""
    try:
        r = run(["--version"], user=user)
    except OSError as e:
        return f"user {user} cannot execute {cow}: {e.strerror}"
    if r.returncode != 0:
        return f"user {user} cannot run {cow}: exit {r.returncode} {r.stderr.strip()}"
    return None


skipped = None
if os.geteuid() == 0:
    try:
        pwd.getpwnam("nobody")
        skipped = unreachable_as("nobody")
    except KeyError:
        skipped = "there is no user nobody"
    if skipped is None:
        r = run(["share", str(parent)], user="nobody")
        expect(r.returncode == 3 and f"not permitted to read the memory maps of process {parent}"
               in r.stderr,
               f"nobody reading root: {r.returncode} {r.stderr}")
if skipped:
    # Everything else passed; say so, but do not count the permission check as run.
    print(f"all other checks passed; the permission check needs another user: {skipped}")
    sys.exit(77)
print("ok")
