#!/bin/sh
# A mounted fs driven by the programs people use: coreutils (cp -a, diff -r,
# mv, ln, chmod, touch -d, truncate, rm -r, cp sharing blocks through
# copy_file_range), tar both ways, git (init, commit, fsck), rsync both
# ways, fio --verify=crc32c; snapshots under .snapshots/, a remount, and fsck clean at the end.
#   test_fs_tools.sh COW
COW=$1
. "$(dirname "$0")/lib.sh"
need tar git diff cmp truncate
SRC=$(cd "$(dirname "$0")/../.." && pwd)

cow init >/dev/null || fail "init"
cow fs create home || fail "fs create"
cow list | grep -q "^home *fs" || fail "list shows no fs"
mount_fs home

# a second writable mount of the same fs is refused, by whatever path it names the store
mkdir "$T/mnt2"
ln -s "$STORE" "$T/link.cow"
if "$COW" -s "$T/link.cow" mount home "$T/mnt2" 2>"$T/second"; then
	fusermount3 -u "$T/mnt2"
	fail "a second writable mount through a symlink was allowed"
fi
grep -q "already mounted" "$T/second" || fail "second mount: $(cat "$T/second")"
"$COW" -s "$STORE" mount nosuch "$T/mnt2" 2>/dev/null && fail "mounted an fs that does not exist"
cow map create amap && "$COW" -s "$STORE" mount amap "$T/mnt2" 2>/dev/null &&
	fail "mounted a map"
# names with what mount options and the shell treat specially, and UTF-8
odd=$(printf 'caf\303\251, a\\b')
cow fs create "$odd" || fail "fs create of an odd name"
"$COW" -s "$STORE" mount "$odd" "$T/mnt2" || fail "mount of '$odd'"
echo ok >"$T/mnt2/f" && [ "$(cat "$T/mnt2/f")" = ok ] || fail "use of '$odd'"
"$COW" umount "$T/mnt2" || fail "umount of '$odd'"
# STORE:NAME names both (split at the last ':' with a file on its left)
cow fs create "we:ird" || fail "fs create of a name with ':'"
env -u COW_STORE "$COW" mount "$STORE:we:ird" "$T/mnt2" || fail "mount STORE:NAME"
echo w >"$T/mnt2/w" && "$COW" umount "$T/mnt2" || fail "use of STORE:we:ird"
env -u COW_STORE "$COW" mount "$STORE:$odd" "$T/mnt2" || fail "mount STORE:'$odd'"
[ "$(cat "$T/mnt2/f")" = ok ] && [ ! -e "$T/mnt2/w" ] || fail "STORE:'$odd' is not that fs"
"$COW" umount "$T/mnt2" || fail "umount"
env -u COW_STORE "$COW" mount "$STORE" "$T/mnt2" 2>"$T/err" && fail "mounted one of several fs"
grep -q "holds 3 file systems" "$T/err" || fail "STORE alone with several fs: $(cat "$T/err")"
# the mount's source is STORE:NAME, read back by cow umount, which returns only
# once the daemon has committed and let go: a mount right after it succeeds,
# also through a name with a space, ',' and ':' (a hard link to the store)
ln "$STORE" "$T/sp ace,x:y.cow"
for i in 1 2 3; do
	for s in "$STORE" "$T/sp ace,x:y.cow"; do
		env -u COW_STORE "$COW" mount "$s:we:ird" "$T/mnt2" || fail "mount right after umount ($i, $s)"
		grep -qF " fuse.cow $(printf %s "$s" | sed 's/ /\\040/g'):we:ird " /proc/self/mountinfo ||
			fail "mount source is not $s:we:ird"
		echo "$i" >"$T/mnt2/n" || fail "write $i"
		"$COW" umount "$T/mnt2" || fail "umount ($i, $s)"
	done
