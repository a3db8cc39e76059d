#!/bin/sh
# kill -9 nbdkit during a stream of qemu-io writes with a flush after every
# round; after each kill `cow fsck` is clean and, once restarted, every write
# of every round whose flush was acknowledged reads back (read -P), in this
# volume and in those of earlier kills. usage: test_nbd_crash.sh COW PLUGIN [KILLS]
. "$(dirname "$0")/lib.sh"
need qemu-io
kills=${3:-3}

"$COW" init >/dev/null
# Round r of kill k writes 4 slots of 64 KiB never written before in volume
# dK (at unaligned offsets, unaligned lengths), flushes, then reads its first
# write back: that read's line in the output says the flush was acknowledged.
gen() { # gen K -> $T/w.K, $T/plan.K
	python3 - "$1" "$T" <<'PY'
import random, sys
k, t = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(77 + k)
slots = list(range(1024))
rnd.shuffle(slots)
slot = 64 << 10
with open("%s/w.%d" % (t, k), "w") as w, open("%s/plan.%d" % (t, k), "w") as p:
    for r in range(256):
        first = None
        for s in slots[4 * r:4 * r + 4]:
            off = s * slot + rnd.randrange(0, 4096)
            ln = rnd.randrange(1, slot - 4096)
            pat = (r + 1) & 0xff or 1
            w.write("write -P %d %d %d\n" % (pat, off, ln))
            p.write("%d %d %d %d\n" % (r, pat, off, ln))
            first = first or (pat, off, ln)
        w.write("flush\nread -P %d %d %d\n" % first)
PY
}
# verify K: reads of every write in the rounds of dK acknowledged as flushed.
verify() {
	awk -v n="$(cat "$T/flushed.$1")" '$1 < n { print "read -P " $2 " " $3 " " $4 }' \
		"$T/plan.$1" >"$T/r.$1"
	start "d$1"
	qemu-io -t writeback -f raw "$URI" <"$T/r.$1" >"$T/v.out" 2>&1 || true
	stop
	if grep -q -E -i 'fail|error' "$T/v.out"; then
		grep -E -i -m 5 'fail|error' "$T/v.out"
		fail "kill $1: a flushed write is missing or wrong"
	fi
}

k=0
while [ $k -lt "$kills" ]; do
	"$COW" vol create "d$k" 64M
	gen $k
	start "d$k"
	qemu-io -t writeback -f raw "$URI" <"$T/w.$k" >"$T/io.$k" 2>&1 &
	io=$!
	sleep "$(python3 -c "import random; print(random.Random($k).uniform(0.02, 0.25))")"
	kill -9 "$SERVER"
	wait "$SERVER" 2>/dev/null || true
	SERVER=
	wait $io || true
	# Rounds acknowledged: the marker read after round r's flush succeeded.
	python3 - "$T/plan.$k" "$T/io.$k" >"$T/flushed.$k" <<'PY'
import re, sys
firsts = {}
for line in open(sys.argv[1]):
    r, pat, off, ln = map(int, line.split())
    firsts.setdefault(r, off)
done = {int(m.group(1)) for m in re.finditer(r"read \d+/\d+ bytes at offset (\d+)", open(sys.argv[2]).read())}
n = 0
while n in firsts and firsts[n] in done:
    n += 1
print(n)
PY
	"$COW" fsck >/dev/null || fail "fsck after kill $k"
	i=0
	while [ $i -le $k ]; do
		verify $i
		i=$((i + 1))
	done
	echo "ok: kill $k: $(cat "$T/flushed.$k") of 256 rounds flushed, all read back; fsck clean"
	k=$((k + 1))
done
