#!/usr/bin/env python3
"""What scattered writes cost on this disk: one commit's worth of 4 KiB blocks.

Writes N blocks (default 1,300: a 1,000-key commit into a 1 M-key map) into
a 1 GiB file written and synced beforehand, then fdatasync, three ways,
taking turns for RUNS rounds:

    scattered   N sorted random 4 KiB pwrites
    contiguous  one pwrite of N blocks
    vectored    pwritev of 256 blocks at a time, contiguous

Prints the milliseconds of each round per way, sorted, and the medians.
It names the floor that allocation order alone can reach (issue 15).

    bench/write_pattern.py DIR [N] [RUNS]
"""
import os
import random
import statistics
import sys
import time

d = sys.argv[1] if len(sys.argv) > 1 else "."
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1300
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
B, SIZE = 4096, 1 << 30
path = os.path.join(d, "write_pattern.dat")
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    chunk = b"\1" * (1 << 20)
    for off in range(0, SIZE, len(chunk)):  # real blocks: no allocation at fdatasync
        os.pwrite(fd, chunk, off)
    os.fsync(fd)
    buf = os.urandom(B)
    blocks = SIZE // B
    res = {"scattered": [], "contiguous": [], "vectored": []}
    rng = random.Random(1)
    for r in range(RUNS):
        ways = list(res)
        ways = ways[r % 3:] + ways[:r % 3]
        for way in ways:
            t = time.perf_counter()
            if way == "scattered":
                for b in sorted(rng.sample(range(blocks), N)):
                    os.pwrite(fd, buf, b * B)
            else:
                start = rng.randrange(blocks - N)
                if way == "contiguous":
                    os.pwrite(fd, buf * N, start * B)
                else:
                    for k in range(0, N, 256):
                        os.pwritev(fd, [buf] * min(256, N - k), (start + k) * B)
            os.fdatasync(fd)
            res[way].append((time.perf_counter() - t) * 1000)
    for way, ms in res.items():
        print(f"{way:11s} {N} blocks + fdatasync: median {statistics.median(ms):.1f} ms "
              f"({', '.join(f'{x:.1f}' for x in sorted(ms))})")
finally:
    os.close(fd)
    os.unlink(path)
