/*
 * What must never happen to a program using cow_mem, whatever backend:
 *
 *   blocked  a thread with SIGBUS and SIGSEGV blocked (as jemalloc starts
 *            its background threads) keeps writing the region: the process
 *            must not die; an in-thread backend refuses before arming.
 *   discard  MADV_DONTNEED, munmap and mremap of snapshotted memory (as
 *            allocators purge freed memory): the snapshot either fails or
 *            delivers the exact image, never a wrong one with success;
 *            tracking puts discarded pages into the next checkpoint; a lazy
 *            restore leaves them zero.
 *   syscall  read(2) from a pipe into the region while it is protected,
 *            tracked or lazily restored: succeeds with the handler-thread
 *            and fork backends; with an in-thread backend, asked for by name,
 *            it fails with EFAULT (the documented limit), and nothing else
 *            goes wrong.
 *
 *   test_mem_never blocked|discard|syscall uffd-thread|uffd|mprotect|fork
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "cow/mem.h"

#define SIZE (32u << 20)

static cow_mem_backend parse(const char *s)
{
	if (strcmp(s, "uffd") == 0)
		return COW_MEM_UFFD;
	if (strcmp(s, "uffd-thread") == 0)
		return COW_MEM_UFFD_THREAD;
	if (strcmp(s, "mprotect") == 0)
		return COW_MEM_MPROTECT;
	return COW_MEM_FORK;
}

static bool in_thread(cow_mem_backend b)
{
	return b == COW_MEM_UFFD || b == COW_MEM_MPROTECT;
}

/* Fill the region with a pattern that differs per page and is never zero. */
static void fill(char *m, size_t len, unsigned salt)
{
	for (size_t off = 0; off < len; off += 4096)
		memset(m + off, (int)(((off >> 12) + salt) % 251 + 1), 4096);
}

/* ---- blocked ---- */

static atomic_int stop;
static char *target;

__attribute__((no_sanitize_thread)) static void *blocked_writer(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	uint64_t x = 1;
	while (!atomic_load(&stop)) {
		x = x * 6364136223846793005ull + 1;
		target[(x >> 20) % SIZE] = (char)x;
	}
	return NULL;
}

static void test_blocked(cow_mem_backend b)
{
	cow_mem_region *r;
	CHECK_OK(cow_mem_region_alloc(SIZE, 0, &r));
	target = cow_mem_region_addr(r);
	fill(target, SIZE, 1);
	pthread_t w;
	CHECK_EQ(pthread_create(&w, NULL, blocked_writer, NULL), 0);
	usleep(20000);

	char *image = malloc(SIZE);
	CHECK(image);
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));
	cow_mem_snap_opts o = {.backend = b, .buffer = 1u << 20};
	cow_mem_snap_stats st;
	int rc = cow_mem_snapshot(r, sink, &o, &st);
	printf("snapshot %s with a blocked writer: %s\n", cow_mem_backend_name(b),
	       cow_strerror(rc));
	if (in_thread(b))
		CHECK_RC(rc, COW_EOPNOTSUPP); /* refused before anything was armed */
	else
		CHECK_OK(rc);

	/* The probe names the thread; AUTO takes a path that works. */
	cow_mem_probe_info p;
	CHECK_OK(cow_mem_probe(&p));
	CHECK_GT(p.sig_blocked_tid, 0);
	cow_mem_snap_opts ao = {.buffer = 1u << 20};
	CHECK_OK(cow_mem_snapshot(r, sink, &ao, &st));
	printf("auto ran %s\n", cow_mem_backend_name(st.backend));

	/* Tracking and lazy restore, same rule. */
	if (b != COW_MEM_FORK) {
		rc = cow_mem_track_start(r, b);
		printf("track %s: %s\n", cow_mem_backend_name(b), cow_strerror(rc));
		if (in_thread(b))
			CHECK_RC(rc, COW_EOPNOTSUPP);
		else
			CHECK_OK(rc);
		usleep(20000);
		if (!rc) {
			CHECK_OK(cow_mem_checkpoint(r, sink, NULL));
			usleep(20000);
			CHECK_OK(cow_mem_checkpoint(r, sink, NULL));
			cow_mem_track_stop(r);
		}
	}
	if (b == COW_MEM_UFFD || b == COW_MEM_UFFD_THREAD) {
		cow_mem_region *fresh;
		CHECK_OK(cow_mem_region_alloc(SIZE, 0, &fresh));
		atomic_store(&stop, 1);
		pthread_join(w, NULL);
		atomic_store(&stop, 0);
		target = cow_mem_region_addr(fresh);
		CHECK_EQ(pthread_create(&w, NULL, blocked_writer, NULL), 0);
		usleep(5000);
		cow_mem_restore *h;
		rc = cow_mem_restore_start(fresh, image, SIZE, b, &h);
		printf("lazy restore %s: %s\n", cow_mem_backend_name(b), cow_strerror(rc));
		if (b == COW_MEM_UFFD)
			CHECK_RC(rc, COW_EOPNOTSUPP);
		else
			CHECK_OK(cow_mem_restore_wait(h, NULL));
		atomic_store(&stop, 1);
		pthread_join(w, NULL);
		cow_mem_region_destroy(fresh);
	} else {
		atomic_store(&stop, 1);
		pthread_join(w, NULL);
	}
	cow_mem_sink_destroy(sink);
	free(image);
	cow_mem_region_destroy(r);
}

