/*
 * share/frames: which pages are the very same physical page across a set
 * of processes.
 *
 * smaps says whether a page is mapped by more than one process anywhere on
 * the machine; it cannot say by which. /proc/PID/pagemap gives, for each
 * virtual page, a 64-bit entry: bit 63 present, bit 62 swapped, bits 0-54
 * the page frame number (PFN) when the reader has CAP_SYS_ADMIN (others see
 * PFN 0 since Linux 4.2). Collecting one (pfn, process, mapping) triple per
 * resident page of every process and sorting them by PFN puts all mappers
 * of a frame side by side; counting the distinct processes in each run says
 * whether the page is shared by all of the set, by some, or by none.
 *
 * Cost: mappings with Rss 0 are not read at all. Where the kernel has
 * PAGEMAP_SCAN (6.7+), one ioctl finds the present ranges of a mapping and
 * only those are read (8 bytes of pagemap per resident page); older kernels
 * read 8 bytes per virtual page of the whole mapping, which is slow for a
 * huge, sparsely touched reservation. Then 16 bytes per resident page for
 * the triples, plus as much again for the radix sort's second buffer. The sort is an LSD radix sort
 * on the PFN, stable, so the triples of one frame stay in process order (they are appended process
 * by process), which makes counting distinct processes a count of changes.
 *
 * The shared zero page (read faults on untouched anonymous memory) is
 * skipped, as smaps skips it in Rss; so is a huge zero page, whose frames are
 * not probed (NEEDSWORK: probe it too where THP read faults map it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "share/share.h"

#define PM_PRESENT  (1ull << 63)
#define PM_SWAP	    (1ull << 62)
#define PM_PFN_MASK ((1ull << 55) - 1)
#define PAGE	    4096ull
#define CHUNK	    8192 /* pagemap entries per pread: 64 KiB, 32 MiB of address space */
#define NREGIONS    512	 /* present ranges per PAGEMAP_SCAN call */

/*
 * PAGEMAP_SCAN (Linux 6.7): ranges of pages by category, so a huge mapping
 * with a few resident pages (sanitizer shadow, runtime heap reservations)
 * costs its resident pages, not its size. The ABI from include/uapi/linux/fs.h,
 * spelled out because older libc headers lack it.
 */
struct pm_region {
	uint64_t start, end, categories;
};

struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define PM_PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_IS_PRESENT	(1ull << 3)

struct cow__share_fent {
	uint64_t pfn;
	uint32_t proc; /* index in the report */
	uint32_t map;  /* index in that process's maps */
};

static int read_entries(int fd, uint64_t *buf, uint64_t first_page, size_t n)
{
	size_t want = n * sizeof(uint64_t), got = 0;
	while (got < want) {
		ssize_t r = pread(fd, (char *)buf + got, want - got,
				  (off_t)(first_page * sizeof(uint64_t) + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return cow__share_proc_errno(-errno);
		}
		if (r == 0)
			return COW_ESRCH; /* the address space is gone: the process exited */
		got += (size_t)r;
	}
	return 0;
}

bool cow__share_test_no_scan;

int cow__share_frames_init(struct cow__share_frames *f)
{
	memset(f, 0, sizeof(*f));
	f->no_scan = cow__share_test_no_scan;
	f->buf = cow__malloc(CHUNK * sizeof(uint64_t));
	if (!f->buf)
		return COW_ENOMEM;
	/* A read fault on fresh private anonymous memory maps the zero page. */
	void *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	(void)*(volatile const char *)p;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		uint64_t e;
		if (read_entries(fd, &e, (uint64_t)(uintptr_t)p / PAGE, 1) == 0 && (e & PM_PRESENT))
			f->zero_pfn = e & PM_PFN_MASK;
		close(fd);
	}
	munmap(p, PAGE);
	return 0;
}

void cow__share_frames_release(struct cow__share_frames *f)
{
	cow__free(f->ent);
	cow__free(f->buf);
	memset(f, 0, sizeof(*f));
}

/* Append the present frames of pages [first, first + n) of map @mi. */
static int read_range(struct cow__share_frames *f, int fd, uint64_t first, uint64_t n, uint32_t idx,
		      uint32_t mi)
{
	while (n > 0) {
		size_t chunk = (size_t)COW_MIN((uint64_t)CHUNK, n);
		int rc = read_entries(fd, f->buf, first, chunk);
		if (rc)
			return rc;
		if ((rc = cow__grow((void **)&f->ent, &f->cap, f->n + chunk, sizeof(*f->ent))))
			return rc;
		for (size_t i = 0; i < chunk; i++) {
			uint64_t e = f->buf[i];
			if (!(e & PM_PRESENT) || (e & PM_SWAP))
				continue;
			uint64_t pfn = e & PM_PFN_MASK;
			if (pfn == 0)
				return 1; /* frame numbers hidden from us */
			if (pfn == f->zero_pfn)
				continue;
			f->ent[f->n++] = (struct cow__share_fent){pfn, idx, mi};
		}
		first += chunk;
		n -= chunk;
	}
	return 0;
}

