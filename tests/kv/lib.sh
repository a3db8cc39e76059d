# Shared by the kv tests: start examples/kv on a free port in a scratch dir.
#   . lib.sh; need redis-cli; kv_start [kv options]; R get k; kv_stop
# Sets KV_PID, KV_PORT, DIR. Skips (exit 77) with a reason when a tool is missing.

need() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || {
			echo "SKIP: $t not installed (Debian redis-tools; scripts/deps.sh test)"
			exit 77
		}
	done
}

fail() {
	echo "FAIL: $*"
	[ -n "${DIR:-}" ] && [ -f "$DIR/kv.log" ] && sed 's/^/  log: /' "$DIR/kv.log"
	exit 1
}

DIR=$(mktemp -d "${TMPDIR:-/tmp}/cowkv.XXXXXX")
KV_PID=
cleanup() {
	[ -n "$KV_PID" ] && kill -9 "$KV_PID" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT

R() {
	redis-cli -p "$KV_PORT" "$@"
}

# kv_start [options]: start kv, wait until it answers PING (or fail).
kv_start() {
	for try in 1 2 3 4 5; do
		KV_PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
		"$KV" --port "$KV_PORT" --dir "$DIR" "$@" 2>>"$DIR/kv.log" &
		KV_PID=$!
		i=0
		while [ $i -lt 200 ]; do
			if [ "$(R ping 2>/dev/null)" = PONG ]; then
				return 0
			fi
			kill -0 "$KV_PID" 2>/dev/null || break
			sleep 0.02
			i=$((i + 1))
		done
		kill -9 "$KV_PID" 2>/dev/null
		wait "$KV_PID" 2>/dev/null
		KV_PID=
		grep -q "cannot listen" "$DIR/kv.log" || fail "kv did not start"
	done
	fail "no free port"
}

# kv_stop: SHUTDOWN and wait for the process to exit 0.
kv_stop() {
	R shutdown "$@" >/dev/null 2>&1 || true
	wait "$KV_PID"
	rc=$?
	KV_PID=
	[ $rc -eq 0 ] || fail "kv exited $rc after SHUTDOWN"
}

# expect WANT CMD...: the output of redis-cli CMD... equals WANT.
expect() {
	want=$1
	shift
	got=$(R "$@" 2>&1)
	[ "$got" = "$want" ] || fail "redis-cli $*: got '$got', want '$want'"
}

# info FIELD: one INFO field.
info() {
	R info | tr -d '\r' | sed -n "s/^$1://p"
}

# gen_set N PREFIX SIZE: RESP SETs of key:%012d (redis-benchmark's key names)
# to "PREFIX:i:" padded with dots to SIZE bytes, for redis-cli --pipe.
gen_set() {
	awk -v n="$1" -v pfx="$2" -v size="$3" 'BEGIN {
		pad = "."; while (length(pad) < size) pad = pad pad
		for (i = 0; i < n; i++) {
			k = sprintf("key:%012d", i); v = pfx ":" i ":"; v = v substr(pad, 1, size - length(v))
			printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
		}
	}'
}

# gen_expect N PREFIX SIZE: the values gen_set wrote, one a line.
gen_expect() {
	awk -v n="$1" -v pfx="$2" -v size="$3" 'BEGIN {
		pad = "."; while (length(pad) < size) pad = pad pad
		for (i = 0; i < n; i++) { v = pfx ":" i ":"; print v substr(pad, 1, size - length(v)) }
	}'
}

# fetch N: GET every key:%012d, one value a line.
fetch() {
	awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "GET key:%012d\n", i }' | R
}

# wait_save: until no BGSAVE runs (at most 120 s).
wait_save() {
	i=0
	while [ "$(info rdb_bgsave_in_progress)" != 0 ]; do
		[ $i -lt 6000 ] || fail "BGSAVE never finished"
		sleep 0.02
		i=$((i + 1))
	done
}
