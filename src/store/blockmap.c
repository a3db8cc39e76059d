/*
 * Block maps: a sparse array of blocks as runs in a tree, under a key
 * prefix (store.h; FORMAT.md sections 4 and 10). Volumes and files are
 * both one.
 */
#include "base/base.h"
#include "cow/fs.h"
#include "store/store.h"

void cow__bmap_init(struct cow__bmap *m, struct cow__tx *tx, struct cow__tree *t, const void *pre,
		    size_t plen, uint64_t limit)
{
	*m = (struct cow__bmap){.tx = tx, .t = t, .plen = plen, .limit = limit};
	if (plen)
		memcpy(m->pre, pre, plen);
}

void cow__fs_bmap(struct cow__bmap *m, struct cow__tx *tx, struct cow__tree *t, uint64_t ino)
{
	uint8_t pre[9];
	cow__put_be64(pre, ino);
	pre[8] = COW__FS_T_DATA;
	cow__bmap_init(m, tx, t, pre, 9, COW_FS_SIZE_MAX >> COW_BLOCK_SHIFT);
}

bool cow__bmap_key(int type, const void *key, size_t klen, size_t *plen)
{
	const uint8_t *k = key;
	*plen = type == OBJ_VOLUME ? 0 : 9;
	return type == OBJ_VOLUME || (type == OBJ_FS && klen == 17 && k[8] == COW__FS_T_DATA);
}

static size_t key_of(const struct cow__bmap *m, uint8_t *k, uint64_t b)
{
	memcpy(k, m->pre, m->plen);
	cow__put_be64(k + m->plen, b);
	return m->plen + 8;
}

int cow__bmap_cell(const struct cow__bmap *m, struct cow__cursor *c, uint64_t floor,
		   struct cow__vcell *vc)
{
	cow_buf kb, vb;
	int rc = cow__cursor_get(c, &kb, NULL);
	if (rc)
		return rc;
	if (kb.len < m->plen || memcmp(kb.data, m->pre, m->plen) != 0)
		return COW_ENOTFOUND; /* another map's, or another record's */
	if (kb.len != m->plen + 8)
		return COW_CORRUPT(0, "bad block map key");
	vc->key = cow__be64((const uint8_t *)kb.data + m->plen);
	size_t vlen;
	vc->one = cow__cursor_extent(c, &vc->r.ext, &vlen) == 0;
	if (vc->one) { /* format 2: one block, its checksum in the pointer */
		if (vlen != COW_BLOCK_SIZE)
			return COW_CORRUPT(vc->r.ext.addr, "bad block map entry");
		cow__put64(vc->csum1, vc->r.ext.csum);
		vc->r = (struct cow__run){vc->r.ext, 1, 0, 1, vc->csum1};
	} else {
		/* A run's value is its descriptor, read from the leaf: nothing to verify yet. */
		if ((rc = cow__cursor_get(c, NULL, &vb)))
			return rc;
		if ((rc = cow__run_decode(&vb, &vc->r)))
			return rc;
	}
	if (vc->key < floor || vc->key + vc->r.n < vc->key || vc->key + vc->r.n > m->limit)
		return COW_CORRUPT(0, "block map entries overlap or out of order");
	return 0;
}

int cow__bmap_seek(const struct cow__bmap *m, struct cow__cursor *c, uint64_t b)
{
	uint8_t k[COW_BMAP_PRE_MAX + 8];
	size_t klen = key_of(m, k, b);
	int rc = cow__cursor_seek(c, k, klen);
	struct cow__vcell vc;
	if (rc == 0 && (rc = cow__bmap_cell(m, c, 0, &vc)) == 0 && vc.key == b)
		return 0;
	if (rc != 0 && rc != COW_ENOTFOUND)
		return rc;
	/* The entry before may reach @b. */
	int prc = rc == COW_ENOTFOUND && cow__cursor_get(c, NULL, NULL) == COW_ENOTFOUND
			  ? cow__cursor_last(c)
			  : cow__cursor_prev(c);
	if (prc == 0 && (prc = cow__bmap_cell(m, c, 0, &vc)) == 0 && vc.key + vc.r.n > b)
		return 0;
	if (prc != 0 && prc != COW_ENOTFOUND)
		return prc;
	return cow__cursor_seek(c, k, klen);
}

