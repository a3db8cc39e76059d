/*
 * fsck and scrub. Scrub reads every block reachable from the newest commit
 * once (shared subtrees are visited once) and verifies it against its
 * pointer; damage is reported with the object and the key or offset it
 * affects, and the walk goes on around it. fsck adds, when every checksum is
 * good, the structural and space checks of cow__store_check: key order,
 * separators, entry counts, every reference count recounted from the trees,
 * and the space map (nothing leaked, nothing used twice).
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "btree/node.h"
#include "store/store.h"

struct fsck {
	struct cow__tx *tx;
	uint8_t *seen;
	uint64_t nblocks;
	int (*fn)(void *ctx, const cow_fsck_problem *p);
	void *ctx;
	cow_fsck_report *r;
	int stop; /* the callback asked to stop */
	cow_progress_fn progress;
	void *pctx;
};

static void report(struct fsck *f, const char *obj, uint64_t block, const uint8_t *key,
		   size_t klen, bool volume, int rc)
{
	f->r->problems++;
	if (!f->fn || f->stop)
		return;
	cow_fsck_problem p = {.object = obj, .block = block, .what = cow_strerror(rc)};
	const char *why;
	uint64_t blk;
	if (rc == COW_ECORRUPT && cow__last_corrupt(&blk, &why) && blk == block)
		p.what = why;
	if (key && volume && klen == 8) {
		p.offset = cow__be64(key) << COW_BLOCK_SHIFT;
		p.has_offset = 1;
	} else if (key) {
		p.key.data = key;
		p.key.len = klen;
	}
	f->stop = f->fn(f->ctx, &p);
}

static void walk(struct fsck *f, const char *obj, bool volume, const struct cow__bptr *p,
		 const uint8_t *lo, size_t lolen, int depth, bool catalog);

static int space_block(void *ctx, uint64_t addr, int rc)
{
	struct fsck *f = ctx;
	if (rc)
		report(f, "(space map)", addr, NULL, 0, false, rc);
	else
		f->r->blocks++;
	return f->stop;
}

static void scan_object(struct fsck *f, const uint8_t *key, size_t klen, const uint8_t *val,
			size_t vlen, uint64_t block)
{
	char name[COW_FULLNAME_MAX + 1];
	size_t n = COW_MIN(klen, (size_t)COW_FULLNAME_MAX);
	memcpy(name, key, n);
	name[n] = 0;
	struct cow__obj o = {0};
	int rc = cow__obj_decode(val, vlen, &o);
	if (rc) {
		report(f, name, block, NULL, 0, false, rc);
		return;
	}
	f->r->objects++;
	if (o.root.addr)
		walk(f, name, o.type == OBJ_VOLUME, &o.root, NULL, 0, 0, false);
}

static void walk(struct fsck *f, const char *obj, bool volume, const struct cow__bptr *p,
		 const uint8_t *lo, size_t lolen, int depth, bool catalog)
{
	if (f->stop)
		return;
	if (p->addr < f->nblocks && (f->seen[p->addr] & 1))
		return; /* shared with a version already checked */
	const uint8_t *n;
	int rc = depth > COW_BTREE_MAXDEPTH ? COW_CORRUPT(p->addr, "tree too deep")
					     : cow__node_get(f->tx, p, &n);
	if (rc) {
		if (p->addr < f->nblocks)
			f->seen[p->addr] |= 1; /* report a damaged block once */
		report(f, obj, p->addr, lo, lolen, volume, rc);
		return;
	}
	f->seen[p->addr] |= 1;
	if ((++f->r->blocks & 1023) == 0 && f->progress)
		f->progress(f->pctx, f->r->blocks, f->nblocks);
	for (unsigned i = 0; i < n_count(n) && !f->stop; i++) {
		const uint8_t *c = n_cell(n, i);
		if (n_kind(n) == N_BRANCH) {
			struct cow__bptr child;
			br_child(c, &child);
			bool first = i == 0;
			walk(f, obj, volume, &child, first ? lo : br_key(c), first ? lolen : br_klen(c),
			     depth + 1, catalog);
		} else if (leaf_vkind(c) == V_EXTENT) {
			struct cow__bptr ep;
			cow__bptr_load(&ep, leaf_val(c));
			if (ep.addr < f->nblocks && (f->seen[ep.addr] & 1))
				continue;
			const uint8_t *data;
			rc = cow__bs_read(f->tx->bs, f->tx->read_flags, f->tx->nblocks, &ep, leaf_vlen(c), &data, NULL);
			if (rc) {
				if (ep.addr < f->nblocks)
					f->seen[ep.addr] |= 1;
				report(f, obj, ep.addr, leaf_key(c), leaf_klen(c), volume, rc);
				continue;
			}
			f->seen[ep.addr] |= 1;
			f->r->blocks += (leaf_vlen(c) + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT;
		} else if (catalog) {
			scan_object(f, leaf_key(c), leaf_klen(c), leaf_val(c), leaf_vlen(c), p->addr);
		}
	}
}

int cow_store_fsck(cow_store *s, unsigned flags, int (*fn)(void *ctx, const cow_fsck_problem *p),
		   void *ctx, cow_fsck_report *report_out, cow_progress_fn progress,
		   void *progress_ctx)
{
	if (!s)
		return COW_EINVAL;
	cow_fsck_report r = {0};
	cow_txn *t;
	int rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	if (rc)
		return rc;
	struct fsck f = {.tx = &t->tx,
			 .nblocks = t->tx.nblocks,
			 .fn = fn,
			 .ctx = ctx,
			 .r = &r,
			 .progress = progress,
			 .pctx = progress_ctx};
	t->tx.read_flags = COW_READ_VERIFY; /* trust nothing remembered */
	f.seen = cow__calloc(f.nblocks ? f.nblocks : 1, 1);
	if (!f.seen) {
		cow_txn_abort(t);
		return COW_ENOMEM;
	}
	if (t->catalog.root.addr)
		walk(&f, "(catalog)", false, &t->catalog.root, NULL, 0, 0, true);
	if (t->refs.root.addr)
		walk(&f, "(reference counts)", false, &t->refs.root, NULL, 0, 0, false);
	if (!f.stop && (rc = cow__store_scrub_space(t, space_block, &f)) && rc != f.stop) {
		cow__free(f.seen);
		cow_txn_abort(t);
		return rc;
	}
	cow__free(f.seen);
	cow_txn_abort(t);

	/* With every checksum good, the structure, counts and space map. */
	if (r.problems == 0 && !(flags & COW_FSCK_SCRUB)) {
		rc = cow__store_check(s);
		if (rc == COW_ECORRUPT) {
			uint64_t blk = 0;
			const char *why = "inconsistent";
			cow__last_corrupt(&blk, &why);
			r.problems++;
			if (fn) {
				cow_fsck_problem p = {.object = "(structure, reference counts or space map)",
						      .block = blk,
						      .what = why};
				fn(ctx, &p);
			}
			rc = 0;
		}
		if (rc)
			return rc;
	}
	if (report_out)
		*report_out = r;
	return r.problems ? COW_ECORRUPT : 0;
}
