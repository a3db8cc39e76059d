/*
 * The live-snapshot demonstration shared by `cow mem snapshot` and the tour:
 * a writer thread writes random pages of a region while a snapshot streams
 * it into a file; the same run measures the writer alone first, so the
 * throughput ratio comes from one process on one machine state.
 */
#ifndef COW_TOOL_MEM_DEMO_H
#define COW_TOOL_MEM_DEMO_H

#include <stdbool.h>
#include <stdint.h>

#include "cow/mem.h"

struct mem_demo {
	uint64_t size;		 /* region bytes */
	cow_mem_backend backend; /* for the snapshot */
	bool thp;		 /* THP-backed region */
	uint64_t buffer;	 /* snapshot buffer; 0 = default */
	const char *dir;	 /* where the image file goes */
	bool verify;		 /* keep a reference copy and compare */
	/* results */
	cow_mem_snap_stats st;
	double base_wps; /* writes/s with no snapshot */
	double snap_wps; /* writes/s while the snapshot ran */
	bool matched;	 /* image == region at the instant (if verify) */
};

/* Run it: 0 or a cowkit error (message printed by the caller). */
int mem_demo_run(struct mem_demo *d);

#endif
