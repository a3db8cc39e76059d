#!/bin/sh
# qemu-io write patterns (-P) at seeded random offsets and sizes, unaligned
# ones included, read back with read -P before and after a restart of the
# server; through `cow serve`, which must print the URI and stop cleanly on
# SIGINT. usage: test_nbd_qemu_io.sh COW PLUGIN [ROUNDS]
. "$(dirname "$0")/lib.sh"
need qemu-io
rounds=${3:-2}
export COW_NBDKIT_PLUGIN=$PLUGIN

"$COW" init >/dev/null
"$COW" vol create disk 64M

serve() {
	rm -f "$T/uri"
	"$COW" serve disk --socket "$SOCK" >"$T/uri" 2>>"$T/nbdkit.log" &
	SERVER=$!
	_w=0
	while [ ! -s "$T/uri" ]; do
		kill -0 "$SERVER" 2>/dev/null || fail "cow serve exited"
		_w=$((_w + 1))
		[ $_w -lt 500 ] || fail "cow serve printed no URI in 10 s"
		sleep 0.02
	done
	[ "$(cat "$T/uri")" = "$URI" ] || fail "cow serve printed '$(cat "$T/uri")', not $URI"
}
unserve() {
	kill -INT "$SERVER"
	wait "$SERVER" || fail "cow serve exited with $? after SIGINT"
	SERVER=
}

# Writes: one per 256 KiB slot, at a random offset in it and of a random
# length (1 byte .. 200 KiB, often not a multiple of 512), so no two overlap.
# Pass N writes pattern seed+N to a random two thirds of the slots (pass 0:
# all), so later passes overwrite earlier ones. Gaps must read as zeros.
gen() { # gen PASS -> $T/w.PASS (qemu-io commands), $T/r.PASS (checks of everything so far)
	python3 - "$1" "$T" <<'PY'
import random, sys
p, t = int(sys.argv[1]), sys.argv[2]
slot = 256 << 10
state = {}
for q in range(p + 1):
    rnd = random.Random(1000 + q)
    geo = random.Random(7)  # the same offsets and lengths every pass
    writes = []
    for s in range(256):
        off = s * slot + geo.choice([0, 1, 511, 512, 4095, 4096, geo.randrange(slot // 2)])
        ln = geo.choice([1, 7, 512, 4096, 4097, 65536, geo.randrange(1, 200 << 10)])
        ln = min(ln, (s + 1) * slot - off)  # within the slot
        if q == 0 or rnd.random() < 2 / 3:
            pat = (0x11 * (q + 1) + s) & 0xff or 1
            writes.append((off, ln, pat))
            state[s] = (off, ln, pat)
with open("%s/w.%d" % (t, p), "w") as f:
    for off, ln, pat in writes:
        f.write("write -P %d %d %d\n" % (pat, off, ln))
    if p % 2 == 0:
        f.write("flush\n")  # odd passes end unflushed: a clean stop commits them
with open("%s/r.%d" % (t, p), "w") as f:
    for s, (off, ln, pat) in sorted(state.items()):
        f.write("read -P %d %d %d\n" % (pat, off, ln))
        end = off + ln
        if end < (s + 1) * slot:
            f.write("read -P 0 %d %d\n" % (end, (s + 1) * slot - end))
        if off > s * slot:
            f.write("read -P 0 %d %d\n" % (s * slot, off - s * slot))
PY
}
check() { # check FILE: run qemu-io commands, fail on any error or mismatch
	qemu-io -t writeback -f raw "$URI" <"$1" >"$T/io.out" 2>&1 || true
	if grep -q -E -i 'fail|error|mismatch' "$T/io.out"; then
		grep -E -i -m 5 'fail|error|mismatch' "$T/io.out"
		fail "qemu-io $(basename "$1")"
	fi
	n=$(grep -o -E '(^|> )(read|wrote) [0-9]' "$T/io.out" | wc -l)
	[ "$n" -ge "$(grep -c -E '^(read|write) ' "$1")" ] || fail "qemu-io ran $n of the commands in $1"
}

serve
p=0
while [ $p -lt "$rounds" ]; do
	gen $p
	check "$T/w.$p"
	check "$T/r.$p"
	unserve
	serve
	check "$T/r.$p"
	echo "ok: pass $p: $(grep -c write "$T/w.$p") writes read back before and after a restart"
	p=$((p + 1))
done
unserve
"$COW" fsck >/dev/null || fail "fsck"
echo "ok: fsck clean"
