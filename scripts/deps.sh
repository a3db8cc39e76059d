#!/bin/sh
# Install the Debian packages cowkit needs, or say which are missing.
#
#   scripts/deps.sh [build|test|nbd|bench|fuzz]...   (default: build test)
#
# Does nothing when everything is present. As root it runs apt-get; as any
# other user it names the missing packages and exits 1.
set -eu

build="cmake make gcc g++ pkg-config liburcu-dev libxxhash-dev libfuse3-dev"
test="python3 binutils btrfs-progs xfsprogs redis-tools fuse3 rsync git fio"
bench="liblmdb-dev librocksdb-dev libsqlite3-dev bindfs bc gnuplot-nox btrfs-progs xfsprogs qemu-utils redis-server redis-tools"
fuzz="clang"
# The NBD plugin and the real clients its tests drive (part of test).
nbd="nbdkit nbdkit-plugin-dev libnbd-bin qemu-utils"

groups="${*:-build test}"
want=""
for g in $groups; do
	case "$g" in
	build) want="$want $build" ;;
	test) want="$want $build $test $nbd" ;;
	nbd) want="$want $build $nbd" ;;
	bench) want="$want $build $bench $nbd fio" ;;
	fuzz) want="$want $build $fuzz" ;;
	*) echo "deps.sh: unknown group '$g' (build, test, nbd, bench, fuzz)" >&2; exit 2 ;;
	esac
done

missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "cowkit needs these Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
