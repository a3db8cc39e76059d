/*
 * Relocation, for compaction (FORMAT.md section 7, "Compaction"): rewrite
 * trees so that the blocks they reach lie below an address, keeping every
 * bit of sharing.
 *
 * A block is moved, not unshared: its copy keeps its reference count, and
 * every parent that pointed to the old address is rewritten to point to the
 * copy. That holds because the memo (old address -> new pointer) spans every
 * tree of the transaction and the walk is post-order: a node is rewritten
 * after its children, and once met, a block answers every later parent from
 * the memo. The caller must relocate every tree of the store in one write
 * transaction, or some parent would keep the freed address.
 *
 * Moved blocks are born in this transaction. A tree that reaches one of them
 * takes shared_gen = the transaction's generation, so its later writes look
 * the counts up instead of taking a new node for unshared.
 */
#include "base/base.h"
#include "btree/btree.h"
#include "btree/node.h"

void cow__reloc_init(struct cow__reloc *r, uint64_t limit, uint64_t budget)
{
	*r = (struct cow__reloc){.limit = limit, .budget = budget};
	cow__u64map_init(&r->memo, sizeof(struct cow__bptr));
}

void cow__reloc_release(struct cow__reloc *r)
{
	cow__u64map_release(&r->memo);
}

static int memo_put(struct cow__reloc *r, uint64_t old, const struct cow__bptr *p)
{
	void *v;
	int rc = cow__u64map_put(&r->memo, old, &v);
	if (rc < 0)
		return rc;
	memcpy(v, p, sizeof(*p));
	return 0;
}

/*
 * May this block move of its own accord (it lies at or past the limit)?
 * Within the budget, or as the step's first move: an extent larger than the
 * budget must move some time.
 */
static bool wants_move(const struct cow__reloc *r, const struct cow__bptr *p, uint64_t nblk)
{
	return (r->budget >= nblk || r->moved == 0) && !r->full && p->addr + nblk > r->limit;
}

/*
 * The copy at @addr replaces @old: it takes over the count (a shared block
 * keeps all its parents), the old block is freed (pending, as any block an
 * older generation reaches).
 */
static int take_over(struct cow__tx *tx, bool maybe_sh, const struct cow__bptr *old, uint64_t nblk,
		     uint64_t addr)
{
	if (maybe_sh) {
		int rc = cow__ref_move(tx, old->addr, addr);
		if (rc)
			return rc;
	}
	return cow__bs_free(tx->bs, old->addr, nblk, old->birth);
}

/* A voluntary move landed at or past the limit: no room below it, stop moving. */
static bool landed_high(struct cow__tx *tx, struct cow__reloc *r, uint64_t addr, uint64_t nblk)
{
	if (addr + nblk <= r->limit)
		return false;
	cow__bs_free(tx->bs, addr, nblk, tx->gen); /* born now: free at once */
	r->full = true;
	return true;
}

/*
 * Copy the @nblk blocks at *p (@len bytes of them at @data) below the limit
 * and point *p at the copy (same bytes: the checksum stays). Leaves *p as it
 * was when the copy landed too high to help.
 */
static int move(struct cow__tx *tx, const struct cow__tree *t, struct cow__reloc *r,
		struct cow__bptr *p, uint64_t nblk, const void *data, size_t len)
{
	uint64_t addr;
	int rc = cow__bs_write_new(tx->bs, nblk, data, len, &addr);
	if (rc)
		return rc;
	if (landed_high(tx, r, addr, nblk))
		return 0;
	rc = take_over(tx, p->birth <= t->shared_gen, p, nblk, addr);
	if (rc) {
		cow__bs_free(tx->bs, addr, nblk, tx->gen);
		return rc;
	}
	struct cow__bptr old = *p;
	*p = (struct cow__bptr){addr, tx->gen, old.csum};
	r->budget -= COW_MIN(r->budget, nblk);
	r->moved += nblk;
	return memo_put(r, old.addr, p);
}

