/*
 * Volume block maps as runs (FORMAT.md sections 4-5): a long write makes one
 * entry per 64 blocks; a cut of an unshared run frees what it cuts at once;
 * a cut of a shared run keeps the extent whole (slices) until the last
 * pointer goes; diff reports only the blocks whose mapping changed.
 */
#include "check.h"
#include "runs.h"
#include "store/store.h"

#define B 4096ull

static uint64_t entries(cow_txn *t, const char *name)
{
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, name, &v));
	struct cow__bmap m;
	cow__vol_bmap(v, &m);
	return bmap_entries(&m);
}

static uint64_t used(cow_store *s)
{
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	return st.used_bytes;
}

static int on_diff(void *ctx, const cow_diff_entry *e)
{
	uint64_t *r = ctx;
	r[0]++;
	r[1] = e->offset;
	r[2] = e->length;
	return 0;
}

int main(void)
{
	static uint8_t buf[256 * B];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + i / 4096 + 1);
	cow_store *s;
	CHECK_OK(
		cow_store_open(check_path("runs.cow"), &(cow_store_options){COW_STORE_CREATE}, &s));
	cow_txn *t;
	cow_vol *v;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_create(t, "v", sizeof(buf)));
	CHECK_OK(cow_vol_open(t, "v", &v));
	CHECK_OK(cow_vol_pwrite(v, buf, sizeof(buf), 0));
	CHECK_EQ(entries(t, "v"), 4); /* 256 blocks in runs of 64 */
	CHECK_OK(cow_txn_commit(t));

	/* Unshared: punching 8 blocks out of a run frees them (a commit later). */
	uint64_t u0 = used(s);
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_open(t, "v", &v));
	CHECK_OK(cow_vol_punch(v, 10 * B, 8 * B));
	CHECK_EQ(entries(t, "v"), 5);
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_txn_commit(t));
	CHECK_LE(used(s) + 8 * B, u0 + 4 * B); /* the tree's own nodes may move */

	/* Shared: the clone's cut keeps the extent; diff names just the block. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_snapshot(t, "v@a"));
	CHECK_OK(cow_clone(t, "v@a", "c"));
	CHECK_OK(cow_vol_open(t, "c", &v));
	CHECK_OK(cow_vol_pwrite(v, buf, B, 100 * B));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	uint64_t d[3] = {0};
	CHECK_OK(cow_diff(t, "v@a", "c", on_diff, d));
	CHECK_EQ(d[0], 1);
	CHECK_EQ(d[1], 100 * B);
	CHECK_EQ(d[2], B);
	CHECK_EQ(entries(t, "c"), 7); /* the run of 100 cut in two around a new one */
	uint8_t got[B];
	CHECK_OK(cow_vol_open(t, "c", &v));
	CHECK_OK(cow_vol_pread(v, got, B, 99 * B));
	CHECK_MEMEQ(got, buf + 99 * B, B);
	CHECK_OK(cow_vol_pread(v, got, B, 100 * B));
	CHECK_MEMEQ(got, buf, B);
	CHECK_OK(cow_vol_pread(v, got, B, 101 * B));
	CHECK_MEMEQ(got, buf + 101 * B, B);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));

	/*
	 * A run grows over the blocks written right after it in the same
	 * transaction, but not once a snapshot taken meanwhile holds it.
	 */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_create(t, "g", 16 * B));
	CHECK_OK(cow_vol_open(t, "g", &v));
	/* The first write's leaf lands after its blocks: the second starts a run, the third grows
	 * it. */
	for (uint64_t i = 0; i < 3; i++)
		CHECK_OK(cow_vol_pwrite(v, buf + 2 * i * B, 2 * B, 2 * i * B));
	uint64_t n0 = entries(t, "g");
	CHECK_LE(n0, 2);
	CHECK_OK(cow_snapshot(t, "g@s"));
	CHECK_OK(cow_vol_open(t, "g", &v));
	CHECK_OK(cow_vol_pwrite(v, buf + 6 * B, 2 * B, 6 * B));
	CHECK_EQ(entries(t, "g"), n0 + 1);
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	static uint8_t g[8 * B], want[8 * B];
	CHECK_OK(cow_vol_open(t, "g@s", &v));
	CHECK_OK(cow_vol_pread(v, g, sizeof(g), 0));
	memcpy(want, buf, 6 * B);
	CHECK_MEMEQ(g, want, sizeof(g)); /* the snapshot: 6 blocks, then zeros */
	CHECK_OK(cow_vol_open(t, "g", &v));
	CHECK_OK(cow_vol_pread(v, g, sizeof(g), 0));
	CHECK_MEMEQ(g, buf, sizeof(g));
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));

	/* Everything gone: the checker finds no block left over. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_destroy(t, "c", 0));
	CHECK_OK(cow_destroy(t, "v", COW_DESTROY_RECURSIVE));
	CHECK_OK(cow_destroy(t, "g", COW_DESTROY_RECURSIVE));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
	printf("runs: 4 entries for 1 MiB; cuts free when unshared, slice when shared\n");
	return 0;
}
