#!/bin/sh
# A store on a small ext4 with 1 KiB blocks, filled with commits until the
# file system is full (fallocate then fails part-way and leaves a file size
# that is not a multiple of 4096), keeps every acknowledged commit: each key
# whose `cow load` or `cow put` exited 0 reads back, before and after a
# remount, and fsck is clean. Needs root and loop devices: otherwise it
# skips (exit 77) and says why.  usage: test_full_ext4.sh PATH/TO/cow
set -u
COW=$1
skip() {
	echo "SKIP: $*"
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root: cannot mount a loop device"
command -v mkfs.ext4 >/dev/null 2>&1 || skip "no mkfs.ext4"
dir=$(mktemp -d)
mounted=0
cleanup() {
	[ $mounted -eq 1 ] && umount "$dir/mnt" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
mkdir "$dir/mnt"
truncate -s 8M "$dir/img" || skip "cannot make an image file"
mkfs.ext4 -q -F -b 1024 -m 0 "$dir/img" >/dev/null 2>&1 || skip "mkfs.ext4 -b 1024 failed"
mount -o loop "$dir/img" "$dir/mnt" 2>/dev/null || skip "cannot mount -o loop (no loop device, or in a container)"
mounted=1
export COW_STORE="$dir/mnt/s.cow"
export COW_LOG=off
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

"$COW" init >/dev/null || { fail "init"; exit 1; }
"$COW" map create m >/dev/null || { fail "map create"; exit 1; }

# Values of ~1 KiB that differ per key; batches of 100 keys in one commit.
val() { printf 'v%s-%0990d' "$1" "$1"; }
: >"$dir/acked"
n=0 errors=0 odd=0
while [ $errors -lt 40 ] && [ $n -lt 20000 ]; do
	if [ $errors -eq 0 ]; then
		batch=100
	else
		batch=$((1 + errors % 4)) # once full: small commits, at other points
	fi
	: >"$dir/batch"
	i=0
	while [ $i -lt $batch ]; do
		printf 'k%d\t%s\n' $((n + i)) "$(val $((n + i)))" >>"$dir/batch"
		i=$((i + 1))
	done
	if "$COW" load m <"$dir/batch" >/dev/null 2>"$dir/err"; then
		cut -f1 "$dir/batch" >>"$dir/acked"
	else
		grep -qi "space" "$dir/err" || fail "load failed, not for space: $(cat "$dir/err")"
		errors=$((errors + 1))
	fi
	size=$(stat -c %s "$COW_STORE")
	[ $((size % 4096)) -ne 0 ] && odd=$((odd + 1))
	n=$((n + batch))
done
[ $errors -gt 0 ] || fail "the file system never filled up"
acked=$(wc -l <"$dir/acked")
echo "$acked keys acknowledged, $errors commits refused for space, odd file size seen $odd times"

verify() { # verify WHEN
	"$COW" scan m >"$dir/scan" 2>"$dir/err" || { fail "$1: scan: $(cat "$dir/err")"; return; }
	got=$(wc -l <"$dir/scan")
	[ "$got" -eq "$acked" ] || fail "$1: $got keys, expected $acked"
	# Spot-check values, first and last acknowledged keys included.
	for k in $(sed -n '1p;$p;0~97p' "$dir/acked"); do
		want=$(val "${k#k}")
		v=$("$COW" get m "$k" 2>"$dir/err") || { fail "$1: get $k: $(cat "$dir/err")"; continue; }
		[ "$v" = "$want" ] || fail "$1: wrong value for $k"
	done
	"$COW" fsck >/dev/null 2>"$dir/err" || fail "$1: fsck: $(cat "$dir/err")"
}
verify "full"
umount "$dir/mnt" && mounted=0 || fail "umount"
mount -o loop "$dir/img" "$dir/mnt" && mounted=1 || { fail "remount"; exit 1; }
verify "after remount"

[ $fails -eq 0 ] && echo "full ext4: ok"
exit $((fails > 0))
