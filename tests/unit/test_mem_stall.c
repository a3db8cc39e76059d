/*
 * Stall policy: a 64 KiB buffer, four writer threads writing random pages
 * and a sink that sleeps on every write, so the buffer fills. Each policy:
 *
 *   block  the image is exact, extra memory stays within the buffer, and
 *          writers waited for it (stalls counted);
 *   grow   the image is exact, the buffer grew (stats) and extra memory
 *          stays within buffer_max;
 *   abort  cow_mem_snapshot_wait returns COW_EFULL, the sink ends with it,
 *          no page is reported delivered; the writers kept running, none of
 *          their writes is lost, every page is writable after, and the next
 *          snapshot of the region (blocking) is exact.
 *
 * The fork backend has no buffer and ignores the policy: all three succeed.
 *
 *   test_mem_stall block|grow|abort uffd-thread|uffd|mprotect|fork
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cow/mem.h"

#define SIZE	 (8u << 20)
#define NWRITERS 4
#define BUFFER	 (64u << 10)
#define BUF_MAX	 (8u << 20)

static char *mem, *shadow;
static pthread_rwlock_t gate; /* writers read-lock it; the instant write-locks it */
static atomic_int stop;
static atomic_long writes;
static uint64_t seed;

/* Uninstrumented for TSan: ordered by page protection (test_mem_snapshot.c). */
__attribute__((no_sanitize_thread)) static void put(char *p, uint64_t v)
{
	*(volatile uint64_t *)(void *)p = v;
}

/* Writer @t owns the words whose index is t modulo NWRITERS (of shadow too). */
static void *writer(void *arg)
{
	size_t t = (size_t)(intptr_t)arg;
	uint64_t s = (seed + t) | 1;
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
	}
	return NULL;
}

struct slow {
	char *image;
	int end_status, ends;
};

static int slow_write(void *ctx, uint64_t off, const void *data, size_t len)
{
	struct slow *c = ctx;
	memcpy(c->image + off, data, len);
	usleep(500);
	return 0;
}

static int slow_end(void *ctx, int status)
{
	struct slow *c = ctx;
	c->ends++;
	c->end_status = status;
	return 0;
}

/* One snapshot under the writers with @policy; returns wait's code. */
static int one(cow_mem_region *r, cow_mem_backend b, cow_mem_stall policy, char *image, char *ref,
	       cow_mem_snap_stats *st, struct slow *c)
{
	memset(image, 0xAA, SIZE);
	*c = (struct slow){.image = image};
	const cow_mem_sink_ops ops = {.write = slow_write, .end = slow_end};
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_callbacks(&ops, c, &sink));
	cow_mem_snap_opts o = {
		.backend = b, .buffer = BUFFER, .stall = policy, .buffer_max = BUF_MAX};
	cow_mem_snap *s;
	pthread_rwlock_wrlock(&gate);
	memcpy(ref, shadow, SIZE);
	CHECK_STARTED(cow_mem_snapshot_start(r, sink, &o, &s));
	pthread_rwlock_unlock(&gate);
	long before = atomic_load(&writes);
	int rc = cow_mem_snapshot_wait(s, st);
	printf("%s/%d: rc %s, pause %.2f ms, total %.1f ms, faults %llu, stalls %llu, grows "
	       "%llu, buffer %llu KiB, extra peak %llu KiB, writes during %ld\n",
	       cow_mem_backend_name(st->backend), (int)policy, cow_errname(rc), st->pause_ns / 1e6,
	       st->total_ns / 1e6, (unsigned long long)st->faults, (unsigned long long)st->stalls,
	       (unsigned long long)st->grows, (unsigned long long)(st->buffer_bytes >> 10),
	       (unsigned long long)(st->extra_peak >> 10), atomic_load(&writes) - before);
	CHECK_EQ(c->ends, 1);
	CHECK_EQ(c->end_status, rc);
	cow_mem_sink_destroy(sink);
	return rc;
}

