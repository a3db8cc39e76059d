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
	echo "kind,size_mib,read_ms,eager_ms,lazy_usable_ms,first_touch_us,lazy_total_ms,lazy_vs_read"
	"$bin" restore 1024 "$tmp"
} | tee "$csv"

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
	grep '^snap,' "$csv" | grep ',random,' > "$tmp/snap.dat" || true
	gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 1100,420
set output "$out/mem_snap.png"
set multiplot layout 1,2 title "live snapshot vs fork(), random writer (4 KiB pages and THP)"
set style data linespoints
set xlabel "region (MiB)"
set ylabel "pause (ms)"
set logscale y
plot "$tmp/snap.dat" using (strcol(2) eq "uffd" && \$4==0 ? \$3 : 1/0):6 title "uffd 4K", \
     "" using (strcol(2) eq "fork" && \$4==0 ? \$3 : 1/0):6 title "fork 4K", \
     "" using (strcol(2) eq "uffd" && \$4==1 ? \$3 : 1/0):6 title "uffd THP", \
     "" using (strcol(2) eq "fork" && \$4==1 ? \$3 : 1/0):6 title "fork THP"
unset logscale y
set ylabel "extra memory (MiB)"
plot "$tmp/snap.dat" using (strcol(2) eq "uffd" && \$4==0 ? \$3 : 1/0):8 title "uffd 4K", \
     "" using (strcol(2) eq "fork" && \$4==0 ? \$3 : 1/0):8 title "fork 4K", \
     "" using (strcol(2) eq "mprotect" ? \$3 : 1/0):8 title "mprotect 4K"
unset multiplot
GP
	echo "plot: $out/mem_snap.png"
fi
