/*
 * The one allocation hook. Lua's lua_Alloc and libuv's uv_replace_allocator
 * show the shape: a single realloc-style function, so a test can count or
 * fail allocations and an embedder can use its own heap.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static void *libc_realloc(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	if (size == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, size);
}

static cow_allocator hook = {libc_realloc, NULL};

void cow_set_allocator(const cow_allocator *a)
{
	if (a && a->realloc)
		hook = *a;
	else
		hook = (cow_allocator){libc_realloc, NULL};
}

void *cow__malloc(size_t size)
{
	return hook.realloc(hook.ctx, NULL, size ? size : 1);
}

void *cow__calloc(size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total))
		return NULL;
	void *p = cow__malloc(total);
	if (p)
		memset(p, 0, total);
	return p;
}

void *cow__realloc(void *ptr, size_t size)
{
	return hook.realloc(hook.ctx, ptr, size ? size : 1);
}

void cow__free(void *ptr)
{
	if (ptr)
		hook.realloc(hook.ctx, ptr, 0);
}

void *cow__memdup(const void *p, size_t size)
{
	void *q = cow__malloc(size);
	if (q && size)
		memcpy(q, p, size);
	return q;
}

char *cow__strdup(const char *s)
{
	return cow__memdup(s, strlen(s) + 1);
}

int cow__grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 8;
	while (ncap < need)
		ncap *= 2;
	size_t bytes;
	if (__builtin_mul_overflow(ncap, elem, &bytes))
		return COW_ENOMEM;
	void *p = cow__realloc(*arr, bytes);
	if (!p)
		return COW_ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}
