/*
 * File data as runs (FORMAT.md section 10): a long write makes one entry per
 * 64 blocks; a reflink adds one slice per source run, whatever the size;
 * a write into a reflinked file splits only the run it touches; files of
 * one-block extents (the layout before runs) read, change and share like
 * any other; SEEK_DATA/SEEK_HOLE follow runs; full and incremental
 * send/recv reproduce every file, the receiver writing runs again; fs diff
 * names the changed files only. The store's checker (reference counts
 * recounted) is clean after each part.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "check.h"
#include "cow/fs.h"
#include "memstream.h"
#include "runs.h"
#include "store/store.h"

#define B    4096u
#define NBLK 256u

static cow_store *s;
static uint8_t data[NBLK * B];

static cow_fs *open_fs(cow_store *st, cow_txn **t, unsigned flags, const char *name)
{
	CHECK_OK(cow_txn_begin(st, flags, t));
	cow_fs *f;
	CHECK_OK(cow_fs_open(*t, name, &f));
	return f;
}

static uint64_t mk(cow_fs *f, const char *name)
{
	cow_fs_attr a;
	CHECK_OK(cow_fs_mknod(f, COW_FS_ROOT, name, strlen(name),
			      &(cow_fs_attr){.mode = S_IFREG | 0644}, &a));
	return a.ino;
}

static uint64_t look(cow_fs *f, const char *name)
{
	cow_fs_attr a;
	CHECK_OK(cow_fs_lookup(f, COW_FS_ROOT, name, strlen(name), &a));
	return a.ino;
}

static cow_fs_attr attr(cow_fs *f, uint64_t ino)
{
	cow_fs_attr a;
	CHECK_OK(cow_fs_getattr(f, ino, &a));
	return a;
}

/* Entries of @ino's block map. */
static uint64_t cells(cow_fs *f, uint64_t ino)
{
	cow_map *m = (cow_map *)(void *)f; /* a cow_fs starts with its cow_map */
	struct cow__bmap bm;
	cow__fs_bmap(&bm, &m->txn->tx, &m->tree, ino);
	return bmap_entries(&bm);
}

/* File @ino holds exactly @want (@len bytes). */
static void holds(cow_fs *f, uint64_t ino, const uint8_t *want, size_t len)
{
	static uint8_t got[NBLK * B + B];
	size_t n;
	CHECK_EQ(attr(f, ino).size, len);
	CHECK_OK(cow_fs_read(f, ino, got, sizeof(got), 0, &n));
	CHECK_EQ(n, len);
	CHECK_MEMEQ(got, want, len);
}

/* Every file named in @names is the same in both trees, bytes and block counts. */
static void same(cow_fs *a, cow_fs *b, const char *const *names)
{
	static uint8_t x[NBLK * B + B];
	for (; *names; names++) {
		uint64_t ia = look(a, *names), ib = look(b, *names);
		cow_fs_attr aa = attr(a, ia), ab = attr(b, ib);
		CHECK_EQ(aa.size, ab.size);
		CHECK_EQ(aa.blocks, ab.blocks);
		size_t n;
		CHECK_OK(cow_fs_read(a, ia, x, sizeof(x), 0, &n));
		holds(b, ib, x, n);
	}
}

static struct mem send(const char *snap, const char *base)
{
	struct mem m;
	CHECK_OK(mem_send(s, snap, base, &m));
	return m;
}

static void recv(cow_store *st, struct mem *m)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(st, 0, &t));
	CHECK_OK(cow_recv(t, "home", mem_read, m, NULL, 0));
	CHECK_OK(cow_txn_commit(t));
	free(m->p);
}

static uint64_t used(void)
{
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	return st.used_bytes;
}

