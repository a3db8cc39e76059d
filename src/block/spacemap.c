/*
 * The space map on disk (FORMAT.md section 6): the base (bitmap and pending
 * blocks) and the log, each a chain of blocks linked newest first from the
 * superblock; loading them into the writer state, rebuilding that state
 * from the trees when they do not load, writing a commit's record, and
 * scrubbing them.
 *
 * What must stay true:
 *
 *  1. `chain` lists exactly the blocks of the base and log chains the
 *     current superblock reaches (plus, during a commit, the ones it is
 *     writing): they are in use, and nothing else refers to them. A new
 *     base frees the old chains as pending extents of its commit.
 *  2. A log record describes every change of its transaction, including the
 *     allocation of the log blocks themselves, so replaying base + log
 *     gives exactly the map the commit left.
 *  3. Only the writer reads the chains: a chain that fails to load is
 *     rebuilt from the trees (cow__bs_rebuild), never trusted in part.
 */
#include <stdlib.h>

#include "base/base.h"
#include "block/bs.h"

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
		if (rc == 0 && (log ? kind != COW_SPACE_LOG && kind != COW_SPACE_LOG2
				    : kind != COW_SPACE_BITMAP && kind != COW_SPACE_PENDING))
			rc = COW_CORRUPT(at.addr, "unexpected block in a space-map chain");
		uint32_t max = kind == COW_SPACE_BITMAP	   ? COW_BITMAP_BITS
			       : kind == COW_SPACE_PENDING ? COW_PEND_PER_BLOCK
			       : kind == COW_SPACE_LOG2	   ? COW_EV2_PER_BLOCK
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

