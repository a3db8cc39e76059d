/*
 * Dirty tracking: after the first (full) checkpoint, each checkpoint must
 * deliver exactly the pages written since the previous one, and a sink that
 * applies them must hold the region byte for byte.
 *
 *   test_mem_track auto|uffd|mprotect
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cow/mem.h"

#define SIZE   (16u << 20)
#define NPAGES (SIZE / 4096)

static int fail_writes;

static int failing_write(void *ctx, uint64_t off, const void *data, size_t len)
{
	(void)ctx;
	(void)off;
	(void)data;
	(void)len;
	return fail_writes ? COW_EIO : 0;
}

int main(int argc, char **argv)
{
	/* Names and backends map both ways; nothing else is a name. */
	for (int k = COW_MEM_AUTO; k <= COW_MEM_UFFD_THREAD; k++) {
		cow_mem_backend back;
		CHECK_OK(cow_mem_backend_parse(cow_mem_backend_name((cow_mem_backend)k), &back));
		CHECK_EQ((int)back, k);
	}
	cow_mem_backend b;
	CHECK_RC(cow_mem_backend_parse("UFFD", &b), COW_EINVAL);
	CHECK_RC(cow_mem_backend_parse("", &b), COW_EINVAL);
	CHECK_RC(cow_mem_backend_parse("uffd\xc3\xa9", &b), COW_EINVAL);
	CHECK_RC(cow_mem_backend_parse(NULL, &b), COW_EINVAL);
	CHECK_OK(cow_mem_backend_parse(argc > 1 ? argv[1] : "auto", &b));
	cow_mem_probe_info p;
	CHECK_OK(cow_mem_probe(&p));
	if (b == COW_MEM_UFFD && (p.uffd_error || !p.wp || !p.sigbus))
		SKIP("userfaultfd write-protect with SIGBUS unavailable");
	if (b == COW_MEM_UFFD_THREAD && (p.uffd_error || !p.wp || !p.uffd_kernel))
		SKIP("userfaultfd that sees system calls' faults unavailable");
	printf("auto picks %s: %s\n", cow_mem_backend_name(p.track), p.track_why);
	uint64_t seed = check_seed();

	cow_mem_region *r;
	CHECK_OK(cow_mem_region_alloc(SIZE, 0, &r));
	char *mem = cow_mem_region_addr(r);
	for (size_t i = 0; i < SIZE / 2; i += 4096)
		mem[i] = 1;

	char *image = malloc(SIZE);
	CHECK(image);
	memset(image, 0x5A, SIZE);
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));

	CHECK_RC(cow_mem_checkpoint(r, sink, NULL), COW_EINVAL); /* not tracking */
	CHECK_STARTED(cow_mem_track_start(r, b));
	CHECK_RC(cow_mem_track_start(r, b), COW_EBUSY);

	cow_mem_ckpt_stats st;
	CHECK_OK(cow_mem_checkpoint(r, sink, &st));
	CHECK(st.full);
	CHECK_EQ(st.pages, NPAGES);
	CHECK_MEMEQ(image, mem, SIZE);
	printf("full: backend %s, %llu pages, %.2f ms\n", cow_mem_backend_name(st.backend),
	       (unsigned long long)st.pages, st.total_ns / 1e6);

	unsigned char *written = calloc(NPAGES, 1);
	for (int round = 0; round < 6; round++) {
		memset(written, 0, NPAGES);
		size_t distinct = 0;
		int nwrites = round == 0 ? 0 : (int)(check_rand(&seed) % 3000);
		for (int k = 0; k < nwrites; k++) {
			uint64_t x = check_rand(&seed);
			size_t off = (size_t)(x % SIZE);
			mem[off] = (char)(x >> 40);
			if (!written[off / 4096]++)
				distinct++;
		}
		CHECK_OK(cow_mem_checkpoint(r, sink, &st));
		CHECK(!st.full);
		printf("round %d: %zu pages written, %llu delivered in %llu runs, %.3f ms\n", round,
		       distinct, (unsigned long long)st.pages, (unsigned long long)st.runs,
		       st.total_ns / 1e6);
		CHECK_EQ(st.pages, distinct);
		CHECK_MEMEQ(image, mem, SIZE);
	}

	/* A failing sink: the next checkpoint is full again, nothing lost. */
	cow_mem_sink_ops ops = {.write = failing_write};
	cow_mem_sink *bad;
	CHECK_OK(cow_mem_sink_callbacks(&ops, NULL, &bad));
	mem[4096 * 7] ^= 1;
	fail_writes = 1;
	CHECK_RC(cow_mem_checkpoint(r, bad, NULL), COW_EIO);
	CHECK_OK(cow_mem_checkpoint(r, sink, &st));
	CHECK(st.full);
	CHECK_MEMEQ(image, mem, SIZE);

	cow_mem_track_stop(r);
	cow_mem_track_stop(r);
	mem[0] = 9; /* writable again, no trap left */
	CHECK_RC(cow_mem_checkpoint(r, sink, NULL), COW_EINVAL);

	/* Tracking can start again, and destroy stops it. */
	CHECK_STARTED(cow_mem_track_start(r, b));
	cow_mem_sink_destroy(bad);
	cow_mem_sink_destroy(sink);
	cow_mem_region_destroy(r);
	free(written);
	free(image);
	printf("ok\n");
	return 0;
}
