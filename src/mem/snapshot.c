/*
 * Live snapshots of a region.
 *
 * In-thread backends (userfaultfd SIGBUS, mprotect + SIGSEGV). Each page has
 * a state byte:
 *
 *      PENDING --claim (CAS)--> CLAIMED --copied, then store--> DONE
 *
 * exactly one party claims a page: the copier thread, streaming the region
 * into the sink in 64 KiB runs straight from the still-protected memory, or
 * a writer whose write trapped, which copies the page into a buffer slot
 * and queues the slot for the copier. A page is unprotected only after it
 * reached DONE, so the image holds every page as it was at the instant.
 * A writer that traps on a CLAIMED page waits (futex) until the claimer is
 * done; on a DONE page it only lifts the protection.
 *
 * The buffer: opts.buffer bytes of 4 KiB slots, taken by writers with a CAS
 * on a bitmap, returned by the copier after the sink consumed them. When all
 * slots are taken, opts.stall decides:
 *
 *   BLOCK  writers wait: extra memory never exceeds the buffer, whatever
 *          the write rate (back-pressure);
 *   GROW   the slot count goes up by its initial value, up to the slots of
 *          opts.buffer_max (reserved as address space at prepare, faulted
 *          in on first use), then writers wait as with BLOCK;
 *   ABORT  the snapshot fails with COW_EFULL: from then on no page is
 *          copied, trapped writers only lift their page's protection, and
 *          the copier stops and lifts the rest.
 *
 * The copier drains queued slots before streaming further.
 *
 * The instant: the caller keeps writers off the region during
 * cow_mem_snapshot_start. With userfaultfd the range is write-protected by
 * several threads at once (the ioctl takes the mmap lock shared), which is
 * what makes the pause shorter than fork's page-table copy; mprotect takes
 * it exclusively, so it runs in one thread.
 *
 * Several regions in one instant (cow_mem_snapshot_prepare_many): the
 * snapshot holds a table of segments, one per region, sorted by address,
 * and numbers their pages one after another ("global" page numbers, the
 * index of the state bytes). One buffer, one copier, one userfaultfd with
 * every region registered, one trap whose contains() checks the segments,
 * one instant protecting them all. A run of pages handed to a sink never
 * crosses a segment: each region has its own sink, which sees offsets in
 * its region.
 *
 * The view (COW_MEM_SNAP_VIEW, cow_mem_snapshot_read): the image as of the
 * instant must stay readable after pages were streamed, so the copier lifts
 * no protection and a page stays trapped until its first write, which keeps
 * its pre-image in a buffer slot that lives until cow_mem_snapshot_wait:
 *
 *      PENDING --writer--> CLAIMED --copied, queued for the sink--> KEPT
 *      PENDING --copier--> CLAIMED --streamed--> DONE
 *      DONE --writer (CAS)--> KEEPING --pre-image in a slot--> KEPT
 *
 * A page is unprotected only in KEPT (or, once the view is over, in DONE),
 * so while its state is below KEPT the region still holds its content at
 * the instant; a reader copies it from there and checks afterwards that
 * the state is still below KEPT (a seqlock whose writer is the protection),
 * or reads the kept slot. Readers never wait. Kept slots count against the
 * buffer, and the stall policy applies to them: under BLOCK a writer may
 * wait for cow_mem_snapshot_wait, which ends the view and frees them.
 *
 * Fork backend: fork() is the instant; the child writes the region to an fd
 * sink directly, or into a pipe that the copier thread turns into sink
 * writes, then reports its Private_Dirty (the pages the parent's writes
 * left it holding: fork's extra memory) and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem/mem.h"

/* Page states; a page's state only ever goes up. KEEPING and KEPT: VIEW only. */
enum { PENDING = 0, CLAIMED = 1, DONE = 2, KEEPING = 3, KEPT = 4 };

#define STAGE_PAGES	    512 /* the copier's stage: 2 MiB, so THP mappings stay whole */
#define CLAIM_PAGES	    16	/* the copier claims 64 KiB at a time: writers wait at most that */
#define PROBE_PAGES	    16384   /* protected alone first, to time the rest (64 MiB) */
#define WP_CHUNK	    8192    /* pages per protect call when two threads share it (32 MiB) */
#define SPLIT_NS	    1000000 /* split the rest if it would take longer than this */
#define DEFAULT_FAULT_PAGES 4
#define NSAMPLES	    65536 /* fault latencies kept for the median */
#define PIPE_CHUNK	    (1u << 20)

/* One region of a snapshot. */
struct seg {
	cow_mem_region *r;
	cow_mem_sink *sink;
	char *addr;
	size_t size;
	size_t first;	     /* global number of its first page */
	size_t npages;	     /* size >> COW__PAGE_SHIFT */
	size_t index;	     /* its position in the caller's arrays */
	bool begun;	     /* the sink's begin succeeded */
	uint64_t *data_bits; /* mprotect: pages holding data at the instant */
	int direct_fd;	     /* fork: the child pwrite()s here, or -1 (pipe) */
	uint64_t direct_base;
};

struct cow_mem_snap {
	struct cow__trap trap; /* first: the fault handler gets a trap pointer */
	struct seg *segs;      /* sorted by address, disjoint */
	size_t nsegs;
	cow_mem_backend backend;
	int uffd;
	bool thread_mode; /* COW_MEM_UFFD_THREAD: the copier serves every fault */
	uint64_t t_prep, t0, t_started;
	size_t npages;
	_Atomic uint8_t *state;

	/* mapping changes: userfaultfd events, or (mprotect) pages that lost data */
	_Atomic int svc_lock; /* one thread reads the userfaultfd at a time */
	_Atomic int reading;  /* events read from it are not all handled yet */
	_Atomic int armed;    /* the instant began: a discard now can spoil the image */
	_Atomic int aerr;     /* error raised by a fault handler or an event */
	bool unregistered;
	int pagemap; /* mprotect: /proc/self/pagemap */

	/* the copier's stage (taken from the buffer budget) */
	char *stage;
	size_t stage_pages;
	size_t fault_pages; /* pages a trapped writer copies: a power of two */

	/* buffer slots */
	char *buf;
	_Atomic size_t nslots; /* slots in use now: grows up to maxslots (GROW) */
	size_t maxslots, grow_step, nwords;
	cow_mem_stall stall;
	_Atomic uint64_t grows;
	_Atomic uint64_t *used_bits;
	uint32_t *slot_page;
	_Atomic uint32_t *slot_next;
	uint32_t *order;	/* the copier's scratch for sorting drained slots */
	_Atomic uint32_t ready; /* stack of slot+1, 0 = empty */
	_Atomic size_t used, peak;

	_Atomic uint32_t gen;	   /* bumped when pages or slots become DONE/free */
	_Atomic uint32_t waiters;  /* writers sleeping on gen */
	_Atomic uint32_t cgen;	   /* bumped when a slot is queued */
	_Atomic uint32_t csleep;   /* copier sleeping on cgen */
	_Atomic uint32_t inflight; /* pages claimed by writers, not yet queued */
	_Atomic int failed;	   /* sink failed: stop copying, just unprotect */

	/* the view (COW_MEM_SNAP_VIEW) */
	bool view;
	_Atomic int view_over;	     /* cow_mem_snapshot_wait began: slots may go */
	_Atomic uint32_t *view_slot; /* per page: slot + 1 holding its pre-image, or 0 */
	_Atomic uint8_t *kept;	     /* per slot: 1 keep after the sink, 2 kept */
	struct seg *first_seg;	     /* the caller's rs[0], for cow_mem_snapshot_read */

	/* parallel write-protect at the instant */
	_Atomic uint32_t phase;	  /* 0 wait, 1 help protect, 3 stream, 4 give up */
	_Atomic size_t wp_next;	  /* next page to protect at the instant */
	_Atomic uint32_t wp_busy; /* the copier is protecting a chunk */
	_Atomic int wp_err;

	pthread_t copier;
	bool have_copier;
	bool instant_done;
	int instant_rc;
	unsigned threads;
	int err;

	_Atomic uint64_t faults, stalls, nsamples, retraps, waits;
	uint32_t *samples;

	/* fork backend */
	pid_t child;
	int data_fd, status_fd;
	uint64_t extra_fork;
};

/* The segment holding global page @page (binary search; async-signal-safe). */
static struct seg *seg_of_page(const struct cow_mem_snap *s, size_t page)
{
	size_t lo = 0, hi = s->nsegs;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->segs[mid].first <= page)
			lo = mid;
		else
			hi = mid;
	}
	return &s->segs[lo];
}

