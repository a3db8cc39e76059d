/*
 * The copy-on-write B+tree: lookup, insert with splits, delete with merges,
 * finalize (checksums bottom-up at commit), destroy.
 *
 * Writes descend from the root making every node on the path writable
 * (node_cow): a node born in this transaction is changed in its dirty buffer,
 * an older one is copied to a fresh block and the old block freed, and the
 * parent's pointer is updated on the way back up. Children are never newer
 * than their parents, which lets walks skip whole subtrees by birth.
 */
#include <stdlib.h>

#include "base/base.h"
#include "btree/btree.h"
#include "btree/node.h"

/* ---- reading nodes ---- */

/* The checks a node passes before anything reads its cells. */
static int node_check(const uint8_t *n, const struct cow__bptr *p)
{
	if (cow__le32(n) != N_MAGIC || (n_kind(n) != N_LEAF && n_kind(n) != N_BRANCH))
		return COW_CORRUPT(p->addr, "not a tree node");
	if (cow__le64(n + 8) != p->addr || cow__le64(n + 16) != p->birth)
		return COW_CORRUPT(p->addr, "node header does not match its pointer");
	unsigned cnt = n_count(n);
	if (N_HDR + 2 * cnt > n_top(n) || n_top(n) > COW_BLOCK_SIZE ||
	    (n_kind(n) == N_LEAF) != (n_level(n) == 0))
		return COW_CORRUPT(p->addr, "node header out of range");
	for (unsigned i = 0; i < cnt; i++) {
		unsigned off = cow__le16(n + N_HDR + 2 * i);
		if (off < n_top(n) || off + 8 > COW_BLOCK_SIZE)
			return COW_CORRUPT(p->addr, "cell offset out of range");
		const uint8_t *c = n + off;
		size_t klen = n_kind(n) == N_LEAF ? leaf_klen(c) : br_klen(c);
		if (klen > COW_BTREE_KEY_MAX || off + cell_size(n, c) > COW_BLOCK_SIZE)
			return COW_CORRUPT(p->addr, "cell out of range");
	}
	return 0;
}

int cow__node_get(struct cow__tx *tx, const struct cow__bptr *p, const uint8_t **out)
{
	const uint8_t *n;
	bool fresh;
	int rc = cow__bs_read(tx->bs, tx->read_flags | COW_READ_NODE, tx->nblocks, p,
			      COW_BLOCK_SIZE, &n, &fresh);
	if (rc)
		return rc;
	tx->nodes_read++;
	/*
	 * A cached node was checked when it was verified as a node (or built
	 * by this transaction). The cache keeps nodes apart from blocks
	 * verified as anything else, such as a 4096-byte value extent that a
	 * crafted tree points at a node block: those were never checked.
	 */
	if (!fresh) {
		*out = n;
		return 0;
	}
	rc = node_check(n, p);
	if (rc) {
		/*
		 * The checksum matched, so the cache now vouches for the block as
		 * a node: read it once more as a plain block, which replaces that
		 * entry, so the next read checks it again. NEEDSWORK: another
		 * thread reading this block between the two reads trusts it; the
		 * block layer should cache a node only once its caller says so.
		 */
		const uint8_t *plain;
		(void)cow__bs_read(tx->bs, tx->read_flags & ~(unsigned)COW_READ_NODE, tx->nblocks,
				   p, COW_BLOCK_SIZE, &plain, NULL);
		return rc;
	}
	*out = n;
	return 0;
}

/*
 * Index of the first cell whose key is >= @key (leaf), with *exact set; or
 * of the child to descend into (branch: the last cell whose key is <= @key,
 * cell 0 standing for everything below cell 1).
 */
