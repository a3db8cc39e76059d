/*
 * Volumes: sparse byte arrays. The block map is the same B+tree as a map's:
 * key = index of a run's first block (8 bytes, big-endian, so keys sort by
 * offset), value = a run of up to COW_RUN_MAX blocks in one physical extent,
 * with a checksum per block (FORMAT.md section 4); stores of format 2 also
 * hold one-block extents, read as runs of one. Runs never overlap. A block
 * no run covers is a hole and reads as zeros; writing whole blocks of zeros
 * punches them.
 *
 * A write first carves its range out of the runs it overlaps: a run cut at
 * either end keeps its pieces. If no other pointer reaches its extent, the
 * pieces become extents of their own and the blocks cut out are freed; if
 * one does (a snapshot, a clone), the pieces are slices of the same extent,
 * which stays whole until its last slice goes.
 */
#include "base/base.h"
#include "store/store.h"

#define VOL_MAX (1ull << 60)

struct cow_vol {
	struct cow_map m;
};

static cow_vol *as_vol(cow_map *m)
{
	return (cow_vol *)(void *)m;
}

int cow_vol_create(cow_txn *t, const char *name, uint64_t size)
{
	if (size > VOL_MAX)
		return COW_EINVAL;
	return cow__obj_create(t, name, OBJ_VOLUME, size);
}

int cow_vol_open(cow_txn *t, const char *name, cow_vol **out)
{
	cow_map *m;
	int rc = cow__obj_open(t, name, OBJ_VOLUME, &m);
	if (rc == 0)
		*out = as_vol(m);
	return rc;
}

uint64_t cow_vol_size(const cow_vol *v)
{
	return v && !v->m.dropped ? v->m.rec.count : 0;
}

static int vol_check(cow_vol *v, bool write)
{
	if (!v)
		return COW_EINVAL;
	int rc = cow__txn_check(v->m.txn, false);
	if (rc)
		return rc;
	if (v->m.renewal != v->m.txn->renewals)
		return COW_EINVAL; /* opened before the transaction was reset */
	if (v->m.dropped)
		return COW_ENOTFOUND;
	if (write && v->m.readonly)
		return COW_EREADONLY;
	return 0;
}

/*
 * The entry under @c, checked: a bad key, a malformed value, a run that
 * starts before @floor (the end of the entry before it: entries must not
 * overlap) or ends past 2^64 is COW_ECORRUPT.
 */
int cow__vol_cell(struct cow__cursor *c, uint64_t floor, struct cow__vcell *vc)
{
	cow_buf kb, vb;
	int rc = cow__cursor_get(c, &kb, NULL);
	if (rc)
		return rc;
	if (kb.len != 8)
		return COW_CORRUPT(0, "bad volume block map key");
	vc->key = cow__be64(kb.data);
	size_t vlen;
	vc->one = cow__cursor_extent(c, &vc->r.ext, &vlen) == 0;
	if (vc->one) { /* format 2: one block, its checksum in the pointer */
		if (vlen != COW_BLOCK_SIZE)
			return COW_CORRUPT(vc->r.ext.addr, "bad volume block map entry");
		cow__put64(vc->csum1, vc->r.ext.csum);
		vc->r = (struct cow__run){vc->r.ext, 1, 0, 1, vc->csum1};
	} else {
		/* A run's value is its descriptor, read from the leaf: nothing to verify yet. */
		if ((rc = cow__cursor_get(c, NULL, &vb)))
			return rc;
		if ((rc = cow__run_decode(&vb, &vc->r)))
			return rc;
	}
	if (vc->key < floor || vc->key + vc->r.n < vc->key ||
	    vc->key + vc->r.n > (VOL_MAX >> COW_BLOCK_SHIFT) + 1)
		return COW_CORRUPT(0, "volume block map entries overlap or out of order");
	return 0;
}

/*
 * Position @c at the first entry that ends after block @b (an entry covering
 * @b, or the next one): COW_ENOTFOUND if none.
 */
