/*
 * File systems in a store (include/cow/fs.h): names, links, renames, data
 * with holes, reflinks that stay shared until written, snapshots and clones
 * of a whole tree; and a random model of file data (writes, truncates,
 * punches, reflinks) against plain buffers, checked after every step and
 * again after commits, with the store's checker (reference counts
 * included) clean at the end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include "check.h"
#include "cow/fs.h"
#include "faultio.h"
#include "store/store.h"

static cow_store *s;

static cow_fs *open_fs(cow_txn **t, unsigned flags, const char *name)
{
	CHECK_OK(cow_txn_begin(s, flags, t));
	cow_fs *f;
	CHECK_OK(cow_fs_open(*t, name, &f));
	return f;
}

static uint64_t mk(cow_fs *f, uint64_t dir, const char *name, uint32_t mode)
{
	cow_fs_attr a;
	CHECK_OK(cow_fs_mknod(f, dir, name, strlen(name),
			      &(cow_fs_attr){.mode = mode, .uid = 7, .gid = 8}, &a));
	CHECK_EQ(a.mode, mode);
	CHECK_EQ(a.uid, 7);
	return a.ino;
}

static uint64_t look(cow_fs *f, uint64_t dir, const char *name)
{
	cow_fs_attr a;
	int rc = cow_fs_lookup(f, dir, name, strlen(name), &a);
	return rc == 0 ? a.ino : 0;
}

static uint64_t nlink(cow_fs *f, uint64_t ino)
{
	cow_fs_attr a;
	CHECK_OK(cow_fs_getattr(f, ino, &a));
	return a.nlink;
}

struct list {
	char names[64][32];
	int n;
	uint64_t last;
	int stop_after;
};

static int collect(void *ctx, const cow_fs_dirent *e)
{
	struct list *l = ctx;
	CHECK_LT(l->n, 64);
	CHECK_LT(e->nlen, 32);
	memcpy(l->names[l->n], e->name, e->nlen);
	l->names[l->n][e->nlen] = 0;
	l->n++;
	l->last = e->next;
	return l->stop_after && l->n % l->stop_after == 0;
}

static bool listed(const struct list *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->names[i], name) == 0)
			return true;
	return false;
}

static void test_names(void)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_fs_create(t, "home", &(cow_fs_attr){.mode = 0750, .uid = 1, .gid = 2}));
	CHECK_RC(cow_fs_create(t, "home", NULL), COW_EEXIST);
	cow_fs *f;
	CHECK_OK(cow_fs_open(t, "home", &f));
	cow_map *m;
	CHECK_RC(cow_map_open(t, "home", &m), COW_ETYPE);
	cow_fs_attr a;
	CHECK_OK(cow_fs_getattr(f, COW_FS_ROOT, &a));
	CHECK_EQ(a.mode, S_IFDIR | 0750);
	CHECK_EQ(a.nlink, 2);

	uint64_t d = mk(f, COW_FS_ROOT, "d", S_IFDIR | 0755);
	uint64_t x = mk(f, d, "x", S_IFREG | 0644);
	CHECK_EQ(nlink(f, COW_FS_ROOT), 3);
	CHECK_EQ(look(f, d, "x"), x);
	CHECK_EQ(look(f, d, ".."), COW_FS_ROOT);
	CHECK_EQ(look(f, d, "."), d);
	CHECK_RC(cow_fs_mknod(f, d, "x", 1, &(cow_fs_attr){.mode = S_IFREG}, &a), -EEXIST);
	CHECK_RC(cow_fs_mknod(f, x, "y", 1, &(cow_fs_attr){.mode = S_IFREG}, &a), -ENOTDIR);
	CHECK_RC(cow_fs_mknod(f, d, "a/b", 3, &(cow_fs_attr){.mode = S_IFREG}, &a), -EINVAL);
	CHECK_RC(cow_fs_mknod(f, d, "..", 2, &(cow_fs_attr){.mode = S_IFREG}, &a), -EEXIST);
	CHECK_RC(cow_fs_mknod(f, d, "", 0, &(cow_fs_attr){.mode = S_IFREG}, &a), -EINVAL);
	char longname[300];
	memset(longname, 'n', sizeof(longname));
	CHECK_RC(cow_fs_mknod(f, d, longname, 256, &(cow_fs_attr){.mode = S_IFREG}, &a),
		 -ENAMETOOLONG);
	CHECK_OK(cow_fs_mknod(f, d, longname, 255, &(cow_fs_attr){.mode = S_IFREG}, &a));
	CHECK_RC(cow_fs_lookup(f, d, "nope", 4, &a), -ENOENT);
	/* UTF-8 and any byte but '/' and NUL */
	const char bin[] = "caf\xc3\xa9 \x01\xff";
	CHECK_OK(cow_fs_mknod(f, d, bin, sizeof(bin) - 1, &(cow_fs_attr){.mode = S_IFIFO | 0600},
			      &a));
	CHECK_EQ(look(f, d, bin), a.ino);

	/* set-group-ID directories pass their group on */
	uint64_t g = mk(f, COW_FS_ROOT, "g", S_IFDIR | S_ISGID | 0775);
	CHECK_OK(cow_fs_mknod(f, g, "sub", 3, &(cow_fs_attr){.mode = S_IFDIR | 0755, .gid = 99},
			      &a));
	CHECK_EQ(a.gid, 8);
	CHECK(a.mode & S_ISGID);

	/* hard links, symlinks */
	CHECK_OK(cow_fs_link(f, x, COW_FS_ROOT, "x2", 2, &a));
	CHECK_EQ(a.nlink, 2);
	CHECK_RC(cow_fs_link(f, d, COW_FS_ROOT, "d2", 2, &a), -EPERM);
	CHECK_OK(cow_fs_symlink(f, COW_FS_ROOT, "ln", 2, "d/x", 3, 0, 0, &a));
	CHECK_EQ(a.mode, S_IFLNK | 0777);
	char buf[64];
	size_t len;
	CHECK_OK(cow_fs_readlink(f, a.ino, buf, sizeof(buf), &len));
	CHECK_EQ(len, 3);
	CHECK_MEMEQ(buf, "d/x", 3);
	CHECK_RC(cow_fs_readlink(f, x, buf, sizeof(buf), &len), -EINVAL);

	/* readdir: ".", "..", then every name once, also when resumed at each cookie */
	for (int i = 0; i < 40; i++) {
		char n[16];
		snprintf(n, sizeof(n), "f%02d", i);
		mk(f, g, n, S_IFREG | 0600);
	}
	struct list all = {.n = 0};
	CHECK_OK(cow_fs_readdir(f, g, 0, collect, &all));
	CHECK_EQ(all.n, 43);
	CHECK_STREQ(all.names[0], ".");
	CHECK_STREQ(all.names[1], "..");
	CHECK(listed(&all, "sub") && listed(&all, "f00") && listed(&all, "f39"));
	struct list part = {.stop_after = 5};
	uint64_t cookie = 0;
	for (int rounds = 0; rounds < 20; rounds++) {
		int before = part.n;
		CHECK_OK(cow_fs_readdir(f, g, cookie, collect, &part));
		if (part.n == before)
			break;
		cookie = part.last;
		if (rounds == 2) /* names added and removed meanwhile do not disturb the rest */
			mk(f, g, "late", S_IFREG);
	}
	for (int i = 0; i < all.n; i++)
		CHECK(listed(&part, all.names[i]));

	/* unlink and rmdir */
	CHECK_RC(cow_fs_unlink(f, COW_FS_ROOT, "d", 1, 0, NULL), -EISDIR);
	CHECK_RC(cow_fs_unlink(f, COW_FS_ROOT, "d", 1, 1, NULL), -ENOTEMPTY);
	CHECK_RC(cow_fs_unlink(f, COW_FS_ROOT, "x2", 2, 1, NULL), -ENOTDIR);
	int orphan = -1;
	CHECK_OK(cow_fs_unlink(f, COW_FS_ROOT, "x2", 2, 0, &orphan));
	CHECK_EQ(orphan, 0);
	CHECK_EQ(nlink(f, x), 1);
	CHECK_OK(cow_fs_write(f, x, "data", 4, 0));
	CHECK_OK(cow_fs_unlink(f, d, "x", 1, 0, &orphan));
	CHECK_EQ(orphan, 1);
	size_t got;
	CHECK_OK(cow_fs_read(f, x, buf, 4, 0, &got)); /* open files keep their data */
	CHECK_EQ(got, 4);
	CHECK_OK(cow_txn_commit(t));

	/* an orphan survives a commit (a crash) and is freed by cow_fs_orphans */
	f = open_fs(&t, 0, "home");
	cow_fs_stats st;
	CHECK_OK(cow_fs_stat(f, &st));
	uint64_t before = st.inodes;
	uint64_t freed;
	CHECK_OK(cow_fs_orphans(f, &freed));
	CHECK_EQ(freed, 1);
	CHECK_RC(cow_fs_getattr(f, x, &a), -ENOENT);
	CHECK_OK(cow_fs_stat(f, &st));
	CHECK_EQ(st.inodes, before - 1);
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));
}

