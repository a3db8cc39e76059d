# Shared by the NBD tests: sourced as `. lib.sh COW PLUGIN`.
# Skips (exit 77, with the reason) when a client or the plugin is missing,
# makes a scratch folder $T with a store $S, and starts and stops nbdkit.
set -eu
COW=$1
PLUGIN=${2:-}
if [ -z "$PLUGIN" ] || [ ! -f "$PLUGIN" ]; then
	echo "SKIP: nbdkit-cow-plugin was not built (install nbdkit-plugin-dev, then reconfigure)"
	exit 77
fi
if [ -n "${COW_SANITIZE:-}" ]; then
	# nbdkit is not built with sanitizers, so it cannot dlopen a sanitized plugin.
	echo "SKIP: this build is sanitized ($COW_SANITIZE); nbdkit cannot load its plugin"
	exit 77
fi
need() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || {
			echo "SKIP: $c is not installed (scripts/deps.sh nbd installs nbdkit, libnbd-bin, qemu-utils)"
			exit 77
		}
	done
}
need nbdkit python3
T=$(mktemp -d)
S=$T/s.cow
SOCK=$T/nbd.sock
URI="nbd+unix:///?socket=$SOCK"
SERVER=
cleanup() {
	[ -n "$SERVER" ] && kill -9 "$SERVER" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
export COW_STORE=$S

# start VOLUME [nbdkit args...]: nbdkit on $SOCK, in the background; $SERVER is its pid.
start() {
	vol=$1
	shift
	rm -f "$T/pid" "$SOCK"
	nbdkit --foreground -U "$SOCK" -P "$T/pid" "$@" "$PLUGIN" store="$S" volume="$vol" \
		2>>"$T/nbdkit.log" &
	SERVER=$!
	_w=0
	while [ ! -s "$T/pid" ]; do
		kill -0 "$SERVER" 2>/dev/null || { cat "$T/nbdkit.log"; echo "nbdkit did not start"; exit 1; }
		_w=$((_w + 1))
		[ $_w -lt 500 ] || { echo "nbdkit did not start in 10 s"; exit 1; }
		sleep 0.02
	done
}

# stop [SIGNAL]: stop nbdkit (TERM: cleanly, the plugin commits its cache).
stop() {
	kill -"${1:-TERM}" "$SERVER"
	wait "$SERVER" 2>/dev/null || true
	SERVER=
}

fail() {
	echo "FAIL: $*"
	[ -f "$T/nbdkit.log" ] && tail -n 20 "$T/nbdkit.log"
	exit 1
}
