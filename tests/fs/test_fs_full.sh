#!/bin/sh
# A mounted fs on a full file system: writes that would not fit get ENOSPC
# and nothing else is lost (what was written before stays, the mount stays
# writable), removing files makes room again, fsck is clean.
#   test_fs_full.sh COW
COW=$1
. "$(dirname "$0")/lib.sh"
need dd
mkdir "$T/tiny"
mount -t tmpfs -o size=64m tmpfs "$T/tiny" 2>/dev/null || skip "cannot mount a small tmpfs here (needs root)"
STORE=$T/tiny/s.cow
trap 'umount_all' EXIT
umount_all() {
	mountpoint -q "$MNT" 2>/dev/null && fusermount3 -u "$MNT" 2>/dev/null
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	umount -l "$T/tiny" 2>/dev/null
	rm -rf "$T"
}
cow init >/dev/null && cow fs create home || fail "fs create"
mount_fs home
echo kept >"$MNT/keep" && sync "$MNT/keep" || fail "a first file"
if dd if=/dev/urandom of="$MNT/fill" bs=1M count=200 conv=fsync 2>"$T/dd.err"; then
	fail "200 MiB fitted on a 64 MiB file system"
fi
grep -q "No space left" "$T/dd.err" || fail "the full disk was not ENOSPC: $(cat "$T/dd.err")"
[ "$(cat "$MNT/keep")" = kept ] || fail "a file written before the disk filled is gone"
size=$(stat -c %s "$MNT/fill") || fail "the partly written file is gone"
echo "filled: $((size >> 20)) MiB written before ENOSPC"
# A small write now succeeds or gets ENOSPC (the margin is kept for removals), never EIO or EROFS.
python3 - "$MNT/more" <<'PY' || fail "after ENOSPC: $(cat "$T/mount.log")"
import errno, sys
try:
    with open(sys.argv[1], "w") as f:
        f.write("more\n")
except OSError as e:
    if e.errno != errno.ENOSPC:
        print("a small write after ENOSPC failed with", errno.errorcode[e.errno])
        sys.exit(1)
    print("a small write after ENOSPC: ENOSPC too (the margin)")
PY
rm "$MNT/fill" || fail "rm on a full disk"
# The blocks come back two commits later (freed, then released): force them.
for _ in 1 2; do
	touch "$MNT/keep" && sync "$MNT/keep"
done
dd if=/dev/urandom of="$MNT/again" bs=1M count=8 conv=fsync status=none || fail "no room after rm"
umount_fs
cow fsck >/dev/null || fail "fsck after a full disk: $(cow fsck 2>&1 | tail -3)"
mount_fs home
[ "$(cat "$MNT/keep")" = kept ] || fail "after remount"
[ "$(stat -c %s "$MNT/again")" = 8388608 ] || fail "the write after rm"
umount_fs
echo "ok: ENOSPC on a full file system, nothing lost, room again after rm"