static void test_rename(void)
{
	cow_txn *t;
	cow_fs *f = open_fs(&t, 0, "home");
	uint64_t a = mk(f, COW_FS_ROOT, "ra", S_IFDIR | 0755);
	uint64_t b = mk(f, COW_FS_ROOT, "rb", S_IFDIR | 0755);
	uint64_t a1 = mk(f, a, "a1", S_IFDIR | 0755);
	uint64_t file = mk(f, a, "file", S_IFREG | 0644);
	uint64_t root_links = nlink(f, COW_FS_ROOT);
	/* a directory never moves into its own subtree */
	CHECK_RC(cow_fs_rename(f, COW_FS_ROOT, "ra", 2, a1, "loop", 4, 0, NULL), -EINVAL);
	CHECK_RC(cow_fs_rename(f, COW_FS_ROOT, "ra", 2, a, "self", 4, 0, NULL), -EINVAL);
	/* move a directory: link counts of both parents and its ".." follow */
	CHECK_OK(cow_fs_rename(f, a, "a1", 2, b, "b1", 2, 0, NULL));
	CHECK_EQ(look(f, b, "b1"), a1);
	CHECK_EQ(look(f, a, "a1"), 0);
	CHECK_EQ(look(f, a1, ".."), b);
	CHECK_EQ(nlink(f, a), 2);
	CHECK_EQ(nlink(f, b), 3);
	/* replace a file; a directory only by an empty directory */
	uint64_t other = mk(f, b, "other", S_IFREG | 0644);
	uint64_t orphan;
	CHECK_OK(cow_fs_rename(f, a, "file", 4, b, "other", 5, 0, &orphan));
	CHECK_EQ(orphan, other);
	CHECK_EQ(look(f, b, "other"), file);
	CHECK_RC(cow_fs_rename(f, b, "other", 5, COW_FS_ROOT, "rb", 2, 0, NULL), -EISDIR);
	CHECK_RC(cow_fs_rename(f, COW_FS_ROOT, "ra", 2, b, "other", 5, 0, NULL), -ENOTDIR);
	mk(f, a, "keep", S_IFREG);
	CHECK_RC(cow_fs_rename(f, b, "b1", 2, COW_FS_ROOT, "ra", 2, 0, NULL), -ENOTEMPTY);
	/* noreplace, exchange */
	CHECK_RC(cow_fs_rename(f, b, "other", 5, a, "keep", 4, COW_FS_RENAME_NOREPLACE, NULL),
		 -EEXIST);
	CHECK_OK(cow_fs_rename(f, b, "b1", 2, a, "keep", 4, COW_FS_RENAME_EXCHANGE, NULL));
	CHECK_EQ(look(f, a, "keep"), a1);
	CHECK_EQ(look(f, a1, ".."), a);
	CHECK_EQ(nlink(f, a), 3);
	CHECK_EQ(nlink(f, b), 2);
	/* renaming onto another name of the same inode does nothing */
	CHECK_OK(cow_fs_link(f, file, a, "same", 4, NULL));
	CHECK_OK(cow_fs_rename(f, a, "same", 4, b, "other", 5, 0, NULL));
	CHECK_EQ(look(f, a, "same"), file);
	CHECK_EQ(nlink(f, COW_FS_ROOT), root_links);
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));
}