/* A write, a reflink, a write into the reflink, a punch: entries and sharing. */
static void test_share(void)
{
	cow_txn *t;
	cow_fs *f = open_fs(s, &t, 0, "home");
	uint64_t big = mk(f, "big");
	CHECK_OK(cow_fs_write(f, big, data, sizeof(data), 0));
	CHECK_EQ(cells(f, big), NBLK / 64);
	CHECK_EQ(attr(f, big).blocks, NBLK);
	/*
	 * Appends of 8 KiB grow the run they follow when their blocks land
	 * right after it: 64 blocks a run, but for a node allocated between.
	 */
	uint64_t app = mk(f, "append");
	for (size_t off = 0; off < sizeof(data); off += 2 * B)
		CHECK_OK(cow_fs_write(f, app, data + off, 2 * B, off));
	uint64_t napp = cells(f, app);
	CHECK_LE(napp, NBLK / 64 + 2);
	holds(f, app, data, sizeof(data));
	CHECK_OK(cow_txn_commit(t));
	/* After a commit the last run is not this transaction's: a new one starts. */
	f = open_fs(s, &t, 0, "home");
	CHECK_OK(cow_fs_write(f, app, data, 2 * B, sizeof(data)));
	CHECK_EQ(cells(f, app), napp + 1);
	CHECK_OK(cow_fs_setattr(f, app, &(cow_fs_attr){.size = sizeof(data)}, COW_FS_SET_SIZE,
				NULL));
	CHECK_OK(cow_txn_commit(t));

	uint64_t u0 = used();
	f = open_fs(s, &t, 0, "home");
	uint64_t copy = mk(f, "copy"), done;
	CHECK_OK(cow_fs_clone_range(f, big, 0, copy, 0, sizeof(data), &done));
	CHECK_EQ(done, sizeof(data));
	CHECK_EQ(cells(f, copy), NBLK / 64); /* one slice per run: O(extents) */
	CHECK_EQ(attr(f, copy).blocks, NBLK);
	CHECK_OK(cow_txn_commit(t));
	CHECK_LT(used(), u0 + 64 * 1024);

	/* One block written into the copy: its run becomes two slices and the new block. */
	static uint8_t want[NBLK * B];
	memcpy(want, data, sizeof(want));
	f = open_fs(s, &t, 0, "home");
	memset(want + 100 * B + 7, 'X', 10);
	CHECK_OK(cow_fs_write(f, copy, "XXXXXXXXXX", 10, 100 * B + 7));
	CHECK_EQ(cells(f, copy), NBLK / 64 + 2);
	CHECK_EQ(cells(f, big), NBLK / 64);
	/* A punch of blocks 10..19 cuts the first run in two. */
	memset(want + 10 * B, 0, 10 * B);
	CHECK_OK(cow_fs_punch(f, copy, 10 * B, 10 * B));
	CHECK_EQ(cells(f, copy), NBLK / 64 + 3);
	CHECK_EQ(attr(f, copy).blocks, NBLK - 10);
	/* A reflink at another offset: blocks 30..129 to 5..104, three slices. */
	uint64_t part = mk(f, "part");
	CHECK_OK(cow_fs_clone_range(f, big, 30 * B, part, 5 * B, 100 * B, &done));
	CHECK_EQ(done, 100 * B);
	CHECK_EQ(cells(f, part), 3);
	CHECK_EQ(attr(f, part).blocks, 100);
	CHECK_OK(cow_txn_commit(t));

	static uint8_t pw[105 * B];
	memset(pw, 0, 5 * B);
	memcpy(pw + 5 * B, data + 30 * B, 100 * B);
	f = open_fs(s, &t, COW_TXN_RDONLY, "home");
	holds(f, big, data, sizeof(data));
	holds(f, copy, want, sizeof(want));
	holds(f, part, pw, sizeof(pw));
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
}

/* Runs and holes seen through SEEK_DATA and SEEK_HOLE. */
static void test_seek(void)
{
	cow_txn *t;
	cow_fs *f = open_fs(s, &t, 0, "home");
	uint64_t h = mk(f, "holes");
	CHECK_OK(cow_fs_write(f, h, data, 10 * B, 0));
	CHECK_OK(cow_fs_write(f, h, data, 80 * B, 20 * B)); /* two runs: 20..83, 84..99 */
	CHECK_EQ(cells(f, h), 3);
	uint64_t at;
	CHECK_OK(cow_fs_seek(f, h, 5, 0, &at));
	CHECK_EQ(at, 5);
	CHECK_OK(cow_fs_seek(f, h, 5, 1, &at));
	CHECK_EQ(at, 10 * B);
	CHECK_OK(cow_fs_seek(f, h, 10 * B + 1, 0, &at));
	CHECK_EQ(at, 20 * B);
	CHECK_OK(cow_fs_seek(f, h, 20 * B, 1, &at)); /* across the boundary of two runs */
	CHECK_EQ(at, 100 * B);
	CHECK_OK(cow_fs_setattr(f, h, &(cow_fs_attr){.size = 200 * B}, COW_FS_SET_SIZE, NULL));
	CHECK_RC(cow_fs_seek(f, h, 100 * B, 0, &at), -ENXIO);
	CHECK_OK(cow_fs_seek(f, h, 150 * B, 1, &at));
	CHECK_EQ(at, 150 * B);
	/* A truncate into a run keeps its head, zeroes the tail of the last block. */
	CHECK_OK(cow_fs_setattr(f, h, &(cow_fs_attr){.size = 30 * B + 100}, COW_FS_SET_SIZE, NULL));
	CHECK_EQ(attr(f, h).blocks, 10 + 11);
	CHECK_OK(cow_fs_setattr(f, h, &(cow_fs_attr){.size = 31 * B}, COW_FS_SET_SIZE, NULL));
	static uint8_t want[31 * B];
	memset(want, 0, sizeof(want));
	memcpy(want, data, 10 * B);
	memcpy(want + 20 * B, data, 10 * B + 100);
	holds(f, h, want, sizeof(want));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));
}

