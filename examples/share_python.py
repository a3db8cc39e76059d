#!/usr/bin/env python3
"""share_python: what CPython workers un-share after fork(), measured with `cow share`.

The parent builds a large structure (a list of small dicts, each with a
string, an int, a float and a short list), then forks one worker per task
and measures the parent and the worker with `cow share --json`. Each worker
does one thing and then waits:

  idle      nothing (the baseline of a forked CPython)
  iterate   reads every element: sum(d["id"] + len(d["tags"]) for d in data)
            -- every object read gets its reference count written
  collect   one full gc.collect(), touching none of the data itself
            -- the collector writes the GC header of every tracked container
  allocate  builds its own data: N small dicts each holding a list (GC-tracked
            containers, as a worker serving requests makes), letting the
            automatic collector run when it wants; the structure is not read

and the parent prepares the structure before forking in one of four ways:

  default         as built
  freeze          gc.freeze(): everything moves to the permanent generation,
                  which the collector never examines
  disable         gc.disable(): no automatic collection (gc.collect() still works)
  disable+freeze  both (the recipe Instagram published for pre-fork servers)

Printed: what the worker un-shared beyond what an idle worker does, as MiB and
as a share of the structure's size. As root that is the parent's pages the
worker no longer maps (frame-level, from `cow share`), so a worker's own new
data does not count; otherwise it is the worker's private dirty memory.

With --watch-demo SECONDS the script instead forks one worker that iterates
the structure slowly, a tenth at a time over SECONDS, and runs
`cow share --watch 1` on the parent and the worker meanwhile, to show the
sharing decay as it happens.

usage: share_python.py [--cow PATH] [--items N] [--check] [--json]
       share_python.py [--cow PATH] [--items N] --watch-demo SECONDS
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import time

TASKS = ["idle", "iterate", "collect", "allocate"]
SETTINGS = ["default", "freeze", "disable", "disable+freeze"]
MIB = 1048576.0


def private_dirty(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1]) * 1024
    return 0


def build(n):
    return [{"id": i + 1000, "name": f"item-{i}", "score": i * 0.5, "tags": [i, i + 1]}
            for i in range(n)]


def task(name, data, n):
    if name == "iterate":
        total = 0
        for d in data:
            total += d["id"] + len(d["tags"])
        return total
    if name == "collect":
        return gc.collect()
    if name == "allocate":
        mine = [{"request": i, "args": [i]} for i in range(n)]
        return len(mine)
    return 0


def worker(name, data, n):
    """Fork a worker running `name`; returns (pid, release_fd, seconds)."""
    ready_r, ready_w = os.pipe()
    rel_r, rel_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(rel_w)
            t0 = time.monotonic()
            task(name, data, n)
            os.write(ready_w, f"{time.monotonic() - t0:.6f}".encode())
            os.read(rel_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(rel_r)
    secs = float(os.read(ready_r, 64) or b"nan")
    os.close(ready_r)
    return pid, rel_w, secs


def measure(cow, parent, child):
    """Bytes the child un-shared from the parent, and the child's private dirty.

    With frame numbers (root): the parent's resident pages that the child no
    longer maps (pages_none of the parent; the parent itself stays idle), which
    counts exactly the parent's pages the child copied, and not the child's own
    new allocations. Without: the child's private dirty memory, which counts both.
    """
    out = subprocess.run([cow, "share", "--json", str(parent), str(child)],
                         capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    procs = {p["pid"]: p for p in doc["processes"]}
    c, par = procs[child], procs[parent]
    if doc["frames"]:
        return doc, par["total"]["pages_none"] * doc["page_size"], c["total"]["private_dirty"]
    return doc, c["total"]["private_dirty"], c["total"]["private_dirty"]


def watch_demo(cow, data, seconds):
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.write(ready_w, b"r")
            step = max(1, len(data) // 10)
            for i in range(0, len(data), step):
                time.sleep(seconds / 10)
                for d in data[i:i + step]:
                    d["id"] + len(d["tags"])
            time.sleep(3600)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.read(ready_r, 1)
    print(f"worker {pid} iterates a tenth of the structure every {seconds / 10:.1f} s; "
          f"cow share --watch 1 {os.getpid()} {pid}", flush=True)
    try:
        subprocess.run([cow, "share", "--watch", "1", "--count", str(int(seconds) + 2),
                        str(os.getpid()), str(pid)], check=True)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return 0


def apply(setting):
    if "disable" in setting:
        gc.disable()
    if "freeze" in setting:
        gc.freeze()


def reset():
    gc.unfreeze()
    gc.enable()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cow", default=os.environ.get("COW", "cow"),
                    help="the cow binary (default: $COW or cow on PATH)")
    ap.add_argument("--items", type=int, default=300000)
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless the results show the expected effects")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--watch-demo", type=float, metavar="SECONDS",
                    help="show the sharing decay of one slow worker with cow share --watch")
    a = ap.parse_args()

    gc.collect()
    before = private_dirty(os.getpid())
    data = build(a.items)
    gc.collect()
    size = private_dirty(os.getpid()) - before
    if a.watch_demo:
        print(f"share_python: {a.items} dicts, structure {size / MIB:.1f} MiB")
        return watch_demo(a.cow, data, a.watch_demo)
    if not a.json:
        print(f"share_python: CPython {sys.version.split()[0]}, {a.items} dicts, "
              f"structure {size / MIB:.1f} MiB")
        print("un-shared by the worker, beyond an idle worker: " + (
            "the parent's pages the worker no longer maps (frame numbers)" if os.geteuid() == 0
            else "the worker's private dirty memory (no frame numbers: includes its own data)"))
        print(f"{'parent setting':<16}" + "".join(f"{t:>20}" for t in TASKS[1:]))
    results = {}
    frames = None
    for setting in SETTINGS:
        apply(setting)
        row = {}
        base = None
        for t in TASKS:
            pid, rel, secs = worker(t, data, a.items)
            try:
                doc, lost, dirty = measure(a.cow, os.getpid(), pid)
            finally:
                os.close(rel)
                os.waitpid(pid, 0)
            frames = doc["frames"]
            if base is None:
                base = lost
            row[t] = {"unshared": lost - base, "worker_private_dirty": dirty,
                      "seconds": secs}
        reset()
        results[setting] = row
        if not a.json:
            cells = "".join(f"{row[t]['unshared'] / MIB:>9.1f} MiB ({100 * row[t]['unshared'] / size:3.0f}%)"
                            for t in TASKS[1:])
            print(f"{setting:<16}{cells}")
    if a.json:
        print(json.dumps({"python": sys.version.split()[0], "items": a.items,
                          "structure_bytes": size, "frames": frames, "results": results}))
    if not a.check:
        return 0
    bad = []
    u = {s: {t: results[s][t]["unshared"] / size for t in TASKS} for s in SETTINGS}
    for s in SETTINGS:
        if u[s]["iterate"] < 0.5:
            bad.append(f"{s}: iterating should un-share most of the structure")
    if u["default"]["collect"] < 0.2:
        bad.append("default: a full collection should un-share the containers' pages")
    if frames and u["default"]["allocate"] < 0.2:
        bad.append("default: allocating should trigger a full collection that un-shares")
    if frames and u["disable"]["allocate"] > 0.25 * u["default"]["allocate"]:
        bad.append("disable: no automatic collection, so allocating should un-share little")
    for s in ["freeze", "disable+freeze"]:
        if u[s]["collect"] > 0.25 * u["default"]["collect"]:
            bad.append(f"{s}: a frozen structure should survive gc.collect()")
    print("check:", "ok" if not bad else "FAILED\n  " + "\n  ".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
