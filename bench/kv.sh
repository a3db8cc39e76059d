#!/bin/sh
# The Redis row: redis-server's BGSAVE (fork) against examples/kv's forkless
# save (cow_mem snapshot), same client (redis-cli --pipe, redis-benchmark -t
# set -c 50 over the loaded keys), same dataset, same run, alternating.
# For each: write throughput during the save over throughput before it, peak
# extra memory during the save (server RSS growth plus any child's private
# memory), the pause (INFO latest_fork_usec, and the longest SET a probe
# client waited), and the time from a restart to the first answered GET.
#
#   bench/kv.sh BUILD_DIR RESULTS_DIR
#
# KV_BENCH_MIB=2048   data size (1 KiB values, KV_BENCH_MIB * 1024 keys)
# KV_BENCH_RUNS=3     runs of each server
# KV_BENCH_BACKEND=default  kv's snapshot backend (default: kv's own, uffd; or auto,
#                     uffd-thread, fork); KV_BENCH_KV_ARGS: more kv options (--thp)
# KV_BENCH_PLOT_ONLY=1   redraw the plot and the summary from kv.csv
# Writes RESULTS_DIR/kv.csv and kv.png.
set -eu
build=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
kv="$build/examples/kv"
mib=${KV_BENCH_MIB:-2048}
runs=${KV_BENCH_RUNS:-3}
backend=${KV_BENCH_BACKEND:-default}
size=1024
keys=$((mib * 1024))
mkdir -p "$out"
csv="$out/kv.csv"
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/cowkv.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ "${KV_BENCH_PLOT_ONLY:-0}" != 1 ]; then
	[ -x "$kv" ] || { echo "kv.sh: $kv not built" >&2; exit 1; }
	for t in redis-server redis-cli redis-benchmark python3; do
		command -v $t >/dev/null 2>&1 ||
			{ echo "kv.sh: $t missing (scripts/deps.sh bench)" >&2; exit 1; }
	done
	echo "kv.sh: $keys keys of $size bytes ($mib MiB), $runs runs each, kv backend $backend" >&2
	{
		echo "server,run,keys,value_bytes,rss_mib,base_kops,save_kops,ratio,save_s,parent_growth_mib,child_private_mib,extra_mib,extra_pct,fork_usec,probe_base_max_ms,probe_save_max_ms,first_reply_ms,backend"
		r=1
		while [ $r -le "$runs" ]; do
			# Alternate which server goes first, so drift hits both alike.
			order="redis kv kv-thp"
			[ $((r % 2)) -eq 0 ] && order="kv-thp kv redis"
			for s in $order; do
				python3 "$here/kv_bench.py" $s $r $keys $size "$kv" "$tmp" "$backend"
			done
			r=$((r + 1))
		done
	} >"$csv.tmp"
	mv "$csv.tmp" "$csv"
	cat "$csv"
fi

# Medians (min-max) per server.
python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cols = [("ratio", "throughput during save / before", "%.2fx"),
        ("extra_mib", "peak extra memory", "%.0f MiB"),
        ("extra_pct", "  of the server's RSS", "%.1f%%"),
        ("fork_usec", "pause (latest_fork_usec)", "%.0f us"),
        ("probe_save_max_ms", "longest probe SET during save", "%.1f ms"),
        ("probe_base_max_ms", "longest probe SET before save", "%.1f ms"),
        ("save_s", "save duration", "%.1f s"),
        ("first_reply_ms", "restart to first GET answered", "%.1f ms")]
print()
servers = [s for s in ("redis", "kv", "kv-thp") if any(r["server"] == s for r in rows)]
print(("%-34s" + " %-30s" * len(servers)) % (("median (min-max)",) + tuple(servers)))
for c, label, fmt in cols:
    cells = []
    for s in servers:
        v = sorted(float(r[c]) for r in rows if r["server"] == s)
        if not v:
            cells.append("-")
            continue
        cells.append("%s (%s-%s)" % (fmt % statistics.median(v), fmt % v[0], fmt % v[-1]))
    print(("%-34s" + " %-30s" * len(servers)) % ((label,) + tuple(cells)))
PY

if command -v gnuplot >/dev/null 2>&1; then
	awk -F, -v d="$tmp" 'NR > 1 { f = d "/" $1; print $2, $8, $12, $14 / 1000, $17 > f }' "$csv"
	touch "$tmp/redis" "$tmp/kv" "$tmp/kv-thp"
	gnuplot <<GP
set terminal pngcairo size 1400,460
set output "$out/kv.png"
set multiplot layout 1,4 title "Redis BGSAVE (fork) vs kv forkless save, same run, redis-benchmark -t set during the save"
set style data points
set pointsize 1.5
set key below
set xlabel "run"
set xtics 1
set offsets 0.3, 0.3, graph 0.08, 0
set termoption noenhanced
set ylabel "write throughput during save / before"
set yrange [0:1.2]
plot "$tmp/redis" using 1:2 title "redis-server" pt 7, "$tmp/kv" using 1:2 title "kv" pt 5, "$tmp/kv-thp" using 1:2 title "kv --thp" pt 9, 0.8 title "target" with lines dt 2
set yrange [0:*]
set ylabel "peak extra memory (MiB)"
plot "$tmp/redis" using 1:3 title "redis-server" pt 7, "$tmp/kv" using 1:3 title "kv" pt 5, "$tmp/kv-thp" using 1:3 title "kv --thp" pt 9, 64 title "64 MiB buffer" with lines dt 2
set ylabel "pause (ms), INFO latest_fork_usec"
plot "$tmp/redis" using 1:4 title "redis-server" pt 7, "$tmp/kv" using 1:4 title "kv" pt 5, "$tmp/kv-thp" using 1:4 title "kv --thp" pt 9
set ylabel "restart to first GET (ms)"
set logscale y
set yrange [*:*]
plot "$tmp/redis" using 1:5 title "redis-server" pt 7, "$tmp/kv" using 1:5 title "kv" pt 5, "$tmp/kv-thp" using 1:5 title "kv --thp" pt 9
unset multiplot
GP
	echo "plot: $out/kv.png"
fi
