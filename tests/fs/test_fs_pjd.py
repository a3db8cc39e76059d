#!/usr/bin/env python3
"""POSIX behaviour as pjdfstest checks it, on a mounted fs and on tmpfs.

A script of system calls, run as root and as other users (uid 1000 and
65534, in forked children), on both trees: every outcome must be the
same, whether an errno (EEXIST, ENOENT, ENOTDIR, EISDIR, ENOTEMPTY,
EINVAL, ENAMETOOLONG, ELOOP, EACCES, EPERM, EXDEV aside) or a success,
and after each step the objects it names must have the same type, mode
(set-user-ID and set-group-ID bits included), link count, owner, group
and size, and their mtime and ctime must have changed, or not, alike.
The cases are pjdfstest's: open, creat, mkdir, rmdir, unlink, link,
symlink, rename, chmod, chown, truncate, utimensat, mkfifo and mknod,
with the sticky bit, set-group-ID directories and privilege clearing.
Needs root (other users are taken on in children).

    test_fs_pjd.py COW
"""
import ast
import errno
import os
import shutil
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fslib import Mounted, skip  # noqa: E402

COW = sys.argv[1]
if os.geteuid() != 0:
    skip("needs root (it runs calls as other users too)")


def fail(msg):
    print("FAIL:", msg)
    cleanup()
    sys.exit(1)


def cleanup():
    M.cleanup()
    shutil.rmtree(REF, ignore_errors=True)


M = Mounted(COW, fail)
REF = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
ROOT = 0
U1, U2 = 1000, 65534


