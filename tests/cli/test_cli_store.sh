#!/bin/sh
# The store commands of `cow`: output, exit codes, and that failed commands
# change nothing.  usage: test_cli_store.sh PATH/TO/cow
set -u
COW=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export COW_STORE="$dir/s.cow"
fails=0
check() { # check DESCRIPTION EXPECTED_EXIT COMMAND...
	desc=$1 want=$2
	shift 2
	"$@" >"$dir/out" 2>"$dir/err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL: $desc: exit $got, expected $want"
		cat "$dir/err"
		fails=$((fails + 1))
	fi
}
expect_out() { # expect_out DESCRIPTION EXPECTED
	if [ "$(cat "$dir/out")" != "$2" ]; then
		printf "FAIL: %s: got '%s', expected '%s'\n" "$1" "$(cat "$dir/out")" "$2"
		fails=$((fails + 1))
	fi
}
expect_err() { # expect_err DESCRIPTION SUBSTRING
	if ! grep -q -- "$2" "$dir/err"; then
		echo "FAIL: $1: stderr lacks '$2': $(cat "$dir/err")"
		fails=$((fails + 1))
	fi
}

check "version" 0 "$COW" --version
check "help" 0 "$COW" help
check "help put" 0 "$COW" help put
check "help for nothing" 2 "$COW" help nosuchcommand
check "unknown command" 2 "$COW" frobnicate
check "no store" 2 env -u COW_STORE "$COW" list
check "init" 0 "$COW" init
check "init twice" 3 "$COW" init
expect_err "init twice says why" "already exists"
check "map create" 0 "$COW" map create users
check "map create again" 3 "$COW" map create users
check "bad map name" 2 "$COW" map create "a@b"
check "put" 0 "$COW" put users alice 1
check "put spaces" 0 "$COW" put users bob "two words"
check "get" 0 "$COW" get users bob
expect_out "get prints the value" "two words"
check "get missing key" 1 "$COW" get users zed
expect_err "missing key names map and key" "map 'users' has no key 'zed'"
check "get missing map" 1 "$COW" get nomap x
expect_err "missing map is named" "map 'nomap'"
check "del missing" 1 "$COW" del users zed
printf 'hello' >"$dir/v"
check "put from stdin" 0 sh -c "\"$COW\" put users carol - < \"$dir/v\""
check "get stdin value" 0 "$COW" get users carol
expect_out "stdin value" "hello"
printf 'k1\tv1\nk\\ttab\tv\\nnl\n' >"$dir/load.tsv"
check "load" 0 sh -c "\"$COW\" load users < \"$dir/load.tsv\""
check "scan" 0 "$COW" scan users
expect_out "scan output" "$(printf 'alice\t1\nbob\ttwo words\ncarol\thello\nk\\ttab\tv\\nnl\nk1\tv1')"
check "scan prefix+limit" 0 "$COW" scan users --prefix k1 --limit 1
expect_out "prefix scan" "$(printf 'k1\tv1')"
check "scan limit" 0 "$COW" scan users --limit 2
expect_out "limit" "$(printf 'alice\t1\nbob\ttwo words')"
check "scan bad limit" 2 "$COW" scan users --limit x
# A load with a bad line changes nothing.
printf 'new1\tx\nbroken-line-without-tab\n' >"$dir/bad.tsv"
check "bad load" 2 sh -c "\"$COW\" load users < \"$dir/bad.tsv\""
check "bad load changed nothing" 1 "$COW" get users new1
# scan | load round-trips through the escapes.
"$COW" scan users >"$dir/dump"
check "map for copy" 0 "$COW" map create copy
check "load dump" 0 sh -c "\"$COW\" load copy < \"$dir/dump\""
check "scan copy" 0 "$COW" scan copy
if ! cmp -s "$dir/out" "$dir/dump"; then
	echo "FAIL: scan | load does not round-trip"
	fails=$((fails + 1))
fi
check "del" 0 "$COW" del users alice
check "deleted" 1 "$COW" get users alice
check "list" 0 "$COW" list
grep -q '^users  *map  *4 keys ' "$dir/out" || { echo "FAIL: list: $(cat "$dir/out")"; fails=$((fails + 1)); }
check "stat" 0 "$COW" stat
grep -q '^readers  *0$' "$dir/out" || { echo "FAIL: stat: $(cat "$dir/out")"; fails=$((fails + 1)); }
check "scan --json" 0 "$COW" scan users --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[0]["key"]=="bob" and d[0]["value"]=="two words", d' "$dir/out" ||
	{ echo "FAIL: scan --json: $(cat "$dir/out")"; fails=$((fails + 1)); }
check "stat --json" 0 "$COW" stat --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["readers"]==0 and d["generation"]>0, d' "$dir/out" ||
	{ echo "FAIL: stat --json: $(cat "$dir/out")"; fails=$((fails + 1)); }
check "fsck --json" 0 "$COW" fsck --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["clean"] and d["problems"]==0, d' "$dir/out" ||
	{ echo "FAIL: fsck --json: $(cat "$dir/out")"; fails=$((fails + 1)); }