done
env -u COW_STORE "$COW" mount -o ro "$STORE:we:ird" "$T/mnt2" && [ "$(cat "$T/mnt2/n")" = 3 ] ||
	fail "the last write before cow umount is not there"
# a read-only mount holds no lock: its umount does not wait for a writable one
mkdir "$T/mnt3"
env -u COW_STORE "$COW" mount "$STORE:we:ird" "$T/mnt3" || fail "writable mount beside ro"
timeout 20 "$COW" umount "$T/mnt2" || fail "umount ro beside a writable mount"
"$COW" umount "$T/mnt3" || fail "umount of the writable one"

# cp -a of a source tree, then diff -r against the original
cp -a "$SRC/src" "$MNT/src" || fail "cp -a"
diff -r "$SRC/src" "$MNT/src" || fail "diff -r after cp -a"

# tar x, then tar c of what came out: the same file list and contents
mkdir "$T/orig" "$MNT/t"
cp -a "$SRC/docs" "$SRC/include" "$T/orig/"
ln -s docs/FORMAT.md "$T/orig/link"
tar cf "$T/a.tar" -C "$T/orig" . || fail "tar c (source)"
tar xf "$T/a.tar" -C "$MNT/t" || fail "tar x into the mount"
tar cf "$T/b.tar" -C "$MNT/t" . || fail "tar c from the mount"
mkdir "$T/back"
tar xf "$T/b.tar" -C "$T/back" || fail "tar x of the mount's tar"
diff -r "$T/orig" "$T/back" || fail "tar round trip differs"
[ "$(readlink "$MNT/t/link")" = docs/FORMAT.md ] || fail "symlink target"

# coreutils
cd "$MNT" || fail "cd"
echo one >f
ln f f.hard || fail "ln"
[ "$(stat -c %h f)" = 2 ] || fail "link count after ln: $(stat -c %h f)"
ln -s f f.sym || fail "ln -s"
[ "$(cat f.sym)" = one ] || fail "read through a symlink"
mv f g || fail "mv"
[ ! -e f ] && [ "$(cat g)" = one ] || fail "mv: old name still there or data lost"
chmod 0604 g && [ "$(stat -c %a g)" = 604 ] || fail "chmod"
touch -d "2001-02-03 04:05:06" g && [ "$(stat -c %Y g)" = "$(date -d "2001-02-03 04:05:06" +%s)" ] ||
	fail "touch -d"
truncate -s 1M g && [ "$(stat -c %s g)" = 1048576 ] || fail "truncate up"
[ "$(stat -c %b g)" -le 16 ] || fail "truncate up allocated blocks: $(stat -c %b g)"
truncate -s 2 g && [ "$(cat g)" = on ] || fail "truncate down"
mkdir -p deep/a/b/c && echo x >deep/a/b/c/y || fail "mkdir -p"
rm -r deep && [ ! -e deep ] || fail "rm -r"
rm f.hard && [ "$(stat -c %h g)" = 1 ] || fail "link count after rm"
cd "$T" || fail "cd"

# cp of a large file inside the mount shares its blocks (copy_file_range)
dd if=/dev/urandom of="$T/big" bs=1M count=32 status=none
cp "$T/big" "$MNT/big" || fail "cp in"
sync "$MNT/big" # fsync: a durable commit (syncfs does not reach FUSE daemons before libfuse 3.17)
before=$(cow du --json | sed -n 's/.*"used_bytes": *\([0-9]*\).*/\1/p' | head -1)
cp "$MNT/big" "$MNT/big.copy" || fail "cp inside the mount"
sync "$MNT/big.copy"
after=$(cow du --json | sed -n 's/.*"used_bytes": *\([0-9]*\).*/\1/p' | head -1)
cmp "$T/big" "$MNT/big.copy" || fail "the copy differs"
[ -n "$before" ] && [ -n "$after" ] || fail "du --json gave no used_bytes"
grew=$((after - before))
echo "cp of 32 MiB inside the mount: the store grew by $((grew / 1024)) KiB"
[ "$grew" -lt $((4 * 1024 * 1024)) ] || fail "cp copied instead of sharing: +$grew bytes"
printf 'Z' | dd of="$MNT/big.copy" bs=1 seek=1000000 conv=notrunc status=none
cmp "$T/big" "$MNT/big" || fail "a write to the copy changed the original"

