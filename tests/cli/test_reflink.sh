#!/bin/sh
# cow export clones instead of copying on file systems with reflinks: btrfs
# and XFS on loop devices this test makes (and removes). Skipped, with the
# reason, where loop devices, mkfs or mount are not available.
# usage: test_reflink.sh PATH/TO/cow
set -u
COW=$1
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root for loop devices and mounts"; exit 77; }
command -v losetup >/dev/null || { echo "SKIP: losetup not installed"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/cowreflink.XXXXXX")
dev=""
cleanup() {
	mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
tested=0
fails=0
for fs in btrfs xfs; do
	case $fs in
	btrfs) mkfs="mkfs.btrfs -q" ;;
	xfs) mkfs="mkfs.xfs -q -m reflink=1" ;;
	esac
	command -v "mkfs.$fs" >/dev/null || { echo "$fs: mkfs.$fs not installed, skipped"; continue; }
	truncate -s 1G "$work/img"
	dev=$(losetup -f --show "$work/img" 2>/dev/null) || { echo "$fs: no loop device here, skipped"; dev=""; rm -f "$work/img"; continue; }
	mkdir -p "$work/mnt"
	if ! $mkfs "$dev" >/dev/null 2>&1 || ! mount "$dev" "$work/mnt" 2>/dev/null; then
		echo "$fs: mkfs or mount not permitted, skipped"
		losetup -d "$dev"; dev=""; rm -f "$work/img"
		continue
	fi
	head -c 33554432 /dev/urandom >"$work/mnt/in.bin"
	export COW_STORE="$work/mnt/s.cow"
	"$COW" init >/dev/null && "$COW" import "$work/mnt/in.bin" disk >/dev/null &&
		"$COW" export disk "$work/mnt/out.bin" >"$work/out.txt" || { echo "FAIL: $fs: cow failed"; fails=$((fails + 1)); }
	cat "$work/out.txt"
	cmp -s "$work/mnt/in.bin" "$work/mnt/out.bin" || { echo "FAIL: $fs: exported bytes differ"; fails=$((fails + 1)); }
	grep -q "^exported disk to .*: [1-9][0-9.]* [KMG]iB cloned" "$work/out.txt" ||
		{ echo "FAIL: $fs: nothing was cloned"; fails=$((fails + 1)); }
	# A second export to another file system copies instead, and says so.
	"$COW" export disk "$work/copy.bin" >"$work/out2.txt" && grep -q "copied)" "$work/out2.txt" ||
		{ echo "FAIL: $fs: export across file systems"; fails=$((fails + 1)); }
	cmp -s "$work/mnt/in.bin" "$work/copy.bin" || { echo "FAIL: $fs: copied bytes differ"; fails=$((fails + 1)); }
	umount "$work/mnt"
	losetup -d "$dev"; dev=""
	rm -f "$work/img" "$work/copy.bin"
	tested=$((tested + 1))
done
[ "$fails" -eq 0 ] || exit 1
[ "$tested" -gt 0 ] || { echo "SKIP: neither btrfs nor XFS could be set up here"; exit 77; }
echo "reflink export checked on $tested file system(s)"
