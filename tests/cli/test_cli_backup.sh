#!/bin/sh
# `cow backup`: a copy that opens, passes fsck and reads back the same;
# refusals (an existing DEST, --compact) leave nothing; damage fails with
# exit 4 and no DEST.  usage: test_cli_backup.sh PATH/TO/cow
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
expect_err() { # expect_err DESCRIPTION SUBSTRING
	if ! grep -q -- "$2" "$dir/err"; then
		echo "FAIL: $1: stderr lacks '$2': $(cat "$dir/err")"
		fails=$((fails + 1))
	fi
}

head -c 300000 /dev/urandom >"$dir/data"
check "init" 0 "$COW" init
check "map" 0 "$COW" map create m
check "put" 0 "$COW" put m k v
check "vol" 0 "$COW" import "$dir/data" disk
check "snapshot" 0 "$COW" snapshot @a
for i in 1 2 3 4 5 6 7 8 9 10; do
	check "clone $i" 0 "$COW" clone disk@a "c$i"
done
check "backup" 0 "$COW" backup "$dir/b.cow"
grep -q "backed up generation" "$dir/out" || { echo "FAIL: backup output: $(cat "$dir/out")"; fails=$((fails + 1)); }
check "fsck of the copy" 0 "$COW" fsck "$dir/b.cow"
"$COW" list >"$dir/list.src"
COW_STORE="$dir/b.cow" "$COW" list >"$dir/list.copy"
cmp -s "$dir/list.src" "$dir/list.copy" || { echo "FAIL: list differs"; fails=$((fails + 1)); }
check "get from the copy" 0 env COW_STORE="$dir/b.cow" "$COW" get m k
check "export c7 from the copy" 0 env COW_STORE="$dir/b.cow" "$COW" export c7 "$dir/c7.img"
cmp -s "$dir/data" "$dir/c7.img" || { echo "FAIL: c7 differs"; fails=$((fails + 1)); }

check "json" 0 "$COW" backup --json "$dir/j.cow"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["generation"] > 0 and d["copied_bytes"] > 0' "$dir/out" ||
	{ echo "FAIL: backup --json: $(cat "$dir/out")"; fails=$((fails + 1)); }

check "existing DEST" 3 "$COW" backup "$dir/b.cow"
expect_err "existing DEST" "exists"
check "compact refused" 3 "$COW" backup --compact "$dir/c.cow"
expect_err "compact refused" "not implemented"
[ -e "$dir/c.cow" ] && { echo "FAIL: --compact left a file"; fails=$((fails + 1)); }
check "no arguments" 2 "$COW" backup

# Damage: flip a bit in the middle of the volume's data; backup fails with no DEST.
python3 - "$COW_STORE" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    data = open(sys.argv[1].rsplit("/", 1)[0] + "/data", "rb").read()
    img = f.read()
    at = img.find(data[8192:8192 + 64])
    assert at > 0
    f.seek(at + 10)
    b = f.read(1)
    f.seek(at + 10)
    f.write(bytes([b[0] ^ 1]))
PY
check "backup of a damaged store" 4 "$COW" backup "$dir/d.cow"
[ -e "$dir/d.cow" ] && { echo "FAIL: a damaged backup left DEST"; fails=$((fails + 1)); }
ls "$dir" | grep -q 'd.cow.tmp' && { echo "FAIL: a damaged backup left its temporary file"; fails=$((fails + 1)); }

[ "$fails" -eq 0 ] && echo "all backup checks passed"
exit "$fails"
