/*
 * cow tour: one step per row of DESIGN.md section 1. A step is a function
 * defined in its own tour_*.c file; a step whose function is not linked in
 * (a weak reference left NULL) prints "not built yet".
 */
#ifndef COW_TOUR_H
#define COW_TOUR_H

#include <stdbool.h>
#include <stdint.h>

struct tour {
	const char *dir; /* scratch folder; the store lives in it */
	bool quick;	 /* small sizes, seconds not minutes */
	uint64_t size;	 /* working-set size in bytes for the data-heavy steps */
};

/* A cowkit call inside a step: on error, say which call and why, and go to fail. */
#define TRY(expr)                                                                                  \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_) {                                                                         \
			tour_say("%s: %s", #expr, cow_strerror(rc_));                              \
			goto fail;                                                                 \
		}                                                                                  \
	} while (0)

/* Monotonic milliseconds. */
double tour_now_ms(void);

/* Print a measured line under the current step: "    what: value". */
void tour_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Steps, in tour order. Each returns 0, or nonzero after printing why it failed. */
int tour_fork(struct tour *t);
int tour_share(struct tour *t);
int tour_mvcc(struct tour *t);
int tour_clone(struct tour *t);
int tour_snapshot(struct tour *t);
int tour_crash(struct tour *t);
int tour_livesnap(struct tour *t);
int tour_checkpoint(struct tour *t);
int tour_rcu(struct tour *t);
int tour_closures(struct tour *t);
int tour_daytwo(struct tour *t);
int tour_fs(struct tour *t);

#endif
