#!/bin/sh
# bench/versions.sh BUILD_DIR RESULTS_DIR
#
# What versions of a cowkit volume cost, beside the same operations on
# btrfs and XFS (reflinks, FICLONE) and a qcow2 overlay:
#   - snapshot+commit and clone+commit time, 1 MiB / 1 GiB / 16 GiB (sparse)
#     objects, fresh and after random overwrites; FICLONE and cp --reflink
#   - 4 KiB random overwrites into a fresh clone vs an unshared object
#   - volume sequential write vs a raw file's buffered write + fdatasync
#   - destroy time against exclusive size
# bench/versions_bench.c says exactly what is written.
#
# Writes RESULTS_DIR/versions.csv and versions.png; prints ratios vs the
# targets of docs/bench-versions.md. Never asserts on time.
#
# Scratch space: a folder under ${TMPDIR:-/var/tmp} (up to ~4 GiB at once),
# removed at the end. For the btrfs and XFS peers the script creates two
# sparse 8 GiB image files there, attaches them to loop devices, makes the
# file systems, mounts them, and unmounts, detaches and removes them at the
# end (also on error or interrupt). Without root, loop devices, mkfs.* or
# permission to mount, those peers are skipped with the reason printed.
#
# Knobs: VERSIONS_RUNS (7), VERSIONS_FRAG (16384), VERSIONS_RANDW (20000),
# VERSIONS_RANDW_RUNS (5), VERSIONS_SEQ_MIB (1024), VERSIONS_BIG=0 (no 16 GiB
# object), VERSIONS_PEERS="xfs btrfs qcow2" (which peers to run),
# VERSIONS_REPORT_ONLY=1 (only the summary and plot of an existing CSV).
set -eu
build=$1
out=$2
mkdir -p "$out"
bin="$build/bench/versions_bench"
[ -x "$bin" ] || { echo "versions.sh: build first ($bin)" >&2; exit 1; }
peers=${VERSIONS_PEERS-"xfs btrfs qcow2"}
randw_n=${VERSIONS_RANDW:-20000}
randw_runs=${VERSIONS_RANDW_RUNS:-5}

work=$(mktemp -d "${TMPDIR:-/var/tmp}/cowkit-versions.XXXXXX")
mounts=""
loops=""
cleanup() {
	for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	for d in $loops; do losetup -d "$d" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Rows go to a scratch file that replaces versions.csv only once complete:
# a stopped run leaves the previous results whole.
final="$out/versions.csv"
csv="$work/versions.csv"
notes="$work/notes"
: >"$notes"
if [ "${VERSIONS_REPORT_ONLY:-0}" = 1 ]; then
	# Summary and plot of an existing CSV only.
	csv=$final
	[ -s "$csv" ] || { echo "versions.sh: no $csv to report" >&2; exit 1; }
else
echo "experiment,system,variant,size_bytes,metric,median,min,max,n,extra" >"$csv"

# ---- cowkit, in the scratch folder on the disk that holds TMPDIR ----
"$bin" snap "$work" >>"$csv"
"$bin" randw "$work" >>"$csv"
"$bin" seq "$work" >>"$csv"
"$bin" destroy "$work" >>"$csv"

# ---- btrfs and XFS on loop devices ----
# fs_up FS: make and mount FS on a loop device; sets $mnt, or $reason and
# returns 1.
fs_up() {
	fs=$1
	mnt=""
	if [ "$(id -u)" -ne 0 ]; then
		reason="not root: cannot attach loop devices or mount"
		return 1
	fi
	command -v "mkfs.$fs" >/dev/null 2>&1 || {
		reason="mkfs.$fs not installed (scripts/deps.sh bench)"
		return 1
	}
	img="$work/$fs.img"
	truncate -s 8G "$img"
	dev=$(losetup -f --show --direct-io=on "$img" 2>&1) || {
		reason="losetup refused: $dev"
		return 1
	}
	loops="$loops $dev"
	case $fs in
	xfs) mk=$(mkfs.xfs -q -f -m reflink=1 "$dev" 2>&1) ;;
	btrfs) mk=$(mkfs.btrfs -q -f "$dev" 2>&1) ;;
	esac || {
		reason="mkfs.$fs failed: $mk"
		return 1
	}
	mkdir -p "$work/$fs.mnt"
	mo=$(mount "$dev" "$work/$fs.mnt" 2>&1) || {
		reason="mount refused: $mo"
		return 1
	}
	mounts="$work/$fs.mnt $mounts"
	mnt="$work/$fs.mnt"
	echo "versions: $fs on $dev (sparse 8 GiB image in the scratch folder), mounted on $mnt" >&2
}