/* The segment holding address @a, or NULL (async-signal-safe). */
static struct seg *seg_of_addr(const struct cow_mem_snap *s, uintptr_t a)
{
	size_t lo = 0, hi = s->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct seg *g = &s->segs[mid];
		if (a < (uintptr_t)g->addr)
			hi = mid;
		else if (a >= (uintptr_t)g->addr + g->size)
			lo = mid + 1;
		else
			return g;
	}
	return NULL;
}

static char *page_addr(const struct cow_mem_snap *s, size_t page)
{
	const struct seg *g = seg_of_page(s, page);
	return g->addr + ((page - g->first) << COW__PAGE_SHIFT);
}

/* Pages from @page to the end of its segment. */
static size_t seg_left(const struct cow_mem_snap *s, size_t page)
{
	const struct seg *g = seg_of_page(s, page);
	return g->first + g->npages - page;
}

static bool trap_contains(struct cow__trap *t, uintptr_t a)
{
	return seg_of_addr((struct cow_mem_snap *)t, a) != NULL;
}

static void *map_zeroed(size_t len)
{
	void *p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void service(struct cow_mem_snap *s, bool copier);

/* Set in copier threads: they may serve faults (and must, when they wait). */
static __thread bool in_copier;

/* Record the first error; the copier stops copying, faults only unprotect. */
static void fail_async(struct cow_mem_snap *s, int rc)
{
	int zero = 0;
	atomic_compare_exchange_strong(&s->aerr, &zero, rc);
	atomic_store(&s->failed, 1);
}

static int wp_one(struct cow_mem_snap *s, size_t page, size_t npages, bool on)
{
	char *p = page_addr(s, page);
	size_t len = npages << COW__PAGE_SHIFT;
	if (s->backend == COW_MEM_MPROTECT) {
		if (mprotect(p, len, on ? PROT_READ : PROT_READ | PROT_WRITE) == 0)
			return 0;
		int err = -errno;
		/* ENOMEM: too many areas, or a piece is unmapped (msync tells). */
		if (err == -ENOMEM && msync(p, len, MS_ASYNC) < 0 && errno == ENOMEM)
			return COW_MEM_ECHANGED;
		return err;
	}
	/*
	 * EAGAIN: a mapping-change event is waiting to be read, and the kernel
	 * refuses protection changes until it is. Read it (any thread may).
	 */
	for (;;) {
		int rc = cow__uffd_wp_once(s->uffd, p, len, on);
		if (rc == -ENOENT)
			return COW_MEM_ECHANGED; /* unmapped: its event may still be unread */
		if (rc != -EAGAIN)
			return rc;
		service(s, in_copier);
		sched_yield();
	}
}

/* Change the protection of global pages [page, page+npages), segment by segment. */
static int wp(struct cow_mem_snap *s, size_t page, size_t npages, bool on)
{
	int rc = 0;
	while (npages) {
		size_t n = COW_MIN(npages, seg_left(s, page));
		int r = wp_one(s, page, n, on);
		if (r && !rc)
			rc = r;
		page += n;
		npages -= n;
	}
	return rc;
}

static int unprotect(struct cow_mem_snap *s, size_t page, size_t npages)
{
	return wp(s, page, npages, false);
}

/*
 * Lift the protection of every page that is still mapped. One call over a
 * range with a hole (a piece the program unmapped) stops at the hole, so on
 * failure go by 2 MiB, and by page where a 2 MiB piece fails. Returns the
 * first error (a hole makes it COW_MEM_ECHANGED), having done what it can.
 */
static int unprotect_all(struct cow_mem_snap *s)
{
	int rc = unprotect(s, 0, s->npages);
	if (!rc)
		return 0;
	for (size_t p = 0; p < s->npages; p += STAGE_PAGES) {
		size_t n = COW_MIN((size_t)STAGE_PAGES, s->npages - p);
		if (unprotect(s, p, n) == 0)
			continue;
		for (size_t q = p; q < p + n; q++)
			unprotect(s, q, 1);
	}
	return rc;
}

static int protect(struct cow_mem_snap *s, size_t page, size_t npages)
{
	return wp(s, page, npages, true);
}

/*
 * mprotect backend: the kernel tells nothing when a protected page is
 * discarded (MADV_DONTNEED reads back as zeros). A page copied as all zeros
 * that held data at the instant and holds none now was discarded before it
 * was copied: the image would be wrong, so the snapshot fails.
 */
static void check_lost(struct cow_mem_snap *s, size_t page, size_t n, const char *copy)
{
	if (s->backend != COW_MEM_MPROTECT)
		return;
	const struct seg *g = seg_of_page(s, page); /* [page, page+n) lies in g */
	if (!g->data_bits)
		return;
	for (size_t k = 0; k < n; k++) {
		size_t pg = page + k - g->first;
		if (!(g->data_bits[pg / 64] >> (pg % 64) & 1) ||
		    !cow__is_zero(copy + (k << COW__PAGE_SHIFT), COW__PAGE))
			continue;
		if (cow__pagemap_data(s->pagemap, g->addr + (pg << COW__PAGE_SHIFT), COW__PAGE,
				      NULL) != 1)
			fail_async(s, COW_MEM_ECHANGED);
	}
}

/* ---- the writer's side: runs in a signal handler ---- */

static void wait_gen(struct cow_mem_snap *s, uint32_t g)
{
	atomic_fetch_add(&s->waiters, 1);
	cow__futex_wait(&s->gen, g, 1000000);
	atomic_fetch_sub(&s->waiters, 1);
}

#define NO_SLOT SIZE_MAX

static void bump(struct cow_mem_snap *s);

/* Return a slot to the free set; the caller bumps `gen`. */
static void slot_free(struct cow_mem_snap *s, size_t slot)
{
	/* Count down first, so `used` never exceeds the slots taken. */
	atomic_fetch_sub(&s->used, 1);
	atomic_fetch_and(&s->used_bits[slot / 64], ~(1ull << (slot % 64)));
}

/* Is the view still collecting pre-images? */
static bool keeping(struct cow_mem_snap *s)
{
	return s->view && !atomic_load(&s->view_over) && !atomic_load(&s->failed);
}

/*
 * A slot holding a pre-image the view needs: kept until the view ends;
 * if it already did, free it now (whoever moves it from 2 to 0 frees it).
 */
static void retain(struct cow_mem_snap *s, size_t slot)
{
	atomic_store(&s->kept[slot], 2);
	uint8_t two = 2;
	if (atomic_load(&s->view_over) && atomic_compare_exchange_strong(&s->kept[slot], &two, 0)) {
		slot_free(s, slot);
		bump(s);
	}
}

/* GROW policy: add grow_step slots, up to maxslots; true if there are more now. */
static bool grow(struct cow_mem_snap *s)
{
	if (s->stall != COW_MEM_STALL_GROW)
		return false;
	size_t n = atomic_load(&s->nslots);
	if (n >= s->maxslots)
		return false;
	if (atomic_compare_exchange_strong(&s->nslots, &n, COW_MIN(n + s->grow_step, s->maxslots)))
		atomic_fetch_add(&s->grows, 1);
	return true; /* we grew it, or another thread did */
}

/*
 * A free slot, after growing or waiting as the stall policy says; NO_SLOT
 * once the snapshot failed (ABORT: this call may be what fails it), since
 * a failed image needs no more copies.
 */
static size_t slot_get(struct cow_mem_snap *s)
{
	bool stalled = false;
	for (;;) {
		if (atomic_load(&s->failed))
			return NO_SLOT;
		uint32_t g = atomic_load(&s->gen);
		for (size_t w = 0; w < s->nwords; w++) {
			uint64_t v = atomic_load(&s->used_bits[w]);
			while (~v) {
				unsigned bit = (unsigned)__builtin_ctzll(~v);
				size_t slot = w * 64 + bit;
				if (slot >= s->nslots)
					break;
				if (atomic_compare_exchange_weak(&s->used_bits[w], &v,
								 v | (1ull << bit))) {
					size_t u = atomic_fetch_add(&s->used, 1) + 1;
					size_t pk = atomic_load(&s->peak);
					while (u > pk &&
					       !atomic_compare_exchange_weak(&s->peak, &pk, u))
						;
					return slot;
				}
			}
		}
		if (grow(s))
			continue;
		if (!stalled) {
			stalled = true;
			atomic_fetch_add(&s->stalls, 1);
		}
		if (s->stall == COW_MEM_STALL_ABORT) {
			fail_async(s, COW_EFULL);
			return NO_SLOT;
		}
		if (atomic_load(&s->csleep)) {
			atomic_fetch_add(&s->cgen, 1);
			cow__futex_wake(&s->cgen);
		}
		wait_gen(s, g);
	}
}

/*
 * May page @i lose its protection? Once its content at the instant is safe:
 * DONE, or with the view, KEPT (DONE pages stay trapped until the view ends).
 */
static bool releasable(struct cow_mem_snap *s, size_t i)
{
	uint8_t st = atomic_load_explicit(&s->state[i], memory_order_acquire);
	return st == KEPT || (st == DONE && (!s->view || atomic_load(&s->view_over)));
}

/* Lift the protection of every run of releasable pages in [lo, hi). */
static int unprotect_runs(struct cow_mem_snap *s, size_t lo, size_t hi)
{
	int rc = 0;
	size_t i = lo;
	while (i < hi) {
		while (i < hi && !releasable(s, i))
			i++;
		size_t j = i;
		while (j < hi && releasable(s, j))
			j++;
		if (j > i) {
			int r = unprotect(s, i, j - i);
			if (r && !rc)
				rc = r;
		}
		i = j;
	}
	return rc;
}

/*
 * Copy a page this thread claimed into a buffer slot, queue it, mark it
 * DONE. Without a slot (the snapshot failed) the page is only marked DONE,
 * so that its protection can be lifted.
 */
static void copy_claimed(struct cow_mem_snap *s, size_t page)
{
	size_t slot = slot_get(s);
	if (slot == NO_SLOT) {
		atomic_store_explicit(&s->state[page], DONE, memory_order_release);
		return;
	}
	bool keep = keeping(s);
	char *dst = s->buf + (slot << COW__PAGE_SHIFT);
	if (cow__copy_guarded(dst, page_addr(s, page), COW__PAGE))
		fail_async(s, COW_MEM_ECHANGED); /* unmapped under us */
	else
		check_lost(s, page, 1, dst);
	s->slot_page[slot] = (uint32_t)page;
	if (keep) {
		/* The view reads this pre-image; the copier keeps the slot after the sink. */
		atomic_store(&s->kept[slot], 1);
		atomic_store(&s->view_slot[page], (uint32_t)slot + 1);
	}
	uint32_t head = atomic_load(&s->ready);
	do {
		atomic_store_explicit(&s->slot_next[slot], head, memory_order_relaxed);
	} while (!atomic_compare_exchange_weak(&s->ready, &head, (uint32_t)slot + 1));
	atomic_store_explicit(&s->state[page], keep ? KEPT : DONE, memory_order_release);
	if (s->view)
		bump(s);
}

/*
 * VIEW: a write trapped on DONE page @page (streamed, still protected).
 * Keep its pre-image in a slot of its own (not for the sink: the image has
 * it) and mark it KEPT, so it may be unprotected. Returns at once if
 * another thread is keeping it. Without a slot (the snapshot failed) the
 * page is only marked KEPT: reads then report the failure.
 */
static void keep_page(struct cow_mem_snap *s, size_t page)
{
	uint8_t done = DONE;
	if (!atomic_compare_exchange_strong(&s->state[page], &done, KEEPING))
		return;
	size_t slot = slot_get(s);
	if (slot != NO_SLOT) {
		char *dst = s->buf + (slot << COW__PAGE_SHIFT);
		if (cow__copy_guarded(dst, page_addr(s, page), COW__PAGE))
			fail_async(s, COW_MEM_ECHANGED);
		else
			check_lost(s, page, 1, dst);
		s->slot_page[slot] = (uint32_t)page;
		atomic_store(&s->view_slot[page], (uint32_t)slot + 1);
		retain(s, slot);
	}
	atomic_store_explicit(&s->state[page], KEPT, memory_order_release);
	bump(s);
}

/*
 * Unprotecting one page failed: with mprotect, scattered writes split the
 * mapping into more areas than vm.max_map_count allows (ENOMEM). Copy every
 * pending page of the enclosing aligned block, wait until none is being
 * copied by anyone else, and unprotect the whole block, which merges areas
 * instead of splitting them; widen the block until that succeeds.
 */
static void unprotect_wide(struct cow_mem_snap *s, size_t page)
{
	for (size_t blk = 512;; blk *= 8) {
		size_t lo = page & ~(blk - 1), hi = COW_MIN(lo + blk, s->npages);
		for (size_t q = lo; q < hi; q++) {
			uint8_t pend = PENDING;
			if (atomic_compare_exchange_strong(&s->state[q], &pend, CLAIMED))
				copy_claimed(s, q);
			else if (keeping(s))
				keep_page(s, q);
		}
		for (size_t q = lo; q < hi; q++) {
			for (;;) {
				uint32_t g = atomic_load(&s->gen);
				if (releasable(s, q) || atomic_load(&s->failed))
					break;
				if (keeping(s))
					keep_page(s, q);
				wait_gen(s, g);
			}
		}
		if (unprotect(s, lo, hi - lo) == 0 || (lo == 0 && hi == s->npages))
			return;
	}
}

/*
 * A write trapped on @addr. The writer copies its page, and, when the
 * buffer has room, the other pending pages of the same fault_pages-aligned
 * block, then lifts the protection of the block in one call: a program
 * that writes all over the region takes one trap per block instead of one
 * per page, and one TLB flush instead of fault_pages.
 */
static void snap_fault(struct cow__trap *t, uintptr_t addr)
{
	struct cow_mem_snap *s = (struct cow_mem_snap *)t;
	uint64_t t0 = cow__now_ns();
	const struct seg *sg = seg_of_addr(s, addr); /* contains() said yes */
	size_t page = sg->first + ((addr - (uintptr_t)sg->addr) >> COW__PAGE_SHIFT);
	for (;;) {
		uint32_t g = atomic_load(&s->gen);
		uint8_t st = atomic_load_explicit(&s->state[page], memory_order_acquire);
		if (st == PENDING && atomic_load(&s->failed)) {
			unprotect(s, page, 1);
			return;
		}
		if (st == PENDING) {
			uint8_t want = PENDING;
			atomic_fetch_add(&s->inflight, 1);
			if (!atomic_compare_exchange_strong(&s->state[page], &want, CLAIMED)) {
				atomic_fetch_sub(&s->inflight, 1);
				continue;
			}
			copy_claimed(s, page);
			size_t lo = page & ~(s->fault_pages - 1);
			size_t hi = COW_MIN(lo + s->fault_pages, s->npages);
			if (s->fault_pages > 1 && !atomic_load(&s->failed) &&
			    atomic_load(&s->used) + s->fault_pages <= s->nslots) {
				for (size_t q = lo; q < hi; q++) {
					uint8_t pend = PENDING;
					if (q != page && atomic_compare_exchange_strong(
								 &s->state[q], &pend, CLAIMED))
						copy_claimed(s, q);
				}
			} else {
				lo = page;
				hi = page + 1;
			}
			if (unprotect_runs(s, lo, hi))
				unprotect_wide(s, page);
			atomic_fetch_sub(&s->inflight, 1);
			if (atomic_load(&s->csleep)) {
				atomic_fetch_add(&s->cgen, 1);
				cow__futex_wake(&s->cgen);
			}
			uint64_t n = atomic_fetch_add(&s->faults, 1);
			if (n < NSAMPLES) {
				s->samples[n] = (uint32_t)COW_MIN(cow__now_ns() - t0, UINT32_MAX);
				atomic_fetch_add(&s->nsamples, 1);
			}
			return;
		}
		if (st == DONE && keeping(s)) {
			atomic_fetch_add(&s->inflight, 1);
			keep_page(s, page);
			atomic_fetch_sub(&s->inflight, 1);
			continue; /* KEPT now, or KEEPING by another thread */
		}
		if (st == DONE || st == KEPT || (st == KEEPING && atomic_load(&s->failed))) {
			atomic_fetch_add(&s->retraps, 1);
			if (unprotect(s, page, 1)) {
				atomic_fetch_add(&s->inflight, 1);
				unprotect_wide(s, page);
				atomic_fetch_sub(&s->inflight, 1);
			}
			return;
		}
		atomic_fetch_add(&s->waits, 1);
		wait_gen(s, g); /* CLAIMED by the copier: wait for its memcpy */
	}
}

/* ---- userfaultfd messages: faults (handler-thread mode) and events ---- */

static bool drain(struct cow_mem_snap *s, size_t min);

/*
 * A mapping change over [lo, hi) (addresses): pages copied already are safe
 * in the image; any other page's content at the instant may be gone, so
 * the snapshot fails rather than deliver a wrong image.
 */
static void changed(struct cow_mem_snap *s, uintptr_t lo, uintptr_t hi)
{
	if (!atomic_load(&s->armed))
		return;
	for (size_t k = 0; k < s->nsegs; k++) {
		const struct seg *g = &s->segs[k];
		uintptr_t a = (uintptr_t)g->addr, b = a + g->size;
		if (hi <= a || lo >= b)
			continue;
		size_t p0 = g->first + ((COW_MAX(lo, a) - a) >> COW__PAGE_SHIFT);
		size_t p1 = g->first + ((COW_MIN(hi, b) - a + COW__PAGE - 1) >> COW__PAGE_SHIFT);
		/* With the view, a page not KEPT loses the content the view reads. */
		uint8_t safe = keeping(s) ? KEPT : DONE;
		for (size_t p = p0; p < p1; p++) {
			if (atomic_load_explicit(&s->state[p], memory_order_acquire) < safe) {
				fail_async(s, COW_MEM_ECHANGED);
				return;
			}
		}
	}
}

/* Handler-thread mode: a write (from user or kernel mode) trapped on @page. */
static void thread_fault(struct cow_mem_snap *s, size_t page, bool copier)
{
	uint8_t st = atomic_load_explicit(&s->state[page], memory_order_acquire);
	if (st == PENDING && !atomic_load(&s->failed)) {
		size_t lo = page & ~(s->fault_pages - 1);
		size_t hi = COW_MIN(lo + s->fault_pages, s->npages);
		/*
		 * Only this thread takes slots now: make room first, by growing
		 * (GROW) or by draining to the sink, which is what a writer
		 * waiting for buffer space means here (BLOCK; ABORT fails instead).
		 */
		bool stalled = false;
		while (atomic_load(&s->used) + (hi - lo) > s->nslots) {
			if (grow(s))
				continue;
			if (s->stall == COW_MEM_STALL_ABORT || !copier)
				break;
			if (!stalled) {
				stalled = true;
				atomic_fetch_add(&s->stalls, 1);
			}
			if (!drain(s, 0))
				break;
		}
		if (atomic_load(&s->used) >= s->nslots)
			lo = page, hi = page + 1;
		if (atomic_load(&s->used) >= s->nslots) {
			if (!stalled)
				atomic_fetch_add(&s->stalls, 1);
			if (s->stall == COW_MEM_STALL_ABORT) {
				fail_async(s, COW_EFULL);
				unprotect(s, page, 1);
				return;
			}
			/* With the view, kept slots come back only at the wait. */
			while (copier && atomic_load(&s->used) >= s->nslots &&
			       !atomic_load(&s->failed)) {
				uint32_t g = atomic_load(&s->gen);
				if (!drain(s, 0) && atomic_load(&s->used) >= s->nslots)
					wait_gen(s, g);
			}
		}
		for (size_t q = lo; q < hi; q++) {
			uint8_t pend = PENDING;
			if (atomic_load(&s->used) < s->nslots &&
			    atomic_compare_exchange_strong(&s->state[q], &pend, CLAIMED))
				copy_claimed(s, q);
		}
		if (unprotect_runs(s, lo, hi))
			unprotect_wide(s, page);
		atomic_fetch_add(&s->faults, 1);
		return;
	}
	if (st == DONE && keeping(s) && copier) {
		keep_page(s, page); /* only the copier takes slots in this mode */
		atomic_fetch_add(&s->faults, 1);
	} else if (st == DONE || st == KEPT) {
		atomic_fetch_add(&s->retraps, 1);
	}
	/* DONE, failed or (not here) CLAIMED: lift it, which wakes the writer. */
	unprotect(s, page, 1);
}

/*
 * Read every message waiting on the userfaultfd. Any thread may call it
 * (the copier between claims, a thread whose protection change got EAGAIN,
 * a signal handler); one reads at a time, the others return at once. In
 * SIGBUS mode only events arrive, whose handling is async-signal-safe.
 */
static void service(struct cow_mem_snap *s, bool copier)
{
	/* Handler-thread mode: only the copier reads (it alone takes slots then). */
	if (s->uffd < 0 || s->unregistered || (s->thread_mode && !copier))
		return;
	int zero = 0;
	if (!atomic_compare_exchange_strong(&s->svc_lock, &zero, 1))
		return;
	struct uffd_msg msg[16];
	for (;;) {
		/*
		 * Reading an event lets the program's madvise/munmap return; until
		 * the events of this batch are handled, `reading` tells end_view
		 * that a failure may still be on its way. Events go first, faults
		 * after (a fault may wait for a slot).
		 */
		atomic_store(&s->reading, 1);
		ssize_t n = read(s->uffd, msg, sizeof(msg));
		if (n < 0 && errno == EINTR) {
			atomic_store(&s->reading, 0);
			continue;
		}
		if (n <= 0) {
			atomic_store(&s->reading, 0);
			break;
		}
		size_t nm = (size_t)n / sizeof(msg[0]);
		for (size_t i = 0; i < nm; i++) {
			struct uffd_msg *m = &msg[i];
			if (m->event == UFFD_EVENT_REMOVE || m->event == UFFD_EVENT_UNMAP) {
				changed(s, (uintptr_t)m->arg.remove.start,
					(uintptr_t)m->arg.remove.end);
			} else if (m->event == UFFD_EVENT_REMAP) {
				uintptr_t from = (uintptr_t)m->arg.remap.from;
				changed(s, from, from + (uintptr_t)m->arg.remap.len);
			}
		}
		atomic_store(&s->reading, 0);
		for (size_t i = 0; i < nm; i++) {
			struct uffd_msg *m = &msg[i];
			if (m->event != UFFD_EVENT_PAGEFAULT)
				continue;
			uintptr_t a = (uintptr_t)m->arg.pagefault.address;
			const struct seg *g = seg_of_addr(s, a);
			if (g)
				thread_fault(
					s, g->first + ((a - (uintptr_t)g->addr) >> COW__PAGE_SHIFT),
					copier);
		}
	}
	atomic_store(&s->svc_lock, 0);
}

/* ---- the copier ---- */

static void bump(struct cow_mem_snap *s)
{
	atomic_fetch_add(&s->gen, 1);
	if (atomic_load(&s->waiters))
		cow__futex_wake(&s->gen);
}

static void fail(struct cow_mem_snap *s, int rc)
{
	if (!s->err)
		s->err = rc;
	fail_async(s, rc); /* readers of the view see it there */
}

static const struct cow_mem_snap *sort_snap; /* only the copier sorts; one at a time */
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static int by_page(const void *a, const void *b)
{
	uint32_t x = sort_snap->slot_page[*(const uint32_t *)a];
	uint32_t y = sort_snap->slot_page[*(const uint32_t *)b];
	return (x > y) - (x < y);
}

/*
 * Hand the queued slots to the sink, sorted by page, contiguous pages in
 * one vectored write (a fault block is contiguous), then free the slots.
 * Waits until at least @min slots are queued, so that sorting finds
 * neighbours; 0 drains whatever is there.
 */
static bool drain(struct cow_mem_snap *s, size_t min)
{
	if (min && atomic_load(&s->used) < min)
		return false;
	uint32_t top = atomic_exchange(&s->ready, 0);
	if (!top)
		return false;
	size_t n = 0;
	while (top) {
		s->order[n++] = top - 1;
		top = atomic_load_explicit(&s->slot_next[top - 1], memory_order_relaxed);
	}
	pthread_mutex_lock(&sort_lock);
	sort_snap = s;
	qsort(s->order, n, sizeof(uint32_t), by_page);
	pthread_mutex_unlock(&sort_lock);
	struct iovec iov[64];
	for (size_t i = 0; i < n;) {
		size_t j = i;
		const struct seg *g = seg_of_page(s, s->slot_page[s->order[i]]);
		size_t seg_end = g->first + g->npages;
		while (j < n && j - i < COW_ARRAY_SIZE(iov) &&
		       s->slot_page[s->order[j]] < seg_end &&
		       (j == i || s->slot_page[s->order[j]] == s->slot_page[s->order[j - 1]] + 1)) {
			iov[j - i].iov_base = s->buf + ((size_t)s->order[j] << COW__PAGE_SHIFT);
			iov[j - i].iov_len = COW__PAGE;
			j++;
		}
		if (!atomic_load(&s->failed)) {
			int rc = cow__sink_writev(g->sink,
						  (uint64_t)(s->slot_page[s->order[i]] - g->first)
							  << COW__PAGE_SHIFT,
						  iov, (int)(j - i));
			if (rc)
				fail(s, rc);
		}
		for (size_t k = i; k < j; k++) {
			size_t slot = s->order[k];
			if (s->view && atomic_load(&s->kept[slot]) == 1)
				retain(s, slot); /* the view still reads it */
			else
				slot_free(s, slot);
		}
		i = j;
	}
	bump(s);
	return true;
}

/*
 * Lift the protection of [lo, hi), where every page is DONE or CLAIMED by a
 * writer (which lifts its own page when it is done). One ioctl per run of
 * DONE pages: each call flushes TLBs on every CPU running the program, an
 * IPI that costs tens of microseconds when the other vCPU is idle, so the
 * copier lifts a whole stage at a time instead of once per run.
 */
static void unprotect_done(struct cow_mem_snap *s, size_t lo, size_t hi)
{
	int rc = unprotect_runs(s, lo, hi);
	if (rc)
		fail(s, rc);
}

/*
 * The copier streams the region a stage (up to 2 MiB) at a time: claim runs
 * of pending pages, memcpy them into the stage and mark them DONE (a writer
 * that traps on a claimed page waits only for that memcpy, never for the
 * sink), lift the protection of the whole stage in one go, and only then
 * hand the staged runs to the sink.
 */
struct run {
	size_t page, n, at;
};

/*
 * Every page is DONE (or the snapshot failed): lift what protection is
 * left, read the last messages and unregister, so that no later fault or
 * event of the program waits for this snapshot.
 */
static void finish_uffd(struct cow_mem_snap *s)
{
	if (atomic_load(&s->failed))
		unprotect_all(s); /* release every writer now */
	if (s->uffd < 0)
		return;
	service(s, true);
	while (atomic_exchange(&s->svc_lock, 1))
		sched_yield();
	for (size_t k = 0; k < s->nsegs; k++)
		cow__uffd_unregister(s->uffd, s->segs[k].addr, s->segs[k].size);
	s->unregistered = true;
	atomic_store(&s->svc_lock, 0);
}

static void stream(struct cow_mem_snap *s)
{
	struct run runs[STAGE_PAGES + 1]; /* a run per page at worst (one-page regions) */
	size_t next = 0;
	while (next < s->npages && !atomic_load(&s->failed)) {
		drain(s, s->nslots / 8);
		size_t end = COW_MIN(next + s->stage_pages, s->npages), i = next, used = 0;
		size_t nruns = 0;
		while (i < end) {
			size_t j = i,
			       lim = COW_MIN(COW_MIN(end, i + CLAIM_PAGES), i + seg_left(s, i));
			while (j < lim) {
				uint8_t want = PENDING;
				if (!atomic_compare_exchange_strong(&s->state[j], &want, CLAIMED))
					break;
				j++;
			}
			if (j > i) {
				char *dst = s->stage + (used << COW__PAGE_SHIFT);
				if (cow__copy_guarded(dst, page_addr(s, i),
						      (j - i) << COW__PAGE_SHIFT))
					fail_async(s, COW_MEM_ECHANGED);
				else
					check_lost(s, i, j - i, dst);
				for (size_t k = i; k < j; k++)
					atomic_store_explicit(&s->state[k], DONE,
							      memory_order_release);
				bump(s);
				runs[nruns++] = (struct run){i, j - i, used};
				used += j - i;
			}
			i = j < lim ? j + 1 : j; /* page j was taken by a writer */
			service(s, true);
		}
		unprotect_done(s, next, end);
		for (size_t k = 0; k < nruns && !atomic_load(&s->failed); k++) {
			const struct seg *g = seg_of_page(s, runs[k].page);
			int rc = cow__sink_write(
				g->sink, (uint64_t)(runs[k].page - g->first) << COW__PAGE_SHIFT,
				s->stage + (runs[k].at << COW__PAGE_SHIFT),
				runs[k].n << COW__PAGE_SHIFT);
			if (rc)
				fail(s, rc);
		}
		next = end;
	}
	/*
	 * Writers may still be copying pages they claimed: wait for their
	 * slots. With the view, go on serving until cow_mem_snapshot_wait ends
	 * it, then lift the protection the view kept.
	 */
	for (;;) {
		uint32_t g = atomic_load(&s->cgen);
		service(s, true);
		if (drain(s, 0))
			continue;
		bool view_on = s->view && !atomic_load(&s->view_over) && !atomic_load(&s->failed);
		if (!view_on && atomic_load(&s->inflight) == 0 && atomic_load(&s->ready) == 0)
			break;
		atomic_store(&s->csleep, 1);
		if (atomic_load(&s->ready) == 0 && view_on && s->uffd >= 0) {
			/*
			 * The view keeps every page trapped after the stream: sleep
			 * on the userfaultfd, so that a fault (handler-thread mode)
			 * or an event is served at once, not after a futex timeout.
			 */
			struct pollfd pfd = {.fd = s->uffd, .events = POLLIN};
			poll(&pfd, 1, 1);
		} else if (atomic_load(&s->ready) == 0 &&
			   (atomic_load(&s->inflight) != 0 || view_on)) {
			cow__futex_wait(&s->cgen, g, 1000000);
		}
		atomic_store(&s->csleep, 0);
	}
	if (s->view && !atomic_load(&s->failed))
		unprotect_done(s, 0, s->npages);
	finish_uffd(s);
}

/*
 * Protect chunks of the region until none is left; the caller and the
 * copier both run this at the instant, so neither waits for the other to
 * get a CPU (on a busy machine the copier's vCPU may be taken).
 */
static void protect_chunks(struct cow_mem_snap *s)
{
	for (;;) {
		size_t at = atomic_fetch_add(&s->wp_next, (size_t)WP_CHUNK);
		if (at >= s->npages)
			return;
		int rc = protect(s, at, COW_MIN((size_t)WP_CHUNK, s->npages - at));
		if (rc)
			atomic_store(&s->wp_err, rc);
	}
}

static void *copier_main(void *arg)
{
	struct cow_mem_snap *s = arg;
	in_copier = true;
	for (;;) {
		uint32_t ph = atomic_load(&s->phase);
		if (ph != 0)
			break;
		/* Prepared, not armed: read events so no madvise waits on us. */
		service(s, true);
		cow__futex_wait(&s->phase, 0, 1000000);
	}
	if (atomic_load(&s->phase) == 1) {
		/* Help protect; `busy` goes up before taking a chunk (see start). */
		atomic_fetch_add(&s->wp_busy, 1);
		protect_chunks(s);
		atomic_fetch_sub(&s->wp_busy, 1);
		while (atomic_load(&s->phase) == 1) {
			service(s, true);
			cow__futex_wait(&s->phase, 1, 1000000);
		}
	}
	if (atomic_load(&s->phase) == 4) { /* the instant failed, or never came */
		finish_uffd(s);
		return NULL;
	}
	stream(s);
	return NULL;
}

/* ---- fork backend ---- */

static uint64_t self_private_dirty(void)
{
	/* Only async-signal-safe calls: this runs in the forked child. */
	int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char b[4096];
	ssize_t n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	b[n] = '\0';
	const char *p = strstr(b, "Private_Dirty:");
	if (!p)
		return 0;
	p += 14;
	while (*p == ' ')
		p++;
	uint64_t kb = 0;
	while (*p >= '0' && *p <= '9')
		kb = kb * 10 + (uint64_t)(*p++ - '0');
	return kb << 10;
}

static int write_all(int fd, const char *p, size_t len, int64_t off)
{
	while (len) {
		ssize_t n = off >= 0 ? pwrite(fd, p, len, off) : write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

/*
 * The child writes the regions in segment order: a region with an fd sink
 * straight into that fd, the others into the pipe, which pipe_main reads
 * back in the same order.
 */
static __attribute__((noreturn)) void child_main(struct cow_mem_snap *s, int status_fd)
{
	int rc = 0;
	for (size_t k = 0; k < s->nsegs && !rc; k++) {
		const struct seg *g = &s->segs[k];
		for (size_t off = 0; off < g->size && !rc; off += PIPE_CHUNK) {
			size_t len = COW_MIN(PIPE_CHUNK, g->size - off);
			if (g->direct_fd >= 0)
				rc = write_all(g->direct_fd, g->addr + off, len,
					       (int64_t)(g->direct_base + off));
			else
				rc = write_all(s->data_fd, g->addr + off, len, -1);
		}
	}
	int64_t msg[2] = {rc, (int64_t)self_private_dirty()};
	if (write_all(status_fd, (const char *)msg, sizeof(msg), -1))
		_exit(2);
	_exit(0);
}

static void *pipe_main(void *arg)
{
	struct cow_mem_snap *s = arg;
	char *b = cow__malloc(PIPE_CHUNK);
	if (!b) {
		s->err = COW_ENOMEM;
		return NULL; /* the child then fails writing: EPIPE */
	}
	for (size_t k = 0; k < s->nsegs; k++) {
		struct seg *g = &s->segs[k];
		if (g->direct_fd >= 0)
			continue;
		uint64_t off = 0;
		while (off < g->size) {
			size_t want = (size_t)COW_MIN((uint64_t)PIPE_CHUNK, g->size - off), got = 0;
			while (got < want) {
				ssize_t n = read(s->data_fd, b + got, want - got);
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					if (!s->err)
						s->err = n < 0 ? -errno : COW_EIO;
					cow__free(b);
					return NULL;
				}
				got += (size_t)n;
			}
			if (!s->err) {
				int rc = cow__sink_write(g->sink, off, b, want);
				if (rc)
					s->err = rc; /* keep reading so the child can finish */
			}
			off += want;
		}
	}
	cow__free(b);
	return NULL;
}

static int fork_start(struct cow_mem_snap *s)
{
	bool piped = false;
	for (size_t k = 0; k < s->nsegs; k++) {
		struct seg *g = &s->segs[k];
		g->direct_fd = cow__sink_fd(g->sink, &g->direct_base);
		piped |= g->direct_fd < 0;
	}
	int data[2] = {-1, -1}, status[2];
	if (pipe2(status, O_CLOEXEC))
		return -errno;
	if (piped) {
		if (pipe2(data, O_CLOEXEC)) {
			int err = -errno;
			close(status[0]);
			close(status[1]);
			return err;
		}
		fcntl(data[1], F_SETPIPE_SZ, PIPE_CHUNK);
		s->data_fd = data[1];
	}
	s->t0 = cow__now_ns();
	pid_t pid = fork();
	if (pid == 0) {
		close(status[0]);
		if (data[0] >= 0)
			close(data[0]);
		child_main(s, status[1]);
	}
	s->t_started = cow__now_ns();
	int err = pid < 0 ? -errno : 0;
	close(status[1]);
	if (data[1] >= 0)
		close(data[1]);
	s->data_fd = data[0];
	s->status_fd = status[0];
	s->child = pid;
	if (!err && piped) {
		err = -pthread_create(&s->copier, NULL, pipe_main, s);
		s->have_copier = !err;
		if (err) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	if (err) {
		close(status[0]);
		if (data[0] >= 0)
			close(data[0]);
	}
	return err;
}

static int fork_wait(struct cow_mem_snap *s)
{
	if (s->have_copier)
		pthread_join(s->copier, NULL);
	int64_t msg[2] = {COW_EIO, 0};
	size_t got = 0;
	while (got < sizeof(msg)) {
		ssize_t n = read(s->status_fd, (char *)msg + got, sizeof(msg) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	int st = 0;
	while (waitpid(s->child, &st, 0) < 0 && errno == EINTR)
		;
	close(s->status_fd);
	if (s->data_fd >= 0)
		close(s->data_fd);
	if (got < sizeof(msg) && !s->err)
		s->err = COW_EIO;
	if (!s->err && msg[0])
		s->err = (int)msg[0];
	s->extra_fork = (uint64_t)msg[1];
	return s->err;
}

/* ---- API ---- */

static void snap_free(struct cow_mem_snap *s)
{
	if (s->state)
		munmap((void *)s->state, s->npages);
	if (s->buf)
		munmap(s->buf, s->maxslots << COW__PAGE_SHIFT);
	if (s->stage)
		munmap(s->stage, s->stage_pages << COW__PAGE_SHIFT);
	cow__free((void *)s->used_bits);
	cow__free(s->slot_page);
	cow__free((void *)s->slot_next);
	cow__free(s->order);
	cow__free(s->samples);
	cow__free((void *)s->view_slot);
	cow__free((void *)s->kept);
	for (size_t k = 0; s->segs && k < s->nsegs; k++)
		cow__free(s->segs[k].data_bits);
	cow__free(s->segs);
	cow__free(s);
}

static cow_mem_backend pick(const cow_mem_snap_opts *o, int *why)
{
	cow_mem_backend b = o ? o->backend : COW_MEM_AUTO;
	*why = 0;
	if (b == COW_MEM_AUTO) {
		cow_mem_probe_info p;
		cow_mem_probe(&p);
		b = p.snapshot;
	}
	const struct cow__uffd_caps *c = cow__uffd_caps();
	if (b == COW_MEM_UFFD || b == COW_MEM_UFFD_THREAD) {
		if (c->error)
			*why = c->error;
		else if (!(c->features & COW__UFFD_WP) ||
			 (c->features & COW__UFFD_EVENTS) != COW__UFFD_EVENTS)
			*why = COW_EOPNOTSUPP;
		else if (b == COW_MEM_UFFD && !(c->features & COW__UFFD_SIGBUS))
			*why = COW_EOPNOTSUPP;
		else if (b == COW_MEM_UFFD_THREAD && !c->kernel)
			*why = COW_EPERM;
	} else if (b != COW_MEM_MPROTECT && b != COW_MEM_FORK) {
		*why = COW_EINVAL;
	}
	return b;
}

static int inthread_setup(struct cow_mem_snap *s, const cow_mem_snap_opts *o)
{
	size_t bytes = o && o->buffer ? o->buffer : (size_t)64 << 20;
	size_t budget = COW_MAX(bytes >> COW__PAGE_SHIFT, 2);
	unsigned fp = o && o->fault_pages ? o->fault_pages : DEFAULT_FAULT_PAGES;
	s->fault_pages = 1;
	while (s->fault_pages * 2 <= fp && s->fault_pages < 64)
		s->fault_pages *= 2;
	/* A stage covers whole 2 MiB-aligned blocks when the budget allows. */
	s->stage_pages = COW_MIN((size_t)STAGE_PAGES, budget / 4 ? budget / 4 : 1);
	size_t nslots = COW_MIN(budget - s->stage_pages, s->npages);
	s->stall = o ? o->stall : COW_MEM_STALL_BLOCK;
	s->maxslots = nslots;
	if (s->stall == COW_MEM_STALL_GROW) {
		size_t max = o->buffer_max ? o->buffer_max : 4 * bytes;
		size_t maxbudget = COW_MAX(max >> COW__PAGE_SHIFT, budget);
		s->maxslots = COW_MIN(maxbudget - s->stage_pages, s->npages);
	}
	s->grow_step = COW_MAX(nslots, (size_t)1);
	atomic_store(&s->nslots, nslots);
	s->stage = map_zeroed(s->stage_pages << COW__PAGE_SHIFT);
	s->nwords = (s->maxslots + 63) / 64;
	s->state = map_zeroed(s->npages);
	s->buf = map_zeroed(s->maxslots << COW__PAGE_SHIFT);
	s->used_bits = cow__calloc(s->nwords, sizeof(uint64_t));
	s->slot_page = cow__calloc(s->maxslots, sizeof(uint32_t));
	s->slot_next = cow__calloc(s->maxslots, sizeof(uint32_t));
	s->order = cow__calloc(s->maxslots, sizeof(uint32_t));
	s->samples = cow__calloc(NSAMPLES, sizeof(uint32_t));
	s->view = o && (o->flags & COW_MEM_SNAP_VIEW);
	if (s->view) {
		s->view_slot = cow__calloc(s->npages, sizeof(uint32_t));
		s->kept = cow__calloc(s->maxslots, 1);
		if (!s->view_slot || !s->kept)
			return COW_ENOMEM;
	}
	if (!s->state || !s->buf || !s->stage || !s->used_bits || !s->slot_page || !s->slot_next ||
	    !s->order || !s->samples)
		return COW_ENOMEM;
	if (s->npages > UINT32_MAX)
		return COW_EINVAL;
	/*
	 * Fault the buffer in now, before the instant: a first touch costs
	 * 1.4-11 us per page on these VMs and would land in the writers' faults.
	 */
	madvise(s->buf, nslots << COW__PAGE_SHIFT, 23 /* MADV_POPULATE_WRITE */);
	madvise(s->stage, s->stage_pages << COW__PAGE_SHIFT, 23);
	const struct seg *last = &s->segs[s->nsegs - 1];
	s->trap.start = (uintptr_t)s->segs[0].addr;
	s->trap.end = (uintptr_t)last->addr + last->size;
	s->trap.fault = snap_fault;
	s->trap.contains = s->nsegs > 1 ? trap_contains : NULL;
	s->trap.sig = s->backend == COW_MEM_UFFD ? SIGBUS : SIGSEGV;
	if (s->backend == COW_MEM_MPROTECT) {
		/* Discards are invisible to mprotect: remember which pages hold data. */
		s->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (s->pagemap < 0)
			return -errno;
		for (size_t k = 0; k < s->nsegs; k++) {
			struct seg *g = &s->segs[k];
			g->data_bits = cow__calloc((g->npages + 63) / 64, sizeof(uint64_t));
			if (!g->data_bits)
				return COW_ENOMEM;
		}
		if (!cow__uffd_caps()->pagemap_scan)
			return COW_EOPNOTSUPP;
	}
	if (s->backend != COW_MEM_MPROTECT) {
		const struct cow__uffd_caps *c = cow__uffd_caps();
		uint64_t f = COW__UFFD_EVENTS | (s->thread_mode ? COW__UFFD_WP : COW__UFFD_SIGBUS);
		bool unpop = c->features & COW__UFFD_WP_UNPOPULATED;
		if (unpop)
			f |= COW__UFFD_WP_UNPOPULATED;
		int fd = cow__uffd_open(f, s->thread_mode);
		if (fd < 0)
			return fd;
		s->uffd = fd;
		for (size_t k = 0; k < s->nsegs; k++) {
			struct seg *g = &s->segs[k];
			int rc = cow__uffd_register(fd, g->addr, g->size, UFFDIO_REGISTER_MODE_WP);
			if (rc)
				return rc;
			/*
			 * Without WP_UNPOPULATED a never-touched page has no PTE to
			 * carry the protection; map the zero page there first (no
			 * memory used).
			 */
			if (!unpop && (rc = cow__populate_read(g->addr, g->size)))
				return rc;
		}
	}
	if (s->thread_mode)
		return cow__trap_install(); /* for cow__copy_guarded only */
	return cow__trap_add(&s->trap);
}

/* End every begun sink with @status; the first error of an end, or 0. */
static int end_sinks(struct cow_mem_snap *s, int status)
{
	int rc = 0;
	for (size_t k = 0; k < s->nsegs; k++) {
		if (!s->segs[k].begun)
			continue;
		s->segs[k].begun = false;
		int r = cow__sink_end(s->segs[k].sink, status);
		if (r && !rc)
			rc = r;
	}
	return rc;
}

static void release_regions(struct cow_mem_snap *s)
{
	for (size_t k = 0; k < s->nsegs; k++)
		if (s->segs[k].r)
			cow__region_release(s->segs[k].r);
}

static int by_addr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct seg *)a)->addr;
	uintptr_t y = (uintptr_t)((const struct seg *)b)->addr;
	return (x > y) - (x < y);
}

/*
 * The view ends: no read may follow. Free the kept slots (a writer waiting
 * for one goes on) and let the copier lift the protection the view kept.
 */
static void end_view(struct cow_mem_snap *s)
{
	/*
	 * mprotect sees no discards, and a read of a streamed page the program
	 * discarded since (MADV_DONTNEED works on read-only pages) returned
	 * zeros: a page that held data at the instant, was never kept and holds
	 * none now fails the snapshot, so that the wait does not vouch for such
	 * a read. (userfaultfd reports discards as events: see changed().)
	 */
	/*
	 * A discard the program made before calling the wait has had its event
	 * read (madvise returns only then); wait until it is also handled, so
	 * that changed() still judges it with the view on.
	 */
	while (atomic_load(&s->reading))
		sched_yield();
	for (size_t k = 0; s->backend == COW_MEM_MPROTECT && k < s->nsegs; k++) {
		struct seg *g = &s->segs[k];
		uint64_t *now = cow__calloc((g->npages + 63) / 64, sizeof(uint64_t));
		if (!now || cow__pagemap_data(s->pagemap, g->addr, g->size, now)) {
			fail_async(s, now ? COW_EIO : COW_ENOMEM);
			cow__free(now);
			break;
		}
		for (size_t p = 0; p < g->npages; p++) {
			uint8_t st = atomic_load(&s->state[g->first + p]);
			if (st == DONE && (g->data_bits[p / 64] >> (p % 64) & 1) &&
			    !(now[p / 64] >> (p % 64) & 1)) {
				fail_async(s, COW_MEM_ECHANGED);
				break;
			}
		}
		cow__free(now);
	}
	atomic_store(&s->view_over, 1);
	for (size_t k = 0; k < s->maxslots; k++) {
		uint8_t two = 2;
		if (atomic_compare_exchange_strong(&s->kept[k], &two, 0))
			slot_free(s, k);
	}
	bump(s);
	atomic_fetch_add(&s->cgen, 1);
	cow__futex_wake(&s->cgen);
}

/* Undo a prepare, or a failed instant. */
static int abandon(struct cow_mem_snap *s, int rc)
{
	if (s->have_copier) {
		atomic_store(&s->phase, 4);
		cow__futex_wake(&s->phase);
		pthread_join(s->copier, NULL);
	}
	if (s->backend == COW_MEM_MPROTECT && atomic_load(&s->armed))
		unprotect_all(s);
	if (!s->thread_mode)
		cow__trap_remove(&s->trap);
	if (s->uffd >= 0)
		close(s->uffd);
	if (s->pagemap >= 0)
		close(s->pagemap);
	end_sinks(s, rc);
	release_regions(s);
	snap_free(s);
	return rc;
}

int cow_mem_snapshot_prepare_many(cow_mem_region **rs, size_t n, cow_mem_sink **sinks,
				  const cow_mem_snap_opts *opts, cow_mem_snap **out)
{
	if (!out)
		return COW_EINVAL;
	*out = NULL;
	if (!rs || !sinks || n == 0 || n > SIZE_MAX / sizeof(struct seg))
		return COW_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!rs[i] || !sinks[i])
			return COW_EINVAL;
		for (size_t j = 0; j < i; j++)
			if (sinks[j] == sinks[i])
				return COW_EINVAL; /* one sink per region */
	}
	if (opts &&
	    ((unsigned)opts->stall > COW_MEM_STALL_ABORT || (opts->flags & ~COW_MEM_SNAP_VIEW)))
		return COW_EINVAL;
	int why;
	cow_mem_backend b = pick(opts, &why);
	if (why)
		return why;
	if (b == COW_MEM_FORK && opts && (opts->flags & COW_MEM_SNAP_VIEW))
		return COW_EOPNOTSUPP; /* the instant's pages live in the child */
	struct cow_mem_snap *s = cow__calloc(1, sizeof(*s));
	struct seg *segs = cow__calloc(n, sizeof(*segs));
	if (!s || !segs) {
		cow__free(s);
		cow__free(segs);
		return COW_ENOMEM;
	}
	s->segs = segs;
	s->nsegs = n;
	for (size_t i = 0; i < n; i++) {
		segs[i] = (struct seg){.sink = sinks[i],
				       .addr = rs[i]->addr,
				       .size = rs[i]->size,
				       .npages = rs[i]->size >> COW__PAGE_SHIFT,
				       .index = i,
				       .direct_fd = -1};
	}
	qsort(segs, n, sizeof(*segs), by_addr);
	int rc = 0;
	for (size_t k = 0; k < n; k++) {
		/* The same region twice, or two regions that overlap. */
		if (k && segs[k].addr < segs[k - 1].addr + segs[k - 1].size) {
			rc = COW_EINVAL;
			goto fail;
		}
		segs[k].first = s->npages;
		s->npages += segs[k].npages;
		if (segs[k].index == 0)
			s->first_seg = &segs[k];
	}
	for (size_t k = 0; k < n; k++) {
		cow_mem_region *r = rs[segs[k].index];
		if ((rc = cow__region_claim(r, COW__R_SNAP)))
			goto fail;
		segs[k].r = r;
	}
	/* A thread blocking the signal would be killed by its first trapped write. */
	if (b == COW_MEM_UFFD || b == COW_MEM_MPROTECT) {
		rc = cow__check_sigmask(b == COW_MEM_UFFD ? SIGBUS : SIGSEGV);
		if (rc)
			goto fail;
	}
	s->t_prep = cow__now_ns();
	s->backend = b;
	s->thread_mode = b == COW_MEM_UFFD_THREAD;
	s->uffd = -1;
	s->pagemap = -1;
	s->data_fd = -1;
	s->status_fd = -1;
	s->threads = opts && opts->threads ? opts->threads : cow__ncpu();

	for (size_t k = 0; k < n; k++) {
		rc = cow__sink_begin(segs[k].sink, COW_MEM_IMAGE_FULL, segs[k].size);
		if (rc)
			goto fail;
		segs[k].begun = true;
	}
	if (b == COW_MEM_FORK) {
		*out = s;
		return 0;
	}
	rc = inthread_setup(s, opts);
	if (!rc) {
		rc = -pthread_create(&s->copier, NULL, copier_main, s);
		s->have_copier = !rc;
	}
	if (rc)
		return abandon(s, rc);
	*out = s;
	return 0;
fail:
	end_sinks(s, rc);
	release_regions(s);
	snap_free(s);
	return rc;
}

