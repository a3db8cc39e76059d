/*
 * File systems in a store: inodes, directories, file data, symlinks and
 * extended attributes as records of one copy-on-write B+tree (object type
 * 3). docs/FORMAT.md section 10 is the layout; include/cow/fs.h the API.
 *
 * Every key starts with the inode number (big-endian) and a tag, so one
 * inode's records, and a file's blocks in order, are neighbours. A file's
 * data is a block map like a volume's (store/blockmap.c): runs of up to 64
 * blocks under (ino, 2, first block), a block no run covers a hole. A
 * reflink puts slices of the source's runs under the destination's keys,
 * one reference each, so the blocks stay shared until written and the
 * cost follows the number of runs, not of blocks.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <xxhash.h>

#include "base/base.h"
#include "cow/fs.h"
#include "store/store.h"

struct cow_fs {
	struct cow_map m;
};

enum { T_INODE = 0, T_DIRENT = 1, T_DATA = COW__FS_T_DATA, T_LINK = 3, T_XATTR = 4 };
#define META	     0u	 /* inode number of the fs record and the orphan list */
#define T_ORPHAN     1u	 /* under META */
#define REC_LEN	     64u /* the fs record */
#define INODE_LEN    128u
#define XATTR_MAX    65536u
#define FIRST_COOKIE 3u /* 0: ".", 1: "..", 2: the first entry */
#define BLK	     COW_BLOCK_SIZE

struct inode {
	uint64_t ino;
	uint32_t mode, uid, gid, flags;
	uint64_t nlink, size, blocks, parent, rdev, generation;
	cow_fs_time atime, mtime, ctime, btime;
};

/* ---- keys and records ---- */

static size_t k_ino(uint8_t *k, uint64_t ino, uint8_t tag)
{
	cow__put_be64(k, ino);
	k[8] = tag;
	return 9;
}

static uint64_t name_hash(const char *name, size_t n)
{
	uint64_t h = XXH3_64bits(name, n) >> 1;
	return h < FIRST_COOKIE ? h + FIRST_COOKIE : h;
}

static size_t k_dirent(uint8_t *k, uint64_t dir, const char *name, size_t n)
{
	k_ino(k, dir, T_DIRENT);
	cow__put_be64(k + 9, name_hash(name, n));
	memcpy(k + 17, name, n);
	return 17 + n;
}

static void put_time(uint8_t *p, cow_fs_time t)
{
	cow__put64(p, (uint64_t)t.sec);
	cow__put32(p + 8, t.nsec);
	cow__put32(p + 12, 0);
}

static cow_fs_time get_time(const uint8_t *p)
{
	return (cow_fs_time){(int64_t)cow__le64(p), cow__le32(p + 8)};
}

static void inode_encode(const struct inode *in, uint8_t *v)
{
	memset(v, 0, INODE_LEN);
	cow__put32(v, in->mode);
	cow__put32(v + 4, in->uid);
	cow__put32(v + 8, in->gid);
	cow__put32(v + 12, in->flags);
	cow__put64(v + 16, in->nlink);
	cow__put64(v + 24, in->size);
	cow__put64(v + 32, in->blocks);
	cow__put64(v + 40, in->parent);
	cow__put64(v + 48, in->rdev);
	cow__put64(v + 56, in->generation);
	put_time(v + 64, in->atime);
	put_time(v + 80, in->mtime);
	put_time(v + 96, in->ctime);
	put_time(v + 112, in->btime);
}

static int inode_decode(uint64_t ino, const cow_buf *b, struct inode *in)
{
	const uint8_t *v = b->data;
	if (b->len != INODE_LEN)
		return COW_CORRUPT(0, "bad inode record length");
	*in = (struct inode){
		.ino = ino,
		.mode = cow__le32(v),
		.uid = cow__le32(v + 4),
		.gid = cow__le32(v + 8),
		.flags = cow__le32(v + 12),
		.nlink = cow__le64(v + 16),
		.size = cow__le64(v + 24),
		.blocks = cow__le64(v + 32),
		.parent = cow__le64(v + 40),
		.rdev = cow__le64(v + 48),
		.generation = cow__le64(v + 56),
		.atime = get_time(v + 64),
		.mtime = get_time(v + 80),
		.ctime = get_time(v + 96),
		.btime = get_time(v + 112),
	};
	return 0;
}

static void attr_of(const struct inode *in, cow_fs_attr *a)
{
	if (!a)
		return;
	*a = (cow_fs_attr){.ino = in->ino,
			   .mode = in->mode,
			   .uid = in->uid,
			   .gid = in->gid,
			   .nlink = in->nlink,
			   .size = in->size,
			   .blocks = in->blocks,
			   .rdev = in->rdev,
			   .generation = in->generation,
			   .atime = in->atime,
			   .mtime = in->mtime,
			   .ctime = in->ctime,
			   .btime = in->btime};
}

static cow_fs_time now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (cow_fs_time){ts.tv_sec, (uint32_t)ts.tv_nsec};
}

/* ---- handle and tree access ---- */

static int fs_check(cow_fs *f, bool write)
{
	if (!f)
		return COW_EINVAL;
	int rc = cow__txn_check(f->m.txn, write && !f->m.readonly);
	if (rc)
		return rc;
	if (f->m.renewal != f->m.txn->renewals)
		return COW_EINVAL;
	if (f->m.dropped)
		return COW_ENOTFOUND;
	if (write && f->m.readonly)
		return COW_EREADONLY;
	return 0;
}

static struct cow__tx *TX(cow_fs *f)
{
	return &f->m.txn->tx;
}

static int get(cow_fs *f, const uint8_t *k, size_t klen, cow_buf *v)
{
	return cow__btree_get(TX(f), &f->m.tree, k, klen, v);
}

static int put(cow_fs *f, const uint8_t *k, size_t klen, const void *v, size_t vlen)
{
	return cow__btree_put(TX(f), &f->m.tree, k, klen, v, vlen);
}

/* Delete @k; absent is fine. */
static int del(cow_fs *f, const uint8_t *k, size_t klen)
{
	int rc = cow__btree_del(TX(f), &f->m.tree, k, klen);
	return rc == COW_ENOTFOUND ? 0 : rc;
}

/* A change failed part-way: the transaction may hold half of it. */
static int poison(cow_fs *f, int rc)
{
	return rc ? cow__txn_poison(f->m.txn, rc) : 0;
}