static void test_xattr(void)
{
	cow_txn *t;
	cow_fs *f = open_fs(&t, 0, "home");
	uint64_t x = mk(f, COW_FS_ROOT, "xa", S_IFREG | 0644);
	CHECK_OK(cow_fs_setxattr(f, x, "user.a", "1", 1, 0));
	CHECK_RC(cow_fs_setxattr(f, x, "user.a", "2", 1, 1), -EEXIST);
	CHECK_RC(cow_fs_setxattr(f, x, "user.b", "2", 1, 2), -ENODATA);
	static char big[65536];
	memset(big, 'v', sizeof(big));
	CHECK_OK(cow_fs_setxattr(f, x, "user.big", big, sizeof(big), 0));
	CHECK_RC(cow_fs_setxattr(f, x, "user.bigger", big, sizeof(big) + 1, 0), -E2BIG);
	size_t len;
	char buf[16];
	CHECK_OK(cow_fs_getxattr(f, x, "user.big", NULL, 0, &len));
	CHECK_EQ(len, sizeof(big));
	CHECK_RC(cow_fs_getxattr(f, x, "user.big", buf, sizeof(buf), &len), -ERANGE);
	CHECK_RC(cow_fs_getxattr(f, x, "user.none", buf, sizeof(buf), &len), -ENODATA);
	char names[64];
	CHECK_OK(cow_fs_listxattr(f, x, names, sizeof(names), &len));
	CHECK_EQ(len, sizeof("user.a") + sizeof("user.big"));
	CHECK_MEMEQ(names, "user.a\0user.big\0", len);
	CHECK_OK(cow_fs_removexattr(f, x, "user.a"));
	CHECK_RC(cow_fs_removexattr(f, x, "user.a"), -ENODATA);
	CHECK_OK(cow_txn_commit(t));
}

/* ---- file data against a model ---- */

#define NFILES 3
#define MAXSZ  (200 * 4096)

static uint8_t *model[NFILES];
static uint64_t msize[NFILES];

static void expect(cow_fs *f, const uint64_t *ino)
{
	static uint8_t got[MAXSZ + 8192];
	for (int i = 0; i < NFILES; i++) {
		cow_fs_attr a;
		CHECK_OK(cow_fs_getattr(f, ino[i], &a));
		CHECK_EQ(a.size, msize[i]);
		size_t n;
		CHECK_OK(cow_fs_read(f, ino[i], got, MAXSZ + 8192, 0, &n));
		CHECK_EQ(n, msize[i]);
		CHECK_MEMEQ(got, model[i], n);
		uint64_t blocks = 0;
		for (uint64_t b = 0; b * 4096 < msize[i]; b++) {
			size_t l = (size_t)COW_MIN(4096, msize[i] - b * 4096);
			bool zero = true;
			for (size_t k = 0; k < l; k++)
				zero &= model[i][b * 4096 + k] == 0;
			blocks += !zero;
		}
		CHECK_LE(a.blocks, (msize[i] + 4095) / 4096);
		CHECK_GE(a.blocks, blocks); /* a block of zeros can stay (a partial overwrite) */
	}
}

