/*
 * Dirty tracking and incremental checkpoints.
 *
 * COW_MEM_UFFD_ASYNC (Linux 6.7+): the region is registered with a
 * userfaultfd opened with WP_ASYNC, and write-protected once. A first write
 * to a protected page is resolved by the kernel (no signal, no thread) and
 * leaves the page "written". A checkpoint asks PAGEMAP_SCAN for the written
 * pages and re-protects them in the same walk (get-and-clear), so its cost
 * follows the dirty set, not the region.
 *
 * Fallbacks (COW_MEM_UFFD with SIGBUS, or COW_MEM_MPROTECT): the first write
 * to a protected page traps in the writing thread, whose handler sets the
 * page's bit in a bitmap and unprotects it; a checkpoint walks the bitmap,
 * delivers runs of set bits and re-protects them.
 *
 * COW_MEM_UFFD_THREAD: like the bitmap fallbacks, but a tracking thread
 * reads the first-write faults from the userfaultfd (so system calls may
 * write into the region, and no signal is involved).
 *
 * Mapping changes: with the userfaultfd backends a tracking thread reads
 * the events (a madvise caller waits until they are read). Pages discarded
 * with MADV_DONTNEED/MADV_FREE now read as zeros, so they go into the next
 * checkpoint; munmap or mremap make the next checkpoint fail with
 * COW_MEM_ECHANGED (and the one after that is full). The mprotect fallback
 * cannot see discards: a checkpoint compares the pages that held data at
 * the previous one with PAGEMAP_SCAN and delivers those that lost it.
 *
 * A checkpoint runs with the region quiescent (see cow/mem.h), so the pages
 * it copies cannot change under it. The first checkpoint after
 * cow_mem_track_start delivers everything; a checkpoint whose sink failed
 * leaves tracking armed but forces the next one to be full again, because
 * the dirty set it collected is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem/mem.h"

struct cow__track {
	struct cow__trap trap; /* first: the fault handler gets a trap pointer */
	cow_mem_region *r;
	cow_mem_backend backend;
	int uffd, pagemap;
	bool full_next;
	bool trapped; /* trap is in the table */
	_Atomic uint64_t *bits;
	size_t nwords;
	_Atomic int broken; /* the mapping moved or went away: COW_MEM_ECHANGED */
	int stop[2];	    /* pipe: wakes the tracking thread to exit */
	pthread_t thread;
	bool have_thread;
	/*
	 * Held by the tracking thread from reading a batch of messages to having
	 * marked their pages. Reading a REMOVE event already lets the madvise
	 * caller go on, so a checkpoint takes it too: it then sees every page
	 * an event it raised has marked.
	 */
	pthread_mutex_t evmu;
	uint64_t *data; /* mprotect: pages that held data at the last checkpoint */
};

static int track_protect(struct cow__track *t, size_t off, size_t len, bool wp);

static void mark(struct cow__track *t, uintptr_t lo, uintptr_t hi)
{
	uintptr_t base = (uintptr_t)t->r->addr, top = base + t->r->size;
	lo = COW_MAX(lo, base);
	hi = COW_MIN(hi, top);
	for (uintptr_t a = lo & ~(uintptr_t)(COW__PAGE - 1); a < hi; a += COW__PAGE) {
		size_t p = (a - base) >> COW__PAGE_SHIFT;
		atomic_fetch_or(&t->bits[p / 64], 1ull << (p % 64));
	}
}

