/*
 * The space map: which blocks are free, in use, or pending until no reader
 * can see them (FORMAT.md section 6).
 *
 * In memory the writer keeps a bitmap (1 = in use or pending), the pending
 * extents in the order they were freed, and the "stuck" extents that became
 * eligible while a reader that can see them was registered. Every change
 * made by the running transaction is also an event; abort undoes the events
 * in reverse, commit writes them as one log record. Releases made at the
 * start of a transaction are legitimate whether it commits or not, so they
 * are kept apart ("carry") until some commit logs them.
 */
#include <stdlib.h>

#include "base/base.h"
#include "block/block.h"
#include "block/space.h"

/* ---- bitmap ---- */

static int bits_ensure(struct cow__bs *bs, uint64_t nblocks)
{
	size_t words = (size_t)((nblocks + 63) / 64);
	if (words <= bs->bits_words)
		return 0;
	size_t ncap = bs->bits_words ? bs->bits_words : 64;
	while (ncap < words)
		ncap *= 2;
	uint64_t *nb = cow__realloc(bs->bits, ncap * sizeof(uint64_t));
	if (!nb)
		return COW_ENOMEM;
	memset(nb + bs->bits_words, 0, (ncap - bs->bits_words) * sizeof(uint64_t));
	bs->bits = nb;
	bs->bits_words = ncap;
	return 0;
}

static inline bool bit_test(const struct cow__bs *bs, uint64_t b)
{
	return (bs->bits[b >> 6] >> (b & 63)) & 1;
}

/* Set or clear bits; `used` counts only bits that actually change. */
static void bits_set(struct cow__bs *bs, uint64_t start, uint64_t len, bool on)
{
	for (uint64_t b = start; b < start + len; b++) {
		uint64_t m = 1ull << (b & 63);
		uint64_t *w = &bs->bits[b >> 6];
		if (((*w & m) != 0) == on)
			continue;
		*w ^= m;
		if (on)
			bs->used++;
		else
			bs->used--;
	}
}

bool cow__bs_allocated(struct cow__bs *bs, uint64_t b)
{
	return b < bs->nblocks && bit_test(bs, b);
}

/* The first free block in [from, to), or UINT64_MAX: a word at a time. */
static uint64_t next_free(const struct cow__bs *bs, uint64_t from, uint64_t to)
{
	if (from >= to)
		return UINT64_MAX;
	size_t w = (size_t)(from >> 6), last = (size_t)((to - 1) >> 6);
	uint64_t free_bits = ~bs->bits[w] & (~0ull << (from & 63));
	for (;;) {
		if (free_bits) {
			uint64_t b = ((uint64_t)w << 6) + (uint64_t)__builtin_ctzll(free_bits);
			return b < to ? b : UINT64_MAX;
		}
		if (++w > last)
			return UINT64_MAX;
		free_bits = ~bs->bits[w];
	}
}

/* First run of @n free blocks in [from, to), or UINT64_MAX. */
static uint64_t find_run(const struct cow__bs *bs, uint64_t from, uint64_t to, uint64_t n)
{
	uint64_t b = from;
	for (;;) {
		b = next_free(bs, b, to);
		if (b == UINT64_MAX || b + n > to)
			return UINT64_MAX;
		uint64_t run = 1;
		while (run < n && !bit_test(bs, b + run))
			run++;
		if (run == n)
			return b;
		b += run + 1;
	}
}

/* Grow the address space (and the file, in steps) by at least @n blocks. */
static int grow(struct cow__bs *bs, uint64_t n)
{
	uint64_t want = bs->nblocks + n;
	int rc = bits_ensure(bs, want);
	if (rc)
		return rc;
	if (want > bs->file_blocks) {
		uint64_t step = COW_MAX(bs->file_blocks / 8, 256);
		step = COW_MIN(step, 1ull << 18); /* 1 GiB */
		uint64_t fb = COW_MAX(want, bs->file_blocks + step);
		rc = bs->io->ops->grow(bs->io, fb << COW_BLOCK_SHIFT);
		if (rc)
			return rc;
		bs->file_blocks = fb;
		rc = cow__bs_map_ensure(bs, fb);
		if (rc)
			return rc;
	}
	bs->nblocks = want;
	return 0;
}

static int push_ev(struct cow__ev **arr, size_t *n, size_t *cap, uint64_t op, uint64_t start,
		   uint64_t len, uint64_t birth)
{
	int rc = cow__grow((void **)arr, cap, *n + 1, sizeof(**arr));
	if (rc)
		return rc;
	(*arr)[(*n)++] = (struct cow__ev){op, start, len, birth};
	return 0;
}

