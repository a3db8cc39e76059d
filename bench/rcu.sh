#!/bin/sh
# bench/rcu.sh BUILD_DIR RESULTS_DIR
#
# Read-side throughput of cow_rcu against a pthread rwlock and a mutex at
# 0.1 %, 1 % and 10 % updates, with 1 and 2 threads (RESULTS_DIR/rcu.csv,
# rcu.png; ratios against the rwlock of the same run); the liburcu flavour
# comparison behind the choice of urcu-bp (rcu_flavours.csv); and what
# deferred reclaim costs each fork(): cowkit's reclaimer against liburcu's
# call_rcu (rcu_fork.csv). Knobs: RCU_BENCH_SECONDS (per point, default
# 0.5), RCU_BENCH_REPEATS (median of, default 5).
set -eu
build=${1:-build}
out=${2:-bench/results}
mkdir -p "$out"
secs=${RCU_BENCH_SECONDS:-0.5}
reps=${RCU_BENCH_REPEATS:-5}

echo "rcu: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/rcu_read" "$secs" "$reps" >"$out/rcu.csv.tmp"
mv "$out/rcu.csv.tmp" "$out/rcu.csv"
"$build/bench/rcu_flavours" "$secs" >"$out/rcu_flavours.csv.tmp"
mv "$out/rcu_flavours.csv.tmp" "$out/rcu_flavours.csv"
echo "mode,fork_median_us,fork_p90_us" >"$out/rcu_fork.csv.tmp"
for mode in none cow_read cow call_rcu; do
	"$build/bench/rcu_fork" "$mode" 200 >>"$out/rcu_fork.csv.tmp"
done
mv "$out/rcu_fork.csv.tmp" "$out/rcu_fork.csv"
echo "rcu: load after: $(cut -d' ' -f1-3 /proc/loadavg)"
column -s, -t <"$out/rcu.csv" 2>/dev/null || cat "$out/rcu.csv"
column -s, -t <"$out/rcu_flavours.csv" 2>/dev/null || cat "$out/rcu_flavours.csv"
column -s, -t <"$out/rcu_fork.csv" 2>/dev/null || cat "$out/rcu_fork.csv"

if command -v gnuplot >/dev/null 2>&1; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	# One file per series (mechanism, threads) so gnuplot joins the points.
	awk -F, -v d="$tmp" 'NR > 1 { print $2, $4 / 1e6 > (d "/" $1 "-" $3) }' "$out/rcu.csv"
	gnuplot <<GP
set terminal pngcairo size 900,520 noenhanced
set output "$out/rcu.png"
set title "read-side throughput vs update rate (cow_rcu, pthread rwlock, mutex)"
set xlabel "updates (% of operations)"
set ylabel "million reads per second (all threads)"
set logscale x
set xtics ("0.1" 0.1, "1" 1, "10" 10)
set yrange [0:*]
set key outside right
set grid
plot "$tmp/rcu-1" with linespoints lw 2 pt 7 title "rcu, 1 thread", \
     "$tmp/rcu-2" with linespoints lw 2 pt 5 title "rcu, 2 threads", \
     "$tmp/rwlock-1" with linespoints dt 2 pt 6 title "rwlock, 1 thread", \
     "$tmp/rwlock-2" with linespoints dt 2 pt 4 title "rwlock, 2 threads", \
     "$tmp/mutex-1" with linespoints dt 3 pt 8 title "mutex, 1 thread", \
     "$tmp/mutex-2" with linespoints dt 3 pt 10 title "mutex, 2 threads"
GP
	echo "rcu: wrote $out/rcu.csv $out/rcu_flavours.csv $out/rcu_fork.csv $out/rcu.png"
else
	echo "rcu: gnuplot missing (scripts/deps.sh bench); wrote $out/rcu.csv $out/rcu_flavours.csv $out/rcu_fork.csv"
fi