static void test_model(void)
{
	cow_txn *t;
	cow_fs *f = open_fs(&t, 0, "home");
	uint64_t ino[NFILES];
	for (int i = 0; i < NFILES; i++) {
		char n[8];
		snprintf(n, sizeof(n), "m%d", i);
		ino[i] = mk(f, COW_FS_ROOT, n, S_IFREG | 0644);
		model[i] = calloc(1, MAXSZ + 8192);
		CHECK(model[i] != NULL);
		msize[i] = 0;
	}
	uint64_t rnd = check_seed();
	static uint8_t data[MAXSZ];
	int steps = 3000, commits = 0;
	for (int step = 0; step < steps; step++) {
		int i = (int)(check_rand(&rnd) % NFILES), op = (int)(check_rand(&rnd) % 10);
		uint64_t r = check_rand(&rnd);
		/* sizes and offsets near block edges more often than not */
		uint64_t off = r % 3 ? (r >> 8) % 200 * 4096 + (r >> 20) % 3 * 2047
				     : (r >> 8) % (MAXSZ / 2);
		uint64_t len = (r >> 32) % 3 ? ((r >> 40) % 8 + 1) * 4096 - (r >> 48) % 2 * 100
					     : (r >> 40) % 20000 + 1;
		off = COW_MIN(off, (uint64_t)MAXSZ - 1);
		len = COW_MIN(len, MAXSZ - off);
		if (op <= 3) { /* write: random bytes, or zeros */
			for (uint64_t k = 0; k < len; k++)
				data[k] = op == 3 ? 0 : (uint8_t)(check_rand(&rnd) | 1);
			CHECK_OK(cow_fs_write(f, ino[i], data, len, off));
			memcpy(model[i] + off, data, len);
			msize[i] = COW_MAX(msize[i], off + len);
		} else if (op == 4) { /* truncate */
			uint64_t ns = off;
			CHECK_OK(cow_fs_setattr(f, ino[i], &(cow_fs_attr){.size = ns},
						COW_FS_SET_SIZE, NULL));
			if (ns < msize[i])
				memset(model[i] + ns, 0, msize[i] - ns);
			msize[i] = ns;
		} else if (op == 5) { /* punch */
			CHECK_OK(cow_fs_punch(f, ino[i], off, len));
			if (off < msize[i])
				memset(model[i] + off, 0, COW_MIN(len, msize[i] - off));
		} else if (op <= 7) { /* reflink another file's range in */
			int j = (int)(check_rand(&rnd) % NFILES);
			uint64_t soff = op == 6 ? off / 4096 * 4096 : (r >> 4) % (MAXSZ / 2);
			uint64_t doff =
				op == 6 ? (check_rand(&rnd) % 150) * 4096 : (r >> 12) % (MAXSZ / 2);
			if (soff >= msize[j])
				continue;
			uint64_t n = COW_MIN(len, msize[j] - soff);
			n = COW_MIN(n, MAXSZ - doff);
			if (j == i && soff < doff + n && doff < soff + n) {
				uint64_t done;
				CHECK_RC(
					cow_fs_clone_range(f, ino[j], soff, ino[i], doff, n, &done),
					-EINVAL);
				continue;
			}
			uint64_t done;
			CHECK_OK(cow_fs_clone_range(f, ino[j], soff, ino[i], doff, n, &done));
			CHECK_EQ(done, n);
			memmove(model[i] + doff, model[j] + soff, n);
			msize[i] = COW_MAX(msize[i], doff + n);
		} else if (op == 8) { /* seek data and hole from off */
			uint64_t at;
			int rc = cow_fs_seek(f, ino[i], off, 0, &at);
			if (off >= msize[i]) {
				CHECK_EQ(rc, -ENXIO);
				continue;
			}
			if (rc == 0) { /* no nonzero byte between off and the data found */
				CHECK_GE(at, off);
				for (uint64_t k = off; k < at; k++)
					CHECK_EQ(model[i][k], 0);
			} else {
				CHECK_EQ(rc, -ENXIO);
				for (uint64_t k = off; k < msize[i]; k++)
					CHECK_EQ(model[i][k], 0);
			}
			CHECK_OK(cow_fs_seek(f, ino[i], off, 1, &at));
			CHECK_GE(at, off);
			CHECK_LE(at, msize[i]);
			if (at < msize[i]) /* a hole is whole blocks of zeros */
				for (uint64_t k = at; k < COW_MIN(msize[i], (at / 4096 + 1) * 4096);
				     k++)
					CHECK_EQ(model[i][k], 0);
		} else { /* commit, and every so often a snapshot that must stay as it was */
			CHECK_OK(cow_txn_commit(t));
			commits++;
			f = open_fs(&t, 0, "home");
		}
		if (step % 50 == 0)
			expect(f, ino);
	}
	expect(f, ino);
	CHECK_OK(cow_txn_commit(t));
	f = open_fs(&t, COW_TXN_RDONLY, "home");
	expect(f, ino);
	cow_txn_abort(t);
	printf("model: %d steps on %d files, %d commits, all reads matched\n", steps, NFILES,
	       commits);
	CHECK_OK(cow__store_check(s));
	for (int i = 0; i < NFILES; i++)
		free(model[i]);
}