check "map drop" 0 "$COW" map drop copy
check "dropped" 1 "$COW" scan copy
# Volumes and versions.
head -c 300000 /dev/urandom >"$dir/data"
check "vol create" 0 "$COW" vol create disk 16M
check "vol create bad size" 2 "$COW" vol create disk2 12Q
check "vol write" 0 sh -c "\"$COW\" vol write disk 1000 < \"$dir/data\""
check "vol read" 0 sh -c "\"$COW\" vol read disk 1000 300000 > \"$dir/back\""
cmp -s "$dir/data" "$dir/back" || { echo "FAIL: vol read returns other bytes"; fails=$((fails + 1)); }
check "vol read past end" 3 "$COW" vol read disk 16M 1
# Numbers are exact integers: an offset above 2^53 does not round, and the
# units mean what `cow help vol` says (K = 1024, kB = 1000).
check "vol create 16P" 0 "$COW" vol create big 16P
check "write above 2^53" 0 sh -c "printf abc | \"$COW\" vol write big 9007199254740993"
check "read above 2^53" 0 sh -c "\"$COW\" vol read big 9007199254740992 5 | tr '\\000' ."
expect_out "bytes land at the exact offset" ".abc."
check "vol create 4K" 0 "$COW" vol create k 4K
check "4K is 4096 bytes" 0 "$COW" vol read k 4095 1
check "4K is not more" 3 "$COW" vol read k 4096 1
check "vol create 4kB" 0 "$COW" vol create kb 4kB
check "4kB is 4000 bytes" 0 "$COW" vol read kb 3999 1
check "4kB is not more" 3 "$COW" vol read kb 4000 1
check "1e30 is refused" 2 "$COW" vol create e 1e30
expect_err "the message says what is accepted" "bad SIZE '1e30': expected a whole number of bytes"
check "objects for numbers destroyed" 0 sh -c "\"$COW\" destroy big && \"$COW\" destroy k && \"$COW\" destroy kb"
check "snapshot" 0 "$COW" snapshot disk@a
check "snapshot exists" 3 "$COW" snapshot disk@a
check "write after snapshot" 0 sh -c "printf xyz | \"$COW\" vol write disk 0"
check "diff" 0 "$COW" diff disk@a disk
expect_out "diff names the block" "$(printf 'M\t0\t4096')"
check "diff --json" 0 "$COW" diff disk@a disk --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d==[{"kind":"changed","offset":0,"length":4096}], d' "$dir/out" ||
	{ echo "FAIL: diff --json: $(cat "$dir/out")"; fails=$((fails + 1)); }
check "clone" 0 "$COW" clone disk@a disk2
check "snapshot still old" 0 sh -c "\"$COW\" vol read disk2 1000 300000 > \"$dir/back\""
cmp -s "$dir/data" "$dir/back" || { echo "FAIL: clone lost data"; fails=$((fails + 1)); }
check "destroy origin of a clone" 3 "$COW" destroy disk@a
expect_err "destroy says why" "depend"
check "list json" 0 "$COW" list --json -t snapshot
grep -q '"name": "disk@a"' "$dir/out" || { echo "FAIL: list --json: $(cat "$dir/out")"; fails=$((fails + 1)); }
check "rollback" 0 "$COW" rollback disk@a
check "diff after rollback" 0 "$COW" diff disk@a disk
expect_out "no difference" ""
check "rename" 0 "$COW" rename disk2 disk3
check "rename back" 0 "$COW" rename disk3 disk2
check "rename a snapshot within its object" 0 "$COW" rename disk@a @first
check "rename it back" 0 "$COW" rename disk@first disk@a
check "rename a snapshot to another object" 2 "$COW" rename disk@a disk2@a
check "rename onto a taken name" 3 "$COW" rename disk disk2
check "promote" 0 "$COW" promote disk2
check "destroy old origin" 0 "$COW" destroy -r disk
check "du" 0 "$COW" du disk2
check "du missing" 1 "$COW" du nothing

# send | recv, fsck.
check "snapshot for send" 0 "$COW" snapshot disk2@b
check "send to a terminal refused" 0 true
"$COW" send disk2@b >"$dir/full.stream" || { echo "FAIL: send"; fails=$((fails + 1)); }
check "recv" 0 sh -c "\"$COW\" -s \"$dir/t.cow\" init >/dev/null && \"$COW\" -s \"$dir/t.cow\" recv copy < \"$dir/full.stream\""
expect_out "recv names the snapshot" "received copy@b"
check "recv again" 3 sh -c "\"$COW\" -s \"$dir/t.cow\" recv copy < \"$dir/full.stream\""
expect_err "recv again says unchanged" "store is unchanged"
head -c 1000 "$dir/full.stream" >"$dir/cut.stream"
check "recv truncated" 3 sh -c "\"$COW\" -s \"$dir/t.cow\" recv other < \"$dir/cut.stream\""
expect_err "truncated stream named" "malformed or truncated"
check "fsck clean" 0 "$COW" fsck
check "scrub clean" 0 "$COW" scrub "$dir/t.cow"
check "fsck of nothing" 3 "$COW" fsck "$dir/nonexistent"

# Not a store.
printf 'garbage garbage garbage' >"$dir/junk"
check "junk store" 3 "$COW" -s "$dir/junk" list
expect_err "junk store named" "$dir/junk"

if [ "$fails" -ne 0 ]; then
	echo "$fails checks failed"
	exit 1
fi
echo "all CLI store checks passed"
