#!/bin/sh
# Store benchmark: cowkit against LMDB (every phase), RocksDB and SQLite (the
# durable-commit phases) and the bare disk's floor, same data, same run.
#
#   bench/store.sh BUILD_DIR RESULTS_DIR [--plot-only]
#
# Writes RESULTS_DIR/store.csv (one row per phase and engine: median, min and
# max over the rounds, bytes written per txn), RESULTS_DIR/store_ratio.csv
# (every ratio, taken within each round: median, min, max, target, met) and
# RESULTS_DIR/store.png. Sizes come from the environment (see the head of
# bench/store_bench.c); a short run to check the bench itself, not to quote:
#
#   COW_BENCH_QUICK=1 sh bench/store.sh build /tmp/r
#
# The stores live in a folder of the run's own under COW_BENCH_DIR, else
# $TMPDIR, else /tmp, removed at the end: put that on a real disk (not tmpfs),
# or durable commits cost nothing.
# The io_count shim (build/bench/libio_count.so) is preloaded when built, so
# that bytes per commit are counted at the system call.
# Files are written under temporary names and renamed when complete: a
# stopped run (Ctrl-C, kill) leaves the previous results whole.
# --plot-only redraws store.png from existing CSV files.
set -eu
build=${1:-build}
results=${2:-bench/results}
plot_only=${3:-}
bin="$build/bench/store_bench"
csv="$results/store.csv"
rcsv="$results/store_ratio.csv"
tmp=""
work=""
# A stopped run leaves the previous CSVs whole, no half-written twin and no
# store behind.
cleanup() {
	rm -f "$csv".tmp.* "$rcsv".tmp.*
	[ -z "$tmp" ] || rm -rf "$tmp"
	[ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$plot_only" != "--plot-only" ]; then
	if [ ! -x "$bin" ]; then
		echo "store: $bin not built (lmdb missing? scripts/deps.sh bench); skipped"
		exit 0
	fi
	mkdir -p "$results"
	dir=${COW_BENCH_DIR:-${TMPDIR:-/tmp}}
	fs=$(df -P -T "$dir" 2>/dev/null | awk 'NR == 2 { print $2 }' || true)
	case "$fs" in
	tmpfs | ramfs) echo "store: warning: $dir is on $fs; durable commits will look free" >&2 ;;
	esac
	echo "store: $(date -u '+%Y-%m-%d %H:%M UTC'), stores under $dir (${fs:-unknown fs}), load $(cut -d' ' -f1-3 /proc/loadavg)"
	# A folder of this run's own: removed at the end, also when stopped.
	work=$(mktemp -d "$dir/cowkit-store.XXXXXX")
	shim="$build/bench/libio_count.so"
	if [ -f "$shim" ]; then
		shim=$(cd "$(dirname "$shim")" && pwd)/$(basename "$shim")
		COW_BENCH_DIR="$work" IO_COUNT_DIR="$work" LD_PRELOAD="$shim" "$bin" "$csv"
	else
		echo "store: $shim not built: bytes per commit not counted"
		COW_BENCH_DIR="$work" "$bin" "$csv"
	fi
	echo "store: done, load $(cut -d' ' -f1-3 /proc/loadavg)"
fi

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "store: gnuplot not installed; no plot (scripts/deps.sh bench)"
	exit 0
fi
if [ ! -s "$rcsv" ]; then
	echo "store: no $rcsv; no plot"
	exit 0
fi
tmp=$(mktemp -d)
# col[] maps header names to columns, so the plot survives added columns.
hdr='NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }'
# 1: cowkit's ratios with min-max over the rounds, and each target.
awk -F, "$hdr"'
$col["engine"] == "cowkit" {
	p = $col["phase"]; vs = $col["vs"]; m = $col["metric"]; l = ""
	if (vs == "lmdb" && m == "kib_per_txn") l = "bytes/commit vs LMDB"
	else if (vs == "lmdb" && p == "put_latency") l = "put p50 vs LMDB"
	else if (vs == "floor_commit") l = "put p50 vs floor"
	else if (vs == "lmdb" && (p == "insert_1txn" || p == "get" || p == "scan" || p == "insert_per_txn")) l = p " vs LMDB"
	else if (p == "insert_per_txn" && (vs == "rocksdb" || vs == "sqlite")) l = "per_txn vs " vs
	if (l == "") next
	t = $col["target"]; sub(/^[<>]=/, "", t); if (t == "") t = "NaN"
	printf "\"%s\" %s %s %s %s\n", l, $col["median"], $col["min"], $col["max"], t
}' "$rcsv" >"$tmp/ratio.dat"
# 2-4: per engine, median with min-max: 1,000 per txn rate, put p50, KiB per commit.
awk -F, "$hdr"'$col["phase"] == "insert_per_txn" && $col["runs"] > 0 {
	printf "%s %s %s %s\n", $col["engine"], $col["median"] / 1e3, $col["min"] / 1e3, $col["max"] / 1e3 }' \
	"$csv" >"$tmp/pertxn.dat"
