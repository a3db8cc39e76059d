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
 * A checkpoint runs with the region quiescent (see cow/mem.h), so the pages
 * it copies cannot change under it. The first checkpoint after
 * cow_mem_track_start delivers everything; a checkpoint whose sink failed
 * leaves tracking armed but forces the next one to be full again, because
 * the dirty set it collected is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
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
};

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
	if (t->trapped)
		cow__trap_remove(&t->trap);
	if (t->uffd >= 0)
		close(t->uffd); /* clears the protection of the whole range */
	else if (t->backend == COW_MEM_MPROTECT)
		mprotect(t->r->addr, t->r->size, PROT_READ | PROT_WRITE);
	if (t->pagemap >= 0)
		close(t->pagemap);
	cow__free((void *)t->bits);
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
	if (backend == COW_MEM_UFFD && (p.uffd_error || !p.wp || !p.sigbus))
		return p.uffd_error ? p.uffd_error : COW_EOPNOTSUPP;
	if (backend != COW_MEM_UFFD_ASYNC && backend != COW_MEM_UFFD && backend != COW_MEM_MPROTECT)
		return COW_EINVAL;
	int rc = cow__region_claim(r, COW__R_TRACK);
	if (rc)
		return rc;
	struct cow__track *t = cow__calloc(1, sizeof(*t));
	if (!t) {
		cow__region_release(r);
		return COW_ENOMEM;
	}
	t->r = r;
	t->backend = backend;
	t->uffd = -1;
	t->pagemap = -1;
	t->full_next = true;
	if (backend == COW_MEM_UFFD_ASYNC) {
		uint64_t f = COW__UFFD_WP | COW__UFFD_WP_ASYNC;
		if (p.wp_unpopulated)
			f |= COW__UFFD_WP_UNPOPULATED;
		rc = cow__uffd_open(f);
		if (rc < 0)
			goto fail;
		t->uffd = rc;
		t->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (t->pagemap < 0) {
			rc = -errno;
			goto fail;
		}
	} else {
		size_t npages = r->size >> COW__PAGE_SHIFT;
		t->nwords = (npages + 63) / 64;
		t->bits = cow__calloc(t->nwords, sizeof(uint64_t));
		if (!t->bits) {
			rc = COW_ENOMEM;
			goto fail;
		}
		t->trap.start = (uintptr_t)r->addr;
		t->trap.end = (uintptr_t)r->addr + r->size;
		t->trap.fault = track_fault;
		t->trap.sig = backend == COW_MEM_UFFD ? SIGBUS : SIGSEGV;
		if (backend == COW_MEM_UFFD) {
			uint64_t f = COW__UFFD_SIGBUS;
			if (p.wp_unpopulated)
				f |= COW__UFFD_WP_UNPOPULATED;
			rc = cow__uffd_open(f);
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

int cow_mem_checkpoint(cow_mem_region *r, cow_mem_sink *sink, cow_mem_ckpt_stats *st)
{
	if (st)
		memset(st, 0, sizeof(*st));
	if (!r || !sink || !r->track)
		return COW_EINVAL;
	struct cow__track *t = r->track;
	uint64_t t0 = cow__now_ns();
	bool full = t->full_next;
	struct emit e = {.t = t, .sink = sink};
	int rc = cow__sink_begin(sink, full ? COW_MEM_IMAGE_FULL : COW_MEM_IMAGE_DELTA, r->size);
	uint64_t scan = 0;
	if (!rc) {
		if (full) {
			/* Re-arm everything, then deliver everything. */
			uint64_t s0 = cow__now_ns();
			if (t->backend == COW_MEM_UFFD_ASYNC) {
				rc = cow__pagemap_written(t->pagemap, r->addr, r->size, discard_run,
							  NULL);
			} else {
				for (size_t w = 0; w < t->nwords; w++)
					atomic_store(&t->bits[w], 0);
				rc = track_protect(t, 0, r->size, true);
			}
			scan = cow__now_ns() - s0;
			if (!rc)
				rc = emit_run(&e, 0, r->size);
		} else if (t->backend == COW_MEM_UFFD_ASYNC) {
			rc = cow__pagemap_written(t->pagemap, r->addr, r->size, emit_run, &e);
		} else {
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
