#!/bin/sh
# The kernel keeps a file's cached pages across opens while only the mount
# changes the tree (FOPEN_KEEP_CACHE, tools/cow/cmd_mount.c keep_cache), and
# never serves them stale: a rollback behind the mount is seen at the very
# next open, before the cached attributes time out; a snapshot taken
# meanwhile changes nothing seen.
#   test_fs_cache.sh COW
COW=$1
. "$(dirname "$0")/lib.sh"
need cmp head
cow init >/dev/null && cow fs create home || fail "create"
mount_fs home
head -c 1048576 /dev/urandom >"$T/a"
head -c 1048576 /dev/urandom >"$T/b"
cp "$T/a" "$MNT/f" && sync "$MNT/f" || fail "write a"
cow snapshot home@a >/dev/null || fail "snapshot"
cmp "$T/a" "$MNT/f" || fail "read a"
cp "$T/b" "$MNT/f" && sync "$MNT/f" || fail "write b"
cmp "$T/b" "$MNT/f" || fail "read b"
cmp "$T/b" "$MNT/f" || fail "read b again (its pages kept)"
cmp "$T/a" "$MNT/.snapshots/a/f" || fail "the snapshot's f"
# Behind the mount, same size, within the kernel's attribute timeout.
cow rollback home@a >/dev/null || fail "rollback"
cmp "$T/a" "$MNT/f" || fail "stale pages after a rollback behind the mount"
cp "$T/b" "$MNT/f" && sync "$MNT/f" || fail "write after the rollback"
cmp "$T/b" "$MNT/f" || fail "read after the rollback"
umount_fs
cow fsck >/dev/null || fail "fsck"
echo "ok: cached pages kept across opens, dropped after a change behind the mount"
