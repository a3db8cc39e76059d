#!/usr/bin/env python3
"""File data as fsx checks it, on a mounted fs, against a buffer.

Random operations on one file (and a second as a copy source): pwrite,
mmap writes (msync'd or not), pread and mmap reads, truncate up and
down, fallocate (extend, punch, zero range), copy_file_range (a reflink)
in both directions, SEEK_DATA and SEEK_HOLE. Offsets and lengths lean
towards block edges (4096 +-1). After every operation the size must
match; every 10 the whole file is read back and compared; every 100 it
is closed and opened again; every 400 the fs is unmounted, the page
cache dropped and the fs mounted again. fsck is clean at the end.

    test_fs_fsx.py COW [OPS] [SEED]
"""
import ctypes
import errno
import mmap
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fslib import Mounted  # noqa: E402

COW = sys.argv[1]
OPS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else random.randrange(1 << 30)
rng = random.Random(SEED)
print(f"seed {SEED} (rerun: test_fs_fsx.py COW {OPS} {SEED})")
MAXSIZE = 1 << 21
BS = 4096
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 1, 2, 0x10
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def fail(msg):
    print("FAIL:", msg, f"(seed {SEED})")
    M.cleanup()
    sys.exit(1)


def fallocate(fd, mode, off, n):
    if libc.fallocate(fd, mode, off, n) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


M = Mounted(COW, fail)
M.create()
M.mount()
path, spath = os.path.join(M.mnt, "f"), os.path.join(M.mnt, "src")
model = bytearray()
src = rng.randbytes(256 * 1024)
with open(spath, "wb") as f:
    f.write(src)
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
sfd = os.open(spath, os.O_RDWR)
log = []


