#!/bin/sh
# Live memory: forkless snapshot against fork() in the same run (pause, extra
# memory, writer throughput, write-fault latency), incremental vs full
# checkpoint, lazy vs eager restore against read().
#
#   bench/mem.sh BUILD_DIR RESULTS_DIR
#
# Sizes: 1 and 4 GiB by default (a few minutes); MEM_BENCH_BIG=1 adds 8 GiB.
# Writes RESULTS_DIR/mem.csv, mem_snap.png and mem_ckpt.png.
set -eu
build=$1
out=$2
bin="$build/bench/mem_bench"
[ -x "$bin" ] || { echo "mem.sh: $bin not built" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/cowmem.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
csv="$out/mem.csv"

# MEM_BENCH_PLOT_ONLY=1 redraws the plots from an existing mem.csv.
if [ "${MEM_BENCH_PLOT_ONLY:-0}" != 1 ]; then

sizes="1024 4096"
[ "${MEM_BENCH_BIG:-0}" = 1 ] && sizes="$sizes 8192"

{
	echo "kind,backend,size_mib,thp,pattern,pause_ms,total_ms,extra_mib,base_mwps,snap_mwps,ratio,fault_p50_us,handler_p50_us,traps"
	for s in $sizes; do
		"$bin" snap "$s" 0 random "$tmp" uffd mprotect fork
		"$bin" snap "$s" 1 random "$tmp" uffd fork
	done
	"$bin" snap 1024 0 hot "$tmp" uffd fork
	# The mechanism alone: image to /dev/null, no sink bandwidth limit.
	"$bin" snap 1024 0 random null uffd mprotect fork
	"$bin" snap 1024 0 hot null uffd fork
	echo
	echo "kind,backend,size_mib,dirty_pct,sink,full_ms,incr_ms,ratio,pages"
	for b in uffd-async uffd mprotect; do
		"$bin" ckpt 1024 1 "$tmp" "$b" mem
	done
	"$bin" ckpt 1024 1 "$tmp" uffd-async file
	"$bin" ckpt 4096 1 "$tmp" uffd-async mem
	echo
	echo "kind,size_mib,thp,uffd_pause_ms,fork_pause_ms,ratio"
	for s in $sizes; do
		"$bin" pause "$s" 0 3
		"$bin" pause "$s" 1 3
	done
	echo
	echo "kind,size_mib,thp,backend,hold_ms,hold_min,hold_max,max_gap_ms,gap_min,gap_max"
	for s in $sizes; do
		"$bin" wpause "$s" 0 5
		"$bin" wpause "$s" 1 5
	done
	echo
	echo "kind,size_mib,read_ms,eager_ms,lazy_usable_ms,first_touch_us,lazy_total_ms,lazy_vs_read"
	"$bin" restore 1024 "$tmp"
} | tee "$csv"
fi

# Ratios against fork in the same run, per size and page kind.
awk -F, '$1 == "snap" { k = $3 "," $4 "," $5; v[k "," $2] = $0; keys[k] = 1 }
END {
	print ""
	print "size_mib,thp,pattern: forkless/fork pause, extra memory, writer throughput"
	for (k in keys) {
		if (!((k ",uffd") in v) || !((k ",fork") in v)) continue
		split(v[k ",uffd"], u, ","); split(v[k ",fork"], f, ",")
		printf "%s: pause %.2fx, extra %.2fx (%.0f vs %.0f MiB), throughput %.2fx vs %.2fx, fault p50 %.1f vs %.1f us\n",
			k, u[6] / f[6], (f[8] > 0 ? u[8] / f[8] : 0), u[8], f[8], u[11], f[11], u[12], f[12]
	}
}' "$csv"

if command -v gnuplot >/dev/null 2>&1; then
	# One file per series, so gnuplot draws lines.
	awk -F, -v d="$tmp" '$1 == "pause" { print $2, $4 > (d "/pause_uffd_" $3); print $2, $5 > (d "/pause_fork_" $3) }
		$1 == "snap" && $5 == "random" && $4 == 0 { print $3, $8, $11 > (d "/snap_" $2) }' "$csv"
	touch "$tmp/pause_uffd_0" "$tmp/pause_fork_0" "$tmp/pause_uffd_1" "$tmp/pause_fork_1" \
		"$tmp/snap_uffd" "$tmp/snap_fork" "$tmp/snap_mprotect"
	gnuplot <<GP
set terminal pngcairo size 1200,420
set output "$out/mem_snap.png"
set multiplot layout 1,3 title "forkless snapshot (uffd) vs fork(), same run"
set style data linespoints
set key top left
set xlabel "region (MiB)"
set ylabel "pause (ms)"
set logscale y
plot "$tmp/pause_uffd_0" using 1:2 title "uffd 4K", "$tmp/pause_fork_0" using 1:2 title "fork 4K", \
     "$tmp/pause_uffd_1" using 1:2 title "uffd THP", "$tmp/pause_fork_1" using 1:2 title "fork THP"
set ylabel "extra memory (MiB), random writer"
plot "$tmp/snap_uffd" using 1:2 title "uffd (64 MiB buffer)", "$tmp/snap_fork" using 1:2 title "fork", \
     "$tmp/snap_mprotect" using 1:2 title "mprotect"
unset logscale y
set ylabel "writer throughput vs no snapshot"
set yrange [0:1]
plot "$tmp/snap_uffd" using 1:3 title "uffd", "$tmp/snap_fork" using 1:3 title "fork", \
     "$tmp/snap_mprotect" using 1:3 title "mprotect"
unset multiplot
GP
	echo "plot: $out/mem_snap.png"
fi