int cow_mem_snapshot_prepare(cow_mem_region *r, cow_mem_sink *sink, const cow_mem_snap_opts *opts,
			     cow_mem_snap **out)
{
	return cow_mem_snapshot_prepare_many(&r, 1, &sink, opts, out);
}

int cow_mem_snapshot_instant(cow_mem_snap *s)
{
	if (!s || s->instant_done)
		return COW_EINVAL;
	s->instant_done = true;
	if (s->backend == COW_MEM_FORK) {
		s->instant_rc = fork_start(s);
		return s->instant_rc;
	}
	bool may_split = s->backend != COW_MEM_MPROTECT && s->threads > 1;
	atomic_store(&s->armed, 1);

	/*
	 * The instant: nobody writes the region until we return. Protect a
	 * first probe of PROBE_PAGES alone and time it; only if the rest would
	 * take long enough to be worth waking the copier's vCPU (tens of us
	 * here) is the rest split between both threads. THP regions need one
	 * PMD update per 2 MiB and never get there; 4 KiB regions of a few
	 * hundred MiB and up do.
	 */
	s->t0 = cow__now_ns();
	size_t first = COW_MIN(s->npages, (size_t)PROBE_PAGES);
	int rc = protect(s, 0, first);
	uint64_t dt = cow__now_ns() - s->t0;
	size_t rest = s->npages - first;
	bool parallel = !rc && may_split && rest >= 1024 &&
			(double)dt * (double)rest / (double)first > (double)SPLIT_NS;
	atomic_store(&s->wp_next, first);
	if (parallel) {
		atomic_store(&s->phase, 1);
		cow__futex_wake(&s->phase);
	}
	if (!rc) {
		protect_chunks(s);
		/*
		 * Our last chunk claim came back past the end; a copier chunk is
		 * still in flight only if it raised `busy` before that claim.
		 */
		while (atomic_load(&s->wp_busy) != 0)
			sched_yield();
		rc = atomic_load(&s->wp_err);
	}
	/* mprotect: which pages hold data at the instant (see check_lost). */
	for (size_t k = 0; !rc && s->backend == COW_MEM_MPROTECT && k < s->nsegs; k++) {
		struct seg *g = &s->segs[k];
		rc = cow__pagemap_data(s->pagemap, g->addr, g->size, g->data_bits);
	}
	s->t_started = cow__now_ns();
	if (!rc)
		rc = atomic_load(&s->aerr);
	s->instant_rc = rc;
	if (rc) {
		atomic_store(&s->phase, 4);
		cow__futex_wake(&s->phase);
		pthread_join(s->copier, NULL);
		s->have_copier = false;
		if (s->backend == COW_MEM_MPROTECT)
			unprotect_all(s);
		return rc;
	}
	atomic_store(&s->phase, 3);
	cow__futex_wake(&s->phase);
	return 0;
}

