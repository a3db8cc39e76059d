/*
 * Volumes, snapshots, clones, rollback, destroy, promote, diff and space
 * figures, with the reference-count checker after every step, and counting
 * tests: a snapshot or clone writes O(1) blocks whatever the object's size;
 * destroy frees exactly the exclusive blocks; a diff reads O(k log n) nodes.
 */
#include <stdlib.h>

#include "base/base.h"
#include "check.h"
#include "store/store.h"

static cow_store *s;

static cow_txn *wbegin(void)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	return t;
}

static void commit(cow_txn *t)
{
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131 + seed * 7) ^ (i >> 9));
}

static void test_volume_basics(void)
{
	cow_txn *t = wbegin();
	CHECK_OK(cow_vol_create(t, "disk", 10 * 4096 + 100));
	CHECK_RC(cow_vol_create(t, "disk", 1), COW_EEXIST);
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, "disk", &v));
	CHECK_EQ(cow_vol_size(v), 10 * 4096 + 100);
	uint8_t buf[3 * 4096], ref[10 * 4096 + 100];
	memset(ref, 0, sizeof(ref));
	/* A write across three blocks, unaligned at both ends. */
	fill(buf, sizeof(buf), 1);
	CHECK_OK(cow_vol_pwrite(v, buf, 9000, 3000));
	memcpy(ref + 3000, buf, 9000);
	/* The last, short block. */
	CHECK_OK(cow_vol_pwrite(v, buf, 150, 10 * 4096 - 50));
	memcpy(ref + 10 * 4096 - 50, buf, 150);
	CHECK_RC(cow_vol_pwrite(v, buf, 10, 10 * 4096 + 95), COW_ERANGE);
	static uint8_t got[sizeof(ref)];
	CHECK_OK(cow_vol_pread(v, got, sizeof(got), 0));
	CHECK_MEMEQ(got, ref, sizeof(ref));
	commit(t);

	/* Punch: partial edges zeroed, whole blocks dropped; zeros take no space. */
	t = wbegin();
	CHECK_OK(cow_vol_open(t, "disk", &v));
	cow_obj_stats st;
	CHECK_OK(cow_obj_stat(t, "disk", 0, &st));
	uint64_t before = st.referenced;
	CHECK_OK(cow_vol_punch(v, 4000, 5000));
	memset(ref + 4000, 0, 5000);
	CHECK_OK(cow_vol_pread(v, got, sizeof(got), 0));
	CHECK_MEMEQ(got, ref, sizeof(ref));
	CHECK_OK(cow_obj_stat(t, "disk", 0, &st));
	CHECK_LT(st.referenced, before);
	static const uint8_t zeros[4096];
	CHECK_OK(cow_vol_pwrite(v, zeros, 4096, 0)); /* a zero block is a hole */
	memset(ref, 0, 4096);
	/* Shrink and grow: data past the end is gone, the regrown part is zeros. */
	CHECK_OK(cow_vol_resize(v, 5000));
	CHECK_OK(cow_vol_resize(v, 10 * 4096 + 100));
	memset(ref + 5000, 0, sizeof(ref) - 5000);
	CHECK_OK(cow_vol_pread(v, got, sizeof(got), 0));
	CHECK_MEMEQ(got, ref, sizeof(ref));
	commit(t);

	/* 16 TiB, sparse: writes at both ends. */
	t = wbegin();
	CHECK_OK(cow_vol_create(t, "huge", 16ull << 40));
	CHECK_OK(cow_vol_open(t, "huge", &v));
	CHECK_OK(cow_vol_pwrite(v, buf, 4096, (16ull << 40) - 4096));
	CHECK_OK(cow_vol_pwrite(v, buf, 4096, 0));
	CHECK_OK(cow_vol_pread(v, got, 4096, (16ull << 40) - 4096));
	CHECK_MEMEQ(got, buf, 4096);
	CHECK_OK(cow_vol_pread(v, got, 4096, 1ull << 40));
	CHECK_MEMEQ(got, zeros, 4096);
	commit(t);
}

/* Dirty blocks a transaction is about to write (white-box). */
static size_t dirty_blocks(void)
{
	return cow__bs_ndirty(s->bs);
}

