/*
 * The first problem the store's debug checker reports, for a test's failure
 * message: cow__store_check_all(s, keep_first, &fp).
 */
#ifndef COW_TEST_FIRST_PROBLEM_H
#define COW_TEST_FIRST_PROBLEM_H

#include <stdint.h>
#include <stdio.h>

struct first_problem {
	uint64_t blk;
	char why[160];
};

static inline int keep_first(void *ctx, uint64_t blk, const char *what)
{
	struct first_problem *f = ctx;
	if (!f->why[0]) {
		f->blk = blk;
		snprintf(f->why, sizeof(f->why), "%s", what);
	}
	return 0;
}

#endif
