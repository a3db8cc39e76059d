/*
 * Tour step: incremental checkpoints and lazy restore (CRIU's lazy pages).
 * A region is checkpointed into a store volume, 1% of its pages change, the
 * next checkpoint carries only those and becomes a version sharing the rest;
 * then a fresh region is restored from it lazily: the first touch is served
 * at once, a prefetcher fills the rest, and the image matches.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cow/mem.h"
#include "cow/store.h"
#include "tour.h"

int tour_checkpoint(struct tour *t)
{
	char path[512], a[32], b[32];
	snprintf(path, sizeof(path), "%s/ckpt.cow", t->dir);
	size_t size = (size_t)t->size, pages = size / 4096;
	cow_store *s = NULL;
	cow_mem_region *r = NULL, *r2 = NULL;
	cow_mem_sink *sink = NULL;
	cow_txn *x = NULL;
	TRY(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	TRY(cow_mem_region_alloc(size, 0, &r));
	uint8_t *mem = cow_mem_region_addr(r);
	for (size_t p = 0; p < pages; p++)
		for (size_t i = 0; i < 4096; i += 512)
			memcpy(mem + p * 4096 + i, &(uint64_t){p * 4096 + i + 1}, 8);
	int rc = cow_mem_track_start(r, COW_MEM_AUTO);
	if (rc) {
		tour_say("write tracking unavailable here (%s): step skipped", cow_strerror(rc));
		goto done;
	}
	TRY(cow_mem_sink_volume(s, "app", &sink));
	cow_mem_ckpt_stats full, inc;
	TRY(cow_mem_checkpoint(r, sink, &full));
	for (size_t p = 0; p < pages; p += 100)
		mem[p * 4096 + 7] ^= 0x5a;
	TRY(cow_mem_checkpoint(r, sink, &inc));
	cow_mem_track_stop(r);
	tour_say("full checkpoint of %s into a store volume: %.1f ms (%llu pages)",
		 cli_size(a, sizeof(a), (double)size), full.total_ns / 1e6,
		 (unsigned long long)full.pages);
	tour_say("after writing 1%% of the pages: %.2f ms (%llu pages, %.1f%% of the full time) -> "
		 "%s (backend %s)",
		 inc.total_ns / 1e6, (unsigned long long)inc.pages,
		 100.0 * (double)inc.total_ns / (double)(full.total_ns ? full.total_ns : 1),
		 cow_mem_sink_volume_last(sink), cow_mem_backend_name(inc.backend));
	cow_obj_stats o1;
	TRY(cow_txn_begin(s, COW_TXN_RDONLY, &x));
	char last[600], prev[600];
	snprintf(last, sizeof(last), "%s", cow_mem_sink_volume_last(sink));
	snprintf(prev, sizeof(prev), "%.*s%d", (int)(strrchr(last, 't') - last + 1), last,
		 atoi(strrchr(last, 't') + 1) - 1);
	TRY(cow_obj_stat(x, prev, COW_STAT_EXCLUSIVE, &o1));
	cow_txn_abort(x);
	x = NULL;
	tour_say("each checkpoint is a whole version: %s references %s, only %s of it its own",
		 prev, cli_size(a, sizeof(a), (double)o1.referenced),
		 cli_size(b, sizeof(b), (double)o1.exclusive));

	TRY(cow_mem_region_alloc(size, 0, &r2));
	cow_mem_restore *h;
	TRY(cow_mem_restore_volume(r2, s, last, COW_MEM_AUTO, &h));
	volatile uint8_t first = ((uint8_t *)cow_mem_region_addr(r2))[size / 2 + 7];
	(void)first;
	cow_mem_restore_stats rs;
	TRY(cow_mem_restore_wait(h, &rs));
	bool same = memcmp(cow_mem_region_addr(r2), mem, size) == 0;
	tour_say("lazy restore of %s (%s): first touch served in %.0f us, all pages in %.1f ms",
		 last, cow_mem_backend_name(rs.backend), rs.first_fault_ns / 1e3,
		 rs.total_ns / 1e6);
	tour_say("restored image matches: %s", same ? "yes" : "NO");
	if (!same)
		goto fail;
done:
	cow_mem_sink_destroy(sink);
	cow_mem_region_destroy(r);
	cow_mem_region_destroy(r2);
	cow_store_close(s);
	return 0;
fail:
	cow_txn_abort(x);
	cow_mem_sink_destroy(sink);
	cow_mem_region_destroy(r);
	cow_mem_region_destroy(r2);
	cow_store_close(s);
	return 1;
}
