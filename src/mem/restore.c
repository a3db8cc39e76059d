/*
 * Restore a region from an image in memory (a buffer, or a file the caller
 * mmap'ed).
 *
 * Eager: copy every non-zero 64 KiB chunk; all-zero chunks are dropped with
 * MADV_DONTNEED so they stay holes (they read as zeros without memory).
 *
 * Lazy (userfaultfd MODE_MISSING with UFFD_FEATURE_SIGBUS): a thread that
 * touches a missing page gets SIGBUS and its handler fills the 64 KiB chunk
 * around the page itself with UFFDIO_COPY (or UFFDIO_ZEROPAGE for a zero
 * chunk), so first touch costs one signal and one ioctl, no wake-up of
 * another thread. A prefetcher thread fills the rest front to back in 2 MiB
 * batches, splitting a batch into its 64 KiB chunks, and then pages, where
 * a touching thread got there first (EEXIST). The handler treats EEXIST as
 * success: the page is there.
 *
 * Handler-thread mode (COW_MEM_UFFD_THREAD, what COW_MEM_AUTO picks): no
 * signal; a touch, by the program or by a system call such as read(2),
 * waits in the kernel while the prefetcher, which reads the userfaultfd
 * between its batches, fills the chunk first (and wakes the toucher).
 *
 * Mapping changes while the restore runs arrive as events: pages discarded
 * with MADV_DONTNEED/MADV_FREE are marked gone, and a gone page that is
 * still missing gets the zero page instead of the image (the program asked
 * for zeros); munmap or mremap stop the restore with COW_MEM_ECHANGED.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem/mem.h"

#define CHUNK (64u << 10)
#define BATCH (2u << 20)

struct cow_mem_restore {
	struct cow__trap trap; /* first */
	cow_mem_region *r;
	const char *src;
	size_t len;
	cow_mem_backend backend;
	bool thread_mode;
	int uffd;
	pthread_t prefetcher;
	_Atomic int err;
	_Atomic int svc_lock;
	_Atomic uint64_t *gone; /* pages discarded by the program meanwhile */
	uint64_t t0, setup_ns, done_ns;
	_Atomic uint64_t faults, first_fault_ns, zero_chunks, bytes;
	void *owned; /* a source buffer this handle frees (cow_mem_restore_volume) */
};

void cow__restore_own(cow_mem_restore *h, void *buf)
{
	h->owned = buf;
}

/*
 * Fill [off, off+len) of the region: zero chunks get the zero page, others
 * a copy. Returns 0, or -EEXIST if some page in the range is already there
 * (nothing or part was filled), or -errno.
 */
static void service(struct cow_mem_restore *h);

static int fill(struct cow_mem_restore *h, size_t off, size_t len, bool zero)
{
	/* With a handler thread, filling wakes whoever waits on the range. */
	uint64_t dontwake = h->thread_mode ? 0 : UFFDIO_COPY_MODE_DONTWAKE;
	while (len) {
		uintptr_t dst = (uintptr_t)h->r->addr + off;
		int64_t done;
		int rc;
		if (zero) {
			struct uffdio_zeropage z = {.range = {.start = dst, .len = len},
						    .mode = dontwake};
			rc = ioctl(h->uffd, UFFDIO_ZEROPAGE, &z);
			done = z.zeropage;
		} else {
			struct uffdio_copy c = {.dst = dst,
						.src = (uintptr_t)h->src + off,
						.len = len,
						.mode = dontwake};
			rc = ioctl(h->uffd, UFFDIO_COPY, &c);
			done = c.copy;
		}
		if (rc == 0)
			done = (int64_t)len;
		else if (errno != EAGAIN)
			return -errno;
		/*
		 * EAGAIN: a partial fill (it stopped at a present page), or the
		 * kernel waits for a mapping-change event to be read: read it.
		 */
		if (rc && done <= 0) {
			if (atomic_load(&h->err))
				return atomic_load(&h->err);
			service(h);
		}
		if (done > 0) {
			if (zero)
				atomic_fetch_add(&h->zero_chunks, 1);
			else
				atomic_fetch_add(&h->bytes, (uint64_t)done);
			off += (size_t)done;
			len -= (size_t)done;
		}
	}
	return 0;
}