/* The tracking thread: first-write faults (handler-thread mode) and events. */
static void *track_main(void *arg)
{
	struct cow__track *t = arg;
	uintptr_t base = (uintptr_t)t->r->addr;
	for (;;) {
		struct pollfd pf[2] = {{.fd = t->uffd, .events = POLLIN},
				       {.fd = t->stop[0], .events = POLLIN}};
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		/*
		 * Faults are unprotected (which wakes the writer) after the batch:
		 * EAGAIN there means an event waits to be read, by this thread.
		 */
		uintptr_t pend[64];
		size_t np = 0;
		pthread_mutex_lock(&t->evmu);
	again:;
		struct uffd_msg msg[16];
		ssize_t n = read(t->uffd, msg, sizeof(msg));
		for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(msg[0]); i++) {
			struct uffd_msg *m = &msg[i];
			if (m->event == UFFD_EVENT_PAGEFAULT) {
				uintptr_t a = (uintptr_t)m->arg.pagefault.address &
					      ~(uintptr_t)(COW__PAGE - 1);
				mark(t, a, a + COW__PAGE);
				if (np < COW_ARRAY_SIZE(pend))
					pend[np++] = a;
			} else if (m->event == UFFD_EVENT_REMOVE) {
				mark(t, (uintptr_t)m->arg.remove.start,
				     (uintptr_t)m->arg.remove.end);
			} else if (m->event == UFFD_EVENT_UNMAP || m->event == UFFD_EVENT_REMAP) {
				atomic_store(&t->broken, COW_MEM_ECHANGED);
			}
		}
		while (np) {
			int rc = cow__uffd_wp_once(t->uffd, (void *)pend[np - 1], COW__PAGE, false);
			if (rc == -EAGAIN)
				goto again;
			np--;
		}
		pthread_mutex_unlock(&t->evmu);
		(void)base;
	}
	return NULL;
}

static int track_protect(struct cow__track *t, size_t off, size_t len, bool wp)
{
	char *p = t->r->addr + off;
	if (t->backend == COW_MEM_MPROTECT)
		return mprotect(p, len, wp ? PROT_READ : PROT_READ | PROT_WRITE) ? -errno : 0;
	return cow__uffd_wp(t->uffd, p, len, wp);
}

static void track_fault(struct cow__trap *trap, uintptr_t addr)
{
	struct cow__track *t = (struct cow__track *)trap;
	size_t page = (addr - trap->start) >> COW__PAGE_SHIFT;
	atomic_fetch_or(&t->bits[page / 64], 1ull << (page % 64));
	track_protect(t, page << COW__PAGE_SHIFT, COW__PAGE, false);
}

static void track_free(struct cow__track *t)
{
	if (t->have_thread) {
		(void)!write(t->stop[1], "x", 1);
		pthread_join(t->thread, NULL);
	}
	if (t->stop[0] >= 0) {
		close(t->stop[0]);
		close(t->stop[1]);
	}
	cow__free(t->data);
	if (t->trapped)
		cow__trap_remove(&t->trap);
	if (t->uffd >= 0)
		close(t->uffd); /* clears the protection of the whole range */
	else if (t->backend == COW_MEM_MPROTECT)
		mprotect(t->r->addr, t->r->size, PROT_READ | PROT_WRITE);
	if (t->pagemap >= 0)
		close(t->pagemap);
	cow__free((void *)t->bits);
	pthread_mutex_destroy(&t->evmu);
	cow__free(t);
}