fs_down() {
	umount "$mnt"
	mounts=$(echo "$mounts" | sed "s|$mnt||")
	losetup -d "$dev"
	loops=$(echo "$loops" | sed "s|$dev||")
	rm -f "$img"
}

for fs in xfs btrfs; do
	case " $peers " in *" $fs "*) ;; *) continue ;; esac
	if fs_up "$fs"; then
		"$bin" fsclone "$mnt" "$fs" >>"$csv"
		"$bin" fsrandw "$mnt" "$fs" >>"$csv"
		fs_down
	else
		echo "versions: skipping $fs: $reason" >&2
		echo "skipped $fs: $reason" >>"$notes"
	fi
done

# ---- qcow2 overlay (qemu-img bench, writeback cache, flush every 1,000) ----
qcow_n=$((randw_n / 2))
if ! case " $peers " in *" qcow2 "*) true ;; *) false ;; esac; then
	:
elif ! command -v qemu-img >/dev/null 2>&1 || ! command -v qemu-io >/dev/null 2>&1; then
	echo "versions: skipping qcow2: qemu-img/qemu-io not installed (scripts/deps.sh bench)" >&2
	echo "skipped qcow2: qemu-utils not installed" >>"$notes"
else
	echo "versions: qcow2 random overwrites, 1 GiB images" >&2
	q="$work/qcow2"
	mkdir -p "$q"
	for f in base plain; do
		qemu-img create -q -f qcow2 "$q/$f.qcow2" 1G
		qemu-io -f qcow2 -t writeback -c 'write -q -P 0xab 0 1G' -c flush "$q/$f.qcow2"
	done
	# Scattered, distinct 4 KiB offsets: a stride of 40,009 blocks (odd).
	qbench() {
		qemu-img bench -f qcow2 -t writeback -w -d 1 -s 4k -c "$qcow_n" \
			-S $((40009 * 4096)) --flush-interval=1000 "$1" |
			sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p'
	}
	now_ms() { echo $(($(date +%s%N) / 1000000)); }
	u=""
	c=""
	o=""
	r=0
	while [ $r -lt "$randw_runs" ]; do
		s=$(qbench "$q/plain.qcow2")
		u="$u $(awk -v n="$qcow_n" -v s="$s" 'BEGIN { printf "%.1f", n / s }')"
		t0=$(now_ms)
		qemu-img create -q -f qcow2 -b "$q/base.qcow2" -F qcow2 "$q/ov.qcow2"
		o="$o $(($(now_ms) - t0))"
		s=$(qbench "$q/ov.qcow2")
		c="$c $(awk -v n="$qcow_n" -v s="$s" 'BEGIN { printf "%.1f", n / s }')"
		rm -f "$q/ov.qcow2"
		r=$((r + 1))
	done
	# Rows like versions_bench's: median, min, max over the runs.
	qrow() {
		echo "$3" | tr ' ' '\n' | grep . | sort -g | awk -v v="$1" -v m="$2" -v x="$4" '
			{ a[++n] = $1 }
			END {
				med = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
				printf "randw,qcow2,%s,1073741824,%s,%.4f,%.4f,%.4f,%d,%s\n", v, m, med, a[1], a[n], n, x
			}'
	}
	qrow unshared writes_per_s "$u" "qemu-img bench writeback flush every 1000 (fully allocated image)" >>"$csv"
	qrow clone writes_per_s "$c" "qemu-img bench writeback flush every 1000 (overlay over a full base)" >>"$csv"
	ratios=$(awk -v u="$u" -v c="$c" 'BEGIN {
		n = split(u, a, " "); split(c, b, " ")
		for (i = 1; i <= n; i++) printf " %.4f", b[i] / a[i]
	}')
	[ -n "$ratios" ] && qrow clone/unshared ratio "$ratios" "per run" >>"$csv"
	qrow overlay_create ms "$o" "qemu-img create -b (process, whole-ms clock)" >>"$csv"
	rm -rf "$q"
fi

mv -f "$csv" "$final"
csv=$final
fi # VERSIONS_REPORT_ONLY

# ---- summary: ratios against the targets ----
echo
if [ "${VERSIONS_REPORT_ONLY:-0}" = 1 ]; then
	echo "versions: report of $csv; medians"
else
	echo "versions: this run ($(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r)); medians"
