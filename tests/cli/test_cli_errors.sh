#!/bin/sh
# Every CLI error path, from a table: the documented exit code, a message on
# stderr that names the cause, nothing on stdout, and the store file not
# changed by a single byte. usage: test_cli_errors.sh PATH/TO/cow
set -u
COW=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export COW_STORE="$dir/s.cow"
"$COW" init >/dev/null
"$COW" map create m >/dev/null
"$COW" put m k v >/dev/null
"$COW" vol create disk 1M >/dev/null
head -c 200000 /dev/urandom | "$COW" vol write disk 0 2>/dev/null
"$COW" snapshot disk@a >/dev/null
"$COW" clone disk@a disk2 >/dev/null
head -c 3000 /dev/urandom >"$dir/garbage"
printf 'COWSTRM\0garbage' >"$dir/badmagic"
"$COW" send disk@a >"$dir/good.stream"
head -c 5000 "$dir/good.stream" >"$dir/cut.stream"
"$COW" list >/dev/null # a clean close: later opens write nothing
: >"$dir/empty.cow"
cp "$COW_STORE" "$dir/short.cow"
truncate -s 12288 "$dir/short.cow"

fails=0
n=0
# exit  stderr-must-contain          command...
while IFS='|' read -r want pattern cmd; do
	[ -z "$want" ] && continue
	n=$((n + 1))
	before=$(sha256sum "$COW_STORE" | cut -d' ' -f1)
	sh -c "$cmd" >"$dir/out" 2>"$dir/err"
	got=$?
	after=$(sha256sum "$COW_STORE" | cut -d' ' -f1)
	if [ "$got" -ne "$want" ]; then
		echo "FAIL: '$cmd': exit $got, expected $want ($(cat "$dir/err"))"
		fails=$((fails + 1))
	fi
	if ! grep -q -- "$pattern" "$dir/err"; then
		echo "FAIL: '$cmd': stderr lacks '$pattern': $(cat "$dir/err")"
		fails=$((fails + 1))
	fi
	if [ "$before" != "$after" ]; then
		echo "FAIL: '$cmd' changed the store file"
		fails=$((fails + 1))
	fi
done <<TABLE
2|no command|"$COW" nosuchcommand
2|expected: cow put|"$COW" put m
2|no store|env -u COW_STORE "$COW" get m k
1|nothing.cow: no such file|"$COW" -s "$dir/nothing.cow" get m k
3|garbage: not a cowkit store|"$COW" -s "$dir/garbage" list
3|empty.cow: not a cowkit store|"$COW" -s "$dir/empty.cow" get m k
4|short.cow: damaged|"$COW" -s "$dir/short.cow" get m k
4|short.cow: damaged|"$COW" -s "$dir/short.cow" list
1|has no key|"$COW" get m nokey
1|map 'nomap'|"$COW" get nomap k
1|has no key|"$COW" del m nokey
3|already exists|"$COW" map create m
2|invalid argument|"$COW" map create 'a@b'
2|invalid argument|"$COW" snapshot disk@a@b
3|already exists|"$COW" snapshot disk@a
1|not found|"$COW" clone disk@zzz x
3|depend|"$COW" destroy disk@a
3|depend|"$COW" destroy disk
1|not found|"$COW" destroy nothing
1|not found|"$COW" rollback disk@zzz
2|invalid argument|"$COW" promote disk
3|another type|"$COW" get disk k
3|out of range|"$COW" vol read disk 1M 1
3|out of range|printf x | "$COW" vol write disk 2M
2|bad --limit|"$COW" scan m --limit x
2|bad --limit '1e3'|"$COW" scan m --limit 1e3
2|bad --limit '-1'|"$COW" scan m --limit -1
2|bad OFFSET '1e30': expected a whole number of bytes|printf x | "$COW" vol write disk 1e30
2|bad OFFSET 'inf'|printf x | "$COW" vol write disk inf
2|bad OFFSET 'nan'|printf x | "$COW" vol write disk nan
2|bad OFFSET '-1'|printf x | "$COW" vol write disk -1
2|bad OFFSET '1.5'|printf x | "$COW" vol write disk 1.5
2|bad OFFSET '0x10'|printf x | "$COW" vol write disk 0x10
2|bad OFFSET ' 1'|printf x | "$COW" vol write disk ' 1'
2|bad OFFSET '1 '|printf x | "$COW" vol write disk '1 '
2|bad OFFSET '1KK'|printf x | "$COW" vol write disk 1KK
2|bad OFFSET '': empty|printf x | "$COW" vol write disk ''
2|at most 18446744073709551615|printf x | "$COW" vol write disk 18446744073709551616
3|out of range|printf x | "$COW" vol write disk 18446744073709551615
2|bad SIZE '16E': too large|"$COW" vol create big 16E
2|bad SIZE '1.5M'|"$COW" vol resize disk 1.5M
2|bad LENGTH 'inf'|"$COW" vol read disk 0 inf
2|past 2^64-1|"$COW" vol read disk 18446744073709551615 2
2|bad --size '1e30'|"$COW" tour --size 1e30
2|bad --step '1.5'|"$COW" tour --step 1.5
2|bad --dirty 'inf'|"$COW" mem checkpoint --dirty inf
2|bad --size '1M '|"$COW" mem restore --size '1M '
2|bad --watch 'nan'|"$COW" share 1 --watch nan
2|bad --count '1e3'|"$COW" share 1 --watch 1 --count 1e3
2|expected|"$COW" diff disk@a
1|not found|"$COW" diff disk@a disk@zzz
3|malformed or truncated|"$COW" recv x < "$dir/garbage"
3|malformed or truncated|"$COW" recv x < "$dir/badmagic"
3|malformed or truncated|"$COW" recv x < "$dir/cut.stream"
3|already exists|"$COW" recv disk < "$dir/good.stream"
2|TAB|printf 'no-tab-here\n' | "$COW" load m
2|bad escape|printf 'k\\x-1\tv\n' | "$COW" load m
2|bad escape|printf 'k\\x 1\tv\n' | "$COW" load m
2|bad escape|printf 'k\\x+f\tv\n' | "$COW" load m
2|bad escape|printf 'k\\x4\tv\n' | "$COW" load m
2|-t takes|"$COW" list -t bogus
1|not found|"$COW" export nothing "$dir/out.img"
1|cannot open|"$COW" import "$dir/nofile" x
TABLE
echo "$n error paths checked"
[ "$fails" -eq 0 ] || { echo "$fails checks failed"; exit 1; }