int cow_mem_track_start(cow_mem_region *r, cow_mem_backend backend)
{
	if (!r)
		return COW_EINVAL;
	cow_mem_probe_info p;
	cow_mem_probe(&p);
	if (backend == COW_MEM_AUTO)
		backend = p.track;
	if (backend == COW_MEM_UFFD_ASYNC && !(p.wp_async && p.pagemap_scan && !p.uffd_error))
		return COW_EOPNOTSUPP;
	if (backend == COW_MEM_AUTO) /* nothing that survives system calls here */
		return COW_EOPNOTSUPP;
	if (backend == COW_MEM_UFFD && (p.uffd_error || !p.wp || !p.sigbus))
		return p.uffd_error ? p.uffd_error : COW_EOPNOTSUPP;
	if (backend == COW_MEM_UFFD_THREAD && (p.uffd_error || !p.wp || !p.uffd_kernel))
		return p.uffd_error ? p.uffd_error : COW_EPERM;
	if (backend != COW_MEM_UFFD_ASYNC && backend != COW_MEM_UFFD &&
	    backend != COW_MEM_UFFD_THREAD && backend != COW_MEM_MPROTECT)
		return COW_EINVAL;
	int rc = cow__region_claim(r, COW__R_TRACK);
	if (rc)
		return rc;
	/* Tracking stays armed indefinitely: a thread blocking the signal would die. */
	if ((backend == COW_MEM_UFFD || backend == COW_MEM_MPROTECT) &&
	    (rc = cow__check_sigmask(backend == COW_MEM_UFFD ? SIGBUS : SIGSEGV))) {
		cow__region_release(r);
		return rc;
	}
	struct cow__track *t = cow__calloc(1, sizeof(*t));
	if (!t) {
		cow__region_release(r);
		return COW_ENOMEM;
	}
	t->r = r;
	t->backend = backend;
	t->uffd = -1;
	t->pagemap = -1;
	t->stop[0] = t->stop[1] = -1;
	pthread_mutex_init(&t->evmu, NULL);
	t->full_next = true;
	size_t npages = r->size >> COW__PAGE_SHIFT;
	t->nwords = (npages + 63) / 64;
	t->bits = cow__calloc(t->nwords, sizeof(uint64_t));
	if (!t->bits) {
		rc = COW_ENOMEM;
		goto fail;
	}
	if (backend != COW_MEM_UFFD) {
		t->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (t->pagemap < 0) {
			rc = -errno;
			goto fail;
		}
	}
	if (backend == COW_MEM_MPROTECT && p.pagemap_scan) {
		t->data = cow__calloc(t->nwords, sizeof(uint64_t));
		if (!t->data) {
			rc = COW_ENOMEM;
			goto fail;
		}
	}
	if (backend == COW_MEM_UFFD_ASYNC || backend == COW_MEM_UFFD_THREAD) {
		uint64_t f = COW__UFFD_WP | COW__UFFD_EVENTS;
		if (backend == COW_MEM_UFFD_ASYNC)
			f |= COW__UFFD_WP_ASYNC;
		if (p.wp_unpopulated)
			f |= COW__UFFD_WP_UNPOPULATED;
		rc = cow__uffd_open(f, backend == COW_MEM_UFFD_THREAD);
		if (rc < 0)
			goto fail;
		t->uffd = rc;
	} else {
		t->trap.start = (uintptr_t)r->addr;
		t->trap.end = (uintptr_t)r->addr + r->size;
		t->trap.fault = track_fault;
		t->trap.sig = backend == COW_MEM_UFFD ? SIGBUS : SIGSEGV;
		if (backend == COW_MEM_UFFD) {
			uint64_t f = COW__UFFD_SIGBUS | COW__UFFD_EVENTS;
			if (p.wp_unpopulated)
				f |= COW__UFFD_WP_UNPOPULATED;
			rc = cow__uffd_open(f, false);
			if (rc < 0)
				goto fail;
			t->uffd = rc;
		}
		rc = cow__trap_add(&t->trap);
		if (rc)
			goto fail;
		t->trapped = true;
	}
	if (t->uffd >= 0) {
		rc = cow__uffd_register(t->uffd, r->addr, r->size, UFFDIO_REGISTER_MODE_WP);
		if (rc)
			goto fail;
		if (!p.wp_unpopulated && (rc = cow__populate_read(r->addr, r->size)))
			goto fail;
	}
	if (t->uffd >= 0) {
		/* Someone must read the events at once: a madvise caller waits for it. */
		if (pipe2(t->stop, O_CLOEXEC)) {
			rc = -errno;
			t->stop[0] = t->stop[1] = -1;
			goto fail;
		}
		rc = -pthread_create(&t->thread, NULL, track_main, t);
		if (rc)
			goto fail;
		t->have_thread = true;
	}
	rc = track_protect(t, 0, r->size, true);
	if (rc)
		goto fail;
	r->track = t;
	return 0;
fail:
	track_free(t);
	cow__region_release(r);
	return rc;
}

void cow_mem_track_stop(cow_mem_region *r)
{
	if (!r || !r->track)
		return;
	track_free(r->track);
	r->track = NULL;
	cow__region_release(r);
}

struct emit {
	struct cow__track *t;
	cow_mem_sink *sink;
	uint64_t pages, runs;
};

static int emit_run(void *ctx, size_t off, size_t len)
{
	struct emit *e = ctx;
	e->pages += len >> COW__PAGE_SHIFT;
	e->runs++;
	return cow__sink_write(e->sink, off, e->t->r->addr + off, len);
}