int main(int argc, char **argv)
{
	const char *pol = argc > 1 ? argv[1] : "block";
	cow_mem_stall policy = strcmp(pol, "grow") == 0	   ? COW_MEM_STALL_GROW
			       : strcmp(pol, "abort") == 0 ? COW_MEM_STALL_ABORT
							   : COW_MEM_STALL_BLOCK;
	cow_mem_backend b;
	CHECK_OK(cow_mem_backend_parse(argc > 2 ? argv[2] : "uffd-thread", &b));
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
	char *image = malloc(SIZE), *ref = malloc(SIZE);
	CHECK(shadow && image && ref);
	for (size_t i = 0; i < SIZE; i += 4096)
		mem[i] = shadow[i] = (char)(i >> 12);

	/* An unknown policy is refused before anything is armed. */
	{
		cow_mem_sink *sink;
		CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));
		cow_mem_snap_opts o = {.backend = b, .stall = (cow_mem_stall)7};
		cow_mem_snap *s;
		CHECK_RC(cow_mem_snapshot_start(r, sink, &o, &s), COW_EINVAL);
		cow_mem_sink_destroy(sink);
	}

	/* glibc's default rwlock starves the instant's write lock behind the writers. */
	pthread_rwlockattr_t ga;
	pthread_rwlockattr_init(&ga);
	pthread_rwlockattr_setkind_np(&ga, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	CHECK_EQ(pthread_rwlock_init(&gate, &ga), 0);
	pthread_t w[NWRITERS];
	for (int t = 0; t < NWRITERS; t++)
		CHECK_EQ(pthread_create(&w[t], NULL, writer, (void *)(intptr_t)t), 0);
	while (atomic_load(&writes) < 10000)
		usleep(1000);

	cow_mem_snap_stats st;
	struct slow c;
	int rc = one(r, b, policy, image, ref, &st, &c);
	CHECK_EQ(st.backend, b);
	if (b == COW_MEM_FORK || policy != COW_MEM_STALL_ABORT) {
		CHECK_OK(rc);
		CHECK_EQ(st.pages, SIZE / 4096);
		CHECK_MEMEQ(image, ref, SIZE);
	}
	if (b != COW_MEM_FORK) {
		CHECK_GT(st.faults, 0);
		if (policy == COW_MEM_STALL_BLOCK) {
			CHECK_GT(st.stalls, 0);
			CHECK_LE(st.extra_peak, BUFFER);
			CHECK_EQ(st.grows, 0);
			CHECK_EQ(st.buffer_bytes, BUFFER);
		} else if (policy == COW_MEM_STALL_GROW) {
			CHECK_GT(st.grows, 0);
			CHECK_GT(st.buffer_bytes, BUFFER);
			CHECK_LE(st.buffer_bytes, BUF_MAX);
			CHECK_GT(st.extra_peak, BUFFER); /* it really used the growth */
			CHECK_LE(st.extra_peak, BUF_MAX);
		} else {
			CHECK_RC(rc, COW_EFULL);
			CHECK_EQ(st.pages, 0);
			CHECK_GE(st.stalls, 1);
			CHECK_LE(st.extra_peak, BUFFER);
		}
	}

	/* The writers ran on through it; stop them and compare. */
	long before = atomic_load(&writes);
	while (atomic_load(&writes) - before < 10000)
		usleep(1000);
	atomic_store(&stop, 1);
	for (int t = 0; t < NWRITERS; t++)
		pthread_join(w[t], NULL);
	CHECK_MEMEQ(mem, shadow, SIZE); /* no write was lost */
	/* Every page is writable now: nothing is left protected. */
	for (size_t i = 0; i < SIZE; i += 4096) {
		put(mem + i + 8, i);
		memcpy(shadow + i + 8, &i, 8);
	}
	/* The region was released: the next snapshot works and is exact. */
	CHECK_EQ(one(r, b, COW_MEM_STALL_BLOCK, image, ref, &st, &c), 0);
	CHECK_MEMEQ(image, ref, SIZE);
	CHECK_MEMEQ(image, mem, SIZE);

	cow_mem_region_destroy(r);
	free(shadow);
	free(image);
	free(ref);
	printf("ok\n");
	return 0;
}