/* ---- reflinks, snapshots and clones of the whole tree ---- */

static uint64_t referenced(const char *name)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	cow_obj_stats st;
	CHECK_OK(cow_obj_stat(t, name, 0, &st));
	CHECK_STREQ(st.type, "fs");
	cow_txn_abort(t);
	return st.referenced;
}

struct stream {
	uint8_t *buf;
	size_t len, cap, at;
};

static int put_stream(void *ctx, const void *p, size_t n)
{
	struct stream *st = ctx;
	CHECK_LE(st->len + n, st->cap);
	memcpy(st->buf + st->len, p, n);
	st->len += n;
	return 0;
}

static int get_stream(void *ctx, void *p, size_t n)
{
	struct stream *st = ctx;
	n = COW_MIN(n, st->len - st->at);
	memcpy(p, st->buf + st->at, n);
	st->at += n;
	return (int)n;
}

struct paths {
	char p[32][64];
	int n;
};

static int add_path(void *ctx, char kind, const char *path, size_t len)
{
	struct paths *ps = ctx;
	CHECK_LT(ps->n, 32);
	CHECK_LT(len, 62);
	ps->p[ps->n][0] = kind;
	memcpy(ps->p[ps->n] + 1, path, len);
	ps->p[ps->n][len + 1] = 0;
	ps->n++;
	return 0;
}

static bool has_path(const struct paths *ps, const char *want)
{
	for (int i = 0; i < ps->n; i++)
		if (strcmp(ps->p[i], want) == 0)
			return true;
	return false;
}

static void test_share(void)
{
	enum { MB = 1 << 20 };
	static uint8_t buf[8 * MB], got[8 * MB];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	cow_txn *t;
	cow_fs *f = open_fs(&t, 0, "home");
	uint64_t big = mk(f, COW_FS_ROOT, "big", S_IFREG | 0644);
	CHECK_OK(cow_fs_write(f, big, buf, sizeof(buf), 0));
	CHECK_OK(cow_txn_commit(t));
	uint64_t ref0 = referenced("home");

	/* a reflink of 8 MiB adds entries, not 8 MiB */
	cow_store_stats s0, s1, s2;
	CHECK_OK(cow_store_stat(s, &s0));
	f = open_fs(&t, 0, "home");
	uint64_t copy = mk(f, COW_FS_ROOT, "copy", S_IFREG | 0644), done;
	CHECK_OK(cow_fs_clone_range(f, big, 0, copy, 0, sizeof(buf), &done));
	CHECK_EQ(done, sizeof(buf));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_store_stat(s, &s1));
	CHECK_LT(s1.used_bytes, s0.used_bytes + MB / 2);
	/* one block written in the copy: only that block is new */
	f = open_fs(&t, 0, "home");
	CHECK_OK(cow_fs_write(f, copy, "X", 1, 3 * MB + 5));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_store_stat(s, &s2));
	CHECK_LT(s2.used_bytes, s1.used_bytes + 64 * 1024);
	printf("share: an 8 MiB reflink took %llu KiB, a 1-byte write into it %lld KiB more\n",
	       (unsigned long long)(s1.used_bytes - s0.used_bytes) >> 10,
	       (long long)(s2.used_bytes - s1.used_bytes) / 1024);
	CHECK_GE(referenced("home"), ref0 + 8 * MB); /* shared blocks count once per file */

	f = open_fs(&t, COW_TXN_RDONLY, "home");
	size_t n;
	CHECK_OK(cow_fs_read(f, big, got, sizeof(got), 0, &n));
	CHECK_EQ(n, sizeof(buf));
	CHECK_MEMEQ(got, buf, n);
	CHECK_OK(cow_fs_read(f, copy, got, sizeof(got), 0, &n));
	CHECK_EQ(got[3 * MB + 5], 'X');
	got[3 * MB + 5] = buf[3 * MB + 5];
	CHECK_MEMEQ(got, buf, n);
	cow_txn_abort(t);

	/* a snapshot keeps the whole tree; a clone is a writable tree */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_snapshot(t, "home@monday"));
	CHECK_OK(cow_txn_commit(t));
	f = open_fs(&t, 0, "home");
	CHECK_OK(cow_fs_unlink(f, COW_FS_ROOT, "big", 3, 0, NULL));
	CHECK_OK(cow_fs_forget(f, big));
	CHECK_OK(cow_fs_write(f, copy, "Y", 1, 0));
	CHECK_OK(cow_txn_commit(t));
	f = open_fs(&t, 0, "home@monday");
	CHECK_EQ(look(f, COW_FS_ROOT, "big"), big);
	CHECK_RC(cow_fs_write(f, copy, "Z", 1, 0), COW_EREADONLY);
	CHECK_RC(cow_fs_mknod(f, COW_FS_ROOT, "n", 1, &(cow_fs_attr){.mode = S_IFREG}, NULL),
		 COW_EREADONLY);
	CHECK_OK(cow_fs_read(f, copy, got, 1, 0, &n));
	CHECK_EQ(got[0], buf[0]);
	CHECK_OK(cow_clone(t, "home@monday", "work"));
	cow_fs *w;
	CHECK_OK(cow_fs_open(t, "work", &w));
	CHECK_OK(cow_fs_write(w, big, "W", 1, 0));
	CHECK_OK(cow_txn_commit(t));
	f = open_fs(&t, COW_TXN_RDONLY, "home@monday");
	CHECK_OK(cow_fs_read(f, big, got, 1, 0, &n));
	CHECK_EQ(got[0], buf[0]);
	cow_txn_abort(t);

	/* send and recv carry a whole tree */
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	struct stream st = {.cap = 64 << 20};
	st.buf = malloc(st.cap);
	CHECK(st.buf != NULL);
	CHECK_OK(cow_send(t, "home@monday", NULL, put_stream, &st));
	cow_txn_abort(t);
	CHECK_OK(cow_txn_begin(s, 0, &t));
	char snap[64];
	CHECK_OK(cow_recv(t, "received", get_stream, &st, snap, sizeof(snap)));
	CHECK_STREQ(snap, "received@monday");
	CHECK_OK(cow_fs_open(t, "received", &f));
	CHECK_OK(cow_fs_read(f, big, got, sizeof(got), 0, &n));
	CHECK_EQ(n, sizeof(buf));
	CHECK_MEMEQ(got, buf, n);
	CHECK_EQ(look(f, COW_FS_ROOT, "copy"), copy);
	CHECK_OK(cow_txn_commit(t));
	free(st.buf);

	/* diff lists the paths that changed */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_snapshot(t, "home@tuesday"));
	CHECK_OK(cow_fs_open(t, "home", &f));
	uint64_t dd = mk(f, COW_FS_ROOT, "dd", S_IFDIR | 0755);
	mk(f, dd, "new", S_IFREG | 0644);
	CHECK_OK(cow_fs_write(f, copy, "Q", 1, 5 * MB));
	CHECK_OK(cow_fs_rename(f, COW_FS_ROOT, "copy", 4, dd, "moved", 5, 0, NULL));
	CHECK_OK(cow_fs_unlink(f, COW_FS_ROOT, "m0", 2, 0, NULL));
	struct paths ps = {.n = 0};
	CHECK_OK(cow_fs_diff(t, "home@tuesday", "home", add_path, &ps));
	for (int i = 0; i < ps.n; i++)
		printf("diff: %s\n", ps.p[i]);
	CHECK(has_path(&ps, "+dd") && has_path(&ps, "+dd/new") && has_path(&ps, "-copy") &&
	      has_path(&ps, "+dd/moved") && has_path(&ps, "Mdd/moved") && has_path(&ps, "-m0") &&
	      has_path(&ps, "M"));
	CHECK(!has_path(&ps, "Mbig") && !has_path(&ps, "+big"));
	for (int i = 0; i < ps.n; i++)
		CHECK(ps.p[i][1] != '#'); /* every path resolved */
	CHECK_OK(cow_txn_commit(t));

	/* rollback brings the tree back */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_rollback(t, "home@monday"));
	CHECK_OK(cow_txn_commit(t));
	f = open_fs(&t, COW_TXN_RDONLY, "home");
	CHECK_EQ(look(f, COW_FS_ROOT, "big"), big);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));

	/* destroying everything gives every block back */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_destroy(t, "work", 0));
	CHECK_OK(cow_destroy(t, "received", COW_DESTROY_RECURSIVE));
	CHECK_OK(cow_destroy(t, "home", COW_DESTROY_RECURSIVE));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));
}

