/*
 * Restore at the original address: a region holding a linked structure with
 * absolute pointers is snapshotted, unmapped, mapped again at the same
 * address with cow_mem_region_alloc_at and restored lazily (or eagerly);
 * walking the pointers while the prefetcher still runs must find every node
 * and the region must equal the image. A range that is taken, wholly or in
 * part, is refused with COW_EEXIST and left as it was.
 *
 *   test_mem_restore_at uffd-thread|uffd|eager
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "cow/mem.h"

#define SIZE  (16u << 20)
#define NODES 20000

struct node {
	struct node *next;
	uint64_t value;
	char pad[48];
};

int main(int argc, char **argv)
{
	cow_mem_backend rb;
	CHECK_OK(cow_mem_backend_parse(argc > 1 ? argv[1] : "uffd-thread", &rb));
	cow_mem_probe_info p;
	CHECK_OK(cow_mem_probe(&p));
	if (rb == COW_MEM_UFFD && (p.uffd_error || !p.sigbus))
		SKIP("lazy restore with SIGBUS unavailable: %s",
		     p.uffd_error ? cow_strerror(p.uffd_error) : "no UFFD_FEATURE_SIGBUS");
	if (rb == COW_MEM_UFFD_THREAD && (p.uffd_error || !p.uffd_kernel))
		SKIP("userfaultfd that sees system calls' faults unavailable");
	uint64_t seed = check_seed();

	cow_mem_region *r;
	CHECK_OK(cow_mem_region_alloc(SIZE, 0, &r));
	char *base = cow_mem_region_addr(r);
	/* Nodes at random slots, linked in a random order: a pointer-rich heap. */
	size_t nslots = SIZE / sizeof(struct node);
	struct node *slots = (struct node *)(void *)base;
	char *used = calloc(nslots, 1);
	CHECK(used);
	struct node *head = NULL;
	uint64_t sum = 0;
	for (int i = 0; i < NODES; i++) {
		size_t k;
		do
			k = (size_t)(check_rand(&seed) % nslots);
		while (used[k]);
		used[k] = 1;
		slots[k].value = check_rand(&seed);
		slots[k].next = head;
		head = &slots[k];
		sum += slots[k].value;
	}
	free(used);

	/* The image, taken by the default snapshot backend. */
	char *image = malloc(SIZE);
	CHECK(image);
	cow_mem_sink *sink;
	CHECK_OK(cow_mem_sink_buffer(image, SIZE, &sink));
	CHECK_OK(cow_mem_snapshot(r, sink, NULL, NULL));
	cow_mem_sink_destroy(sink);
	CHECK_MEMEQ(image, base, SIZE);

	/* Taken: exactly, in part from below, in part from above. Nothing changes. */
	cow_mem_region *r2 = NULL;
	CHECK_RC(cow_mem_region_alloc_at(base, SIZE, 0, &r2), COW_EEXIST);
	CHECK(r2 == NULL);
	CHECK_RC(cow_mem_region_alloc_at(base - (1u << 20), 2u << 20, 0, &r2), COW_EEXIST);
	CHECK_RC(cow_mem_region_alloc_at(base + SIZE - 4096, 8192, 0, &r2), COW_EEXIST);
	CHECK_MEMEQ(image, base, SIZE);
	/* Bad arguments. */
	CHECK_RC(cow_mem_region_alloc_at(base + 1, SIZE, 0, &r2), COW_EINVAL);
	CHECK_RC(cow_mem_region_alloc_at(base, 0, 0, &r2), COW_EINVAL);
	CHECK_RC(cow_mem_region_alloc_at(NULL, SIZE, 0, &r2), COW_EINVAL);
	CHECK_RC(cow_mem_region_alloc_at(base, SIZE, 0x80, &r2), COW_EINVAL);
	CHECK_RC(cow_mem_region_alloc_at((void *)(uintptr_t)-4096, 8192, 0, &r2), COW_EINVAL);

	/* The program goes away; a new one maps the same address and restores. */
	cow_mem_region_destroy(r);
	CHECK_OK(cow_mem_region_alloc_at(base, SIZE, 0, &r2));
	CHECK(cow_mem_region_addr(r2) == base);
	CHECK_EQ(cow_mem_region_size(r2), SIZE);
	cow_mem_restore *h;
	CHECK_STARTED(cow_mem_restore_start(r2, image, SIZE, rb, &h));
	/* Follow the pointers at once: each first touch is served on demand. */
	uint64_t got = 0;
	int n = 0;
	for (const struct node *q = head; q; q = q->next, n++)
		got += q->value;
	cow_mem_restore_stats st;
	CHECK_OK(cow_mem_restore_wait(h, &st));
	printf("restore %s at %p: %d nodes, %llu faults, %llu bytes\n",
	       cow_mem_backend_name(st.backend), (void *)base, n, (unsigned long long)st.faults,
	       (unsigned long long)st.bytes);
	CHECK_EQ(st.backend, rb);
	CHECK_EQ(n, NODES);
	CHECK_EQ(got, sum);
	CHECK_MEMEQ(base, image, SIZE);

	/* The restored region is the caller's now: taken for another alloc_at. */
	cow_mem_region *r3;
	CHECK_RC(cow_mem_region_alloc_at(base, 4096, 0, &r3), COW_EEXIST);
	cow_mem_region_destroy(r2);
	/* THP alignment is checked. */
	CHECK_RC(cow_mem_region_alloc_at(base + 4096, SIZE, COW_MEM_THP, &r3), COW_EINVAL);
	free(image);
	printf("ok\n");
	return 0;
}
