/*
 * cowkit share: what a process family shares after fork().
 *
 * fork() is cheap because parent and child share every page until one of
 * them writes it; a runtime that writes to "read-only" data (a reference
 * count, a GC mark bit, a JIT patch) silently copies the page and loses the
 * sharing. This face measures it for a set of processes:
 *
 *   - the kernel's per-process figures from /proc/PID/smaps, per mapping and
 *     per mapping kind (heap, stack, anonymous, file-backed, shared memory):
 *     resident, shared (the page is mapped by more than one process anywhere
 *     on the machine), private clean, private dirty;
 *   - where /proc/PID/pagemap yields page frame numbers (CAP_SYS_ADMIN), the
 *     frame-level truth inside the family: for every resident page of every
 *     process, how many processes *of the measured set* map that very same
 *     physical page: all of them, some (more than one, not all), or none
 *     (this process alone).
 *
 * Without the privilege for frame numbers the report falls back to the smaps
 * figures and says so (cow_share_report_frames() returns 0 and
 * cow_share_report_note() says why).
 *
 * Typical use from a test or a tool:
 *
 *	cow_share_report *r;
 *	int pids[] = {parent, child};
 *	int rc = cow_share_measure(pids, 2, 0, &r);
 *	if (rc == 0) {
 *		const cow_share_proc *c = cow_share_report_proc(r, 1);
 *		printf("child un-shared %llu bytes\n",
 *		       (unsigned long long)c->total.private_dirty);
 *		cow_share_report_destroy(r);
 *	}
 *
 * Threads: the functions keep no global state; a report may be read from
 * several threads at once, but must not be destroyed while another thread
 * reads it. The measured processes keep running while they are measured, so
 * the figures of different processes are taken some microseconds apart.
 */
#ifndef COW_SHARE_H
#define COW_SHARE_H

#include <stddef.h>
#include <stdint.h>

#include "cow/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The kind of a mapping, from its name and flags in /proc/PID/smaps. */
typedef enum cow_share_kind {
	COW_SHARE_HEAP = 0,  /* [heap]: the brk heap */
	COW_SHARE_STACK = 1, /* [stack]: the main thread's stack */
	COW_SHARE_ANON = 2,  /* private anonymous memory (mmap'd heaps, thread stacks, .bss) */
	COW_SHARE_FILE = 3,  /* a mapped file (code, data, MAP_PRIVATE or MAP_SHARED files) */
	COW_SHARE_SHMEM = 4, /* shared memory: MAP_SHARED|MAP_ANONYMOUS, /dev/shm, memfd, SysV */
	COW_SHARE_OTHER = 5, /* kernel-provided: [vdso], [vvar], [vsyscall] */
	COW_SHARE_NKINDS = 6
} cow_share_kind;

/*
 * cow_share_kind_name - "heap", "stack", "anon", "file", "shmem", "other";
 * "?" for any other value. A static string; any thread.
 */
COW_API const char *cow_share_kind_name(int kind);

/*
 * Figures for one mapping, one kind or one process. Sizes in bytes (from
 * smaps, always present); page counts from pagemap (zero when the report has
 * no frame numbers). shared + private_clean + private_dirty == rss.
 */
typedef struct cow_share_figs {
	uint64_t rss;		/* resident */
	uint64_t pss;		/* proportional share: each page divided by its mapcount */
	uint64_t shared;	/* Shared_Clean + Shared_Dirty: mapped by another process too */
	uint64_t private_clean; /* mapped by this process only, not written since read in */
	uint64_t private_dirty; /* mapped by this process only and written: what COW copied */
	uint64_t swap;		/* swapped out */
	uint64_t pages;		/* resident 4 KiB pages with a frame number (zero page excluded) */
	uint64_t pages_all;	/* ... whose frame every measured process maps */
	uint64_t pages_some;	/* ... mapped by this and at least one other, not all */
	uint64_t pages_none;	/* ... mapped by this process alone (within the measured set) */
} cow_share_figs;

/* One mapping of one process (a line of /proc/PID/maps plus its figures). */
typedef struct cow_share_map {
	uint64_t start, end; /* virtual address range [start, end) */
	char perms[5];	     /* "rw-p", "r-xs", ... */
	int kind;	     /* cow_share_kind */
	const char *name;    /* path or [name]; "" for anonymous; owned by the report */
	cow_share_figs figs;
} cow_share_map;

/* One measured process. */
typedef struct cow_share_proc {
	int pid;
	int ppid;
	char comm[32];	      /* the command name from /proc/PID/stat (15 chars at most) */
	cow_share_figs total; /* the whole process */
	cow_share_figs kind[COW_SHARE_NKINDS]; /* per cow_share_kind */
	size_t nmaps;			       /* mappings, in address order */
	const cow_share_map *maps;	       /* owned by the report */
} cow_share_proc;