static int push_pend(struct cow__pend **arr, size_t *n, size_t *cap, struct cow__pend p)
{
	int rc = cow__grow((void **)arr, cap, *n + 1, sizeof(**arr));
	if (rc)
		return rc;
	(*arr)[(*n)++] = p;
	return 0;
}

/* Find (or grow the store for) @n free blocks and mark them allocated. */
static int alloc_blocks(struct cow__bs *bs, uint64_t n, uint64_t *addr, uint8_t **buf)
{
	/* Reserve room for the event first so nothing below can fail half-done. */
	int rc = cow__grow((void **)&bs->events, &bs->cap_events, bs->nevents + 1,
			   sizeof(*bs->events));
	if (rc)
		return rc;
	uint64_t start = find_run(bs, COW_MAX(bs->hint, 2), bs->nblocks, n);
	if (start == UINT64_MAX && bs->hint > 2)
		start = find_run(bs, 2, COW_MIN(bs->hint + n, bs->nblocks), n);
	if (start == UINT64_MAX) {
		/* Extend, reusing free blocks at the tail. */
		uint64_t tail = 0;
		while (tail < n && bs->nblocks - tail > 2 && !bit_test(bs, bs->nblocks - tail - 1))
			tail++;
		uint64_t oldn = bs->nblocks;
		rc = grow(bs, n - tail);
		if (rc)
			return rc;
		start = oldn - tail;
	}
	if (buf && (rc = cow__dirty_add(bs, start, n, buf)))
		return rc;
	bits_set(bs, start, n, true);
	bs->events[bs->nevents++] = (struct cow__ev){COW_EV_ALLOC, start, n, bs->txn_gen};
	bs->hint = start + n;
	*addr = start;
	return 0;
}

int cow__bs_alloc(struct cow__bs *bs, uint64_t n, uint64_t *addr, uint8_t **buf)
{
	return alloc_blocks(bs, n, addr, buf);
}

int cow__bs_stage_flush(struct cow__bs *bs)
{
	if (!bs->stage_len)
		return 0;
	size_t len = bs->stage_len;
	bs->stage_len = 0;
	return cow__io_pwrite(bs->io, bs->stage, len, bs->stage_addr << COW_BLOCK_SHIFT);
}

int cow__bs_write_new(struct cow__bs *bs, uint64_t n, const void *data, size_t len,
		      uint64_t *addr)
{
	int rc = alloc_blocks(bs, n, addr, NULL);
	if (rc)
		return rc;
	size_t bytes = (size_t)n << COW_BLOCK_SHIFT;
	if (!bs->stage) {
		bs->stage = cow__malloc(1u << 20);
		bs->stage_cap = bs->stage ? 1u << 20 : 0;
	}
	/* Not adjacent to what is staged, or no room: write the stage out first. */
	if (bs->stage_len &&
	    (*addr != bs->stage_addr + (bs->stage_len >> COW_BLOCK_SHIFT) ||
	     bs->stage_len + bytes > bs->stage_cap))
		rc = cow__bs_stage_flush(bs);
	if (rc == 0 && bytes > bs->stage_cap) { /* large: straight to the file */
		struct iovec v[2] = {{(void *)data, len}, {NULL, 0}};
		static const uint8_t zeros[COW_BLOCK_SIZE];
		v[1].iov_base = (void *)zeros;
		v[1].iov_len = bytes - len;
		rc = bs->io->ops->pwritev(bs->io, v, bytes > len ? 2 : 1, *addr << COW_BLOCK_SHIFT);
	} else if (rc == 0) {
		if (!bs->stage_len)
			bs->stage_addr = *addr;
		memcpy(bs->stage + bs->stage_len, data, len);
		memset(bs->stage + bs->stage_len + len, 0, bytes - len);
		bs->stage_len += bytes;
	}
	if (rc) /* give the blocks back: born now, so free at once */
		cow__bs_free(bs, *addr, n, bs->txn_gen);
	return rc;
}

int cow__bs_free(struct cow__bs *bs, uint64_t addr, uint64_t n, uint64_t birth)
{
	if (addr < 2 || addr + n > bs->nblocks)
		return COW_CORRUPT(addr, "freeing a block outside the store");
	if (birth == bs->txn_gen) {
		int rc = push_ev(&bs->events, &bs->nevents, &bs->cap_events, COW_EV_RELEASE,
				 addr, n, birth);
		if (rc)
			return rc;
		cow__dirty_drop(bs, addr);
		bits_set(bs, addr, n, false);
		if (addr < bs->hint)
			bs->hint = addr;
		return 0;
	}
	int rc = cow__grow((void **)&bs->pending, &bs->cap_pending, bs->npending + 1,
			   sizeof(*bs->pending));
	if (rc)
		return rc;
	rc = push_ev(&bs->events, &bs->nevents, &bs->cap_events, COW_EV_FREE, addr, n, birth);
	if (rc)
		return rc;
	bs->pending[bs->npending++] = (struct cow__pend){addr, n, birth, bs->txn_gen};
	return 0;
}