/* Fallback backends: deliver runs of set bits, clear them and re-protect. */
static int bitmap_runs(struct cow__track *t, struct emit *e)
{
	size_t npages = t->r->size >> COW__PAGE_SHIFT;
	size_t i = 0;
	int rc = 0;
	while (i < npages) {
		uint64_t w = atomic_load(&t->bits[i / 64]) >> (i % 64);
		if (!w) {
			i = (i / 64 + 1) * 64;
			continue;
		}
		i += (size_t)__builtin_ctzll(w);
		size_t j = i;
		while (j < npages && (atomic_load(&t->bits[j / 64]) >> (j % 64) & 1)) {
			atomic_fetch_and(&t->bits[j / 64], ~(1ull << (j % 64)));
			j++;
		}
		int prc = track_protect(t, i << COW__PAGE_SHIFT, (j - i) << COW__PAGE_SHIFT, true);
		if (!rc)
			rc = prc;
		if (!rc)
			rc = emit_run(e, i << COW__PAGE_SHIFT, (j - i) << COW__PAGE_SHIFT);
		i = j;
	}
	return rc;
}

static int discard_run(void *ctx, size_t off, size_t len)
{
	(void)ctx;
	(void)off;
	(void)len;
	return 0;
}

/* PAGEMAP_SCAN's written runs join the pages marked by events. */
static int mark_run(void *ctx, size_t off, size_t len)
{
	struct cow__track *t = ctx;
	mark(t, (uintptr_t)t->r->addr + off, (uintptr_t)t->r->addr + off + len);
	return 0;
}

/*
 * mprotect: pages that held data at the previous checkpoint and hold none
 * now were discarded (they read as zeros): mark them. Then remember now.
 */
static int mark_lost(struct cow__track *t, bool full)
{
	if (!t->data)
		return 0;
	uint64_t *now = cow__calloc(t->nwords, sizeof(uint64_t));
	if (!now)
		return COW_ENOMEM;
	int rc = cow__pagemap_data(t->pagemap, t->r->addr, t->r->size, now);
	if (!rc) {
		for (size_t w = 0; w < t->nwords; w++) {
			if (!full && (t->data[w] & ~now[w]))
				atomic_fetch_or(&t->bits[w], t->data[w] & ~now[w]);
			t->data[w] = now[w];
		}
	}
	cow__free(now);
	return rc;
}

int cow_mem_checkpoint(cow_mem_region *r, cow_mem_sink *sink, cow_mem_ckpt_stats *st)
{
	if (st)
		memset(st, 0, sizeof(*st));
	if (!r || !sink || !r->track)
		return COW_EINVAL;
	struct cow__track *t = r->track;
	uint64_t t0 = cow__now_ns();
	/* Events already read (their madvise returned) are marked once this is free. */
	pthread_mutex_lock(&t->evmu);
	pthread_mutex_unlock(&t->evmu);
	bool full = t->full_next;
	struct emit e = {.t = t, .sink = sink};
	int rc = atomic_load(&t->broken);
	if (rc) {
		/* The mapping changed: what was tracked no longer describes it. */
		if (st)
			st->backend = t->backend;
		t->full_next = true;
		return rc;
	}
	rc = mark_lost(t, full);
	if (!rc)
		rc = cow__sink_begin(sink, full ? COW_MEM_IMAGE_FULL : COW_MEM_IMAGE_DELTA,
				     r->size);
	uint64_t scan = 0;
	if (!rc) {
		if (full) {
			/* Re-arm everything, then deliver everything. */
			uint64_t s0 = cow__now_ns();
			for (size_t w = 0; w < t->nwords; w++)
				atomic_store(&t->bits[w], 0);
			if (t->backend == COW_MEM_UFFD_ASYNC) {
				rc = cow__pagemap_written(t->pagemap, r->addr, r->size, discard_run,
							  NULL);
			} else {
				rc = track_protect(t, 0, r->size, true);
			}
			scan = cow__now_ns() - s0;
			if (!rc)
				rc = emit_run(&e, 0, r->size);
		} else {
			if (t->backend == COW_MEM_UFFD_ASYNC)
				rc = cow__pagemap_written(t->pagemap, r->addr, r->size, mark_run,
							  t);
			if (!rc)
				rc = bitmap_runs(t, &e);
		}
	}
	int end = cow__sink_end(sink, rc);
	if (!rc)
		rc = end;
	t->full_next = rc != 0;
	if (st) {
		st->backend = t->backend;
		st->pages = e.pages;
		st->runs = e.runs;
		st->scan_ns = full ? scan : cow__now_ns() - t0;
		st->total_ns = cow__now_ns() - t0;
		st->full = full;
	}
	return rc;
}