/* ---- discard ---- */

/*
 * One snapshot with a mapping change right after the instant. @how:
 * 0 MADV_DONTNEED, 1 munmap of a piece, 2 mremap of a piece elsewhere.
 */
static void discard_once(cow_mem_backend b, int how)
{
	/* Registered memory (not cowkit's): the test may unmap pieces of it. */
	char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	madvise(m, SIZE, MADV_NOHUGEPAGE);
	fill(m, SIZE, (unsigned)how + 7);
	char *ref = malloc(SIZE), *image = malloc(SIZE);
	CHECK(ref && image);
	memcpy(ref, m, SIZE);
	memset(image, 0xEE, SIZE);
	cow_mem_region *r;
	CHECK_OK(cow_mem_region_register(m, SIZE, &r));
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));
	/* A small buffer and one copier: most pages are still pending below. */
	cow_mem_snap_opts o = {.backend = b, .buffer = 256u << 10};
	cow_mem_snap *s;
	CHECK_OK(cow_mem_snapshot_start(r, sink, &o, &s));
	size_t at = SIZE / 2, len = 4u << 20;
	void *moved = NULL;
	if (how == 0) {
		CHECK_EQ(madvise(m + at, len, MADV_DONTNEED), 0);
	} else if (how == 1) {
		CHECK_EQ(munmap(m + at, len), 0);
	} else {
		moved = mremap(m + at, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
			       mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
		CHECK(moved != MAP_FAILED);
	}
	cow_mem_snap_stats st;
	int rc = cow_mem_snapshot_wait(s, &st);
	const char *what[] = {"MADV_DONTNEED", "munmap", "mremap"};
	printf("%s %s: %s\n", cow_mem_backend_name(b), what[how],
	       rc ? cow_strerror(rc) : "image complete");
	if (rc == 0)
		CHECK_MEMEQ(image, ref, SIZE); /* success means the exact image */
	else
		CHECK_RC(rc, COW_MEM_ECHANGED);
	if (b == COW_MEM_FORK)
		CHECK_OK(rc); /* the child's copy is not affected */
	/* The untouched rest is still the program's, writable. */
	m[0] = 1;
	m[SIZE - 1] = 1;
	cow_mem_sink_destroy(sink);
	cow_mem_region_destroy(r);
	if (how == 0)
		munmap(m, SIZE);
	else {
		munmap(m, at);
		munmap(m + at + len, SIZE - at - len);
		if (moved)
			munmap(moved, len);
	}
	free(ref);
	free(image);
}

/* Tracking: pages discarded between checkpoints go into the next one. */
static void discard_track(cow_mem_backend b)
{
	cow_mem_region *r;
	CHECK_OK(cow_mem_region_alloc(SIZE, 0, &r));
	char *m = cow_mem_region_addr(r);
	fill(m, SIZE, 3);
	char *image = malloc(SIZE);
	CHECK(image);
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));
	CHECK_OK(cow_mem_track_start(r, b));
	CHECK_OK(cow_mem_checkpoint(r, sink, NULL));
	CHECK_MEMEQ(image, m, SIZE);
	CHECK_EQ(madvise(m + SIZE / 4, 1u << 20, MADV_DONTNEED), 0);
	m[100] = 5;
	cow_mem_ckpt_stats st;
	CHECK_OK(cow_mem_checkpoint(r, sink, &st));
	printf("track %s: %llu pages after a 1 MiB discard\n", cow_mem_backend_name(b),
	       (unsigned long long)st.pages);
	CHECK_MEMEQ(image, m, SIZE); /* the discarded MiB is zeros in the image too */
	cow_mem_track_stop(r);
	cow_mem_sink_destroy(sink);
	cow_mem_region_destroy(r);
	free(image);
}

/* Lazy restore: a discarded page reads as zeros, not as the image. */
static void discard_restore(cow_mem_backend b)
{
	char *img = malloc(SIZE);
	CHECK(img);
	fill(img, SIZE, 9);
	cow_mem_region *r;
	CHECK_OK(cow_mem_region_alloc(SIZE, 0, &r));
	char *m = cow_mem_region_addr(r);
	cow_mem_restore *h;
	CHECK_OK(cow_mem_restore_start(r, img, SIZE, b, &h));
	size_t at = SIZE - (2u << 20);
	CHECK_EQ(m[at], img[at]);
	CHECK_EQ(madvise(m + at, 1u << 20, MADV_DONTNEED), 0);
	CHECK_OK(cow_mem_restore_wait(h, NULL));
	for (size_t off = at; off < at + (1u << 20); off += 4096)
		CHECK_EQ(m[off], 0);
	CHECK_EQ(m[0], img[0]);
	cow_mem_region_destroy(r);
	free(img);
}