/* Can a reader pinned at one of @readers (sorted) still see @p? */
static bool seen(const struct cow__pend *p, const uint64_t *readers, size_t n)
{
	size_t lo = 0, hi = n;
	while (lo < hi) { /* first reader >= birth */
		size_t mid = (lo + hi) / 2;
		if (readers[mid] < p->birth)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && readers[lo] < p->freed;
}

static int release(struct cow__bs *bs, const struct cow__pend *p)
{
	int rc = push_ev(&bs->carry, &bs->ncarry, &bs->cap_carry, COW_EV_RELEASE, p->start,
			 p->len, p->birth);
	if (rc)
		return rc;
	bits_set(bs, p->start, p->len, false);
	if (p->start < bs->hint)
		bs->hint = p->start;
	return 0;
}

int cow__bs_begin(struct cow__bs *bs, uint64_t gen, const uint64_t *readers, size_t nreaders)
{
	bs->txn_gen = gen;
	bs->nevents = 0;
	int rc = 0;

	/*
	 * Every pending extent was freed by a committed transaction. It may be
	 * reused when no registered reader can see it and no superblock that
	 * open may still choose reaches it: freed at or before D, or born after
	 * D (then neither D nor the newest commit reaches it; FORMAT.md
	 * section 6). The others wait in `stuck` until the readers or D move.
	 */
	size_t i = 0;
	for (; i < bs->npending; i++) {
		const struct cow__pend *p = &bs->pending[i];
		bool durable_ok = p->freed <= bs->durable || p->birth > bs->durable;
		if (!durable_ok || seen(p, readers, nreaders))
			rc = push_pend(&bs->stuck, &bs->nstuck, &bs->cap_stuck, *p);
		else
			rc = release(bs, p);
		if (rc)
			break;
	}
	if (i) {
		memmove(bs->pending, bs->pending + i, (bs->npending - i) * sizeof(*bs->pending));
		bs->npending -= i;
	}
	if (rc)
		return rc;

	/* Stuck extents: look again only when the reader set or D changed. */
	bool same = nreaders == bs->nstuck_readers && bs->stuck_durable == bs->durable &&
		    (nreaders == 0 || memcmp(readers, bs->stuck_readers, nreaders * sizeof(*readers)) == 0);
	if (!same && bs->nstuck) {
		size_t keep = 0;
		for (size_t j = 0; j < bs->nstuck; j++) {
			const struct cow__pend *p = &bs->stuck[j];
			bool durable_ok = p->freed <= bs->durable || p->birth > bs->durable;
			if (rc == 0 && durable_ok && !seen(p, readers, nreaders))
				rc = release(bs, p);
			else
				bs->stuck[keep++] = *p;
		}
		bs->nstuck = keep;
		if (rc)
			return rc;
	}
	bs->stuck_durable = bs->durable;
	if (!same) {
		rc = cow__grow((void **)&bs->stuck_readers, &bs->cap_stuck_readers, nreaders + 1,
			       sizeof(uint64_t));
		if (rc)
			return rc;
		if (nreaders)
			memcpy(bs->stuck_readers, readers, nreaders * sizeof(*readers));

		bs->nstuck_readers = nreaders;
	}
	return 0;
}

void cow__bs_abort(struct cow__bs *bs)
{
	for (size_t i = bs->nevents; i-- > 0;) {
		const struct cow__ev *e = &bs->events[i];
		switch (e->op) {
		case COW_EV_ALLOC:
			bits_set(bs, e->start, e->len, false);
			if (e->start < bs->hint)
				bs->hint = e->start;
			break;
		case COW_EV_FREE:
			bs->npending--; /* events and pending appends are in the same order */
			break;
		case COW_EV_RELEASE:
			bits_set(bs, e->start, e->len, true);
			break;
		}
	}
	bs->nevents = 0;
	bs->stage_len = 0; /* staged values were for free blocks: drop them */
	cow__dirty_clear(bs);
	bs->txn_gen = 0;
}

void cow__bs_space(struct cow__bs *bs, uint64_t *used, uint64_t *pending, uint64_t *free_blocks)
{
	uint64_t pend = 0;
	for (size_t i = 0; i < bs->npending; i++)
		pend += bs->pending[i].len;
	for (size_t i = 0; i < bs->nstuck; i++)
		pend += bs->stuck[i].len;
	*used = bs->used - pend;
	*pending = pend;
	*free_blocks = bs->file_blocks - bs->used;
}

void cow__space_release(struct cow__bs *bs)
{
	cow__dirty_clear(bs);
	cow__u64map_release(&bs->dirty);
	cow__free(bs->bits);
	cow__free(bs->pending);
	cow__free(bs->stuck);
	cow__free(bs->stuck_readers);
	cow__free(bs->carry);
	cow__free(bs->events);
	cow__free(bs->chain);
	bs->bits = NULL;
	bs->pending = bs->stuck = NULL;
	bs->stuck_readers = NULL;
	bs->carry = bs->events = NULL;
	bs->chain = NULL;
	bs->bits_words = bs->cap_pending = bs->cap_stuck = bs->cap_carry = bs->cap_events = 0;
	bs->npending = bs->nstuck = bs->ncarry = bs->nevents = bs->nchain = bs->cap_chain = 0;
	bs->nstuck_readers = bs->cap_stuck_readers = 0;
	bs->used = bs->hint = 0; /* they count bits of the bitmap just freed */
	bs->need_base = false;
	bs->loaded = false;
}

/* ---- on disk: base and log chains ---- */

static void hdr_put(uint8_t *b, int kind, uint64_t addr, uint64_t birth,
		    const struct cow__bptr *next, uint32_t count)
{
	cow__put32(b, COW_SPACE_MAGIC);
	b[4] = (uint8_t)kind;
	cow__put64(b + 8, addr);
	cow__put64(b + 16, birth);
	cow__bptr_store(b + 24, next);
	cow__put32(b + 48, count);
}

static int hdr_check(const uint8_t *b, const struct cow__bptr *p, int *kind, uint32_t *count,
		     struct cow__bptr *next)
{
	if (cow__le32(b) != COW_SPACE_MAGIC || cow__le64(b + 8) != p->addr ||
	    cow__le64(b + 16) != p->birth)
		return COW_CORRUPT(p->addr, "bad space-map block header");
	*kind = b[4];
	*count = cow__le32(b + 48);
	cow__bptr_load(next, b + 24);
	return 0;
}

/* Read a chain from its head; fills @blks newest first. */
static int read_chain(struct cow__bs *bs, struct cow__bptr head, uint64_t nblocks,
		      struct cow__bptr **blks, size_t *n, size_t *cap)
{
	uint64_t limit = nblocks; /* a chain longer than the store is a cycle */
	while (head.addr) {
		if ((*n)++ > limit)
			return COW_CORRUPT(head.addr, "space-map chain loops");
		int rc = cow__grow((void **)blks, cap, *n, sizeof(**blks));
		if (rc)
			return rc;
		(*blks)[*n - 1] = head;
		const uint8_t *b;
		rc = cow__bs_read(bs, 0, nblocks, &head, COW_BLOCK_SIZE, &b, NULL);
		if (rc)
			return rc;
		int kind;
		uint32_t count;
		rc = hdr_check(b, &head, &kind, &count, &head);
		if (rc)
			return rc;
	}
	return 0;
}

/* Scrub one chain from @head: base chains hold bitmap and pending blocks, the log log blocks. */
static int scrub_chain(struct cow__bs *bs, struct cow__bptr head, uint64_t nblocks, bool log,
		       int (*fn)(void *ctx, uint64_t addr, int rc), void *ctx)
{
	for (uint64_t n = 0; head.addr; n++) {
		struct cow__bptr at = head;
		const uint8_t *b;
		int kind = 0;
		uint32_t count = 0;
		int rc = n > nblocks ? COW_CORRUPT(at.addr, "space-map chain loops")
				     : cow__bs_read(bs, COW_READ_VERIFY, nblocks, &at,
						    COW_BLOCK_SIZE, &b, NULL);
		if (rc == 0)
			rc = hdr_check(b, &at, &kind, &count, &head);
		if (rc == 0 &&
		    (log ? kind != SPACE_LOG : kind != SPACE_BITMAP && kind != SPACE_PENDING))
			rc = COW_CORRUPT(at.addr, "unexpected block in a space-map chain");
		uint32_t max = kind == SPACE_BITMAP    ? COW_BITMAP_BITS
			       : kind == SPACE_PENDING ? COW_PEND_PER_BLOCK
						       : COW_EV_PER_BLOCK;
		if (rc == 0 && count > max)
			rc = COW_CORRUPT(at.addr, "space-map block overfull");
		int stop = fn(ctx, at.addr, rc);
		if (stop)
			return stop;
		if (rc)
			return rc == COW_ECORRUPT ? 0 : rc;
	}
	return 0;
}

int cow__bs_scrub_space(struct cow__bs *bs, const struct cow__sb *sb,
			int (*fn)(void *ctx, uint64_t addr, int rc), void *ctx)
{
	int rc = scrub_chain(bs, sb->space_base, sb->nblocks, false, fn, ctx);
	return rc ? rc : scrub_chain(bs, sb->space_log, sb->nblocks, true, fn, ctx);
}

static int chain_push(struct cow__bs *bs, uint64_t addr, uint64_t birth)
{
	int rc = cow__grow((void **)&bs->chain, &bs->cap_chain, bs->nchain + 1, sizeof(*bs->chain));
	if (rc)
		return rc;
	bs->chain[bs->nchain++] = (struct cow__chainblk){addr, birth};
	return 0;
}

/* The replay index: first block of a pending extent -> its index in bs->pending. */
static int pmap_put(struct cow__u64map *m, uint64_t start, size_t idx)
{
	void *v;
	int rc = cow__u64map_put(m, start, &v);
	if (rc < 0)
		return rc;
	*(size_t *)v = idx;
	return 0;
}

static int replay(struct cow__bs *bs, const uint8_t *b, const struct cow__bptr *p,
		  struct cow__u64map *m)
{
	uint32_t count = cow__le32(b + 48);
	uint64_t gen = cow__le64(b + COW_SPACE_HDR);
	if (count > COW_EV_PER_BLOCK)
		return COW_CORRUPT(p->addr, "space log block overfull");
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *r = b + COW_SPACE_HDR + 8 + 32 * i;
		uint64_t op = r[0], start = cow__le64(r + 8), len = cow__le64(r + 16),
			 birth = cow__le64(r + 24);
		if (start < 2 || len == 0 || start + len > bs->nblocks || start + len < start ||
		    (op == COW_EV_FREE && birth > gen))
			return COW_CORRUPT(p->addr, "space log record out of range");
		if (op == COW_EV_ALLOC) {
			bits_set(bs, start, len, true);
		} else if (op == COW_EV_FREE) {
			int rc = push_pend(&bs->pending, &bs->npending, &bs->cap_pending,
					   (struct cow__pend){start, len, birth, gen});
			if (rc)
				return rc;
			rc = pmap_put(m, start, bs->npending - 1);
			if (rc)
				return rc;
		} else if (op == COW_EV_RELEASE) {
			bits_set(bs, start, len, false);
			const size_t *idx = cow__u64map_get(m, start);
			if (idx) {
				bs->pending[*idx].len = 0; /* dead; compacted below */
				cow__u64map_del(m, start);
			}
		} else {
			return COW_CORRUPT(p->addr, "unknown space log record");
		}
	}
	return 0;
}

