/*
 * Several regions in one instant (cow_mem_snapshot_start_many): 70 regions
 * of mixed sizes (more than the 64 slots of one trap-table block), handed
 * over in an order unlike their addresses, share one small buffer while a
 * writer thread writes random words across all of them. Each region's image
 * must equal, byte for byte, the model of that region at the one instant (a
 * shadow copy the writer keeps in step under a gate), the stats must count
 * every page, and extra memory must stay within the one buffer. A last
 * round (not fork) takes the view: reads at random addresses of random
 * regions, while the writer goes on, equal the model at the instant. Afterwards
 * no write is lost. Then the refusals: bad arguments, a busy region (which
 * leaves the others unclaimed), and a failing sink (which fails the whole
 * snapshot and ends every sink with the error).
 *
 *   test_mem_many uffd-thread|uffd|mprotect|fork
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "cow/mem.h"

#define NREG   70
#define BUFFER (1u << 20)

static cow_mem_region *regs[NREG];
static char *mem[NREG], *shadow[NREG];
static size_t size[NREG];
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
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
	(void)arg;
	uint64_t s = seed | 1;
	while (!atomic_load(&stop)) {
		pthread_mutex_lock(&gate);
		for (int k = 0; k < 256; k++) {
			uint64_t r = check_rand(&s);
			int i = (int)(r % NREG);
			size_t off = (size_t)((r >> 8) % (size[i] / 8)) * 8;
			uint64_t v = r ^ (uint64_t)atomic_load(&writes);
			put(mem[i] + off, v);
			memcpy(shadow[i] + off, &v, 8);
			atomic_fetch_add(&writes, 1);
		}
		pthread_mutex_unlock(&gate);
	}
	return NULL;
}

/* A sink that fails its first write. */
static int fail_write(void *ctx, uint64_t off, const void *data, size_t len)
{
	(void)off, (void)data, (void)len;
	return ++*(int *)ctx >= 1 ? COW_EIO : 0;
}

static int ends[NREG], end_status[NREG];

static int note_end(void *ctx, int status)
{
	int i = (int)(intptr_t)ctx;
	ends[i]++;
	end_status[i] = status;
	return 0;
}

