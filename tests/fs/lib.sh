# Shared by the fs scripts: a store with one fs mounted at $MNT, cleaned
# up at exit. Skips (77) with the reason when FUSE cannot mount here.
#   COW: the cow binary (first argument of every script)
set -u
T=$(mktemp -d)
STORE=$T/s.cow
MNT=$T/mnt
mkdir -p "$MNT"
PID=
fail() {
	echo "FAIL: $*"
	exit 1
}
skip() {
	echo "SKIP: $*"
	exit 77
}
need() {
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || skip "$p is not installed"
	done
}
cleanup() {
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
cow() { "$COW" -s "$STORE" "$@"; }

[ -e /dev/fuse ] || skip "no /dev/fuse on this machine"
need fusermount3 mountpoint

# mount_fs NAME [OPTIONS...]: mounts in the foreground process $PID, waits until served.
mount_fs() {
	name=$1
	shift
	"$COW" -s "$STORE" mount "$name" "$MNT" -f "$@" 2>"$T/mount.log" & # not the function: $! must be cow
	PID=$!
	for _ in $(seq 100); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.05
	done
	if grep -q "fuse: device not found\|fusermount3: mount failed\|Operation not permitted\|Permission denied" "$T/mount.log"; then
		skip "FUSE mounts are not allowed here: $(head -1 "$T/mount.log")"
	fi
	cat "$T/mount.log"
	fail "cow mount did not come up"
}
umount_fs() {
	"$COW" umount "$MNT" || fail "cow umount"
	wait "$PID" || fail "cow mount exited $?: $(cat "$T/mount.log")"
	PID=
}
# Drop the page cache, so reads reach the daemon.
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}