int cow__vol_seek(struct cow__cursor *c, uint64_t b)
{
	uint8_t k[8];
	cow__put_be64(k, b);
	int rc = cow__cursor_seek(c, k, 8);
	struct cow__vcell vc;
	if (rc == 0 && (rc = cow__vol_cell(c, 0, &vc)) == 0 && vc.key == b)
		return 0;
	if (rc != 0 && rc != COW_ENOTFOUND)
		return rc;
	/* The entry before may reach @b. */
	int prc = rc == COW_ENOTFOUND ? cow__cursor_last(c) : cow__cursor_prev(c);
	if (prc == 0 && (prc = cow__vol_cell(c, 0, &vc)) == 0 && vc.key + vc.r.n > b)
		return 0;
	if (prc != 0 && prc != COW_ENOTFOUND)
		return prc;
	return cow__cursor_seek(c, k, 8);
}

int cow__vmap_start(struct cow__vmap *m, struct cow__tx *tx, struct cow__tree *t, uint64_t b0)
{
	cow__cursor_init(&m->c, tx, t);
	m->floor = 0;
	m->have = false;
	int rc = cow__vol_seek(&m->c, b0);
	if (rc == 0 && (rc = cow__vol_cell(&m->c, 0, &m->vc)) == 0)
		m->have = true;
	return rc == COW_ENOTFOUND ? 0 : rc;
}

int cow__vmap_get(struct cow__vmap *m, uint64_t b, struct cow__bptr *p)
{
	while (m->have && b >= m->vc.key + m->vc.r.n) {
		m->floor = m->vc.key + m->vc.r.n;
		int rc = cow__cursor_next(&m->c);
		if (rc == 0)
			rc = cow__vol_cell(&m->c, m->floor, &m->vc);
		if (rc == COW_ENOTFOUND)
			m->have = false;
		else if (rc)
			return rc;
	}
	if (m->have && b >= m->vc.key)
		*p = cow__run_block(&m->vc.r, (uint32_t)(b - m->vc.key));
	else
		*p = (struct cow__bptr){0, 0, 0};
	return 0;
}

int cow__vol_block(struct cow__tx *tx, const struct cow__run *r, uint32_t i, const uint8_t **d)
{
	struct cow__bptr p = cow__run_block(r, i);
	return cow__bs_read(tx->bs, tx->read_flags, tx->nblocks, &p, COW_BLOCK_SIZE, d, NULL);
}

