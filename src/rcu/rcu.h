/*
 * rcu (private): what the library and white-box tests may see beyond
 * include/cow/rcu.h.
 */
#ifndef COW_RCU_INTERNAL_H
#define COW_RCU_INTERNAL_H

#include <stdint.h>

#include "cow/rcu.h"

/* Counters of the shared reclaimer, read under its lock. */
struct cow__rcu_stats {
	uint64_t retired; /* versions handed to the reclaimer, ever */
	uint64_t freed;	  /* of those, released and freed (or leaked by a fork) */
};

void cow__rcu_stats(struct cow__rcu_stats *st);

#endif
