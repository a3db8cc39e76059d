/*
 * The tree checker fsck uses: everything a reader would refuse, and the
 * invariants the writer keeps, reported problem by problem instead of
 * stopping at the first. The node format stays in btree/: callers learn what
 * is wrong in words, with the block and the first key of the subtree.
 *
 * A damaged node is reported once and its subtree skipped (nothing under it
 * can be trusted); its siblings are still checked. Blocks already checked
 * (through another version sharing them) are not visited again, and their
 * entry counts come from the per-block cache, so checking every snapshot
 * costs what the distinct blocks cost.
 */
#include "base/base.h"
#include "btree/btree.h"
#include "btree/node.h"

struct chk {
	struct cow__tx *tx;
	const struct cow__check *ck;
	uint64_t problems;
	int stop;	    /* a callback's nonzero return */
	int err;	    /* an error that is not damage (ENOMEM, EIO): the check cannot go on */
	bool count_unknown; /* a subtree was damaged or of unknown size */
};

static void problem(struct chk *c, uint64_t block, const uint8_t *key, size_t klen,
		    const char *what)
{
	c->problems++;
	if (!c->stop && c->ck->problem)
		c->stop = c->ck->problem(c->ck->ctx, block, key, klen, what);
}

/* A read failed: damage is a problem, anything else stops the check. */
static void failed(struct chk *c, uint64_t block, const uint8_t *key, size_t klen, int rc)
{
	if (rc != COW_ECORRUPT) {
		c->err = rc;
		return;
	}
	problem(c, block, key, klen, "damaged block (checksum, pointer or node structure)");
}

static bool seen(struct chk *c, uint64_t addr)
{
	return addr < c->ck->nblocks && (c->ck->seen[addr] & 1);
}

static void mark(struct chk *c, uint64_t addr)
{
	if (addr < c->ck->nblocks)
		c->ck->seen[addr] |= 1;
}