fi
awk -F, -v notes="$notes" '
function v(e, s, var, sz, m,   k) {
	k = e SUBSEP s SUBSEP var SUBSEP sz SUBSEP m
	return (k in val) ? val[k] : ""
}
function verdict(x, t, ge) {
	if (x == "")
		return "n/a"
	return (ge ? x >= t : x <= t) ? "MET" : "MISSED"
}
function num(x, f) { return x == "" ? "-" : sprintf(f, x) }
function mn(e, s, var, sz, m,   k) {
	k = e SUBSEP s SUBSEP var SUBSEP sz SUBSEP m
	return (k in lo) ? lo[k] : ""
}
NR > 1 { val[$1, $2, $3, $4, $5] = $6; lo[$1, $2, $3, $4, $5] = $7; if ($1 == "seq") sq = $4 }
END {
	M = "1048576"; G = "1073741824"; G16 = "17179869184" # strings: mawk prints big numbers as 1.7e+10
	print "snapshot/clone + commit (ms): 1 MiB, 1 GiB, 16 GiB; ratio 16 GiB / 1 MiB (target <= 1.5)"
	nr = split("cowkit:snapshot_ms cowkit:clone_ms cowkit:snapshot_commit_ms cowkit:clone_commit_ms xfs:ficlone_ms xfs:cp_reflink_ms btrfs:ficlone_ms btrfs:cp_reflink_ms", rows, " ")
	for (st = 1; st <= 2; st++) {
		state = st == 1 ? "fresh" : "fragmented"
		for (i = 1; i <= nr; i++) {
			split(rows[i], p, ":")
			a = v("snap", p[1], state, M, p[2]); b = v("snap", p[1], state, G, p[2])
			c = v("snap", p[1], state, G16, p[2])
			if (a == "")
				continue
			r = (c != "" && a > 0) ? c / a : ""
			am = mn("snap", p[1], state, M, p[2]); cm = mn("snap", p[1], state, G16, p[2])
			rm = (cm != "" && am > 0) ? cm / am : ""
			printf "  %-6s %-13s %-10s %9s %9s %9s  ratio %6s  %-6s (of minimums %s)\n", p[1], p[2], state,
				num(a, "%.3f"), num(b, "%.3f"), num(c, "%.3f"), num(r, "%.2f"),
				p[1] != "cowkit" ? "(peer)" : p[2] ~ /commit/ ? "(part)" : verdict(r, 1.5, 0), num(rm, "%.2f")
		}
	}
	print "4 KiB random overwrites/s, durable every 1,000: unshared, fresh clone, clone/unshared (target >= 0.9)"
	ns = split("cowkit xfs btrfs qcow2", ss, " ")
	for (i = 1; i <= ns; i++) {
		u = v("randw", ss[i], "unshared", G, "writes_per_s")
		c = v("randw", ss[i], "clone", G, "writes_per_s")
		r = v("randw", ss[i], "clone/unshared", G, "ratio")
		if (u == "")
			continue
		printf "  %-6s %10.0f %10.0f  ratio %5.2f  %s\n", ss[i], u, c, r,
			ss[i] == "cowkit" ? verdict(r, 0.9, 1) : "(peer)"
	}
	o = v("randw", "qcow2", "overlay_create", G, "ms")
	if (o != "")
		printf "  (qcow2: qemu-img create -b of the overlay took %.0f ms, a process start included)\n", o
	print "sequential write MiB/s (target: volume >= 0.8x raw write + fdatasync)"
	printf "  raw file write+fdatasync     %8.0f\n", v("seq", "raw", "write+fdatasync", sq, "mib_per_s")
	r = v("seq", "cowkit", "one commit/raw", sq, "ratio")
	printf "  volume, one commit           %8.0f  ratio %5.2f  %s\n",
		v("seq", "cowkit", "one commit", sq, "mib_per_s"), r, verdict(r, 0.8, 1)
	r = v("seq", "cowkit", "commit every 64 MiB/raw", sq, "ratio")
	printf "  volume, commit every 64 MiB  %8.0f  ratio %5.2f  %s\n",
		v("seq", "cowkit", "commit every 64 MiB", sq, "mib_per_s"), r, verdict(r, 0.8, 1)
	print "destroy + commit (ms) against exclusive size"
	split("volume:1048576 volume:16777216 volume:268435456 volume:1073741824 clone:0 clone:1048576 clone:16777216 clone:268435456 clone_scattered:1000 clone_scattered:16384", ds, " ")
	for (i = 1; i in ds; i++) {
		split(ds[i], p, ":")
		ms = v("destroy", "cowkit", p[1], p[2], "destroy_ms")
		if (ms == "")
			continue
		if (p[1] == "clone_scattered")
			what = sprintf("clone of 1 GiB, %5d scattered 4 KiB writes", p[2])
		else if (p[1] == "clone")
			what = sprintf("clone of 1 GiB, %5d MiB overwritten     ", p[2] / M)
		else
			what = sprintf("volume of %4d MiB                      ", p[2] / M)
		printf "  %s exclusive %8.1f MiB  %9.3f ms\n", what,
			v("destroy", "cowkit", p[1], p[2], "exclusive_mib"), ms
	}
	while ((getline line < notes) > 0)
		print "  " line
}' "$csv"