awk -F, "$hdr"'$col["phase"] == "put_latency" && $col["runs"] > 0 {
	printf "%s %s %s %s\n", $col["engine"], $col["median"], $col["min"], $col["max"] }' \
	"$csv" >"$tmp/put.dat"
awk -F, "$hdr"'$col["phase"] == "put_latency" && $col["runs"] > 0 && $col["kib_per_txn"] != "" {
	d = $col["kib_dirtied_per_txn"]; if (d == "") d = "NaN"
	printf "%s %s %s\n", $col["engine"], $col["kib_per_txn"], d }' "$csv" >"$tmp/bytes.dat"
# 5: file after the update txns over the live data, per engine.
awk -F, "$hdr"'$col["metric"] == "file_over_live" {
	v[$col["phase"] "," $col["engine"]] = $col["median"]; seen[$col["phase"]] = 1 }
END { for (p in seen) printf "%s %s %s\n", p, v[p ",lmdb"], v[p ",cowkit"] }' "$rcsv" |
	sort >"$tmp/reader.dat"
for f in ratio pertxn put bytes reader; do
	[ -s "$tmp/$f.dat" ] || echo "\"none\" NaN NaN NaN NaN" >"$tmp/$f.dat"
done
keys=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["phase"] == "insert_1txn" { print $col["ops"]; exit }' "$csv")
runs=$(awk -F, 'NR == 2 { print $4; exit }' "$rcsv")
gnuplot <<EOF
set terminal pngcairo size 1500,900 font "sans,10" noenhanced
set output "$tmp/store.png"
set multiplot layout 2,3 title "cowkit store vs LMDB, RocksDB, SQLite and the disk (${keys:-?} keys; median of ${runs:-?} rounds, bars: min-max; $(date -u +%Y-%m-%d))"
set style fill solid 0.6 border -1
set boxwidth 0.6
set key top left
set grid ytics
set yrange [0:*]
set offsets 0.5, 0.5, 0, 0
set xtics rotate by -25
set title "cowkit ratios (rates: higher is better; p50, bytes: lower); - = target"
set ylabel "ratio (log scale)"
set logscale y 2
set yrange [*:*]
plot "$tmp/ratio.dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa" title "cowkit / peer", \
	"" using 0:2:3:4 with yerrorbars lc rgb "black" pt 0 notitle, \
	"" using (\$0-0.3):5:(0.6):(0) with vectors nohead lw 3 lc rgb "#cc3311" title "target"
unset logscale y
set yrange [0:*]
set title "1,000 inserts per durable txn"
set ylabel "k inserts/s"
plot "$tmp/pertxn.dat" using 0:2:xtic(1) with boxes lc rgb "#228833" notitle, \
	"" using 0:2:3:4 with yerrorbars lc rgb "black" pt 0 notitle
set title "one durable put: p50 latency (floors: pwrite + fdatasync)"
set ylabel "us"
plot "$tmp/put.dat" using 0:2:xtic(1) with boxes lc rgb "#ccbb44" notitle, \
	"" using 0:2:3:4 with yerrorbars lc rgb "black" pt 0 notitle
# The page-cache column (/proc/self/io) counts whole folios, up to 1 MiB for
# a 4 KiB write here: it stays in the CSV, not on the plot.
set title "bytes written per one-key durable commit (write calls, io_count)"
set ylabel "KiB"
plot "$tmp/bytes.dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa" notitle, \
	"" using 0:2:(sprintf("%.1f", \$2)) with labels offset 0,0.8 notitle
set style data histograms
set style histogram clustered gap 1
set offsets 0, 0, 0, 0
set title "file after the update txns / live data (one reader held open)"
set ylabel "file / live data"
set logscale y 2
set yrange [0.5:32]
plot "$tmp/reader.dat" using 2:xtic(1) title "LMDB" lc rgb "#999999", \
	"" using 3 title "cowkit" lc rgb "#4477aa", \
	2 with lines lw 3 lc rgb "#cc3311" title "target 2x"
unset multiplot
EOF
mv -f "$tmp/store.png" "$results/store.png"
echo "store: wrote $csv, $rcsv and $results/store.png"
