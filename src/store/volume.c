/*
 * Volumes: sparse byte arrays. The block map is the same B+tree as a map's:
 * key = block index (8 bytes, big-endian, so keys sort by offset), value = a
 * one-block extent holding the data. A missing key is a hole and reads as
 * zeros; writing a whole block of zeros punches it.
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
 * The block map entry under @c, if it lies in [@first, @last]: its block in
 * *@b. COW_ENOTFOUND past the range (or at the map's end); COW_ECORRUPT for
 * a bad key, or keys that do not rise (@prev: the block seen before, or
 * UINT64_MAX for none). Only the key is read: a block past the range is
 * not read, nor its damage reported.
 */
static int map_block(struct cow__cursor *c, uint64_t first, uint64_t last, uint64_t prev,
		     uint64_t *b)
{
	cow_buf kb;
	int rc = cow__cursor_get(c, &kb, NULL);
	if (rc)
		return rc;
	if (kb.len != 8)
		return COW_CORRUPT(0, "bad volume block map key");
	*b = cow__be64(kb.data);
	if (*b < first || (prev != UINT64_MAX && *b <= prev))
		return COW_CORRUPT(0, "volume block map keys out of order");
	return *b > last ? COW_ENOTFOUND : 0;
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
	struct cow__cursor c;
	cow__cursor_init(&c, &v->m.txn->tx, &v->m.tree);
	uint8_t k[8];
	cow__put_be64(k, first);
	rc = cow__cursor_seek(&c, k, 8);
	for (uint64_t b = 0, prev = UINT64_MAX;
	     rc == 0 && (rc = map_block(&c, first, last, prev, &b)) == 0; prev = b) {
		cow_buf vb;
		rc = cow__cursor_get(&c, NULL, &vb);
		if (rc)
			break;
		if (vb.len != COW_BLOCK_SIZE)
			return COW_CORRUPT(0, "bad volume block map entry");
		uint64_t bstart = b << COW_BLOCK_SHIFT;
		uint64_t from = COW_MAX(bstart, off),
			 to = COW_MIN(bstart + COW_BLOCK_SIZE, off + len);
		memcpy(out + (from - off), (const uint8_t *)vb.data + (from - bstart), to - from);
		rc = cow__cursor_next(&c);
	}
	return rc == COW_ENOTFOUND ? 0 : rc;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Set block @b to @data (4096 bytes); zeros make a hole. */
static int put_block(cow_vol *v, uint64_t b, const uint8_t *data)
{
	uint8_t k[8];
	cow__put_be64(k, b);
	struct cow__tx *tx = &v->m.txn->tx;
	if (all_zero(data, COW_BLOCK_SIZE)) {
		int rc = cow__btree_del(tx, &v->m.tree, k, 8);
		return rc == COW_ENOTFOUND ? 0 : rc;
	}
	return cow__btree_put(tx, &v->m.tree, k, 8, data, COW_BLOCK_SIZE);
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
		size_t n = COW_MIN(len, (size_t)(COW_BLOCK_SIZE - inb));
		if (n == COW_BLOCK_SIZE) {
			rc = put_block(v, b, in);
		} else { /* a partial block: read, modify, write this block only */
			rc = cow_vol_pread(v, tmp, COW_BLOCK_SIZE, b << COW_BLOCK_SHIFT);
			if (rc == COW_ERANGE) { /* the last, short block of the volume */
				memset(tmp, 0, sizeof(tmp));
				uint64_t have = v->m.rec.count - (b << COW_BLOCK_SHIFT);
				rc = cow_vol_pread(v, tmp, (size_t)have, b << COW_BLOCK_SHIFT);
			}
			if (rc == 0) {
				memcpy(tmp + inb, in, n);
				rc = put_block(v, b, tmp);
			}
		}
		in += n;
		off += n;
		len -= n;
	}
	return cow__txn_poison(v->m.txn, rc);
}

/* Drop every block in [first, last]. */
static int drop_blocks(cow_vol *v, uint64_t first, uint64_t last)
{
	struct cow__tx *tx = &v->m.txn->tx;
	struct cow__cursor c;
	cow__cursor_init(&c, tx, &v->m.tree);
	uint8_t k[8];
	cow__put_be64(k, first);
	int rc = cow__cursor_seek(&c, k, 8);
	while (rc == 0) {
		cow_buf kb;
		rc = cow__cursor_get(&c, &kb, NULL);
		if (rc)
			break;
		uint64_t b = cow__be64(kb.data);
		if (b > last)
			break;
		cow__put_be64(k, b);
		rc = cow__btree_del(tx, &v->m.tree, k, 8);
		if (rc == 0)
			rc = cow__cursor_seek(&c, k, 8);
	}
	return rc == COW_ENOTFOUND ? 0 : rc;
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
		rc = drop_blocks(v, a >> COW_BLOCK_SHIFT, (z >> COW_BLOCK_SHIFT) - 1);
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
		rc = drop_blocks(v, firstdrop, UINT64_MAX >> COW_BLOCK_SHIFT);
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
	bool have = false;
	struct cow__cursor c;
	cow__cursor_init(&c, &v->m.txn->tx, &v->m.tree);
	uint8_t k[8];
	cow__put_be64(k, first);
	rc = cow__cursor_seek(&c, k, 8);
	for (uint64_t b = 0, prev = UINT64_MAX;
	     rc == 0 && (rc = map_block(&c, first, last, prev, &b)) == 0; prev = b) {
		if (have && b == run_end) {
			run_end++;
		} else {
			if (have) {
				uint64_t a = COW_MAX(run_start << COW_BLOCK_SHIFT, off);
				uint64_t z = COW_MIN(run_end << COW_BLOCK_SHIFT, end);
				if ((rc = fn(ctx, a, z - a)))
					return rc;
			}
			run_start = b;
			run_end = b + 1;
			have = true;
		}
		rc = cow__cursor_next(&c);
	}
	if (rc != COW_ENOTFOUND && rc != 0)
		return rc; /* a read: the transaction is not poisoned */
	if (have) {
		uint64_t a = COW_MAX(run_start << COW_BLOCK_SHIFT, off);
		uint64_t z = COW_MIN(run_end << COW_BLOCK_SHIFT, end);
		return fn(ctx, a, z - a);
	}
	return 0;
}
