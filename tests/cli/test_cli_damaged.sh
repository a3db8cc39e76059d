#!/bin/sh
# A damaged store is exit 4 with "damaged" on stderr, from every command,
# and never "not a cowkit store": that message (exit 3) is only for a file
# that never was a store. A tail that is not a whole block (a full disk
# during a grow) is either ignored, so the store opens with its data, or
# reported as damage; never as "not a cowkit store".
# usage: test_cli_damaged.sh PATH/TO/cow
set -u
COW=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export COW_LOG=off
good="$dir/good.cow"
"$COW" -s "$good" init >/dev/null
"$COW" -s "$good" map create m >/dev/null
"$COW" -s "$good" put m k v >/dev/null
"$COW" -s "$good" list >/dev/null # a clean close

fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
# poke FILE OFFSET: flip one byte (to 0xff, or 0x00 if it was 0xff)
poke() {
	old=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	if [ "$old" = 255 ]; then new='\000'; else new='\377'; fi
	printf "$new" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
# damaged NAME FILE: every command reports damage
damaged() {
	for cmd in "get m k" "scan m" "list" "stat" "put m k2 v2" "fsck"; do
		# shellcheck disable=SC2086
		"$COW" -s "$2" $cmd >"$dir/out" 2>"$dir/err"
		got=$?
		[ "$got" -eq 4 ] || fail "$1: '$cmd' exited $got, expected 4: $(cat "$dir/err")"
		grep -qi "damage" "$dir/err" "$dir/out" ||
			fail "$1: '$cmd' does not say damaged: $(cat "$dir/err" "$dir/out")"
		! grep -q "not a cowkit store" "$dir/err" "$dir/out" ||
			fail "$1: '$cmd' calls a damaged store not a store"
		grep -q "$2" "$dir/err" "$dir/out" || fail "$1: '$cmd' does not name the file"
	done
}

# Both superblock slots fail their checksum (magic intact): nothing verifies.
cp "$good" "$dir/slots.cow"
poke "$dir/slots.cow" 16
poke "$dir/slots.cow" $((4096 + 16))
damaged "both superblock slots bad" "$dir/slots.cow"

# The file cut short: the newest commit refers past its end.
cp "$good" "$dir/short.cow"
truncate -s 12288 "$dir/short.cow"
damaged "truncated" "$dir/short.cow"

# A tail that is not a whole 4096-byte block.
for tail in 1 3000; do
	cp "$good" "$dir/tail.cow"
	head -c "$tail" /dev/zero >>"$dir/tail.cow"
	"$COW" -s "$dir/tail.cow" get m k >"$dir/out" 2>"$dir/err"
	got=$?
	if [ "$got" -eq 0 ]; then
		[ "$(cat "$dir/out")" = v ] || fail "odd tail $tail: get printed '$(cat "$dir/out")'"
	elif [ "$got" -ne 4 ]; then
		fail "odd tail $tail: exit $got, expected 0 (tail ignored) or 4: $(cat "$dir/err")"
	fi
	! grep -q "not a cowkit store" "$dir/err" || fail "odd tail $tail: called not a store"
done

# Files that never were a store: exit 3, "not a cowkit store", not "damaged".
: >"$dir/empty.cow"
head -c 8192 /dev/urandom >"$dir/random.cow"
for f in "$dir/empty.cow" "$dir/random.cow"; do
	"$COW" -s "$f" get m k >"$dir/out" 2>"$dir/err"
	got=$?
	[ "$got" -eq 3 ] || fail "$f: exit $got, expected 3"
	grep -q "$f: not a cowkit store" "$dir/err" || fail "$f: stderr: $(cat "$dir/err")"
	! grep -qi "damage" "$dir/err" || fail "$f: a non-store called damaged"
done

[ "$fails" -eq 0 ] || { echo "$fails checks failed"; exit 1; }
echo "damaged stores report exit 4"
