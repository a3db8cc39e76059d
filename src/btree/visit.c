/*
 * The one walk over a tree's pointers. It reads each node (verifying it
 * against its pointer) and hands every pointer it holds, children of a
 * branch and value extents of a leaf, to the caller, who says whether to go
 * down; inline values go to their own callback. Recovery, the debug
 * checker, destroy, exclusive-bytes counting and the space-map rebuild are
 * all built on it, so no code outside btree/ knows a node offset.
 *
 * Guards, the same for every caller: a child newer than its parent is
 * damage; depth is bounded by COW_BTREE_MAXDEPTH; and a walk that meets more
 * nodes than the store has blocks has met one twice (a cycle). A node that
 * cannot be read, or that fails a guard, is reported to v->bad and its
 * subtree skipped; without v->bad the walk stops with COW_ECORRUPT.
 */
#include "base/base.h"
#include "btree/btree.h"
#include "btree/node.h"

struct visit {
	struct cow__tx *tx;
	const struct cow__visit *v;
	uint64_t budget; /* nodes left before one must have been met twice */
};

static int bad(struct visit *w, uint64_t block, const char *what, int rc)
{
	if (rc && rc != COW_ECORRUPT)
		return rc; /* not damage: ENOMEM, EIO */
	if (!w->v->bad)
		return rc ? rc : COW_CORRUPT(block, what);
	return w->v->bad(w->v->ctx, block, what);
}

static int node(struct visit *w, const struct cow__bptr *p, int depth);

/* Offer @p to the caller; go down if it says so. */
static int offer(struct visit *w, const struct cow__bptr *p, uint64_t nblk, size_t vlen,
		 bool is_node, int depth)
{
	const struct cow__visit *v = w->v;
	if (p->birth <= v->min_birth)
		return 0;
	if (!is_node && v->read_extents) {
		const uint8_t *data;
		int rc = cow__bs_read(w->tx->bs, w->tx->read_flags, w->tx->nblocks, p, vlen, &data,
				      NULL);
		if (rc)
			return bad(w, p->addr, "value extent unreadable", rc);
	}
	int go = v->pre ? v->pre(v->ctx, p, nblk, is_node, depth) : is_node;
	if (go <= 0 || !is_node)
		return go < 0 ? go : 0;
	return node(w, p, depth);
}

/*
 * A run offers its whole physical extent (what its count frees); with
 * @read_extents the blocks the run covers are verified first, each against
 * its own checksum (the rest of the extent may be no cell's: not readable).
 */
static int offer_run(struct visit *w, const uint8_t *c, const struct cow__bptr *leaf, int depth)
{
	struct cow__run r;
	leaf_run(c, &r);
	if (!cow__run_ok(&r))
		return bad(w, leaf->addr, "run outside its extent", 0);
	if (r.ext.birth > leaf->birth)
		return bad(w, r.ext.addr, "value newer than its leaf", 0);
	const struct cow__visit *v = w->v;
	if (r.ext.birth <= v->min_birth)
		return 0;
	for (uint32_t i = 0; v->read_extents && i < r.n; i++) {
		struct cow__bptr b = cow__run_block(&r, i);
		const uint8_t *data;
		int rc = cow__bs_read(w->tx->bs, w->tx->read_flags, w->tx->nblocks, &b,
				      COW_BLOCK_SIZE, &data, NULL);
		if (rc)
			return bad(w, b.addr, "value extent unreadable", rc);
	}
	int go = v->pre ? v->pre(v->ctx, &r.ext, r.ext_blocks, false, depth) : 0;
	return go < 0 ? go : 0;
}

static int node(struct visit *w, const struct cow__bptr *p, int depth)
{
	if (depth >= COW_BTREE_MAXDEPTH)
		return bad(w, p->addr, "tree too deep", 0);
	if (w->budget-- == 0)
		return bad(w, p->addr, "a node is reachable twice in one tree", 0);
	const uint8_t *n;
	int rc = cow__node_get(w->tx, p, &n);
	if (rc)
		return bad(w, p->addr, "node unreadable or malformed", rc);
	const struct cow__visit *v = w->v;
	unsigned count = n_count(n);
	for (unsigned i = 0; i < count && rc == 0; i++) {
		const uint8_t *c = n_cell(n, i);
		struct cow__bptr q;
		if (n_kind(n) == N_BRANCH) {
			br_child(c, &q);
			if (q.birth > p->birth)
				rc = bad(w, q.addr, "child newer than its parent", 0);
			else
				rc = offer(w, &q, 1, COW_BLOCK_SIZE, true, depth + 1);
		} else if (leaf_vkind(c) == V_EXTENT) {
			cow__bptr_load(&q, leaf_val(c));
			size_t vlen = leaf_vlen(c);
			uint64_t nblk = (vlen + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT;
			rc = offer(w, &q, nblk, vlen, false, depth + 1);
		} else if (leaf_vkind(c) == V_RUN) {
			rc = offer_run(w, c, p, depth + 1);
		} else if (v->val) {
			rc = v->val(v->ctx, leaf_key(c), leaf_klen(c), leaf_val(c), leaf_vlen(c));
		}
	}
	if (rc == 0 && v->post)
		rc = v->post(v->ctx, p, depth);
	return rc;
}

int cow__btree_visit(struct cow__tx *tx, const struct cow__bptr *root, const struct cow__visit *v)
{
	if (!root->addr)
		return 0;
	struct visit w = {tx, v, tx->nblocks ? tx->nblocks : cow__bs_nblocks(tx->bs)};
	return offer(&w, root, 1, COW_BLOCK_SIZE, true, 0);
}

/* ---- cow__btree_walk, on the visitor ---- */

static int walk_pre(void *ctx, const struct cow__bptr *p, uint64_t nblk, bool is_node, int depth)
{
	(void)depth;
	const struct cow__walk *w = ctx;
	int rc = w->blk ? w->blk(w->ctx, p->addr, nblk, p->birth) : 0;
	return rc ? rc : is_node;
}

static int walk_val(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	const struct cow__walk *w = ctx;
	return w->val(w->ctx, key, klen, val, vlen);
}

int cow__btree_walk(struct cow__tx *tx, const struct cow__tree *t, const struct cow__walk *w)
{
	struct cow__visit v = {.min_birth = w->min_birth,
			       .read_extents = true,
			       .pre = walk_pre,
			       .val = w->val ? walk_val : NULL,
			       .ctx = (void *)w};
	return cow__btree_visit(tx, &t->root, &v);
}
