#!/bin/sh
# A user who may read the store but not write it (a 0644 file in a directory
# they cannot write) can run every command that only reads, and running
# them creates and changes nothing. Commands that write fail with exit 3 and
# a message that names the file. Needs root, to run the commands as nobody.
# usage: test_cli_readonly.sh PATH/TO/cow
set -u
COW=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
skip() {
	echo "SKIP: $*"
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root to run commands as another user"
id nobody >/dev/null 2>&1 || skip "there is no user nobody"
uid=$(id -u nobody)
gid=$(id -g nobody)
if setpriv --reuid="$uid" --regid="$gid" --clear-groups true 2>/dev/null; then
	as_nobody() { setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"; }
elif runuser -u nobody -- true 2>/dev/null; then
	as_nobody() { runuser -u nobody -- "$@"; }
else
	skip "neither setpriv nor runuser can run a command as nobody here"
fi
as_nobody "$COW" --version >/dev/null 2>&1 ||
	skip "nobody cannot run $COW (is the build in a directory only its owner may enter?)"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 0755 "$dir"
mkdir "$dir/ro"
store="$dir/ro/s.cow"
"$COW" -s "$store" init >/dev/null
"$COW" -s "$store" map create m >/dev/null
"$COW" -s "$store" put m k v >/dev/null
"$COW" -s "$store" vol create disk 64K >/dev/null
printf 'data' | "$COW" -s "$store" vol write disk 0 2>/dev/null
"$COW" -s "$store" snapshot disk@a >/dev/null
"$COW" -s "$store" list >/dev/null # a clean close
rm -f "$store.lock" # whatever the library left beside the store is not for readers to need
chmod 0644 "$store"
chmod 0755 "$dir/ro"
before_files=$(ls -A "$dir/ro")
before_sum=$(sha256sum "$store" | cut -d' ' -f1)

fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
# reads WANT_STDOUT COMMAND...: as nobody, exit 0 and, if given, this output
reads() {
	want=$1
	shift
	(cd "$dir" && as_nobody "$COW" -s "$store" "$@") >"$dir/out" 2>"$dir/err"
	got=$?
	[ "$got" -eq 0 ] || fail "nobody: cow $*: exit $got: $(cat "$dir/err")"
	[ -z "$want" ] || [ "$(cat "$dir/out")" = "$want" ] ||
		fail "nobody: cow $*: printed '$(cat "$dir/out")', expected '$want'"
}
reads v get m k
reads "$(printf 'k\tv')" scan m
reads "" list
reads "" stat
reads "" du
reads "" diff disk@a disk
reads "" vol read disk 0 4
reads "" fsck
reads "" scrub
(cd "$dir" && as_nobody "$COW" -s "$store" send disk@a >/dev/null 2>"$dir/err") ||
	fail "nobody: cow send: $(cat "$dir/err")"

# A write is refused, naming the file and the cause, and changes nothing.
(cd "$dir" && as_nobody "$COW" -s "$store" put m k2 v2) >"$dir/out" 2>"$dir/err"
got=$?
[ "$got" -eq 3 ] || fail "nobody: put: exit $got, expected 3: $(cat "$dir/err")"
grep -q "$store: permission denied" "$dir/err" || fail "nobody: put: stderr: $(cat "$dir/err")"

[ "$(ls -A "$dir/ro")" = "$before_files" ] ||
	fail "files appeared beside the store: $(ls -A "$dir/ro" | tr '\n' ' ')"
[ "$(sha256sum "$store" | cut -d' ' -f1)" = "$before_sum" ] || fail "the store file changed"
[ "$fails" -eq 0 ] || { echo "$fails checks failed"; exit 1; }
echo "a read-only user can read, check and send; writes are refused"
