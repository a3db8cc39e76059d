#!/bin/sh
# BGSAVE under writes: load N keys with known values, start redis-benchmark
# -t set over the same keys, BGSAVE, overwrite every key while the save runs,
# then restart from the image: every key must have its value from before the
# save, none from after (the image is the heap at the instant BGSAVE answered).
#   test_kv_bgsave.sh KV_BINARY [BACKEND] [KEYS]   (BACKEND: kv's default, uffd-thread, fork...)
set -u
KV=$1
backend=${2:-default}
n=${3:-200000}
. "$(dirname "$0")/lib.sh"
need redis-cli redis-benchmark
size=1024
if [ "$backend" = default ]; then
	kv_start --maxmemory 1g --save-buffer 8m
else
	kv_start --maxmemory 1g --backend "$backend" --save-buffer 8m
fi

gen_set "$n" pre $size | R --pipe >"$DIR/pipe.out" 2>&1 || fail "load: $(cat "$DIR/pipe.out")"
expect "$n" dbsize

reply=$(R bgsave)
if [ "$reply" != "Background saving started" ]; then
	err=$(info cow_save_last_error)
	case "$err" in
	*"not supported"* | *"not permitted"* | *"ermission"*)
		echo "SKIP: backend $backend cannot run here: $err"
		exit 77
		;;
	esac
	fail "BGSAVE: $reply ($err)"
fi
# Everything from here on is after the instant: redis-benchmark over the
# same keys, and one overwrite of every key.
redis-benchmark -p "$KV_PORT" -t set -r "$n" -d $size -n 100000000 -c 20 -q \
	>"$DIR/bench.out" 2>&1 &
bench=$!
gen_set "$n" post $size | R --pipe >"$DIR/pipe.out" 2>&1 || fail "overwrite: $(cat "$DIR/pipe.out")"
wait_save
kill -0 $bench 2>/dev/null || fail "redis-benchmark stopped: $(tail -c 300 "$DIR/bench.out")"
kill $bench 2>/dev/null
wait $bench 2>/dev/null
[ "$(info rdb_last_bgsave_status)" = ok ] || fail "BGSAVE failed: $(info cow_save_last_error)"
ran=$(info cow_save_backend)
changes=$(info rdb_changes_since_last_save)
traps=$(info cow_save_trapped_writes)
echo "backend $ran: $changes writes after the instant, $traps trapped during the save," \
	"pause $(info latest_fork_usec) us, extra peak $(info cow_save_extra_peak) bytes"
[ "$changes" -ge "$n" ] || fail "only $changes writes after the instant"
extra=$(info cow_save_extra_peak)
[ "$ran" = fork ] || [ "$extra" -le $((8 << 20 + 2 << 20)) ] ||
	fail "extra memory $extra above the 8 MiB buffer and the copier's 2 MiB stage"
kv_stop nosave

# Restart from the image: serves at once, every key as before the save.
kv_start --maxmemory 1g
expect "$n" dbsize
gen_expect "$n" pre $size >"$DIR/want"
fetch "$n" >"$DIR/got"
cmp -s "$DIR/want" "$DIR/got" || {
	diff "$DIR/want" "$DIR/got" | head -4 | cut -c1-80
	fail "the restored image is not the heap at the instant"
}
echo "restore: $(info cow_restore_backend), usable after $(info cow_restore_usable_usec) us"
kv_stop nosave
echo "ok: $n keys restored with their pre-save values ($ran)"
