/*
 * A fault-injecting io for the block layer (installed through cow__io_wrap).
 *
 * It passes writes through to the file (the store reads through a mapping of
 * the same file) but remembers every write since the last successful sync, so
 * it can simulate what a power loss leaves: at the chosen operation it
 * decides for each unsynced write whether it reached the disk whole, not at
 * all, or torn at 512-byte sectors (later writes may land while earlier ones
 * don't: reordering), rewrites the file to that state, and from then on fails
 * every operation with EIO, as a machine that lost power would. It can also
 * fail the N-th operation with EIO or ENOSPC, once or persistently, and fail
 * the N-th growth of the file with ENOSPC after growing it part-way.
 */
#ifndef COW_TEST_FAULTIO_H
#define COW_TEST_FAULTIO_H

#include <stdbool.h>
#include <stdint.h>

struct faultio_cfg {
	long fail_at;       /* the N-th write/sync/grow (1-based) fails; 0 never */
	int fail_errno;     /* EIO or ENOSPC */
	bool persistent;    /* keep failing after the first */
	long crash_at;      /* the N-th write/sync: power loss instead; 0 never */
	uint64_t seed;      /* drives the crash's choices */
	int keep_percent;   /* chance an unsynced write survives whole (default 50) */
	int tear_percent;   /* chance it is torn (default 25); the rest is dropped */
	long fail_grow_at;  /* the N-th grow (1-based, counted apart) fails; 0 never */
	bool grow_partial;  /* a failing grow first extends the file part-way, to a
			       size that is not a multiple of 4096 (fallocate on a
			       full ext4 with 1 KiB blocks) */
};

void faultio_install(const struct faultio_cfg *cfg);
void faultio_uninstall(void);
long faultio_ops(void);     /* operations seen since install */
bool faultio_crashed(void); /* has the simulated power loss happened? */

#endif
