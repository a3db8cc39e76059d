#!/bin/sh
# Snapshots of a served disk are consistent at a flush boundary: `cow
# snapshot` from another process while qemu-io writes rounds of writes, each
# round ended by a flush, gives an image equal to the disk after some round
# (never a torn write, never half a round), and later snapshots are later
# rounds. A snapshot is served read-only; a clone of it is served and
# written without touching the snapshot. usage: test_nbd_snapshot.sh COW PLUGIN
. "$(dirname "$0")/lib.sh"
need qemu-io nbdcopy

"$COW" init >/dev/null
"$COW" vol create disk 4M
# 1500 rounds of 4 writes into 64 KiB slots (random offsets and lengths), each
# round one pattern, then a flush.
python3 - "$T" <<'PY'
import random, sys
t = sys.argv[1]
rnd = random.Random(5)
slot = 64 << 10
with open(t + "/w", "w") as w, open(t + "/plan", "w") as p:
    for r in range(1500):
        for _ in range(4):
            s = rnd.randrange(64)
            off = s * slot + rnd.randrange(slot // 2)
            ln = rnd.randrange(1, slot // 2)
            w.write("write -P %d %d %d\n" % (r % 255 + 1, off, ln))
            p.write("%d %d %d %d\n" % (r, r % 255 + 1, off, ln))
        w.write("flush\n")
PY
start disk
qemu-io -t writeback -f raw "$URI" <"$T/w" >"$T/io.out" 2>&1 &
io=$!
during=0
for n in 1 2 3 4; do
	sleep 0.3
	kill -0 $io 2>/dev/null && during=$((during + 1))
	"$COW" snapshot "disk@s$n" >/dev/null || fail "cow snapshot disk@s$n"
done
wait $io || fail "qemu-io"
grep -q -i -E 'fail|error' "$T/io.out" && fail "qemu-io: $(grep -i -m 1 -E 'fail|error' "$T/io.out")"
stop
echo "$during of 4 snapshots were taken while qemu-io was writing"

# Snapshot 1 through NBD, read-only; the others with cow export.
start disk@s1
qemu-io -t writeback -f raw -c 'write -P 1 0 4096' "$URI" 2>&1 | grep -q -i -E 'read-only|permission|failed' ||
	fail "a snapshot was writable over NBD"
nbdcopy "$URI" "$T/s1.raw" || fail "nbdcopy of disk@s1"
stop
for n in 2 3 4; do
	"$COW" export "disk@s$n" "$T/s$n.raw" >/dev/null || fail "cow export disk@s$n"
done
"$COW" export disk "$T/final.raw" >/dev/null

python3 - "$T" <<'PY' || fail "a snapshot is not the disk as of a flush"
import sys
t = sys.argv[1]
snaps = [open("%s/s%d.raw" % (t, n), "rb").read() for n in (1, 2, 3, 4)]
final = open(t + "/final.raw", "rb").read()
disk = bytearray(4 << 20)
rounds = {}
for line in open(t + "/plan"):
    r, pat, off, ln = map(int, line.split())
    rounds.setdefault(r, []).append((pat, off, ln))
found = [None] * 4
if bytes(disk) in snaps:
    for i, s in enumerate(snaps):
        if s == bytes(disk):
            found[i] = -1
for r in sorted(rounds):
    for pat, off, ln in rounds[r]:
        disk[off:off + ln] = bytes([pat]) * ln
    b = bytes(disk)
    for i, s in enumerate(snaps):
        if found[i] is None and s == b:
            found[i] = r
assert bytes(disk) == final, "the final disk is not the last round"
print("snapshots match the disk after rounds", found)
assert None not in found, "snapshot %d matches no flush boundary" % (found.index(None) + 1)
assert found == sorted(found), "snapshots out of order"
PY

# A clone of a snapshot, served and written; the snapshot stays as it was.
"$COW" clone disk@s2 c2 >/dev/null
start c2
qemu-io -t writeback -f raw -c 'write -P 0x5a 1000 100000' -c flush -c 'read -P 0x5a 1000 100000' "$URI" \
	>"$T/c.out" 2>&1
grep -q -i -E 'fail|error' "$T/c.out" && fail "writing the clone: $(cat "$T/c.out")"
stop
"$COW" export disk@s2 "$T/s2again.raw" >/dev/null
cmp -s "$T/s2.raw" "$T/s2again.raw" || fail "writing the clone changed its origin snapshot"
"$COW" fsck >/dev/null || fail "fsck"
echo "ok: clone served and written, origin unchanged; fsck clean"
