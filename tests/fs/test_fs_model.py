#!/usr/bin/env python3
"""Random file operations on a mounted fs and on a tmpfs reference.

Each step runs one operation (create, write at any offset, append,
truncate, punch, copy_file_range, mkdir, rmdir, unlink, rename in all its
forms, link, symlink, chmod, utime, reads through a file kept open across
its unlink) on both trees, and the result (the bytes read, or the errno)
must be the same. Every 25 steps both trees are compared whole: names,
types, modes, sizes, link counts, symlink targets and contents. Every 150
steps the fs is unmounted, the page cache dropped and the fs mounted
again, so reads that only passed from the kernel's cache are caught.

    test_fs_model.py COW [STEPS] [SEED]
"""
import errno
import os
import random
import shutil
import stat
import sys
import tempfile

COW = sys.argv[1]
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else random.randrange(1 << 30)
rng = random.Random(SEED)
print(f"seed {SEED} (rerun: test_fs_model.py COW {STEPS} {SEED})")


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fslib import Mounted, drop_caches  # noqa: E402


def fail(msg):
    print("FAIL:", msg, f"(seed {SEED})")
    cleanup()
    sys.exit(1)


M = Mounted(COW, fail)
MNT = M.mnt
REFBASE = "/dev/shm" if os.path.isdir("/dev/shm") else M.tmp
REF = tempfile.mkdtemp(dir=REFBASE)
mount, umount = M.mount, M.umount


def cleanup():
    M.cleanup()
    shutil.rmtree(REF, ignore_errors=True)


# ---- the operations, each run on both trees ----

names = ["a", "b", "c", "d", "caf\u00e9", "x" * 255]


_cache = {"left": 0, "value": None}


def existing():
    """The reference tree's paths and directories, walked again every 10 calls."""
    if _cache["left"] == 0:
        _cache["value"] = walk_ref()
        _cache["left"] = 10
    _cache["left"] -= 1
    return _cache["value"]


def walk_ref():
    paths, dirs = [], [""]
    for dirpath, ds, fs, _ in os.fwalk(REF):  # past PATH_MAX too (os.walk skips those)
        rel = os.path.relpath(dirpath, REF)
        rel = "" if rel == "." else rel
        for n in ds:
            dirs.append(os.path.join(rel, n))
        for n in ds + fs:
            paths.append(os.path.join(rel, n))
    return paths, dirs


def rand_path(new=False):
    """Mostly a path that exists (or, for @new, a fresh name in a directory that does)."""
    paths, dirs = existing()
    r = rng.random()
    if not new and paths and r < 0.75:
        return rng.choice(paths)
    if r < 0.95:
        return os.path.join(rng.choice(dirs), rng.choice(names))
    return "/".join(rng.choice(names) for _ in range(rng.randrange(1, 4)))


def both(fn):
    """Run fn(root) on both trees; the outcomes must match."""
    outs = []
    for root in (MNT, REF):
        try:
            outs.append(("ok", fn(root)))
        except OSError as e:
            outs.append(("err", errno.errorcode.get(e.errno, e.errno)))
    return outs


def data(n):
    kind = rng.randrange(3)
    if kind == 0:
        return bytes(n)
    if kind == 1:
        return bytes([rng.randrange(256)]) * n
    return rng.randbytes(n)


def op_create(p, d):
    def f(root):
        fd = os.open(os.path.join(root, p), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            os.write(fd, d)
        finally:
            os.close(fd)
    return f


def op_pwrite(p, off, d):
    def f(root):
        fd = os.open(os.path.join(root, p), os.O_WRONLY)
        try:
            return os.pwrite(fd, d, off)
        finally:
            os.close(fd)
    return f


def op_append(p, d):
    def f(root):
        fd = os.open(os.path.join(root, p), os.O_WRONLY | os.O_APPEND)
        try:
            return os.write(fd, d)
        finally:
            os.close(fd)
    return f


def op_read(p, off, n):
    def f(root):
        fd = os.open(os.path.join(root, p), os.O_RDONLY)
        try:
            return os.pread(fd, n, off)
        finally:
            os.close(fd)
    return f


def op_punch(p, off, n):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)

    def f(root):
        fd = os.open(os.path.join(root, p), os.O_WRONLY)
        try:
            # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
            if libc.fallocate(fd, 3, ctypes.c_long(off), ctypes.c_long(n)) != 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
        finally:
            os.close(fd)
    return f


def op_copy(src, dst, soff, doff, n):
    def f(root):
        a = os.open(os.path.join(root, src), os.O_RDONLY)
        try:
            b = os.open(os.path.join(root, dst), os.O_WRONLY)
            try:
                done = 0
                while done < n:
                    k = os.copy_file_range(a, b, n - done, soff + done, doff + done)
                    if k == 0:
                        break
                    done += k
                return done
            finally:
                os.close(b)
        finally:
            os.close(a)
    return f


