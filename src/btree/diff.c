/*
 * Diff of two trees that may share subtrees.
 *
 * Each tree is read by an iterator that yields items in key order: either a
 * whole subtree (a pointer and a lower bound for its keys) or one entry. Two
 * subtrees at the head of both iterators with the same address hold the same
 * entries, so both are skipped without being read. Otherwise the item that
 * starts first is expanded (or, for an entry, compared), so the iterators
 * stay aligned by key and shared subtrees meet at the head together. The cost
 * follows the size of the change times the depth, not the size of the trees.
 */
#include <stdlib.h>

#include "base/base.h"
#include "btree/btree.h"
#include "btree/node.h"

struct item {
	bool node;               /* a subtree (else an entry) */
	struct cow__bptr p;      /* the subtree */
	int level;               /* the subtree's level: its parent's level - 1 */
	const uint8_t *lo;       /* lower bound of its keys (entries: the key) */
	size_t lolen;
	const uint8_t *cell;     /* the entry's leaf cell */
};

/* A stack of pending items, the next one on top. */
struct iter {
	struct item *items;
	size_t n, cap;
	uint64_t expanded; /* nodes expanded so far */
};

static int push(struct iter *it, struct item x)
{
	int rc = cow__grow((void **)&it->items, &it->cap, it->n + 1, sizeof(*it->items));
	if (rc)
		return rc;
	it->items[it->n++] = x;
	return 0;
}

/* Replace the subtree on top with its cells, first cell on top. */
static int expand(struct cow__tx *tx, struct iter *it)
{
	struct item top = it->items[--it->n];
	const uint8_t *n;
	int rc = cow__node_get(tx, &top.p, &n);
	if (rc)
		return rc;
	/* Two trees hold fewer distinct nodes than twice the store's blocks. */
	if (++it->expanded > 2 * (tx->nblocks ? tx->nblocks : cow__bs_nblocks(tx->bs)) + 64)
		return COW_CORRUPT(top.p.addr, "a node is reachable twice in one tree");
	for (unsigned k = n_count(n); k-- > 0;) {
		const uint8_t *c = n_cell(n, k);
		struct item x = {.level = n_level(n) - 1};
		if (n_kind(n) == N_BRANCH) {
			x.node = true;
			br_child(c, &x.p);
			if (k == 0) { /* cell 0 stands for -inf: keep the parent's bound */
				x.lo = top.lo;
				x.lolen = top.lolen;
			} else {
				x.lo = br_key(c);
				x.lolen = br_klen(c);
			}
		} else {
			x.cell = c;
			x.lo = leaf_key(c);
			x.lolen = leaf_klen(c);
		}
		rc = push(it, x);
		if (rc)
			return rc;
	}
	return 0;
}

static int value(struct cow__tx *tx, const uint8_t *c, cow_buf *v, struct cow__bptr *ext)
{
	ext->addr = 0;
	if (leaf_vkind(c) != V_EXTENT) { /* inline, or a run's descriptor: compared as bytes */
		v->data = leaf_val(c);
		v->len = leaf_size(c) - 8 - leaf_klen(c);
		return 0;
	}
	cow__bptr_load(ext, leaf_val(c));
	const uint8_t *d;
	int rc = cow__bs_read(tx->bs, tx->read_flags, tx->nblocks, ext, leaf_vlen(c), &d, NULL);
	v->data = d;
	v->len = leaf_vlen(c);
	return rc;
}

static int emit(struct cow__tx *tx, const uint8_t *ca, const uint8_t *cb,
		int (*fn)(void *, const cow_buf *, const cow_buf *, const cow_buf *), void *ctx)
{
	cow_buf key, va, vb;
	struct cow__bptr ea, eb;
	const uint8_t *c = ca ? ca : cb;
	key.data = leaf_key(c);
	key.len = leaf_klen(c);
	int rc;
	if (ca && (rc = value(tx, ca, &va, &ea)))
		return rc;
	if (cb && (rc = value(tx, cb, &vb, &eb)))
		return rc;
	if (ca && cb) {
		/* Same extent, or same bytes: unchanged. */
		if (ea.addr && eb.addr && ea.addr == eb.addr)
			return 0;
		if (va.len == vb.len && memcmp(va.data, vb.data, va.len) == 0)
			return 0;
	}
	return fn(ctx, &key, ca ? &va : NULL, cb ? &vb : NULL);
}

int cow__btree_diff(struct cow__tx *tx, const struct cow__tree *a, const struct cow__tree *b,
		    int (*fn)(void *ctx, const cow_buf *key, const cow_buf *va, const cow_buf *vb),
		    void *ctx)
{
	struct iter ia = {0}, ib = {0};
	int rc = 0;
	if (a->root.addr)
		rc = push(&ia, (struct item){.node = true, .p = a->root, .level = 255, .lo = NULL});
	if (rc == 0 && b->root.addr)
		rc = push(&ib, (struct item){.node = true, .p = b->root, .level = 255, .lo = NULL});
	while (rc == 0 && (ia.n || ib.n)) {
		struct item *x = ia.n ? &ia.items[ia.n - 1] : NULL;
		struct item *y = ib.n ? &ib.items[ib.n - 1] : NULL;
		if (x && y && x->node && y->node && x->p.addr == y->p.addr) {
			ia.n--, ib.n--; /* shared: the same entries on both sides */
			continue;
		}
		if (!y) {
			if (x->node)
				rc = expand(tx, &ia);
			else
				rc = emit(tx, x->cell, NULL, fn, ctx), ia.n--;
			continue;
		}
		if (!x) {
			if (y->node)
				rc = expand(tx, &ib);
			else
				rc = emit(tx, NULL, y->cell, fn, ctx), ib.n--;
			continue;
		}
		/* Order by lower bound (NULL = -inf); expand subtrees before comparing. */
		int cmp = !x->lo ? (!y->lo ? 0 : -1)
				 : !y->lo ? 1 : key_cmp(x->lo, x->lolen, y->lo, y->lolen);
		if (!x->node && !y->node) {
			if (cmp == 0)
				rc = emit(tx, x->cell, y->cell, fn, ctx), ia.n--, ib.n--;
			else if (cmp < 0)
				rc = emit(tx, x->cell, NULL, fn, ctx), ia.n--;
			else
				rc = emit(tx, NULL, y->cell, fn, ctx), ib.n--;
		} else if (!x->node) { /* y is a subtree */
			if (cmp < 0)
				rc = emit(tx, x->cell, NULL, fn, ctx), ia.n--;
			else
				rc = expand(tx, &ib);
		} else if (!y->node) {
			if (cmp > 0)
				rc = emit(tx, NULL, y->cell, fn, ctx), ib.n--;
			else
				rc = expand(tx, &ia);
		} else if (cmp < 0 || (cmp == 0 && x->level >= y->level)) {
			rc = expand(tx, &ia);
		} else {
			rc = expand(tx, &ib);
		}
	}
	cow__free(ia.items);
	cow__free(ib.items);
	return rc;
}