static void make_volume(const char *name, uint64_t size, uint64_t nblocks)
{
	cow_txn *t = wbegin();
	CHECK_OK(cow_vol_create(t, name, size));
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, name, &v));
	uint8_t buf[4096];
	uint64_t stride = size / 4096 / nblocks;
	for (uint64_t i = 0; i < nblocks; i++) {
		fill(buf, sizeof(buf), i + 1);
		CHECK_OK(cow_vol_pwrite(v, buf, 4096, i * stride * 4096));
	}
	commit(t);
}

static int collect(void *ctx, const cow_diff_entry *e);

static void test_snapshot_cost(void)
{
	/* 1 MiB fully written vs 16 GiB with 20000 blocks spread over it. */
	make_volume("small", 1 << 20, 256);
	make_volume("big", 16ull << 30, 20000);
	size_t cost[2];
	const char *names[2] = {"small", "big"};
	for (int i = 0; i < 2; i++) {
		cow_txn *t = wbegin();
		char snap[64], clone[64];
		snprintf(snap, sizeof(snap), "%s@s1", names[i]);
		snprintf(clone, sizeof(clone), "%s-clone", names[i]);
		CHECK_OK(cow_snapshot(t, snap));
		CHECK_OK(cow_clone(t, snap, clone));
		/* Commit computes the new catalog and refs roots; count before that too. */
		cost[i] = dirty_blocks();
		commit(t);
	}
	printf("snapshot+clone dirty blocks: 1 MiB volume %zu, 16 GiB volume %zu\n", cost[0],
	       cost[1]);
	CHECK_LE(cost[0], 12);
	CHECK_LE(cost[1], 12);

	/* The clone and origin diverge; the snapshot keeps the old data. */
	cow_txn *t = wbegin();
	cow_vol *c, *o, *sn;
	CHECK_OK(cow_vol_open(t, "big-clone", &c));
	CHECK_OK(cow_vol_open(t, "big", &o));
	CHECK_OK(cow_vol_open(t, "big@s1", &sn));
	uint8_t a[4096], b[4096], got[4096];
	fill(a, 4096, 1000);
	fill(b, 4096, 2000);
	CHECK_OK(cow_vol_pwrite(c, a, 4096, 0));
	CHECK_OK(cow_vol_pwrite(o, b, 4096, 0));
	CHECK_RC(cow_vol_pwrite(sn, a, 4096, 0), COW_EREADONLY);
	CHECK_OK(cow_vol_pread(c, got, 4096, 0));
	CHECK_MEMEQ(got, a, 4096);
	CHECK_OK(cow_vol_pread(o, got, 4096, 0));
	CHECK_MEMEQ(got, b, 4096);
	fill(a, 4096, 1); /* block 0's original content */
	CHECK_OK(cow_vol_pread(sn, got, 4096, 0));
	CHECK_MEMEQ(got, a, 4096);
	commit(t);

	/* Diff of the origin against its snapshot reads O(k log n) nodes. */
	t = wbegin();
	CHECK_OK(cow_vol_open(t, "big", &o));
	uint64_t stride = (16ull << 30) / 4096 / 20000;
	for (int k = 1; k <= 5; k++)
		CHECK_OK(cow_vol_pwrite(o, b, 4096, (uint64_t)k * 3000 * stride * 4096));
	commit(t);
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	struct {
		int n;
		uint64_t off[16];
	} seen = {0};
	t->tx.nodes_read = 0;
	CHECK_OK(cow_diff(t, "big@s1", "big", collect, &seen));
	CHECK_EQ(seen.n, 6);
	CHECK_EQ(seen.off[0], 0);
	CHECK_EQ(seen.off[1], 3000 * stride * 4096);
	printf("diff of 6 changed blocks in a 20000-block volume read %llu nodes\n",
	       (unsigned long long)t->tx.nodes_read);
	/* Per change: a path in each tree to find it, one more in each to compare its blocks. */
	CHECK_LE(t->tx.nodes_read, 6 * 4 * 4 + 8);
	cow_txn_abort(t);
}

static int collect(void *ctx, const cow_diff_entry *e)
{
	struct {
		int n;
		uint64_t off[16];
	} *seen = ctx;
	CHECK_EQ(e->kind, COW_DIFF_CHANGED);
	CHECK_EQ(e->length, 4096);
	if (seen->n < 16)
		seen->off[seen->n] = e->offset;
	seen->n++;
	return 0;
}

