#!/bin/sh
# POSIX behaviour a FUSE file system gets wrong when it makes its own
# choices: files belong to the caller, not the daemon; the kernel checks
# permissions against each caller; sticky and set-group-ID directories;
# link counts seen at once; names up to 255 bytes and paths far past
# PATH_MAX; rename's corner cases; reads with the page cache dropped.
#   test_fs_posix.sh COW
COW=$1
. "$(dirname "$0")/lib.sh"
need setpriv
[ "$(id -u)" = 0 ] || skip "needs root (to act as other users)"
as() { # as UID CMD...: run a shell command as another user
	u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --clear-groups sh -c "$*"
}
cow init >/dev/null && cow fs create home || fail "fs create"
mount_fs home -o allow_other
chmod 0777 "$MNT" || fail "chmod of the root"
chmod 0755 "$T" "$MNT"
chmod 1777 "$MNT"

# files belong to their creator
as 4001 "echo a >'$MNT/u1' && mkdir '$MNT/d1'" || fail "create as uid 4001"
[ "$(stat -c %u:%g "$MNT/u1")" = 4001:4001 ] || fail "owner of a file: $(stat -c %u:%g "$MNT/u1")"
[ "$(stat -c %u "$MNT/d1")" = 4001 ] || fail "owner of a directory"
# the kernel checks permissions for each caller
as 4001 "echo secret >'$MNT/private' && chmod 600 '$MNT/private'"
if as 4002 "cat '$MNT/private'" >/dev/null 2>&1; then fail "another user read a 0600 file"; fi
if as 4002 "echo x >>'$MNT/u1'" 2>/dev/null; then fail "another user wrote a 0644 file"; fi
[ "$(cat "$MNT/private")" = secret ] || fail "root cannot read"
# sticky directory: only the owner removes
if as 4002 "rm -f '$MNT/u1'" 2>/dev/null && [ ! -e "$MNT/u1" ]; then
	fail "sticky root: another user removed u1"
fi
as 4001 "rm '$MNT/u1'" || fail "the owner cannot remove its file"
# chown by root, chmod by the owner only
chown 4002:4002 "$MNT/private" || fail "chown"
[ "$(stat -c %u "$MNT/private")" = 4002 ] || fail "chown did not take"
if as 4001 "chmod 777 '$MNT/private'" 2>/dev/null; then fail "chmod by a non-owner"; fi
# set-group-ID directories pass their group on
mkdir "$MNT/sg" && chown 0:4003 "$MNT/sg" && chmod 2777 "$MNT/sg" || fail "setgid dir"
as 4001 "touch '$MNT/sg/f' && mkdir '$MNT/sg/sub'" || fail "create in the setgid dir"
[ "$(stat -c %g "$MNT/sg/f")" = 4003 ] || fail "group of a file in a setgid dir: $(stat -c %g "$MNT/sg/f")"
[ "$(stat -c %a "$MNT/sg/sub")" = 2755 ] || fail "setgid bit on a subdirectory: $(stat -c %a "$MNT/sg/sub")"

# link counts are never stale
cd "$MNT" || fail cd
echo x >l1
ln l1 l2 && ln l1 l3
[ "$(stat -c %h l1)" = 3 ] || fail "nlink after two links"
rm l2
[ "$(stat -c %h l3)" = 2 ] || fail "nlink after an unlink: $(stat -c %h l3)"
mkdir nd && mkdir nd/a nd/b
[ "$(stat -c %h nd)" = 4 ] || fail "directory nlink: $(stat -c %h nd)"
rmdir nd/a
[ "$(stat -c %h nd)" = 3 ] || fail "directory nlink after rmdir"

# names: 255 bytes work, 256 do not; paths far longer than PATH_MAX
n255=$(printf 'n%.0s' $(seq 255))
touch "$n255" || fail "a 255-byte name"
if touch "${n255}x" 2>/dev/null; then fail "a 256-byte name was accepted"; fi
# (the shell's cd keeps a logical path and gives up past PATH_MAX: python's does not)
python3 - "$MNT" <<'PY' || fail "a tree 40 names of 255 bytes deep"
import os, shutil, sys
os.chdir(sys.argv[1])
n = "n" * 255
os.mkdir("deep"); os.chdir("deep")
for i in range(40):
    os.mkdir(n); os.chdir(n)
with open("f", "w") as f:
    f.write("bottom")
assert open("f").read() == "bottom"
os.chdir(sys.argv[1])
shutil.rmtree("deep")
assert not os.path.exists("deep")
PY

# rename corner cases
mkdir ra rb && touch ra/f
if mv -T ra rb/inner 2>/dev/null; then :; else fail "rename a directory into another"; fi
if mv -T rb rb/inner/loop 2>/dev/null; then fail "a directory moved into itself"; fi
mkdir full && touch full/x
mkdir empty
mv -T empty full 2>/dev/null && fail "rename onto a non-empty directory"
touch file
mv -T file full 2>/dev/null && fail "a file replaced a directory"
mv -T full/x file || fail "a file over a file"
[ ! -e full/x ] && [ -e file ] || fail "after rename over a file"

# reads with caches dropped come from the store, not the page cache
dd if=/dev/urandom of="$T/r" bs=64k count=40 status=none
cp "$T/r" "$MNT/r"
sync "$MNT/r"
drop_caches
cmp "$T/r" "$MNT/r" || fail "data after dropping caches"
cd "$T" || fail cd
umount_fs
cow fsck >/dev/null || fail "fsck"
echo "ok: ownership, permissions, sticky and setgid dirs, link counts, long names and paths, rename"