int cow_vol_pread(cow_vol *v, void *buf, size_t len, uint64_t off)
{
	int rc = vol_check(v, false);
	if (rc)
		return rc;
	if (off > v->m.rec.count || len > v->m.rec.count - off)
		return COW_ERANGE;
	if (len == 0)
		return 0;
	uint8_t *out = buf;
	uint64_t first = off >> COW_BLOCK_SHIFT, last = (off + len - 1) >> COW_BLOCK_SHIFT;
	memset(out, 0, len); /* holes */
	struct cow__tx *tx = &v->m.txn->tx;
	struct cow__cursor c;
	cow__cursor_init(&c, tx, &v->m.tree);
	struct cow__vcell vc;
	uint64_t floor = 0;
	for (rc = cow__vol_seek(&c, first); rc == 0 && (rc = cow__vol_cell(&c, floor, &vc)) == 0;
	     rc = cow__cursor_next(&c)) {
		if (vc.key > last)
			break;
		uint64_t a = COW_MAX(vc.key, first), z = COW_MIN(vc.key + vc.r.n - 1, last);
		for (uint64_t b = a; b <= z && rc == 0; b++) {
			const uint8_t *d;
			if ((rc = cow__vol_block(tx, &vc.r, (uint32_t)(b - vc.key), &d)))
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

int cow__vol_value_blocks(const cow_buf *val, uint64_t *n)
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
static int cut(cow_vol *v, const struct cow__vcell *vc, uint64_t lo, uint64_t hi)
{
	struct cow__tx *tx = &v->m.txn->tx;
	struct cow__tree *t = &v->m.tree;
	uint8_t k[8], csums[8 * COW_RUN_MAX];
	cow__put_be64(k, vc->key);
	struct cow__run r;
	/* Taking the cell makes its leaf writable first: a shared leaf's extents gain a parent. */
	int rc = cow__btree_take_run(tx, t, k, 8, &r, csums);
	if (rc)
		return rc;
	bool sole;
	if ((rc = cow__btree_sole(tx, t, &r.ext, &sole)))
		return rc;
	uint64_t end = vc->key + r.n;
	uint32_t nl = lo > vc->key ? (uint32_t)(lo - vc->key) : 0; /* blocks kept on the left */
	uint32_t nr = end > hi ? (uint32_t)(end - hi) : 0;	   /* and on the right */
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
		rc = cow__btree_put_run(tx, t, k, 8, &left, false);
	if (rc == 0 && nr) {
		cow__put_be64(k, hi);
		/* A slice beside the left one is a second pointer to the extent. */
		rc = cow__btree_put_run(tx, t, k, 8, &right, !sole && nl);
	}
	return rc;
}

/* Unmap blocks [lo, hi): holes. */
static int carve(cow_vol *v, uint64_t lo, uint64_t hi)
{
	struct cow__tx *tx = &v->m.txn->tx;
	struct cow__cursor c;
	cow__cursor_init(&c, tx, &v->m.tree);
	int rc;
	struct cow__vcell vc;
	while ((rc = cow__vol_seek(&c, lo)) == 0 && (rc = cow__vol_cell(&c, 0, &vc)) == 0 &&
	       vc.key < hi) {
		if (vc.one || (vc.key >= lo && vc.key + vc.r.n <= hi)) {
			uint8_t k[8];
			cow__put_be64(k, vc.key);
			rc = cow__btree_del(tx, &v->m.tree, k, 8);
		} else {
			rc = cut(v, &vc, lo, hi);
		}
		if (rc)
			return rc;
		if (vc.key + vc.r.n >= hi)
			break;
		lo = vc.key + vc.r.n;
	}
	return rc == COW_ENOTFOUND ? 0 : rc;
}

/* Map blocks [b, b + n) to new extents holding @data (whole blocks); zero blocks stay holes. */
static int map_new(cow_vol *v, uint64_t b, uint64_t n, const uint8_t *data)
{
	struct cow__tx *tx = &v->m.txn->tx;
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
		struct cow__run r = {{addr, tx->gen, 0}, k, 0, k, csums};
		uint8_t key[8];
		cow__put_be64(key, b + i);
		rc = cow__btree_put_run(tx, &v->m.tree, key, 8, &r, false);
		if (rc) {
			cow__bs_free(tx->bs, addr, k, tx->gen);
			return rc;
		}
		i += k;
	}
	return 0;
}

/* Set whole blocks [b, b + n) to @data. */
static int put_blocks(cow_vol *v, uint64_t b, uint64_t n, const uint8_t *data)
{
	int rc = carve(v, b, b + n);
	return rc ? rc : map_new(v, b, n, data);
}

int cow_vol_pwrite(cow_vol *v, const void *buf, size_t len, uint64_t off)
{
	int rc = vol_check(v, true);
	if (rc)
		return rc;
	if (off > v->m.rec.count || len > v->m.rec.count - off)
		return COW_ERANGE;
	const uint8_t *in = buf;
	uint8_t tmp[COW_BLOCK_SIZE];
	while (len > 0 && rc == 0) {
		uint64_t b = off >> COW_BLOCK_SHIFT, inb = off & (COW_BLOCK_SIZE - 1);
		size_t n;
		if (inb == 0 && len >= COW_BLOCK_SIZE) { /* whole blocks, up to a run's worth */
			n = COW_MIN(len, (size_t)COW_RUN_MAX << COW_BLOCK_SHIFT) &
			    ~(size_t)(COW_BLOCK_SIZE - 1);
			rc = put_blocks(v, b, n >> COW_BLOCK_SHIFT, in);
		} else { /* a partial block: read, modify, write this block only */
			n = COW_MIN(len, (size_t)(COW_BLOCK_SIZE - inb));
			uint64_t have = COW_MIN((uint64_t)COW_BLOCK_SIZE,
						v->m.rec.count - (b << COW_BLOCK_SHIFT));
			memset(tmp, 0, sizeof(tmp)); /* past the end of a short last block */
			rc = cow_vol_pread(v, tmp, (size_t)have, b << COW_BLOCK_SHIFT);
			if (rc == 0) {
				memcpy(tmp + inb, in, n);
				rc = put_blocks(v, b, 1, tmp);
			}
		}
		in += n;
		off += n;
		len -= n;
	}
	return cow__txn_poison(v->m.txn, rc);
}

int cow_vol_punch(cow_vol *v, uint64_t off, uint64_t len)
{
	int rc = vol_check(v, true);
	if (rc)
		return rc;
	if (off > v->m.rec.count || len > v->m.rec.count - off)
		return COW_ERANGE;
	if (len == 0)
		return 0;
	/* Partial blocks at either end are zeroed by writing; whole ones dropped. */
	uint64_t end = off + len;
	uint64_t a = (off + COW_BLOCK_SIZE - 1) & ~(uint64_t)(COW_BLOCK_SIZE - 1);
	uint64_t z = end & ~(uint64_t)(COW_BLOCK_SIZE - 1);
	static const uint8_t zeros[COW_BLOCK_SIZE];
	if (a > z) { /* within one block */
		return cow_vol_pwrite(v, zeros, (size_t)len, off);
	}
	if (off < a && (rc = cow_vol_pwrite(v, zeros, (size_t)(a - off), off)))
		return rc;
	if (z < end && (rc = cow_vol_pwrite(v, zeros, (size_t)(end - z), z)))
		return rc;
	if (z > a)
		rc = carve(v, a >> COW_BLOCK_SHIFT, z >> COW_BLOCK_SHIFT);
	return cow__txn_poison(v->m.txn, rc);
}

int cow_vol_resize(cow_vol *v, uint64_t size)
{
	int rc = vol_check(v, true);
	if (rc)
		return rc;
	if (size > VOL_MAX)
		return COW_EINVAL;
	uint64_t old = v->m.rec.count;
	if (size < old) {
		/* Zero the tail of the new last block, drop every block after it. */
		uint64_t inb = size & (COW_BLOCK_SIZE - 1);
		if (inb) {
			static const uint8_t zeros[COW_BLOCK_SIZE];
			size_t n = (size_t)COW_MIN(COW_BLOCK_SIZE - inb, old - size);
			rc = cow_vol_pwrite(v, zeros, n, size);
			if (rc)
				return rc;
		}
		uint64_t firstdrop = (size + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT;
		rc = carve(v, firstdrop, (VOL_MAX >> COW_BLOCK_SHIFT) + 1);
		if (rc)
			return cow__txn_poison(v->m.txn, rc);
	}
	v->m.rec.count = size;
	v->m.tree.mods++; /* the record changed: write it at commit */
	return 0;
}

int cow_vol_extents(cow_vol *v, uint64_t off, uint64_t len,
		    int (*fn)(void *ctx, uint64_t off, uint64_t len), void *ctx)
{
	int rc = vol_check(v, false);
	if (rc)
		return rc;
	if (off > v->m.rec.count || len > v->m.rec.count - off)
		return COW_ERANGE;
	if (len == 0)
		return 0;
	uint64_t end = off + len;
	uint64_t first = off >> COW_BLOCK_SHIFT, last = (end - 1) >> COW_BLOCK_SHIFT;
	uint64_t run_start = 0, run_end = 0; /* blocks [run_start, run_end) */
	struct cow__cursor c;
	cow__cursor_init(&c, &v->m.txn->tx, &v->m.tree);
	struct cow__vcell vc;
	for (rc = cow__vol_seek(&c, first); rc == 0 && (rc = cow__vol_cell(&c, run_end, &vc)) == 0;
	     rc = cow__cursor_next(&c)) {
		if (vc.key > last)
			break;
		if (run_end > run_start && vc.key != run_end) {
			uint64_t a = COW_MAX(run_start << COW_BLOCK_SHIFT, off);
			uint64_t z = COW_MIN(run_end << COW_BLOCK_SHIFT, end);
			if ((rc = fn(ctx, a, z - a)))
				return rc;
			run_start = vc.key;
		} else if (run_end == run_start) {
			run_start = vc.key;
		}
		run_end = vc.key + vc.r.n;
	}
	if (rc != COW_ENOTFOUND && rc != 0)
		return rc; /* a read: the transaction is not poisoned */
	if (run_end > run_start) {
		uint64_t a = COW_MAX(run_start << COW_BLOCK_SHIFT, off);
		uint64_t z = COW_MIN(run_end << COW_BLOCK_SHIFT, end);
		return fn(ctx, a, z - a);
	}
	return 0;
}