def where(limit):
    """An offset, mostly near a block edge."""
    if rng.random() < 0.6:
        b = rng.randrange(limit // BS + 1) * BS
        return max(0, min(limit, b + rng.choice((-1, 0, 0, 1))))
    return rng.randrange(limit + 1)


def length(limit=128 * 1024):
    if rng.random() < 0.5:
        return rng.choice((1, BS - 1, BS, BS + 1, 2 * BS, 64 * 1024))
    return rng.randrange(1, limit)


def setsize(n):
    if n < len(model):
        del model[n:]
    else:
        model.extend(bytes(n - len(model)))


def op_write():
    off, n = where(MAXSIZE - 1), length()
    n = min(n, MAXSIZE - off)
    data = rng.randbytes(n) if rng.random() < 0.8 else bytes(n)
    os.pwrite(fd, data, off)
    if off > len(model):
        setsize(off)
    model[off:off + n] = data
    return f"write {off} {n}"


def op_mapwrite():
    off, n = where(MAXSIZE - 1), length()
    n = min(n, MAXSIZE - off)
    if off + n > len(model):
        os.ftruncate(fd, off + n)  # a mapping cannot grow the file: fsx does the same
        setsize(off + n)
    data = rng.randbytes(n)
    with mmap.mmap(fd, len(model)) as m:
        m[off:off + n] = data
        if rng.random() < 0.5:
            m.flush()
    model[off:off + n] = data
    return f"mapwrite {off} {n}"


def op_read():
    off, n = where(len(model)), length()
    got = os.pread(fd, n, off)
    if got != bytes(model[off:off + n]):
        fail(f"read {off} {n}: {len(got)} bytes differ from the model")
    return f"read {off} {n}"


def op_mapread():
    if not model:
        return "mapread of an empty file"
    off = where(len(model) - 1)
    n = min(length(), len(model) - off)
    with mmap.mmap(fd, len(model), prot=mmap.PROT_READ) as m:
        got = m[off:off + n]
    if got != bytes(model[off:off + n]):
        fail(f"mapread {off} {n} differs from the model")
    return f"mapread {off} {n}"


def op_truncate():
    n = where(MAXSIZE) if rng.random() < 0.5 else where(len(model))
    os.ftruncate(fd, n)
    setsize(n)
    return f"truncate {n}"


def op_punch():
    off, n = where(len(model) + BS), length()
    zero = rng.random() < 0.3
    keep = zero and rng.random() < 0.5
    mode = (FALLOC_FL_ZERO_RANGE | (FALLOC_FL_KEEP_SIZE if keep else 0)) if zero else \
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    fallocate(fd, mode, off, n)
    end = min(off + n, len(model)) if mode & FALLOC_FL_KEEP_SIZE else off + n
    if end > len(model):
        setsize(end)
    if end > off:
        model[off:end] = bytes(end - off)
    return f"{'zero' if zero else 'punch'} {off} {n}"


def op_extend():
    off, n = where(MAXSIZE - 1), length()
    n = min(n, MAXSIZE - off)
    fallocate(fd, 0, off, n)
    if off + n > len(model):
        setsize(off + n)
    return f"fallocate {off} {n}"


def op_copy_in():
    soff = where(len(src) - 1)
    n = min(length(), len(src) - soff)
    off = where(MAXSIZE - n)
    done = os.copy_file_range(sfd, fd, n, soff, off)
    if done <= 0:
        fail(f"copy_file_range from src copied {done}")
    if off > len(model):
        setsize(off)
    model[off:off + done] = src[soff:soff + done]
    return f"copy in {soff} -> {off} {done}"


def op_copy_out():
    """From the file into src (then src is the model's copy of that range)."""
    global src
    if not model:
        return "copy out of an empty file"
    off = where(len(model) - 1)
    n = min(length(), len(model) - off, len(src))
    soff = where(len(src) - n)
    done = os.copy_file_range(fd, sfd, n, off, soff)
    s = bytearray(src)
    s[soff:soff + done] = model[off:off + done]
    src = bytes(s)
    return f"copy out {off} -> {soff} {done}"


def op_seek():
    off = where(len(model) + BS)
    whence = rng.choice((os.SEEK_DATA, os.SEEK_HOLE))
    try:
        at = os.lseek(fd, off, whence)
    except OSError as e:
        if e.errno != errno.ENXIO:
            raise
        # no data past off, or off at or past the end
        if off < len(model) and (whence == os.SEEK_HOLE or any(model[off:])):
            fail(f"lseek {off} {'DATA' if whence == os.SEEK_DATA else 'HOLE'}: ENXIO "
                 f"in a file of {len(model)}")
        return f"seek {off}: ENXIO"
    if at < off or at > len(model):
        fail(f"lseek {off}: {at} outside [{off}, {len(model)}]")
    if whence == os.SEEK_DATA and any(model[off:at]):
        fail(f"SEEK_DATA {off} -> {at} skips data")
    return f"seek {off} -> {at}"


def compare(when):
    st = os.fstat(fd)
    if st.st_size != len(model):
        fail(f"{when}: size {st.st_size}, model {len(model)}")
    got = os.pread(fd, len(model) + 1, 0)
    if got != bytes(model):
        bad = next((i for i in range(min(len(got), len(model))) if got[i] != model[i]),
                   min(len(got), len(model)))
        fail(f"{when}: contents differ at byte {bad} (last: {'; '.join(log[-5:])})")
    if os.pread(sfd, len(src) + 1, 0) != src:
        fail(f"{when}: src differs")


OPERATIONS = [(op_write, 6), (op_mapwrite, 3), (op_read, 4), (op_mapread, 2),
              (op_truncate, 2), (op_punch, 2), (op_extend, 1), (op_copy_in, 2),
              (op_copy_out, 1), (op_seek, 2)]
funcs = [f for f, w in OPERATIONS for _ in range(w)]
try:
    for i in range(1, OPS + 1):
        log.append(rng.choice(funcs)())
        if os.fstat(fd).st_size != len(model):
            fail(f"op {i} ({log[-1]}): size {os.fstat(fd).st_size}, model {len(model)}")
        if i % 10 == 0:
            compare(f"op {i}")
        if i % 100 == 0:
            os.close(fd)
            fd = os.open(path, os.O_RDWR)
        if i % 400 == 0:
            os.fsync(fd)
            os.close(fd)
            os.close(sfd)
            M.remount()
            fd, sfd = os.open(path, os.O_RDWR), os.open(spath, os.O_RDWR)
            compare(f"op {i}, remounted")
    os.close(fd)
    os.close(sfd)
    M.umount()
    M.fsck()
finally:
    M.cleanup()
print(f"ok: {OPS} fsx operations matched the buffer, remounted every 400, fsck clean")
