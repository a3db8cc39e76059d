#!/bin/sh
# bench/nbd.sh BUILD_DIR RESULTS_DIR
#
# Volumes as NBD disks, against peers in the same run, all driven by the same
# client (fio's nbd engine, one connection, QD16, Unix socket):
#   cow    nbdkit-cow-plugin on a fresh volume; random writes go into a
#          fresh clone of it (after the sequential write)
#   file   nbdkit's file plugin on a sparse raw file
#   qcow2  qemu-nbd on a fresh qcow2 overlay; random writes go into a fresh
#          overlay on top of the written one
# Phases: sequential write then read (1 MiB blocks, NBD_SIZE), random 4 KiB
# writes then reads (NBD_RAND_S seconds each). Writes end with a flush.
# Then a served 16 GiB volume takes `cow snapshot` and `cow clone` while fio
# writes 4 KiB at random with a flush every 32 writes: the commands' time and
# the writer's worst latency, against the same writer with no snapshots.
#
# Every figure is the median of NBD_RUNS (5) runs, targets alternating within
# each run, with min and max. Writes RESULTS_DIR/nbd.csv and nbd.png. Never
# asserts on time. Knobs: NBD_RUNS (5), NBD_SIZE (512M), NBD_RAND_S (3),
# NBD_REPORT_ONLY=1 (only the plot of an existing CSV).
set -eu
build=$1
out=$2
mkdir -p "$out"
cow="$build/tools/cow/cow"
plugin="$build/plugins/nbdkit/nbdkit-cow-plugin.so"
for c in nbdkit qemu-nbd qemu-img fio python3; do
	command -v $c >/dev/null || { echo "nbd.sh: $c is not installed; skipped"; exit 0; }
done
[ -f "$plugin" ] || { echo "nbd.sh: $plugin not built; skipped"; exit 0; }
fio --enghelp 2>/dev/null | grep -qw nbd || { echo "nbd.sh: fio has no nbd engine; skipped"; exit 0; }
runs=${NBD_RUNS:-5}
size=${NBD_SIZE:-512M}
rand_s=${NBD_RAND_S:-3}

work=$(mktemp -d "${TMPDIR:-/var/tmp}/cowkit-nbd.XXXXXX")
srv=
cleanup() {
	[ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
sock=$work/s.sock
uri="nbd+unix:///?socket=$sock"
export COW_STORE=$work/s.cow
raw=$work/runs.txt
: >"$raw"

# serve KIND ARGS: start a server on $sock and wait until it listens.
serve() {
	rm -f "$sock" "$work/pid"
	case $1 in
	cow) nbdkit -f -U "$sock" -P "$work/pid" "$plugin" store="$COW_STORE" volume="$2" & ;;
	file) nbdkit -f -U "$sock" -P "$work/pid" file "$2" & ;;
	qcow2) qemu-nbd -t -k "$sock" -f qcow2 --cache=writeback --discard=unmap "$2" & ;;
	esac
	srv=$!
	until [ -S "$sock" ] && { [ "$1" = qcow2 ] || [ -s "$work/pid" ]; }; do sleep 0.02; done
}
unserve() {
	kill "$srv"
	wait "$srv" 2>/dev/null || true
	srv=
}
# job NAME RW BS [fio args]: one fio job; appends "target,phase,value" (MiB/s or kIOPS).
job() {
	name=$1 rw=$2 bs=$3
	shift 3
	fio --name=b --ioengine=nbd --uri="$uri" --size="$size" --rw="$rw" --bs="$bs" \
		--iodepth=16 --output-format=json --output="$work/fio.json" "$@" >"$work/fio.err" 2>&1 ||
		{ cat "$work/fio.err" >&2; exit 1; }
	[ -s "$work/fio.json" ] || { echo "fio wrote nothing:"; cat "$work/fio.err"; ls -la "$work"; exit 1; } >&2
	python3 - "$work/fio.json" "$target" "$name" "$bs" >>"$raw" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
d = j["write"] if j["write"]["io_bytes"] else j["read"]
v = d["bw_bytes"] / 2**20 if sys.argv[4] != "4k" else d["iops"] / 1000
print("%s,%s,%.3f" % (sys.argv[2], sys.argv[3], v))
PY
}

if [ "${NBD_REPORT_ONLY:-0}" = 1 ]; then
	[ -s "$out/nbd.csv" ] || { echo "nbd.sh: no $out/nbd.csv" >&2; exit 1; }
else
r=0
while [ $r -lt "$runs" ]; do
	for target in cow file qcow2; do
		rm -rf "$work/t" && mkdir "$work/t"
		case $target in
		cow)
			rm -f "$COW_STORE"
			"$cow" init >/dev/null
			"$cow" vol create disk "$size"
			serve cow disk ;;
		file)
			truncate -s "$size" "$work/t/raw.img"
			serve file "$work/t/raw.img" ;;
		qcow2)
			qemu-img create -q -f qcow2 "$work/t/base.qcow2" "$size"
			qemu-img create -q -f qcow2 -b "$work/t/base.qcow2" -F qcow2 "$work/t/ov.qcow2"
			serve qcow2 "$work/t/ov.qcow2" ;;
		esac
		job seqwrite write 1m --end_fsync=1
		job seqread read 1m
		case $target in
		cow)
			unserve
			"$cow" snapshot disk@base >/dev/null
			"$cow" clone disk@base clone >/dev/null
			serve cow clone ;;
		qcow2)
			unserve
			qemu-img create -q -f qcow2 -b "$work/t/ov.qcow2" -F qcow2 "$work/t/ov2.qcow2"
			serve qcow2 "$work/t/ov2.qcow2" ;;
		esac
		job randwrite randwrite 4k --time_based --runtime="$rand_s" --end_fsync=1
		job randread randread 4k --time_based --runtime="$rand_s"
		unserve
	done
	r=$((r + 1))