static void test_errors(void)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_fs_create(t, "e", NULL));
	cow_fs *f;
	CHECK_OK(cow_fs_open(t, "e", &f));
	CHECK_RC(cow_fs_open(t, "none", &f), COW_ENOTFOUND);
	CHECK_OK(cow_map_create(t, "amap"));
	CHECK_RC(cow_fs_open(t, "amap", &f), COW_ETYPE);
	CHECK_OK(cow_fs_open(t, "e", &f));
	uint64_t x = mk(f, COW_FS_ROOT, "x", S_IFREG | 0600);
	cow_fs_attr a;
	CHECK_RC(cow_fs_getattr(f, 0, &a), -ENOENT);
	CHECK_RC(cow_fs_getattr(f, 999, &a), -ENOENT);
	CHECK_RC(cow_fs_write(f, x, "a", 1, COW_FS_SIZE_MAX), -EFBIG);
	CHECK_RC(cow_fs_write(f, x, "a", 1, UINT64_MAX), -EFBIG);
	CHECK_RC(cow_fs_setattr(f, x, &(cow_fs_attr){.size = UINT64_MAX}, COW_FS_SET_SIZE, NULL),
		 -EFBIG);
	CHECK_RC(cow_fs_setattr(f, COW_FS_ROOT, &(cow_fs_attr){.size = 1}, COW_FS_SET_SIZE, NULL),
		 -EISDIR);
	size_t n;
	char b[4];
	CHECK_RC(cow_fs_read(f, COW_FS_ROOT, b, 4, 0, &n), -EISDIR);
	CHECK_OK(cow_fs_read(f, x, b, 4, UINT64_MAX, &n));
	CHECK_EQ(n, 0);
	uint64_t at;
	CHECK_RC(cow_fs_seek(f, x, 0, 0, &at), -ENXIO);
	/* a sparse file at the largest size */
	CHECK_OK(cow_fs_write(f, x, "end", 3, COW_FS_SIZE_MAX - 3));
	CHECK_OK(cow_fs_getattr(f, x, &a));
	CHECK_EQ(a.size, COW_FS_SIZE_MAX);
	CHECK_EQ(a.blocks, 1);
	CHECK_OK(cow_fs_seek(f, x, 0, 0, &at));
	CHECK_EQ(at, (COW_FS_SIZE_MAX - 1) / 4096 * 4096);
	CHECK_OK(cow_fs_seek(f, x, 0, 1, &at));
	CHECK_EQ(at, 0);
	CHECK_OK(cow_fs_setattr(f, x, &(cow_fs_attr){.size = 0}, COW_FS_SET_SIZE, &a));
	CHECK_EQ(a.blocks, 0);
	CHECK_OK(cow_txn_commit(t));
	/* a read transaction cannot change anything */
	f = open_fs(&t, COW_TXN_RDONLY, "e");
	CHECK_RC(cow_fs_write(f, x, "a", 1, 0), COW_EREADONLY);
	CHECK_RC(cow_fs_unlink(f, COW_FS_ROOT, "x", 1, 0, NULL), COW_EREADONLY);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
}