static int extent(struct cow__tx *tx, const struct cow__tree *t, struct cow__reloc *r,
		  struct cow__bptr *p, size_t vlen)
{
	const struct cow__bptr *seen = cow__u64map_get(&r->memo, p->addr);
	if (seen) {
		*p = *seen;
		return 0;
	}
	uint64_t nblk = (vlen + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT;
	if (p->birth == tx->gen || !wants_move(r, p, nblk))
		return 0; /* kept: extents met again need no memo */
	const uint8_t *data;
	int rc = cow__bs_read(tx->bs, tx->read_flags, tx->nblocks, p, vlen, &data, NULL);
	if (rc)
		return rc;
	return move(tx, t, r, p, nblk, data, vlen);
}

/*
 * A run's extent moves whole (other cells may hold other parts of it). The
 * blocks this cell covers are verified first; the rest are copied as they
 * are, since they are only readable through the cells that cover them, and
 * keep their checksums there.
 */
static int run_extent(struct cow__tx *tx, const struct cow__tree *t, struct cow__reloc *r,
		      uint8_t *cell)
{
	struct cow__run run;
	leaf_run(cell, &run);
	struct cow__bptr *p = &run.ext, old = run.ext;
	const struct cow__bptr *seen = cow__u64map_get(&r->memo, p->addr);
	if (seen) {
		if (seen->addr == old.addr)
			return 0;
		*p = *seen;
	} else {
		uint64_t nblk = run.ext_blocks;
		uint64_t nb = tx->nblocks ? tx->nblocks : cow__bs_nblocks(tx->bs);
		if (!cow__run_ok(&run) || p->addr + nblk > nb)
			return COW_CORRUPT(p->addr, "run outside its extent");
		if (p->birth == tx->gen || !wants_move(r, p, nblk))
			return 0;
		for (uint32_t i = 0; i < run.n; i++) {
			struct cow__bptr b = cow__run_block(&run, i);
			const uint8_t *d;
			int rc = cow__bs_read(tx->bs, tx->read_flags, tx->nblocks, &b,
					      COW_BLOCK_SIZE, &d, NULL);
			if (rc)
				return rc;
		}
		int rc = move(tx, t, r, p, nblk, cow__bs_mapped(tx->bs, p->addr),
			      nblk << COW_BLOCK_SHIFT);
		if (rc)
			return rc;
		if (p->addr == old.addr)
			return 0; /* landed too high: kept */
	}
	cow__bptr_store((uint8_t *)leaf_val(cell), p);
	return 1; /* changed */
}

static int node(struct cow__tx *tx, const struct cow__tree *t, struct cow__reloc *r,
		struct cow__bptr *p, int depth)
{
	const struct cow__bptr *seen = cow__u64map_get(&r->memo, p->addr);
	if (seen) {
		*p = *seen;
		return 0;
	}
	if (depth >= COW_BTREE_MAXDEPTH)
		return COW_CORRUPT(p->addr, "tree too deep");
	const uint8_t *n;
	int rc = cow__node_get(tx, p, &n);
	if (rc)
		return rc;
	/* Children first, into a copy: the node itself may be read-only. */
	uint8_t b[COW_BLOCK_SIZE];
	memcpy(b, n, COW_BLOCK_SIZE);
	bool changed = false;
	for (unsigned i = 0; i < n_count(b); i++) {
		uint8_t *c = (uint8_t *)n_cell(b, i);
		struct cow__bptr q, was;
		if (n_kind(b) == N_BRANCH) {
			br_child(c, &q);
			if (q.birth > p->birth)
				return COW_CORRUPT(q.addr, "child newer than its parent");
			was = q;
			rc = node(tx, t, r, &q, depth + 1);
			if (rc == 0 && memcmp(&q, &was, sizeof(q))) {
				cow__bptr_store(c + 2, &q);
				changed = true;
			}
		} else if (leaf_vkind(c) == V_EXTENT) {
			cow__bptr_load(&q, leaf_val(c));
			was = q;
			rc = extent(tx, t, r, &q, leaf_vlen(c));
			if (rc == 0 && memcmp(&q, &was, sizeof(q))) {
				cow__bptr_store((uint8_t *)leaf_val(c), &q);
				changed = true;
			}
		} else if (leaf_vkind(c) == V_RUN) {
			rc = run_extent(tx, t, r, c);
			changed |= rc == 1;
			rc = rc == 1 ? 0 : rc;
		}
		if (rc)
			return rc;
	}
	struct cow__bptr old = *p;
	if (p->birth == tx->gen) { /* written in this transaction: change it where it is */
		uint8_t *d = cow__bs_dirty(tx->bs, p->addr);
		if (!d)
			return COW_CORRUPT(p->addr, "lost dirty node");
		if (changed)
			memcpy(d, b, COW_BLOCK_SIZE);
		return memo_put(r, old.addr, p);
	}
	bool voluntary = wants_move(r, p, 1);
	if (!changed && !voluntary)
		return memo_put(r, old.addr, p);
	uint64_t addr;
	uint8_t *d;
	rc = cow__bs_alloc(tx->bs, 1, &addr, &d);
	if (rc)
		return rc;
	if (!changed && landed_high(tx, r, addr, 1))
		return memo_put(r, old.addr, p);
	rc = take_over(tx, p->birth <= t->shared_gen, p, 1, addr);
	if (rc) {
		cow__bs_free(tx->bs, addr, 1, tx->gen);
		return rc;
	}
	memcpy(d, b, COW_BLOCK_SIZE);
	cow__put64(d + 8, addr);
	cow__put64(d + 16, tx->gen);
	*p = (struct cow__bptr){addr, tx->gen, 0}; /* checksum at finalize */
	if (voluntary) {
		r->budget--;
		r->moved++;
	} else {
		r->rewritten++;
	}
	return memo_put(r, old.addr, p);
}

int cow__btree_relocate(struct cow__tx *tx, struct cow__tree *t, struct cow__reloc *r)
{
	if (!t->root.addr)
		return 0;
	struct cow__bptr root = t->root;
	int rc = node(tx, t, r, &root, 0);
	if (rc || !memcmp(&root, &t->root, sizeof(root)))
		return rc;
	t->root = root;
	t->mods++;
	if (t->shared_gen < tx->gen)
		t->shared_gen = tx->gen;
	return 0;
}
