#!/bin/sh
# File-system benchmark: a mounted cowkit fs (cow mount, FUSE) against the
# disk it lives on (ext4 or whatever TMPDIR is), against a FUSE pass-through
# of that disk (bindfs: FUSE's own cost), and, where a loop mount is
# allowed, btrfs and XFS for the reflinked copy. Same run, the engines
# taking turns in each round.
#
#   bench/fs.sh BUILD_DIR RESULTS_DIR [--plot-only]
#
# Phases: untar (tar x of ~20,000 small files), cp -r of that tree, write
# and read of a 1 GiB file (fdatasync'd; caches dropped before the read),
# cp of the 1 GiB file inside the same file system (a reflink where the file
# system can), and a snapshot of the 20,000-file tree while a writer runs
# (cowkit: `cow snapshot`; btrfs: `btrfs subvolume snapshot`).
# Writes RESULTS_DIR/fs.csv (phase,engine,round,seconds) and fs.png.
# COW_BENCH_RUNS rounds (3), COW_BENCH_FILES files (20000), COW_BENCH_BIG_MIB (1024).
set -eu
build=${1:-build}
results=${2:-bench/results}
plot_only=${3:-}
csv="$results/fs.csv"
cow="$(cd "$build" && pwd)/tools/cow/cow"
runs=${COW_BENCH_RUNS:-3}
nfiles=${COW_BENCH_FILES:-20000}
bigmib=${COW_BENCH_BIG_MIB:-1024}

median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
now() { date +%s.%N; }
drop() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

plot() {
	command -v gnuplot >/dev/null 2>&1 || return 0
	for p in untar cp_r write_1g read_1g cp_1g; do
		for e in ext4 fuse-passthrough cowkit btrfs xfs; do
			v=$(awk -F, -v p=$p -v e=$e '$1 == p && $2 == e { print $4 }' "$csv" | median)
			lo=$(awk -F, -v p=$p -v e=$e '$1 == p && $2 == e { print $4 }' "$csv" | sort -g | head -1)
			hi=$(awk -F, -v p=$p -v e=$e '$1 == p && $2 == e { print $4 }' "$csv" | sort -g | tail -1)
			[ "$v" = nan ] || echo "$p-$e $v ${lo:-$v} ${hi:-$v}"
		done
	done >"$results/fs.dat"
	gnuplot <<EOF
set terminal png size 1100,500 noenhanced
set output "$results/fs.png"
set title "cow mount (FUSE) vs the disk, a FUSE pass-through, btrfs and XFS: seconds, median (min-max) of $runs rounds"
set style fill solid 0.6
set boxwidth 0.7
set xtics rotate by -40
set ylabel "seconds"
set logscale y
plot "$results/fs.dat" using 0:2:3:4:(0.7):xtic(1) with boxerrorbars notitle
EOF
	rm -f "$results/fs.dat"
}

if [ "$plot_only" = "--plot-only" ]; then
	plot
	exit 0
fi
[ -e /dev/fuse ] || {
	echo "fs bench: no /dev/fuse here: skipped"
	exit 0
}
[ -x "$cow" ] || {
	echo "fs bench: no $cow: build first"
	exit 1
}

