#!/bin/sh
# kill -9 of the daemon while files are written and fsynced and a tar x
# runs: after each kill the fs mounts again, every file whose fsync
# returned is there with its bytes, fsck is clean, and the tree reads.
#   test_fs_crash.sh COW [ROUNDS]
COW=$1
ROUNDS=${2:-4}
. "$(dirname "$0")/lib.sh"
need tar python3
SRC=$(cd "$(dirname "$0")/../.." && pwd)
tar cf "$T/src.tar" -C "$SRC" src include docs || fail "tar c"
cow init >/dev/null && cow fs create home || fail "fs create"
: >"$T/synced"
for round in $(seq "$ROUNDS"); do
	mount_fs home --commit 200
	# A writer: files of known bytes, each recorded once its fsync returned.
	python3 - "$MNT" "$T/synced" "$round" <<'PY' &
import os, sys
mnt, log, rnd = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(os.path.join(mnt, "w"), exist_ok=True)
i = 0
while True:
    name = f"w/r{rnd}-{i}"
    data = (f"{name}:" * (1 + i % 3000)).encode()
    try:
        fd = os.open(os.path.join(mnt, name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        break
    with open(log, "a") as f:
        f.write(f"{name} {len(data)}\n")
    i += 1
PY
	writer=$!
	(mkdir -p "$MNT/t$round" && tar xf "$T/src.tar" -C "$MNT/t$round") 2>/dev/null &
	tarpid=$!
	sleep "0.$((3 + round % 5))"
	kill -9 "$PID"
	wait "$PID" 2>/dev/null
	PID=
	wait "$writer" "$tarpid" 2>/dev/null
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	cow fsck >/dev/null || fail "round $round: fsck after kill -9: $(cow fsck 2>&1 | tail -3)"
	mount_fs home
	n=0
	while read -r name len; do
		[ -f "$MNT/$name" ] || fail "round $round: fsynced $name is gone"
		[ "$(stat -c %s "$MNT/$name")" = "$len" ] || fail "round $round: $name has the wrong size"
		n=$((n + 1))
	done <"$T/synced"
	python3 - "$MNT" "$T/synced" <<'PY' || fail "round $round: an fsynced file has the wrong bytes"
import sys
mnt, log = sys.argv[1], sys.argv[2]
for line in open(log):
    name, n = line.split()
    want = (f"{name}:" * (1 + int(name.rsplit("-", 1)[1]) % 3000)).encode()
    got = open(f"{mnt}/{name}", "rb").read()
    if got != want:
        print("wrong bytes in", name)
        sys.exit(1)
PY
	find "$MNT" -type f -exec cat {} + >/dev/null || fail "round $round: the tree does not read"
	umount_fs
	echo "round $round: $n fsynced files intact after kill -9"
done
[ "$n" -gt 0 ] || fail "no file was fsynced before the kills: nothing was tested"
cow fsck >/dev/null || fail "fsck at the end"
echo "ok: $ROUNDS kills of the daemon, every fsynced file intact, fsck clean"