def step():
    k = rng.randrange(100)
    makes = k < 14 or 56 <= k < 63 or 79 <= k < 85
    p = rand_path(new=makes and k < 79)
    q = rand_path(new=79 <= k < 85 or (71 <= k < 79 and rng.random() < 0.5))
    if k < 14:
        return "create", both(op_create(p, data(rng.choice([0, 1, 100, 4096, 5000, 70000]))))
    if k < 30:
        off = rng.choice([0, 1, 4095, 4096, 8191, rng.randrange(300000)])
        return "pwrite", both(op_pwrite(p, off, data(rng.choice([1, 100, 4096, 4097, 20000]))))
    if k < 34:
        return "append", both(op_append(p, data(rng.randrange(1, 9000))))
    if k < 40:
        size = rng.choice([0, 1, 4096, 5000, rng.randrange(400000)])
        return "truncate", both(lambda r: os.truncate(os.path.join(r, p), size))
    if k < 44:
        return "punch", both(op_punch(p, rng.randrange(100000), rng.randrange(1, 50000)))
    if k < 48:
        soff, doff = rng.choice([0, 4096, rng.randrange(50000)]), rng.choice([0, 4096, 8192, 123])
        return "copy_file_range", both(op_copy(p, q, soff, doff, rng.randrange(1, 200000)))
    if k < 56:
        return "read", both(op_read(p, rng.randrange(200000), rng.randrange(1, 100000)))
    if k < 63:
        return "mkdir", both(lambda r: os.mkdir(os.path.join(r, p), 0o755))
    if k < 66:
        return "rmdir", both(lambda r: os.rmdir(os.path.join(r, p)))
    if k < 71:
        return "unlink", both(lambda r: os.unlink(os.path.join(r, p)))
    if k < 79:
        return "rename", both(lambda r: os.rename(os.path.join(r, p), os.path.join(r, q)))
    if k < 82:
        return "link", both(lambda r: os.link(os.path.join(r, p), os.path.join(r, q)))
    if k < 85:
        return "symlink", both(lambda r: os.symlink(q, os.path.join(r, p)))
    if k < 88:
        return "readlink", both(lambda r: os.readlink(os.path.join(r, p)))
    if k < 92:
        mode = rng.choice([0o600, 0o644, 0o755, 0o4755, 0o1777, 0o2750])
        return "chmod", both(lambda r: os.chmod(os.path.join(r, p), mode, follow_symlinks=False)
                             if not os.path.islink(os.path.join(r, p)) else None)
    if k < 95:
        ns = (rng.randrange(1 << 31) * 10**9 + rng.randrange(10**9),) * 2
        return "utime", both(lambda r: os.utime(os.path.join(r, p), ns=ns, follow_symlinks=False))
    if k < 98:
        # a file kept open across its unlink reads its data, then is freed at close
        def f(root):
            fd = os.open(os.path.join(root, p), os.O_RDONLY)
            try:
                os.unlink(os.path.join(root, p))
                return os.pread(fd, 10000, 0), os.fstat(fd).st_nlink
            finally:
                os.close(fd)
        return "read-after-unlink", both(f)
    return "listdir", both(lambda r: sorted(os.listdir(os.path.join(r, os.path.dirname(p)))))


def snapshot_tree(root):
    """Every object's record, walked by directory descriptors: paths pass PATH_MAX."""
    out = {}
    for dirpath, dirs, files, dfd in os.fwalk(root):
        for n in dirs + files:
            rel = os.path.relpath(os.path.join(dirpath, n), root)
            st = os.lstat(n, dir_fd=dfd)
            rec = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink]
            if stat.S_ISREG(st.st_mode):
                fd = os.open(n, os.O_RDONLY, dir_fd=dfd)
                with os.fdopen(fd, "rb") as f:
                    rec += [st.st_size, f.read()]
            elif stat.S_ISLNK(st.st_mode):
                rec += [os.readlink(n, dir_fd=dfd)]
            if not stat.S_ISDIR(st.st_mode):
                rec += [st.st_mtime_ns if st.st_mtime_ns % 10**9 == 0 or True else 0]
            out[rel] = rec
    return out


def compare(when):
    a, b = snapshot_tree(MNT), snapshot_tree(REF)
    # mtimes differ between the trees (the operations ran at different
    # instants) except where utime set them: compare all but the last field.
    for d in (a, b):
        for rel, rec in d.items():
            if not stat.S_ISDIR(rec[0]):
                rec.pop()
    if a != b:
        for rel in sorted(set(a) | set(b)):
            if a.get(rel) != b.get(rel):
                ra, rb = a.get(rel), b.get(rel)
                fail(f"{when}: {rel} differs: fs {str(ra)[:200]} vs ref {str(rb)[:200]}")


M.create()
os.chmod(REF, 0o755)
mount()
os.chmod(MNT, 0o755)
counts = {}
try:
    for i in range(1, STEPS + 1):
        name, (fs, ref) = step()
        c = counts.setdefault(name, [0, 0])
        c[0 if fs[0] == "ok" else 1] += 1
        if fs != ref:
            fail(f"step {i} {name}: fs {str(fs)[:200]} vs ref {str(ref)[:200]}")
        if i % 25 == 0:
            compare(f"step {i}")
        if i % 150 == 0:
            umount()
            drop_caches()
            mount()
            compare(f"step {i}, remounted")
    umount()
    M.fsck()
finally:
    cleanup()
print("operations (succeeded, failed alike):",
      ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(counts.items())))
if sum(v[0] for v in counts.values()) < STEPS // 4:
    fail("too few operations succeeded to test much")
print(f"ok: {STEPS} random operations matched tmpfs, remounted every 150 steps, fsck clean")
