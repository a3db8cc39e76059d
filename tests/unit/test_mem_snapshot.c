/*
 * Live snapshot correctness: while a writer thread keeps writing random
 * pages, the image delivered to the sink must equal, byte for byte, the
 * region at the snapshot instant (a reference copy taken while the writer
 * was held off), and no write may be lost (the region must equal the
 * writer's shadow copy afterwards). A small buffer forces back-pressure.
 *
 *   test_mem_snapshot uffd|mprotect|fork|auto [thp]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "cow/mem.h"

#define SIZE (48u << 20)

static char *mem, *shadow;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop;
static atomic_long writes;
static uint64_t seed;

/*
 * The writer's stores into the region are not instrumented for
 * ThreadSanitizer: their ordering against the copier comes from the page
 * protection (a store traps until its page was copied), which TSan cannot
 * see; it instruments a store before the store traps. The library's own
 * synchronisation (state bytes, slots, futexes) stays checked.
 */
__attribute__((no_sanitize_thread)) static void put(char *p, uint64_t v)
{
	*(volatile uint64_t *)(void *)p = v;
}

static void *writer(void *arg)
{
	(void)arg;
	uint64_t s = seed | 1;
	while (!atomic_load(&stop)) {
		pthread_mutex_lock(&gate);
		for (int k = 0; k < 256; k++) {
			uint64_t r = check_rand(&s);
			size_t off = (size_t)(r % (SIZE / 8)) * 8;
			uint64_t v = r ^ (uint64_t)atomic_load(&writes);
			put(mem + off, v);
			memcpy(shadow + off, &v, 8);
			atomic_fetch_add(&writes, 1);
		}
		pthread_mutex_unlock(&gate);
	}
	return NULL;
}

static cow_mem_backend parse(const char *s)
{
	if (strcmp(s, "uffd") == 0)
		return COW_MEM_UFFD;
	if (strcmp(s, "uffd-thread") == 0)
		return COW_MEM_UFFD_THREAD;
	if (strcmp(s, "mprotect") == 0)
		return COW_MEM_MPROTECT;
	if (strcmp(s, "fork") == 0)
		return COW_MEM_FORK;
	return COW_MEM_AUTO;
}

static void one_round(cow_mem_region *r, cow_mem_backend b, size_t buffer, int round)
{
	char *image = malloc(SIZE), *ref = malloc(SIZE);
	CHECK(image && ref);
	memset(image, 0xAA, SIZE);
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));
	cow_mem_snap_opts o = {.backend = b, .buffer = buffer};
	cow_mem_snap *s;

	/* The instant: hold the writer off, copy the reference, protect. */
	pthread_mutex_lock(&gate);
	memcpy(ref, mem, SIZE);
	long before = atomic_load(&writes);
	CHECK_STARTED(cow_mem_snapshot_start(r, sink, &o, &s));
	pthread_mutex_unlock(&gate);

	cow_mem_snap_stats st;
	CHECK_OK(cow_mem_snapshot_wait(s, &st));
	long during = atomic_load(&writes) - before;
	printf("round %d: backend %s, pause %.2f ms, total %.2f ms, faults %llu, stalls %llu, "
	       "extra peak %llu KiB, writes during %ld\n",
	       round, cow_mem_backend_name(st.backend), st.pause_ns / 1e6, st.total_ns / 1e6,
	       (unsigned long long)st.faults, (unsigned long long)st.stalls,
	       (unsigned long long)(st.extra_peak >> 10), during);
	CHECK_EQ(st.backend, b);
	CHECK_EQ(st.pages, SIZE / 4096);
	if (b != COW_MEM_FORK)
		CHECK_LE(st.extra_peak, buffer ? buffer : (64u << 20));
	CHECK_MEMEQ(image, ref, SIZE);
	cow_mem_sink_destroy(sink);
	free(image);
	free(ref);
}

int main(int argc, char **argv)
{
	cow_mem_backend b = parse(argc > 1 ? argv[1] : "uffd");
	bool thp = argc > 2 && strcmp(argv[2], "thp") == 0;
	cow_mem_probe_info p;
	CHECK_OK(cow_mem_probe(&p));
	if (b == COW_MEM_AUTO) {
		b = p.snapshot;
		printf("auto picks %s: %s\n", cow_mem_backend_name(b), p.snapshot_why);
	}
	if (b == COW_MEM_UFFD && (p.uffd_error || !p.wp || !p.sigbus))
		SKIP("userfaultfd write-protect with SIGBUS unavailable: %s",
		     p.uffd_error ? cow_strerror(p.uffd_error) : "feature missing");
	if (b == COW_MEM_UFFD_THREAD && (p.uffd_error || !p.wp || !p.uffd_kernel))
		SKIP("userfaultfd that sees system calls' faults unavailable");
	seed = check_seed();

	cow_mem_region *r;
	CHECK_OK(cow_mem_region_alloc(SIZE, thp ? COW_MEM_THP : 0, &r));
	mem = cow_mem_region_addr(r);
	shadow = calloc(1, SIZE);
	CHECK(shadow);
	/* Populate most of it; leave the last MiB untouched (holes must work too). */
	for (size_t i = 0; i < SIZE - (1u << 20); i += 4096) {
		mem[i] = shadow[i] = (char)(i >> 12);
	}

	pthread_t w;
	CHECK_EQ(pthread_create(&w, NULL, writer, NULL), 0);
	one_round(r, b, 1u << 20, 1); /* 1 MiB buffer: back-pressure */
	one_round(r, b, 0, 2);	      /* default 64 MiB */

	/* A second snapshot while one is in flight is refused. */
	{
		char *img = malloc(SIZE);
		cow_mem_sink *sink;
		CHECK_OK(cow_mem_sink_buffer(img, SIZE, &sink));
		cow_mem_snap_opts o = {.backend = b};
		cow_mem_snap *s;
		pthread_mutex_lock(&gate);
		CHECK_STARTED(cow_mem_snapshot_start(r, sink, &o, &s));
		pthread_mutex_unlock(&gate);
		cow_mem_snap *s2;
		CHECK_RC(cow_mem_snapshot_start(r, sink, &o, &s2), COW_EBUSY);
		CHECK_RC(cow_mem_track_start(r, COW_MEM_AUTO), COW_EBUSY);
		CHECK_OK(cow_mem_snapshot_wait(s, NULL));
		cow_mem_sink_destroy(sink);
		free(img);
	}

	atomic_store(&stop, 1);
	pthread_join(w, NULL);
	CHECK_GT(atomic_load(&writes), 0);
	CHECK_MEMEQ(mem, shadow, SIZE); /* no write was lost */
	free(shadow);
	cow_mem_region_destroy(r);
	printf("ok\n");
	return 0;
}