/*
 * The layout before runs: one 4096-byte value extent per block. Such a
 * file reads, is written over, is reflinked and punched like any other.
 */
static void test_old_layout(void)
{
	cow_txn *t;
	cow_fs *f = open_fs(s, &t, 0, "home");
	cow_map *m = (cow_map *)(void *)f;
	uint64_t old = mk(f, "old");
	CHECK_OK(cow_fs_write(f, old, data, 8 * B, 0));
	uint8_t k[17];
	cow__put_be64(k, old);
	k[8] = COW__FS_T_DATA;
	cow__put_be64(k + 9, 0);
	CHECK_OK(cow__btree_del(&t->tx, &m->tree, k, 17));
	for (uint64_t i = 0; i < 8; i++) {
		cow__put_be64(k + 9, i);
		CHECK_OK(cow__btree_put(&t->tx, &m->tree, k, 17, data + i * B, B));
	}
	CHECK_EQ(cells(f, old), 8);
	CHECK_OK(cow_txn_commit(t));

	static uint8_t want[8 * B], w2[8 * B];
	memcpy(want, data, sizeof(want));
	f = open_fs(s, &t, 0, "home");
	holds(f, old, want, sizeof(want));
	memset(want + 3 * B + 100, 'o', 100);
	memset(w2, 'o', 100);
	CHECK_OK(cow_fs_write(f, old, w2, 100, 3 * B + 100));
	uint64_t o2 = mk(f, "old2"), done;
	CHECK_OK(cow_fs_clone_range(f, old, 0, o2, 0, 8 * B, &done));
	memcpy(w2, want, sizeof(w2));
	CHECK_OK(cow_fs_write(f, old, "new", 3, 5 * B));
	memcpy(want + 5 * B, "new", 3);
	CHECK_OK(cow_fs_punch(f, o2, 6 * B, B));
	memset(w2 + 6 * B, 0, B);
	CHECK_EQ(attr(f, o2).blocks, 7);
	CHECK_OK(cow_txn_commit(t));
	f = open_fs(s, &t, COW_TXN_RDONLY, "home");
	holds(f, old, want, sizeof(want));
	holds(f, o2, w2, sizeof(w2));
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
}

struct paths {
	char seen[16][16];
	char kind[16];
	int n;
};

static int on_path(void *ctx, char kind, const char *path, size_t len)
{
	struct paths *p = ctx;
	CHECK_LT(p->n, 16);
	CHECK_LT(len, 16);
	memcpy(p->seen[p->n], path, len);
	p->seen[p->n][len] = 0;
	p->kind[p->n++] = kind;
	return 0;
}

static char kind_of(const struct paths *p, const char *path)
{
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->seen[i], path) == 0)
			return p->kind[i];
	return 0;
}

/* The offset of the first file-data PUT in stream @m: op, u32 17, u32 4096, key (ino, 2, block). */
static size_t first_data_put(const struct mem *m)
{
	for (size_t i = 64; i + 26 < m->n; i++)
		if (m->p[i] == 1 && cow__le32(m->p + i + 1) == 17 && cow__le32(m->p + i + 5) == B &&
		    m->p[i + 9 + 8] == COW__FS_T_DATA)
			return i;
	CHECK(0);
	return 0;
}

