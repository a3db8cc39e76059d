#!/bin/sh
# The io_count shim counts exactly the bytes written to regular files under
# IO_COUNT_DIR, and nothing else; and store_bench, under it, runs every
# engine and posts exact figures for the floor it writes itself.
#
#   tests/bench/io_count.sh SHIM [STORE_BENCH]
#
# Skips (77) under sanitizers: their runtime must come first in the
# library list, which LD_PRELOAD breaks.
set -eu
shim=$1
bench=${2:-}
case "${COW_SANITIZE:-}" in
?*) echo "skip: LD_PRELOAD shims do not mix with sanitizer runtimes"; exit 77 ;;
esac
command -v dd >/dev/null 2>&1 || { echo "skip: no dd"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/io_count.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/in" "$tmp/out"

count() { # count DIR CMD...: "BYTES CALLS" the shim reports for CMD
	d=$1
	shift
	rm -f "$tmp/report"
	IO_COUNT_REPORT="$tmp/report" IO_COUNT_DIR="$d" LD_PRELOAD="$shim" "$@" >/dev/null
	# One line per process that ran under the shim: their sum.
	awk '$1 == "io_count:" { b += $2; c += $5 } END { print b + 0, c + 0 }' "$tmp/report"
}
check() { # check WHAT GOT WANT
	if [ "$2" != "$3" ]; then
		echo "FAIL: $1: got '$2', want '$3'" >&2
		exit 1
	fi
	echo "ok: $1: $2"
}

check "3 x 4 KiB under the folder" "$(count "$tmp/in" dd if=/dev/zero of="$tmp/in/f" bs=4096 count=3 status=none)" "12288 3"
check "a short last write" "$(count "$tmp/in" dd if=/dev/zero of="$tmp/in/g" bs=1000 count=5 status=none)" "5000 5"
check "a file outside the folder" "$(count "$tmp/in" dd if=/dev/zero of="$tmp/out/f" bs=4096 count=3 status=none)" "0 0"
check "a sibling path sharing the prefix" "$(count "$tmp/in" dd if=/dev/zero of="$tmp/in2" bs=4096 count=1 status=none)" "0 0"
check "a device (/dev/null)" "$(count "$tmp" dd if=/dev/zero of=/dev/null bs=4096 count=3 status=none)" "0 0"
check "a pipe" "$(count "$tmp" sh -c "dd if=/dev/zero bs=4096 count=3 status=none | cat")" "0 0"

if [ -n "$bench" ] && [ -x "$bench" ]; then
	COW_BENCH_KEYS=3000 COW_BENCH_COMMITS=20 COW_BENCH_UPDATES=200 COW_BENCH_SYNC_EVERY=100 \
		COW_BENCH_RUNS=1 COW_BENCH_DIR="$tmp/in" IO_COUNT_DIR="$tmp/in" LD_PRELOAD="$shim" \
		"$bench" "$tmp/store.csv" >"$tmp/say" 2>&1 || { cat "$tmp/say" >&2; exit 1; }
	col() { # col ENGINE PHASE NAME: that cell of store.csv
		awk -F, -v e="$1" -v p="$2" -v n="$3" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
			$1 == p && $2 == e { print $c[n] }' "$tmp/store.csv"
	}
	check "floor_4k bytes per commit" "$(col floor_4k put_latency kib_per_txn)" "4.00"
	for e in lmdb cowkit rocksdb sqlite floor_commit; do
		k=$(col $e put_latency kib_per_txn)
		n=$(col $e put_latency note)
		case "$n" in skipped*) echo "ok: $e: $n"; continue ;; esac
		awk -v k="$k" 'BEGIN { exit !(k > 0) }' || { echo "FAIL: $e: no bytes per commit ($k)" >&2; exit 1; }
		echo "ok: $e: $k KiB per one-key commit"
	done
	[ -s "$tmp/store_ratio.csv" ] || { echo "FAIL: no store_ratio.csv" >&2; exit 1; }
	if ls "$tmp"/*.tmp.* >/dev/null 2>&1; then
		echo "FAIL: temporary files left behind" >&2
		exit 1
	fi
	left=$(find "$tmp/in" -mindepth 1 -maxdepth 1 -type d | wc -l)
	check "stores removed" "$left" "0"
fi
echo "io_count: all checks passed"
