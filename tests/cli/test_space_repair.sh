#!/bin/sh
# `cow scrub` sees a damaged space-map block, reads still work, and
# `cow fsck --repair` fixes it.  usage: test_space_repair.sh PATH/TO/cow
set -u
COW=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export COW_STORE="$dir/s.cow"
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
run() { # run EXPECTED_EXIT COMMAND...: output in $dir/out
	want=$1
	shift
	"$@" >"$dir/out" 2>"$dir/err"
	got=$?
	[ "$got" -eq "$want" ] || { fail "$*: exit $got, expected $want"; cat "$dir/out" "$dir/err"; }
}

run 0 "$COW" init
run 0 "$COW" map create m
i=0
while [ $i -lt 20 ]; do
	run 0 "$COW" put m "k$i" "value $i"
	i=$((i + 1))
done
run 0 "$COW" snapshot m@s

# The newest superblock (higher gen at offset 16) and its space-map base (offset 64).
u64() { od -An -t u8 -j "$2" -N 8 "$1" | tr -d ' '; }
slot=0
[ "$(u64 "$COW_STORE" 4112)" -gt "$(u64 "$COW_STORE" 16)" ] && slot=1
blk=$(u64 "$COW_STORE" $((slot * 4096 + 64)))
[ "$blk" -gt 1 ] || fail "no space-map base found (block '$blk')"
# Flip one byte in the middle of it.
off=$((blk * 4096 + 2000))
byte=$(od -An -t u1 -j $off -N 1 "$COW_STORE" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte + 1) % 256)))" |
	dd of="$COW_STORE" bs=1 seek=$off conv=notrunc 2>/dev/null

run 0 "$COW" get m k7
[ "$(cat "$dir/out")" = "value 7" ] || fail "get after damage: $(cat "$dir/out")"
run 4 "$COW" scrub
grep -q "DAMAGE (space map): block $blk" "$dir/out" || fail "scrub output: $(cat "$dir/out")"
run 4 "$COW" fsck
grep -q "(space map)" "$dir/out" || fail "fsck output: $(cat "$dir/out")"
run 0 "$COW" fsck --repair
grep -q "0 problems" "$dir/out" || fail "fsck --repair output: $(cat "$dir/out")"
run 0 "$COW" scrub
run 0 "$COW" fsck
run 0 "$COW" put m after repair
run 0 "$COW" get m@s k19
[ "$(cat "$dir/out")" = "value 19" ] || fail "snapshot after repair: $(cat "$dir/out")"

[ $fails -eq 0 ] && echo "space map repair: ok"
exit $((fails > 0))
