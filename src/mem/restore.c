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
 */
#include <errno.h>
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
	int uffd;
	pthread_t prefetcher;
	int err;
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
static int fill(struct cow_mem_restore *h, size_t off, size_t len, bool zero)
{
	while (len) {
		uintptr_t dst = (uintptr_t)h->r->addr + off;
		int64_t done;
		int rc;
		if (zero) {
			struct uffdio_zeropage z = {.range = {.start = dst, .len = len},
						    .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE};
			rc = ioctl(h->uffd, UFFDIO_ZEROPAGE, &z);
			done = z.zeropage;
		} else {
			struct uffdio_copy c = {.dst = dst,
						.src = (uintptr_t)h->src + off,
						.len = len,
						.mode = UFFDIO_COPY_MODE_DONTWAKE};
			rc = ioctl(h->uffd, UFFDIO_COPY, &c);
			done = c.copy;
		}
		if (rc == 0)
			done = (int64_t)len;
		else if (errno != EAGAIN)
			return -errno;
		/* EAGAIN: a partial fill (it stopped at a present page), or retry. */
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

static bool chunk_zero(struct cow_mem_restore *h, size_t off, size_t len)
{
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
	if (!zero && off + len > h->len) {
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
			bool mixed_tail = !zero && c + CHUNK > h->len;
			size_t e = c + CHUNK;
			while (!mixed_tail && e < bend &&
			       chunk_zero(h, e, COW_MIN((size_t)CHUNK, bend - e)) == zero &&
			       (zero || e + CHUNK <= h->len))
				e += CHUNK;
			e = COW_MIN(e, bend);
			int rc = mixed_tail ? -EEXIST : fill(h, c, e - c, zero);
			if (rc == -EEXIST) {
				rc = 0;
				for (size_t k = c; k < e && !rc; k += CHUNK)
					rc = fill_chunk(h, k, COW_MIN((size_t)CHUNK, e - k));
				if (rc)
					h->err = rc;
			} else if (rc) {
				h->err = rc;
			}
			c = e;
		}
	}
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
	if (backend == COW_MEM_UFFD && p.restore != COW_MEM_UFFD)
		return p.uffd_error ? p.uffd_error : COW_EOPNOTSUPP;
	if (backend != COW_MEM_UFFD && backend != COW_MEM_EAGER)
		return COW_EINVAL;
	int rc = cow__region_claim(r, COW__R_RESTORE);
	if (rc)
		return rc;
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
	rc = cow__uffd_open(COW__UFFD_SIGBUS);
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
	rc = cow__trap_add(&h->trap);
	if (rc)
		goto fail;
	rc = -pthread_create(&h->prefetcher, NULL, prefetch_main, h);
	if (rc) {
		cow__trap_remove(&h->trap);
		goto fail;
	}
	h->setup_ns = cow__now_ns();
	*out = h;
	return 0;
fail:
	if (h->uffd >= 0)
		close(h->uffd);
	cow__free(h);
	cow__region_release(r);
	return rc;
}

int cow_mem_restore_wait(cow_mem_restore *h, cow_mem_restore_stats *st)
{
	if (!h)
		return COW_EINVAL;
	if (h->backend == COW_MEM_UFFD) {
		pthread_join(h->prefetcher, NULL);
		/* Every page is present: faults can no longer happen. Unregister. */
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
	cow__free(h);
	return rc;
}