/* cow__bs_load from the chains only. */
static int load_chains(struct cow__bs *bs, const struct cow__sb *sb, int slot)
{
	cow__space_release(bs);
	bs->txn_gen = 0;
	bs->sb = *sb;
	bs->sb_slot = slot;
	bs->nblocks = sb->nblocks;
	uint64_t size;
	int rc = bs->io->ops->size(bs->io, &size);
	if (rc)
		return rc;
	bs->file_blocks = size >> COW_BLOCK_SHIFT;
	if (bs->file_blocks < bs->nblocks)
		return COW_CORRUPT(bs->nblocks, "store is larger than its file");
	rc = bits_ensure(bs, bs->nblocks);
	if (rc)
		return rc;
	bits_set(bs, 0, 2, true); /* superblocks */

	struct cow__bptr *blks = NULL;
	size_t n = 0, cap = 0;
	struct cow__u64map m;
	cow__u64map_init(&m, sizeof(size_t));
	rc = read_chain(bs, sb->space_base, bs->nblocks, &blks, &n, &cap);
	if (rc)
		goto out;
	if (n == 0) {
		rc = COW_CORRUPT(0, "superblock has no space map");
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		const uint8_t *b = cow__bs_mapped(bs, blks[i].addr);
		uint32_t count = cow__le32(b + 48);
		if (b[4] == SPACE_BITMAP) {
			uint64_t first = cow__le64(b + COW_SPACE_HDR);
			if (count > COW_BITMAP_BITS || first + count > bs->nblocks) {
				rc = COW_CORRUPT(blks[i].addr, "bitmap block out of range");
				break;
			}
			const uint8_t *bits = b + COW_SPACE_HDR + 8;
			for (uint32_t k = 0; k < count; k++)
				if ((bits[k >> 3] >> (k & 7)) & 1)
					bits_set(bs, first + k, 1, true);
		} else if (b[4] == SPACE_PENDING) {
			if (count > COW_PEND_PER_BLOCK) {
				rc = COW_CORRUPT(blks[i].addr, "pending block overfull");
				break;
			}
			for (uint32_t k = 0; k < count && rc == 0; k++) {
				const uint8_t *r = b + COW_SPACE_HDR + 32 * k;
				struct cow__pend p = {cow__le64(r), cow__le64(r + 8),
						      cow__le64(r + 16), cow__le64(r + 24)};
				if (p.start < 2 || p.len == 0 || p.start + p.len < p.start ||
				    p.start + p.len > bs->nblocks || p.birth > p.freed ||
				    p.freed > sb->gen) {
					rc = COW_CORRUPT(blks[i].addr, "pending record out of range");
					break;
				}
				rc = push_pend(&bs->pending, &bs->npending, &bs->cap_pending, p);
			}
		} else {
			rc = COW_CORRUPT(blks[i].addr, "unexpected block in space-map base");
		}
		if (rc == 0)
			rc = chain_push(bs, blks[i].addr, blks[i].birth);
	}
	if (rc)
		goto out;
	bs->base_blocks = n;
	rc = cow__u64map_reserve(&m, bs->npending);
	for (size_t i = 0; i < bs->npending && rc == 0; i++)
		rc = pmap_put(&m, bs->pending[i].start, i);
	if (rc)
		goto out;

	/* The log, oldest record first. */
	n = 0;
	rc = read_chain(bs, sb->space_log, bs->nblocks, &blks, &n, &cap);
	if (rc)
		goto out;
	for (size_t i = n; i-- > 0 && rc == 0;) {
		const uint8_t *b = cow__bs_mapped(bs, blks[i].addr);
		if (b[4] != SPACE_LOG) {
			rc = COW_CORRUPT(blks[i].addr, "unexpected block in space-map log");
			break;
		}
		rc = replay(bs, b, &blks[i], &m);
		if (rc == 0)
			rc = chain_push(bs, blks[i].addr, blks[i].birth);
	}
	if (rc)
		goto out;

	/* Drop released pending entries, keep the rest in `freed` order. */
	size_t keep = 0;
	for (size_t i = 0; i < bs->npending; i++)
		if (bs->pending[i].len)
			bs->pending[keep++] = bs->pending[i];
	bs->npending = keep;
	for (size_t i = 1; i < bs->npending; i++) { /* insertion sort: nearly sorted */
		struct cow__pend p = bs->pending[i];
		size_t j = i;
		while (j > 0 && bs->pending[j - 1].freed > p.freed) {
			bs->pending[j] = bs->pending[j - 1];
			j--;
		}
		bs->pending[j] = p;
	}

	/* Whatever the page cache holds becomes durable before we build on it. */
	rc = bs->io->ops->sync(bs->io);
	if (rc)
		goto out;
	bs->durable = sb->gen;
	bs->durable_slot = slot;
	bs->hint = 2;
	bs->loaded = true;
out:
	cow__free(blks);
	cow__u64map_release(&m);
	if (rc)
		cow__space_release(bs);
	return rc;
}