static int ino_get(cow_fs *f, uint64_t ino, struct inode *in)
{
	if (ino == META)
		return -ENOENT;
	uint8_t k[9];
	cow_buf v;
	int rc = get(f, k, k_ino(k, ino, T_INODE), &v);
	if (rc == COW_ENOTFOUND)
		return -ENOENT;
	return rc ? rc : inode_decode(ino, &v, in);
}

static int ino_put(cow_fs *f, const struct inode *in)
{
	uint8_t k[9], v[INODE_LEN];
	inode_encode(in, v);
	return put(f, k, k_ino(k, in->ino, T_INODE), v, INODE_LEN);
}

struct fsrec {
	uint64_t next_ino, inodes;
};

static int rec_get(cow_fs *f, struct fsrec *r)
{
	uint8_t k[9];
	cow_buf v;
	int rc = get(f, k, k_ino(k, META, 0), &v);
	if (rc == COW_ENOTFOUND || (rc == 0 && v.len != REC_LEN))
		return COW_CORRUPT(0, "fs record missing or malformed");
	if (rc)
		return rc;
	r->next_ino = cow__le64(v.data);
	r->inodes = cow__le64((const uint8_t *)v.data + 8);
	if (r->next_ino <= COW_FS_ROOT)
		return COW_CORRUPT(0, "fs record: bad next inode number");
	return 0;
}

static int rec_put(cow_fs *f, const struct fsrec *r)
{
	uint8_t k[9], v[REC_LEN] = {0};
	cow__put64(v, r->next_ino);
	cow__put64(v + 8, r->inodes);
	return put(f, k, k_ino(k, META, 0), v, REC_LEN);
}