int cow_mem_snapshot_start_many(cow_mem_region **rs, size_t n, cow_mem_sink **sinks,
				const cow_mem_snap_opts *opts, cow_mem_snap **out)
{
	int rc = cow_mem_snapshot_prepare_many(rs, n, sinks, opts, out);
	if (rc)
		return rc;
	rc = cow_mem_snapshot_instant(*out);
	if (rc) {
		cow_mem_snapshot_wait(*out, NULL);
		*out = NULL;
	}
	return rc;
}

int cow_mem_snapshot_start(cow_mem_region *r, cow_mem_sink *sink, const cow_mem_snap_opts *opts,
			   cow_mem_snap **out)
{
	int rc = cow_mem_snapshot_prepare(r, sink, opts, out);
	if (rc)
		return rc;
	rc = cow_mem_snapshot_instant(*out);
	if (rc) {
		cow_mem_snapshot_wait(*out, NULL);
		*out = NULL;
	}
	return rc;
}

int cow_mem_snapshot_wait(cow_mem_snap *s, cow_mem_snap_stats *st)
{
	if (!s)
		return COW_EINVAL;
	if (!s->instant_done || s->instant_rc) {
		/* Prepared only, or the instant failed: nothing to wait for. */
		int rc = s->instant_done ? s->instant_rc : COW_MEM_ECANCELED;
		if (st) {
			memset(st, 0, sizeof(*st));
			st->backend = s->backend;
		}
		if (s->backend == COW_MEM_FORK) {
			end_sinks(s, rc);
			release_regions(s);
			snap_free(s);
			return rc;
		}
		return abandon(s, rc);
	}
	if (s->backend == COW_MEM_FORK) {
		fork_wait(s);
	} else {
		if (s->view)
			end_view(s);
		pthread_join(s->copier, NULL);
		/* Everything is DONE; lift any protection left (after a failure). */
		if (s->backend == COW_MEM_MPROTECT) {
			int rc = unprotect_all(s);
			if (rc && !s->err && !atomic_load(&s->aerr))
				s->err = rc;
		}
		if (!s->thread_mode)
			cow__trap_remove(&s->trap);
		if (s->uffd >= 0)
			close(s->uffd);
		if (s->pagemap >= 0)
			close(s->pagemap);
		if (!s->err)
			s->err = atomic_load(&s->aerr);
	}
	int end = end_sinks(s, s->err);
	if (!s->err && end)
		s->err = end;
	uint64_t now = cow__now_ns();
	if (st) {
		memset(st, 0, sizeof(*st));
		st->backend = s->backend;
		st->prepare_ns = s->t0 > s->t_prep ? s->t0 - s->t_prep : 0;
		st->pause_ns = s->t_started - s->t0;
		st->total_ns = now - s->t0;
		st->pages = s->err ? 0 : s->npages;
		st->faults = atomic_load(&s->faults);
		st->stalls = atomic_load(&s->stalls);
		st->retraps = atomic_load(&s->retraps);
		st->waits = atomic_load(&s->waits);
		st->grows = atomic_load(&s->grows);
		st->buffer_bytes = (uint64_t)(atomic_load(&s->nslots) + s->stage_pages)
				   << COW__PAGE_SHIFT;
		if (s->samples)
			st->fault_median_ns = cow__median(
				s->samples, COW_MIN(atomic_load(&s->nsamples), (uint64_t)NSAMPLES));
		st->extra_peak = s->backend == COW_MEM_FORK
					 ? s->extra_fork
					 : ((uint64_t)atomic_load(&s->peak) + s->stage_pages)
						   << COW__PAGE_SHIFT;
	}
	int err = s->err;
	release_regions(s);
	snap_free(s);
	return err;
}

