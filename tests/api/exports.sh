#!/bin/sh
# The shared library exports cow_* functions and nothing else.
lib=$1
command -v nm >/dev/null || { echo "SKIP: nm not installed (binutils)"; exit 77; }
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' |
	grep -v -E '^(cow_|_init$|_fini$|_edata$|_end$|__bss_start$)')
n=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^cow_')
if [ -n "$bad" ]; then
	echo "symbols exported that are not cow_*:"
	echo "$bad"
	exit 1
fi
[ "$n" -gt 0 ] || { echo "no cow_* symbols exported at all"; exit 1; }
echo "ok: $n cow_* symbols, nothing else"
