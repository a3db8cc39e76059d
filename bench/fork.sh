#!/bin/sh
# bench/fork.sh BUILD_DIR RESULTS_DIR
#
# fork() vs vfork+exec vs posix_spawn latency as the parent's resident memory
# grows (4 KiB pages and THP), and the copy-on-write fault cost per page and
# extra memory vs the fraction of pages the child writes.
#
# Writes RESULTS_DIR/fork.csv, fork_cow.csv and the plots fork.png,
# fork_cow.png; prints the ratios against the peers of the same run.
#
# Sizes: 0.1 1 2 4 GiB by default (a few minutes); COW_BENCH_BIG=1 adds 8 GiB
# (needs 8 GiB free). FORK_SIZES="0.1 1" overrides the list. FORK_N sets
# the repetitions per method (default 7).
set -eu
build=$1
out=$2
mkdir -p "$out"
sizes=${FORK_SIZES:-"0.1 1 2 4"}
if [ "${COW_BENCH_BIG:-0}" = 1 ] && [ -z "${FORK_SIZES:-}" ]; then
	sizes="$sizes 8"
fi
n=${FORK_N:-7}
lat="$build/bench/fork_lat"
cow="$build/bench/cow_fault"
[ -x "$lat" ] && [ -x "$cow" ] || { echo "fork.sh: build first ($lat)" >&2; exit 1; }

csv="$out/fork.csv"
echo "gib,pages,method,median_ms,min_ms,max_ms,n,thp_mib" >"$csv"
for s in $sizes; do
	for huge in 0 1; do
		echo "fork: $s GiB, $( [ $huge = 1 ] && echo THP || echo '4 KiB' ) pages" >&2
		"$lat" "$s" "$huge" "$n" >>"$csv"
	done
done

cowcsv="$out/fork_cow.csv"
echo "mib,pages,case,fraction,pages_written,ns_per_page,extra_mib,n" >"$cowcsv"
for huge in 0 1; do
	echo "cow_fault: 1 GiB, huge=$huge" >&2
	"$cow" 1024 "$huge" 3 0.01 0.1 0.5 1 >>"$cowcsv"
done

# Ratios against the peers of this run.
echo "fork latency (median ms) and ratios, this run:"
awk -F, 'NR > 1 { v[$1 "," $2 "," $3] = $4; s[$1] = 1 }
END {
	printf "  %-6s %10s %10s %10s %12s %12s %14s\n", "GiB", "fork 4k", "fork THP",
		"THP/4k", "spawn 4k", "vfork 4k", "fork/spawn 4k"
	for (k in s) keys[++nk] = k + 0
	for (i = 1; i <= nk; i++) for (j = i + 1; j <= nk; j++)
		if (keys[j] < keys[i]) { t = keys[i]; keys[i] = keys[j]; keys[j] = t }
	for (i = 1; i <= nk; i++) {
		g = keys[i]
		f4 = v[g ",4k,fork"]; ft = v[g ",thp,fork"]; sp = v[g ",4k,posix_spawn"]
		vf = v[g ",4k,vfork_exec"]
		printf "  %-6s %10.3f %10.3f %10.3f %12.3f %12.3f %14.1f\n", g, f4, ft,
			ft / f4, sp, vf, f4 / sp
	}
}' "$csv"
echo "copy-on-write fault (1 GiB region), ns per page and extra MiB, this run:"
awk -F, 'NR > 1 {
	printf "  %-4s %-14s fraction %-5s %8d pages %7d ns/page %8.1f MiB\n", $2, $3, $4, $5, $6, $7
}' "$cowcsv"

if command -v gnuplot >/dev/null 2>&1; then
	gnuplot <<EOF
set datafile separator ","
set terminal pngcairo size 900,560 noenhanced
set output "$out/fork.png"
set title "fork() vs vfork+exec vs posix_spawn, parent resident memory grows"
set xlabel "parent resident memory (GiB)"
set ylabel "median latency (ms)"
set logscale y
set key top left
plot "< awk -F, '\$2==\"4k\" && \$3==\"fork\"' $csv" using 1:4 with linespoints title "fork, 4 KiB pages", \
     "< awk -F, '\$2==\"thp\" && \$3==\"fork\"' $csv" using 1:4 with linespoints title "fork, THP", \
     "< awk -F, '\$2==\"4k\" && \$3==\"fork_exit\"' $csv" using 1:4 with linespoints title "fork+exit+reap, 4 KiB", \
     "< awk -F, '\$2==\"4k\" && \$3==\"fork_exec\"' $csv" using 1:4 with linespoints title "fork+exec true, reaped, 4 KiB", \
     "< awk -F, '\$2==\"4k\" && \$3==\"vfork_exec\"' $csv" using 1:4 with linespoints title "vfork+exec, 4 KiB", \
     "< awk -F, '\$2==\"4k\" && \$3==\"posix_spawn\"' $csv" using 1:4 with linespoints title "posix_spawn, 4 KiB"
set output "$out/fork_cow.png"
set title "write after fork(): cost per page and extra memory (1 GiB region)"
set xlabel "fraction of pages the child writes"
set ylabel "ns per page"
set y2label "child's extra memory (MiB, private dirty)"
set logscale x
set logscale y
set logscale y2
set y2tics
set key below
plot "< awk -F, '\$2==\"4k\" && \$3==\"cow_fault\"' $cowcsv" using 4:6 with linespoints title "COW fault, 4 KiB (ns)", \
     "< awk -F, '\$2==\"thp\" && \$3==\"cow_fault\"' $cowcsv" using 4:6 with linespoints title "COW fault, THP region (ns)", \
     "< awk -F, '\$2==\"4k\" && \$3==\"write_private\"' $cowcsv" using 4:6 with linespoints title "write to a private page, no fault (ns)", \
     "< awk -F, '\$2==\"4k\" && \$3==\"cow_fault\"' $cowcsv" using 4:7 axes x1y2 with linespoints dashtype 2 title "extra memory, 4 KiB (MiB)", \
     "< awk -F, '\$2==\"thp\" && \$3==\"cow_fault\"' $cowcsv" using 4:7 axes x1y2 with linespoints dashtype 3 title "extra memory, THP (MiB)"
EOF
	echo "plots: $out/fork.png $out/fork_cow.png"
else
	echo "gnuplot not installed (scripts/deps.sh bench); CSV only"
fi
