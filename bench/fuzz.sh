#!/bin/sh
# bench/fuzz.sh [MINUTES [TARGET...]]
# bench/fuzz.sh BUILD_DIR RESULTS_DIR        (as bench/run.sh calls it: 1 minute each,
#                                             or $FUZZ_MINUTES)
#
# Builds the libFuzzer targets with clang (ASan+UBSan, COW_FUZZ=ON) in their
# own build directory ($COW_FUZZ_BUILD, default build-fuzz) and runs each for
# MINUTES (default 1, fractions allowed), one after the other, on one core.
# Each target starts from its checked-in corpus tests/fuzz/corpus/<t>/ and
# grows a working corpus in BUILD/fuzz-corpus/<t>/; crashes, leaks and
# timeouts land in BUILD/fuzz-artifacts/<t>/ and make the script exit 1.
# libFuzzer runs in fork mode and goes on after a crash or a timeout, so one
# run collects every distinct failure it meets (FUZZ_FORK=0: stop at the first).
# With RESULTS_DIR: a summary line per target in fuzz.csv, coverage over
# time in fuzz_<t>.csv, and the plot fuzz.png.
#
# Adding a target: tests/fuzz/fuzz_<t>.c, tests/fuzz/corpus/<t>/, and its
# name on the line below (and in COW_FUZZ_TARGETS in tests/fuzz.cmake).
targets_all="open recv"
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
minutes=1
results=""
case "${1:-1}" in
*[!0-9.]*) results=${2:-}; minutes=${FUZZ_MINUTES:-1}; shift $# ;; # bench/run.sh
*) minutes=${1:-1}; shift $(( $# > 0 ? 1 : 0 )) ;;
esac
targets=${*:-$targets_all}

if ! command -v clang >/dev/null 2>&1; then
	echo "fuzz.sh: clang is missing (scripts/deps.sh fuzz installs it); skipped" >&2
	exit 0
fi
build=${COW_FUZZ_BUILD:-$root/build-fuzz}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	-DCMAKE_CXX_COMPILER=clang++ -DCOW_FUZZ=ON >/dev/null
for t in $targets; do
	cmake --build "$build" -j "${JOBS:-2}" --target "fuzz_$t" >/dev/null
done

seconds=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); print s < 1 ? 1 : s }')
if [ -n "$results" ]; then
	mkdir -p "$results"
	echo "target,seconds,runs,execs_per_s,corpus_files,corpus_kib,coverage,features,failures" \
		>"$results/fuzz.csv"
fi
status=0
for t in $targets; do
	work="$build/fuzz-corpus/$t"
	art="$build/fuzz-artifacts/$t"
	log="$build/fuzz-$t.log"
	mkdir -p "$work" "$art"
	echo "fuzz.sh: $t for ${seconds}s (log $log)" >&2
	rc=0
	mode="-print_final_stats=1"
	if [ "${FUZZ_FORK:-1}" = 1 ]; then
		mode="-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
	fi
	# -rss_limit_mb: ASan's own overhead; -timeout: a stuck input is a finding.
	# shellcheck disable=SC2086
	COW_LOG=off "$build/tests/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=4096 -max_len=1048576 $mode \
		-artifact_prefix="$art/" "$work" "$root/tests/fuzz/corpus/$t" \
		>"$log" 2>&1 || rc=$?
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
	runs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
	speed=$(echo "$last" | sed -n 's/.*exec\/s:* \([0-9]*\).*/\1/p')
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	files=$(find "$work" -type f | wc -l)
	kib=$(du -sk "$work" | cut -f1)
	fails=$(find "$art" -type f | wc -l)
	echo "fuzz.sh: $t: ${runs:-?} runs, ${speed:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}," \
		"corpus $files files ($kib KiB), $fails failure(s), exit $rc" >&2
	if [ -n "$results" ]; then
		echo "$t,$seconds,${runs:-0},${speed:-0},$files,$kib,${cov:-0},${ft:-0},$fails" \
			>>"$results/fuzz.csv"
		# Coverage over time, from libFuzzer's fork-mode status lines.
		prog="$results/fuzz_$t.csv"
		echo "seconds,runs,coverage,features" >"$prog"
		sed -n 's/^#\([0-9]*\): cov: \([0-9]*\) ft: \([0-9]*\) .* time: \([0-9]*\)s.*/\4,\1,\2,\3/p' \
			"$log" >>"$prog"
		plots="${plots:-}${plots:+, }'$prog' using 1:3 with lines title '$t'"
	fi
	if [ "$rc" -ne 0 ] || [ "$fails" -gt 0 ]; then
		echo "fuzz.sh: $t failed; see $log and $art/" >&2
		status=1
	fi
done
if [ -n "$results" ] && [ -n "${plots:-}" ] && command -v gnuplot >/dev/null 2>&1; then
	gnuplot <<-EOF
		set terminal pngcairo size 900,560 noenhanced
		set output '$results/fuzz.png'
		set datafile separator ','
		set key autotitle columnhead bottom right
		set title 'fuzz targets: coverage over time (libFuzzer edges, one core)'
		set xlabel 'seconds'
		set ylabel 'covered edges'
		plot $plots
	EOF
fi
echo "fuzz.sh: to keep new coverage in the checked-in corpus (small inputs only):" >&2
echo "  $build/tests/fuzz_<t> -merge=1 -max_len=65536 tests/fuzz/corpus/<t> $build/fuzz-corpus/<t>" >&2
exit $status