done

# Snapshot and clone of a served 16 GiB volume while a writer writes.
rm -f "$COW_STORE"
"$cow" init >/dev/null
"$cow" vol create big 16G
serve cow big
fio --name=fill --ioengine=nbd --uri="$uri" --size=1g --rw=write --bs=1m --iodepth=16 \
	--end_fsync=1 >/dev/null 2>&1
r=0
while [ $r -lt "$runs" ]; do
	for mode in none snap; do
		fio --name=w --ioengine=nbd --uri="$uri" --size=16g --rw=randwrite --bs=4k \
			--iodepth=1 --fsync=32 --time_based --runtime=4 --output-format=json --output="$work/w.json" \
			>"$work/w.err" 2>&1 &
		fpid=$!
		if [ $mode = snap ]; then
			sleep 0.5
			i=0
			while [ $i -lt 6 ]; do
				t0=$(date +%s%N)
				"$cow" snapshot "big@r${r}s$i" >/dev/null
				t1=$(date +%s%N)
				"$cow" clone "big@r${r}s$i" "c${r}_$i" >/dev/null
				t2=$(date +%s%N)
				echo "cow,snapshot_us,$(((t1 - t0) / 1000))" >>"$raw"
				echo "cow,clone_us,$(((t2 - t1) / 1000))" >>"$raw"
				sleep 0.4
				i=$((i + 1))
			done
		fi
		wait $fpid
		python3 - "$work/w.json" "$mode" >>"$raw" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]["write"]
# completion latency, and the sync (flush) latency fio measures apart
sync = json.load(open(sys.argv[1]))["jobs"][0].get("sync", {}).get("lat_ns", {})
print("writer_%s,max_write_ms,%.3f" % (sys.argv[2], j["clat_ns"]["max"] / 1e6))
print("writer_%s,max_flush_ms,%.3f" % (sys.argv[2], sync.get("max", 0) / 1e6))
print("writer_%s,kiops,%.3f" % (sys.argv[2], j["iops"] / 1000))
PY
	done
	r=$((r + 1))
done
unserve

# Medians, min, max.
python3 - "$raw" "$out/nbd.csv" <<'PY'
import collections, statistics, sys
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    t, m, x = line.strip().split(",")
    v[(t, m)].append(float(x))
with open(sys.argv[2], "w") as f:
    f.write("target,metric,median,min,max,n\n")
    for (t, m), xs in v.items():
        f.write("%s,%s,%.3f,%.3f,%.3f,%d\n" % (t, m, statistics.median(xs), min(xs), max(xs), len(xs)))
rows = {(t, m): statistics.median(xs) for (t, m), xs in v.items()}
print("phase        cow        file       qcow2      cow/file  cow/qcow2")
for m in ("seqwrite", "seqread", "randwrite", "randread"):
    c, fl, q = rows[("cow", m)], rows[("file", m)], rows[("qcow2", m)]
    unit = "kIOPS" if m.startswith("rand") else "MiB/s"
    print("%-12s %-10.1f %-10.1f %-10.1f %-9.2f %.2f   (%s)" % (m, c, fl, q, c / fl, c / q, unit))
for k in sorted(rows):
    if k[0] not in ("cow", "file", "qcow2") or k[1].endswith("_us"):
        print("%s %s: %.2f" % (k[0], k[1], rows[k]))
PY
fi

if command -v gnuplot >/dev/null; then
	awk -F, 'NR > 1 && ($2 == "seqwrite" || $2 == "seqread" || $2 == "randwrite" || $2 == "randread") \
		{ print $1, $2, $3, $4, $5 }' "$out/nbd.csv" | sort -k2,2 -k1,1 >"$work/plot.dat"
	gnuplot <<GP
set terminal png size 900,500
set output "$out/nbd.png"
set title "NBD through fio (QD16): cow plugin vs nbdkit file vs qemu-nbd qcow2 (median, min-max)"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.6 border -1
set ylabel "MiB/s (seq, 1 MiB) / kIOPS (rand, 4 KiB)"
set key top right
set xtics ("randread" 0, "randwrite" 1, "seqread" 2, "seqwrite" 3)
plot "< awk '\$1==\"cow\"' $work/plot.dat" using 3:4:5 title "cow", \
     "< awk '\$1==\"file\"' $work/plot.dat" using 3:4:5 title "nbdkit file", \
     "< awk '\$1==\"qcow2\"' $work/plot.dat" using 3:4:5 title "qemu-nbd qcow2"
GP
fi
echo "nbd.sh: wrote $out/nbd.csv"