static void test_discard(cow_mem_backend b)
{
	for (int how = 0; how < 3; how++)
		discard_once(b, how);
	if (b != COW_MEM_FORK)
		discard_track(b);
	if (b == COW_MEM_UFFD || b == COW_MEM_UFFD_THREAD)
		discard_restore(b);
}

/* ---- syscall ---- */

static int pipe_read_into(char *dst, size_t len)
{
	int fd[2];
	CHECK_EQ(pipe(fd), 0);
	char *src = malloc(len);
	CHECK(src);
	memset(src, 0x3C, len);
	CHECK_EQ(write(fd[1], src, len), (ssize_t)len);
	ssize_t n = read(fd[0], dst, len);
	int err = n < 0 ? errno : 0;
	close(fd[0]);
	close(fd[1]);
	free(src);
	if (n >= 0) {
		CHECK_EQ(n, (ssize_t)len);
		return 0;
	}
	return -err;
}

static void test_syscall(cow_mem_backend b)
{
	cow_mem_region *r;
	CHECK_OK(cow_mem_region_alloc(SIZE, 0, &r));
	char *m = cow_mem_region_addr(r);
	fill(m, SIZE, 5);
	char *ref = malloc(SIZE), *image = malloc(SIZE);
	CHECK(ref && image);
	memcpy(ref, m, SIZE);
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));
	cow_mem_snap_opts o = {.backend = b, .buffer = 256u << 10};
	cow_mem_snap *s;
	CHECK_OK(cow_mem_snapshot_start(r, sink, &o, &s));
	int rc = pipe_read_into(m + SIZE - 8192, 4096); /* near the end: not copied yet */
	printf("snapshot %s: read(2) into the region: %s\n", cow_mem_backend_name(b),
	       cow_strerror(rc));
	if (in_thread(b))
		CHECK_RC(rc, COW_EFAULT); /* the documented limit of asking for it */
	else
		CHECK_OK(rc);
	CHECK_OK(cow_mem_snapshot_wait(s, NULL));
	CHECK_MEMEQ(image, ref, SIZE);
	if (!rc)
		CHECK_EQ(m[SIZE - 8192], 0x3C);

	if (b != COW_MEM_FORK) {
		CHECK_OK(cow_mem_track_start(r, b));
		CHECK_OK(cow_mem_checkpoint(r, sink, NULL));
		rc = pipe_read_into(m + 4096 * 3, 4096);
		printf("track %s: read(2) into the region: %s\n", cow_mem_backend_name(b),
		       cow_strerror(rc));
		if (in_thread(b))
			CHECK_RC(rc, COW_EFAULT);
		else
			CHECK_OK(rc);
		CHECK_OK(cow_mem_checkpoint(r, sink, NULL));
		CHECK_MEMEQ(image, m, SIZE); /* what read(2) wrote is in the checkpoint */
		cow_mem_track_stop(r);
	}
	if (b == COW_MEM_UFFD || b == COW_MEM_UFFD_THREAD) {
		cow_mem_region *fresh;
		CHECK_OK(cow_mem_region_alloc(SIZE, 0, &fresh));
		char *f = cow_mem_region_addr(fresh);
		cow_mem_restore *h;
		CHECK_OK(cow_mem_restore_start(fresh, ref, SIZE, b, &h));
		rc = pipe_read_into(f + SIZE - 4096, 4096);
		printf("lazy restore %s: read(2) into the region: %s\n", cow_mem_backend_name(b),
		       cow_strerror(rc));
		if (b == COW_MEM_UFFD)
			CHECK_RC(rc, COW_EFAULT);
		else
			CHECK_OK(rc);
		CHECK_OK(cow_mem_restore_wait(h, NULL));
		CHECK_MEMEQ(f, ref, SIZE - 4096);
		if (!rc)
			CHECK_EQ(f[SIZE - 1], 0x3C);
		cow_mem_region_destroy(fresh);
	}
	cow_mem_sink_destroy(sink);
	cow_mem_region_destroy(r);
	free(ref);
	free(image);
}

int main(int argc, char **argv)
{
	CHECK(argc > 2);
	cow_mem_backend b = parse(argv[2]);
	cow_mem_probe_info p;
	CHECK_OK(cow_mem_probe(&p));
	if (b == COW_MEM_UFFD && (p.uffd_error || !p.wp || !p.sigbus))
		SKIP("userfaultfd write-protect with SIGBUS unavailable");
	if (b == COW_MEM_UFFD_THREAD && (p.uffd_error || !p.wp || !p.uffd_kernel))
		SKIP("userfaultfd that sees system calls' faults unavailable");
	if (strcmp(argv[1], "blocked") == 0)
		test_blocked(b);
	else if (strcmp(argv[1], "discard") == 0)
		test_discard(b);
	else
		test_syscall(b);
	printf("ok\n");
	return 0;
}
