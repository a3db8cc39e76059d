#!/bin/sh
# Run every benchmark: bench/run.sh BUILD_DIR [NAME...]
# Each bench/<name>.sh writes bench/results/<name>.csv and a PNG plot.
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
for n in $names; do
	echo "=== bench $n"
	sh "$here/$n.sh" "$build" "$here/results"
done