/* A file block of the wrong size, or past the largest file, is refused: nothing lands. */
static void bad_streams(cow_store *r, const struct mem *full)
{
	for (int k = 0; k < 2; k++) {
		struct mem m = {malloc(full->n), full->n, full->n, 0, 0};
		CHECK(m.p != NULL);
		memcpy(m.p, full->p, full->n);
		size_t at = first_data_put(&m);
		if (k == 0)
			cow__put32(m.p + at + 5, 100); /* 100 bytes for a block */
		else
			cow__put_be64(m.p + at + 9 + 9,
				      1ull << 40); /* block 2^40: past 2^52 bytes */
		cow_txn *t;
		CHECK_OK(cow_txn_begin(r, 0, &t));
		CHECK_RC(cow_recv(t, "bad", mem_read, &m, NULL, 0), COW_ESTREAM);
		cow_txn_abort(t);
		free(m.p);
		CHECK_OK(cow_txn_begin(r, COW_TXN_RDONLY, &t));
		cow_fs *f;
		CHECK_RC(cow_fs_open(t, "bad", &f), COW_ENOTFOUND);
		cow_txn_abort(t);
	}
}

/* Full and incremental streams of an fs with runs, slices and holes; fs diff. */
static void test_stream(void)
{
	static const char *const names[] = {"big", "copy", "part", "holes", "old", "old2", NULL};
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_snapshot(t, "home@a"));
	CHECK_OK(cow_txn_commit(t));
	cow_store *r;
	CHECK_OK(cow_store_open(check_path("runs-recv.cow"), &(cow_store_options){COW_STORE_CREATE},
				&r));
	struct mem full = send("home@a", NULL);
	bad_streams(r, &full);
	recv(r, &full);
	cow_txn *ta, *tb;
	cow_fs *fa = open_fs(s, &ta, COW_TXN_RDONLY, "home@a");
	cow_fs *fb = open_fs(r, &tb, COW_TXN_RDONLY, "home@a");
	same(fa, fb, names);
	CHECK_EQ(cells(fb, look(fb, "big")), NBLK / 64); /* the receiver writes runs again */
	cow_txn_abort(ta);
	cow_txn_abort(tb);

	/* Change two files and add one; "part", "holes" and the rest stay. */
	cow_fs *f = open_fs(s, &t, 0, "home");
	CHECK_OK(cow_fs_write(f, look(f, "big"), "B", 1, 77 * B));
	CHECK_OK(cow_fs_punch(f, look(f, "copy"), 40 * B, 30 * B));
	CHECK_OK(cow_fs_setattr(f, look(f, "old"), &(cow_fs_attr){.size = 2 * B + 1},
				COW_FS_SET_SIZE, NULL));
	uint64_t n = mk(f, "new");
	CHECK_OK(cow_fs_write(f, n, data, 3 * B, 0));
	CHECK_OK(cow_snapshot(t, "home@b"));
	CHECK_OK(cow_txn_commit(t));

	struct paths p = {0};
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_fs_diff(t, "home@a", "home@b", on_path, &p));
	cow_txn_abort(t);
	CHECK_EQ(kind_of(&p, "big"), 'M');
	CHECK_EQ(kind_of(&p, "copy"), 'M');
	CHECK_EQ(kind_of(&p, "old"), 'M');
	CHECK_EQ(kind_of(&p, "new"), '+');
	CHECK_EQ(kind_of(&p, "part"), 0);
	CHECK_EQ(kind_of(&p, "holes"), 0);

	struct mem inc = send("home@b", "home@a");
	/* The blocks changed (1 + 3) and the punched ones as deletions, not whole files. */
	CHECK_LT(inc.n, 8 * B + 30 * 64 + 4096);
	printf("stream: full %zu KiB, incremental %zu bytes\n", full.n >> 10, inc.n);
	recv(r, &inc);
	static const char *const names2[] = {"big", "copy", "part", "holes",
					     "old", "old2", "new",  NULL};
	fa = open_fs(s, &ta, COW_TXN_RDONLY, "home@b");
	fb = open_fs(r, &tb, COW_TXN_RDONLY, "home@b");
	same(fa, fb, names2);
	cow_txn_abort(ta);
	cow_txn_abort(tb);
	CHECK_OK(cow__store_check(r));
	cow_store_close(r);
	CHECK_OK(cow__store_check(s));
}

int main(void)
{
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + i / B + 1);
	CHECK_OK(
		cow_store_open(check_path("runs.cow"), &(cow_store_options){COW_STORE_CREATE}, &s));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_fs_create(t, "home", NULL));
	CHECK_OK(cow_txn_commit(t));
	test_share();
	test_seek();
	test_old_layout();
	test_stream();
	cow_store_close(s);
	printf("ok\n");
	return 0;
}