static uint64_t used_blocks(void)
{
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	return st.used_bytes / 4096;
}

static void test_destroy_exclusive(void)
{
	/* A snapshot shares everything; after 300 overwrites the live volume owns them. */
	make_volume("ex", 8 << 20, 2000);
	cow_txn *t = wbegin();
	CHECK_OK(cow_snapshot(t, "ex@base"));
	commit(t);
	t = wbegin();
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, "ex", &v));
	uint8_t buf[4096];
	fill(buf, 4096, 77);
	for (int i = 0; i < 300; i++)
		CHECK_OK(cow_vol_pwrite(v, buf, 4096, (uint64_t)i * 4096));
	commit(t);

	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	cow_obj_stats live, snap;
	CHECK_OK(cow_obj_stat(t, "ex", COW_STAT_EXCLUSIVE, &live));
	CHECK_OK(cow_obj_stat(t, "ex@base", COW_STAT_EXCLUSIVE, &snap));
	cow_txn_abort(t);
	printf("ex: referenced %llu KiB, exclusive %llu KiB; ex@base exclusive %llu KiB\n",
	       (unsigned long long)live.referenced / 1024,
	       (unsigned long long)live.exclusive / 1024,
	       (unsigned long long)snap.exclusive / 1024);
	CHECK_GE(live.exclusive, 300 * 4096);	       /* the new data blocks at least */
	CHECK_LT(live.exclusive, live.referenced / 2); /* but most is still shared */
	/*
	 * The old versions of them, by whole extent: the volume was written
	 * in runs of 64 blocks, and the run of blocks 256..319 is still half
	 * the live volume's (its slice 300..319), so it stays shared.
	 */
	CHECK_GE(snap.exclusive, 256 * 4096);

	/* Destroying the snapshot frees its exclusive blocks, give or take metadata. */
	uint64_t u0 = used_blocks();
	t = wbegin();
	CHECK_OK(cow_destroy(t, "ex@base", 0));
	commit(t);
	uint64_t u1 = used_blocks();
	int64_t freed = (int64_t)u0 - (int64_t)u1;
	printf("destroy ex@base: exclusive %llu blocks, freed %lld\n",
	       (unsigned long long)snap.exclusive / 4096, (long long)freed);
	CHECK_LE(freed, (int64_t)(snap.exclusive / 4096) + 8);
	CHECK_GE(freed, (int64_t)(snap.exclusive / 4096) - 8);
	/*
	 * Now the live volume owns everything again, and the 44 blocks of the
	 * extent 256..319 that no slice reaches (a bookend) as well.
	 */
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_obj_stat(t, "ex", COW_STAT_EXCLUSIVE, &live));
	CHECK_GE(live.exclusive, live.referenced);
	CHECK_LE(live.exclusive, live.referenced + 64 * 4096);
	cow_txn_abort(t);
}

static void put(cow_map *m, const char *k, const char *v)
{
	CHECK_OK(cow_map_put(m, k, strlen(k), v, strlen(v)));
}

static void expect(cow_txn *t, const char *map, const char *k, const char *v)
{
	cow_map *m;
	CHECK_OK(cow_map_open(t, map, &m));
	cow_buf b;
	int rc = cow_map_get(m, k, strlen(k), &b);
	if (!v) {
		CHECK_RC(rc, COW_ENOTFOUND);
		return;
	}
	CHECK_OK(rc);
	CHECK_EQ(b.len, strlen(v));
	CHECK_MEMEQ(b.data, v, b.len);
}

static int count_diff(void *ctx, const cow_diff_entry *e)
{
	int *counts = ctx;
	counts[e->kind]++;
	return 0;
}

