/*
 * The space map in memory (FORMAT.md section 6): which blocks are free, in
 * use, or pending until no reader can see them; allocation and freeing for
 * the running write transaction, and the releases at its start.
 *
 * The writer keeps a bitmap (1 = in use or pending), the pending extents in
 * the order they were freed, and the "stuck" extents that became eligible
 * while a reader that can see them was registered. What must stay true:
 *
 *  1. `used` is the number of bits set below nblocks; every pending or stuck
 *     extent has all its bits set, and lies below nblocks.
 *  2. Every change the running transaction makes is also an event, in
 *     order: abort undoes them newest first (cow__space_undo), commit writes
 *     them as one log record (spacemap.c). FREE events and appends to
 *     `pending` happen in the same order, so undo pops `pending`.
 *  3. A block freed by the running transaction is never reused by it unless
 *     it was born in it: an older one becomes pending, with freed = txn_gen.
 *  4. A pending extent is released only by the reuse rule (cow__bs_begin).
 *     Releases made at the start of a transaction are legitimate whether it
 *     commits or not, so they are kept apart ("carry") until some commit
 *     logs them.
 */
#include <stdlib.h>

#include "base/base.h"
#include "block/bs.h"

/* ---- bitmap ---- */

int cow__bits_ensure(struct cow__bs *bs, uint64_t nblocks)
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

/* Set or clear bits; `used` counts only bits that actually change. */
void cow__bits_set(struct cow__bs *bs, uint64_t start, uint64_t len, bool on)
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
	return b < bs->nblocks && cow__bit_test(bs, b);
}

/* The first free block in [from, to), or UINT64_MAX: a word at a time. */
uint64_t cow__bits_next_free(const struct cow__bs *bs, uint64_t from, uint64_t to)
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
		b = cow__bits_next_free(bs, b, to);
		if (b == UINT64_MAX || b + n > to)
			return UINT64_MAX;
		uint64_t run = 1;
		while (run < n && !cow__bit_test(bs, b + run))
			run++;
		if (run == n)
			return b;
		b += run + 1;
	}
}

uint64_t cow__bs_compact_limit(const struct cow__bs *bs, uint64_t slack, uint64_t *above)
{
	/*
	 * Free blocks below x grow and used ones at or past it shrink as x
	 * rises: scan a word at a time. Blocks 0 and 1 (the superblock slots)
	 * count as neither.
	 */
	uint64_t end = cow__bits_end(bs);
	uint64_t used_past = bs->used - (uint64_t)__builtin_popcountll(bs->bits[0] & 3);
	uint64_t free_below = 0;
	for (uint64_t x = 0; x < end; x += 64) {
		if (free_below >= used_past + slack) {
			*above = used_past;
			return COW_MAX(x, 2);
		}
		unsigned n = x + 64 <= bs->nblocks ? 64 : (unsigned)(bs->nblocks - x);
		uint64_t w = bs->bits[x >> 6] & (n == 64 ? ~0ull : (1ull << n) - 1);
		unsigned blocks = n, set;
		if (x == 0) {
			w &= ~3ull;
			blocks -= 2;
		}
		set = (unsigned)__builtin_popcountll(w);
		used_past -= set;
		free_below += blocks - set;
	}
	*above = 0;
	return bs->nblocks;
}

uint64_t cow__bs_used_end(const struct cow__bs *bs)
{
	return cow__bits_end(bs);
}

uint64_t cow__bits_end(const struct cow__bs *bs)
{
	for (uint64_t w = (bs->nblocks + 63) / 64; w-- > 0;) {
		uint64_t word = bs->bits[w];
		if (w == bs->nblocks / 64 && bs->nblocks % 64)
			word &= (1ull << (bs->nblocks % 64)) - 1; /* bits past nblocks are not blocks */
		if (word)
			return COW_MAX(w * 64 + 64 - (uint64_t)__builtin_clzll(word), 2);
	}
	return 2;
}

/* Grow the address space (and the file, in steps) by at least @n blocks. */
static int grow(struct cow__bs *bs, uint64_t n)
{
	uint64_t want = bs->nblocks + n;
	int rc = cow__bits_ensure(bs, want);
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

int cow__pend_push(struct cow__pend **arr, size_t *n, size_t *cap, struct cow__pend p)
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
	/*
	 * Look for a run only if there are that many free blocks at all: a
	 * store written end to end has none, and scanning its whole bitmap at
	 * every allocation made a large write quadratic.
	 */
	uint64_t start = UINT64_MAX;
	if (bs->nblocks - bs->used >= n) {
		start = find_run(bs, COW_MAX(bs->hint, 2), bs->nblocks, n);
		if (start == UINT64_MAX && bs->hint > 2)
			start = find_run(bs, 2, COW_MIN(bs->hint + n, bs->nblocks), n);
	}
	if (start == UINT64_MAX) {
		/* Extend, reusing free blocks at the tail. */
		uint64_t tail = 0;
		while (tail < n && bs->nblocks - tail > 2 &&
		       !cow__bit_test(bs, bs->nblocks - tail - 1))
			tail++;
		uint64_t oldn = bs->nblocks;
		rc = grow(bs, n - tail);
		if (rc)
			return rc;
		start = oldn - tail;
	}
	if (buf && (rc = cow__dirty_add(bs, start, n, buf)))
		return rc;
	cow__bits_set(bs, start, n, true);
	bs->events[bs->nevents++] = (struct cow__ev){COW_EV_ALLOC, start, n, bs->txn_gen};
	bs->hint = start + n;
	*addr = start;
	return 0;
}

int cow__bs_alloc(struct cow__bs *bs, uint64_t n, uint64_t *addr, uint8_t **buf)
{
	return alloc_blocks(bs, n, addr, buf);
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
		cow__bits_set(bs, addr, n, false);
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
	cow__bits_set(bs, p->start, p->len, false);
	bs->released += p->len;
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
			rc = cow__pend_push(&bs->stuck, &bs->nstuck, &bs->cap_stuck, *p);
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

/* Undo the running transaction's events, newest first (for abort). */
void cow__space_undo(struct cow__bs *bs)
{
	for (size_t i = bs->nevents; i-- > 0;) {
		const struct cow__ev *e = &bs->events[i];
		switch (e->op) {
		case COW_EV_ALLOC:
			cow__bits_set(bs, e->start, e->len, false);
			if (e->start < bs->hint)
				bs->hint = e->start;
			break;
		case COW_EV_FREE:
			bs->npending--; /* events and pending appends are in the same order */
			break;
		case COW_EV_RELEASE:
			cow__bits_set(bs, e->start, e->len, true);
			break;
		}
	}
	bs->nevents = 0;
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

bool cow__bs_pending_at(const struct cow__bs *bs, size_t i, struct cow__pend *out)
{
	if (i < bs->npending)
		*out = bs->pending[i];
	else if (i - bs->npending < bs->nstuck)
		*out = bs->stuck[i - bs->npending];
	else
		return false;
	return true;
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
