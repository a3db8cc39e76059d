/*
 * fsck and scrub. Every tree reachable from the newest commit (the catalog,
 * every object and snapshot, the refs tree) goes through the btree checker,
 * which reads each block once (shared subtrees are visited once), verifies
 * it against its pointer and checks the node's structure as strictly as a
 * reader: damage is reported with the object and the key or offset it
 * affects, and the walk goes on around it, so every problem is found, not
 * the first. The space map's chain blocks are verified too. When every tree
 * is sound, fsck (not scrub) adds the space and reference-count checks of
 * cow__store_check, which also report every problem.
 *
 * The node format is btree/'s business: this file sees only problems.
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "store/store.h"

struct fsck {
	struct cow__tx *tx;
	struct cow__check ck;
	int (*fn)(void *ctx, const cow_fsck_problem *p);
	void *ctx;
	cow_fsck_report *r;
	int stop; /* the callback asked to stop */
	cow_progress_fn progress;
	void *pctx;
	const char *obj; /* the tree being checked */
	bool volume;
};

static void keep(cow_fsck_report *r, const cow_fsck_problem *p)
{
	if (r->kept >= COW_FSCK_KEEP)
		return;
	cow_fsck_finding *f = &r->found[r->kept++];
	memset(f, 0, sizeof(*f));
	snprintf(f->object, sizeof(f->object), "%s", p->object);
	f->block = p->block;
	f->key_len = COW_MIN(p->key.len, sizeof(f->key));
	f->key_truncated = p->key.len > sizeof(f->key);
	if (f->key_len)
		memcpy(f->key, p->key.data, f->key_len);
	f->offset = p->offset;
	f->has_offset = p->has_offset;
	f->what = p->what;
}

static void report(struct fsck *f, const char *obj, uint64_t block, const uint8_t *key, size_t klen,
		   bool volume, const char *what)
{
	f->r->problems++;
	cow_fsck_problem p = {.object = obj, .block = block, .what = what};
	if (key && volume && klen == 8) {
		p.offset = cow__be64(key) << COW_BLOCK_SHIFT;
		p.has_offset = 1;
	} else if (key && klen) {
		p.key.data = key;
		p.key.len = klen;
	}
	keep(f->r, &p);
	if (f->fn && !f->stop)
		f->stop = f->fn(f->ctx, &p);
}

static int on_problem(void *ctx, uint64_t block, const uint8_t *key, size_t klen, const char *what)
{
	struct fsck *f = ctx;
	report(f, f->obj, block, key, klen, f->volume, what);
	return 0; /* the count goes on even when the callback stops listening */
}

static void on_verified(void *ctx, uint64_t addr, uint64_t nblk)
{
	(void)addr;
	struct fsck *f = ctx;
	uint64_t before = f->r->blocks;
	f->r->blocks += nblk;
	if (f->progress && (before >> 10) != (f->r->blocks >> 10))
		f->progress(f->pctx, f->r->blocks, f->ck.nblocks);
}

static int check_tree(struct fsck *f, const char *obj, bool volume, const struct cow__tree *t,
		      bool count_known);

/* A block of the space map's chains, verified (@rc 0) or not. */
static int space_block(void *ctx, uint64_t addr, int rc)
{
	struct fsck *f = ctx;
	if (rc)
		report(f, "(space map)", addr, NULL, 0, false, cow_strerror(rc));
	else
		on_verified(f, addr, 1);
	return f->stop;
}

/* A catalog record: the object's own tree is checked under its name. */
static int on_record(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
		     uint64_t block)
{
	struct fsck *f = ctx;
	char name[COW_FULLNAME_MAX + 1];
	size_t n = COW_MIN(klen, (size_t)COW_FULLNAME_MAX);
	memcpy(name, key, n);
	name[n] = 0;
	struct cow__obj o = {0};
	int rc = cow__obj_decode(val, vlen, &o);
	if (rc) {
		report(f, name, block, NULL, 0, false,
		       rc == COW_ECORRUPT ? "bad catalog record" : cow_strerror(rc));
		return 0;
	}
	f->r->objects++;
	struct cow__tree t = {.root = o.root, .count = o.count, .shared_gen = o.shared_gen};
	const char *obj = f->obj;
	bool volume = f->volume;
	rc = check_tree(f, name, o.type == OBJ_VOLUME, &t, cow__obj_keyed(o.type));
	f->obj = obj;
	f->volume = volume;
	return rc;
}

static int check_tree(struct fsck *f, const char *obj, bool volume, const struct cow__tree *t,
		      bool count_known)
{
	struct cow__check ck = f->ck;
	ck.val = NULL;
	f->obj = obj;
	f->volume = volume;
	uint64_t problems;
	return cow__btree_check(f->tx, t, count_known, &ck, &problems);
}

/* A problem of the reference-count and space-map check. */
static int on_check(void *ctx, uint64_t block, const char *what)
{
	struct fsck *f = ctx;
	report(f, "(reference counts or space map)", block, NULL, 0, false, what);
	return f->stop;
}

int cow_store_fsck(cow_store *s, unsigned flags, int (*fn)(void *ctx, const cow_fsck_problem *p),
		   void *ctx, cow_fsck_report *report_out, cow_progress_fn progress,
		   void *progress_ctx)
{
	cow_fsck_report r0 = {0}, *r = report_out ? report_out : &r0;
	memset(r, 0, sizeof(*r)); /* no figure is left unset, whatever happens below */
	if (!s)
		return COW_EINVAL;
	cow_txn *t;
	int rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	if (rc)
		return rc;
	struct fsck f = {.tx = &t->tx,
			 .fn = fn,
			 .ctx = ctx,
			 .r = r,
			 .progress = progress,
			 .pctx = progress_ctx};
	f.ck = (struct cow__check){.nblocks = t->tx.nblocks,
				   .problem = on_problem,
				   .verified = on_verified,
				   .ctx = &f};
	t->tx.read_flags = COW_READ_VERIFY; /* trust nothing remembered */
	size_t nb = f.ck.nblocks ? (size_t)f.ck.nblocks : 1;
	f.ck.seen = cow__calloc(nb, 1);
	f.ck.entries = cow__calloc(nb, sizeof(uint32_t));
	if (!f.ck.seen || !f.ck.entries) {
		rc = COW_ENOMEM;
		goto out;
	}
	struct cow__check cat = f.ck;
	cat.val = on_record;
	f.obj = "(catalog)";
	f.volume = false;
	uint64_t problems;
	rc = cow__btree_check(&t->tx, &t->catalog, false, &cat, &problems);
	if (rc == 0)
		rc = check_tree(&f, "(reference counts)", false, &t->refs, false);
	if (rc == 0 && !f.stop) {
		rc = cow__store_scrub_space(t, space_block, &f);
		if (rc == f.stop)
			rc = 0; /* the callback stopped listening */
	}

out:
	cow__free(f.ck.seen);
	cow__free(f.ck.entries);
	cow_txn_abort(t);
	if (rc)
		return rc;

	/* With every tree sound, the counts and the space map. */
	if (r->problems == 0 && !(flags & COW_FSCK_SCRUB)) {
		rc = cow__store_check_all(s, on_check, &f);
		if (rc == COW_ECORRUPT)
			rc = 0; /* each problem was reported */
		if (rc)
			return rc;
	}
	return r->problems ? COW_ECORRUPT : 0;
}