int cow__bs_load(struct cow__bs *bs, const struct cow__sb *sb, int slot)
{
	int rc = load_chains(bs, sb, slot);
	if (rc != COW_ECORRUPT || !bs->walk)
		return rc;
	cow__log("the space map of generation %llu does not load; rebuilding it from the trees",
		 (unsigned long long)sb->gen);
	return cow__bs_rebuild(bs, sb, slot);
}

/* ---- rebuilding from the trees ---- */

void cow__bs_set_walker(struct cow__bs *bs,
			int (*walk)(void *ctx, struct cow__bs *bs, const struct cow__sb *sb),
			void *ctx)
{
	bs->walk = walk;
	bs->walk_ctx = ctx;
}

int cow__bs_mark(struct cow__bs *bs, uint64_t addr, uint64_t nblk)
{
	if (addr < 2 || nblk == 0 || addr + nblk > bs->nblocks || addr + nblk < addr)
		return COW_CORRUPT(addr, "reachable block outside the store");
	if (bit_test(bs, addr))
		return 1;
	bits_set(bs, addr, nblk, true);
	return 0;
}

int cow__bs_rebuild(struct cow__bs *bs, const struct cow__sb *sb, int slot)
{
	if (!bs->walk)
		return COW_EINTERNAL;
	uint64_t txn = bs->txn_gen;
	uint64_t freed = txn ? txn : sb->gen + 1; /* the transaction that rebuilds */
	cow__space_release(bs);
	bs->txn_gen = txn;
	bs->sb = *sb;
	bs->sb_slot = slot;
	bs->nblocks = sb->nblocks;
	uint64_t size;
	int rc = bs->io->ops->size(bs->io, &size);
	if (rc)
		goto out;
	bs->file_blocks = size >> COW_BLOCK_SHIFT;
	if (bs->file_blocks < bs->nblocks) {
		rc = COW_CORRUPT(bs->nblocks, "store is larger than its file");
		goto out;
	}
	rc = bits_ensure(bs, bs->nblocks);
	if (rc)
		goto out;
	bits_set(bs, 0, 2, true); /* superblocks */
	rc = bs->walk(bs->walk_ctx, bs, sb);
	if (rc)
		goto out;
	uint64_t reachable = bs->used;

	/*
	 * Everything else may still be seen by a reader pinned at an older
	 * generation (whose roots are not known here): pending, as if this
	 * transaction had freed it, each block born at generation 1 at worst.
	 */
	for (uint64_t b = next_free(bs, 2, bs->nblocks); b != UINT64_MAX;
	     b = next_free(bs, b, bs->nblocks)) {
		uint64_t e = b + 1;
		while (e < bs->nblocks && !bit_test(bs, e))
			e++;
		rc = push_pend(&bs->pending, &bs->npending, &bs->cap_pending,
			       (struct cow__pend){b, e - b, 1, freed});
		if (rc)
			goto out;
		bits_set(bs, b, e - b, true);
		b = e;
	}
	rc = bs->io->ops->sync(bs->io);
	if (rc)
		goto out;
	bs->durable = sb->gen;
	bs->durable_slot = slot;
	bs->hint = 2;
	bs->need_base = true;
	bs->loaded = true;
	cow__log("space map of generation %llu rebuilt from its trees: %llu blocks reachable, "
		 "%llu held until readers of older generations end",
		 (unsigned long long)sb->gen, (unsigned long long)reachable,
		 (unsigned long long)(bs->used - reachable));
out:
	if (rc)
		cow__space_release(bs);
	return rc;
}

