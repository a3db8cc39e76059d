#!/bin/sh
# kv answers redis-cli: every command it implements, binary-safe values,
# errors as RESP errors, SHUTDOWN exits 0.
#   test_kv_cli.sh KV_BINARY
set -u
KV=$1
. "$(dirname "$0")/lib.sh"
need redis-cli
kv_start --maxmemory 64m

expect PONG ping
expect hello ping hello
expect hi echo hi
expect OK set a 1
expect 1 get a
expect 2 incr a
expect 1 decr a
expect 11 incrby a 10
expect 1 decrby a 10
expect "" get missing
expect OK set b x
expect "1
x

1" mget a b missing a
expect 2 exists a b
expect 2 dbsize
expect 1 del a
expect 0 del a
expect 1 dbsize
expect 1 strlen b
expect OK mset m1 v1 m2 v2
expect "v1
v2" mget m1 m2
expect "" set m1 other nx
expect v1 get m1
expect OK set m1 other xx
expect other get m1
expect "ERR value is not an integer or out of range" incr b
expect OK set big 9223372036854775807
expect "ERR increment or decrement would overflow" incr big
expect OK select 0
expect "ERR DB index is out of range" select 1
expect "save

appendonly
no" config get save appendonly
expect "" command docs
expect 0 command count
expect "ERR unknown command 'nosuch'" nosuch
expect "ERR wrong number of arguments for 'get' command" get
expect "ERR syntax error" set k v bogus

# Binary-safe keys and values: NUL, CR, LF, bytes >= 0x80, an empty value.
printf 'v\000\r\n\377end' >"$DIR/val"
printf 'k\000\r\n\377' >"$DIR/key"
R -x set bin <"$DIR/val" >/dev/null
R --no-raw get bin >"$DIR/got"
[ "$(cat "$DIR/got")" = '"v\x00\r\n\xffend"' ] || fail "binary value: $(cat "$DIR/got")"
# A binary key, through redis-cli's own quoting.
expect OK set "$(printf 'k\001\002')" x
R --no-raw keys '*' >/dev/null 2>&1 # not implemented: an error, not a crash
expect x get "$(printf 'k\001\002')"
expect OK set empty ""
expect "" get empty
expect 0 strlen empty
# A 1 MiB value round trip.
head -c 1048576 /dev/urandom >"$DIR/mb"
R -x set mb <"$DIR/mb" >/dev/null
R --raw get mb | head -c 1048576 | cmp - "$DIR/mb" || fail "1 MiB value differs"

# INFO: the fields redis tools and the bench read.
for f in rdb_bgsave_in_progress rdb_last_bgsave_status used_memory latest_fork_usec \
	rdb_changes_since_last_save connected_clients total_commands_processed; do
	[ -n "$(info $f)" ] || fail "INFO has no $f"
done
[ "$(info rdb_bgsave_in_progress)" = 0 ] || fail "a save in progress at start"

# BGSAVE and LASTSAVE.
before=$(R lastsave)
expect "Background saving started" bgsave
i=0
while [ "$(info rdb_bgsave_in_progress)" != 0 ] && [ $i -lt 500 ]; do
	sleep 0.02
	i=$((i + 1))
done
[ "$(info rdb_last_bgsave_status)" = ok ] || fail "BGSAVE failed: $(info cow_save_last_error)"
[ "$(R lastsave)" -ge "$before" ] && [ "$(R lastsave)" -gt 0 ] || fail "LASTSAVE did not move"
[ -s "$DIR/kv.img" ] || fail "no image after BGSAVE"

# The inline protocol (what telnet sends).
printf 'PING\r\n' | R >/dev/null || fail "inline PING"

kv_stop
echo "ok: kv answers redis-cli"
