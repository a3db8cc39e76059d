#!/usr/bin/env python3
"""Every --json output decodes with Python's json module, UTF-8 and binary included.

A map named with UTF-8 holds a key with 0xFF and NUL and a UTF-8 value; each
--json command must print valid JSON whose strings give the bytes back with
surrogateescape (docs/cow.1, JSON OUTPUT). usage: test_cli_json.py PATH/TO/cow
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

COW = sys.argv[1]
d = tempfile.mkdtemp()
env = dict(os.environ, COW_STORE=os.path.join(d, "s.cow"))
fails = 0


def cow(*args, stdin=b""):
    r = subprocess.run([COW, *args], input=stdin, capture_output=True, env=env, timeout=300)
    if r.returncode != 0:
        sys.exit(f"cow {' '.join(args)}: exit {r.returncode}: {r.stderr.decode(errors='replace')}")
    return r.stdout


def raw(s):
    return s.encode("utf-8", "surrogateescape")


def check(args, test=lambda doc: True, stdin=b""):
    global fails
    out = cow(*args, stdin=stdin)
    try:
        doc = json.loads(out.decode("utf-8", "surrogateescape"))
    except ValueError as e:
        print(f"FAIL: cow {' '.join(args)}: not JSON ({e}): {out[:200]!r}")
        fails += 1
        return
    if not test(doc):
        print(f"FAIL: cow {' '.join(args)}: {doc!r}")
        fails += 1


name = "caf\u00e9"
cow("init")
cow("map", "create", name)
cow("load", name, stdin=b"k\\xff\\x00z\tv\xc3\xa9\nplain\t\\x01\n")
cow("snapshot", name + "@a")
cow("put", name, "plain", "changed")
cow("vol", "create", "disque-\u00e9", "64K")
cow("vol", "write", "disque-\u00e9", "0", stdin=b"data")
with open(os.path.join(d, "in.bin"), "wb") as f:
    f.write(b"x" * 5000)

check(["stat", "--json"], lambda s: s["generation"] > 0 and s["readers"] == 0)
check(["get", "--json", name, "k\\xff\\x00z"],
      lambda g: raw(g["key"]) == b"k\xff\x00z" and g["value"] == "v\u00e9")
check(["scan", "--json", name],
      lambda s: [raw(e["key"]) for e in s] == [b"k\xff\x00z", b"plain"] and s[1]["value"] == "changed")
check(["scan", "--json", "--keys-only", "--reverse", name],
      lambda s: [raw(e["key"]) for e in s] == [b"plain", b"k\xff\x00z"] and "value" not in s[0])
check(["list", "--json"], lambda l: {e["name"] for e in l} == {name, name + "@a", "disque-\u00e9"}
      and all("created" in e for e in l))
check(["du", "--json"], lambda u: len(u["objects"]) == 3 and u["store"]["file_bytes"] > 0)
check(["du", "--json", name], lambda u: len(u["objects"]) == 2 and "store" not in u)
check(["diff", "--json", name + "@a", name],
      lambda f: f == [{"kind": "changed", "key": "plain", "old": "\x01", "new": "changed"}])
check(["diff", "--json", "--keys-only", name + "@a", name],
      lambda f: f == [{"kind": "changed", "key": "plain"}])
check(["fsck", "--json"], lambda f: f["clean"] and f["problems_found"] == [])
check(["scrub", "--json"], lambda f: f["clean"])
check(["import", "--json", os.path.join(d, "in.bin"), "imp"], lambda i: i["bytes"] == 5000)
check(["export", "--json", "imp", os.path.join(d, "out.bin")],
      lambda e: e["cloned_bytes"] + e["copied_bytes"] + e["hole_bytes"] >= 5000)
check(["mem", "probe", "--json"], lambda p: "snapshot" in p)
check(["share", "--json", "--smaps-only", str(os.getpid())],
      lambda s: s["processes"][0]["pid"] == os.getpid())
check(["mem", "snapshot", "--json", "--size", "1M", "--backend", "fork"],
      lambda m: m["backend"] == "fork")

shutil.rmtree(d)
if fails:
    print(f"{fails} JSON checks failed")
    sys.exit(1)
print("every --json output decodes")
