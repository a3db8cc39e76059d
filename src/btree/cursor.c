/*
 * Cursors (both directions, with re-seek after changes), the block walk used
 * by recovery and space checks, and the white-box verifier.
 */
#include "base/base.h"
#include "btree/btree.h"
#include "btree/node.h"

void cow__cursor_init(struct cow__cursor *c, struct cow__tx *tx, struct cow__tree *t)
{
	c->tx = tx;
	c->tree = t;
	c->depth = 0;
	c->klen = 0;
	c->mods = t->mods;
}

/* Descend from path[level] (already set) to a leaf, always taking the first
 * (@last false) or last child. */
static int descend(struct cow__cursor *c, int level, bool last)
{
	for (;;) {
		const uint8_t *n = c->path[level].node;
		if (n_kind(n) == N_LEAF) {
			c->depth = level + 1;
			return 0;
		}
		if (n_count(n) == 0)
			return COW_CORRUPT(0, "empty branch");
		if (level + 1 >= COW_BTREE_MAXDEPTH)
			return COW_CORRUPT(0, "tree too deep");
		struct cow__bptr child;
		br_child(n_cell(n, (unsigned)c->path[level].idx), &child);
		const uint8_t *cn;
		int rc = cow__node_get(c->tx, &child, &cn);
		if (rc)
			return rc;
		level++;
		c->path[level].node = cn;
		c->path[level].idx = last && n_count(cn) ? (int)n_count(cn) - 1 : 0;
	}
}

static void remember(struct cow__cursor *c)
{
	c->mods = c->tree->mods;
	if (!c->tx->write)
		return; /* a read transaction's trees never change: nothing to re-find */
	const uint8_t *leaf = c->path[c->depth - 1].node;
	const uint8_t *cell = n_cell(leaf, (unsigned)c->path[c->depth - 1].idx);
	c->klen = leaf_klen(cell);
	memcpy(c->key, leaf_key(cell), c->klen);
	c->mods = c->tree->mods;
}

static int start(struct cow__cursor *c, bool last)
{
	c->depth = 0;
	c->mods = c->tree->mods;
	if (!c->tree->root.addr)
		return COW_ENOTFOUND;
	const uint8_t *n;
	int rc = cow__node_get(c->tx, &c->tree->root, &n);
	if (rc)
		return rc;
	c->path[0].node = n;
	c->path[0].idx = last && n_count(n) ? (int)n_count(n) - 1 : 0;
	rc = descend(c, 0, last);
	if (rc) {
		c->depth = 0;
		return rc;
	}
	const uint8_t *leaf = c->path[c->depth - 1].node;
	if (n_count(leaf) == 0) {
		c->depth = 0;
		return COW_ENOTFOUND;
	}
	remember(c);
	return 0;
}

int cow__cursor_first(struct cow__cursor *c)
{
	return start(c, false);
}

int cow__cursor_last(struct cow__cursor *c)
{
	return start(c, true);
}

/* Step the leaf index by @dir (+1/-1), climbing and descending as needed. */
static int step(struct cow__cursor *c, int dir)
{
	int level = c->depth - 1;
	for (;;) {
		int ni = c->path[level].idx + dir;
		if (ni >= 0 && ni < (int)n_count(c->path[level].node)) {
			c->path[level].idx = ni;
			break;
		}
		if (level == 0) {
			c->depth = 0;
			return COW_ENOTFOUND;
		}
		level--;
	}
	if (level < c->depth - 1) {
		int rc = descend(c, level, dir < 0);
		if (rc) {
			c->depth = 0;
			return rc;
		}
	}
	const uint8_t *leaf = c->path[c->depth - 1].node;
	if (n_count(leaf) == 0) /* only an empty root leaf can be empty */
		return step(c, dir);
	remember(c);
	return 0;
}