int cow_mem_snapshot(cow_mem_region *r, cow_mem_sink *sink, const cow_mem_snap_opts *opts,
		     cow_mem_snap_stats *stats)
{
	cow_mem_snap *s;
	int rc = cow_mem_snapshot_start(r, sink, opts, &s);
	if (rc)
		return rc;
	return cow_mem_snapshot_wait(s, stats);
}

/*
 * Copy @n bytes at offset @in of global page @page as they were at the
 * instant: from the kept slot, or from the region while the page's state
 * stays below KEPT (it is still protected, so unchanged since the instant).
 */
static int view_page(struct cow_mem_snap *s, size_t page, size_t in, char *dst, size_t n)
{
	for (;;) {
		int err = atomic_load(&s->aerr);
		if (err)
			return err;
		uint8_t st = atomic_load_explicit(&s->state[page], memory_order_acquire);
		if (st == KEPT) {
			uint32_t slot = atomic_load(&s->view_slot[page]);
			if (!slot)
				continue; /* no slot only when the snapshot failed */
			memcpy(dst, s->buf + ((size_t)(slot - 1) << COW__PAGE_SHIFT) + in, n);
			return 0;
		}
		if (cow__copy_guarded(dst, page_addr(s, page) + in, n))
			return COW_MEM_ECHANGED;
		atomic_thread_fence(memory_order_acquire);
		/*
		 * Discards (which mprotect does not see) are caught later: by
		 * check_lost when the page is streamed or kept, and by end_view.
		 */
		if (atomic_load_explicit(&s->state[page], memory_order_acquire) < KEPT &&
		    !atomic_load(&s->failed))
			return 0;
	}
}

