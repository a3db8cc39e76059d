/*
 * Regions: anonymous private memory cowkit may protect, track and fill.
 * Registering checks /proc/self/maps: every byte of the range must be in a
 * private, read-write mapping with no file behind it, because the
 * mechanisms (userfaultfd WP/MISSING on anonymous memory, mprotect back to
 * read-write, fork's copy-on-write) are only correct for those.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem/mem.h"

int cow__region_claim(cow_mem_region *r, int mode)
{
	int idle = COW__R_IDLE;
	return atomic_compare_exchange_strong(&r->mode, &idle, mode) ? 0 : COW_EBUSY;
}

void cow__region_release(cow_mem_region *r)
{
	atomic_store(&r->mode, COW__R_IDLE);
}

/* Wrap a fresh mapping [base, base+size) in a handle; unmaps it on failure. */
static int adopt(char *base, size_t size, bool thp, cow_mem_region **out)
{
	madvise(base, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	cow_mem_region *r = cow__calloc(1, sizeof(*r));
	if (!r) {
		munmap(base, size);
		return COW_ENOMEM;
	}
	r->addr = base;
	r->size = size;
	r->owned = true;
	r->thp = thp;
	*out = r;
	return 0;
}

int cow_mem_region_alloc(size_t size, unsigned flags, cow_mem_region **out)
{
	if (!out || size == 0 || (flags & ~COW_MEM_THP))
		return COW_EINVAL;
	*out = NULL;
	bool thp = flags & COW_MEM_THP;
	size_t align = thp ? COW__HUGE : COW__PAGE;
	if (size > SIZE_MAX - 2 * align)
		return COW_EINVAL;
	size = (size + align - 1) & ~(align - 1);
	size_t map = thp ? size + COW__HUGE : size;
	char *p = mmap(NULL, map, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	char *base = p;
	if (thp) {
		/* Trim to a 2 MiB-aligned window so every PMD can be huge. */
		base = (char *)(((uintptr_t)p + COW__HUGE - 1) & ~(uintptr_t)(COW__HUGE - 1));
		if (base > p)
			munmap(p, (size_t)(base - p));
		size_t tail = map - (size_t)(base - p) - size;
		if (tail)
			munmap(base + size, tail);
	}
	return adopt(base, size, thp, out);
}

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000 /* Linux 4.17; older headers lack it */
#endif

/*
 * MAP_FIXED_NOREPLACE maps exactly at @addr or fails with EEXIST. A kernel
 * older than 4.17 ignores the flag and treats @addr as a hint: it returns
 * @addr when the range is free, and another address when something is
 * there. Either way a result other than @addr means the range is taken.
 */
int cow_mem_region_alloc_at(void *addr, size_t size, unsigned flags, cow_mem_region **out)
{
	if (!out || !addr || size == 0 || (flags & ~COW_MEM_THP))
		return COW_EINVAL;
	*out = NULL;
	bool thp = flags & COW_MEM_THP;
	size_t align = thp ? COW__HUGE : COW__PAGE;
	if (((uintptr_t)addr & (align - 1)) || size > SIZE_MAX - align ||
	    (uintptr_t)addr > UINTPTR_MAX - size - align)
		return COW_EINVAL;
	size = (size + align - 1) & ~(align - 1);
	char *p = mmap(addr, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return errno == EEXIST ? COW_EEXIST : -errno;
	if (p != addr) {
		munmap(p, size); /* an old kernel took the flag for a hint */
		return COW_EEXIST;
	}
	return adopt(p, size, thp, out);
}

/* Does /proc/self/maps cover [lo, hi) with anonymous private rw mappings only? */
static int check_maps(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -errno;
	char line[512];
	uintptr_t covered = lo;
	int rc = COW_EOPNOTSUPP;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b, off, inode;
		char perm[8], dev[16];
		int n = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &a, &b, perm, &off, dev, &inode,
			   &n) < 6)
			continue;
		if (b <= covered || a >= hi)
			continue;
		if (a > covered)
			break; /* a gap */
		const char *name = line + n;
		bool anon = inode == 0 &&
			    (name[0] == '\n' || name[0] == '\0' ||
			     strncmp(name, "[heap]", 6) == 0 || strncmp(name, "[stack", 6) == 0);
		if (!anon || strncmp(perm, "rw-p", 4) != 0)
			break;
		covered = b;
		if (covered >= hi) {
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

int cow_mem_region_register(void *addr, size_t size, cow_mem_region **out)
{
	if (!out || !addr || size == 0 || ((uintptr_t)addr | size) & (COW__PAGE - 1))
		return COW_EINVAL;
	*out = NULL;
	int rc = check_maps((uintptr_t)addr, (uintptr_t)addr + size);
	if (rc)
		return rc;
	cow_mem_region *r = cow__calloc(1, sizeof(*r));
	if (!r)
		return COW_ENOMEM;
	r->addr = addr;
	r->size = size;
	*out = r;
	return 0;
}

void cow_mem_region_destroy(cow_mem_region *r)
{
	if (!r)
		return;
	cow_mem_track_stop(r);
	if (r->owned)
		munmap(r->addr, r->size);
	cow__free(r);
}

void *cow_mem_region_addr(const cow_mem_region *r)
{
	return r ? r->addr : NULL;
}

size_t cow_mem_region_size(const cow_mem_region *r)
{
	return r ? r->size : 0;
}