static void test_map_versions(void)
{
	cow_txn *t = wbegin();
	CHECK_OK(cow_map_create(t, "cfg"));
	cow_map *m;
	CHECK_OK(cow_map_open(t, "cfg", &m));
	char k[32], v[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof(k), "key%05d", i);
		snprintf(v, sizeof(v), "v1-%d", i);
		put(m, k, v);
	}
	/* A snapshot in the same transaction as the writes sees them. */
	CHECK_OK(cow_snapshot(t, "cfg@v1"));
	put(m, "key00001", "v2");
	CHECK_OK(cow_map_del(m, "key00002", 8));
	put(m, "new", "x");
	expect(t, "cfg@v1", "key00001", "v1-1");
	expect(t, "cfg@v1", "key00002", "v1-2");
	commit(t);

	t = wbegin();
	expect(t, "cfg", "key00001", "v2");
	expect(t, "cfg@v1", "key00001", "v1-1");
	expect(t, "cfg@v1", "new", NULL);
	int counts[4] = {0};
	CHECK_OK(cow_diff(t, "cfg@v1", "cfg", count_diff, counts));
	CHECK_EQ(counts[COW_DIFF_ADDED], 1);
	CHECK_EQ(counts[COW_DIFF_REMOVED], 1);
	CHECK_EQ(counts[COW_DIFF_CHANGED], 1);
	memset(counts, 0, sizeof(counts));
	CHECK_OK(cow_diff(t, "cfg", "cfg", count_diff, counts));
	CHECK_EQ(counts[1] + counts[2] + counts[3], 0);

	/* Clone, and the rules of dependents. */
	CHECK_OK(cow_clone(t, "cfg@v1", "cfg2"));
	CHECK_RC(cow_clone(t, "cfg", "x"), COW_EINVAL);
	CHECK_RC(cow_clone(t, "cfg@nope", "x"), COW_ENOTFOUND);
	cow_map *c;
	CHECK_OK(cow_map_open(t, "cfg2", &c));
	put(c, "key00001", "clone");
	expect(t, "cfg2", "key00001", "clone");
	expect(t, "cfg@v1", "key00001", "v1-1");
	CHECK_RC(cow_destroy(t, "cfg@v1", 0), COW_EBUSY);
	CHECK_RC(cow_destroy(t, "cfg", 0), COW_EBUSY); /* it has snapshots */
	cow_obj_stats st;
	CHECK_OK(cow_obj_stat(t, "cfg2", 0, &st));
	CHECK_STREQ(st.origin, "cfg@v1");
	commit(t);

	/* Rollback keeps other snapshots; store-wide snapshot covers every object. */
	t = wbegin();
	CHECK_OK(cow_snapshot(t, "cfg@v2"));
	CHECK_OK(cow_rollback(t, "cfg@v1"));
	expect(t, "cfg", "key00001", "v1-1");
	expect(t, "cfg", "new", NULL);
	expect(t, "cfg@v2", "new", "x");
	CHECK_OK(cow_snapshot(t, "@all"));
	expect(t, "cfg2@all", "key00001", "clone");
	expect(t, "cfg@all", "key00001", "v1-1");
	commit(t);

	/* Promote: the clone takes cfg@v1 (and older), cfg becomes its clone. */
	t = wbegin();
	CHECK_OK(cow_promote(t, "cfg2"));
	CHECK_OK(cow_obj_stat(t, "cfg2", 0, &st));
	CHECK_STREQ(st.origin, "");
	CHECK_OK(cow_obj_stat(t, "cfg", 0, &st));
	CHECK_STREQ(st.origin, "cfg2@v1");
	expect(t, "cfg2@v1", "key00001", "v1-1");
	CHECK_RC(cow_obj_stat(t, "cfg@v1", 0, &st), COW_ENOTFOUND);
	commit(t);

	/* Now the old origin can go, with its remaining snapshots. */
	t = wbegin();
	CHECK_OK(cow_destroy(t, "cfg", COW_DESTROY_RECURSIVE));
	expect(t, "cfg2", "key00001", "clone");
	expect(t, "cfg2@v1", "key00005", "v1-5");
	commit(t);
	t = wbegin();
	CHECK_OK(cow_destroy(t, "cfg2", COW_DESTROY_RECURSIVE));
	commit(t);
}

int main(void)
{
	CHECK_OK(cow_store_open(check_path("v.cow"), &(cow_store_options){COW_STORE_CREATE}, &s));
	test_volume_basics();
	test_snapshot_cost();
	test_destroy_exclusive();
	test_map_versions();
	cow_store_close(s);
	return 0;
}