static bool any_gone(struct cow_mem_restore *h, size_t off, size_t len)
{
	for (size_t p = off >> COW__PAGE_SHIFT; p < (off + len) >> COW__PAGE_SHIFT; p++)
		if (atomic_load(&h->gone[p / 64]) >> (p % 64) & 1)
			return true;
	return false;
}

static bool chunk_zero(struct cow_mem_restore *h, size_t off, size_t len)
{
	if (len == COW__PAGE && any_gone(h, off, len))
		return true;
	if (off >= h->len)
		return true;
	if (off + len > h->len)
		return false; /* mixed: part image, part beyond; copied page by page */
	return cow__is_zero(h->src + off, len);
}

/* Fill one 64 KiB chunk (or fewer pages at the end); pages already present stay. */
static int fill_chunk(struct cow_mem_restore *h, size_t off, size_t len)
{
	bool zero = chunk_zero(h, off, len);
	if (!zero && (off + len > h->len || any_gone(h, off, len))) {
		for (size_t p = off; p < off + len; p += COW__PAGE) {
			int rc = fill(h, p, COW__PAGE, chunk_zero(h, p, COW__PAGE));
			if (rc && rc != -EEXIST)
				return rc;
		}
		return 0;
	}
	int rc = fill(h, off, len, zero);
	if (rc != -EEXIST)
		return rc;
	for (size_t p = off; p < off + len; p += COW__PAGE) {
		rc = fill(h, p, COW__PAGE, zero);
		if (rc && rc != -EEXIST)
			return rc;
	}
	return 0;
}

/*
 * Read what waits on the userfaultfd: faults (handler-thread mode) and
 * mapping-change events. Any thread, also a signal handler; one at a time.
 */
static void service(struct cow_mem_restore *h)
{
	int zero = 0;
	if (!atomic_compare_exchange_strong(&h->svc_lock, &zero, 1))
		return;
	struct uffd_msg msg[16];
	uintptr_t base = (uintptr_t)h->r->addr, top = base + h->r->size;
	for (;;) {
		ssize_t n = read(h->uffd, msg, sizeof(msg));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
			struct uffd_msg *m = &msg[i];
			if (m->event == UFFD_EVENT_PAGEFAULT) {
				uintptr_t a = (uintptr_t)m->arg.pagefault.address;
				if (a < base || a >= top)
					continue;
				size_t off = (a - base) & ~(size_t)(CHUNK - 1);
				uint64_t t0 = cow__now_ns();
				int rc = fill_chunk(h, off,
						    COW_MIN((size_t)CHUNK, h->r->size - off));
				if (rc) {
					int z = 0;
					atomic_compare_exchange_strong(&h->err, &z, rc);
				}
				if (atomic_fetch_add(&h->faults, 1) == 0)
					atomic_store(&h->first_fault_ns, cow__now_ns() - t0);
			} else if (m->event == UFFD_EVENT_REMOVE) {
				uintptr_t lo = COW_MAX((uintptr_t)m->arg.remove.start, base);
				uintptr_t hi = COW_MIN((uintptr_t)m->arg.remove.end, top);
				for (uintptr_t a = lo; a < hi; a += COW__PAGE) {
					size_t p = (a - base) >> COW__PAGE_SHIFT;
					atomic_fetch_or(&h->gone[p / 64], 1ull << (p % 64));
				}
			} else if (m->event == UFFD_EVENT_UNMAP || m->event == UFFD_EVENT_REMAP) {
				int z = 0;
				atomic_compare_exchange_strong(&h->err, &z, COW_MEM_ECHANGED);
			}
		}
	}
	atomic_store(&h->svc_lock, 0);
}