/* The result of one measurement; opaque, read through the accessors below. */
typedef struct cow_share_report cow_share_report;

/* Flags for cow_share_measure(). */
enum {
	/* Also measure every descendant of the given PIDs (children, grandchildren...). */
	COW_SHARE_CHILDREN = 1u << 0,
	/* Do not read frame numbers even when permitted: smaps figures only. */
	COW_SHARE_SMAPS_ONLY = 1u << 1,
	/*
	 * Skip a process that cannot be measured (it exited, or access is denied)
	 * instead of failing; cow_share_report_skipped() counts them. A process
	 * that exits in the middle of its own scan is always skipped, never
	 * reported half-read.
	 */
	COW_SHARE_SKIP_GONE = 1u << 2,
};

/*
 * cow_share_measure - measure what a set of processes share.
 *
 * @pids:  the processes (duplicates are measured once); with COW_SHARE_CHILDREN
 *         their descendants are added, in PID order after the given ones.
 * @n:     number of PIDs, 1 or more.
 * @flags: COW_SHARE_* flags above.
 * @out:   receives a new report; the caller destroys it with
 *         cow_share_report_destroy(). Untouched on error.
 *
 * Returns 0, or:
 *   COW_EINVAL  n == 0, a PID <= 0, unknown flags, or a NULL pointer;
 *   COW_ESRCH   a given PID does not exist, or it exited before it was read
 *               (only without COW_SHARE_SKIP_GONE; a descendant that exits
 *               during the scan is always skipped);
 *   COW_EACCES  or COW_EPERM: this process may not read that process's smaps
 *               (another user's process without CAP_SYS_PTRACE; only without
 *               COW_SHARE_SKIP_GONE);
 *   COW_ENOMEM  out of memory;
 *   another -errno from reading /proc.
 *
 * Frame numbers are used when /proc/PID/pagemap shows them (root, or
 * CAP_SYS_ADMIN); otherwise the report falls back to smaps, which is not an
 * error. Cost: one pass over each smaps file; with frames, 8 bytes of
 * pagemap per resident page (Linux 6.7+ finds them with PAGEMAP_SCAN; older
 * kernels read every virtual page of each mapping that has any resident
 * page) and a radix sort of all resident pages of the set, about 32 bytes
 * of memory per resident page while measuring.
 * Safe to call from any thread; it neither stops nor ptraces the processes.
 */
COW_API int cow_share_measure(const int *pids, size_t n, unsigned flags, cow_share_report **out);

/* cow_share_report_destroy - free a report and everything it owns; NULL is fine. */
COW_API void cow_share_report_destroy(cow_share_report *r);

/*
 * cow_share_report_count - number of processes measured (skipped ones not
 * counted); 0 for NULL. The accessors below all accept NULL as well.
 */
COW_API size_t cow_share_report_count(const cow_share_report *r);

/*
 * cow_share_report_proc - the i-th measured process, 0 <= i < count; NULL if
 * out of range. Points into the report; valid until it is destroyed.
 */
COW_API const cow_share_proc *cow_share_report_proc(const cow_share_report *r, size_t i);

/* cow_share_report_find - the measured process with this PID, or NULL. */
COW_API const cow_share_proc *cow_share_report_find(const cow_share_report *r, int pid);

/*
 * cow_share_report_frames - 1 if the pages_* figures come from page frame
 * numbers, 0 if the report fell back to smaps figures only.
 */
COW_API int cow_share_report_frames(const cow_share_report *r);

/*
 * cow_share_report_note - why frame numbers were not used ("page frame
 * numbers need CAP_SYS_ADMIN; smaps figures only", "smaps figures only, as
 * requested"), or "" when they were. A static string; never NULL.
 */
COW_API const char *cow_share_report_note(const cow_share_report *r);

/* cow_share_report_skipped - processes skipped because they exited or denied access. */
COW_API size_t cow_share_report_skipped(const cow_share_report *r);

/*
 * cow_share_report_elapsed_ns - how long the measurement took (monotonic
 * clock, from the first smaps read to the end of frame matching).
 */
COW_API uint64_t cow_share_report_elapsed_ns(const cow_share_report *r);

/*
 * cow_share_private_dirty - one process's private dirty bytes, quickly.
 *
 * Reads /proc/PID/smaps_rollup (one line per figure, no per-mapping walk):
 * the memory this process alone holds because it wrote it. Handy in tests
 * ("forked readers un-share nothing"). @out receives the bytes.
 *
 * Returns 0, COW_EINVAL (pid <= 0 or out NULL), COW_ESRCH (no such process,
 * or a zombie without an address space), COW_EACCES/COW_EPERM, or -errno.
 * Any thread.
 */
COW_API int cow_share_private_dirty(int pid, uint64_t *out);

#ifdef __cplusplus
}
#endif

#endif