def as_user(uid, fn):
    """fn() in a child with @uid (and the same gid), its outcome as ("ok", v) or ("err", name)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = ("err", "child")
        try:
            os.close(r)
            if uid:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            try:
                out = ("ok", fn())
            except OSError as e:
                out = ("err", errno.errorcode.get(e.errno, str(e.errno)))
        finally:
            os.write(w, repr(out).encode())
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return ast.literal_eval(data.decode())


def look(p):
    try:
        s = os.lstat(p)
    except OSError as e:
        return errno.errorcode.get(e.errno)
    return (stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode), s.st_nlink, s.st_uid, s.st_gid,
            s.st_size if not stat.S_ISDIR(s.st_mode) else None)


def times(p):
    try:
        s = os.lstat(p)
        return (s.st_mtime_ns, s.st_ctime_ns)
    except OSError:
        return None


def touch(p, mode=0o644):
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, mode))


def chown_to(p, uid):
    os.chown(p, uid, uid, follow_symlinks=False)


# The script: (who, call, names it changes). A call takes the tree's root.
W = os.path.join
S = [
    # open and creat
    (ROOT, lambda r: touch(W(r, "f"), 0o640), ["f", ""]),
    (ROOT, lambda r: os.open(W(r, "f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY) and None, ["f"]),
    (ROOT, lambda r: os.open(W(r, "nope"), os.O_RDONLY) and None, [""]),
    (ROOT, lambda r: os.open(W(r, "f", "x"), os.O_RDONLY) and None, ["f"]),
    (ROOT, lambda r: os.mkdir(W(r, "d"), 0o755), ["d", ""]),
    (ROOT, lambda r: os.open(W(r, "d"), os.O_WRONLY) and None, ["d"]),
    (ROOT, lambda r: touch(W(r, "x" * 255)), [""]),
    (ROOT, lambda r: touch(W(r, "y" * 256)), [""]),
    (ROOT, lambda r: os.symlink("loop", W(r, "loop")), ["loop", ""]),
    (ROOT, lambda r: os.open(W(r, "loop"), os.O_RDONLY) and None, ["loop"]),
    (ROOT, lambda r: os.symlink("f", W(r, "lf")), ["lf", ""]),
    (ROOT, lambda r: os.open(W(r, "lf"), os.O_RDONLY | os.O_NOFOLLOW) and None, ["lf", "f"]),
    (ROOT, lambda r: os.truncate(W(r, "f"), 1000), ["f"]),
    (ROOT, lambda r: os.close(os.open(W(r, "f"), os.O_WRONLY | os.O_TRUNC)), ["f"]),
    (U2, lambda r: os.open(W(r, "f"), os.O_RDONLY) and None, ["f"]),
    (U2, lambda r: touch(W(r, "d", "u2")), ["d"]),
    # set-group-ID directories, other users' files
    (ROOT, lambda r: os.mkdir(W(r, "g"), 0o777), ["g", ""]),
    (ROOT, lambda r: os.chown(W(r, "g"), 0, 4242), ["g"]),
    (ROOT, lambda r: os.chmod(W(r, "g"), 0o2777), ["g"]),
    (U1, lambda r: touch(W(r, "g", "u1")), ["g/u1", "g"]),
    (U1, lambda r: os.mkdir(W(r, "g", "sub")), ["g/sub", "g"]),
    (ROOT, lambda r: os.mkdir(W(r, "t"), 0o1777), ["t", ""]),
    (U1, lambda r: touch(W(r, "t", "u1")), ["t/u1", "t"]),
    (U2, lambda r: os.unlink(W(r, "t", "u1")), ["t/u1", "t"]),
    (U2, lambda r: os.rename(W(r, "t", "u1"), W(r, "t", "u2")), ["t/u1", "t"]),
    (U1, lambda r: os.rename(W(r, "t", "u1"), W(r, "t", "u1b")), ["t/u1b", "t"]),
    (ROOT, lambda r: os.unlink(W(r, "t", "u1b")), ["t"]),
    # mkdir and rmdir
    (ROOT, lambda r: os.mkdir(W(r, "d")), ["d"]),
    (ROOT, lambda r: os.mkdir(W(r, "f", "d")), ["f"]),
    (ROOT, lambda r: os.mkdir(W(r, "d", "e")), ["d/e", "d"]),
    (ROOT, lambda r: touch(W(r, "d", "e", "z")), ["d/e"]),
    (ROOT, lambda r: os.rmdir(W(r, "d", "e")), ["d/e", "d"]),
    (ROOT, lambda r: os.rmdir(W(r, "f")), ["f"]),
    (ROOT, lambda r: os.rmdir(W(r, "d", "e", ".")), ["d/e"]),
    (ROOT, lambda r: os.unlink(W(r, "d", "e", "z")), ["d/e"]),
    (ROOT, lambda r: os.rmdir(W(r, "d", "e")), ["d/e", "d"]),
    # unlink and link
    (ROOT, lambda r: os.unlink(W(r, "d")), ["d"]),
    (ROOT, lambda r: os.unlink(W(r, "nope")), [""]),
    (ROOT, lambda r: os.link(W(r, "f"), W(r, "f2")), ["f", "f2", ""]),
    (ROOT, lambda r: os.link(W(r, "f"), W(r, "f2")), ["f"]),
    (ROOT, lambda r: os.link(W(r, "d"), W(r, "d2")), ["d"]),
    (ROOT, lambda r: os.unlink(W(r, "f2")), ["f", "f2", ""]),
    # symlink
    (ROOT, lambda r: os.symlink("t" * 4095, W(r, "long")), ["long", ""]),
    (ROOT, lambda r: os.readlink(W(r, "long")) == "t" * 4095, ["long"]),
    (ROOT, lambda r: os.symlink("t" * 4096, W(r, "long2")), [""]),
    (ROOT, lambda r: os.symlink("x", W(r, "f")), ["f"]),
    # rename
    (ROOT, lambda r: touch(W(r, "a")), ["a", ""]),
    (ROOT, lambda r: os.rename(W(r, "a"), W(r, "d")), ["a", "d"]),
    (ROOT, lambda r: os.rename(W(r, "d"), W(r, "a")), ["a", "d"]),
    (ROOT, lambda r: os.mkdir(W(r, "d", "e")), ["d/e", "d"]),
    (ROOT, lambda r: touch(W(r, "d", "e", "z")), ["d/e"]),
    (ROOT, lambda r: os.mkdir(W(r, "n")), ["n", ""]),
    (ROOT, lambda r: os.rename(W(r, "n"), W(r, "d", "e")), ["n", "d/e"]),
    (ROOT, lambda r: os.rename(W(r, "d"), W(r, "d", "e", "in")), ["d"]),
    (ROOT, lambda r: os.rename(W(r, "n"), W(r, "d", "n")), ["n", "d/n", "d", ""]),
    (ROOT, lambda r: os.rename(W(r, "d", "n"), W(r, "g", "n")), ["d/n", "g/n", "d", "g"]),
    (ROOT, lambda r: os.link(W(r, "a"), W(r, "a2")), ["a", "a2"]),
    (ROOT, lambda r: os.rename(W(r, "a"), W(r, "a2")), ["a", "a2", ""]),
    (ROOT, lambda r: os.rename(W(r, "a2"), W(r, "a2")), ["a2"]),
    (ROOT, lambda r: os.rename(W(r, "a"), W(r, "b")), ["a", "b", ""]),
    (ROOT, lambda r: os.rename(W(r, "b"), W(r, "g", "b")), ["b", "g/b", "", "g"]),
    # chmod and chown
    (ROOT, lambda r: chown_to(W(r, "g", "b"), U1), ["g/b"]),
    (U2, lambda r: os.chmod(W(r, "g", "b"), 0o777), ["g/b"]),
    (U1, lambda r: os.chmod(W(r, "g", "b"), 0o6755), ["g/b"]),
    (U1, lambda r: os.chmod(W(r, "g", "b"), 0o4755), ["g/b"]),
    (U1, lambda r: os.chown(W(r, "g", "b"), U2, -1), ["g/b"]),
    (U1, lambda r: os.chown(W(r, "g", "b"), -1, -1), ["g/b"]),
    (ROOT, lambda r: os.chmod(W(r, "g", "b"), 0o6755), ["g/b"]),
    (ROOT, lambda r: os.chown(W(r, "g", "b"), U2, U2), ["g/b"]),
    (ROOT, lambda r: os.chmod(W(r, "g", "b"), 0o6777), ["g/b"]),
    (U1, lambda r: os.truncate(W(r, "g", "b"), 10), ["g/b"]),
    (ROOT, lambda r: os.chmod(W(r, "g", "b"), 0o6777), ["g/b"]),
    (U1, lambda r: os.write(fd := os.open(W(r, "g", "b"), os.O_WRONLY), b"x") and os.close(fd),
     ["g/b"]),
    # truncate
    (ROOT, lambda r: os.truncate(W(r, "g"), 0), ["g"]),
    (ROOT, lambda r: os.truncate(W(r, "lf"), -1), ["f"]),
    (ROOT, lambda r: os.chmod(W(r, "f"), 0o644), ["f"]),
    (U2, lambda r: os.truncate(W(r, "f"), 0), ["f"]),
    (ROOT, lambda r: os.truncate(W(r, "f"), 5000), ["f"]),
    (ROOT, lambda r: os.truncate(W(r, "f"), 5000), ["f"]),
    # utimensat
    (ROOT, lambda r: os.utime(W(r, "f"), ns=(10**18, 2 * 10**18)), ["f"]),
    (ROOT, lambda r: os.stat(W(r, "f")).st_mtime_ns, ["f"]),
    (U2, lambda r: os.utime(W(r, "f"), ns=(1, 2)), ["f"]),
    (U2, lambda r: os.utime(W(r, "f")), ["f"]),
    (ROOT, lambda r: os.chmod(W(r, "f"), 0o666), ["f"]),
    (U2, lambda r: os.utime(W(r, "f")), ["f"]),
    (U2, lambda r: os.utime(W(r, "f"), ns=(1, 2)), ["f"]),
    (ROOT, lambda r: os.utime(W(r, "lf"), ns=(5, 6), follow_symlinks=False), ["lf", "f"]),
    # mkfifo and mknod
    (ROOT, lambda r: os.mkfifo(W(r, "fifo"), 0o600), ["fifo", ""]),
    (ROOT, lambda r: os.mknod(W(r, "chr"), stat.S_IFCHR | 0o600, os.makedev(1, 3)),
     ["chr", ""]),
    (ROOT, lambda r: os.major(os.lstat(W(r, "chr")).st_rdev), ["chr"]),
    (U2, lambda r: os.mknod(W(r, "g", "chr"), stat.S_IFCHR | 0o600, os.makedev(1, 3)), ["g"]),
    (U2, lambda r: os.mkfifo(W(r, "g", "fifo")), ["g/fifo", "g"]),
    (ROOT, lambda r: os.unlink(W(r, "fifo")), ["fifo", ""]),
]

os.umask(0o022)
os.chmod(M.tmp, 0o755)  # other users reach the mount point and the reference
M.create()
M.mount("-o", "allow_other")
try:
    for root in (M.mnt, REF):
        os.chmod(root, 0o755)
        os.chown(root, 0, 0)
    outcomes = {}
    for i, (who, call, names) in enumerate(S, 1):
        got = []
        for root in (M.mnt, REF):
            before = [times(W(root, n)) for n in names]
            time.sleep(0.012)  # past the kernel's coarse clock
            out = as_user(who, lambda: call(root))
            after = [times(W(root, n)) for n in names]
            got.append((out, [look(W(root, n)) for n in names],
                        [a != b for a, b in zip(before, after)]))
        fs, ref = got
        outcomes[out[0]] = outcomes.get(out[0], 0) + 1
        if fs != ref:
            fail(f"step {i} (uid {who}, on {names}): fs {fs} vs tmpfs {ref}")
    M.remount("-o", "allow_other")
    for n in ("f", "g", "g/b", "g/u1", "g/sub", "g/fifo", "chr", "lf", "long", "t", "d/e"):
        a, b = look(W(M.mnt, n)), look(W(REF, n))
        if a != b:
            fail(f"after remount: {n}: fs {a} vs tmpfs {b}")
    M.umount()
    M.fsck()
finally:
    cleanup()
print(f"ok: {len(S)} pjdfstest-style steps ({outcomes.get('ok', 0)} succeeded, "
      f"{outcomes.get('err', 0)} failed) alike on the fs and on tmpfs, and after a remount")