static int view_read(cow_mem_snap *s, const struct seg *g, size_t off, void *dst, size_t len)
{
	if (!s->view || !s->instant_done || s->instant_rc || atomic_load(&s->view_over))
		return COW_EINVAL;
	if (!dst && len)
		return COW_EINVAL;
	if (off > g->size || len > g->size - off)
		return COW_EINVAL;
	char *d = dst;
	while (len) {
		size_t page = g->first + (off >> COW__PAGE_SHIFT), in = off & (COW__PAGE - 1);
		size_t n = COW_MIN(len, (size_t)COW__PAGE - in);
		int rc = view_page(s, page, in, d, n);
		if (rc)
			return rc;
		d += n;
		off += n;
		len -= n;
	}
	return 0;
}

int cow_mem_snapshot_read(cow_mem_snap *s, size_t off, void *dst, size_t len)
{
	if (!s || !s->first_seg)
		return COW_EINVAL;
	return view_read(s, s->first_seg, off, dst, len);
}

int cow_mem_snapshot_read_addr(cow_mem_snap *s, const void *addr, void *dst, size_t len)
{
	if (!s || !s->segs)
		return COW_EINVAL;
	const struct seg *g = seg_of_addr(s, (uintptr_t)addr);
	if (!g)
		return COW_EINVAL;
	return view_read(s, g, (size_t)((uintptr_t)addr - (uintptr_t)g->addr), dst, len);
}