/* ---- power loss during file-system transactions ---- */

/* A digest of the whole tree under @dir: names, types, modes, sizes, links, bytes. */
struct walk {
	cow_fs *f;
	XXH3_state_t *h;
	uint64_t dirs[64];
	int ndirs;
};

static int walk_entry(void *ctx, const cow_fs_dirent *e)
{
	struct walk *w = ctx;
	if (e->nlen <= 2 && e->name[0] == '.')
		return 0;
	cow_fs_attr a;
	CHECK_OK(cow_fs_getattr(w->f, e->ino, &a));
	uint64_t rec[4] = {a.mode, a.size, a.nlink, a.uid};
	XXH3_64bits_update(w->h, e->name, e->nlen);
	XXH3_64bits_update(w->h, rec, sizeof(rec));
	if (S_ISREG(a.mode)) {
		static uint8_t buf[1 << 16];
		for (uint64_t off = 0; off < a.size; off += sizeof(buf)) {
			size_t got;
			CHECK_OK(cow_fs_read(w->f, e->ino, buf, sizeof(buf), off, &got));
			XXH3_64bits_update(w->h, buf, got);
		}
	} else if (S_ISDIR(a.mode)) {
		CHECK_LT(w->ndirs, 64);
		w->dirs[w->ndirs++] = e->ino;
	}
	return 0;
}

static uint64_t digest(cow_fs *f)
{
	struct walk w = {.f = f, .h = XXH3_createState()};
	XXH3_64bits_reset(w.h);
	w.dirs[w.ndirs++] = COW_FS_ROOT;
	for (int i = 0; i < w.ndirs; i++)
		CHECK_OK(cow_fs_readdir(f, w.dirs[i], 0, walk_entry, &w));
	uint64_t d = XXH3_64bits_digest(w.h);
	XXH3_freeState(w.h);
	return d;
}

#define CRASH_TXNS 8

/* Transaction @i of the workload: names made, renamed, removed, data written and reflinked. */
static int workload_txn(cow_fs *f, int i)
{
	static uint8_t buf[40000];
	for (size_t k = 0; k < sizeof(buf); k++)
		buf[k] = (uint8_t)(k * 31 + (size_t)i);
	char n[16];
	cow_fs_attr a, d;
	int rc;
	snprintf(n, sizeof(n), "d%d", i % 3);
	rc = cow_fs_lookup(f, COW_FS_ROOT, n, strlen(n), &d);
	if (rc == -ENOENT)
		rc = cow_fs_mknod(f, COW_FS_ROOT, n, strlen(n),
				  &(cow_fs_attr){.mode = S_IFDIR | 0755}, &d);
	if (rc)
		return rc;
	snprintf(n, sizeof(n), "f%d", i);
	if ((rc = cow_fs_mknod(f, d.ino, n, strlen(n), &(cow_fs_attr){.mode = S_IFREG | 0644},
			       &a)) ||
	    (rc = cow_fs_write(f, a.ino, buf, sizeof(buf) - (size_t)i * 1000, (uint64_t)i * 777)))
		return rc;
	if (i >= 2) { /* a reflink of an older file, then a write into the copy */
		cow_fs_attr o, c;
		char on[16];
		snprintf(n, sizeof(n), "d%d", (i - 2) % 3);
		snprintf(on, sizeof(on), "f%d", i - 2);
		if ((rc = cow_fs_lookup(f, COW_FS_ROOT, n, strlen(n), &o)) ||
		    (rc = cow_fs_lookup(f, o.ino, on, strlen(on), &o)))
			return rc;
		snprintf(n, sizeof(n), "c%d", i);
		uint64_t done;
		if ((rc = cow_fs_mknod(f, COW_FS_ROOT, n, strlen(n),
				       &(cow_fs_attr){.mode = S_IFREG | 0600}, &c)) ||
		    (rc = cow_fs_clone_range(f, o.ino, 0, c.ino, 0, o.size, &done)) ||
		    (rc = cow_fs_write(f, c.ino, "x", 1, 5000)))
			return rc;
	}
	if (i >= 3) { /* a rename across directories and an unlink */
		snprintf(n, sizeof(n), "c%d", i - 1);
		char to[16];
		snprintf(to, sizeof(to), "r%d", i);
		if ((rc = cow_fs_rename(f, COW_FS_ROOT, n, strlen(n), d.ino, to, strlen(to), 0,
					NULL)))
			return rc;
		snprintf(n, sizeof(n), "f%d", i - 3);
		cow_fs_attr p;
		char dn[16];
		snprintf(dn, sizeof(dn), "d%d", (i - 3) % 3);
		int orphan = 0;
		if ((rc = cow_fs_lookup(f, COW_FS_ROOT, dn, strlen(dn), &p)) ||
		    (rc = cow_fs_lookup(f, p.ino, n, strlen(n), &a)) ||
		    (rc = cow_fs_unlink(f, p.ino, n, strlen(n), 0, &orphan)))
			return rc;
		if (orphan && (rc = cow_fs_forget(f, a.ino)))
			return rc;
	}
	return 0;
}