int cow__bs_format(struct cow__bs *bs)
{
	cow__space_release(bs);
	memset(&bs->sb, 0, sizeof(bs->sb));
	bs->sb_slot = 1; /* so the first commit goes to slot 0 */
	bs->durable = 0;
	bs->durable_slot = 1;
	bs->nblocks = 2;
	bs->file_blocks = 0;
	int rc = bits_ensure(bs, 2);
	if (rc)
		return rc;
	bits_set(bs, 0, 2, true);
	rc = bs->io->ops->grow(bs->io, 2 * COW_BLOCK_SIZE);
	if (rc)
		return rc;
	bs->file_blocks = 2;
	rc = cow__bs_map_ensure(bs, 2);
	if (rc)
		return rc;
	bs->hint = 2;
	bs->loaded = true;
	return 0;
}

/*
 * Link blocks @addr[0..n) (filled apart from their header) into a chain whose
 * oldest block points at @tail, and return the head pointer. The blocks need
 * not be adjacent: a space map never needs a long free run to be written.
 */
static struct cow__bptr link_chain(struct cow__bs *bs, const uint64_t *addr, uint8_t **buf,
				   uint64_t n, const uint32_t *counts, struct cow__bptr tail)
{
	struct cow__bptr next = tail;
	for (uint64_t i = 0; i < n; i++) {
		uint8_t *b = buf[i];
		hdr_put(b, b[4], addr[i], bs->txn_gen, &next, counts[i]);
		next = (struct cow__bptr){addr[i], bs->txn_gen, cow__csum(b, COW_BLOCK_SIZE)};
	}
	return next;
}