# ---- plot ----
if command -v gnuplot >/dev/null 2>&1; then
	png="$work/versions.png"
	d="$work/plot"
	mkdir -p "$d"
	for s in cowkit:snapshot_ms cowkit:clone_ms xfs:ficlone_ms btrfs:ficlone_ms; do
		for st in fresh fragmented; do
			awk -F, -v s="${s%%:*}" -v m="${s#*:}" -v st="$st" \
				'$1 == "snap" && $2 == s && $3 == st && $5 == m { print $4 / 1048576, $6 }' \
				"$csv" >"$d/snap_${s%%:*}_${s#*:}_$st"
		done
	done
	awk -F, '$1 == "randw" && $5 == "writes_per_s" { w[$2, $3] = $6 }
		END {
			n = split("cowkit xfs btrfs qcow2", o, " ")
			for (i = 1; i <= n; i++)
				if ((o[i], "unshared") in w)
					print o[i], w[o[i], "unshared"], w[o[i], "clone"]
		}' "$csv" >"$d/randw"
	awk -F, '$1 == "seq" && $5 == "mib_per_s" {
		l = $2 == "raw" ? "raw" : ($3 == "one commit" ? "vol,1_commit" : "vol,commit/64MiB")
		print l, $6, $7, $8
	}' "$csv" >"$d/seq"
	awk -F, '$1 == "destroy" && $5 == "exclusive_mib" { ex[$3, $4] = $6 }
		$1 == "destroy" && $5 == "destroy_ms" { ms[$3, $4] = $6 }
		END { for (k in ms) { split(k, p, SUBSEP); print p[1], (ex[k] < 0.01 ? 0.01 : ex[k]), ms[k] } }' \
		"$csv" | sort -k1,1 -k2g >"$d/destroy"
	awk '$1 == "volume"' "$d/destroy" >"$d/destroy_volume"
	awk '$1 == "clone"' "$d/destroy" >"$d/destroy_clone"
	awk '$1 == "clone_scattered"' "$d/destroy" >"$d/destroy_scattered"
	plotlines=""
	for f in cowkit_snapshot_ms cowkit_clone_ms xfs_ficlone_ms btrfs_ficlone_ms; do
		for st in fresh fragmented; do
			[ -s "$d/snap_${f}_$st" ] || continue
			dt=1
			case $st in fragmented) dt=2 ;; esac
			plotlines="$plotlines${plotlines:+, }\"$d/snap_${f}_$st\" using 1:2 with linespoints dashtype $dt title \"${f%_ms} $st\""
		done
	done
	gnuplot <<EOF
set terminal pngcairo size 1200,900 noenhanced font ",10"
set output "$png"
set multiplot layout 2,2 title "cowkit volume versions vs btrfs/XFS FICLONE and a qcow2 overlay ($(date -u +%Y-%m-%d))"
set title "snapshot / clone + commit vs object size (median)"
set logscale xy
set xlabel "object size (MiB)"
set ylabel "ms"
set key top left
plot $plotlines
unset logscale
set title "4 KiB random overwrites, durable every 1,000 (1 GiB)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.7 border -1
set xlabel ""
set ylabel "writes/s"
set key top right
set yrange [0:*]
plot "$d/randw" using 2:xtic(1) title "unshared", "" using 3 title "fresh clone"
set title "sequential write (1 MiB writes), durable at the end; bars: min-max"
set ylabel "MiB/s"
plot "$d/seq" using 2:xtic(1) notitle, \
     "" using (\$0):2:3:4 with yerrorbars lc rgb "black" pt 0 notitle
set title "destroy + commit vs exclusive size"
set style data linespoints
set logscale xy
set xlabel "exclusive MiB (0 drawn as 0.01)"
set ylabel "ms"
set key bottom right
set yrange [*:*]
plot "$d/destroy_volume" using 2:3 title "volume (all exclusive)", \
     "$d/destroy_clone" using 2:3 title "clone of a 1 GiB volume, part overwritten", \
     "$d/destroy_scattered" using 2:3 title "clone of a 1 GiB volume, 1,000 / 16,384 scattered 4 KiB writes"
unset multiplot
EOF
	mv -f "$png" "$out/versions.png"
	echo "plot: $out/versions.png"
else
	echo "gnuplot not installed (scripts/deps.sh bench); CSV only"
fi