static void check_extent(struct chk *c, const uint8_t *n, uint64_t addr, const uint8_t *cell)
{
	const uint8_t *k = leaf_key(cell);
	size_t klen = leaf_klen(cell), vlen = leaf_vlen(cell);
	struct cow__bptr ep;
	cow__bptr_load(&ep, leaf_val(cell));
	if (vlen == 0 || 8 + klen + vlen <= COW_CELL_MAX) {
		problem(c, addr, k, klen,
			"value stored as an extent but small enough to be inline");
		return;
	}
	if (ep.birth > cow__le64(n + 16)) {
		problem(c, ep.addr, k, klen, "value newer than its leaf");
		return;
	}
	if (seen(c, ep.addr))
		return; /* shared with a version already checked */
	const uint8_t *data;
	int rc = cow__bs_read(c->tx->bs, c->tx->read_flags, c->tx->nblocks, &ep, vlen, &data, NULL);
	mark(c, ep.addr);
	if (rc) {
		failed(c, ep.addr, k, klen, rc);
		return;
	}
	if (c->ck->verified)
		c->ck->verified(c->ck->ctx, ep.addr,
				(vlen + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT);
}

/* A run: its shape, then each block it covers, once per store (others may share it). */
static void check_run(struct chk *c, const uint8_t *n, uint64_t addr, const uint8_t *cell)
{
	const uint8_t *k = leaf_key(cell);
	size_t klen = leaf_klen(cell);
	struct cow__run r;
	leaf_run(cell, &r);
	if (leaf_vlen(cell) & (COW_BLOCK_SIZE - 1) || r.n == 0 ||
	    8 + klen + COW_RUN_HDR + 8 * (size_t)r.n > COW_CELL_MAX) {
		problem(c, addr, k, klen, "run length not a whole number of blocks");
		return;
	}
	if (!cow__run_ok(&r) || r.ext.csum || cow__le32(leaf_val(cell) + COW_BPTR_SIZE + 4)) {
		problem(c, addr, k, klen, "run outside its extent");
		return;
	}
	if (r.ext.birth > cow__le64(n + 16)) {
		problem(c, r.ext.addr, k, klen, "value newer than its leaf");
		return;
	}
	for (uint32_t i = 0; i < r.n && !c->err; i++) {
		struct cow__bptr b = cow__run_block(&r, i);
		if (seen(c, b.addr))
			continue;
		const uint8_t *data;
		int rc = cow__bs_read(c->tx->bs, c->tx->read_flags, c->tx->nblocks, &b,
				      COW_BLOCK_SIZE, &data, NULL);
		mark(c, b.addr);
		if (rc) {
			failed(c, b.addr, k, klen, rc);
			continue;
		}
		if (c->ck->verified)
			c->ck->verified(c->ck->ctx, b.addr, 1);
	}
}

/*
 * Check the subtree at *p, whose keys must lie in [lo, hi) (NULL: unbounded)
 * and whose root must sit at @level (-1: the tree's root, any level). Adds
 * its entries to *entries when known.
 */
static void check_node(struct chk *c, const struct cow__bptr *p, const uint8_t *lo, size_t lolen,
		       const uint8_t *hi, size_t hilen, int level, int depth, uint64_t *entries)
{
	if (c->stop || c->err)
		return;
	if (depth >= COW_BTREE_MAXDEPTH) {
		problem(c, p->addr, lo, lolen, "tree too deep");
		c->count_unknown = true;
		return;
	}
	if (seen(c, p->addr)) {
		uint32_t e = c->ck->entries ? c->ck->entries[p->addr] : 0;
		if (e == 0 || e == UINT32_MAX)
			c->count_unknown = true;
		else
			*entries += e - 1;
		return;
	}
	const uint8_t *n;
	int rc = cow__node_get(c->tx, p, &n);
	mark(c, p->addr);
	if (rc) {
		failed(c, p->addr, lo, lolen, rc);
		c->count_unknown = true;
		return;
	}
	if (c->ck->verified)
		c->ck->verified(c->ck->ctx, p->addr, 1);

	unsigned cnt = n_count(n);
	bool leaf = n_kind(n) == N_LEAF, ordered = true;
	size_t klen0 = 0;
	const uint8_t *k0 = cnt ? cell_key(n, n_cell(n, 0), &klen0) : lo;
	if (!cnt)
		klen0 = lolen;
	if (level >= 0 && n_level(n) != level)
		problem(c, p->addr, k0, klen0, "node level does not match its depth");
	if (cnt == 0 && (level >= 0 || !leaf))
		problem(c, p->addr, k0, klen0, leaf ? "empty non-root node" : "empty branch");

	/* Keys: nonempty, increasing, within the parent's separators. */
	size_t used = 0, prevlen = 0;
	const uint8_t *prev = NULL;
	const char *order = NULL;
	for (unsigned i = 0; i < cnt; i++) {
		const uint8_t *cell = n_cell(n, i);
		used += cell_size(n, cell);
		size_t klen;
		const uint8_t *k = cell_key(n, cell, &klen);
		if (!leaf && i == 0)
			continue; /* cell 0 of a branch stands for everything below cell 1 */
		if (order)
			continue;
		if (klen == 0)
			order = "empty key";
		else if (prev && key_cmp(prev, prevlen, k, klen) >= 0)
			order = "keys out of order";
		else if (lo && key_cmp(k, klen, lo, lolen) < 0)
			order = "key below its separator";
		else if (hi && key_cmp(k, klen, hi, hilen) >= 0)
			order = "key above the next separator";
		prev = k;
		prevlen = klen;
	}
	if (order) {
		problem(c, p->addr, k0, klen0, order);
		ordered = false;
		c->count_unknown = true; /* lookups may miss entries a walk counts */
	}
	if (used != n_used(n))
		problem(c, p->addr, k0, klen0, "node byte count wrong");

	uint64_t sub = 0;
	if (leaf) {
		for (unsigned i = 0; i < cnt && !c->stop && !c->err; i++) {
			const uint8_t *cell = n_cell(n, i);
			int vk = leaf_vkind(cell);
			if (vk == V_EXTENT) {
				check_extent(c, n, p->addr, cell);
			} else if (vk == V_RUN) {
				check_run(c, n, p->addr, cell);
			} else if (vk != V_INLINE) {
				problem(c, p->addr, leaf_key(cell), leaf_klen(cell),
					"unknown value kind");
			} else if (8 + leaf_klen(cell) + leaf_vlen(cell) > COW_CELL_MAX) {
				problem(c, p->addr, leaf_key(cell), leaf_klen(cell),
					"inline value longer than a cell may be");
			} else if (c->ck->val) {
				int r = c->ck->val(c->ck->ctx, leaf_key(cell), leaf_klen(cell),
						   leaf_val(cell), leaf_vlen(cell), p->addr);
				if (r)
					c->stop = r;
			}
		}
		sub = cnt;
	} else {
		for (unsigned i = 0; i < cnt && !c->stop && !c->err; i++) {
			const uint8_t *cell = n_cell(n, i);
			struct cow__bptr child;
			br_child(cell, &child);
			const uint8_t *clo = lo, *chi = hi;
			size_t clolen = lolen, chilen = hilen;
			if (ordered && i > 0) {
				clo = br_key(cell);
				clolen = br_klen(cell);
			}
			if (ordered && i + 1 < cnt) {
				chi = br_key(n_cell(n, i + 1));
				chilen = br_klen(n_cell(n, i + 1));
			}
			if (child.birth > p->birth) {
				problem(c, child.addr, clo, clolen, "child newer than its parent");
				c->count_unknown = true;
				continue;
			}
			check_node(c, &child, clo, clolen, chi, chilen, n_level(n) - 1, depth + 1,
				   &sub);
		}
	}
	*entries += sub;
	if (c->ck->entries && p->addr < c->ck->nblocks)
		c->ck->entries[p->addr] = sub + 1 >= UINT32_MAX ? UINT32_MAX : (uint32_t)(sub + 1);
}

int cow__btree_check(struct cow__tx *tx, const struct cow__tree *t, bool count_known,
		     const struct cow__check *ck, uint64_t *problems)
{
	struct chk c = {.tx = tx, .ck = ck};
	uint64_t entries = 0;
	if (t->root.addr)
		check_node(&c, &t->root, NULL, 0, NULL, 0, -1, 0, &entries);
	if (!c.stop && !c.err && count_known && !c.count_unknown && entries != t->count)
		problem(&c, t->root.addr, NULL, 0, "entry count does not match the tree");
	*problems = c.problems;
	return c.err ? c.err : c.stop;
}