/* One more block for a chain being written. */
static int chain_alloc(struct cow__bs *bs, int kind, uint64_t **addr, uint8_t ***buf, size_t *n,
		       size_t *cap)
{
	size_t cap2 = *cap;
	int rc = cow__grow((void **)addr, cap, *n + 1, sizeof(**addr));
	if (rc == 0)
		rc = cow__grow((void **)buf, &cap2, *n + 1, sizeof(**buf));
	if (rc)
		return rc;
	rc = cow__bs_alloc(bs, 1, &(*addr)[*n], &(*buf)[*n]);
	if (rc)
		return rc;
	(*buf)[*n][4] = (uint8_t)kind;
	(*n)++;
	return 0;
}

static int write_log(struct cow__bs *bs, struct cow__sb *sb)
{
	uint64_t *addr = NULL;
	uint8_t **buf = NULL;
	uint32_t *counts = NULL;
	size_t m = 0, cap = 0;
	int rc = 0;
	/* Records: carried releases, this transaction's events, the log's own ALLOCs. */
	while (rc == 0 && m * COW_EV_PER_BLOCK < bs->ncarry + bs->nevents + 1)
		rc = chain_alloc(bs, SPACE_LOG, &addr, &buf, &m, &cap);
	if (rc == 0 && !(counts = cow__calloc(m, sizeof(uint32_t))))
		rc = COW_ENOMEM;
	for (size_t r = 0; rc == 0 && r < bs->ncarry + bs->nevents; r++) {
		const struct cow__ev *e =
			r < bs->ncarry ? &bs->carry[r] : &bs->events[r - bs->ncarry];
		uint8_t *rec = buf[r / COW_EV_PER_BLOCK] + COW_SPACE_HDR + 8 +
			       32 * (r % COW_EV_PER_BLOCK);
		rec[0] = (uint8_t)e->op;
		cow__put64(rec + 8, e->start);
		cow__put64(rec + 16, e->len);
		cow__put64(rec + 24, e->birth);
		counts[r / COW_EV_PER_BLOCK]++;
	}
	if (rc == 0) {
		for (size_t i = 0; i < m; i++)
			cow__put64(buf[i] + COW_SPACE_HDR, bs->txn_gen);
		sb->space_log = link_chain(bs, addr, buf, m, counts, bs->sb.space_log);
		sb->space_base = bs->sb.space_base;
		sb->log_blocks = bs->sb.log_blocks + m;
	}
	for (size_t i = 0; rc == 0 && i < m; i++)
		rc = chain_push(bs, addr[i], bs->txn_gen);
	cow__free(addr);
	cow__free(buf);
	cow__free(counts);
	return rc;
}