/*
 * Present ranges of [start, end) through PAGEMAP_SCAN, each read with
 * read_range(). Returns 0, 1 (frames hidden), a negative error, or 2 if the
 * kernel lacks PAGEMAP_SCAN (nothing appended; the caller reads linearly).
 */
static int scan_map(struct cow__share_frames *f, int fd, uint64_t start, uint64_t end, uint32_t idx,
		    uint32_t mi)
{
	struct pm_region regs[NREGIONS];
	for (uint64_t at = start; at < end;) {
		struct pm_scan_arg a;
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.start = at;
		a.end = end;
		a.vec = (uint64_t)(uintptr_t)regs;
		a.vec_len = NREGIONS;
		a.category_mask = PM_IS_PRESENT;
		a.return_mask = PM_IS_PRESENT;
		int n = ioctl(fd, PM_PAGEMAP_SCAN, &a);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP)
				return 2;
			return cow__share_proc_errno(-errno);
		}
		for (int i = 0; i < n; i++) {
			int rc = read_range(f, fd, regs[i].start / PAGE,
					    (regs[i].end - regs[i].start) / PAGE, idx, mi);
			if (rc)
				return rc;
		}
		if (a.walk_end <= at)
			break; /* no progress: never loop forever on a confused kernel */
		at = a.walk_end;
	}
	return 0;
}

int cow__share_frames_collect(struct cow__share_frames *f, const cow_share_proc *p, uint32_t idx)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", p->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cow__share_proc_errno(-errno);
	size_t start_n = f->n;
	int rc = 0;
	bool alive_checked = false;
	for (size_t mi = 0; mi < p->nmaps; mi++) {
		const cow_share_map *m = &p->maps[mi];
		if (m->figs.rss == 0)
			continue;
		if (!alive_checked) {
			/* A zombie's pagemap reads as empty; the scan ioctl may not say so. */
			if ((rc = read_entries(fd, f->buf, m->start / PAGE, 1)))
				goto out;
			alive_checked = true;
		}
		rc = f->no_scan ? 2 : scan_map(f, fd, m->start, m->end, idx, (uint32_t)mi);
		if (rc == 2) {
			f->no_scan = true;
			rc = read_range(f, fd, m->start / PAGE, (m->end - m->start) / PAGE, idx,
					(uint32_t)mi);
		}
		if (rc)
			goto out;
	}
out:
	if (rc)
		f->n = start_n;
	close(fd);
	return rc;
}

/* Stable LSD radix sort of a[0..n) by pfn, 11 bits per pass; tmp holds n entries. */
static void radix_sort(struct cow__share_fent *a, struct cow__share_fent *tmp, size_t n)
{
	uint64_t max = 0;
	for (size_t i = 0; i < n; i++)
		max = COW_MAX(max, a[i].pfn);
	enum { BITS = 11, BUCKETS = 1 << BITS };
	size_t count[BUCKETS];
	struct cow__share_fent *src = a, *dst = tmp;
	for (unsigned shift = 0; shift < 64 && (max >> shift); shift += BITS) {
		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[(src[i].pfn >> shift) & (BUCKETS - 1)]++;
		size_t sum = 0;
		for (size_t b = 0; b < BUCKETS; b++) {
			size_t c = count[b];
			count[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i].pfn >> shift) & (BUCKETS - 1)]++] = src[i];
		struct cow__share_fent *t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
}

static int cmp_fent(const void *x, const void *y)
{
	const struct cow__share_fent *a = x, *b = y;
	if (a->pfn != b->pfn)
		return a->pfn < b->pfn ? -1 : 1;
	return (a->proc > b->proc) - (a->proc < b->proc);
}

void cow__share_frames_match(struct cow__share_frames *f, cow_share_report *r)
{
	struct cow__share_fent *tmp = f->n ? cow__malloc(f->n * sizeof(*tmp)) : NULL;
	if (tmp)
		radix_sort(f->ent, tmp, f->n);
	else if (f->n) /* no memory for the second buffer: sort in place, slower */
		qsort(f->ent, f->n, sizeof(*f->ent), cmp_fent);
	cow__free(tmp);
	for (size_t i = 0; i < f->n;) {
		size_t j = i + 1, distinct = 1;
		for (; j < f->n && f->ent[j].pfn == f->ent[i].pfn; j++)
			if (f->ent[j].proc != f->ent[j - 1].proc)
				distinct++;
		for (size_t k = i; k < j; k++) {
			const struct cow__share_fent *e = &f->ent[k];
			cow_share_map *m = (cow_share_map *)&r->procs[e->proc].maps[e->map];
			m->figs.pages++;
			if (distinct == r->nproc && r->nproc > 1)
				m->figs.pages_all++;
			else if (distinct > 1)
				m->figs.pages_some++;
			else
				m->figs.pages_none++;
		}
		i = j;
	}
	r->frames = 1;
}