int cow__bmap_next(const struct cow__bmap *m, uint64_t b, struct cow__vcell *vc)
{
	struct cow__cursor c;
	cow__cursor_init(&c, m->tx, m->t);
	int rc = cow__bmap_seek(m, &c, b);
	return rc ? rc : cow__bmap_cell(m, &c, 0, vc);
}

int cow__vmap_start(struct cow__vmap *v, const struct cow__bmap *m, uint64_t b0)
{
	v->m = m;
	cow__cursor_init(&v->c, m->tx, m->t);
	v->floor = 0;
	v->have = false;
	int rc = cow__bmap_seek(m, &v->c, b0);
	if (rc == 0 && (rc = cow__bmap_cell(m, &v->c, 0, &v->vc)) == 0)
		v->have = true;
	return rc == COW_ENOTFOUND ? 0 : rc;
}

int cow__vmap_get(struct cow__vmap *v, uint64_t b, struct cow__bptr *p)
{
	while (v->have && b >= v->vc.key + v->vc.r.n) {
		v->floor = v->vc.key + v->vc.r.n;
		int rc = cow__cursor_next(&v->c);
		if (rc == 0)
			rc = cow__bmap_cell(v->m, &v->c, v->floor, &v->vc);
		if (rc == COW_ENOTFOUND)
			v->have = false;
		else if (rc)
			return rc;
	}
	if (v->have && b >= v->vc.key)
		*p = cow__run_block(&v->vc.r, (uint32_t)(b - v->vc.key));
	else
		*p = (struct cow__bptr){0, 0, 0};
	return 0;
}

int cow__bmap_block(struct cow__tx *tx, const struct cow__run *r, uint32_t i, const uint8_t **d)
{
	struct cow__bptr p = cow__run_block(r, i);
	return cow__bs_read(tx->bs, tx->read_flags, tx->nblocks, &p, COW_BLOCK_SIZE, d, NULL);
}

int cow__bmap_read(const struct cow__bmap *m, void *buf, size_t len, uint64_t off)
{
	if (len == 0)
		return 0;
	uint8_t *out = buf;
	uint64_t first = off >> COW_BLOCK_SHIFT, last = (off + len - 1) >> COW_BLOCK_SHIFT;
	memset(out, 0, len); /* holes */
	struct cow__cursor c;
	cow__cursor_init(&c, m->tx, m->t);
	struct cow__vcell vc;
	uint64_t floor = 0;
	int rc;
	for (rc = cow__bmap_seek(m, &c, first);
	     rc == 0 && (rc = cow__bmap_cell(m, &c, floor, &vc)) == 0; rc = cow__cursor_next(&c)) {
		if (vc.key > last)
			break;
		uint64_t a = COW_MAX(vc.key, first), z = COW_MIN(vc.key + vc.r.n - 1, last);
		for (uint64_t b = a; b <= z && rc == 0; b++) {
			const uint8_t *d;
			if ((rc = cow__bmap_block(m->tx, &vc.r, (uint32_t)(b - vc.key), &d)))
				break;
			uint64_t bstart = b << COW_BLOCK_SHIFT;
			uint64_t from = COW_MAX(bstart, off),
				 to = COW_MIN(bstart + COW_BLOCK_SIZE, off + len);
			memcpy(out + (from - off), d + (from - bstart), to - from);
		}
		if (rc)
			break;
		floor = vc.key + vc.r.n;
	}
	return rc == COW_ENOTFOUND ? 0 : rc;
}

