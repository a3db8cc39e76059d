/*
 * The one walk over a tree's pointers that code outside btree/ may build
 * on: it reads each node, and hands every pointer it holds (children of a
 * branch, value extents of a leaf) to the caller, who says whether to go
 * down. So callers count references, mark blocks or collect what they need
 * without knowing a node offset.
 *
 * A node that cannot be read, or that fails its checks, is reported to
 * v->bad and its subtree skipped; without v->bad the walk stops with the
 * error. Depth is bounded by COW_BTREE_MAXDEPTH, which also bounds any
 * cycle a damaged store could hold.
 */
#include "base/base.h"
#include "btree/btree.h"
#include "btree/node.h"

struct visit {
	struct cow__tx *tx;
	const struct cow__visit *v;
};

static int bad(struct visit *w, uint64_t block, const char *what, int rc)
{
	if (!w->v->bad || (rc && rc != COW_ECORRUPT))
		return rc ? rc : COW_CORRUPT(block, what);
	return w->v->bad(w->v->ctx, block, what);
}

static int node(struct visit *w, const struct cow__bptr *p, int depth);

/* Offer @p to the caller; go down if it says so. */
static int offer(struct visit *w, const struct cow__bptr *p, uint64_t nblk, bool is_node, int depth)
{
	if (p->birth <= w->v->min_birth)
		return 0;
	int go = w->v->pre ? w->v->pre(w->v->ctx, p, nblk, is_node, depth) : is_node;
	if (go <= 0 || !is_node)
		return go < 0 ? go : 0;
	return node(w, p, depth);
}

static int node(struct visit *w, const struct cow__bptr *p, int depth)
{
	if (depth >= COW_BTREE_MAXDEPTH)
		return bad(w, p->addr, "tree too deep", 0);
	const uint8_t *n;
	int rc = cow__node_get(w->tx, p, &n);
	if (rc)
		return bad(w, p->addr, "node unreadable or malformed", rc);
	unsigned count = n_count(n);
	for (unsigned i = 0; i < count && rc == 0; i++) {
		const uint8_t *c = n_cell(n, i);
		struct cow__bptr q;
		if (n_kind(n) == N_BRANCH) {
			br_child(c, &q);
			rc = offer(w, &q, 1, true, depth + 1);
		} else if (leaf_vkind(c) == V_EXTENT) {
			cow__bptr_load(&q, leaf_val(c));
			uint64_t nblk = (leaf_vlen(c) + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT;
			rc = offer(w, &q, nblk, false, depth + 1);
		}
	}
	if (rc == 0 && w->v->post)
		rc = w->v->post(w->v->ctx, p, depth);
	return rc;
}

int cow__btree_visit(struct cow__tx *tx, const struct cow__bptr *root, const struct cow__visit *v)
{
	if (!root->addr)
		return 0;
	struct visit w = {tx, v};
	return offer(&w, root, 1, true, 0);
}