int cow__cursor_seek(struct cow__cursor *c, const void *key, size_t klen)
{
	c->depth = 0;
	c->mods = c->tree->mods;
	struct cow__bptr p = c->tree->root;
	int level = 0;
	while (p.addr) {
		if (level >= COW_BTREE_MAXDEPTH)
			return COW_CORRUPT(p.addr, "tree too deep");
		const uint8_t *n;
		int rc = cow__node_get(c->tx, &p, &n);
		if (rc)
			return rc;
		unsigned lo = 0, hi = n_count(n);
		while (lo < hi) { /* first cell with key >= @key */
			unsigned mid = (lo + hi) / 2;
			size_t cl;
			const uint8_t *ck = cell_key(n, n_cell(n, mid), &cl);
			if (key_cmp(ck, cl, key, klen) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		c->path[level].node = n;
		if (n_kind(n) == N_LEAF) {
			c->depth = level + 1;
			if (lo < n_count(n)) {
				c->path[level].idx = (int)lo;
				remember(c);
				return 0;
			}
			if (n_count(n) == 0) {
				c->depth = 0;
				return COW_ENOTFOUND;
			}
			c->path[level].idx = (int)n_count(n) - 1;
			return step(c, +1);
		}
		if (n_count(n) == 0)
			return COW_CORRUPT(p.addr, "empty branch");
		/* child: the last cell with key <= @key (cell 0 stands for -inf) */
		unsigned i = lo;
		if (i == n_count(n) || key_cmp(br_key(n_cell(n, i)), br_klen(n_cell(n, i)), key, klen) != 0)
			i = i ? i - 1 : 0;
		c->path[level].idx = (int)i;
		br_child(n_cell(n, i), &p);
		level++;
	}
	return COW_ENOTFOUND;
}

/* After a change through the transaction, find our place again by key. */
static int resync(struct cow__cursor *c, int dir)
{
	uint8_t key[COW_BTREE_KEY_MAX];
	size_t klen = c->klen;
	memcpy(key, c->key, klen);
	int rc = cow__cursor_seek(c, key, klen);
	if (dir > 0) {
		if (rc)
			return rc;
		/* Landed on our old key: move past it; on its successor: stay. */
		if (c->klen == klen && memcmp(c->key, key, klen) == 0)
			return step(c, +1);
		return 0;
	}
	if (rc == COW_ENOTFOUND)
		return cow__cursor_last(c);
	if (rc)
		return rc;
	return step(c, -1);
}

int cow__cursor_next(struct cow__cursor *c)
{
	if (c->depth == 0)
		return COW_ENOTFOUND;
	if (c->mods != c->tree->mods)
		return resync(c, +1);
	return step(c, +1);
}

int cow__cursor_prev(struct cow__cursor *c)
{
	if (c->depth == 0)
		return COW_ENOTFOUND;
	if (c->mods != c->tree->mods)
		return resync(c, -1);
	return step(c, -1);
}

int cow__cursor_get(struct cow__cursor *c, cow_buf *key, cow_buf *val)
{
	if (c->depth == 0)
		return COW_ENOTFOUND;
	if (c->mods != c->tree->mods) {
		/* Re-find the current key; if it was deleted, the cursor has no entry. */
		uint8_t k[COW_BTREE_KEY_MAX];
		size_t klen = c->klen;
		memcpy(k, c->key, klen);
		int rc = cow__cursor_seek(c, k, klen);
		if (rc)
			return rc;
		if (c->klen != klen || memcmp(c->key, k, klen) != 0) {
			c->depth = 0;
			return COW_ENOTFOUND;
		}
	}
	const uint8_t *cell = n_cell(c->path[c->depth - 1].node, (unsigned)c->path[c->depth - 1].idx);
	if (key) {
		key->data = leaf_key(cell);
		key->len = leaf_klen(cell);
	}
	if (!val)
		return 0;
	size_t vlen = leaf_vlen(cell);
	if (leaf_vkind(cell) != V_EXTENT) { /* inline, or a run's descriptor */
		val->data = leaf_val(cell);
		val->len = leaf_size(cell) - 8 - leaf_klen(cell);
		return 0;
	}
	struct cow__bptr p;
	cow__bptr_load(&p, leaf_val(cell));
	const uint8_t *data;
	int rc = cow__bs_read(c->tx->bs, c->tx->read_flags, c->tx->nblocks, &p, vlen, &data, NULL);
	if (rc)
		return rc;
	val->data = data;
	val->len = vlen;
	return 0;
}

int cow__cursor_extent(struct cow__cursor *c, struct cow__bptr *p, size_t *vlen)
{
	if (c->depth == 0)
		return COW_ENOTFOUND;
	const uint8_t *cell = n_cell(c->path[c->depth - 1].node, (unsigned)c->path[c->depth - 1].idx);
	if (leaf_vkind(cell) != V_EXTENT)
		return COW_EINVAL;
	cow__bptr_load(p, leaf_val(cell));
	*vlen = leaf_vlen(cell);
	return 0;
}

/* ---- verify: the checker of check.c, stopping at the first problem ---- */

static int first_problem(void *ctx, uint64_t block, const uint8_t *key, size_t klen,
			 const char *what)
{
	(void)ctx, (void)key, (void)klen;
	COW_CORRUPT(block, what);
	return 1; /* stop */
}

int cow__btree_verify(struct cow__tx *tx, const struct cow__tree *t)
{
	uint64_t nb = tx->nblocks ? tx->nblocks : cow__bs_nblocks(tx->bs);
	struct cow__check ck = {.seen = cow__calloc(nb ? nb : 1, 1),
				.entries = cow__calloc(nb ? nb : 1, sizeof(uint32_t)),
				.nblocks = nb,
				.problem = first_problem};
	int rc = COW_ENOMEM;
	uint64_t problems = 0;
	if (ck.seen && ck.entries)
		rc = cow__btree_check(tx, t, true, &ck, &problems);
	cow__free(ck.seen);
	cow__free(ck.entries);
	if (rc < 0)
		return rc;
	return rc || problems ? COW_ECORRUPT : 0;
}
