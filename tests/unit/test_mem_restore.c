/*
 * Restore: an image with zero chunks, non-zero chunks and a short tail is
 * restored eagerly and lazily; pages read right after a lazy start (while
 * the prefetcher runs) and the whole region after the wait must equal the
 * image. Zero chunks must stay holes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cow/mem.h"

#define SIZE (24u << 20)
#define IMG  (SIZE - (1u << 20)) /* the last MiB is beyond the image: zeros */

static void check_region(cow_mem_region *r, const char *img)
{
	const char *m = cow_mem_region_addr(r);
	CHECK_MEMEQ(m, img, IMG);
	for (size_t i = IMG; i < SIZE; i++)
		CHECK_EQ(m[i], 0);
}

int main(void)
{
	uint64_t seed = check_seed();
	char *img = calloc(1, IMG);
	CHECK(img);
	/* Every other 2 MiB batch has data; inside it every third 64 KiB chunk stays zero. */
	for (size_t off = 0; off < IMG; off += 4096) {
		if ((off >> 21) % 2 == 0 && (off >> 16) % 3 != 0)
			for (size_t k = 0; k < 4096; k += 64)
				img[off + k] = (char)(check_rand(&seed) | 1);
	}

	cow_mem_restore_stats st;
	cow_mem_restore *h;

	/* Eager. */
	cow_mem_region *r;
	CHECK_OK(cow_mem_region_alloc(SIZE, 0, &r));
	memset(cow_mem_region_addr(r), 0x77, SIZE); /* eager must overwrite anything */
	CHECK_OK(cow_mem_restore_start(r, img, IMG, COW_MEM_EAGER, &h));
	CHECK_OK(cow_mem_restore_wait(h, &st));
	CHECK_EQ(st.backend, COW_MEM_EAGER);
	check_region(r, img);
	cow_mem_region_destroy(r);

	CHECK_OK(cow_mem_region_alloc(SIZE, 0, &r));
	CHECK_RC(cow_mem_restore_start(r, img, SIZE + 4096, COW_MEM_EAGER, &h), COW_EINVAL);
	CHECK_RC(cow_mem_restore_start(r, img, 100, COW_MEM_EAGER, &h), COW_EINVAL);

	cow_mem_probe_info p;
	CHECK_OK(cow_mem_probe(&p));
	cow_mem_region_destroy(r);
	if (p.restore == COW_MEM_EAGER && !p.sigbus)
		SKIP("lazy restore unavailable: %s", p.restore_why);
	printf("auto picks %s: %s\n", cow_mem_backend_name(p.restore), p.restore_why);

	/* Lazy, both ways: faults served by the prefetcher, or in the toucher. */
	cow_mem_backend lazy[2] = {COW_MEM_UFFD_THREAD, COW_MEM_UFFD};
	for (int i = 0; i < 2; i++) {
		cow_mem_backend b = lazy[i];
		if ((b == COW_MEM_UFFD_THREAD && !p.uffd_kernel) ||
		    (b == COW_MEM_UFFD && !p.sigbus)) {
			printf("%s: unavailable here\n", cow_mem_backend_name(b));
			continue;
		}
		CHECK_OK(cow_mem_region_alloc(SIZE, 0, &r));
		/* Touch scattered pages at once, from two threads' worth of reads. */
		const volatile char *m = cow_mem_region_addr(r);
		CHECK_STARTED(cow_mem_restore_start(r, img, IMG, b, &h));
		cow_mem_restore *h2;
		CHECK_RC(cow_mem_restore_start(r, img, IMG, b, &h2), COW_EBUSY);
		for (int k = 0; k < 2000; k++) {
			size_t off = (size_t)(check_rand(&seed) % SIZE);
			CHECK_EQ(m[off], off < IMG ? img[off] : 0);
		}
		/* Writes to a lazily restored page land on the restored content. */
		((char *)m)[SIZE - 5] = 42;
		CHECK_OK(cow_mem_restore_wait(h, &st));
		printf("lazy %s: %llu faults, first %.1f us, total %.2f ms, %llu zero chunks, "
		       "%llu bytes\n",
		       cow_mem_backend_name(b), (unsigned long long)st.faults,
		       st.first_fault_ns / 1e3, st.total_ns / 1e6,
		       (unsigned long long)st.zero_chunks, (unsigned long long)st.bytes);
		CHECK_EQ(st.backend, b);
		CHECK_GT(st.zero_chunks, 0);
		/* Exactly the non-zero 64 KiB chunks were copied; zero ones stay holes. */
		uint64_t data = 0;
		for (size_t off = 0; off < IMG; off += 65536) {
			size_t k = 0;
			while (k < 65536 && img[off + k] == 0)
				k++;
			if (k < 65536)
				data += 65536;
		}
		CHECK_EQ(st.bytes, data);
		CHECK_LT(st.bytes, IMG);
		CHECK_EQ(m[SIZE - 5], 42);
		((char *)m)[SIZE - 5] = 0;
		check_region(r, img);
		cow_mem_region_destroy(r);
	}
	free(img);
	printf("ok\n");
	return 0;
}
