#!/bin/sh
# qemu-img convert of a 256 MiB raw image (random data with holes) into a
# served volume, qemu-img compare back; qemu-img map and nbdinfo --map show
# the holes; nbdcopy both ways and to null:; a resize is seen by the next
# connection. usage: test_nbd_convert.sh COW PLUGIN
. "$(dirname "$0")/lib.sh"
need qemu-img nbdinfo nbdcopy

# 256 MiB: 1 MiB chunks, a seeded half of them random, the rest zero.
python3 - "$T/src.raw" <<'PY'
import os, random, sys
rnd = random.Random(16)
with open(sys.argv[1], "wb") as f:
    f.truncate(256 << 20)
    for i in range(256):
        if rnd.random() < 0.5:
            f.seek(i << 20)
            f.write(os.urandom(1 << 20))
PY
"$COW" init >/dev/null
"$COW" vol create disk 256M
start disk

qemu-img convert -n -f raw -O raw "$T/src.raw" "$URI" || fail "qemu-img convert"
qemu-img compare -f raw -F raw "$T/src.raw" "$URI" || fail "qemu-img compare"
echo "ok: qemu-img convert, then compare"

# The holes: every zero chunk is reported as not data, the rest as data.
qemu-img map --output=json -f raw "$URI" >"$T/map.json" || fail "qemu-img map"
nbdinfo --map "$URI" >"$T/nbdmap.txt" || fail "nbdinfo --map"
python3 - "$T/src.raw" "$T/map.json" "$T/nbdmap.txt" <<'PY' || fail "maps do not match the image"
import json, sys
src = open(sys.argv[1], "rb").read()
def is_data(off, ln):
    return src[off:off + ln] != bytes(ln)
qmap = json.load(open(sys.argv[2]))
assert sum(e["length"] for e in qmap) == len(src)
data = sum(e["length"] for e in qmap if e["data"])
for e in qmap:
    for off in range(e["start"], e["start"] + e["length"], 1 << 20):
        assert is_data(off, 1 << 20) == e["data"], ("qemu-img map", e)
nb = [l.split() for l in open(sys.argv[3])]
for start, length, typ, *_ in nb:
    for off in range(int(start), int(start) + int(length), 1 << 20):
        assert is_data(off, 1 << 20) == (int(typ) & 1 == 0), ("nbdinfo --map", start, typ)
print("ok: qemu-img map and nbdinfo --map: %d MiB data, %d MiB holes"
      % (data >> 20, (len(src) - data) >> 20))
PY

# nbdcopy out (holes stay holes), to null:, and in, into a second volume.
nbdcopy "$URI" "$T/out.raw" || fail "nbdcopy out"
cmp "$T/src.raw" "$T/out.raw" || fail "nbdcopy out differs"
nbdcopy "$URI" null: || fail "nbdcopy to null:"
stop
"$COW" vol create disk2 256M
start disk2
nbdcopy "$T/src.raw" "$URI" || fail "nbdcopy in"
nbdcopy "$URI" - | cmp - "$T/src.raw" || fail "nbdcopy in differs"
echo "ok: nbdcopy in, out, and to null:"

# Holes cost nothing in the store: about half the image is allocated.
stop
used=$("$COW" list --json | python3 -c '
import json, sys
print(max(o.get("referenced", 0) for o in json.load(sys.stdin) if o["name"] == "disk2"))' \
	2>/dev/null || echo 0)
[ "$used" -gt 0 ] && [ "$used" -lt $((160 << 20)) ] || fail "disk2 references $used bytes"
echo "ok: disk2 references $((used >> 20)) MiB for 140 MiB of data"

# A resize is seen by the next connection.
start disk
"$COW" vol resize disk 300M
[ "$(nbdinfo --size "$URI")" = $((300 << 20)) ] || fail "size after resize: $(nbdinfo --size "$URI")"
stop
"$COW" fsck >/dev/null || fail "fsck"
echo "ok: resize seen by the next connection; fsck clean"
