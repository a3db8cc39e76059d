/*
 * The space map is not a single point of failure (FORMAT.md section 6,
 * "Rebuild"). Readers never look at it. The writer loads it from its chains;
 * when they are damaged, the block layer rebuilds it from a walk of the trees,
 * which this file lends it (the block layer cannot read trees). Scrub reads
 * the chains too, so damage to them is reported, and cow_store_repair
 * rebuilds and commits on request.
 */
#include "base/base.h"
#include "btree/node.h"
#include "store/store.h"

/* ---- the walker ---- */

/*
 * Mark @p's subtree. A node marked already is shared with a version walked
 * before: its subtree is marked, so the walk costs what is distinct. Value
 * extents are marked, not read: the leaf that points at them verified.
 */
static int mark_tree(struct cow__tx *tx, const struct cow__bptr *p, int depth, bool catalog)
{
	if (depth > COW_BTREE_MAXDEPTH)
		return COW_CORRUPT(p->addr, "tree too deep");
	int rc = cow__bs_mark(tx->bs, p->addr, 1);
	if (rc)
		return rc < 0 ? rc : 0;
	const uint8_t *n;
	rc = cow__node_get(tx, p, &n);
	for (unsigned i = 0; rc == 0 && i < n_count(n); i++) {
		const uint8_t *c = n_cell(n, i);
		if (n_kind(n) == N_BRANCH) {
			struct cow__bptr child;
			br_child(c, &child);
			rc = mark_tree(tx, &child, depth + 1, catalog);
		} else if (leaf_vkind(c) == V_EXTENT) {
			struct cow__bptr ep;
			cow__bptr_load(&ep, leaf_val(c));
			uint64_t nblk = (leaf_vlen(c) + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT;
			rc = cow__bs_mark(tx->bs, ep.addr, nblk);
			rc = rc < 0 ? rc : 0;
		} else if (catalog) {
			struct cow__obj o = {0};
			rc = cow__obj_decode(leaf_val(c), leaf_vlen(c), &o);
			if (rc == 0 && o.root.addr)
				rc = mark_tree(tx, &o.root, 0, false);
		}
	}
	return rc;
}

int cow__store_space_walk(void *ctx, struct cow__bs *bs, const struct cow__sb *sb)
{
	(void)ctx;
	struct cow__tx tx = {.bs = bs, .gen = sb->gen, .nblocks = sb->nblocks};
	int rc = 0;
	if (sb->catalog.addr)
		rc = mark_tree(&tx, &sb->catalog, 0, true);
	if (rc == 0 && sb->refs.addr)
		rc = mark_tree(&tx, &sb->refs, 0, false);
	return rc;
}

/* ---- scrub ---- */

int cow__store_scrub_space(cow_txn *t, int (*fn)(void *ctx, uint64_t addr, int rc), void *ctx)
{
	struct cow__sb sb[2];
	bool valid[2];
	int rc = cow__bs_read_slots(t->s->bs, sb, valid);
	if (rc)
		return rc;
	for (int i = 0; i < 2; i++)
		if (valid[i] && sb[i].gen == t->tx.gen && sb[i].nblocks == t->tx.nblocks &&
		    memcmp(&sb[i].catalog, &t->catalog.root, sizeof(sb[i].catalog)) == 0)
			return cow__bs_scrub_space(t->s->bs, &sb[i], fn, ctx);
	return 0; /* both slots were rewritten since t began: its chains are history */
}

/* ---- repair ---- */

int cow_store_repair(cow_store *s)
{
	if (!s)
		return COW_EINVAL;
	cow_txn *t;
	int rc = cow_txn_begin(s, 0, &t);
	if (rc)
		return rc;
	struct cow__bs *bs = s->bs;
	struct cow__sb sb = *cow__bs_sb(bs);
	rc = cow__bs_rebuild(bs, &sb, cow__bs_sb_slot(bs));
	if (rc) {
		cow_txn_abort(t);
		return rc;
	}
	return cow_txn_commit(t);
}
