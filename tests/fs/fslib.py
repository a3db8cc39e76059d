"""Shared by the Python fs tests: a store with one fs mounted by `cow mount`.

    m = Mounted(cow_binary, on_fail)  # a store in a temporary folder, fs "home"
    m.mount(); ...; m.umount(); m.cleanup()

Skips (exit 77) with the reason when FUSE cannot mount here. on_fail(msg)
is called for a failure (it should print and exit).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


def drop_caches():
    """Drop the page cache (as root), so reads reach the daemon."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


class Mounted:
    def __init__(self, cow, on_fail, name="home"):
        if not os.path.exists("/dev/fuse"):
            skip("no /dev/fuse on this machine")
        if not shutil.which("fusermount3"):
            skip("fusermount3 is not installed (Debian: fuse3)")
        self.bin, self.on_fail, self.name = cow, on_fail, name
        self.tmp = tempfile.mkdtemp()
        self.store = os.path.join(self.tmp, "s.cow")
        self.mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(self.mnt)
        self.proc = None

    def fail(self, msg):
        self.cleanup()
        self.on_fail(msg)

    def cow(self, *args, check=True):
        r = subprocess.run([self.bin, "-s", self.store, *args], capture_output=True, text=True)
        if check and r.returncode:
            self.fail(f"cow {' '.join(args)}: {r.stderr.strip()}")
        return r

    def create(self):
        self.cow("init")
        self.cow("fs", "create", self.name)

    def mounted(self):
        return os.path.ismount(self.mnt)

    def mount(self, *opts):
        self.proc = subprocess.Popen(
            [self.bin, "-s", self.store, "mount", self.name, self.mnt, "-f", *opts],
            stderr=subprocess.PIPE, text=True)
        for _ in range(200):
            if self.mounted():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        err = self.proc.stderr.read() if self.proc.poll() is not None else ""
        if any(s in err for s in ("not permitted", "Permission denied", "device not found",
                                  "mount failed")):
            skip("FUSE mounts are not allowed here: " + err.strip().splitlines()[0])
        self.fail("cow mount did not come up: " + err)

    def umount(self):
        subprocess.run([self.bin, "umount", self.mnt], check=False)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("cow mount did not exit after umount")
        if rc:
            self.fail(f"cow mount exited {rc}: {self.proc.stderr.read()}")
        self.proc = None

    def remount(self, *opts):
        self.umount()
        drop_caches()
        self.mount(*opts)

    def fsck(self):
        r = self.cow("fsck", check=False)
        if r.returncode:
            self.fail("fsck: " + r.stdout[-500:] + r.stderr[-500:])

    def cleanup(self):
        if self.mounted():  # lazily if a failing test still holds files open
            if subprocess.run(["fusermount3", "-u", self.mnt], check=False,
                              stderr=subprocess.DEVNULL).returncode:
                subprocess.run(["fusermount3", "-u", "-z", self.mnt], check=False)
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)
