/*
 * userfaultfd and PAGEMAP_SCAN plumbing. The system headers may predate the
 * features cowkit uses (WP_ASYNC, WP_UNPOPULATED and PAGEMAP_SCAN arrived in
 * Linux 6.4-6.7), so their constants are defined here; whether the running
 * kernel has them is found out at run time, never assumed.
 *
 * Creating a userfaultfd: the syscall with UFFD_USER_MODE_ONLY is allowed to
 * unprivileged processes even when vm.unprivileged_userfaultfd is 0 (cowkit
 * only needs faults from user mode); kernels before 5.11 reject the flag, so
 * the plain syscall follows, then /dev/userfaultfd (Linux 6.1+), whose
 * permission is the device node's.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mem/mem.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

/* PAGEMAP_SCAN (Linux 6.7), from include/uapi/linux/fs.h. */
struct cow__page_region {
	uint64_t start, end, categories;
};
struct cow__pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define COW__PAGEMAP_SCAN	   _IOWR('f', 16, struct cow__pm_scan_arg)
#define COW__PAGE_IS_WRITTEN	   (1u << 1)
#define COW__PM_SCAN_WP_MATCHING   (1u << 0)
#define COW__PM_SCAN_CHECK_WPASYNC (1u << 1)

#define COW__PAGE_IS_PRESENT (1u << 3)
#define COW__PAGE_IS_SWAPPED (1u << 4)
#define COW__PAGE_IS_PFNZERO (1u << 5)

static const char *last_via = "";

/*
 * @kernel: the fd must also see faults raised by system calls (read(2) into
 * the range), so UFFD_USER_MODE_ONLY is not tried.
 */
static int uffd_new(bool kernel)
{
	int fd = kernel ? -1
			: (int)syscall(SYS_userfaultfd,
				       O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd >= 0) {
		last_via = "syscall (user-mode only)";
		return fd;
	}
	int err = kernel ? EINVAL : errno;
	if (err == EINVAL) {
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0) {
			last_via = "syscall";
			return fd;
		}
		err = errno;
	}
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		int e2 = errno;
		close(dev);
		if (fd >= 0) {
			last_via = "/dev/userfaultfd";
			return fd;
		}
		err = e2;
	}
	return -err;
}

int cow__uffd_open(uint64_t features, bool kernel)
{
	int fd = uffd_new(kernel);
	if (fd < 0)
		return fd;
	struct uffdio_api api = {.api = UFFD_API, .features = features};
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int err = errno;
		close(fd);
		return err == EINVAL ? COW_EOPNOTSUPP : -err;
	}
	if ((api.features & features) != features) {
		close(fd);
		return COW_EOPNOTSUPP;
	}
	return fd;
}

int cow__uffd_register(int fd, void *addr, size_t len, uint64_t mode)
{
	struct uffdio_register reg = {
		.range = {.start = (uintptr_t)addr, .len = len},
		.mode = mode,
	};
	if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0)
		return errno == EINVAL ? COW_EOPNOTSUPP : -errno;
	return 0;
}