work=$(mktemp -d "${COW_BENCH_DIR:-${TMPDIR:-/tmp}}/fsbench.XXXXXX")
loops=""
cleanup() {
	for m in "$work/cow" "$work/pt"; do
		mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m" 2>/dev/null
	done
	for m in $loops; do umount "$m" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
tmpcsv="$csv.tmp"
echo "phase,engine,round,seconds" >"$tmpcsv"
echo "fs bench in $work (load $(cut -d' ' -f1-3 /proc/loadavg))"

# The tree: $nfiles files of 100 B to 4 KiB in 100 directories, as one tar.
python3 - "$work/gen" "$nfiles" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
for i in range(n):
    d = os.path.join(root, f"d{i % 100}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(rng.randbytes(rng.randrange(100, 4096)))
PY
tar cf "$work/tree.tar" -C "$work/gen" .
rm -rf "$work/gen"
head -c "${bigmib}M" /dev/urandom >"$work/big"

# Engines: NAME DIR (mounted, empty).
mkdir -p "$work/ext4" "$work/ptsrc" "$work/pt" "$work/cow"
engines="ext4:$work/ext4"
if command -v bindfs >/dev/null 2>&1 && bindfs "$work/ptsrc" "$work/pt" 2>/dev/null; then
	engines="$engines fuse-passthrough:$work/pt"
else
	echo "bindfs missing or not allowed: no FUSE pass-through"
fi
export COW_STORE="$work/s.cow"
"$cow" init >/dev/null
"$cow" fs create home
"$cow" mount home "$work/cow" || {
	echo "fs bench: cow mount failed"
	exit 1
}
engines="$engines cowkit:$work/cow"
for fs in btrfs xfs; do
	command -v "mkfs.$fs" >/dev/null 2>&1 || continue
	img="$work/$fs.img"
	truncate -s $((bigmib * 3 + 2048))M "$img"
	"mkfs.$fs" -q "$img" >/dev/null 2>&1 || mkfs."$fs" -f "$img" >/dev/null 2>&1 || continue
	mkdir -p "$work/$fs"
	if mount -o loop "$img" "$work/$fs" 2>/dev/null; then
		loops="$loops $work/$fs"
		engines="$engines $fs:$work/$fs"
	else
		echo "no loop mount allowed: no $fs"
	fi
done

timed() { # timed PHASE ENGINE ROUND CMD...: append the seconds CMD took
	phase=$1 engine=$2 round=$3
	shift 3
	t0=$(now)
	"$@"
	t1=$(now)
	echo "$phase,$engine,$round,$(echo "$t1 - $t0" | bc -l)" >>"$tmpcsv"
}
untar() { tar xf "$work/tree.tar" -C "$1/t"; }
cp_r() { cp -r "$1/t" "$1/t2"; }
write_big() { dd if="$work/big" of="$1/big" bs=1M conv=fdatasync status=none; }
read_big() { cat "$1/big" >/dev/null; }
cp_big() {
	cp --reflink=auto "$1/big" "$1/big2"
	sync "$1/big2"
}

r=1
while [ "$r" -le "$runs" ]; do
	# Rotate who goes first.
	set -- $engines
	k=1
	while [ "$k" -lt "$r" ]; do
		first=$1
		shift
		set -- "$@" "$first"
		k=$((k + 1))
	done
	for ed in "$@"; do
		e=${ed%%:*} d=${ed#*:}
		rm -rf "$d/t" "$d/t2" "$d/big" "$d/big2"
		sync
		mkdir "$d/t"
		timed untar "$e" "$r" untar "$d"
		timed cp_r "$e" "$r" cp_r "$d"
		timed write_1g "$e" "$r" write_big "$d"
		drop
		timed read_1g "$e" "$r" read_big "$d"
		timed cp_1g "$e" "$r" cp_big "$d"
		echo "round $r $e done"
	done
	r=$((r + 1))
done

# A snapshot of the 20,000-file tree while a writer appends and fsyncs.
mkdir -p "$work/cow/t"
[ -e "$work/cow/t/d0" ] || tar xf "$work/tree.tar" -C "$work/cow/t"
python3 - "$work/cow/w" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
end = time.time() + 6
while time.time() < end:
    os.write(fd, b"x" * 65536)
    os.fsync(fd)
PY
writer=$!
sleep 1
i=1
while [ "$i" -le 5 ]; do
	timed snapshot cowkit "$i" "$cow" snapshot "home@s$i"
	sleep 0.5
	i=$((i + 1))
done
wait "$writer"
"$cow" umount "$work/cow"
sleep 1
mv -f "$tmpcsv" "$csv"
plot

for p in untar cp_r write_1g read_1g cp_1g snapshot; do
	line="$p:"
	for e in ext4 fuse-passthrough cowkit btrfs xfs; do
		v=$(awk -F, -v p=$p -v e=$e '$1 == p && $2 == e { print $4 }' "$csv" | median)
		[ "$v" = nan ] || line="$line $e $(printf %.3f "$v") s"
	done
	echo "$line"
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