static unsigned search(const uint8_t *n, const void *key, size_t klen, bool *exact)
{
	unsigned lo = 0, hi = n_count(n);
	*exact = false;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		size_t cl;
		const uint8_t *ck = cell_key(n, n_cell(n, mid), &cl);
		int r = key_cmp(ck, cl, key, klen);
		if (r == 0) {
			*exact = true;
			lo = mid;
			break;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (n_kind(n) == N_LEAF)
		return lo;
	if (*exact)
		return lo;
	return lo ? lo - 1 : 0;
}

static int value_of(struct cow__tx *tx, const uint8_t *c, cow_buf *val)
{
	size_t vlen = leaf_vlen(c);
	if (leaf_vkind(c) != V_EXTENT) { /* inline, or a run's descriptor */
		val->data = leaf_val(c);
		val->len = leaf_size(c) - 8 - leaf_klen(c);
		return 0;
	}
	struct cow__bptr p;
	cow__bptr_load(&p, leaf_val(c));
	const uint8_t *data;
	int rc = cow__bs_read(tx->bs, tx->read_flags, tx->nblocks, &p, vlen, &data, NULL);
	if (rc)
		return rc;
	val->data = data;
	val->len = vlen;
	return 0;
}

int cow__btree_get(struct cow__tx *tx, const struct cow__tree *t, const void *key, size_t klen,
		   cow_buf *val)
{
	struct cow__bptr p = t->root;
	for (int depth = 0; p.addr; depth++) {
		const uint8_t *n;
		if (depth >= COW_BTREE_MAXDEPTH)
			return COW_CORRUPT(p.addr, "tree too deep");
		int rc = cow__node_get(tx, &p, &n);
		if (rc)
			return rc;
		bool exact;
		unsigned i = search(n, key, klen, &exact);
		if (n_kind(n) == N_LEAF) {
			if (!exact)
				return COW_ENOTFOUND;
			return value_of(tx, n_cell(n, i), val);
		}
		if (n_count(n) == 0)
			return COW_CORRUPT(p.addr, "empty branch");
		br_child(n_cell(n, i), &p);
	}
	return COW_ENOTFOUND;
}

/* ---- writing nodes ---- */

/* ---- reference counts ---- */

static bool maybe_shared(const struct cow__tree *t, const struct cow__bptr *p)
{
	return p->birth <= t->shared_gen;
}

/* Does some other parent also point to the node *p? */
static int shared(struct cow__tx *tx, const struct cow__tree *t, const struct cow__bptr *p,
		  bool *out)
{
	*out = false;
	if (!maybe_shared(t, p) || !tx->refs)
		return 0;
	int err = 0;
	uint64_t c = cow__ref_get(tx, p->addr, &err);
	*out = c > 1;
	return err;
}

/* Every child of node @n (subtrees, value extents) gains a parent. */
static int inc_children(struct cow__tx *tx, const uint8_t *n)
{
	for (unsigned i = 0; i < n_count(n); i++) {
		const uint8_t *c = n_cell(n, i);
		struct cow__bptr p;
		if (n_kind(n) == N_BRANCH)
			br_child(c, &p);
		else if (leaf_vkind(c) == V_EXTENT || leaf_vkind(c) == V_RUN)
			cow__bptr_load(&p, leaf_val(c)); /* a run's extent pointer comes first */
		else
			continue;
		int rc = cow__ref_inc(tx, p.addr);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * The tree stops pointing to node *p, whose cells were moved into another
 * node of the tree: if it is shared, the children gain that new parent;
 * otherwise the node is simply freed.
 */
static int node_release(struct cow__tx *tx, struct cow__tree *t, const struct cow__bptr *p)
{
	bool sh;
	int rc = shared(tx, t, p, &sh);
	if (rc)
		return rc;
	t->blocks--;
	if (!sh)
		return cow__bs_free(tx->bs, p->addr, 1, p->birth);
	const uint8_t *n;
	rc = cow__node_get(tx, p, &n);
	if (rc == 0)
		rc = inc_children(tx, n);
	if (rc == 0)
		rc = cow__ref_drop(tx, p, 1, true);
	return rc;
}

/* Make the node *p points to writable in this transaction; *p may change. */
static int node_cow(struct cow__tx *tx, struct cow__tree *t, struct cow__bptr *p, uint8_t **out)
{
	bool sh;
	int rc = shared(tx, t, p, &sh);
	if (rc)
		return rc;
	if (p->birth == tx->gen && !sh) {
		uint8_t *b = cow__bs_dirty(tx->bs, p->addr);
		if (!b)
			return COW_CORRUPT(p->addr, "lost dirty node");
		*out = b;
		return 0;
	}
	const uint8_t *old;
	rc = cow__node_get(tx, p, &old);
	if (rc)
		return rc;
	uint64_t addr;
	uint8_t *b = NULL;
	rc = cow__bs_alloc(tx->bs, 1, &addr, &b);
	if (rc)
		return rc;
	memcpy(b, old, COW_BLOCK_SIZE);
	if (sh) { /* the copy is a new parent of every child; the old node loses one */
		rc = inc_children(tx, b);
		if (rc == 0)
			rc = cow__ref_drop(tx, p, 1, true);
	} else {
		rc = cow__bs_free(tx->bs, p->addr, 1, p->birth);
	}
	if (rc) {
		cow__bs_free(tx->bs, addr, 1, tx->gen);
		return rc;
	}
	cow__put64(b + 8, addr);
	cow__put64(b + 16, tx->gen);
	*p = (struct cow__bptr){addr, tx->gen, 0};
	*out = b;
	return 0;
}

static int node_new(struct cow__tx *tx, struct cow__tree *t, int kind, int level,
		    struct cow__bptr *p, uint8_t **out)
{
	uint64_t addr;
	uint8_t *b = NULL;
	int rc = cow__bs_alloc(tx->bs, 1, &addr, &b);
	if (rc)
		return rc;
	t->blocks++;
	cow__put32(b, N_MAGIC);
	b[4] = (uint8_t)kind;
	b[5] = (uint8_t)level;
	cow__put64(b + 8, addr);
	cow__put64(b + 16, tx->gen);
	cow__put16(b + 24, COW_BLOCK_SIZE);
	*p = (struct cow__bptr){addr, tx->gen, 0};
	*out = b;
	return 0;
}

struct cellref {
	const uint8_t *p;
	size_t len;
};

/* Rewrite node @b to hold exactly @cells (which may point into @b). */
static void node_build(uint8_t *b, const struct cellref *cells, unsigned n)
{
	uint8_t tmp[COW_BLOCK_SIZE];
	memcpy(tmp, b, N_HDR);
	unsigned top = COW_BLOCK_SIZE, used = 0;
	for (unsigned i = 0; i < n; i++) {
		top -= (unsigned)cells[i].len;
		memcpy(tmp + top, cells[i].p, cells[i].len);
		cow__put16(tmp + N_HDR + 2 * i, (uint16_t)top);
		used += (unsigned)cells[i].len;
	}
	cow__put16(tmp + 6, (uint16_t)n);
	cow__put16(tmp + 24, (uint16_t)top);
	cow__put16(tmp + 26, (uint16_t)used);
	memset(tmp + N_HDR + 2 * n, 0, top - (N_HDR + 2 * n));
	memcpy(b, tmp, COW_BLOCK_SIZE);
}

static void node_cells(const uint8_t *b, struct cellref *cells)
{
	for (unsigned i = 0; i < n_count(b); i++) {
		cells[i].p = n_cell(b, i);
		cells[i].len = cell_size(b, cells[i].p);
	}
}

/* Insert cell @c at slot @i if it fits (compacting if needed). */
static bool node_insert(uint8_t *b, unsigned i, const uint8_t *c, size_t len)
{
	unsigned cnt = n_count(b);
	if (n_free(b) < len + 2)
		return false;
	if (n_top(b) < N_HDR + 2 * (cnt + 1) + len) {
		struct cellref cells[COW_BLOCK_SIZE / 8];
		node_cells(b, cells);
		node_build(b, cells, cnt);
	}
	unsigned top = n_top(b) - (unsigned)len;
	memcpy(b + top, c, len);
	memmove(b + N_HDR + 2 * (i + 1), b + N_HDR + 2 * i, 2 * (cnt - i));
	cow__put16(b + N_HDR + 2 * i, (uint16_t)top);
	cow__put16(b + 6, (uint16_t)(cnt + 1));
	cow__put16(b + 24, (uint16_t)top);
	cow__put16(b + 26, (uint16_t)(n_used(b) + len));
	return true;
}

static void node_remove(uint8_t *b, unsigned i)
{
	unsigned cnt = n_count(b);
	size_t len = cell_size(b, n_cell(b, i));
	memmove(b + N_HDR + 2 * i, b + N_HDR + 2 * (i + 1), 2 * (cnt - i - 1));
	cow__put16(b + 6, (uint16_t)(cnt - 1));
	cow__put16(b + 26, (uint16_t)(n_used(b) - len));
}

struct split {
	bool happened;
	struct cow__bptr right;
	uint8_t key[COW_BTREE_KEY_MAX];
	size_t klen;
};

/*
 * Node @b overflows with cell @c at slot @i: split it into @b and a new
 * right sibling, balanced by bytes; report the right one in @sp.
 */
static int split_insert(struct cow__tx *tx, struct cow__tree *t, uint8_t *b, unsigned i,
			const uint8_t *c, size_t len, struct split *sp)
{
	uint8_t old[COW_BLOCK_SIZE];
	memcpy(old, b, COW_BLOCK_SIZE);
	unsigned cnt = n_count(old);
	struct cellref cells[COW_BLOCK_SIZE / 8 + 1];
	size_t total = 0;
	for (unsigned k = 0, j = 0; k <= cnt; k++) {
		if (k == i) {
			cells[k] = (struct cellref){c, len};
		} else {
			cells[k].p = n_cell(old, j);
			cells[k].len = cell_size(old, cells[k].p);
			j++;
		}
		total += cells[k].len + 2;
	}
	unsigned m = 0;
	size_t left = 0;
	while (m < cnt && left + cells[m].len + 2 <= total / 2) {
		left += cells[m].len + 2;
		m++;
	}
	if (m == 0) {
		left = cells[0].len + 2;
		m = 1;
	}
	/* Both halves must fit: move the split point if a big cell sits at the edge. */
	while (total - left > N_SPACE && m < cnt) {
		left += cells[m].len + 2;
		m++;
	}
	while (left > N_SPACE && m > 1) {
		m--;
		left -= cells[m].len + 2;
	}
	uint8_t *rb;
	int rc = node_new(tx, t, n_kind(old), n_level(old), &sp->right, &rb);
	if (rc)
		return rc;
	node_build(b, cells, m);
	node_build(rb, cells + m, cnt + 1 - m);
	size_t klen;
	const uint8_t *k = cell_key(rb, n_cell(rb, 0), &klen);
	memcpy(sp->key, k, klen);
	sp->klen = klen;
	sp->happened = true;
	return 0;
}

static size_t make_branch_cell(uint8_t *out, const void *key, size_t klen,
			       const struct cow__bptr *child)
{
	cow__put16(out, (uint16_t)klen);
	cow__bptr_store(out + 2, child);
	memcpy(out + 2 + COW_BPTR_SIZE, key, klen);
	return 2 + COW_BPTR_SIZE + klen;
}

static int free_value(struct cow__tx *tx, struct cow__tree *t, const uint8_t *c)
{
	if (leaf_vkind(c) == V_RUN) {
		struct cow__run r;
		leaf_run(c, &r);
		t->blocks -= (int64_t)r.n;
		return cow__ref_drop(tx, &r.ext, r.ext_blocks, maybe_shared(t, &r.ext));
	}
	if (leaf_vkind(c) != V_EXTENT)
		return 0;
	struct cow__bptr p;
	cow__bptr_load(&p, leaf_val(c));
	uint64_t nblk = (leaf_vlen(c) + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT;
	t->blocks -= (int64_t)nblk;
	return cow__ref_drop(tx, &p, nblk, maybe_shared(t, &p));
}

static int ins(struct cow__tx *tx, struct cow__tree *t, struct cow__bptr *p, const void *key,
	       size_t klen, const uint8_t *cell, size_t clen, bool *added, struct split *sp,
	       int depth)
{
	if (depth >= COW_BTREE_MAXDEPTH)
		return COW_CORRUPT(p->addr, "tree too deep");
	uint8_t *b = NULL; /* node_cow sets it; NULL quiets -O3 -Wmaybe-uninitialized */
	int rc = node_cow(tx, t, p, &b);
	if (rc)
		return rc;
	bool exact;
	unsigned i = search(b, key, klen, &exact);
	if (n_kind(b) == N_LEAF) {
		if (exact) {
			rc = free_value(tx, t, n_cell(b, i));
			if (rc)
				return rc;
			node_remove(b, i);
		} else {
			*added = true;
		}
		if (node_insert(b, i, cell, clen))
			return 0;
		return split_insert(tx, t, b, i, cell, clen, sp);
	}
	if (n_count(b) == 0)
		return COW_CORRUPT(p->addr, "empty branch");
	uint8_t *c = (uint8_t *)n_cell(b, i);
	struct cow__bptr child;
	br_child(c, &child);
	struct split csp = {.happened = false};
	rc = ins(tx, t, &child, key, klen, cell, clen, added, &csp, depth + 1);
	cow__bptr_store(c + 2, &child); /* the child may have moved even on error */
	if (rc || !csp.happened)
		return rc;
	uint8_t nc[2 + COW_BPTR_SIZE + COW_BTREE_KEY_MAX];
	size_t nlen = make_branch_cell(nc, csp.key, csp.klen, &csp.right);
	if (node_insert(b, i + 1, nc, nlen))
		return 0;
	return split_insert(tx, t, b, i + 1, nc, nlen, sp);
}

static int put_cell(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen,
		    const uint8_t *cell, size_t clen);

int cow__run_decode(const cow_buf *desc, struct cow__run *r)
{
	const uint8_t *v = desc->data;
	if (desc->len < COW_RUN_HDR + 8 || (desc->len - COW_RUN_HDR) % 8)
		return COW_CORRUPT(0, "bad run descriptor");
	cow__bptr_load(&r->ext, v);
	r->ext_blocks = cow__le16(v + COW_BPTR_SIZE);
	r->first = cow__le16(v + COW_BPTR_SIZE + 2);
	r->n = (uint32_t)((desc->len - COW_RUN_HDR) / 8);
	r->csums = v + COW_RUN_HDR;
	if (!cow__run_ok(r))
		return COW_CORRUPT(r->ext.addr, "run outside its extent");
	return 0;
}

int cow__btree_put_run(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen,
		       const struct cow__run *r, bool add_ref)
{
	if (klen == 0 || klen > COW_BTREE_KEY_MAX || !cow__run_ok(r))
		return COW_EINVAL;
	uint8_t cell[COW_CELL_MAX];
	size_t clen = 8 + klen + COW_RUN_HDR + 8 * (size_t)r->n;
	if (clen > COW_CELL_MAX)
		return COW_EINVAL;
	cow__put16(cell, (uint16_t)klen);
	cell[2] = V_RUN;
	cell[3] = 0;
	cow__put32(cell + 4, r->n << COW_BLOCK_SHIFT);
	memcpy(cell + 8, key, klen);
	uint8_t *v = cell + 8 + klen;
	struct cow__bptr ep = {r->ext.addr, r->ext.birth, 0};
	cow__bptr_store(v, &ep);
	cow__put16(v + COW_BPTR_SIZE, (uint16_t)r->ext_blocks);
	cow__put16(v + COW_BPTR_SIZE + 2, (uint16_t)r->first);
	cow__put32(v + COW_BPTR_SIZE + 4, 0);
	memcpy(v + COW_RUN_HDR, r->csums, 8 * (size_t)r->n);
	if (add_ref) {
		/* As for a reflinked extent: a young extent may now be shared. */
		int rc = cow__ref_inc(tx, ep.addr);
		if (rc)
			return rc;
		if (t->shared_gen < ep.birth)
			t->shared_gen = ep.birth;
	}
	t->blocks += (int64_t)r->n;
	return put_cell(tx, t, key, klen, cell, clen);
}

int cow__btree_put(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen,
		   const void *val, size_t vlen)
{
	if (klen == 0 || klen > COW_BTREE_KEY_MAX)
		return COW_EINVAL;
	if (vlen > COW_BTREE_VALUE_MAX)
		return COW_ETOOBIG;
	uint8_t cell[COW_CELL_MAX];
	size_t clen;
	uint64_t ext_addr = 0, ext_n = 0;
	cow__put16(cell, (uint16_t)klen);
	cell[3] = 0;
	cow__put32(cell + 4, (uint32_t)vlen);
	memcpy(cell + 8, key, klen);
	if (8 + klen + vlen <= COW_CELL_MAX) {
		cell[2] = V_INLINE;
		memcpy(cell + 8 + klen, val, vlen);
		clen = 8 + klen + vlen;
	} else {
		/*
		 * A large value goes to consecutive blocks (reads get one pointer),
		 * written through at once: it never changes in place.
		 */
		ext_n = (vlen + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT;
		int rc = cow__bs_write_new(tx->bs, ext_n, val, vlen, &ext_addr);
		if (rc)
			return rc;
		struct cow__bptr ep = {ext_addr, tx->gen, cow__csum(val, vlen)};
		t->blocks += (int64_t)ext_n;
		cell[2] = V_EXTENT;
		cow__bptr_store(cell + 8 + klen, &ep);
		clen = 8 + klen + COW_BPTR_SIZE;
	}
	int rc = put_cell(tx, t, key, klen, cell, clen);
	if (rc && ext_addr) {
		cow__bs_free(tx->bs, ext_addr, ext_n, tx->gen);
		t->blocks -= (int64_t)ext_n;
	}
	return rc;
}

/* Insert or replace the leaf cell @cell (of @key), splitting up to the root. */
static int put_cell(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen,
		    const uint8_t *cell, size_t clen)
{
	t->mods++;
	int rc;
	bool added = false;
	if (!t->root.addr) {
		uint8_t *b;
		rc = node_new(tx, t, N_LEAF, 0, &t->root, &b);
		if (rc == 0) {
			node_insert(b, 0, cell, clen);
			t->count++;
		}
		goto out;
	}
	struct split sp = {.happened = false};
	rc = ins(tx, t, &t->root, key, klen, cell, clen, &added, &sp, 0);
	if (rc)
		goto out;
	if (added)
		t->count++;
	if (sp.happened) {
		/* The root split: a new root with the two halves. */
		const uint8_t *left;
		rc = cow__node_get(tx, &t->root, &left);
		if (rc)
			goto out;
		int level = n_level(left) + 1;
		uint8_t *b;
		struct cow__bptr nr;
		rc = node_new(tx, t, N_BRANCH, level, &nr, &b);
		if (rc)
			goto out;
		uint8_t c0[2 + COW_BPTR_SIZE], c1[2 + COW_BPTR_SIZE + COW_BTREE_KEY_MAX];
		size_t l0 = make_branch_cell(c0, "", 0, &t->root);
		size_t l1 = make_branch_cell(c1, sp.key, sp.klen, &sp.right);
		node_insert(b, 0, c0, l0);
		node_insert(b, 1, c1, l1);
		t->root = nr;
	}
out:
	return rc;
}

/* ---- delete ---- */

/* Try to merge child @i of branch @b with a neighbour; the parent shrinks. */
static int merge_child(struct cow__tx *tx, struct cow__tree *t, uint8_t *b, unsigned i)
{
	unsigned cnt = n_count(b);
	if (cnt < 2)
		return 0;
	unsigned l = i + 1 < cnt ? i : i - 1; /* merge children l and l+1 */
	uint8_t *lc = (uint8_t *)n_cell(b, l), *rc_ = (uint8_t *)n_cell(b, l + 1);
	struct cow__bptr lp, rp;
	br_child(lc, &lp);
	br_child(rc_, &rp);
	const uint8_t *rn;
	int rc = cow__node_get(tx, &rp, &rn);
	if (rc)
		return rc;
	const uint8_t *ln;
	rc = cow__node_get(tx, &lp, &ln);
	if (rc)
		return rc;
	if (n_used(ln) + n_used(rn) + 2 * (n_count(ln) + n_count(rn)) > N_SPACE)
		return 0; /* doesn't fit: leave them */
	uint8_t *lw = NULL;
	rc = node_cow(tx, t, &lp, &lw);
	if (rc)
		return rc;
	cow__bptr_store(lc + 2, &lp);
	/* rn may be a dirty buffer about to be freed: copy its cells first. */
	uint8_t rcopy[COW_BLOCK_SIZE];
	memcpy(rcopy, rn, COW_BLOCK_SIZE);
	struct cellref cells[COW_BLOCK_SIZE / 4];
	unsigned ln_n = n_count(lw), rn_n = n_count(rcopy);
	node_cells(lw, cells);
	node_cells(rcopy, cells + ln_n);
	node_build(lw, cells, ln_n + rn_n);
	rc = node_release(tx, t, &rp);
	if (rc)
		return rc;
	node_remove(b, l + 1);
	return 0;
}

/*
 * Remove the cell at @key. Its value's reference is dropped, or with @took
 * handed to the caller: the cell (a run) is copied there and t->blocks
 * forgets its blocks.
 */
static int del(struct cow__tx *tx, struct cow__tree *t, struct cow__bptr *p, const void *key,
	       size_t klen, bool *under, uint8_t *took, int depth)
{
	if (depth >= COW_BTREE_MAXDEPTH)
		return COW_CORRUPT(p->addr, "tree too deep");
	uint8_t *b = NULL;
	int rc = node_cow(tx, t, p, &b);
	if (rc)
		return rc;
	bool exact;
	unsigned i = search(b, key, klen, &exact);
	if (n_kind(b) == N_LEAF) {
		if (!exact)
			return COW_ENOTFOUND;
		const uint8_t *c = n_cell(b, i);
		if (took && leaf_vkind(c) != V_RUN)
			return COW_EINVAL;
		if (took) {
			memcpy(took, c, leaf_size(c));
			t->blocks -= (int64_t)(leaf_vlen(c) >> COW_BLOCK_SHIFT);
		} else if ((rc = free_value(tx, t, c))) {
			return rc;
		}
		node_remove(b, i);
	} else {
		if (n_count(b) == 0)
			return COW_CORRUPT(p->addr, "empty branch");
		uint8_t *c = (uint8_t *)n_cell(b, i);
		struct cow__bptr child;
		br_child(c, &child);
		bool cu = false;
		rc = del(tx, t, &child, key, klen, &cu, took, depth + 1);
		cow__bptr_store(c + 2, &child);
		if (rc)
			return rc;
		if (cu) {
			rc = merge_child(tx, t, b, i);
			if (rc)
				return rc;
		}
	}
	*under = n_used(b) + 2 * n_count(b) < N_UNDER || (n_kind(b) == N_BRANCH && n_count(b) < 2);
	return 0;
}

static int del_key(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen,
		   uint8_t *took);

int cow__btree_del(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen)
{
	return del_key(tx, t, key, klen, NULL);
}

int cow__btree_take_run(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen,
			struct cow__run *r, uint8_t *csums)
{
	uint8_t cell[COW_CELL_MAX];
	int rc = del_key(tx, t, key, klen, cell);
	if (rc)
		return rc;
	leaf_run(cell, r);
	memcpy(csums, r->csums, 8 * (size_t)r->n);
	r->csums = csums;
	return 0;
}

int cow__btree_sole(struct cow__tx *tx, const struct cow__tree *t, const struct cow__bptr *p,
		    bool *sole)
{
	bool sh;
	int rc = shared(tx, t, p, &sh);
	*sole = !sh;
	return rc;
}

static int del_key(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen,
		   uint8_t *took)
{
	if (klen == 0 || klen > COW_BTREE_KEY_MAX)
		return COW_EINVAL;
	/* Look first, so a missing key copies nothing. */
	cow_buf v;
	int rc = cow__btree_get(tx, t, key, klen, &v);
	if (rc)
		return rc;
	t->mods++;
	bool under = false;
	rc = del(tx, t, &t->root, key, klen, &under, took, 0);
	if (rc)
		return rc;
	t->count--;
	/* Shrink the root: a branch with one child, or an empty leaf. */
	for (;;) {
		uint8_t *b = cow__bs_dirty(tx->bs, t->root.addr);
		if (!b)
			return COW_CORRUPT(t->root.addr, "lost dirty root");
		if (n_kind(b) == N_BRANCH && n_count(b) == 1) {
			struct cow__bptr child, old = t->root;
			br_child(n_cell(b, 0), &child);
			rc = node_release(tx, t, &old);
			t->root = child;
			if (rc)
				return rc;
			if (child.birth != tx->gen)
				break;
			continue;
		}
		if (n_kind(b) == N_LEAF && n_count(b) == 0) {
			struct cow__bptr old = t->root;
			rc = node_release(tx, t, &old);
			t->root = (struct cow__bptr){0, 0, 0};
			return rc;
		}
		break;
	}
	return 0;
}

/* ---- finalize, destroy ---- */

static int finalize(struct cow__tx *tx, struct cow__bptr *p, int depth)
{
	if (p->birth != tx->gen)
		return 0;
	if (depth >= COW_BTREE_MAXDEPTH)
		return COW_CORRUPT(p->addr, "tree too deep");
	uint8_t *b = cow__bs_dirty(tx->bs, p->addr);
	if (!b)
		return COW_CORRUPT(p->addr, "lost dirty node");
	if (n_kind(b) == N_BRANCH) {
		for (unsigned i = 0; i < n_count(b); i++) {
			uint8_t *c = (uint8_t *)n_cell(b, i);
			struct cow__bptr child;
			br_child(c, &child);
			if (child.birth != tx->gen)
				continue;
			int rc = finalize(tx, &child, depth + 1);
			if (rc)
				return rc;
			cow__bptr_store(c + 2, &child);
		}
	}
	p->csum = cow__csum(b, COW_BLOCK_SIZE);
	return 0;
}

int cow__btree_finalize(struct cow__tx *tx, struct cow__tree *t)
{
	if (!t->root.addr)
		return 0;
	return finalize(tx, &t->root, 0);
}

/*
 * Dropping one reference to a tree, on the visitor: a shared node only
 * loses a reference and the walk stops there; an unshared one is freed after
 * its children lose theirs (post). With @count set, nothing changes: what
 * would be freed is counted (the version's exclusive blocks).
 */
struct drop {
	struct cow__tx *tx;
	const struct cow__tree *t;
	uint64_t *count;
};

static int drop_pre(void *ctx, const struct cow__bptr *p, uint64_t nblk, bool node, int depth)
{
	(void)depth;
	struct drop *d = ctx;
	bool sh;
	if (!node && !d->count)
		return cow__ref_drop(d->tx, p, nblk, maybe_shared(d->t, p));
	int rc = shared(d->tx, d->t, p, &sh);
	if (rc)
		return rc;
	if (!node) {
		if (!sh)
			*d->count += nblk;
		return 0;
	}
	if (sh)
		return d->count ? 0 : cow__ref_drop(d->tx, p, 1, true);
	return 1; /* unshared: its children go first */
}

static int drop_post(void *ctx, const struct cow__bptr *p, int depth)
{
	(void)depth;
	struct drop *d = ctx;
	if (d->count) {
		*d->count += 1;
		return 0;
	}
	return cow__bs_free(d->tx->bs, p->addr, 1, p->birth);
}

static int drop_tree(struct cow__tx *tx, const struct cow__tree *t, uint64_t *count)
{
	struct drop d = {tx, t, count};
	struct cow__visit v = {.pre = drop_pre, .post = drop_post, .ctx = &d};
	return cow__btree_visit(tx, &t->root, &v);
}

int cow__btree_destroy(struct cow__tx *tx, struct cow__tree *t)
{
	int rc = drop_tree(tx, t, NULL);
	if (rc == 0) {
		t->root = (struct cow__bptr){0, 0, 0};
		t->count = 0;
		t->blocks = 0;
		t->mods++;
	}
	return rc;
}

int cow__btree_exclusive(struct cow__tx *tx, const struct cow__tree *t, uint64_t *blocks)
{
	*blocks = 0;
	return drop_tree(tx, t, blocks);
}

/* ---- the reference-count tree: block address (big-endian) -> count >= 2 ---- */

/*
 * Delayed reference counts: changes made during a transaction accumulate
 * in memory (copying one shared leaf adds one to each of its ~100 children)
 * and reach the refs tree at commit, sorted, in one pass.
 */
struct cow__refdelta {
	struct cow__u64map map; /* block address -> int64_t change to its count */
};

static int64_t rd_get(const struct cow__tx *tx, uint64_t addr)
{
	const struct cow__refdelta *rd = tx->rd;
	const int64_t *d = rd ? cow__u64map_get(&rd->map, addr) : NULL;
	return d ? *d : 0;
}

static int rd_add(struct cow__tx *tx, uint64_t addr, int64_t d)
{
	struct cow__refdelta *rd = tx->rd;
	if (!rd) {
		rd = tx->rd = cow__malloc(sizeof(*rd));
		if (!rd)
			return COW_ENOMEM;
		cow__u64map_init(&rd->map, sizeof(int64_t));
	}
	void *v;
	int rc = cow__u64map_put(&rd->map, addr, &v);
	if (rc < 0)
		return rc;
	*(int64_t *)v += d;
	return 0;
}

static uint64_t tree_count(struct cow__tx *tx, uint64_t addr, int *err)
{
	if (!tx->refs || !tx->refs->root.addr)
		return 1;
	uint8_t k[8];
	cow__put_be64(k, addr);
	cow_buf v;
	int rc = cow__btree_get(tx, tx->refs, k, 8, &v);
	if (rc == COW_ENOTFOUND)
		return 1;
	if (rc == 0 && v.len != 8)
		rc = COW_CORRUPT(addr, "bad reference count record");
	if (rc) {
		*err = rc;
		return 1;
	}
	return cow__le64(v.data);
}

uint64_t cow__ref_get(struct cow__tx *tx, uint64_t addr, int *err)
{
	int64_t c = (int64_t)tree_count(tx, addr, err) + rd_get(tx, addr);
	if (c < 1 && !*err)
		*err = COW_CORRUPT(addr, "reference count below one");
	return c < 1 ? 1 : (uint64_t)c;
}

static int ref_set(struct cow__tx *tx, uint64_t addr, uint64_t count)
{
	uint8_t k[8], v[8];
	cow__put_be64(k, addr);
	if (count <= 1) {
		int rc = cow__btree_del(tx, tx->refs, k, 8);
		return rc == COW_ENOTFOUND ? 0 : rc;
	}
	cow__put64(v, count);
	return cow__btree_put(tx, tx->refs, k, 8, v, 8);
}

int cow__ref_inc(struct cow__tx *tx, uint64_t addr)
{
	if (!tx->refs)
		return COW_EINTERNAL;
	return rd_add(tx, addr, +1);
}

int cow__ref_drop(struct cow__tx *tx, const struct cow__bptr *p, uint64_t nblk, bool maybe_sh)
{
	if (maybe_sh && tx->refs) {
		int err = 0;
		uint64_t c = cow__ref_get(tx, p->addr, &err);
		if (err)
			return err;
		if (c > 1)
			return rd_add(tx, p->addr, -1);
	}
	return cow__bs_free(tx->bs, p->addr, nblk, p->birth);
}

int cow__ref_move(struct cow__tx *tx, uint64_t from, uint64_t to)
{
	int err = 0;
	uint64_t c = cow__ref_get(tx, from, &err);
	if (err || c < 2)
		return err;
	int rc = rd_add(tx, from, -(int64_t)(c - 1));
	return rc ? rc : rd_add(tx, to, (int64_t)(c - 1));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int cow__refs_apply(struct cow__tx *tx)
{
	struct cow__refdelta *rd = tx->rd;
	if (!rd || !cow__u64map_count(&rd->map))
		return 0;
	uint64_t *addrs = cow__malloc(cow__u64map_count(&rd->map) * sizeof(uint64_t));
	if (!addrs)
		return COW_ENOMEM;
	size_t n = 0, pos = 0;
	uint64_t addr;
	void *v;
	while (cow__u64map_next(&rd->map, &pos, &addr, &v))
		if (*(const int64_t *)v)
			addrs[n++] = addr;
	qsort(addrs, n, sizeof(uint64_t), cmp_u64); /* the refs tree's order */
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int err = 0;
		int64_t c = (int64_t)tree_count(tx, addrs[i], &err) + rd_get(tx, addrs[i]);
		if (err)
			rc = err;
		else if (c < 1)
			rc = COW_CORRUPT(addrs[i], "reference count below one");
		else
			rc = ref_set(tx, addrs[i], (uint64_t)c);
	}
	cow__free(addrs);
	if (rc == 0)
		cow__refs_discard(tx);
	return rc;
}

void cow__refs_discard(struct cow__tx *tx)
{
	if (!tx->rd)
		return;
	cow__u64map_release(&tx->rd->map);
	cow__free(tx->rd);
	tx->rd = NULL;
}

int cow__btree_depth(struct cow__tx *tx, const struct cow__tree *t)
{
	if (!t->root.addr)
		return 0;
	const uint8_t *n;
	if (cow__node_get(tx, &t->root, &n))
		return -1;
	return n_level(n) + 1;
}
