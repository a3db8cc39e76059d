/*
 * The space map is not a single point of failure (FORMAT.md section 6,
 * "Rebuild"). Readers never look at it. The writer loads it from its chains;
 * when they are damaged, the block layer rebuilds it from a walk of the trees,
 * which this file lends it (the block layer cannot read trees). Scrub reads
 * the chains too, so damage to them is reported, and cow_store_repair
 * rebuilds and commits on request.
 */
#include "base/base.h"
#include "store/store.h"

/* ---- the walker ---- */

/*
 * Mark every block a tree reaches. A node marked already is shared with a
 * version walked before: its subtree is marked, so the walk costs what is
 * distinct. Value extents are marked, not read: the leaf that points at
 * them verified. The catalog's records lead to the objects' trees.
 */
struct marker {
	struct cow__tx *tx;
};

static int mark_pre(void *ctx, const struct cow__bptr *p, uint64_t nblk, bool node, int depth)
{
	(void)depth;
	struct marker *m = ctx;
	int rc = cow__bs_mark(m->tx->bs, p->addr, nblk);
	if (rc)
		return rc < 0 ? rc : 0; /* marked before: shared, done */
	return node;
}

static int mark_object(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	(void)key, (void)klen;
	struct marker *m = ctx;
	struct cow__obj o = {0};
	int rc = cow__obj_decode(val, vlen, &o);
	if (rc)
		return rc;
	struct cow__visit v = {.pre = mark_pre, .ctx = m};
	return cow__btree_visit(m->tx, &o.root, &v);
}

int cow__store_space_walk(void *ctx, struct cow__bs *bs, const struct cow__sb *sb)
{
	(void)ctx;
	struct cow__tx tx = {.bs = bs, .gen = sb->gen, .nblocks = sb->nblocks};
	struct marker m = {&tx};
	struct cow__visit cat = {.pre = mark_pre, .val = mark_object, .ctx = &m};
	struct cow__visit refs = {.pre = mark_pre, .ctx = &m};
	int rc = cow__btree_visit(&tx, &sb->catalog, &cat);
	if (rc == 0)
		rc = cow__btree_visit(&tx, &sb->refs, &refs);
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