# git inside the mount
git init -q "$MNT/repo" || fail "git init"
cp -a "$SRC/docs" "$MNT/repo/" || fail "cp into the repo"
(cd "$MNT/repo" && git -c user.name=t -c user.email=t@t add -A &&
	git -c user.name=t -c user.email=t@t commit -qm one && git fsck --strict) >/dev/null 2>&1 ||
	fail "git commit or fsck in the mount"

# rsync both ways
if command -v rsync >/dev/null 2>&1; then
	rsync -a "$SRC/tests/" "$MNT/rs/" || fail "rsync in"
	diff -r "$SRC/tests" "$MNT/rs" || fail "rsync in: differs"
	rsync -a "$MNT/rs/" "$T/rs.back/" || fail "rsync out"
	diff -r "$SRC/tests" "$T/rs.back" || fail "rsync out: differs"
else
	echo "rsync not installed: that part skipped"
fi

# fio writes and verifies its own checksums
if command -v fio >/dev/null 2>&1; then
	for rw in randwrite write; do
		fio --name=verify --directory="$MNT" --size=48M --rw=$rw --bs=4k --ioengine=psync \
			--verify=crc32c --verify_fatal=1 --do_verify=1 --fsync=64 --output="$T/fio.out" ||
			fail "fio $rw --verify=crc32c: $(tail -20 "$T/fio.out")"
	done
	rm -f "$MNT"/verify.*
else
	echo "fio not installed: that part skipped"
fi

# a snapshot while mounted, seen read-only under .snapshots
sync "$MNT/g"
cow snapshot home@one || fail "snapshot"
echo changed >"$MNT/g"
[ "$(cat "$MNT/.snapshots/one/g")" = on ] || fail "the snapshot shows the new data"
[ "$(cat "$MNT/g")" = changed ] || fail "the live file lost its write"
if echo x >"$MNT/.snapshots/one/new" 2>/dev/null; then fail "a snapshot took a write"; fi
python3 -c 'import os, sys; os.open(sys.argv[1], os.O_RDONLY | os.O_TRUNC)' \
	"$MNT/.snapshots/one/g" 2>/dev/null && fail "a snapshot took O_TRUNC"
[ "$(cat "$MNT/.snapshots/one/g")" = on ] || fail "O_TRUNC changed a snapshot"
diff -r "$SRC/src" "$MNT/.snapshots/one/src" || fail "snapshot differs from the source"
ls "$MNT/.snapshots/" | grep -qx one || fail ".snapshots does not list one"
mv "$MNT/f.sym" "$MNT/renamed"
sync "$MNT/g"
cow diff home@one home >"$T/diff" || fail "cow diff"
grep -qx "M	g" "$T/diff" && grep -qx -e "-	f.sym" "$T/diff" && grep -qx "+	renamed" "$T/diff" ||
	fail "cow diff lists: $(cat "$T/diff")"
[ "$(wc -l <"$T/diff")" -le 5 ] || fail "cow diff lists unchanged paths: $(cat "$T/diff")"

# unmount, drop caches, remount: everything still there
umount_fs
drop_caches
mount_fs home
diff -r "$SRC/src" "$MNT/src" || fail "after remount: src differs"
cmp "$T/big" "$MNT/big" || fail "after remount: big differs"
[ "$(cat "$MNT/g")" = changed ] || fail "after remount: g"
umount_fs
cow fsck >/dev/null || fail "fsck after the run: $(cow fsck 2>&1 | tail -3)"
echo "ok: coreutils, tar, git, rsync, reflinked cp, snapshots and remount on a mounted fs"