int cow__bmap_value_blocks(const cow_buf *val, uint64_t *n)
{
	if (val->len == COW_BLOCK_SIZE) { /* a one-block extent's data */
		*n = 1;
		return 0;
	}
	struct cow__run r;
	int rc = cow__run_decode(val, &r);
	*n = rc ? 0 : r.n;
	return rc;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Free blocks [a, z) of extent @ext (no cell reaches them any more). */
static int free_part(struct cow__tx *tx, const struct cow__bptr *ext, uint32_t a, uint32_t z)
{
	return a < z ? cow__bs_free(tx->bs, ext->addr + a, z - a, ext->birth) : 0;
}

/*
 * Cut blocks [lo, hi) out of the entry @vc, which overlaps them and has
 * blocks outside them: what is left of it stays, as its own extents when
 * nothing else points to its extent, as slices of it otherwise.
 */
static int cut(struct cow__bmap *m, const struct cow__vcell *vc, uint64_t lo, uint64_t hi)
{
	struct cow__tx *tx = m->tx;
	uint8_t k[COW_BMAP_PRE_MAX + 8], csums[8 * COW_RUN_MAX];
	size_t klen = key_of(m, k, vc->key);
	struct cow__run r;
	/* Taking the cell makes its leaf writable first: a shared leaf's extents gain a parent. */
	int rc = cow__btree_take_run(tx, m->t, k, klen, &r, csums);
	if (rc)
		return rc;
	bool sole;
	if ((rc = cow__btree_sole(tx, m->t, &r.ext, &sole)))
		return rc;
	uint64_t end = vc->key + r.n;
	uint32_t nl = lo > vc->key ? (uint32_t)(lo - vc->key) : 0; /* blocks kept on the left */
	uint32_t nr = end > hi ? (uint32_t)(end - hi) : 0;	   /* and on the right */
	m->mapped -= (int64_t)(r.n - nl - nr);
	struct cow__run left = r, right = r;
	left.n = nl;
	right.first = r.first + r.n - nr;
	right.n = nr;
	right.csums = r.csums + 8 * (r.n - nr);
	if (sole) { /* each piece becomes an extent; the rest of the extent is freed */
		rc = free_part(tx, &r.ext, 0, nl ? r.first : r.first + r.n - nr);
		if (rc == 0 && nl && nr)
			rc = free_part(tx, &r.ext, r.first + nl, right.first);
		if (rc == 0)
			rc = free_part(tx, &r.ext, nr ? r.first + r.n : r.first + nl, r.ext_blocks);
		left.ext.addr += r.first;
		left.first = 0;
		left.ext_blocks = nl;
		right.ext.addr += right.first;
		right.first = 0;
		right.ext_blocks = nr;
	}
	if (rc == 0 && nl)
		rc = cow__btree_put_run(tx, m->t, k, klen, &left, false);
	if (rc == 0 && nr) {
		klen = key_of(m, k, hi);
		/* A slice beside the left one is a second pointer to the extent. */
		rc = cow__btree_put_run(tx, m->t, k, klen, &right, !sole && nl);
	}
	return rc;
}

int cow__bmap_carve(struct cow__bmap *m, uint64_t lo, uint64_t hi)
{
	struct cow__cursor c;
	cow__cursor_init(&c, m->tx, m->t);
	int rc;
	struct cow__vcell vc;
	while (lo < hi && (rc = cow__bmap_seek(m, &c, lo)) == 0 &&
	       (rc = cow__bmap_cell(m, &c, 0, &vc)) == 0 && vc.key < hi) {
		if (vc.one || (vc.key >= lo && vc.key + vc.r.n <= hi)) {
			uint8_t k[COW_BMAP_PRE_MAX + 8];
			rc = cow__btree_del(m->tx, m->t, k, key_of(m, k, vc.key));
			m->mapped -= (int64_t)vc.r.n;
		} else {
			rc = cut(m, &vc, lo, hi);
		}
		if (rc)
			return rc;
		if (vc.key + vc.r.n >= hi)
			break;
		lo = vc.key + vc.r.n;
	}
	return lo >= hi || rc == COW_ENOTFOUND ? 0 : rc;
}

/*
 * Blocks [b, b + k) were just written at @addr: if the run ending at @b is
 * an extent of this transaction, whole, nobody else's, ending at @addr and
 * with room, it grows over them (*@grew) instead of a new run beginning.
 * Small sequential writes (an append of 8 KiB at a time, a guest's 4 KiB
 * writes) so make runs of 64 blocks, not of their own size.
 */
static int grow(struct cow__bmap *m, uint64_t b, uint64_t addr, uint32_t k, const uint8_t *csums,
		bool *grew)
{
	struct cow__vcell pv;
	*grew = false;
	if (b == 0 || k >= COW_RUN_MAX)
		return 0;
	int rc = cow__bmap_next(m, b - 1, &pv);
	if (rc == COW_ENOTFOUND)
		return 0;
	const struct cow__run *p = &pv.r;
	if (rc || pv.one || pv.key + p->n != b || p->ext.birth != m->tx->gen || p->first ||
	    p->n != p->ext_blocks || p->ext.addr + p->n != addr || p->n + k > COW_RUN_MAX)
		return rc;
	uint8_t key[COW_BMAP_PRE_MAX + 8], sums[8 * COW_RUN_MAX];
	size_t klen = key_of(m, key, pv.key);
	struct cow__run r;
	/* Taken first, as in cut(): a shared leaf's extents gain a parent as it is copied. */
	if ((rc = cow__btree_take_run(m->tx, m->t, key, klen, &r, sums)))
		return rc;
	bool sole;
	rc = cow__btree_sole(m->tx, m->t, &r.ext, &sole);
	if (rc == 0 && sole) {
		memcpy(sums + 8 * (size_t)r.n, csums, 8 * (size_t)k);
		r.n += k;
		r.ext_blocks += k;
		*grew = true;
	}
	r.csums = sums;
	int prc = cow__btree_put_run(m->tx, m->t, key, klen, &r, false); /* grown, or as it was */
	return rc ? rc : prc;
}

/* Map blocks [b, b + n) to new extents holding @data (whole blocks); zero blocks stay holes. */
static int map_new(struct cow__bmap *m, uint64_t b, uint64_t n, const uint8_t *data)
{
	struct cow__tx *tx = m->tx;
	uint8_t csums[8 * COW_RUN_MAX];
	for (uint64_t i = 0; i < n;) {
		const uint8_t *d = data + (i << COW_BLOCK_SHIFT);
		if (all_zero(d, COW_BLOCK_SIZE)) {
			i++;
			continue;
		}
		uint32_t k = 0;
		while (k < COW_RUN_MAX && i + k < n &&
		       (k == 0 ||
			!all_zero(d + ((uint64_t)k << COW_BLOCK_SHIFT), COW_BLOCK_SIZE))) {
			cow__put64(csums + 8 * k,
				   cow__csum(d + ((uint64_t)k << COW_BLOCK_SHIFT), COW_BLOCK_SIZE));
			k++;
		}
		uint64_t addr;
		int rc = cow__bs_write_new(tx->bs, k, d, (size_t)k << COW_BLOCK_SHIFT, &addr);
		if (rc)
			return rc;
		bool grew = false;
		if ((rc = grow(m, b + i, addr, k, csums, &grew)) == 0 && !grew) {
			struct cow__run r = {{addr, tx->gen, 0}, k, 0, k, csums};
			uint8_t key[COW_BMAP_PRE_MAX + 8];
			rc = cow__btree_put_run(tx, m->t, key, key_of(m, key, b + i), &r, false);
		}
		if (rc) {
			cow__bs_free(tx->bs, addr, k, tx->gen);
			return rc;
		}
		m->mapped += k;
		i += k;
	}
	return 0;
}

/* Set whole blocks [b, b + n) to @data. */
static int put_blocks(struct cow__bmap *m, uint64_t b, uint64_t n, const uint8_t *data)
{
	int rc = cow__bmap_carve(m, b, b + n);
	return rc ? rc : map_new(m, b, n, data);
}

int cow__bmap_write(struct cow__bmap *m, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *in = buf;
	uint8_t tmp[COW_BLOCK_SIZE];
	int rc = 0;
	while (len > 0 && rc == 0) {
		uint64_t b = off >> COW_BLOCK_SHIFT, inb = off & (COW_BLOCK_SIZE - 1);
		size_t n;
		if (inb == 0 && len >= COW_BLOCK_SIZE) { /* whole blocks, up to a run's worth */
			n = COW_MIN(len, (size_t)COW_RUN_MAX << COW_BLOCK_SHIFT) &
			    ~(size_t)(COW_BLOCK_SIZE - 1);
			rc = put_blocks(m, b, n >> COW_BLOCK_SHIFT, in);
		} else { /* a partial block: read, modify, write this block only */
			n = COW_MIN(len, (size_t)(COW_BLOCK_SIZE - inb));
			rc = cow__bmap_read(m, tmp, sizeof(tmp), b << COW_BLOCK_SHIFT);
			if (rc == 0) {
				memcpy(tmp + inb, in, n);
				rc = put_blocks(m, b, 1, tmp);
			}
		}
		in += n;
		off += n;
		len -= n;
	}
	return rc;
}

int cow__bmap_zero(struct cow__bmap *m, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	/* Partial blocks at either end are zeroed by writing; whole ones dropped. */
	uint64_t end = off + len;
	uint64_t a = (off + COW_BLOCK_SIZE - 1) & ~(uint64_t)(COW_BLOCK_SIZE - 1);
	uint64_t z = end & ~(uint64_t)(COW_BLOCK_SIZE - 1);
	static const uint8_t zeros[COW_BLOCK_SIZE];
	if (a > z) /* within one block */
		return cow__bmap_write(m, zeros, (size_t)len, off);
	int rc = 0;
	if (off < a && (rc = cow__bmap_write(m, zeros, (size_t)(a - off), off)))
		return rc;
	if (z < end && (rc = cow__bmap_write(m, zeros, (size_t)(end - z), z)))
		return rc;
	return z > a ? cow__bmap_carve(m, a >> COW_BLOCK_SHIFT, z >> COW_BLOCK_SHIFT) : 0;
}

int cow__bmap_share(struct cow__bmap *m, uint64_t b, const struct cow__bmap *src, uint64_t sb,
		    uint64_t n)
{
	int rc = cow__bmap_carve(m, b, b + n);
	uint8_t csums[8 * COW_RUN_MAX], k[COW_BMAP_PRE_MAX + 8];
	/* Each put may move the source's cells: look each run up again. */
	for (uint64_t at = sb; rc == 0 && at < sb + n;) {
		struct cow__vcell vc;
		if ((rc = cow__bmap_next(src, at, &vc)) || vc.key >= sb + n)
			break;
		uint64_t a = COW_MAX(vc.key, at), z = COW_MIN(vc.key + vc.r.n, sb + n);
		struct cow__run r = vc.r;
		r.first += (uint32_t)(a - vc.key);
		r.n = (uint32_t)(z - a);
		memcpy(csums, vc.r.csums + 8 * (a - vc.key), 8 * (size_t)r.n);
		r.csums = csums;
		rc = cow__btree_put_run(m->tx, m->t, k, key_of(m, k, b + (a - sb)), &r, true);
		if (rc == 0)
			m->mapped += r.n;
		at = z;
	}
	return rc == COW_ENOTFOUND ? 0 : rc;
}