bool cow__bs_chain_at(const struct cow__bs *bs, size_t i, struct cow__chainblk *out)
{
	if (i >= bs->nchain)
		return false;
	*out = bs->chain[i];
	return true;
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

/* Apply one space-map record (of a log block at @where, or of the superblock's tail). */
static int replay_rec(struct cow__bs *bs, const struct cow__sprec *r, uint64_t where,
		      struct cow__u64map *m)
{
	if (r->start < 2 || r->len == 0 || r->start + r->len > bs->nblocks ||
	    r->start + r->len < r->start || (r->op == COW_EV_FREE && r->birth > r->gen))
		return COW_CORRUPT(where, "space log record out of range");
	if (r->op == COW_EV_ALLOC) {
		cow__bits_set(bs, r->start, r->len, true);
	} else if (r->op == COW_EV_FREE) {
		int rc = cow__pend_push(&bs->pending, &bs->npending, &bs->cap_pending,
					(struct cow__pend){r->start, r->len, r->birth, r->gen});
		if (rc)
			return rc;
		return pmap_put(m, r->start, bs->npending - 1);
	} else if (r->op == COW_EV_RELEASE) {
		cow__bits_set(bs, r->start, r->len, false);
		const size_t *idx = cow__u64map_get(m, r->start);
		if (idx) {
			bs->pending[*idx].len = 0; /* dead; compacted below */
			cow__u64map_del(m, r->start);
		}
	} else {
		return COW_CORRUPT(where, "unknown space log record");
	}
	return 0;
}

/* A log block: kind 3 (one generation for the block) or 4 (one per record). */
static int replay(struct cow__bs *bs, const uint8_t *b, const struct cow__bptr *p,
		  uint64_t sb_gen, struct cow__u64map *m)
{
	uint32_t count = cow__le32(b + 48);
	bool v2 = b[4] == COW_SPACE_LOG2;
	if (count > (v2 ? COW_EV2_PER_BLOCK : COW_EV_PER_BLOCK))
		return COW_CORRUPT(p->addr, "space log block overfull");
	for (uint32_t i = 0; i < count; i++) {
		struct cow__sprec r;
		if (v2) {
			const uint8_t *q = b + COW_SPACE_HDR + 40 * i;
			r = (struct cow__sprec){cow__le64(q), q[8], cow__le64(q + 16),
						cow__le64(q + 24), cow__le64(q + 32)};
		} else {
			const uint8_t *q = b + COW_SPACE_HDR + 8 + 32 * i;
			r = (struct cow__sprec){cow__le64(b + COW_SPACE_HDR), q[0], cow__le64(q + 8),
						cow__le64(q + 16), cow__le64(q + 24)};
		}
		if (r.gen > p->birth || r.gen > sb_gen)
			return COW_CORRUPT(p->addr, "space log record from a later generation");
		int rc = replay_rec(bs, &r, p->addr, m);
		if (rc)
			return rc;
	}
	return 0;
}

/* cow__bs_load from the chains only. */
/*
 * Forget the writer state and start it afresh for superblock @sb (in @slot),
 * within transaction @txn (0: none): the file must cover what @sb reaches.
 */
static int state_reset(struct cow__bs *bs, const struct cow__sb *sb, int slot, uint64_t txn)
{
	cow__space_release(bs);
	bs->txn_gen = txn;
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
	return 0;
}

static int load_chains(struct cow__bs *bs, const struct cow__sb *sb, int slot)
{
	int rc = state_reset(bs, sb, slot, 0);
	if (rc)
		return rc;
	rc = cow__bits_ensure(bs, bs->nblocks);
	if (rc)
		return rc;
	cow__bits_set(bs, 0, 2, true); /* superblocks */

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
		const uint8_t *b = bs_mapped(bs, blks[i].addr);
		uint32_t count = cow__le32(b + 48);
		if (b[4] == COW_SPACE_BITMAP) {
			uint64_t first = cow__le64(b + COW_SPACE_HDR);
			if (count > COW_BITMAP_BITS || first + count > bs->nblocks) {
				rc = COW_CORRUPT(blks[i].addr, "bitmap block out of range");
				break;
			}
			const uint8_t *bits = b + COW_SPACE_HDR + 8;
			for (uint32_t k = 0; k < count; k++)
				if ((bits[k >> 3] >> (k & 7)) & 1)
					cow__bits_set(bs, first + k, 1, true);
		} else if (b[4] == COW_SPACE_PENDING) {
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
					rc = COW_CORRUPT(blks[i].addr,
							 "pending record out of range");
					break;
				}
				rc = cow__pend_push(&bs->pending, &bs->npending, &bs->cap_pending,
						    p);
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
		const uint8_t *b = bs_mapped(bs, blks[i].addr);
		if (b[4] != COW_SPACE_LOG && b[4] != COW_SPACE_LOG2) {
			rc = COW_CORRUPT(blks[i].addr, "unexpected block in space-map log");
			break;
		}
		rc = replay(bs, b, &blks[i], sb->gen, &m);
		if (rc == 0)
			rc = chain_push(bs, blks[i].addr, blks[i].birth);
	}
	if (rc)
		goto out;
	/* Then the superblock's tail, the newest records; a bad one makes the map unloadable. */
	for (uint32_t i = 0; i < sb->tail_count && rc == 0; i++) {
		const struct cow__sprec *r = &sb->tail[i];
		if (r->gen > sb->gen || (i && r->gen < sb->tail[i - 1].gen))
			rc = COW_CORRUPT(0, "superblock space record out of order");
		else
			rc = replay_rec(bs, r, 0, &m);
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
	if (cow__bit_test(bs, addr))
		return 1;
	cow__bits_set(bs, addr, nblk, true);
	return 0;
}

int cow__bs_rebuild(struct cow__bs *bs, const struct cow__sb *sb, int slot)
{
	if (!bs->walk)
		return COW_EINTERNAL;
	uint64_t txn = bs->txn_gen;
	uint64_t freed = txn ? txn : sb->gen + 1; /* the transaction that rebuilds */
	int rc = state_reset(bs, sb, slot, txn);
	if (rc)
		goto out;
	rc = cow__bits_ensure(bs, bs->nblocks);
	if (rc)
		goto out;
	cow__bits_set(bs, 0, 2, true); /* superblocks */
	rc = bs->walk(bs->walk_ctx, bs, sb);
	if (rc)
		goto out;
	uint64_t reachable = bs->used;

	/*
	 * Everything else may still be seen by a reader pinned at an older
	 * generation (whose roots are not known here): pending, as if this
	 * transaction had freed it, each block born at generation 1 at worst.
	 */
	for (uint64_t b = cow__bits_next_free(bs, 2, bs->nblocks); b != UINT64_MAX;
	     b = cow__bits_next_free(bs, b, bs->nblocks)) {
		uint64_t e = b + 1;
		while (e < bs->nblocks && !cow__bit_test(bs, e))
			e++;
		rc = cow__pend_push(&bs->pending, &bs->npending, &bs->cap_pending,
				    (struct cow__pend){b, e - b, 1, freed});
		if (rc)
			goto out;
		cow__bits_set(bs, b, e - b, true);
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

int cow__bs_format(struct cow__bs *bs, const uint8_t uuid[16])
{
	cow__space_release(bs);
	memset(&bs->sb, 0, sizeof(bs->sb));
	memcpy(bs->sb.uuid, uuid, sizeof(bs->sb.uuid));
	bs->sb_slot = 1; /* so the first commit goes to slot 0 */
	bs->durable = 0;
	bs->durable_slot = 1;
	bs->nblocks = 2;
	bs->file_blocks = 0;
	int rc = cow__bits_ensure(bs, 2);
	if (rc)
		return rc;
	cow__bits_set(bs, 0, 2, true);
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

/* Record @r of this commit's: the carried releases, then the transaction's events. */
static struct cow__sprec new_rec(const struct cow__bs *bs, size_t r)
{
	const struct cow__ev *e = r < bs->ncarry ? &bs->carry[r] : &bs->events[r - bs->ncarry];
	return (struct cow__sprec){bs->txn_gen, e->op, e->start, e->len, e->birth};
}

/*
 * A commit's record when no new base is due. It joins the superblock's tail
 * when the tail has room for it (no block is written); otherwise the tail
 * and the record go out as log blocks (kind 4), whose own allocations they
 * include, and the new superblock's tail is empty.
 */
static int write_log(struct cow__bs *bs, struct cow__sb *sb)
{
	const struct cow__sb *old = &bs->sb;
	size_t nnew = bs->ncarry + bs->nevents;
	sb->space_base = old->space_base;
	if (old->tail_count + nnew <= COW_SB_TAIL_MAX) {
		memcpy(sb->tail, old->tail, old->tail_count * sizeof(old->tail[0]));
		for (size_t r = 0; r < nnew; r++)
			sb->tail[old->tail_count + r] = new_rec(bs, r);
		sb->tail_count = old->tail_count + (uint32_t)nnew;
		sb->space_log = old->space_log;
		sb->log_blocks = old->log_blocks;
		return 0;
	}
	uint64_t *addr = NULL;
	uint8_t **buf = NULL;
	uint32_t *counts = NULL;
	size_t m = 0, cap = 0;
	int rc = 0;
	/* Records: the old tail, carried releases, this transaction's events, the log's ALLOCs. */
	while (rc == 0 && m * COW_EV2_PER_BLOCK < old->tail_count + bs->ncarry + bs->nevents + 1)
		rc = chain_alloc(bs, COW_SPACE_LOG2, &addr, &buf, &m, &cap);
	if (rc == 0 && !(counts = cow__calloc(m, sizeof(uint32_t))))
		rc = COW_ENOMEM;
	size_t total = old->tail_count + bs->ncarry + bs->nevents;
	for (size_t r = 0; rc == 0 && r < total; r++) {
		struct cow__sprec e =
			r < old->tail_count ? old->tail[r] : new_rec(bs, r - old->tail_count);
		uint8_t *rec = buf[r / COW_EV2_PER_BLOCK] + COW_SPACE_HDR + 40 * (r % COW_EV2_PER_BLOCK);
		cow__put64(rec, e.gen);
		rec[8] = (uint8_t)e.op;
		cow__put64(rec + 16, e.start);
		cow__put64(rec + 24, e.len);
		cow__put64(rec + 32, e.birth);
		counts[r / COW_EV2_PER_BLOCK]++;
	}
	if (rc == 0) {
		sb->space_log = link_chain(bs, addr, buf, m, counts, old->space_log);
		sb->log_blocks = old->log_blocks + m;
		sb->tail_count = 0;
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
		uint64_t npend =
			(bs->npending + bs->nstuck + COW_PEND_PER_BLOCK - 1) / COW_PEND_PER_BLOCK;
		if (k >= nbit + npend && k > 0)
			break;
		if ((rc = chain_alloc(bs, COW_SPACE_PENDING, &addr, &buf, &k, &cap)))
			goto out;
	}
	if (!(counts = cow__calloc(k, sizeof(uint32_t)))) {
		rc = COW_ENOMEM;
		goto out;
	}
	uint64_t i = 0;
	for (uint64_t first = 0; first < bs->nblocks; first += COW_BITMAP_BITS, i++) {
		uint8_t *b = buf[i];
		b[4] = COW_SPACE_BITMAP;
		uint64_t cnt = COW_MIN(COW_BITMAP_BITS, bs->nblocks - first);
		cow__put64(b + COW_SPACE_HDR, first);
		uint8_t *bits = b + COW_SPACE_HDR + 8;
		for (uint64_t j = 0; j < cnt; j++)
			if (cow__bit_test(bs, first + j))
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
	sb->tail_count = 0;
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
	size_t nrec = bs->sb.tail_count + bs->ncarry + bs->nevents + 1;
	uint64_t m = nrec <= COW_SB_TAIL_MAX ? 0 : (nrec + COW_EV2_PER_BLOCK - 1) / COW_EV2_PER_BLOCK;
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