static void restore_fault(struct cow__trap *t, uintptr_t addr)
{
	struct cow_mem_restore *h = (struct cow_mem_restore *)t;
	uint64_t t0 = cow__now_ns();
	size_t off = (addr - t->start) & ~(size_t)(CHUNK - 1);
	size_t len = COW_MIN((size_t)CHUNK, h->r->size - off);
	fill_chunk(h, off, len);
	if (atomic_fetch_add(&h->faults, 1) == 0)
		atomic_store(&h->first_fault_ns, cow__now_ns() - t0);
}

static void *prefetch_main(void *arg)
{
	struct cow_mem_restore *h = arg;
	size_t size = h->r->size;
	for (size_t off = 0; off < size && !h->err; off += BATCH) {
		service(h);
		size_t bend = COW_MIN(off + (size_t)BATCH, size);
		/*
		 * Map the source batch in one call: a file-backed image would
		 * otherwise take a read fault every 16 pages inside UFFDIO_COPY.
		 */
		if (off < h->len && ((uintptr_t)h->src & (COW__PAGE - 1)) == 0)
			madvise((void *)(h->src + off), COW_MIN((size_t)BATCH, h->len - off),
				22 /* MADV_POPULATE_READ */);
		/*
		 * Runs of 64 KiB chunks of one kind (all zero, or data) go in one
		 * ioctl each: a uniform batch is one call, and zero chunks stay
		 * holes. Where a touching thread got there first (EEXIST), the
		 * run is redone chunk by chunk, page by page.
		 */
		size_t c = off;
		while (c < bend && !h->err) {
			bool zero = chunk_zero(h, c, COW_MIN((size_t)CHUNK, bend - c));
			bool mixed_tail = !zero && (c + CHUNK > h->len || any_gone(h, c, CHUNK));
			size_t e = c + CHUNK;
			while (!mixed_tail && e < bend &&
			       chunk_zero(h, e, COW_MIN((size_t)CHUNK, bend - e)) == zero &&
			       (zero || e + CHUNK <= h->len) && !any_gone(h, e, CHUNK))
				e += CHUNK;
			e = COW_MIN(e, bend);
			int rc = mixed_tail ? -EEXIST : fill(h, c, e - c, zero);
			if (rc == -EEXIST) {
				rc = 0;
				for (size_t k = c; k < e && !rc; k += CHUNK)
					rc = fill_chunk(h, k, COW_MIN((size_t)CHUNK, e - k));
				if (rc)
					atomic_store(&h->err, rc);
			} else if (rc) {
				atomic_store(&h->err, rc);
			}
			c = e;
			service(h);
		}
	}
	/* Every page is present: no fault can come; stop the events too. */
	service(h);
	while (atomic_exchange(&h->svc_lock, 1))
		sched_yield();
	cow__uffd_unregister(h->uffd, h->r->addr, h->r->size);
	atomic_store(&h->svc_lock, 0);
	h->done_ns = cow__now_ns();
	return NULL;
}

static int eager(cow_mem_region *r, const char *src, size_t len)
{
	for (size_t off = 0; off < r->size; off += CHUNK) {
		size_t n = COW_MIN((size_t)CHUNK, r->size - off);
		size_t have = off < len ? COW_MIN(n, len - off) : 0;
		if (have == n && cow__is_zero(src + off, n)) {
			if (madvise(r->addr + off, n, MADV_DONTNEED))
				return -errno;
			continue;
		}
		memcpy(r->addr + off, src + off, have);
		if (have < n)
			memset(r->addr + off + have, 0, n - have);
	}
	return 0;
}

