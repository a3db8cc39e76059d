#!/bin/sh
# `cow backup`: a copy that opens, passes fsck and reads back the same;
# --compact gives a dense copy; refusals (an existing DEST) leave nothing;
# damage fails with exit 4 and no DEST. `cow compact` shrinks a store with
# its live data at the end, online, and refuses bad steps.  usage: test_cli_backup.sh PATH/TO/cow
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
check "compact backup" 0 "$COW" backup --compact "$dir/c.cow"
check "fsck of the compacted copy" 0 "$COW" fsck "$dir/c.cow"
COW_STORE="$dir/c.cow" "$COW" list >"$dir/list.dense"
cmp -s "$dir/list.src" "$dir/list.dense" || { echo "FAIL: compacted copy lists differently"; fails=$((fails + 1)); }
check "export c3 from the compacted copy" 0 env COW_STORE="$dir/c.cow" "$COW" export c3 "$dir/c3.img"
cmp -s "$dir/data" "$dir/c3.img" || { echo "FAIL: c3 differs in the compacted copy"; fails=$((fails + 1)); }
check "no arguments" 2 "$COW" backup

# cow compact: live data at the end of the file, behind a destroyed volume.
export COW_STORE="$dir/k.cow"
head -c 8000000 /dev/urandom >"$dir/big"
check "compact: init" 0 "$COW" init
check "compact: big" 0 "$COW" import "$dir/big" big
check "compact: keep" 0 "$COW" import "$dir/data" keep
check "compact: snapshot" 0 "$COW" snapshot keep@a
check "compact: clone" 0 "$COW" clone keep@a kc
check "compact: destroy big" 0 "$COW" destroy big
before=$(stat -c %s "$COW_STORE")
check "compact" 0 "$COW" compact --step 64K
grep -q "^compacted .* moved in" "$dir/out" || { echo "FAIL: compact output: $(cat "$dir/out")"; fails=$((fails + 1)); }
after=$(stat -c %s "$COW_STORE")
[ "$after" -lt 2000000 ] || { echo "FAIL: compact left $after bytes (was $before)"; fails=$((fails + 1)); }
check "fsck after compact" 0 "$COW" fsck
check "export kc after compact" 0 "$COW" export kc "$dir/kc.img"
cmp -s "$dir/data" "$dir/kc.img" || { echo "FAIL: kc differs after compact"; fails=$((fails + 1)); }
check "compact --json" 0 "$COW" compact --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["moved_bytes"] == 0 and d["commits"] == 0, d' "$dir/out" ||
	{ echo "FAIL: compact --json on a compact store: $(cat "$dir/out")"; fails=$((fails + 1)); }
for bad in 0 4095 1e30 -1 inf 18446744073709551616 4K5; do
	check "compact --step $bad" 2 "$COW" compact --step "$bad"
done
export COW_STORE="$dir/s.cow"

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
