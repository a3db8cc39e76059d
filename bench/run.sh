#!/bin/sh
# Run every benchmark: bench/run.sh BUILD_DIR [NAME...]
# Each bench/<name>.sh writes <name>.csv and a PNG plot into a scratch
# folder; only a bench that finishes replaces its files in bench/results, so
# stopping a run (Ctrl-C, a failure) never wipes results already there.
set -eu
build=${1:-build}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/results"
names=${*:-$(ls "$here" | sed -n 's/^\(.*\)\.sh$/\1/p' | grep -v '^run$' || true)}
if [ -z "$names" ]; then
	echo "no benchmarks yet"
	exit 0
fi
scratch=$(mktemp -d "$here/results/.run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
for n in $names; do
	echo "=== bench $n"
	rm -rf "$scratch"/* "$scratch"/.[!.]* 2>/dev/null || true
	# Plot-only reruns read the committed CSV: give the bench what is there.
	cp "$here/results/$n".* "$here/results/${n}_"* "$scratch"/ 2>/dev/null || true
	sh "$here/$n.sh" "$build" "$scratch"
	for f in "$scratch"/*; do
		[ -e "$f" ] || continue
		mv -f "$f" "$here/results/$(basename "$f")"
	done
done