int cow_mem_restore_start(cow_mem_region *r, const void *src, size_t len, cow_mem_backend backend,
			  cow_mem_restore **out)
{
	if (!r || (!src && len) || !out || len > r->size || (len & (COW__PAGE - 1)))
		return COW_EINVAL;
	*out = NULL;
	cow_mem_probe_info p;
	cow_mem_probe(&p);
	if (backend == COW_MEM_AUTO)
		backend = p.restore;
	if (backend == COW_MEM_UFFD && (p.uffd_error || !p.sigbus))
		return p.uffd_error ? p.uffd_error : COW_EOPNOTSUPP;
	if (backend == COW_MEM_UFFD_THREAD && (p.uffd_error || !p.uffd_kernel))
		return p.uffd_error ? p.uffd_error : COW_EPERM;
	if (backend != COW_MEM_UFFD && backend != COW_MEM_UFFD_THREAD && backend != COW_MEM_EAGER)
		return COW_EINVAL;
	int rc = cow__region_claim(r, COW__R_RESTORE);
	if (rc)
		return rc;
	/* SIGBUS blocked in a thread: its first touch would kill the process. */
	if (backend == COW_MEM_UFFD && (rc = cow__check_sigmask(SIGBUS))) {
		cow__region_release(r);
		return rc;
	}
	struct cow_mem_restore *h = cow__calloc(1, sizeof(*h));
	if (!h) {
		cow__region_release(r);
		return COW_ENOMEM;
	}
	h->r = r;
	h->src = src;
	h->len = len;
	h->backend = backend;
	h->uffd = -1;
	h->t0 = cow__now_ns();
	if (backend == COW_MEM_EAGER) {
		rc = eager(r, src, len);
		h->setup_ns = h->done_ns = cow__now_ns();
		h->bytes = len;
		h->err = rc;
		*out = h;
		return 0;
	}
	h->thread_mode = backend == COW_MEM_UFFD_THREAD;
	h->gone = cow__calloc((r->size / COW__PAGE + 63) / 64, sizeof(uint64_t));
	if (!h->gone) {
		rc = COW_ENOMEM;
		goto fail;
	}
	rc = cow__uffd_open(COW__UFFD_EVENTS | (h->thread_mode ? 0 : COW__UFFD_SIGBUS),
			    h->thread_mode);
	if (rc < 0)
		goto fail;
	h->uffd = rc;
	rc = cow__uffd_register(h->uffd, r->addr, r->size, UFFDIO_REGISTER_MODE_MISSING);
	if (rc)
		goto fail;
	h->trap.start = (uintptr_t)r->addr;
	h->trap.end = (uintptr_t)r->addr + r->size;
	h->trap.sig = SIGBUS;
	h->trap.fault = restore_fault;
	rc = h->thread_mode ? 0 : cow__trap_add(&h->trap);
	if (rc)
		goto fail;
	rc = -pthread_create(&h->prefetcher, NULL, prefetch_main, h);
	if (rc) {
		if (!h->thread_mode)
			cow__trap_remove(&h->trap);
		goto fail;
	}
	h->setup_ns = cow__now_ns();
	*out = h;
	return 0;
fail:
	if (h->uffd >= 0)
		close(h->uffd);
	cow__free((void *)h->gone);
	cow__free(h);
	cow__region_release(r);
	return rc;
}

int cow_mem_restore_wait(cow_mem_restore *h, cow_mem_restore_stats *st)
{
	if (!h)
		return COW_EINVAL;
	if (h->backend != COW_MEM_EAGER) {
		pthread_join(h->prefetcher, NULL);
		/* Every page is present and the range unregistered. */
		if (!h->thread_mode)
			cow__trap_remove(&h->trap);
		close(h->uffd);
	}
	if (st) {
		memset(st, 0, sizeof(*st));
		st->backend = h->backend;
		st->setup_ns = h->setup_ns - h->t0;
		st->total_ns = h->done_ns - h->t0;
		st->faults = atomic_load(&h->faults);
		st->first_fault_ns = atomic_load(&h->first_fault_ns);
		st->zero_chunks = atomic_load(&h->zero_chunks);
		st->bytes = atomic_load(&h->bytes);
	}
	int rc = h->err;
	cow__region_release(h->r);
	cow__free(h->owned);
	cow__free((void *)h->gone);
	cow__free(h);
	return rc;
}
