/* The allocation hook: every library allocation passes through it. */
#include <stdlib.h>

#include "base/base.h"
#include "check.h"

static long calls;

static void *counting(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	calls++;
	if (size == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, size);
}

int main(void)
{
	cow_allocator a = {counting, NULL};
	cow_set_allocator(&a);
	void *p = cow__malloc(100);
	CHECK(p != NULL);
	p = cow__realloc(p, 200);
	CHECK(p != NULL);
	cow__free(p);
	cow__free(NULL); /* no call for NULL */
	CHECK_EQ(calls, 3);

	/* Fail the 2nd allocation, transiently. */
	check_alloc_fail_at(2, 0);
	void *x = cow__malloc(8), *y = cow__malloc(8), *z = cow__malloc(8);
	CHECK(x != NULL);
	CHECK(y == NULL);
	CHECK(z != NULL);
	cow__free(x);
	cow__free(z);

	/* Persistently from the 1st. */
	check_alloc_fail_at(1, 1);
	CHECK(cow__malloc(8) == NULL);
	CHECK(cow__strdup("abc") == NULL);
	CHECK(cow__calloc(4, 4) == NULL);

	/* cow__grow keeps the array when it cannot grow. */
	check_alloc_fail_at(0, 0);
	int *arr = NULL;
	size_t cap = 0;
	CHECK_OK(cow__grow((void **)&arr, &cap, 10, sizeof(int)));
	CHECK_GE(cap, 10);
	arr[9] = 42;
	check_alloc_fail_at(1, 1);
	CHECK_RC(cow__grow((void **)&arr, &cap, 1000, sizeof(int)), COW_ENOMEM);
	CHECK_EQ(arr[9], 42);
	CHECK(cow__calloc(SIZE_MAX / 2, 4) == NULL); /* overflow is refused */
	check_alloc_fail_at(0, 0);
	cow__free(arr);

	cow_set_allocator(NULL);
	p = cow__malloc(1);
	CHECK(p != NULL);
	cow__free(p);
	return 0;
}
