/*
 * mem: live memory of the calling process. Private declarations shared by
 * the files of this layer:
 *
 *   uffd.c      userfaultfd and PAGEMAP_SCAN plumbing (constants the older
 *               system headers lack, open with fallbacks, feature probe)
 *   probe.c     cow_mem_probe: what works here, which backend and why
 *   region.c    regions: allocate, register (checks /proc/self/maps)
 *   sink.c      sinks: fd, buffer, callbacks
 *   trap.c      the process-wide SIGSEGV/SIGBUS handler and the table of
 *               trapped ranges it dispatches on (chains foreign faults)
 *   snapshot.c  live snapshots: in-thread backends and the fork backend
 *   track.c     dirty tracking and incremental checkpoints
 *   restore.c   eager and lazy restore
 *
 * Invariant of every in-thread mechanism: a protected page is only
 * unprotected after its pre-write content has been copied, and the fault
 * handler never returns for a page whose content is still needed.
 */
#ifndef COW_MEM_MEM_H
#define COW_MEM_MEM_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "cow/mem.h"

#define COW__PAGE	4096u
#define COW__PAGE_SHIFT 12
#define COW__HUGE	(2u << 20)

/* ---- uffd.c ---- */

/* Feature bits newer than some system headers; the kernel decides at run time. */
#define COW__UFFD_SIGBUS	 (1ull << 7)
#define COW__UFFD_WP		 (1ull << 0)
#define COW__UFFD_WP_UNPOPULATED (1ull << 13)
#define COW__UFFD_WP_ASYNC	 (1ull << 15)
/* Mapping-change events: MADV_DONTNEED/MADV_FREE, munmap, mremap. */
#define COW__UFFD_EVENTS ((1ull << 1) | (1ull << 3) | (1ull << 6))

/* Flags of the process-wide probe, computed once. */
struct cow__uffd_caps {
	int error;	   /* 0 or -errno of creating a userfaultfd */
	const char *via;   /* how it was created */
	uint64_t features; /* offered by UFFDIO_API */
	bool pagemap_scan; /* PAGEMAP_SCAN works */
	bool kernel;	   /* a userfaultfd that sees kernel-mode faults can be made */
	const char *kernel_via;
};
const struct cow__uffd_caps *cow__uffd_caps(void);

/*
 * A new userfaultfd with exactly @features enabled (UFFDIO_API done), or
 * -errno (-EOPNOTSUPP if the kernel lacks one of them). @kernel: it must see
 * faults raised inside system calls too (no UFFD_USER_MODE_ONLY).
 */
int cow__uffd_open(uint64_t features, bool kernel);
/* UFFDIO_UNREGISTER: 0 or -errno. */
int cow__uffd_unregister(int fd, void *addr, size_t len);
/* UFFDIO_WRITEPROTECT once: -EAGAIN while a mapping-change event is unread. */
int cow__uffd_wp_once(int fd, void *addr, size_t len, bool wp);
/*
 * Pages of [addr, addr+len) that hold data (present and not the zero page,
 * or swapped out), by PAGEMAP_SCAN on @pagemap_fd: sets their bits in @bits
 * (bit i = page i), or with @bits NULL returns 1 at the first one. 0 or
 * -errno. Async-signal-safe.
 */
int cow__pagemap_data(int pagemap_fd, void *addr, size_t len, uint64_t *bits);
/* UFFDIO_REGISTER @mode over [addr, addr+len): 0 or -errno. */
int cow__uffd_register(int fd, void *addr, size_t len, uint64_t mode);
/* UFFDIO_WRITEPROTECT: protect (wp) or unprotect a range; async-signal-safe. */
int cow__uffd_wp(int fd, void *addr, size_t len, bool wp);

/*
 * PAGEMAP_SCAN for written pages in [addr, addr+len), re-protecting them
 * (get-and-clear). Calls @fn for each run (offset from @addr, bytes); stops
 * on its first nonzero return. 0 or -errno.
 */
int cow__pagemap_written(int pagemap_fd, void *addr, size_t len,
			 int (*fn)(void *ctx, size_t off, size_t len), void *ctx);

/*
 * Map every page of the range for reading (the zero page on holes), so a
 * write-protect without WP_UNPOPULATED has a PTE to protect. 0 or -errno.
 */
int cow__populate_read(void *addr, size_t len);

/* Forced backend from $COW_MEM_BACKEND, or COW_MEM_AUTO. */
cow_mem_backend cow__mem_forced(void);

