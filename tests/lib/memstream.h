/*
 * An in-memory byte stream for send/recv tests: mem_write appends (a
 * cow_send writer), mem_read reads back in short pieces like a pipe (a
 * cow_recv reader), ending early at @limit when set.
 */
#ifndef COW_TEST_MEMSTREAM_H
#define COW_TEST_MEMSTREAM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cow/store.h"

struct mem {
	uint8_t *p;
	size_t n, cap, pos;
	size_t limit; /* recv: pretend the stream ends here (0: at n) */
};

static inline int mem_write(void *ctx, const void *buf, size_t len)
{
	struct mem *m = ctx;
	if (m->n + len > m->cap) {
		size_t cap = (m->n + len) * 2;
		uint8_t *p = realloc(m->p, cap);
		if (!p)
			return -12; /* -ENOMEM */
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->n, buf, len);
	m->n += len;
	return 0;
}

static inline int mem_read(void *ctx, void *buf, size_t len)
{
	struct mem *m = ctx;
	size_t end = m->limit ? m->limit : m->n;
	size_t k = m->pos + len > end ? end - m->pos : len;
	if (k > 7)
		k = k / 2 + 1; /* short reads, like a pipe */
	memcpy(buf, m->p + m->pos, k);
	m->pos += k;
	return (int)k;
}

/* Send @snap (incrementally from @base, or NULL) of @s into *@m, in a read transaction. */
static inline int mem_send(cow_store *s, const char *snap, const char *base, struct mem *m)
{
	cow_txn *t;
	*m = (struct mem){0};
	int rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	if (rc == 0) {
		rc = cow_send(t, snap, base, mem_write, m);
		cow_txn_abort(t);
	}
	return rc;
}

#endif
