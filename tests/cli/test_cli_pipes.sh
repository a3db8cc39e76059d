#!/bin/sh
# Pipelines on one store: a reading command feeding a writing one must never
# wait for each other (each side's open and read transaction take no lock the
# writer holds). usage: test_cli_pipes.sh PATH/TO/cow
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
# within SECONDS COMMAND: run it, fail if it takes longer (a deadlock)
within() {
	limit=$1
	shift
	timeout "$limit" sh -c "$*"
	rc=$?
	[ "$rc" -eq 124 ] && fail "hung for ${limit}s: $*"
	return $rc
}

"$COW" init >/dev/null || exit 1
"$COW" map create a && "$COW" map create b || exit 1
i=0
while [ $i -lt 2000 ]; do
	printf 'k%05d\tvalue %d\n' $i $i
	i=$((i + 1))
done >"$dir/in"
"$COW" load a <"$dir/in" || exit 1
"$COW" snapshot a@s >/dev/null || exit 1

for round in 1 2 3 4 5; do
	within 30 "'$COW' scan a | '$COW' load b" || fail "scan | load, round $round"
	within 30 "'$COW' send a@s | '$COW' recv c$round" || fail "send | recv, round $round"
	# A reader beside a writer that holds its transaction through a slow stdin.
	within 30 "(sleep 1; cat '$dir/in') | '$COW' load b & '$COW' get a k00007 >/dev/null; \
		'$COW' stat >/dev/null; wait" || fail "get and stat beside a load, round $round"
done
[ "$("$COW" scan b | wc -l)" -eq 2000 ] || fail "b does not hold the 2000 keys"
[ "$("$COW" scan c5 | wc -l)" -eq 2000 ] || fail "c5 does not hold the 2000 keys"
"$COW" fsck >/dev/null || fail "fsck after the pipelines"
if [ $fails -ne 0 ]; then
	echo "$fails checks failed"
	exit 1
fi
echo "pipes: every pipeline finished"
