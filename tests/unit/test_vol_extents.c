/*
 * cow_vol_extents: the written runs of a volume, as the NBD plugin's block
 * status reports them. Runs merge adjacent blocks, are clipped to the range
 * asked for and to the volume's end, see a write transaction's own changes,
 * and follow punches, all-zero writes (holes) and shrinking.
 */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "cow/store.h"

#define B 4096ull

struct runs {
	int n;
	uint64_t off[64], len[64];
	int stop_after; /* return 7 after this many runs, 0: never */
};

static int collect(void *ctx, uint64_t off, uint64_t len)
{
	struct runs *r = ctx;
	CHECK_LT(r->n, 64);
	CHECK_GT(len, 0);
	if (r->n > 0)
		CHECK_GT(off, r->off[r->n - 1] + r->len[r->n - 1]); /* disjoint, ordered, merged */
	r->off[r->n] = off;
	r->len[r->n] = len;
	r->n++;
	return r->stop_after && r->n == r->stop_after ? 7 : 0;
}

static struct runs map(cow_vol *v, uint64_t off, uint64_t len)
{
	struct runs r = {0};
	CHECK_OK(cow_vol_extents(v, off, len, collect, &r));
	return r;
}

int main(void)
{
	char path[] = "/tmp/cow-extents-XXXXXX";
	int fd = mkstemp(path);
	CHECK_GE(fd, 0);
	close(fd);
	unlink(path);

	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_CREATE}, &s));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_create(t, "d", 64 * B + 100)); /* a short last block */
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, "d", &v));

	struct runs r = map(v, 0, cow_vol_size(v));
	CHECK_EQ(r.n, 0); /* all holes */

	static uint8_t buf[8 * B];
	memset(buf, 0xab, sizeof(buf));
	CHECK_OK(cow_vol_pwrite(v, buf, 3 * B, 2 * B));	 /* blocks 2..4 */
	CHECK_OK(cow_vol_pwrite(v, buf, 10, 5 * B + 7)); /* block 5: merges with 2..4 */
	CHECK_OK(cow_vol_pwrite(v, buf, B, 9 * B));	 /* block 9 alone */
	CHECK_OK(cow_vol_pwrite(v, buf, 50, 64 * B));	 /* the short last block */

	/* The write transaction sees its own changes. */
	r = map(v, 0, cow_vol_size(v));
	CHECK_EQ(r.n, 3);
	CHECK_EQ(r.off[0], 2 * B);
	CHECK_EQ(r.len[0], 4 * B);
	CHECK_EQ(r.off[1], 9 * B);
	CHECK_EQ(r.len[1], B);
	CHECK_EQ(r.off[2], 64 * B);
	CHECK_EQ(r.len[2], 100); /* clipped to the volume's end */
	CHECK_OK(cow_txn_commit(t));

	/* A read transaction; ranges that start and end inside blocks are clipped. */
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_vol_open(t, "d", &v));
	r = map(v, 3 * B + 1, 7 * B - 2); /* ends one byte inside block 9 */
	CHECK_EQ(r.n, 2);
	CHECK_EQ(r.off[0], 3 * B + 1);
	CHECK_EQ(r.len[0], 3 * B - 1);
	CHECK_EQ(r.off[1], 9 * B);
	CHECK_EQ(r.len[1], B - 1);
	r = map(v, 6 * B, 3 * B); /* only holes */
	CHECK_EQ(r.n, 0);
	r = map(v, 0, 0);
	CHECK_EQ(r.n, 0);
	struct runs stop = {.stop_after = 1};
	CHECK_RC(cow_vol_extents(v, 0, cow_vol_size(v), collect, &stop), 7);
	CHECK_EQ(stop.n, 1);
	CHECK_RC(cow_vol_extents(v, 0, cow_vol_size(v) + 1, collect, &stop), COW_ERANGE);
	CHECK_RC(cow_vol_extents(NULL, 0, 1, collect, &stop), COW_EINVAL);
	cow_txn_abort(t);

	/* Punches, zero writes and shrinking make holes. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_open(t, "d", &v));
	CHECK_OK(cow_snapshot(t, "d@before"));
	CHECK_OK(cow_vol_punch(v, 3 * B, B));
	memset(buf, 0, B);
	CHECK_OK(cow_vol_pwrite(v, buf, B, 9 * B));
	CHECK_OK(cow_vol_resize(v, 5 * B));
	r = map(v, 0, cow_vol_size(v));
	CHECK_EQ(r.n, 2);
	CHECK_EQ(r.off[0], 2 * B);
	CHECK_EQ(r.len[0], B);
	CHECK_EQ(r.off[1], 4 * B);
	CHECK_EQ(r.len[1], B);
	CHECK_OK(cow_txn_commit(t));

	/* The snapshot keeps its own map. */
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_vol_open(t, "d@before", &v));
	r = map(v, 0, cow_vol_size(v));
	CHECK_EQ(r.n, 3);
	CHECK_EQ(r.len[0], 4 * B);
	cow_txn_abort(t);

	cow_store_close(s);
	unlink(path);
	printf("vol extents: ok\n");
	return 0;
}