/*
 * Does any thread of the process block @sig now (SigBlk in
 * /proc/self/task/N/status)? Returns its tid, 0 if none, or -errno.
 */
int cow__sig_blocked_tid(int sig);
/*
 * For a backend that handles faults in a signal handler of the faulting
 * thread (@sig): COW_EOPNOTSUPP if a thread blocks @sig (it would be killed
 * by its first trapped write), else 0.
 */
int cow__check_sigmask(int sig);

/* ---- region.c ---- */

enum { COW__R_IDLE, COW__R_SNAP, COW__R_TRACK, COW__R_RESTORE };

struct cow__track; /* track.c */

struct cow_mem_region {
	char *addr;
	size_t size;
	bool owned;	  /* cowkit mapped it: destroy unmaps */
	bool thp;	  /* allocated with COW_MEM_THP */
	_Atomic int mode; /* COW__R_*: one activity at a time */
	struct cow__track *track;
};

/* Claim the region for an activity: 0 or COW_EBUSY. */
int cow__region_claim(cow_mem_region *r, int mode);
void cow__region_release(cow_mem_region *r);

/* ---- sink.c ---- */

int cow__sink_begin(cow_mem_sink *s, cow_mem_image_kind kind, uint64_t size);
int cow__sink_write(cow_mem_sink *s, uint64_t off, const void *data, size_t len);
int cow__sink_end(cow_mem_sink *s, int status);
/* @n buffers of @iov, contiguous at @off: one pwritev for fd sinks. */
struct iovec;
int cow__sink_writev(cow_mem_sink *s, uint64_t off, const struct iovec *iov, int n);
/* The fd a forked child may write to directly, with its base offset; -1 if none. */
int cow__sink_fd(const cow_mem_sink *s, uint64_t *base);

/* ---- trap.c ---- */

/*
 * A trapped range. fault() runs in a signal handler, in the faulting thread,
 * for a fault at @addr inside [start, end); it must be async-signal-safe and
 * return once a retry of the access will succeed (or fault again harmlessly).
 */
struct cow__trap {
	uintptr_t start, end;
	int sig; /* SIGBUS (userfaultfd) or SIGSEGV (mprotect) */
	void (*fault)(struct cow__trap *t, uintptr_t addr);
	/*
	 * NULL, or: is @addr (in [start, end)) really trapped? One trap then
	 * serves several ranges (a snapshot of many regions), so the table
	 * needs no slot per region. Async-signal-safe.
	 */
	bool (*contains)(struct cow__trap *t, uintptr_t addr);
};

/* Make @t live (installs the handlers on first use): 0, COW_ENOMEM, -errno. */
int cow__trap_add(struct cow__trap *t);
/* Retire @t; returns once no handler can still be running it. */
void cow__trap_remove(struct cow__trap *t);

/*
 * memcpy that survives the source vanishing (munmap or mremap of a region
 * by another thread): returns 0, or COW_EFAULT if the copy faulted.
 * Async-signal-safe; installs the fault handlers on first use.
 *
 * Under ThreadSanitizer the copy is not instrumented: what orders it
 * against the program's writes is the page protection (a write to a page
 * not yet copied traps until it is), which TSan cannot see, so every
 * program writing a tracked region would otherwise be reported racing
 * with the copier. The library's own synchronisation stays checked.
 */
int cow__copy_guarded(void *dst, const void *src, size_t len);
int cow__trap_install(void);

/* Futex helpers (async-signal-safe). */
void cow__futex_wait(_Atomic uint32_t *word, uint32_t expect, uint64_t timeout_ns);
void cow__futex_wake(_Atomic uint32_t *word);

/* Is @len bytes at @p all zero? */
bool cow__is_zero(const void *p, size_t len);

/* Median of @n samples (sorted in place); 0 if n == 0. */
uint64_t cow__median(uint32_t *v, size_t n);

/* Online CPUs, at least 1. */
unsigned cow__ncpu(void);

/* A callback sink that frees @ctx when destroyed; and its ctx (or NULL). */
int cow__sink_callbacks_owned(const cow_mem_sink_ops *ops, void *ctx, cow_mem_sink **out);
void *cow__sink_ctx(const cow_mem_sink *s);

/* The restore handle frees @buf when it is done (volume restores). */
void cow__restore_own(cow_mem_restore *h, void *buf);

#endif
