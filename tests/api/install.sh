#!/bin/sh
# `make install` into a temporary prefix, then build and run a program
# against the installed library with pkg-config, as a library user would.
# usage: install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config not installed"; exit 77; }
if [ -n "${COW_SANITIZE:-}" ]; then
	# A sanitized libcow.so only runs under a sanitized program; the plain build checks this.
	echo "SKIP: this build is sanitized ($COW_SANITIZE); the install is checked in the plain build"
	exit 77
fi
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name cow.pc -printf '%h\n' | head -n 1)
[ -n "$libdir" ] || { echo "cow.pc was not installed"; exit 1; }
test -f "$prefix/include/cow/store.h" || { echo "headers missing under include/cow/"; exit 1; }
test -f "$prefix/share/man/man1/cow.1" || { echo "man page missing"; exit 1; }
# The installed cow.pc names the prefix it was configured for; point it here.
sed "s|^prefix=.*|prefix=$prefix|" "$libdir/cow.pc" >"$prefix/cow.pc"
flags=$(PKG_CONFIG_PATH="$prefix" pkg-config --cflags --libs cow)
# shellcheck disable=SC2086
cc -std=c11 -Wall -Werror -o "$prefix/prog" "$src/examples/version.c" $flags
LD_LIBRARY_PATH="$(dirname "$libdir")" "$prefix/prog" | grep -q "cowkit" || { echo "the program did not run"; exit 1; }
"$prefix/bin/cow" --version | grep -q "^cow " || { echo "installed cow does not run"; exit 1; }
echo "ok: installed to a prefix, built with pkg-config, ran"
