#!/bin/sh
# Restart from a saved image: kv serves at once (lazy restore) and right:
# reads and writes during the restore, a BGSAVE asked while it runs, eager
# restore, and images that are damaged are refused with a message.
#   test_kv_restart.sh KV_BINARY [KEYS]
set -u
KV=$1
n=${2:-100000}
. "$(dirname "$0")/lib.sh"
need redis-cli
size=1024
kv_start --maxmemory 1g
gen_set "$n" v1 $size | R --pipe >"$DIR/pipe.out" 2>&1 || fail "load: $(cat "$DIR/pipe.out")"
expect "Background saving started" bgsave
wait_save
[ "$(info rdb_last_bgsave_status)" = ok ] || fail "BGSAVE: $(info cow_save_last_error)"
kv_stop nosave
cp "$DIR/kv.img" "$DIR/v1.img"

# 1. Lazy restore: the first request is answered from the image at once.
kv_start --maxmemory 1g
expect "v1:7:$(gen_expect 8 v1 $size | tail -1 | cut -c6-)" get key:000000000007
backend=$(info cow_restore_backend)
echo "restore backend $backend, usable after $(info cow_restore_usable_usec) us," \
	"in progress at first INFO: $(info cow_restore_in_progress)"
# Writes while pages may still be missing, and a BGSAVE asked meanwhile.
expect OK set key:000000000003 during
expect OK set newkey during
case "$(R bgsave)" in
"Background saving started" | "Background saving scheduled") ;;
*) fail "BGSAVE during restore" ;;
esac
wait_save
[ "$(info cow_restore_in_progress)" = 0 ] || fail "restore still running after the save"
[ "$(info rdb_last_bgsave_status)" = ok ] || fail "BGSAVE: $(info cow_save_last_error)"
expect $((n + 1)) dbsize
kv_stop nosave

# 2. The image saved from a restoring heap, restored eagerly.
kv_start --maxmemory 1g --restore eager
[ "$(info cow_restore_backend)" = eager ] || fail "--restore eager ran $(info cow_restore_backend)"
gen_expect "$n" v1 $size | sed "4s/.*/during/" >"$DIR/want"
fetch "$n" >"$DIR/got"
cmp -s "$DIR/want" "$DIR/got" || fail "eager restore of the second image differs"
expect during get newkey
kv_stop nosave

# 3. Damaged images are refused, with a message, exit 1; never a crash.
for damage in truncate garbage odd magic; do
	cp "$DIR/v1.img" "$DIR/kv.img"
	case $damage in
	truncate) truncate -s 8192 "$DIR/kv.img" ;;
	garbage) head -c 65536 /dev/urandom >"$DIR/kv.img" ;;
	odd) truncate -s 5000 "$DIR/kv.img" ;;
	magic) printf 'XXXX' | dd of="$DIR/kv.img" conv=notrunc 2>/dev/null ;;
	esac
	: >"$DIR/kv.log"
	"$KV" --port 1 --dir "$DIR" --maxmemory 1g 2>>"$DIR/kv.log"
	rc=$?
	[ $rc -eq 1 ] || fail "$damage image: exit $rc, want 1"
	grep -q "cannot restore" "$DIR/kv.log" || fail "$damage image: no message"
	echo "$damage image refused: $(cut -d: -f2- "$DIR/kv.log" | head -1)"
done
# An image bigger than --maxmemory.
cp "$DIR/v1.img" "$DIR/kv.img"
"$KV" --port 1 --dir "$DIR" --maxmemory 16m 2>"$DIR/kv.log"
[ $? -eq 1 ] && grep -q "larger than --maxmemory" "$DIR/kv.log" || fail "oversized image"
echo "ok: restart serves at once ($backend) and refuses damaged images"