/* Run the workload on @path; digests after each commit to @dg (if not NULL). */
static int run_workload(const char *path, uint64_t *dg, int *committed)
{
	cow_store *st;
	int rc = cow_store_open(path, NULL, &st);
	*committed = 0;
	if (rc)
		return rc;
	for (int i = 0; i < CRASH_TXNS && rc == 0; i++) {
		cow_txn *t;
		cow_fs *f;
		if ((rc = cow_txn_begin(st, 0, &t)))
			break;
		if ((rc = cow_fs_open(t, "crash", &f)) == 0)
			rc = workload_txn(f, i);
		if (rc == 0 && dg)
			dg[i + 1] = digest(f);
		if (rc) {
			cow_txn_abort(t);
			break;
		}
		if ((rc = cow_txn_commit(t)) == 0)
			*committed = i + 1;
	}
	cow_store_close(st);
	return rc;
}

static void test_power_loss(void)
{
	char path[4096], pristine[4200];
	snprintf(path, sizeof(path), "%s", check_path("fs-crash.cow"));
	snprintf(pristine, sizeof(pristine), "%s.pristine", path);
	cow_store *st;
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_CREATE}, &st));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(st, 0, &t));
	CHECK_OK(cow_fs_create(t, "crash", NULL));
	CHECK_OK(cow_txn_commit(t));
	cow_fs *f;
	CHECK_OK(cow_txn_begin(st, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_fs_open(t, "crash", &f));
	uint64_t dg[CRASH_TXNS + 1];
	dg[0] = digest(f);
	cow_txn_abort(t);
	cow_store_close(st);
	/* A dry run: the tree after each transaction. */
	int n;
	{
		int in = open(path, O_RDONLY),
		    out = open(pristine, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		static uint8_t b[1 << 16];
		ssize_t k;
		while ((k = read(in, b, sizeof(b))) > 0)
			CHECK_EQ(write(out, b, (size_t)k), k);
		close(in);
		close(out);
	}
	CHECK_OK(run_workload(path, dg, &n));
	CHECK_EQ(n, CRASH_TXNS);
	long points = 0;
	for (long at = 1;; at++) { /* every write and sync */
		int in = open(pristine, O_RDONLY), out = open(path, O_WRONLY | O_TRUNC);
		static uint8_t b[1 << 16];
		ssize_t k;
		while ((k = read(in, b, sizeof(b))) > 0)
			CHECK_EQ(write(out, b, (size_t)k), k);
		close(in);
		close(out);
		faultio_install(
			&(struct faultio_cfg){.crash_at = at, .seed = (uint64_t)at * 104729});
		int rc = run_workload(path, NULL, &n);
		bool crashed = faultio_crashed();
		faultio_uninstall();
		CHECK(rc == 0 || crashed);
		/* Reopened: clean, and the tree of the last commit acknowledged, or of the next. */
		CHECK_OK(cow_store_open(path, NULL, &st));
		CHECK_OK(cow__store_check(st));
		CHECK_OK(cow_txn_begin(st, COW_TXN_RDONLY, &t));
		CHECK_OK(cow_fs_open(t, "crash", &f));
		uint64_t got = digest(f);
		CHECK(got == dg[n] || (n < CRASH_TXNS && got == dg[n + 1]));
		cow_txn_abort(t);
		cow_store_close(st);
		points++;
		if (!crashed)
			break;
	}
	printf("power loss: %ld points in %d file-system transactions, each reopened clean with "
	       "the last acknowledged tree (or the one in flight)\n",
	       points, CRASH_TXNS);
	unlink(pristine);
}

int main(void)
{
	CHECK_OK(cow_store_open(check_path("fs.cow"),
				&(cow_store_options){.flags = COW_STORE_CREATE | COW_STORE_NOSYNC},
				&s));
	test_names();
	test_rename();
	test_xattr();
	test_model();
	test_share();
	test_errors();
	cow_store_close(s);
	test_power_loss();
	return 0;
}
