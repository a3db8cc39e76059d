#!/bin/sh
# Space benchmark (day two): space given back and compaction (bench/space_bench.c,
# against LMDB's mdb_copy -c), then hot backup of a store with 100 clones of one
# volume against the same disks as qcow2 overlays (qemu-img convert) and, where a
# loop mount is allowed, as reflinked files on btrfs (cp --reflink). Same run.
#
#   bench/space.sh BUILD_DIR RESULTS_DIR [--plot-only]
#
# Writes RESULTS_DIR/space.csv (phase,engine,run,what,value: every run) and
# RESULTS_DIR/space.png. Sizes: COW_BENCH_VOL_MIB (destroy90 volumes, 100),
# COW_BENCH_KEYS (1,000,000), COW_BENCH_RUNS (5), COW_BENCH_BACKUP_MIB (the
# cloned volume, 256), COW_BENCH_CLONES (100). Scratch under COW_BENCH_DIR,
# else $TMPDIR, else /tmp (a real disk, not tmpfs).
set -eu
build=${1:-build}
results=${2:-bench/results}
plot_only=${3:-}
csv="$results/space.csv"
bin="$build/bench/space_bench"
cow="$build/tools/cow/cow"

median() { # median of the numbers on stdin
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
now() { date +%s.%N; }

backup_bench() {
	mib=${COW_BENCH_BACKUP_MIB:-256}
	clones=${COW_BENCH_CLONES:-100}
	runs=${COW_BENCH_BACKUP_RUNS:-3}
	work=$(mktemp -d "${COW_BENCH_DIR:-${TMPDIR:-/tmp}}/space_backup.XXXXXX")
	mnt=""
	trap 'if [ -n "$mnt" ]; then umount "$mnt" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
	echo "backup: $clones clones of a $mib MiB volume, each with one 4 KiB block of its own"
	head -c "${mib}M" /dev/urandom >"$work/base.raw"
	head -c 4096 /dev/urandom >"$work/blk"

	# cowkit: one volume, a snapshot, clones that each changed a block.
	export COW_STORE="$work/s.cow"
	"$cow" init >/dev/null
	"$cow" import "$work/base.raw" disk >/dev/null
	"$cow" snapshot disk@base >/dev/null
	i=1
	while [ "$i" -le "$clones" ]; do
		"$cow" clone disk@base "c$i" >/dev/null
		"$cow" vol write "c$i" $(((i * 7919 % (mib * 256)) * 4096)) <"$work/blk" >/dev/null 2>&1
		i=$((i + 1))
	done

	# qcow2: a base image and one overlay per clone with the same block written.
	have_qemu=0
	if command -v qemu-img >/dev/null 2>&1 && command -v qemu-io >/dev/null 2>&1; then
		have_qemu=1
		mkdir "$work/q"
		qemu-img convert -f raw -O qcow2 "$work/base.raw" "$work/q/base.qcow2"
		i=1
		while [ "$i" -le "$clones" ]; do
			qemu-img create -q -f qcow2 -b "$work/q/base.qcow2" -F qcow2 "$work/q/ov$i.qcow2"
			qemu-io -f qcow2 -c "write -P $((i % 250)) $(((i * 7919 % (mib * 256)) * 4096)) 4k" \
				"$work/q/ov$i.qcow2" >/dev/null
			i=$((i + 1))
		done
	else
		echo "backup: qemu-img/qemu-io missing (scripts/deps.sh bench): no qcow2 peer"
	fi

	# btrfs: reflinked copies of the raw image on a loop mount, where allowed.
	have_btrfs=0
	if [ "$(id -u)" -eq 0 ] && command -v mkfs.btrfs >/dev/null 2>&1; then
		truncate -s $((mib * 4 + 1024))M "$work/btrfs.img"
		mnt="$work/mnt"
		mkdir "$mnt"
		if mkfs.btrfs -q "$work/btrfs.img" >/dev/null 2>&1 && mount -o loop "$work/btrfs.img" "$mnt" 2>/dev/null; then
			have_btrfs=1
			mkdir "$mnt/src"
			cp "$work/base.raw" "$mnt/src/base.raw"
			i=1
			while [ "$i" -le "$clones" ]; do
				cp --reflink=always "$mnt/src/base.raw" "$mnt/src/v$i.raw"
				dd if="$work/blk" of="$mnt/src/v$i.raw" bs=4096 seek=$((i * 7919 % (mib * 256))) conv=notrunc status=none
				i=$((i + 1))
			done
			sync
		else
			mnt=""
			echo "backup: no btrfs loop mount here: no btrfs peer"
		fi
	else
		echo "backup: not root or no mkfs.btrfs: no btrfs peer"
	fi

	r=0
	while [ "$r" -lt "$runs" ]; do
		rm -rf "$work/b.cow" "$work/bq"
		sync
		t0=$(now)
		"$cow" backup "$work/b.cow" >/dev/null
		t1=$(now)
		echo "backup,cowkit,$r,secs,$(echo "$t1 - $t0" | bc -l)" >>"$csv"
		echo "backup,cowkit,$r,disk_mib,$(du -s --block-size=1 "$work/b.cow" | awk '{ print $1 / 1048576 }')" >>"$csv"
		rm -f "$work/b.cow"
		if [ "$have_qemu" -eq 1 ]; then
			# A copy that keeps the sharing: the base, then each overlay against the copied base.
			mkdir "$work/bq"
			sync
			t0=$(now)
			qemu-img convert -O qcow2 "$work/q/base.qcow2" "$work/bq/base.qcow2"
			i=1
			while [ "$i" -le "$clones" ]; do
				qemu-img convert -O qcow2 -B "$work/bq/base.qcow2" -F qcow2 "$work/q/ov$i.qcow2" "$work/bq/ov$i.qcow2"
				i=$((i + 1))
			done
			sync -f "$work/bq/base.qcow2"
			t1=$(now)
			echo "backup,qcow2,$r,secs,$(echo "$t1 - $t0" | bc -l)" >>"$csv"
			echo "backup,qcow2,$r,disk_mib,$(du -s --block-size=1 "$work/bq" | awk '{ print $1 / 1048576 }')" >>"$csv"
			rm -rf "$work/bq"
		fi
		if [ "$have_btrfs" -eq 1 ]; then
			rm -rf "$mnt/bk"
			sync
			t0=$(now)
			cp -a --reflink=always "$mnt/src" "$mnt/bk"
			sync -f "$mnt/bk"
			t1=$(now)
			echo "backup,btrfs_reflink,$r,secs,$(echo "$t1 - $t0" | bc -l)" >>"$csv"
			# What the copy adds on the file system: exclusive bytes of the copy's files.
			add=$(btrfs filesystem du -s --raw "$mnt/bk" 2>/dev/null | awk 'NR == 2 { print $2 / 1048576 }')
			echo "backup,btrfs_reflink,$r,disk_mib,${add:-nan}" >>"$csv"
		fi
		r=$((r + 1))
	done
	for e in cowkit qcow2 btrfs_reflink; do
		s=$(awk -F, -v e="$e" '$1 == "backup" && $2 == e && $4 == "secs" { print $5 }' "$csv" | median)
		d=$(awk -F, -v e="$e" '$1 == "backup" && $2 == e && $4 == "disk_mib" { print $5 }' "$csv" | median)
		[ "$s" = nan ] || printf '  %-14s median %6.2f s, %8.1f MiB on disk\n' "$e" "$s" "$d"
	done
	if [ -n "$mnt" ]; then
		umount "$mnt"
		mnt=""
	fi
	rm -rf "$work"
	trap - EXIT
}

if [ "$plot_only" != "--plot-only" ]; then
	if [ ! -x "$bin" ]; then
		echo "space: $bin not built (lmdb missing? scripts/deps.sh bench); skipped"
		exit 0
	fi
	mkdir -p "$results"
	echo "space: $(date -u '+%Y-%m-%d %H:%M UTC'), stores under ${COW_BENCH_DIR:-${TMPDIR:-/tmp}}"
	"$bin" "$csv"
	backup_bench
fi

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "space: gnuplot not installed; no plot (scripts/deps.sh bench)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Left: file size over live data after destroy, trim (on disk) and compact.
# Right: backup of the clones, time and space, per engine.
{
	live=$(awk -F, '$1 == "destroy90" && $4 == "live_mib" { print $5 }' "$csv" | median)
	for w in "file_mib_destroyed:file after destroy" "disk_mib_destroyed:disk after destroy" \
		"disk_mib_trimmed:disk after trim" "file_mib_compacted:file after compact"; do
		v=$(awk -F, -v w="${w%%:*}" '$1 == "destroy90" && $4 == w { print $5 }' "$csv" | median)
		echo "\"${w#*:}\" $(echo "$v / $live" | bc -l)"
	done
} >"$tmp/d90.dat"
for e in cowkit qcow2 btrfs_reflink; do
	s=$(awk -F, -v e="$e" '$1 == "backup" && $2 == e && $4 == "secs" { print $5 }' "$csv" | median)
	d=$(awk -F, -v e="$e" '$1 == "backup" && $2 == e && $4 == "disk_mib" { print $5 }' "$csv" | median)
	[ "$s" = nan ] || echo "$e $s $d"
done >"$tmp/backup.dat"
gnuplot <<EOF
set terminal pngcairo size 1100,420 noenhanced
set output "$results/space.png"
set multiplot layout 1,2
set style data histograms
set style fill solid 0.8
set boxwidth 0.7
set grid ytics
set title "1 GiB store, 90% destroyed: file / live data (target after compact <= 1.1)"
set ylabel "x live data"
set yrange [0:*]
set xtics rotate by -20
plot "$tmp/d90.dat" using 2:xtic(1) notitle lc rgb "#4477aa", 1.1 title "1.1x" lc rgb "#cc3311"
set xtics norotate
set title "backup of 100 clones of one 256 MiB volume (median)"
set key left top
set ylabel "seconds"
set y2label "MiB on disk"
set y2tics
plot "$tmp/backup.dat" using 2:xtic(1) title "time (s)" lc rgb "#4477aa", "" using 3 axes x1y2 title "space (MiB)" lc rgb "#ee7733"
unset multiplot
EOF
echo "space: wrote $csv and $results/space.png"