static int ok_write(void *ctx, uint64_t off, const void *data, size_t len)
{
	(void)ctx, (void)off, (void)data, (void)len;
	return 0;
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
	uint64_t rs = seed;

	size_t total = 0;
	for (int i = 0; i < NREG; i++) {
		/* One page up to 2 MiB, a few odd sizes; some left partly untouched. */
		size[i] = ((size_t)(check_rand(&rs) % 512) + 1) * 4096;
		CHECK_OK(cow_mem_region_alloc(size[i], 0, &regs[i]));
		mem[i] = cow_mem_region_addr(regs[i]);
		shadow[i] = calloc(1, size[i]);
		CHECK(shadow[i]);
		for (size_t o = 0; o < size[i] - (i % 3 ? 0 : 4096); o += 4096)
			mem[i][o] = shadow[i][o] = (char)(i + (int)(o >> 12));
		total += size[i];
	}
	/* Hand them over in a shuffled order. */
	int order[NREG];
	for (int i = 0; i < NREG; i++)
		order[i] = i;
	for (int i = NREG - 1; i > 0; i--) {
		int j = (int)(check_rand(&rs) % (uint64_t)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}

	pthread_t w;
	CHECK_EQ(pthread_create(&w, NULL, writer, NULL), 0);
	for (int round = 0; round < 4; round++) {
		bool view = round == 3;
		if (view && b == COW_MEM_FORK)
			break; /* fork refuses the view (test_mem_view.c) */
		cow_mem_region *rv[NREG];
		cow_mem_sink *sv[NREG];
		char *image[NREG], *ref[NREG];
		/* Region order[0] goes to an fd (the fork child writes it itself). */
		FILE *tf = tmpfile();
		CHECK(tf);
		for (int k = 0; k < NREG; k++) {
			int i = order[k];
			rv[k] = regs[i];
			image[i] = malloc(size[i]);
			ref[i] = malloc(size[i]);
			CHECK(image[i] && ref[i]);
			memset(image[i], 0xAA, size[i]);
			if (k == 0)
				CHECK_OK(cow_mem_sink_fd(fileno(tf), 0, &sv[k]));
			else
				CHECK_OK(cow_mem_sink_buffer(image[i], size[i], &sv[k]));
		}
		/* The view keeps pre-images until the wait: give it room. */
		cow_mem_snap_opts o = {.backend = b,
				       .buffer = view ? 0 : BUFFER,
				       .flags = view ? COW_MEM_SNAP_VIEW : 0};
		cow_mem_snap *s;
		pthread_mutex_lock(&gate);
		for (int i = 0; i < NREG; i++)
			memcpy(ref[i], shadow[i], size[i]); /* the model at the instant */
		CHECK_STARTED(cow_mem_snapshot_start_many(rv, NREG, sv, &o, &s));
		pthread_mutex_unlock(&gate);
		long before = atomic_load(&writes);
		/* Keep writing while it streams, at least a while. */
		while (atomic_load(&writes) - before < 20000)
			usleep(1000);
		for (int k = 0; view && k < 2000; k++) {
			char got[9000];
			int i = (int)(check_rand(&rs) % NREG);
			size_t lim = size[i] < sizeof(got) ? size[i] : sizeof(got);
			size_t len = (size_t)(check_rand(&rs) % lim) + 1;
			size_t off = (size_t)(check_rand(&rs) % (size[i] - len + 1));
			CHECK_OK(cow_mem_snapshot_read_addr(s, mem[i] + off, got, len));
			CHECK_MEMEQ(got, ref[i] + off, len);
			if (i == order[0]) {
				CHECK_OK(cow_mem_snapshot_read(s, off, got, len)); /* rs[0] */
				CHECK_MEMEQ(got, ref[i] + off, len);
			}
		}
		cow_mem_snap_stats st;
		CHECK_OK(cow_mem_snapshot_wait(s, &st));
		printf("round %d: %s, %d regions, %zu pages, pause %.2f ms, faults %llu, stalls "
		       "%llu, extra %llu KiB, writes during %ld\n",
		       round, cow_mem_backend_name(st.backend), NREG, total / 4096,
		       st.pause_ns / 1e6, (unsigned long long)st.faults,
		       (unsigned long long)st.stalls, (unsigned long long)(st.extra_peak >> 10),
		       atomic_load(&writes) - before);
		CHECK_EQ(st.backend, b);
		CHECK_EQ(st.pages, total / 4096);
		if (b != COW_MEM_FORK)
			CHECK_LE(st.extra_peak, view ? (64u << 20) : BUFFER);
		CHECK_EQ(pread(fileno(tf), image[order[0]], size[order[0]], 0),
			 (ssize_t)size[order[0]]);
		for (int i = 0; i < NREG; i++) {
			CHECK_MEMEQ(image[i], ref[i], size[i]);
			free(image[i]);
			free(ref[i]);
		}
		for (int k = 0; k < NREG; k++)
			cow_mem_sink_destroy(sv[k]);
		fclose(tf);
	}

	/* Refusals. */
	cow_mem_snap_opts o = {.backend = b};
	cow_mem_snap *s;
	cow_mem_sink *sv[3];
	const cow_mem_sink_ops ops = {.write = ok_write, .end = note_end};
	for (int k = 0; k < 3; k++)
		CHECK_OK(cow_mem_sink_callbacks(&ops, (void *)(intptr_t)k, &sv[k]));
	cow_mem_region *dup[2] = {regs[0], regs[0]};
	CHECK_RC(cow_mem_snapshot_start_many(dup, 2, sv, &o, &s), COW_EINVAL);
	cow_mem_region *two[2] = {regs[0], regs[1]};
	cow_mem_sink *same[2] = {sv[0], sv[0]};
	CHECK_RC(cow_mem_snapshot_start_many(two, 2, same, &o, &s), COW_EINVAL);
	CHECK_RC(cow_mem_snapshot_start_many(two, 0, sv, &o, &s), COW_EINVAL);
	cow_mem_region *nul[2] = {regs[0], NULL};
	CHECK_RC(cow_mem_snapshot_start_many(nul, 2, sv, &o, &s), COW_EINVAL);
	CHECK_EQ(ends[0] + ends[1] + ends[2], 0); /* refused before any begin */
	/* A busy region: nothing is claimed, so the others stay free. */
	CHECK_OK(cow_mem_track_start(regs[2], COW_MEM_AUTO));
	cow_mem_region *three[3] = {regs[0], regs[1], regs[2]};
	CHECK_RC(cow_mem_snapshot_start_many(three, 3, sv, &o, &s), COW_EBUSY);
	cow_mem_track_stop(regs[2]);
	pthread_mutex_lock(&gate);
	CHECK_STARTED(cow_mem_snapshot_start_many(three, 3, sv, &o, &s));
	pthread_mutex_unlock(&gate);
	CHECK_OK(cow_mem_snapshot_wait(s, NULL));
	for (int k = 0; k < 3; k++) {
		CHECK_EQ(ends[k], 1);
		CHECK_EQ(end_status[k], 0);
	}
	for (int k = 0; k < 3; k++)
		cow_mem_sink_destroy(sv[k]);
	/* One failing sink fails the snapshot; every sink ends with the error. */
	int count = 0;
	const cow_mem_sink_ops bad = {.write = fail_write};
	CHECK_OK(cow_mem_sink_callbacks(&bad, &count, &sv[1]));
	CHECK_OK(cow_mem_sink_callbacks(&ops, (void *)(intptr_t)0, &sv[0]));
	CHECK_OK(cow_mem_sink_callbacks(&ops, (void *)(intptr_t)2, &sv[2]));
	/* The biggest region fails. */
	int big = 0;
	for (int i = 1; i < NREG; i++)
		if (size[i] > size[big])
			big = i;
	cow_mem_region *fr[3] = {regs[big == 0 ? 1 : 0], regs[big], regs[big == 2 ? 3 : 2]};
	pthread_mutex_lock(&gate);
	CHECK_STARTED(cow_mem_snapshot_start_many(fr, 3, sv, &o, &s));
	pthread_mutex_unlock(&gate);
	cow_mem_snap_stats st;
	CHECK_RC(cow_mem_snapshot_wait(s, &st), COW_EIO);
	CHECK_EQ(st.pages, 0);
	CHECK_EQ(ends[0], 2);
	CHECK_EQ(end_status[0], COW_EIO);
	CHECK_EQ(ends[2], 2);
	CHECK_EQ(end_status[2], COW_EIO);
	for (int k = 0; k < 3; k++)
		cow_mem_sink_destroy(sv[k]);

	atomic_store(&stop, 1);
	pthread_join(w, NULL);
	for (int i = 0; i < NREG; i++) {
		CHECK_MEMEQ(mem[i], shadow[i], size[i]); /* no write was lost */
		free(shadow[i]);
		cow_mem_region_destroy(regs[i]);
	}
	printf("ok\n");
	return 0;
}
