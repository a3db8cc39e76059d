/*
 * Entries of a block map (src/store/blockmap.c), for the tests that count
 * runs; each is checked not to overlap the one before.
 */
#ifndef COW_TEST_RUNS_H
#define COW_TEST_RUNS_H

#include "check.h"
#include "store/store.h"

static inline uint64_t bmap_entries(const struct cow__bmap *m)
{
	struct cow__cursor c;
	cow__cursor_init(&c, m->tx, m->t);
	struct cow__vcell vc;
	uint64_t n = 0, floor = 0;
	int rc;
	for (rc = cow__bmap_seek(m, &c, 0);
	     rc == 0 && (rc = cow__bmap_cell(m, &c, floor, &vc)) == 0; rc = cow__cursor_next(&c)) {
		floor = vc.key + vc.r.n;
		n++;
	}
	CHECK_RC(rc, COW_ENOTFOUND);
	return n;
}

#endif