int cow__uffd_wp(int fd, void *addr, size_t len, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = {.start = (uintptr_t)addr, .len = len},
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};
	/* The kernel can return EAGAIN while the mm is changing; retry. */
	for (;;) {
		if (ioctl(fd, UFFDIO_WRITEPROTECT, &w) == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

int cow__uffd_wp_once(int fd, void *addr, size_t len, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = {.start = (uintptr_t)addr, .len = len},
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};
	for (;;) {
		if (ioctl(fd, UFFDIO_WRITEPROTECT, &w) == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int cow__uffd_unregister(int fd, void *addr, size_t len)
{
	struct uffdio_range r = {.start = (uintptr_t)addr, .len = len};
	return ioctl(fd, UFFDIO_UNREGISTER, &r) < 0 ? -errno : 0;
}

int cow__pagemap_data(int pm, void *addr, size_t len, uint64_t *bits)
{
	struct cow__page_region vec[256];
	uintptr_t base = (uintptr_t)addr, end = base + len, at = base;
	while (at < end) {
		/* Present and not the zero page, or swapped out: the page holds data. */
		struct cow__pm_scan_arg a = {
			.size = sizeof(a),
			.start = at,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = COW_ARRAY_SIZE(vec),
			.category_inverted = COW__PAGE_IS_PFNZERO,
			.category_mask = COW__PAGE_IS_PFNZERO,
			.category_anyof_mask = COW__PAGE_IS_PRESENT | COW__PAGE_IS_SWAPPED,
			.return_mask = COW__PAGE_IS_PRESENT | COW__PAGE_IS_SWAPPED,
		};
		long n = ioctl(pm, COW__PAGEMAP_SCAN, &a);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		for (long i = 0; i < n; i++) {
			for (uint64_t p = vec[i].start; p < vec[i].end; p += COW__PAGE) {
				size_t pg = (size_t)(p - base) >> COW__PAGE_SHIFT;
				if (bits)
					bits[pg / 64] |= 1ull << (pg % 64);
				else
					return 1;
			}
		}
		if (a.walk_end <= at)
			return COW_EINTERNAL;
		at = a.walk_end;
	}
	return 0;
}

int cow__pagemap_written(int pm, void *addr, size_t len,
			 int (*fn)(void *ctx, size_t off, size_t len), void *ctx)
{
	struct cow__page_region vec[256];
	uintptr_t base = (uintptr_t)addr, end = base + len, at = base;
	while (at < end) {
		struct cow__pm_scan_arg a = {
			.size = sizeof(a),
			.flags = COW__PM_SCAN_WP_MATCHING | COW__PM_SCAN_CHECK_WPASYNC,
			.start = at,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = COW_ARRAY_SIZE(vec),
			.category_mask = COW__PAGE_IS_WRITTEN,
			.return_mask = COW__PAGE_IS_WRITTEN,
		};
		long n = ioctl(pm, COW__PAGEMAP_SCAN, &a);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		for (long i = 0; i < n; i++) {
			int rc = fn(ctx, vec[i].start - base, vec[i].end - vec[i].start);
			if (rc)
				return rc;
		}
		if (a.walk_end <= at)
			return COW_EINTERNAL;
		at = a.walk_end;
	}
	return 0;
}

static struct cow__uffd_caps caps;
static pthread_once_t caps_once = PTHREAD_ONCE_INIT;

static void probe_once(void)
{
	int fd = uffd_new(false);
	if (fd < 0) {
		caps.error = fd;
		caps.via = "";
	} else {
		caps.via = last_via;
		struct uffdio_api api = {.api = UFFD_API, .features = 0};
		if (ioctl(fd, UFFDIO_API, &api) == 0)
			caps.features = api.features;
		else
			caps.error = -errno;
		close(fd);
		/* Can this process see kernel-mode faults (system calls)? */
		int kfd = uffd_new(true);
		caps.kernel = kfd >= 0;
		caps.kernel_via = kfd >= 0 ? last_via : "";
		if (kfd >= 0)
			close(kfd);
		/*
		 * COW_MEM_MASK_FEATURES=0xN hides feature bits, so the tests can
		 * run the fallbacks of older kernels on this one.
		 */
		const char *mask = getenv("COW_MEM_MASK_FEATURES");
		if (mask && *mask)
			caps.features &= ~strtoull(mask, NULL, 16);
	}
	/* PAGEMAP_SCAN: an empty scan of one mapped page is enough to tell. */
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	void *p = mmap(NULL, COW__PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pm >= 0 && p != MAP_FAILED) {
		struct cow__page_region v[1];
		struct cow__pm_scan_arg a = {
			.size = sizeof(a),
			.start = (uintptr_t)p,
			.end = (uintptr_t)p + COW__PAGE,
			.vec = (uintptr_t)v,
			.vec_len = 1,
			.category_mask = COW__PAGE_IS_WRITTEN,
			.return_mask = COW__PAGE_IS_WRITTEN,
		};
		caps.pagemap_scan = ioctl(pm, COW__PAGEMAP_SCAN, &a) >= 0;
	}
	if (p != MAP_FAILED)
		munmap(p, COW__PAGE);
	if (pm >= 0)
		close(pm);
}

const struct cow__uffd_caps *cow__uffd_caps(void)
{
	pthread_once(&caps_once, probe_once);
	return &caps;
}

int cow__populate_read(void *addr, size_t len)
{
	if (madvise(addr, len, 22 /* MADV_POPULATE_READ, Linux 5.14 */) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* Older kernels: read one byte per page (maps the zero page on holes). */
	for (size_t off = 0; off < len; off += COW__PAGE)
		(void)*(volatile const char *)((const char *)addr + off);
	return 0;
}

cow_mem_backend cow__mem_forced(void)
{
	cow_mem_backend b;
	if (cow_mem_backend_parse(getenv("COW_MEM_BACKEND"), &b) != 0)
		return COW_MEM_AUTO;
	switch (b) { /* the tracking backends a test may force */
	case COW_MEM_UFFD:
	case COW_MEM_UFFD_THREAD:
	case COW_MEM_MPROTECT:
	case COW_MEM_FORK:
		return b;
	default:
		return COW_MEM_AUTO;
	}
}