static int write_base(struct cow__bs *bs, struct cow__sb *sb)
{
	/* The chains the superblock reaches now become pending as of this commit. */
	for (size_t i = 0; i < bs->nchain; i++) {
		int rc = cow__bs_free(bs, bs->chain[i].addr, 1, bs->chain[i].birth);
		if (rc)
			return rc;
	}
	uint64_t *addr = NULL;
	uint8_t **buf = NULL;
	uint32_t *counts = NULL;
	size_t k = 0, cap = 0;
	int rc = 0;
	for (;;) { /* allocating may grow the store, and so the bitmap */
		uint64_t nbit = (bs->nblocks + COW_BITMAP_BITS - 1) / COW_BITMAP_BITS;
		uint64_t npend = (bs->npending + bs->nstuck + COW_PEND_PER_BLOCK - 1) /
				 COW_PEND_PER_BLOCK;
		if (k >= nbit + npend && k > 0)
			break;
		if ((rc = chain_alloc(bs, SPACE_PENDING, &addr, &buf, &k, &cap)))
			goto out;
	}
	if (!(counts = cow__calloc(k, sizeof(uint32_t)))) {
		rc = COW_ENOMEM;
		goto out;
	}
	uint64_t i = 0;
	for (uint64_t first = 0; first < bs->nblocks; first += COW_BITMAP_BITS, i++) {
		uint8_t *b = buf[i];
		b[4] = SPACE_BITMAP;
		uint64_t cnt = COW_MIN(COW_BITMAP_BITS, bs->nblocks - first);
		cow__put64(b + COW_SPACE_HDR, first);
		uint8_t *bits = b + COW_SPACE_HDR + 8;
		for (uint64_t j = 0; j < cnt; j++)
			if (bit_test(bs, first + j))
				bits[j >> 3] |= (uint8_t)(1u << (j & 7));
		counts[i] = (uint32_t)cnt;
	}
	size_t total = bs->npending + bs->nstuck;
	for (size_t j = 0; j < total; j++) {
		const struct cow__pend *p =
			j < bs->npending ? &bs->pending[j] : &bs->stuck[j - bs->npending];
		uint64_t blk = i + j / COW_PEND_PER_BLOCK;
		uint8_t *r = buf[blk] + COW_SPACE_HDR + 32 * (j % COW_PEND_PER_BLOCK);
		cow__put64(r, p->start);
		cow__put64(r + 8, p->len);
		cow__put64(r + 16, p->birth);
		cow__put64(r + 24, p->freed);
		counts[blk]++;
	}
	struct cow__bptr null = {0, 0, 0};
	sb->space_base = link_chain(bs, addr, buf, k, counts, null);
	sb->space_log = null;
	sb->log_blocks = 0;
	bs->nchain = 0;
	bs->base_blocks = k;
	for (size_t j = 0; rc == 0 && j < k; j++)
		rc = chain_push(bs, addr[j], bs->txn_gen);
out:
	cow__free(addr);
	cow__free(buf);
	cow__free(counts);
	return rc;
}

int cow__space_persist(struct cow__bs *bs, struct cow__sb *sb)
{
	size_t nrec = bs->ncarry + bs->nevents + 1;
	uint64_t m = (nrec + COW_EV_PER_BLOCK - 1) / COW_EV_PER_BLOCK;
	if (bs->need_base || !bs->sb.space_base.addr ||
	    bs->sb.log_blocks + m > COW_MAX(16, bs->base_blocks))
		return write_base(bs, sb);
	return write_log(bs, sb);
}

void cow__space_committed(struct cow__bs *bs)
{
	bs->need_base = false;
	bs->ncarry = 0;
	bs->nevents = 0;
}
