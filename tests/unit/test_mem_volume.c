/*
 * Checkpoints into store volumes: each checkpoint is a snapshot that shares
 * every unchanged block with the previous one; each restores on its own,
 * also after older ones are destroyed; an incremental checkpoint writes only
 * the pages written since the last one.
 */
#include <stdlib.h>

#include "check.h"
#include "cow/mem.h"
#include "cow/store.h"

#define PAGES 2048 /* 8 MiB */

static void pattern(uint8_t *p, size_t page, int round)
{
	for (size_t i = 0; i < 4096; i += 8)
		memcpy(p + i, &(uint64_t){page * 1000003u + (uint64_t)round * 7 + i}, 8);
}

static void expect_version(cow_store *s, const char *snap, const uint8_t *ref)
{
	cow_txn *t;
	cow_vol *v;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_vol_open(t, snap, &v));
	CHECK_EQ(cow_vol_size(v), PAGES * 4096);
	uint8_t *buf = malloc(PAGES * 4096);
	CHECK_OK(cow_vol_pread(v, buf, PAGES * 4096, 0));
	CHECK(memcmp(buf, ref, PAGES * 4096) == 0);
	free(buf);
	cow_txn_abort(t);
}

int main(void)
{
	cow_store *s;
	CHECK_OK(cow_store_open(check_path("m.cow"), &(cow_store_options){COW_STORE_CREATE}, &s));
	cow_mem_region *r;
	CHECK_OK(cow_mem_region_alloc(PAGES * 4096, 0, &r));
	uint8_t *mem = cow_mem_region_addr(r);
	for (size_t p = 0; p < PAGES; p += 2) /* odd pages stay zero: holes */
		pattern(mem + p * 4096, p, 0);
	int rc = cow_mem_track_start(r, COW_MEM_AUTO);
	if (rc == COW_EOPNOTSUPP || rc == COW_EPERM)
		SKIP("write tracking is not available here: %s", cow_strerror(rc));
	CHECK_OK(rc);
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_volume(s, "ram", &sink));
	cow_mem_ckpt_stats st;
	CHECK_OK(cow_mem_checkpoint(r, sink, &st));
	CHECK(st.full);
	CHECK_STREQ(cow_mem_sink_volume_last(sink), "ram@ckpt1");
	uint8_t *ref1 = malloc(PAGES * 4096);
	memcpy(ref1, mem, PAGES * 4096);

	/* 1% of the pages change: the next checkpoint carries only those. */
	for (size_t p = 0; p < PAGES; p += 100)
		pattern(mem + p * 4096, p, 1);
	CHECK_OK(cow_mem_checkpoint(r, sink, &st));
	CHECK(!st.full);
	CHECK_EQ(st.pages, (PAGES + 99) / 100);
	CHECK_STREQ(cow_mem_sink_volume_last(sink), "ram@ckpt2");
	cow_mem_track_stop(r);
	expect_version(s, "ram@ckpt1", ref1);
	expect_version(s, "ram@ckpt2", mem);

	/* ckpt2 shares everything but the changed pages with ckpt1. */
	cow_txn *t;
	cow_obj_stats o1, o2;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_obj_stat(t, "ram@ckpt1", COW_STAT_EXCLUSIVE, &o1));
	CHECK_OK(cow_obj_stat(t, "ram@ckpt2", COW_STAT_EXCLUSIVE, &o2));
	cow_txn_abort(t);
	printf("ckpt1 referenced %llu KiB, exclusive %llu KiB; ckpt2 referenced %llu KiB\n",
	       (unsigned long long)o1.referenced / 1024, (unsigned long long)o1.exclusive / 1024,
	       (unsigned long long)o2.referenced / 1024);
	CHECK_LE(o1.referenced, (PAGES / 2 + 64) * 4096ull); /* zero pages are holes */
	/* Only the old versions of the changed pages (and a few tree nodes) are ckpt1's own. */
	CHECK_GE(o1.exclusive, ((PAGES + 99) / 100) * 4096ull);
	CHECK_LE(o1.exclusive, ((PAGES + 99) / 100 + 40) * 4096ull);

	/* Destroy the older one: the newer still restores, lazily, in a fresh region. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_destroy(t, "ram@ckpt1", 0));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_store_fsck(s, 0, NULL, NULL, NULL, NULL, NULL));
	cow_mem_region *r2;
	CHECK_OK(cow_mem_region_alloc(PAGES * 4096, 0, &r2));
	cow_mem_restore *h;
	CHECK_OK(cow_mem_restore_volume(r2, s, "ram@ckpt2", COW_MEM_AUTO, &h));
	CHECK(memcmp(cow_mem_region_addr(r2), mem, PAGES * 4096) == 0);
	cow_mem_restore_stats rs;
	CHECK_OK(cow_mem_restore_wait(h, &rs));
	CHECK(memcmp(cow_mem_region_addr(r2), mem, PAGES * 4096) == 0);
	CHECK_RC(cow_mem_restore_volume(r2, s, "ram@nope", COW_MEM_EAGER, &h), COW_ENOTFOUND);

	cow_mem_sink_destroy(sink);
	cow_mem_region_destroy(r);
	cow_mem_region_destroy(r2);
	free(ref1);
	cow_store_close(s);
	return 0;
}
