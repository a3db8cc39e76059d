/*
 * share: private interface of the process-family sharing analysis.
 *
 * A measurement is three passes:
 *   procfs.c  which processes (the given PIDs, their descendants), their
 *             comm/ppid, and each one's mappings and figures from smaps;
 *   frames.c  each mapping's resident page frame numbers from pagemap, then
 *             one sort of all (frame, process, mapping) triples to count how
 *             many processes of the set map each frame;
 *   report.c  cow_share_measure() and the report accessors.
 *
 * Invariants of a finished report: every cow_share_map belongs to exactly one
 * process; a process's kind[] and total figures are the sums over its maps;
 * with frames, pages == pages_all + pages_some + pages_none for every figure.
 */
#ifndef COW_SHARE_PRIV_H
#define COW_SHARE_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "cow/share.h"

struct cow_share_report {
	size_t nproc, cap;
	cow_share_proc *procs; /* maps arrays and their names owned here */
	int frames;	       /* 1 if pages_* came from frame numbers */
	const char *note;      /* why not, or "" */
	size_t skipped;
	uint64_t elapsed_ns;
};

/* Read a whole /proc file into a new NUL-terminated buffer; -errno on failure. */
int cow__share_slurp(const char *path, char **buf, size_t *len);

/*
 * Map an error from opening or reading /proc/PID/... to the one the API
 * returns: a missing entry means the process is gone (COW_ESRCH).
 */
int cow__share_proc_errno(int rc);

/* ppid, comm and whether the process is a zombie (no address space left). */
int cow__share_stat(int pid, int *ppid, char *comm, size_t commlen, bool *zombie);

/*
 * Append to *pids (capacity *cap, count *n) every descendant of the first
 * *n entries that is not in the list yet, in breadth-first order. Reads
 * /proc/[0-9]* /stat once.
 */
int cow__share_descendants(int **pids, size_t *n, size_t *cap);

/*
 * Parse /proc/PID/smaps into p->maps (allocated; names strdup'd) and sum the
 * per-kind and total figures. Returns 0, COW_ESRCH (gone, or a zombie),
 * COW_EACCES/COW_EPERM, COW_ENOMEM, or -errno.
 */
int cow__share_read_smaps(cow_share_proc *p);

/* Free what cow__share_read_smaps() allocated in p. */
void cow__share_proc_release(cow_share_proc *p);

/* Classify a mapping by its smaps name and permissions. */
int cow__share_classify(const char *name, const char *perms);

/* Recompute p->kind[] and p->total from p->maps. */
void cow__share_sum(cow_share_proc *p);

/*
 * Frame collection and matching (frames.c). collect appends one entry per
 * resident page of p (index idx in the report); match sorts them and fills
 * every mapping's pages_* figures.
 */
struct cow__share_frames {
	struct cow__share_fent *ent; /* (pfn, proc, map) triples */
	size_t n, cap;
	uint64_t zero_pfn; /* the shared zero page, excluded like smaps does; 0 if unknown */
	uint64_t *buf;	   /* pagemap read buffer */
	bool no_scan;	   /* the kernel lacks PAGEMAP_SCAN: read whole mappings */
};

/* Prepare; finds the zero page's frame. Returns 0 or COW_ENOMEM. */
int cow__share_frames_init(struct cow__share_frames *f);

/*
 * Append p's resident frames. Returns 0; 1 if frame numbers are hidden from
 * this process (no CAP_SYS_ADMIN: nothing appended); COW_ESRCH if the process
 * exited (nothing appended); COW_EACCES/COW_EPERM, COW_ENOMEM or -errno.
 */
int cow__share_frames_collect(struct cow__share_frames *f, const cow_share_proc *p, uint32_t idx);

/*
 * Count, for every collected frame, how many of the r->nproc processes map
 * it, and add each page to its mapping's pages/pages_all/some/none. Sorts
 * f->ent in place.
 */
void cow__share_frames_match(struct cow__share_frames *f, cow_share_report *r);

void cow__share_frames_release(struct cow__share_frames *f);

/*
 * Test hook: called (when non-NULL) after a process's smaps were read and
 * before its pagemap is (stage 0). Tests use it to make a process exit in
 * the middle of a scan. Not thread-safe; tests only.
 */
extern void (*cow__share_test_hook)(int pid, int stage);

/* Test switch: read pagemap linearly, as on kernels without PAGEMAP_SCAN. */
extern bool cow__share_test_no_scan;

#endif
