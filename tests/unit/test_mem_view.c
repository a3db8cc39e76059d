/*
 * The read-at-the-instant view (COW_MEM_SNAP_VIEW, cow_mem_snapshot_read):
 * while two writer threads overwrite random words of the region, random
 * unaligned ranges read through the view must equal the model of the region
 * at the instant (a shadow copy the writers keep in step under a gate),
 * although the region itself has moved on; so must one read of the whole
 * region just before the wait, and the image the sink got. Run with the
 * default buffer and with one smaller than the pages written, where writers
 * wait until cow_mem_snapshot_wait ends the view (BLOCK), and with ABORT on
 * that small buffer, where reads report COW_EFULL once it filled. A discard
 * (MADV_DONTNEED) of pages not written since the instant takes the view's
 * pre-images away: the wait must fail with COW_MEM_ECHANGED, never vouch
 * for reads that saw zeros. Also the refusals: no VIEW flag, out of range,
 * the fork backend.
 *
 *   test_mem_view uffd-thread|uffd|mprotect|fork
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "cow/mem.h"

#define SIZE	 (16u << 20)
#define NWRITERS 2

static char *mem, *shadow;
static pthread_rwlock_t gate;
static atomic_int stop;
static atomic_long writes;
static uint64_t seed;

/* Uninstrumented for TSan: ordered by page protection (test_mem_snapshot.c). */
__attribute__((no_sanitize_thread)) static void put(char *p, uint64_t v)
{
	*(volatile uint64_t *)(void *)p = v;
}

static void *writer(void *arg)
{
	size_t t = (size_t)(intptr_t)arg;
	uint64_t s = (seed + t * 7919) | 1;
	while (!atomic_load(&stop)) {
		pthread_rwlock_rdlock(&gate);
		for (int k = 0; k < 64; k++) {
			uint64_t r = check_rand(&s);
			size_t w = (size_t)(r % (SIZE / 8 / NWRITERS)) * NWRITERS + t;
			put(mem + w * 8, r);
			memcpy(shadow + w * 8, &r, 8);
			atomic_fetch_add(&writes, 1);
		}
		pthread_rwlock_unlock(&gate);
		usleep(50); /* leave the view pages that were streamed and not yet written */
	}
	return NULL;
}

static void wait_writes(long n)
{
	long before = atomic_load(&writes);
	while (atomic_load(&writes) - before < n)
		usleep(500);
}

/* One snapshot with the view; returns wait's code. */
static int one(cow_mem_region *r, cow_mem_backend b, size_t buffer, cow_mem_stall stall,
	       char *image, char *ref, char *got)
{
	memset(image, 0xAA, SIZE);
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));
	cow_mem_snap_opts o = {
		.backend = b, .buffer = buffer, .stall = stall, .flags = COW_MEM_SNAP_VIEW};
	cow_mem_snap *s;
	CHECK_STARTED(cow_mem_snapshot_prepare(r, sink, &o, &s));
	CHECK_RC(cow_mem_snapshot_read(s, 0, got, 8), COW_EINVAL); /* before the instant */
	pthread_rwlock_wrlock(&gate);
	memcpy(ref, shadow, SIZE);
	CHECK_STARTED(cow_mem_snapshot_instant(s));
	pthread_rwlock_unlock(&gate);

	uint64_t rs = seed ^ 0x5eed;
	int rc = 0;
	long reads = 0;
	for (int round = 0; round < 40 && !rc; round++) {
		for (int k = 0; k < 50 && !rc; k++, reads++) {
			size_t len = (size_t)(check_rand(&rs) % 12000) + 1;
			size_t off = (size_t)(check_rand(&rs) % (SIZE - len));
			rc = k % 2 ? cow_mem_snapshot_read(s, off, got, len)
				   : cow_mem_snapshot_read_addr(s, mem + off, got, len);
			if (!rc)
				CHECK_MEMEQ(got, ref + off, len);
		}
		usleep(500); /* the writers move on */
	}
	if (!rc) {
		CHECK_RC(cow_mem_snapshot_read(s, SIZE - 4, got, 8), COW_EINVAL);
		CHECK_RC(cow_mem_snapshot_read_addr(s, mem + SIZE, got, 1), COW_EINVAL);
		rc = cow_mem_snapshot_read(s, 0, got, SIZE);
		if (!rc) {
			CHECK_MEMEQ(got, ref, SIZE);
			/*
			 * Not trivially so: the region itself has moved on. No gate:
			 * with a small buffer the writers may be waiting, inside
			 * their critical section, for the wait below.
			 */
			CHECK(memcmp(mem, ref, SIZE) != 0);
		}
	}
	cow_mem_snap_stats st;
	int wrc = cow_mem_snapshot_wait(s, &st);
	printf("%s buffer %zu KiB stall %d: read rc %s, wait rc %s, %ld reads, faults %llu, "
	       "stalls %llu, extra peak %llu KiB, total %.1f ms\n",
	       cow_mem_backend_name(st.backend), buffer >> 10, (int)stall, cow_errname(rc),
	       cow_errname(wrc), reads, (unsigned long long)st.faults,
	       (unsigned long long)st.stalls, (unsigned long long)(st.extra_peak >> 10),
	       st.total_ns / 1e6);
	if (rc)
		CHECK_RC(wrc, rc); /* a read failed only because the snapshot did */
	if (!wrc) {
		CHECK_MEMEQ(image, ref, SIZE);
		CHECK_LE(st.extra_peak, buffer ? buffer : (64u << 20));
	}
	cow_mem_sink_destroy(sink);
	return wrc;
}

