#!/bin/sh
# Readers do not wait for the writer. Another process holds the store's
# write transaction, so the mount's next change (a file created in w/)
# waits for it inside the daemon; meanwhile stat, cat (page cache
# dropped), ls, readlink, statfs and a snapshot's files are answered,
# and the change is still waiting after them. Once the other writer ends,
# the change lands, reads see it, and a read of a file changed since the
# last commit (through the write transaction) agrees with one after it.
#   test_fs_readers.sh COW
COW=$1
. "$(dirname "$0")/lib.sh"
need timeout mkfifo stat
cow init >/dev/null && cow fs create home && cow map create m || fail "create"
mount_fs home --commit 600000 # only fsync commits: what is changed stays so

mkdir "$MNT/d" "$MNT/w" || fail "mkdir"
i=0
while [ $i -lt 50 ]; do
	echo "entry $i" >"$MNT/d/f$i"
	i=$((i + 1))
done
head -c 300000 /dev/urandom >"$T/a"
cp "$T/a" "$MNT/a" && ln -s d/f7 "$MNT/l" || fail "files"
sync "$MNT/a" || fail "fsync (a commit)"
cow snapshot home@s1 >/dev/null || fail "snapshot between commits"

# The other writer: `cow load` holds its transaction until its input ends.
mkfifo "$T/fifo"
cow load m <"$T/fifo" &
holder=$!
sleep 600 >"$T/fifo" & # its input stays open as long as this sleeps
keeper=$!
sleep 0.5
echo new >"$MNT/w/c" &
change=$!
sleep 1
kill -0 "$change" 2>/dev/null || fail "the change did not wait for the other writer"

drop_caches
sleep 1.1 # past the kernel's cached names and attributes
within() { timeout 10 "$@" || fail "waited for the writer: $*"; }
within stat "$MNT/a" >/dev/null
[ "$(within stat -c %s "$MNT/a")" = 300000 ] || fail "size of a"
within cmp "$T/a" "$MNT/a" || fail "a's bytes"
[ "$(within ls "$MNT/d" | wc -l)" = 50 ] || fail "ls d"
[ "$(within cat "$MNT/d/f33")" = "entry 33" ] || fail "d/f33"
[ "$(within readlink "$MNT/l")" = d/f7 ] || fail "readlink"
[ "$(within cat "$MNT/l")" = "entry 7" ] || fail "through the symlink"
within df "$MNT" >/dev/null
within cmp "$T/a" "$MNT/.snapshots/s1/a" || fail "the snapshot's a"
[ "$(within ls "$MNT/.snapshots/s1/d" | wc -l)" = 50 ] || fail "the snapshot's d"
kill -0 "$change" 2>/dev/null || fail "the change ended before the reads (nothing was tested)"

kill "$keeper"
wait "$holder" || fail "cow load"
timeout 20 sh -c "while kill -0 $change 2>/dev/null; do sleep 0.05; done" ||
	fail "the change never landed"
wait "$change" || fail "the change failed"
[ "$(cat "$MNT/w/c")" = new ] || fail "w/c after the change"
# Changed since the last commit: read through the write transaction.
echo more >>"$MNT/d/f33"
[ "$(cat "$MNT/d/f33")" = "entry 33
more" ] || fail "d/f33 before its commit"
[ "$(ls "$MNT/d" | wc -l)" = 50 ] || fail "ls d before its commit"
sync "$MNT/d/f33" || fail "fsync"
[ "$(cat "$MNT/d/f33")" = "entry 33
more" ] || fail "d/f33 after its commit"
umount_fs
cow fsck >/dev/null || fail "fsck"
echo "ok: reads answered while the writer waited"
