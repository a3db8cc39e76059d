/*
 * Volumes: sparse byte arrays of a fixed size. A volume's tree is one block
 * map (blockmap.c): key = index of a run's first block (8 bytes,
 * big-endian, so keys sort by offset), value = a run of up to COW_RUN_MAX
 * blocks in one physical extent (FORMAT.md section 4). This file checks
 * handles and ranges and keeps the size.
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

/* The volume's block map: its whole tree, blocks below 2^48. */
void cow__vol_bmap(cow_vol *v, struct cow__bmap *m)
{
	cow__bmap_init(m, &v->m.txn->tx, &v->m.tree, NULL, 0, (VOL_MAX >> COW_BLOCK_SHIFT) + 1);
}

int cow_vol_pread(cow_vol *v, void *buf, size_t len, uint64_t off)
{
	int rc = vol_check(v, false);
	if (rc)
		return rc;
	if (off > v->m.rec.count || len > v->m.rec.count - off)
		return COW_ERANGE;
	struct cow__bmap m;
	cow__vol_bmap(v, &m);
	return cow__bmap_read(&m, buf, len, off);
}

int cow_vol_pwrite(cow_vol *v, const void *buf, size_t len, uint64_t off)
{
	int rc = vol_check(v, true);
	if (rc)
		return rc;
	if (off > v->m.rec.count || len > v->m.rec.count - off)
		return COW_ERANGE;
	struct cow__bmap m;
	cow__vol_bmap(v, &m);
	return cow__txn_poison(v->m.txn, cow__bmap_write(&m, buf, len, off));
}

int cow_vol_punch(cow_vol *v, uint64_t off, uint64_t len)
{
	int rc = vol_check(v, true);
	if (rc)
		return rc;
	if (off > v->m.rec.count || len > v->m.rec.count - off)
		return COW_ERANGE;
	struct cow__bmap m;
	cow__vol_bmap(v, &m);
	return cow__txn_poison(v->m.txn, cow__bmap_zero(&m, off, len));
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
		struct cow__bmap m;
		cow__vol_bmap(v, &m);
		rc = cow__bmap_carve(&m, firstdrop, m.limit);
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
	struct cow__bmap m;
	cow__vol_bmap(v, &m);
	struct cow__cursor c;
	cow__cursor_init(&c, m.tx, m.t);
	struct cow__vcell vc;
	for (rc = cow__bmap_seek(&m, &c, first);
	     rc == 0 && (rc = cow__bmap_cell(&m, &c, run_end, &vc)) == 0;
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