int main(int argc, char **argv)
{
	cow_mem_backend b;
	CHECK_OK(cow_mem_backend_parse(argc > 1 ? argv[1] : "uffd-thread", &b));
	cow_mem_probe_info p;
	CHECK_OK(cow_mem_probe(&p));
	if (b == COW_MEM_UFFD && (p.uffd_error || !p.wp || !p.sigbus))
		SKIP("userfaultfd write-protect with SIGBUS unavailable");
	if (b == COW_MEM_UFFD_THREAD && (p.uffd_error || !p.wp || !p.uffd_kernel))
		SKIP("userfaultfd that sees system calls' faults unavailable");
	if (b == COW_MEM_MPROTECT && !p.pagemap_scan)
		SKIP("mprotect snapshots need PAGEMAP_SCAN");
	seed = check_seed();

	cow_mem_region *r;
	CHECK_OK(cow_mem_region_alloc(SIZE, 0, &r));
	mem = cow_mem_region_addr(r);
	shadow = calloc(1, SIZE);
	char *image = malloc(SIZE), *ref = malloc(SIZE), *got = malloc(SIZE);
	CHECK(shadow && image && ref && got);
	for (size_t i = 0; i < SIZE - (1u << 20); i += 4096) /* the last MiB stays holes */
		mem[i] = shadow[i] = (char)(i >> 12);

	/* Refusals. */
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));
	cow_mem_snap *s;
	cow_mem_snap_opts fo = {.backend = COW_MEM_FORK, .flags = COW_MEM_SNAP_VIEW};
	CHECK_RC(cow_mem_snapshot_prepare(r, sink, &fo, &s), COW_EOPNOTSUPP);
	cow_mem_snap_opts bad = {.backend = b, .flags = 0x80};
	CHECK_RC(cow_mem_snapshot_prepare(r, sink, &bad, &s), COW_EINVAL);
	if (b == COW_MEM_FORK) {
		cow_mem_sink_destroy(sink);
		cow_mem_region_destroy(r);
		free(shadow);
		free(image);
		free(ref);
		free(got);
		printf("fork: the view is refused (the instant's pages live in the child)\nok\n");
		return 0;
	}
	cow_mem_snap_opts plain = {.backend = b};
	CHECK_STARTED(cow_mem_snapshot_start(r, sink, &plain, &s));
	CHECK_RC(cow_mem_snapshot_read(s, 0, got, 8), COW_EINVAL); /* no VIEW flag */
	CHECK_OK(cow_mem_snapshot_wait(s, NULL));
	cow_mem_sink_destroy(sink);

	pthread_rwlockattr_t ga;
	pthread_rwlockattr_init(&ga);
	pthread_rwlockattr_setkind_np(&ga, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	CHECK_EQ(pthread_rwlock_init(&gate, &ga), 0);
	pthread_t w[NWRITERS];
	for (int t = 0; t < NWRITERS; t++)
		CHECK_EQ(pthread_create(&w[t], NULL, writer, (void *)(intptr_t)t), 0);
	wait_writes(10000);

	/* Room for every pre-image. */
	CHECK_OK(one(r, b, 0, COW_MEM_STALL_BLOCK, image, ref, got));
	/* 512 KiB: writers fill it with pre-images and wait for the end of the view. */
	CHECK_OK(one(r, b, 512u << 10, COW_MEM_STALL_BLOCK, image, ref, got));
	/* The same buffer with ABORT: the snapshot, and the reads, fail with COW_EFULL. */
	int rc = one(r, b, 512u << 10, COW_MEM_STALL_ABORT, image, ref, got);
	CHECK(rc == 0 || rc == COW_EFULL);

	wait_writes(10000);
	atomic_store(&stop, 1);
	for (int t = 0; t < NWRITERS; t++)
		pthread_join(w[t], NULL);
	CHECK_MEMEQ(mem, shadow, SIZE); /* no write was lost */
	for (size_t i = 0; i < SIZE; i += 4096)
		put(mem + i, i); /* nothing left protected */

	/* A discard under the view, with the writers stopped. */
	CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));
	cow_mem_snap_opts vo = {.backend = b, .flags = COW_MEM_SNAP_VIEW};
	CHECK_STARTED(cow_mem_snapshot_start(r, sink, &vo, &s));
	usleep(20000); /* let the copier stream most of it */
	CHECK_EQ(madvise(mem + (4u << 20), 1u << 20, MADV_DONTNEED), 0);
	int vrc = cow_mem_snapshot_read(s, 4u << 20, got, 1u << 20);
	CHECK(vrc == 0 || vrc == COW_MEM_ECHANGED);
	cow_mem_snap_stats st;
	rc = cow_mem_snapshot_wait(s, &st);
	printf("%s: discard under the view: read %s, wait %s\n", cow_mem_backend_name(b),
	       cow_errname(vrc), cow_errname(rc));
	CHECK_RC(rc, COW_MEM_ECHANGED);
	cow_mem_sink_destroy(sink);
	cow_mem_region_destroy(r);
	free(shadow);
	free(image);
	free(ref);
	free(got);
	printf("ok\n");
	return 0;
}