static int name_check(const char *name, size_t n)
{
	if (!name || n == 0)
		return -EINVAL;
	if (n > COW_FS_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', n) || memchr(name, 0, n))
		return -EINVAL;
	if ((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	return 0;
}

static int dir_get(cow_fs *f, uint64_t dir, struct inode *d)
{
	int rc = ino_get(f, dir, d);
	if (rc == 0 && !S_ISDIR(d->mode))
		rc = -ENOTDIR;
	return rc;
}

/* The entry @name of @dir: its inode number and type. -ENOENT. */
static int dirent_get(cow_fs *f, uint64_t dir, const char *name, size_t n, uint64_t *ino,
		      uint32_t *type)
{
	uint8_t k[17 + COW_FS_NAME_MAX];
	cow_buf v;
	int rc = get(f, k, k_dirent(k, dir, name, n), &v);
	if (rc == COW_ENOTFOUND)
		return -ENOENT;
	if (rc)
		return rc;
	if (v.len != 12)
		return COW_CORRUPT(0, "bad directory entry");
	*ino = cow__le64(v.data);
	if (type)
		*type = cow__le32((const uint8_t *)v.data + 8);
	return 0;
}

static int dirent_put(cow_fs *f, uint64_t dir, const char *name, size_t n, uint64_t ino,
		      uint32_t type)
{
	uint8_t k[17 + COW_FS_NAME_MAX], v[12];
	cow__put64(v, ino);
	cow__put32(v + 8, type & S_IFMT);
	return put(f, k, k_dirent(k, dir, name, n), v, sizeof(v));
}

static int dirent_del(cow_fs *f, uint64_t dir, const char *name, size_t n)
{
	uint8_t k[17 + COW_FS_NAME_MAX];
	return del(f, k, k_dirent(k, dir, name, n));
}

/*
 * After a seek or a step of @c that returned @rc: is the key there one
 * that starts with the @plen bytes of @pre (and is longer)? 1 with the key
 * in *@kb, 0 when past them or at the tree's end, or an error. Every scan
 * of one inode's records goes through it.
 */
static int key_with(struct cow__cursor *c, int rc, const uint8_t *pre, size_t plen, cow_buf *kb)
{
	if (rc == 0)
		rc = cow__cursor_get(c, kb, NULL);
	if (rc == COW_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	return kb->len > plen && memcmp(kb->data, pre, plen) == 0;
}

/* Does directory @dir hold any entry? */
static int dir_empty(cow_fs *f, uint64_t dir, bool *empty)
{
	uint8_t k[9];
	k_ino(k, dir, T_DIRENT);
	struct cow__cursor c;
	cow__cursor_init(&c, TX(f), &f->m.tree);
	cow_buf kb;
	int rc = key_with(&c, cow__cursor_seek(&c, k, 9), k, 9, &kb);
	*empty = rc == 0;
	return rc < 0 ? rc : 0;
}

/* ---- create and open ---- */

int cow_fs_create(cow_txn *t, const char *name, const cow_fs_attr *root)
{
	int rc = cow__obj_create(t, name, OBJ_FS, 0);
	if (rc)
		return rc;
	cow_fs *f;
	rc = cow__obj_open(t, name, OBJ_FS, (cow_map **)&f);
	if (rc)
		return cow__txn_poison(t, rc);
	cow_fs_time ts = now();
	struct inode in = {.ino = COW_FS_ROOT,
			   .mode = S_IFDIR | (root ? root->mode & 07777 : 0755),
			   .uid = root ? root->uid : 0,
			   .gid = root ? root->gid : 0,
			   .nlink = 2,
			   .parent = COW_FS_ROOT,
			   .atime = ts,
			   .mtime = ts,
			   .ctime = ts,
			   .btime = ts};
	struct fsrec r = {.next_ino = COW_FS_ROOT + 1, .inodes = 1};
	rc = rec_put(f, &r);
	if (rc == 0)
		rc = ino_put(f, &in);
	return poison(f, rc);
}

int cow_fs_open(cow_txn *t, const char *name, cow_fs **out)
{
	if (!out)
		return COW_EINVAL;
	cow_map *m;
	int rc = cow__obj_open(t, name, OBJ_FS, &m);
	if (rc)
		return rc;
	cow_fs *f = (cow_fs *)(void *)m;
	struct fsrec r;
	rc = rec_get(f, &r);
	if (rc)
		return rc;
	*out = f;
	return 0;
}

/* ---- attributes and names ---- */

int cow_fs_getattr(cow_fs *f, uint64_t ino, cow_fs_attr *a)
{
	int rc = fs_check(f, false);
	if (rc || !a)
		return rc ? rc : COW_EINVAL;
	struct inode in;
	rc = ino_get(f, ino, &in);
	if (rc == 0)
		attr_of(&in, a);
	return rc;
}

int cow_fs_lookup(cow_fs *f, uint64_t dir, const char *name, size_t nlen, cow_fs_attr *a)
{
	int rc = fs_check(f, false);
	if (rc)
		return rc;
	struct inode d, in;
	if ((rc = dir_get(f, dir, &d)))
		return rc;
	if (nlen == 1 && name[0] == '.')
		return attr_of(&d, a), 0;
	if (nlen == 2 && name[0] == '.' && name[1] == '.')
		return (rc = ino_get(f, d.parent, &in)) ? rc : (attr_of(&in, a), 0);
	if ((rc = name_check(name, nlen)))
		return rc == -EINVAL ? -ENOENT : rc;
	uint64_t ino;
	if ((rc = dirent_get(f, dir, name, nlen, &ino, NULL)))
		return rc;
	rc = ino_get(f, ino, &in);
	if (rc == -ENOENT)
		return COW_CORRUPT(0, "directory entry names a missing inode");
	if (rc == 0)
		attr_of(&in, a);
	return rc;
}

/* A new inode named @name in @d (checked, not there yet), then its entry. */
static int make(cow_fs *f, struct inode *d, const char *name, size_t nlen, struct inode *in)
{
	struct fsrec r;
	int rc = rec_get(f, &r);
	if (rc)
		return rc;
	in->ino = r.next_ino++;
	r.inodes++;
	cow_fs_time ts = now();
	in->atime = in->mtime = in->ctime = in->btime = ts;
	if (d->mode & S_ISGID) { /* BSD group semantics, as Linux gives them */
		in->gid = d->gid;
		if (S_ISDIR(in->mode))
			in->mode |= S_ISGID;
	}
	in->parent = d->ino; /* a hint for paths (cow_fs_diff); exact for directories */
	if (S_ISDIR(in->mode)) {
		in->nlink = 2;
		d->nlink++;
	} else {
		in->nlink = 1;
	}
	d->mtime = d->ctime = ts;
	d->size += nlen;
	if ((rc = rec_put(f, &r)) || (rc = ino_put(f, in)) ||
	    (rc = dirent_put(f, d->ino, name, nlen, in->ino, in->mode)) || (rc = ino_put(f, d)))
		return poison(f, rc);
	return 0;
}

/* Checks shared by every call that adds a name to @dir. */
static int can_add(cow_fs *f, uint64_t dir, const char *name, size_t nlen, struct inode *d)
{
	int rc = fs_check(f, true);
	if (rc)
		return rc;
	if ((rc = name_check(name, nlen)) == -EINVAL && nlen && nlen <= 2 && name[0] == '.' &&
	    (nlen == 1 || name[1] == '.'))
		return -EEXIST; /* "." and ".." exist */
	if (rc || (rc = dir_get(f, dir, d)))
		return rc;
	if (d->nlink == 0)
		return -ENOENT; /* removed while still open */
	uint64_t ino;
	rc = dirent_get(f, dir, name, nlen, &ino, NULL);
	return rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
}

int cow_fs_mknod(cow_fs *f, uint64_t dir, const char *name, size_t nlen, const cow_fs_attr *a,
		 cow_fs_attr *out)
{
	if (!a)
		return COW_EINVAL;
	uint32_t type = a->mode & S_IFMT;
	if (type == 0)
		type = S_IFREG;
	if (type != S_IFREG && type != S_IFDIR && type != S_IFIFO && type != S_IFSOCK &&
	    type != S_IFCHR && type != S_IFBLK)
		return -EINVAL;
	struct inode d;
	int rc = can_add(f, dir, name, nlen, &d);
	if (rc)
		return rc;
	if (type == S_IFDIR && d.nlink >= COW_FS_NLINK_MAX)
		return -EMLINK;
	struct inode in = {.mode = type | (a->mode & 07777),
			   .uid = a->uid,
			   .gid = a->gid,
			   .rdev = (type == S_IFCHR || type == S_IFBLK) ? a->rdev : 0};
	if ((rc = make(f, &d, name, nlen, &in)))
		return rc;
	attr_of(&in, out);
	return 0;
}

int cow_fs_symlink(cow_fs *f, uint64_t dir, const char *name, size_t nlen, const char *target,
		   size_t tlen, uint32_t uid, uint32_t gid, cow_fs_attr *out)
{
	if (!target || tlen == 0 || memchr(target, 0, tlen))
		return -EINVAL;
	if (tlen > COW_FS_LINK_MAX)
		return -ENAMETOOLONG;
	struct inode d;
	int rc = can_add(f, dir, name, nlen, &d);
	if (rc)
		return rc;
	struct inode in = {.mode = S_IFLNK | 0777, .uid = uid, .gid = gid, .size = tlen};
	if ((rc = make(f, &d, name, nlen, &in)))
		return rc;
	uint8_t k[9];
	if ((rc = put(f, k, k_ino(k, in.ino, T_LINK), target, tlen)))
		return poison(f, rc);
	attr_of(&in, out);
	return 0;
}

int cow_fs_readlink(cow_fs *f, uint64_t ino, char *buf, size_t cap, size_t *len)
{
	int rc = fs_check(f, false);
	if (rc || !len || (!buf && cap))
		return rc ? rc : COW_EINVAL;
	struct inode in;
	if ((rc = ino_get(f, ino, &in)))
		return rc;
	if (!S_ISLNK(in.mode))
		return -EINVAL;
	uint8_t k[9];
	cow_buf v;
	rc = get(f, k, k_ino(k, ino, T_LINK), &v);
	if (rc == COW_ENOTFOUND)
		return COW_CORRUPT(0, "symlink without a target");
	if (rc)
		return rc;
	*len = v.len;
	memcpy(buf, v.data, COW_MIN(cap, v.len));
	return 0;
}

int cow_fs_link(cow_fs *f, uint64_t ino, uint64_t dir, const char *name, size_t nlen,
		cow_fs_attr *out)
{
	struct inode d, in;
	int rc = can_add(f, dir, name, nlen, &d);
	if (rc || (rc = ino_get(f, ino, &in)))
		return rc;
	if (S_ISDIR(in.mode))
		return -EPERM;
	if (in.nlink == 0)
		return -ENOENT; /* linkat of an unlinked file: only with O_TMPFILE */
	if (in.nlink >= COW_FS_NLINK_MAX)
		return -EMLINK;
	cow_fs_time ts = now();
	in.nlink++;
	in.ctime = ts;
	d.mtime = d.ctime = ts;
	d.size += nlen;
	if ((rc = ino_put(f, &in)) || (rc = dirent_put(f, dir, name, nlen, ino, in.mode)) ||
	    (rc = ino_put(f, &d)))
		return poison(f, rc);
	attr_of(&in, out);
	return 0;
}

/* @in lost a link (already counted down): an orphan if it was the last. */
static int lost_link(cow_fs *f, struct inode *in, int *orphan)
{
	in->ctime = now();
	int rc = ino_put(f, in);
	if (rc || in->nlink)
		return rc;
	if (orphan)
		*orphan = 1;
	uint8_t k[17];
	k_ino(k, META, T_ORPHAN);
	cow__put_be64(k + 9, in->ino);
	return put(f, k, 17, "", 0);
}

/*
 * Take @name (inode @in) out of directory @d: the entry, and the link it
 * held (for a directory: its own two and its parent's).
 */
static int take_out(cow_fs *f, struct inode *d, const char *name, size_t nlen, struct inode *in,
		    int *orphan)
{
	int rc = dirent_del(f, d->ino, name, nlen);
	if (rc)
		return rc;
	cow_fs_time ts = now();
	d->mtime = d->ctime = ts;
	d->size -= COW_MIN(d->size, nlen);
	if (S_ISDIR(in->mode)) {
		in->nlink = 0;
		d->nlink--;
	} else {
		in->nlink--;
	}
	if ((rc = ino_put(f, d)))
		return rc;
	return lost_link(f, in, orphan);
}

int cow_fs_unlink(cow_fs *f, uint64_t dir, const char *name, size_t nlen, int rmdir, int *orphan)
{
	int rc = fs_check(f, true);
	if (orphan)
		*orphan = 0;
	if (rc)
		return rc;
	struct inode d, in;
	if ((rc = dir_get(f, dir, &d)))
		return rc;
	if (rmdir && nlen == 1 && name[0] == '.')
		return -EINVAL;
	if (rmdir && nlen == 2 && name[0] == '.' && name[1] == '.')
		return -ENOTEMPTY;
	if ((rc = name_check(name, nlen)))
		return rc == -EINVAL ? -ENOENT : rc;
	uint64_t ino;
	if ((rc = dirent_get(f, dir, name, nlen, &ino, NULL)))
		return rc;
	if ((rc = ino_get(f, ino, &in)))
		return rc == -ENOENT ? COW_CORRUPT(0, "directory entry names a missing inode") : rc;
	if (rmdir && !S_ISDIR(in.mode))
		return -ENOTDIR;
	if (!rmdir && S_ISDIR(in.mode))
		return -EISDIR;
	if (rmdir) {
		bool empty;
		if ((rc = dir_empty(f, ino, &empty)))
			return rc;
		if (!empty)
			return -ENOTEMPTY;
	}
	return poison(f, take_out(f, &d, name, nlen, &in, orphan));
}

/* Is @ino @dir or one of its ancestors? */
static int is_ancestor(cow_fs *f, uint64_t ino, uint64_t dir, bool *yes)
{
	*yes = false;
	for (unsigned depth = 0; depth < 1u << 20; depth++) {
		if (dir == ino) {
			*yes = true;
			return 0;
		}
		if (dir == COW_FS_ROOT)
			return 0;
		struct inode d;
		int rc = ino_get(f, dir, &d);
		if (rc)
			return rc == -ENOENT ? COW_CORRUPT(0, "directory parent missing") : rc;
		dir = d.parent;
	}
	return COW_CORRUPT(0, "directory parents form a loop");
}

int cow_fs_rename(cow_fs *f, uint64_t dir, const char *name, size_t nlen, uint64_t newdir,
		  const char *newname, size_t newlen, unsigned flags, uint64_t *orphan)
{
	int rc = fs_check(f, true);
	if (orphan)
		*orphan = 0;
	if (rc)
		return rc;
	if (flags & ~(COW_FS_RENAME_NOREPLACE | COW_FS_RENAME_EXCHANGE) ||
	    flags == (COW_FS_RENAME_NOREPLACE | COW_FS_RENAME_EXCHANGE))
		return -EINVAL;
	struct inode d, nd, in, old;
	if ((rc = dir_get(f, dir, &d)) || (rc = dir_get(f, newdir, &nd)))
		return rc;
	if ((rc = name_check(name, nlen)) || (rc = name_check(newname, newlen)))
		return rc == -EINVAL ? -EBUSY : rc; /* "." or ".." */
	uint64_t ino, oino = 0;
	if ((rc = dirent_get(f, dir, name, nlen, &ino, NULL)) || (rc = ino_get(f, ino, &in)))
		return rc;
	rc = dirent_get(f, newdir, newname, newlen, &oino, NULL);
	if (rc && rc != -ENOENT)
		return rc;
	bool exists = rc == 0;
	if (exists && (rc = ino_get(f, oino, &old)))
		return rc;
	if (exists && (flags & COW_FS_RENAME_NOREPLACE))
		return -EEXIST;
	if (!exists && (flags & COW_FS_RENAME_EXCHANGE))
		return -ENOENT;
	if (exists && oino == ino)
		return 0; /* two names of one inode: nothing to do */
	bool same = dir == newdir;
	/* A directory never moves into its own subtree (nor does the other, on exchange). */
	bool loop = false;
	if (S_ISDIR(in.mode) && !same && (rc = is_ancestor(f, ino, newdir, &loop)))
		return rc;
	if (!loop && exists && (flags & COW_FS_RENAME_EXCHANGE) && S_ISDIR(old.mode) && !same &&
	    (rc = is_ancestor(f, oino, dir, &loop)))
		return rc;
	if (loop)
		return -EINVAL;
	cow_fs_time ts = now();
	if (flags & COW_FS_RENAME_EXCHANGE) {
		if ((rc = dirent_put(f, dir, name, nlen, oino, old.mode)) ||
		    (rc = dirent_put(f, newdir, newname, newlen, ino, in.mode)))
			return poison(f, rc);
		if (!same && S_ISDIR(in.mode) != S_ISDIR(old.mode)) {
			int delta = S_ISDIR(in.mode) ? 1 : -1; /* a directory moves to newdir */
			nd.nlink += (uint64_t)delta;
			d.nlink -= (uint64_t)delta;
		}
		in.parent = newdir;
		old.parent = dir;
		in.ctime = old.ctime = ts;
		d.mtime = d.ctime = nd.mtime = nd.ctime = ts;
		if ((rc = ino_put(f, &in)) || (rc = ino_put(f, &old)) || (rc = ino_put(f, &d)) ||
		    (!same && (rc = ino_put(f, &nd))))
			return poison(f, rc);
		return 0;
	}
	if (exists) {
		if (S_ISDIR(old.mode) && !S_ISDIR(in.mode))
			return -EISDIR;
		if (!S_ISDIR(old.mode) && S_ISDIR(in.mode))
			return -ENOTDIR;
		if (S_ISDIR(old.mode)) {
			bool empty;
			if ((rc = dir_empty(f, oino, &empty)))
				return rc;
			if (!empty)
				return -ENOTEMPTY;
		}
	}
	if (S_ISDIR(in.mode) && !same && !exists && nd.nlink >= COW_FS_NLINK_MAX)
		return -EMLINK;
	/* The old name goes, the new one points at the inode, the replaced one loses its link. */
	if ((rc = dirent_del(f, dir, name, nlen)))
		return poison(f, rc);
	d.size -= COW_MIN(d.size, nlen);
	d.mtime = d.ctime = ts;
	if (same)
		nd = d;
	if (exists) {
		nd.size -= COW_MIN(nd.size, newlen);
		if (S_ISDIR(old.mode)) {
			old.nlink = 0;
			nd.nlink--;
		} else {
			old.nlink--;
		}
		int orph = 0;
		if ((rc = lost_link(f, &old, &orph)))
			return poison(f, rc);
		if (orph && orphan)
			*orphan = oino;
	}
	if ((rc = dirent_put(f, newdir, newname, newlen, ino, in.mode)))
		return poison(f, rc);
	nd.size += newlen;
	nd.mtime = nd.ctime = ts;
	if (S_ISDIR(in.mode) && !same) {
		d.nlink--;
		nd.nlink++;
	}
	in.parent = newdir;
	in.ctime = ts;
	if (same)
		d = nd;
	if ((rc = ino_put(f, &in)) || (rc = ino_put(f, &d)) || (!same && (rc = ino_put(f, &nd))))
		return poison(f, rc);
	return 0;
}

/* ---- file data ---- */

/* The block map of file @ino (blockmap.c): its data keys, (ino, 2, block). */
static void fmap(cow_fs *f, uint64_t ino, struct cow__bmap *m)
{
	cow__fs_bmap(m, TX(f), &f->m.tree, ino);
}

/* Make @in @size bytes long: blocks past it go, the last one's tail is zeroed. */
static int resize(cow_fs *f, struct inode *in, uint64_t size)
{
	int rc = 0;
	if (size < in->size) {
		struct cow__bmap m;
		fmap(f, in->ino, &m);
		rc = cow__bmap_carve(&m, (size + BLK - 1) / BLK, m.limit);
		if (rc == 0 && size % BLK)
			rc = cow__bmap_zero(&m, size, BLK - size % BLK);
		in->blocks += (uint64_t)m.mapped;
	}
	in->size = size;
	return rc;
}

static int file_get(cow_fs *f, uint64_t ino, struct inode *in)
{
	int rc = ino_get(f, ino, in);
	if (rc == 0 && S_ISDIR(in->mode))
		return -EISDIR;
	if (rc == 0 && !S_ISREG(in->mode))
		return -EINVAL;
	return rc;
}

int cow_fs_read(cow_fs *f, uint64_t ino, void *buf, size_t len, uint64_t off, size_t *got)
{
	int rc = fs_check(f, false);
	if (rc || !got || (!buf && len))
		return rc ? rc : COW_EINVAL;
	*got = 0;
	struct inode in;
	if ((rc = file_get(f, ino, &in)))
		return rc;
	if (off >= in.size || len == 0)
		return 0;
	len = (size_t)COW_MIN((uint64_t)len, in.size - off);
	struct cow__bmap m;
	fmap(f, ino, &m);
	if ((rc = cow__bmap_read(&m, buf, len, off)) == 0)
		*got = len;
	return rc;
}

int cow_fs_write(cow_fs *f, uint64_t ino, const void *buf, size_t len, uint64_t off)
{
	int rc = fs_check(f, true);
	if (rc || (!buf && len))
		return rc ? rc : COW_EINVAL;
	struct inode in;
	if ((rc = file_get(f, ino, &in)))
		return rc;
	if (off > COW_FS_SIZE_MAX || len > COW_FS_SIZE_MAX - off)
		return -EFBIG;
	if (len == 0)
		return 0;
	struct cow__bmap m;
	fmap(f, ino, &m);
	rc = cow__bmap_write(&m, buf, len, off);
	in.blocks += (uint64_t)m.mapped;
	if (rc == 0) {
		in.size = COW_MAX(in.size, off + len);
		in.mtime = in.ctime = now();
		rc = ino_put(f, &in);
	}
	return poison(f, rc);
}

int cow_fs_punch(cow_fs *f, uint64_t ino, uint64_t off, uint64_t len)
{
	int rc = fs_check(f, true);
	if (rc)
		return rc;
	struct inode in;
	if ((rc = file_get(f, ino, &in)))
		return rc;
	if (off >= in.size || len == 0)
		return 0;
	len = COW_MIN(len, in.size - off);
	struct cow__bmap m;
	fmap(f, ino, &m);
	rc = cow__bmap_zero(&m, off, len);
	in.blocks += (uint64_t)m.mapped;
	if (rc == 0) {
		in.mtime = in.ctime = now();
		rc = ino_put(f, &in);
	}
	return poison(f, rc);
}

int cow_fs_seek(cow_fs *f, uint64_t ino, uint64_t off, int hole, uint64_t *out)
{
	int rc = fs_check(f, false);
	if (rc || !out)
		return rc ? rc : COW_EINVAL;
	struct inode in;
	if ((rc = file_get(f, ino, &in)))
		return rc;
	if (off >= in.size)
		return -ENXIO;
	struct cow__bmap m;
	fmap(f, ino, &m);
	struct cow__vcell vc;
	uint64_t idx = off / BLK;
	if ((rc = cow__bmap_next(&m, idx, &vc)) && rc != COW_ENOTFOUND)
		return rc;
	bool found = rc == 0;
	if (!hole) { /* the first data at or after off */
		if (!found || vc.key * BLK >= in.size)
			return -ENXIO;
		*out = vc.key <= idx ? off : vc.key * BLK;
		return 0;
	}
	/* The first hole: the first block no run covers from idx on (or the end). */
	while (found && vc.key <= idx) {
		idx = vc.key + vc.r.n;
		if ((rc = cow__bmap_next(&m, idx, &vc)) && rc != COW_ENOTFOUND)
			return rc;
		found = rc == 0;
	}
	uint64_t h = idx * BLK;
	*out = COW_MIN(COW_MAX(h, off), in.size);
	return 0;
}

int cow_fs_clone_range(cow_fs *f, uint64_t src, uint64_t soff, uint64_t dst, uint64_t doff,
		       uint64_t len, uint64_t *done)
{
	int rc = fs_check(f, true);
	if (rc || !done)
		return rc ? rc : COW_EINVAL;
	*done = 0;
	struct inode si, di;
	if ((rc = file_get(f, src, &si)) || (rc = file_get(f, dst, &di)))
		return rc;
	if (soff >= si.size || len == 0)
		return 0;
	len = COW_MIN(len, si.size - soff);
	if (doff > COW_FS_SIZE_MAX || len > COW_FS_SIZE_MAX - doff)
		return -EFBIG;
	if (src == dst && soff < doff + len && doff < soff + len)
		return -EINVAL;
	struct cow__bmap sm, dm;
	fmap(f, src, &sm);
	fmap(f, dst, &dm);
	uint8_t buf[16 * BLK]; /* what cannot be shared is copied, 64 KiB at a time */
	uint64_t pos = 0;
	bool aligned = soff % BLK == doff % BLK;
	while (pos < len && rc == 0) {
		uint64_t s = soff + pos, d = doff + pos, left = len - pos;
		/*
		 * Whole blocks are shared, their runs sliced; so is the source's
		 * last block when the copy ends the destination too (past the
		 * end both read as zeros).
		 */
		uint64_t nb = aligned && s % BLK == 0 ? left / BLK : 0;
		if (aligned && s % BLK == 0 && left % BLK && s + left == si.size &&
		    d + left >= di.size)
			nb++;
		if (nb) {
			rc = cow__bmap_share(&dm, d / BLK, &sm, s / BLK, nb);
			pos += COW_MIN(left, nb * BLK);
			continue;
		}
		/* An edge, or all of an unaligned copy: up to where a shared block could begin. */
		size_t n = (size_t)COW_MIN(left, (aligned ? BLK : sizeof(buf)) - s % BLK);
		if ((rc = cow__bmap_read(&sm, buf, n, s)) == 0)
			rc = cow__bmap_write(&dm, buf, n, d);
		pos += n;
	}
	di.blocks += (uint64_t)dm.mapped;
	if (rc == 0) {
		di.size = COW_MAX(di.size, doff + pos);
		di.mtime = di.ctime = now();
		rc = ino_put(f, &di);
	}
	if (rc == 0)
		*done = pos;
	return poison(f, rc);
}

int cow_fs_setattr(cow_fs *f, uint64_t ino, const cow_fs_attr *a, unsigned mask, cow_fs_attr *out)
{
	int rc = fs_check(f, true);
	if (rc || !a)
		return rc ? rc : COW_EINVAL;
	struct inode in;
	if ((rc = ino_get(f, ino, &in)))
		return rc;
	if (mask & COW_FS_SET_SIZE) {
		if (S_ISDIR(in.mode))
			return -EISDIR;
		if (!S_ISREG(in.mode))
			return -EINVAL;
		if (a->size > COW_FS_SIZE_MAX)
			return -EFBIG;
		if (mask == COW_FS_SET_SIZE && a->size == in.size) {
			attr_of(&in, out); /* truncate(2) to the size it has: no change, no ctime */
			return 0;
		}
		if (a->size != in.size) {
			if ((rc = resize(f, &in, a->size)))
				return poison(f, rc);
			in.mtime = now();
		}
	}
	if (mask & COW_FS_SET_MODE)
		in.mode = (in.mode & S_IFMT) | (a->mode & 07777);
	if (mask & COW_FS_SET_UID)
		in.uid = a->uid;
	if (mask & COW_FS_SET_GID)
		in.gid = a->gid;
	if (mask & COW_FS_SET_ATIME)
		in.atime = a->atime;
	if (mask & COW_FS_SET_MTIME)
		in.mtime = a->mtime;
	in.ctime = mask & COW_FS_SET_CTIME ? a->ctime : now();
	if ((rc = ino_put(f, &in)))
		return poison(f, rc);
	attr_of(&in, out);
	return 0;
}

/* ---- directories ---- */

int cow_fs_readdir(cow_fs *f, uint64_t dir, uint64_t cookie,
		   int (*fn)(void *ctx, const cow_fs_dirent *e), void *ctx)
{
	int rc = fs_check(f, false);
	if (rc || !fn)
		return rc ? rc : COW_EINVAL;
	struct inode d;
	if ((rc = dir_get(f, dir, &d)))
		return rc;
	if (cookie == 0) {
		cow_fs_dirent e = {".", 1, dir, S_IFDIR, 1, 0};
		if (fn(ctx, &e))
			return 0;
		cookie = 1;
	}
	if (cookie == 1) {
		cow_fs_dirent e = {"..", 2, d.parent, S_IFDIR, 2, 1};
		if (fn(ctx, &e))
			return 0;
		cookie = 2;
	}
	uint8_t k[17];
	k_ino(k, dir, T_DIRENT);
	cow__put_be64(k + 9, COW_MAX(cookie, (uint64_t)FIRST_COOKIE));
	struct cow__cursor c;
	cow__cursor_init(&c, TX(f), &f->m.tree);
	cow_buf kb, vb;
	for (rc = key_with(&c, cow__cursor_seek(&c, k, 17), k, 9, &kb); rc == 1;
	     rc = key_with(&c, cow__cursor_next(&c), k, 9, &kb)) {
		const uint8_t *kp = kb.data;
		if ((rc = cow__cursor_get(&c, NULL, &vb)))
			return rc;
		if (kb.len < 18 || vb.len != 12 || kb.len - 17 > COW_FS_NAME_MAX)
			return COW_CORRUPT(0, "bad directory entry");
		uint64_t h = cow__be64(kp + 9);
		cow_fs_dirent e = {(const char *)kp + 17,
				   kb.len - 17,
				   cow__le64(vb.data),
				   cow__le32((const uint8_t *)vb.data + 8),
				   h + 1,
				   h};
		if (fn(ctx, &e))
			return 0;
	}
	return rc;
}

/* ---- extended attributes ---- */

static int xattr_key(uint8_t *k, uint64_t ino, const char *name, size_t *klen)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > COW_FS_NAME_MAX)
		return n ? -ERANGE : -EINVAL;
	k_ino(k, ino, T_XATTR);
	memcpy(k + 9, name, n);
	*klen = 9 + n;
	return 0;
}

int cow_fs_getxattr(cow_fs *f, uint64_t ino, const char *name, void *buf, size_t cap, size_t *len)
{
	int rc = fs_check(f, false);
	if (rc || !len || (!buf && cap))
		return rc ? rc : COW_EINVAL;
	struct inode in;
	uint8_t k[9 + COW_FS_NAME_MAX];
	size_t klen;
	if ((rc = ino_get(f, ino, &in)) || (rc = xattr_key(k, ino, name, &klen)))
		return rc;
	cow_buf v;
	rc = get(f, k, klen, &v);
	if (rc == COW_ENOTFOUND)
		return -ENODATA;
	if (rc)
		return rc;
	*len = v.len;
	if (cap && v.len > cap)
		return -ERANGE;
	if (cap)
		memcpy(buf, v.data, v.len);
	return 0;
}

int cow_fs_setxattr(cow_fs *f, uint64_t ino, const char *name, const void *val, size_t vlen,
		    int flags)
{
	int rc = fs_check(f, true);
	if (rc || (!val && vlen) || (flags & ~3) || flags == 3)
		return rc ? rc : -EINVAL;
	if (vlen > XATTR_MAX)
		return -E2BIG;
	struct inode in;
	uint8_t k[9 + COW_FS_NAME_MAX];
	size_t klen;
	if ((rc = ino_get(f, ino, &in)) || (rc = xattr_key(k, ino, name, &klen)))
		return rc;
	if (flags) {
		cow_buf v;
		rc = get(f, k, klen, &v);
		if (rc && rc != COW_ENOTFOUND)
			return rc;
		if (rc == 0 && flags == 1)
			return -EEXIST;
		if (rc == COW_ENOTFOUND && flags == 2)
			return -ENODATA;
	}
	in.ctime = now();
	if ((rc = put(f, k, klen, val ? val : "", vlen)) || (rc = ino_put(f, &in)))
		return poison(f, rc);
	return 0;
}

int cow_fs_removexattr(cow_fs *f, uint64_t ino, const char *name)
{
	int rc = fs_check(f, true);
	if (rc)
		return rc;
	struct inode in;
	uint8_t k[9 + COW_FS_NAME_MAX];
	size_t klen;
	if ((rc = ino_get(f, ino, &in)) || (rc = xattr_key(k, ino, name, &klen)))
		return rc;
	rc = cow__btree_del(TX(f), &f->m.tree, k, klen);
	if (rc == COW_ENOTFOUND)
		return -ENODATA;
	in.ctime = now();
	if (rc || (rc = ino_put(f, &in)))
		return poison(f, rc);
	return 0;
}

int cow_fs_listxattr(cow_fs *f, uint64_t ino, char *buf, size_t cap, size_t *len)
{
	int rc = fs_check(f, false);
	if (rc || !len || (!buf && cap))
		return rc ? rc : COW_EINVAL;
	struct inode in;
	if ((rc = ino_get(f, ino, &in)))
		return rc;
	uint8_t k[9];
	k_ino(k, ino, T_XATTR);
	struct cow__cursor c;
	cow__cursor_init(&c, TX(f), &f->m.tree);
	size_t n = 0;
	cow_buf kb;
	for (rc = key_with(&c, cow__cursor_seek(&c, k, 9), k, 9, &kb); rc == 1;
	     rc = key_with(&c, cow__cursor_next(&c), k, 9, &kb)) {
		size_t l = kb.len - 9;
		if (cap && n + l + 1 > cap)
			return -ERANGE;
		if (cap) {
			memcpy(buf + n, (const uint8_t *)kb.data + 9, l);
			buf[n + l] = 0;
		}
		n += l + 1;
	}
	if (rc)
		return rc;
	*len = n;
	return 0;
}

/* ---- freeing ---- */

/* Delete every record of inode @ino (its data, target, attributes, itself). */
static int free_inode(cow_fs *f, uint64_t ino)
{
	uint8_t k[9];
	k_ino(k, ino, 0);
	for (;;) {
		struct cow__cursor c;
		cow__cursor_init(&c, TX(f), &f->m.tree);
		cow_buf kb;
		int rc = key_with(&c, cow__cursor_seek(&c, k, 9), k, 8, &kb);
		if (rc <= 0) {
			if (rc)
				return rc;
			break;
		}
		uint8_t key[COW_BTREE_KEY_MAX];
		size_t klen = kb.len;
		memcpy(key, kb.data, klen);
		if ((rc = cow__btree_del(TX(f), &f->m.tree, key, klen)))
			return rc;
	}
	struct fsrec r;
	int rc = rec_get(f, &r);
	if (rc == 0) {
		r.inodes--;
		rc = rec_put(f, &r);
	}
	uint8_t ok[17];
	k_ino(ok, META, T_ORPHAN);
	cow__put_be64(ok + 9, ino);
	return rc ? rc : del(f, ok, 17);
}

int cow_fs_forget(cow_fs *f, uint64_t ino)
{
	int rc = fs_check(f, true);
	if (rc)
		return rc;
	struct inode in;
	rc = ino_get(f, ino, &in);
	if (rc == -ENOENT || (rc == 0 && in.nlink > 0))
		return 0;
	if (rc)
		return rc;
	return poison(f, free_inode(f, ino));
}

int cow_fs_orphans(cow_fs *f, uint64_t *freed)
{
	int rc = fs_check(f, true);
	if (rc)
		return rc;
	uint64_t n = 0;
	uint8_t k[9];
	k_ino(k, META, T_ORPHAN);
	for (;;) {
		struct cow__cursor c;
		cow__cursor_init(&c, TX(f), &f->m.tree);
		cow_buf kb;
		if ((rc = key_with(&c, cow__cursor_seek(&c, k, 9), k, 9, &kb)) <= 0)
			break;
		if (kb.len != 17) {
			rc = COW_CORRUPT(0, "bad orphan record");
			break;
		}
		uint64_t ino = cow__be64((const uint8_t *)kb.data + 9);
		struct inode in;
		rc = ino_get(f, ino, &in);
		if (rc == 0 && in.nlink > 0) { /* linked again: only the mark goes */
			uint8_t ok[17];
			memcpy(ok, kb.data, 17);
			rc = del(f, ok, 17);
		} else if (rc == 0 || rc == -ENOENT) {
			rc = free_inode(f, ino);
			n++;
		}
		if (rc)
			break;
	}
	if (freed)
		*freed = n;
	return poison(f, rc);
}

int cow_fs_stat(cow_fs *f, cow_fs_stats *st)
{
	int rc = fs_check(f, false);
	if (rc || !st)
		return rc ? rc : COW_EINVAL;
	struct fsrec r;
	if ((rc = rec_get(f, &r)))
		return rc;
	*st = (cow_fs_stats){.inodes = r.inodes, .next_ino = r.next_ino};
	return 0;
}

/* ---- diff ---- */

/* Find the name of @ino in directory @dir: scan its entries. */
struct find_name {
	uint64_t ino;
	char *name;
	size_t len;
	bool found;
};

static int name_of_cb(void *ctx, const cow_fs_dirent *e)
{
	struct find_name *fn = ctx;
	if (e->hash < FIRST_COOKIE || e->ino != fn->ino)
		return 0;
	memcpy(fn->name, e->name, e->nlen);
	fn->len = e->nlen;
	fn->found = true;
	return 1;
}

/*
 * The hint was wrong (the name it knew went, another link stays): look at
 * every directory entry of the tree. Slow, and only for such files.
 */
static int find_anywhere(cow_fs *f, uint64_t ino, struct find_name *fn, uint64_t *dir)
{
	struct cow__cursor c;
	cow__cursor_init(&c, TX(f), &f->m.tree);
	int rc = cow__cursor_first(&c);
	while (rc == 0) {
		cow_buf kb, vb;
		if ((rc = cow__cursor_get(&c, &kb, NULL)))
			break;
		const uint8_t *k = kb.data;
		if (kb.len > 17 && k[8] == T_DIRENT) {
			if ((rc = cow__cursor_get(&c, NULL, &vb)))
				break;
			if (vb.len == 12 && cow__le64(vb.data) == ino &&
			    kb.len - 17 <= COW_FS_NAME_MAX) {
				fn->len = kb.len - 17;
				memcpy(fn->name, k + 17, fn->len);
				fn->found = true;
				*dir = cow__be64(k);
				return 0;
			}
		}
		rc = cow__cursor_next(&c);
	}
	return rc == COW_ENOTFOUND ? 0 : rc;
}

/*
 * The path of @ino in @f into @buf (cap bytes, from the end backwards):
 * *@at gets where it starts. A file's parent is a hint (the directory of
 * its last rename or creation); when that name is gone, the path is the
 * inode number, "#INO".
 */
static int path_of(cow_fs *f, uint64_t ino, char *buf, size_t cap, size_t *at)
{
	size_t pos = cap;
	for (unsigned depth = 0; ino != COW_FS_ROOT; depth++) {
		struct inode in;
		int rc = ino_get(f, ino, &in);
		char name[COW_FS_NAME_MAX + 24];
		struct find_name fn = {ino, name, 0, false};
		if (rc == 0 && in.parent && depth < 4096 &&
		    (rc = cow_fs_readdir(f, in.parent, FIRST_COOKIE, name_of_cb, &fn)) == -ENOTDIR)
			rc = 0;
		if (rc && rc != -ENOENT)
			return rc;
		if (!fn.found && rc == 0 && (rc = find_anywhere(f, ino, &fn, &in.parent)))
			return rc;
		if (!fn.found) { /* no name found: the number stands for the rest */
			fn.len = (size_t)snprintf(name, sizeof(name), "#%llu",
						  (unsigned long long)ino);
			in.parent = COW_FS_ROOT;
		}
		if (fn.len + 1 > pos)
			return COW_ETOOBIG;
		pos -= fn.len;
		memcpy(buf + pos, name, fn.len);
		if (in.parent != COW_FS_ROOT)
			buf[--pos] = '/';
		ino = in.parent;
	}
	*at = pos;
	return 0;
}

struct fsdiff {
	cow_fs *a, *b;
	int (*fn)(void *ctx, char kind, const char *path, size_t len);
	void *ctx;
	uint64_t last_m; /* the inode last reported 'M' */
	char buf[1 << 16];
};

static int report(struct fsdiff *d, char kind, cow_fs *f, uint64_t ino, const char *name,
		  size_t nlen)
{
	size_t at, cap = sizeof(d->buf) - COW_FS_NAME_MAX - 2;
	int rc = path_of(f, ino, d->buf, cap, &at);
	if (rc)
		return rc;
	size_t len = cap - at;
	if (name) {
		memmove(d->buf, d->buf + at, len);
		if (len)
			d->buf[len++] = '/';
		memcpy(d->buf + len, name, nlen);
		len += nlen;
		at = 0;
	}
	return d->fn(d->ctx, kind, d->buf + at, len);
}

static int on_key(void *ctx, const cow_diff_entry *e)
{
	struct fsdiff *d = ctx;
	const uint8_t *k = e->key.data;
	if (e->key.len < 9)
		return COW_CORRUPT(0, "bad fs key");
	uint64_t ino = cow__be64(k);
	if (ino == META)
		return 0; /* the fs record and orphans */
	if (k[8] == T_DIRENT && e->key.len > 17) {
		const char *name = (const char *)k + 17;
		size_t n = e->key.len - 17;
		int rc = 0;
		if (e->kind != COW_DIFF_ADDED)
			rc = report(d, '-', d->a, ino, name, n);
		if (rc == 0 && e->kind != COW_DIFF_REMOVED)
			rc = report(d, '+', d->b, ino, name, n);
		return rc;
	}
	/*
	 * Anything else of an inode that is on both sides: its contents or
	 * attributes, reported once. An inode added or removed whole is
	 * reported by its name.
	 */
	if (ino == d->last_m || (k[8] == T_INODE && e->kind != COW_DIFF_CHANGED))
		return 0;
	struct inode x;
	if (ino_get(d->a, ino, &x) || ino_get(d->b, ino, &x) || x.nlink == 0)
		return 0; /* not on both sides, or only an orphan now: its names said it */
	d->last_m = ino;
	return report(d, 'M', d->b, ino, NULL, 0);
}

int cow_fs_diff(cow_txn *t, const char *from, const char *to,
		int (*fn)(void *ctx, char kind, const char *path, size_t len), void *ctx)
{
	if (!fn)
		return COW_EINVAL;
	struct fsdiff *d = cow__calloc(1, sizeof(*d));
	if (!d)
		return COW_ENOMEM;
	int rc = cow_fs_open(t, from, &d->a);
	if (rc == 0)
		rc = cow_fs_open(t, to, &d->b);
	if (rc == 0) {
		d->fn = fn;
		d->ctx = ctx;
		rc = cow_diff(t, from, to, on_key, d);
	}
	cow__free(d);
	return rc;
}
