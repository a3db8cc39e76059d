#!/bin/sh
# Store benchmark: cowkit against LMDB, same data, same run.
#
#   bench/store.sh BUILD_DIR RESULTS_DIR [--plot-only]
#
# Writes RESULTS_DIR/store.csv (one row per phase and engine; cowkit rows carry
# the ratio to LMDB and whether the DESIGN.md target is met) and
# RESULTS_DIR/store.png. Sizes come from the environment (see the head of
# bench/store_bench.c), e.g. a quick run:
#
#   COW_BENCH_KEYS=100000 COW_BENCH_UPDATES=10000 bench/store.sh build bench/results
#
# The stores live in temporary directories under COW_BENCH_DIR, else $TMPDIR,
# else /tmp: put that on a real disk (not tmpfs), or durable commits cost nothing.
# --plot-only redraws store.png from an existing store.csv.
set -eu
build=${1:-build}
results=${2:-bench/results}
plot_only=${3:-}
bin="$build/bench/store_bench"
csv="$results/store.csv"
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
	echo "store: $(date -u '+%Y-%m-%d %H:%M UTC'), stores under $dir (${fs:-unknown fs})"
	"$bin" "$csv"
fi

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "store: gnuplot not installed; no plot (scripts/deps.sh bench)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Left: cowkit / LMDB per phase, with the target for each bar.
# Right: file size after the update txns over the live data, per engine.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
$2 == "cowkit" {
	t = ""
	if ($1 == "insert_1txn" || $1 == "get" || $1 == "scan") t = 1.0
	else if ($1 == "insert_per_txn") t = 1.5
	else if ($1 == "put_latency") t = 0.7
	if (t != "") { label = $1; if ($1 == "put_latency") label = "put p50 (lower)"
		printf "\"%s\" %s %s\n", label, $col["ratio_vs_lmdb"], t }
}' "$csv" >"$tmp/ratio.dat"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
$1 ~ /^reader/ && $col["live_mib"] > 0 {
	v[$1 "," $2] = $col["file_mib"] / $col["live_mib"]; seen[$1] = 1 }
END { for (p in seen) printf "%s %s %s\n", p, v[p ",lmdb"], v[p ",cowkit"] }' "$csv" |
	sort >"$tmp/reader.dat"
if [ ! -s "$tmp/ratio.dat" ]; then
	echo "store: no cowkit/LMDB pairs in $csv; no plot"
	exit 0
fi
nreader=$(wc -l <"$tmp/reader.dat")
if [ "$nreader" -eq 0 ]; then
	layout="1,1"
	echo "0 0 0" >"$tmp/reader.dat" # not drawn
else
	layout="1,2"
fi
gnuplot <<EOF
set terminal pngcairo size 1200,520 font "sans,10" noenhanced
set output "$results/store.png"
set multiplot layout $layout title "cowkit store vs LMDB ($(sed -n 2p "$csv" | cut -d, -f3) keys, $(date -u +%Y-%m-%d))"
set style fill solid 0.6 border -1
set boxwidth 0.6
set key top left
set grid ytics
set yrange [0:*]
set offsets 0, 0, 0.25, 0
set xtics rotate by -20
set title "cowkit / LMDB (throughput; latency: lower is better); - = target"
set ylabel "ratio"
plot "$tmp/ratio.dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa" title "cowkit / LMDB", \
	"" using (\$0-0.3):3:(0.6):(0) with vectors nohead lw 3 lc rgb "#cc3311" title "target", \
	"" using 0:2:(sprintf("%.2f", \$2)) with labels offset 0,0.8 notitle
if ($nreader == 0) exit
set title "file after the update txns / live data (one reader held open)"
set xrange [-0.6:$nreader - 0.4]
set ylabel "file / live data"
set offsets 0, 0, 0, 0
set logscale y 2
set yrange [0.5:*]
set style data histograms
set style histogram clustered gap 1
plot "$tmp/reader.dat" using 2:xtic(1) title "LMDB" lc rgb "#999999", \
	"" using 3 title "cowkit" lc rgb "#4477aa", \
	2 with lines lw 3 lc rgb "#cc3311" title "target 2x"
unset multiplot
EOF
echo "store: wrote $csv and $results/store.png"
