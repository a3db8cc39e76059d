/*
 * Versions of objects: snapshots, clones, rollback, destroy, promote, their
 * figures (referenced and exclusive bytes), diffs, and the catalog listing.
 *
 * A snapshot or clone is a catalog record that points at the same root as
 * its source, with the root's reference count raised by one: O(1) whatever
 * the size. Both records get shared_gen = now, so their next writes look up
 * reference counts and copy what is shared (btree.c does the rest).
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "store/store.h"

static int write_check(cow_txn *t)
{
	return cow__txn_check(t, true);
}

/* Split "NAME@SNAP" into its parts (in @obj); 0 or COW_EINVAL. */
static int split_name(const char *full, char obj[COW_NAME_MAX + 1], const char **snap)
{
	size_t len;
	int rc = cow__name_check(full, true, &len);
	if (rc)
		return rc;
	const char *at = strchr(full, '@');
	if (!at)
		return COW_EINVAL;
	size_t n = (size_t)(at - full);
	memcpy(obj, full, n);
	obj[n] = 0;
	*snap = at + 1;
	return 0;
}

int cow__catalog_each(cow_txn *t, const char *prefix,
		      int (*fn)(void *ctx, const char *name, const struct cow__obj *o), void *ctx)
{
	struct cow__cursor c;
	cow__cursor_init(&c, &t->tx, &t->catalog);
	size_t plen = prefix ? strlen(prefix) : 0;
	int rc = plen ? cow__cursor_seek(&c, prefix, plen) : cow__cursor_first(&c);
	while (rc == 0) {
		cow_buf k, v;
		rc = cow__cursor_get(&c, &k, &v);
		if (rc)
			break;
		if (k.len < plen || (plen && memcmp(k.data, prefix, plen) != 0))
			break;
		char name[COW_FULLNAME_MAX + 1];
		if (k.len > COW_FULLNAME_MAX)
			return COW_CORRUPT(0, "catalog name too long");
		memcpy(name, k.data, k.len);
		name[k.len] = 0;
		struct cow__obj o = {0};
		rc = cow__obj_decode(v.data, v.len, &o);
		if (rc)
			break;
		rc = fn(ctx, name, &o);
		if (rc)
			return rc;
		rc = cow__cursor_next(&c);
	}
	return rc == COW_ENOTFOUND ? 0 : rc;
}

/* ---- snapshot ---- */

static int snapshot_one(cow_txn *t, const char *obj, const char *snap)
{
	char full[COW_FULLNAME_MAX + 2];
	if ((size_t)snprintf(full, sizeof(full), "%s@%s", obj, snap) > COW_FULLNAME_MAX)
		return COW_EINVAL;
	struct cow__obj o = {0};
	int rc = cow__catalog_get(t, full, &o);
	if (rc == 0)
		return COW_EEXIST;
	if (rc != COW_ENOTFOUND)
		return rc;
	cow_map *m;
	rc = cow__obj_open(t, obj, 0, &m);
	if (rc)
		return rc;
	if (m->rec.flags & OBJF_SNAPSHOT)
		return COW_EINVAL;
	rc = cow__obj_flush(m); /* the snapshot includes this transaction's changes */
	if (rc)
		return rc;
	struct cow__obj s = m->rec;
	s.flags = OBJF_SNAPSHOT;
	s.id = t->s->next_id++;
	s.created = s.shared_gen = t->tx.gen;
	s.origin[0] = 0;
	cow__guid(s.guid);
	if (s.root.addr && (rc = cow__ref_inc(&t->tx, s.root.addr)))
		return cow__txn_poison(t, rc);
	/* From now on the object's blocks may be shared: its writes must look. */
	m->tree.shared_gen = m->rec.shared_gen = t->tx.gen;
	m->tree.mods++;
	return cow__catalog_put(t, full, &s);
}

struct names {
	char (*v)[COW_NAME_MAX + 1];
	size_t n, cap;
};

static int collect_live(void *ctx, const char *name, const struct cow__obj *o)
{
	struct names *ns = ctx;
	if (o->flags & OBJF_SNAPSHOT)
		return 0;
	int rc = cow__grow((void **)&ns->v, &ns->cap, ns->n + 1, sizeof(*ns->v));
	if (rc)
		return rc;
	memcpy(ns->v[ns->n++], name, strlen(name) + 1);
	return 0;
}

int cow_snapshot(cow_txn *t, const char *snapshot)
{
	int rc = write_check(t);
	if (rc)
		return rc;
	if (!snapshot)
		return COW_EINVAL;
	if (snapshot[0] == '@') { /* every object, atomically: one transaction */
		size_t len;
		if ((rc = cow__name_check(snapshot + 1, false, &len)))
			return rc;
		struct names ns = {0};
		rc = cow__catalog_each(t, NULL, collect_live, &ns);
		for (size_t i = 0; rc == 0 && i < ns.n; i++) { /* all names free, or nothing */
			char full[COW_FULLNAME_MAX + 2];
			struct cow__obj x;
			snprintf(full, sizeof(full), "%s@%s", ns.v[i], snapshot + 1);
			int r = cow__catalog_get(t, full, &x);
			rc = r == 0 ? COW_EEXIST : r == COW_ENOTFOUND ? 0 : r;
		}
		for (size_t i = 0; rc == 0 && i < ns.n; i++) {
			rc = snapshot_one(t, ns.v[i], snapshot + 1);
			if (rc && i > 0) /* some are taken: all or nothing */
				cow__txn_poison(t, rc);
		}
		cow__free(ns.v);
		return rc;
	}
	char obj[COW_NAME_MAX + 1];
	const char *snap;
	if ((rc = split_name(snapshot, obj, &snap)))
		return rc;
	return snapshot_one(t, obj, snap);
}

/* ---- clone, rollback ---- */

int cow_clone(cow_txn *t, const char *snapshot, const char *newname)
{
	int rc = write_check(t);
	if (rc)
		return rc;
	char obj[COW_NAME_MAX + 1];
	const char *snap;
	size_t len;
	if ((rc = split_name(snapshot, obj, &snap)) || (rc = cow__name_check(newname, false, &len)))
		return rc;
	struct cow__obj s = {0}, c = {0};
	rc = cow__catalog_get(t, newname, &c);
	if (rc == 0)
		return COW_EEXIST;
	if (rc != COW_ENOTFOUND)
		return rc;
	if ((rc = cow__catalog_get(t, snapshot, &s)))
		return rc;
	c = s;
	c.flags = 0;
	c.id = t->s->next_id++;
	c.created = c.shared_gen = t->tx.gen;
	memcpy(c.origin, snapshot, strlen(snapshot) + 1);
	cow__guid(c.guid);
	if (c.root.addr && (rc = cow__ref_inc(&t->tx, c.root.addr)))
		return cow__txn_poison(t, rc);
	return cow__catalog_put(t, newname, &c);
}

int cow_rollback(cow_txn *t, const char *snapshot)
{
	int rc = write_check(t);
	if (rc)
		return rc;
	char obj[COW_NAME_MAX + 1];
	const char *snap;
	if ((rc = split_name(snapshot, obj, &snap)))
		return rc;
	struct cow__obj s = {0};
	if ((rc = cow__catalog_get(t, snapshot, &s)))
		return rc;
	cow_map *m;
	if ((rc = cow__obj_open(t, obj, s.type, &m)))
		return rc;
	rc = cow__btree_destroy(&t->tx, &m->tree);
	if (rc == 0 && s.root.addr)
		rc = cow__ref_inc(&t->tx, s.root.addr);
	if (rc)
		return cow__txn_poison(t, rc);
	m->tree.root = s.root;
	m->tree.blocks = (int64_t)s.blocks;
	m->tree.count = cow__obj_keyed(s.type) ? s.count : 0;
	m->tree.shared_gen = t->tx.gen;
	m->tree.mods++;
	m->rec.count = s.count;
	return 0;
}

/* ---- destroy ---- */

struct dep {
	const char *name;
	bool found;
};

static int find_dependent(void *ctx, const char *name, const struct cow__obj *o)
{
	(void)name;
	struct dep *d = ctx;
	if (strcmp(o->origin, d->name) == 0)
		d->found = true;
	return 0;
}

static int collect_snaps(void *ctx, const char *name, const struct cow__obj *o)
{
	(void)o;
	struct names *ns = ctx;
	int rc = cow__grow((void **)&ns->v, &ns->cap, ns->n + 1, sizeof(*ns->v));
	if (rc)
		return rc;
	/* Only the part after '@' fits the array's width; the caller rebuilds. */
	const char *at = strchr(name, '@');
	memcpy(ns->v[ns->n++], at + 1, strlen(at + 1) + 1);
	return 0;
}

static int destroy_one(cow_txn *t, const char *name)
{
	struct cow__obj o = {0};
	int rc = cow__catalog_get(t, name, &o);
	if (rc)
		return rc;
	if (o.flags & OBJF_SNAPSHOT) {
		struct dep d = {name, false};
		if ((rc = cow__catalog_each(t, NULL, find_dependent, &d)))
			return rc;
		if (d.found)
			return COW_EBUSY;
	}
	cow_map *m = cow__obj_find(t, name);
	struct cow__tree tree = {.root = o.root, .shared_gen = o.shared_gen};
	rc = cow__btree_destroy(&t->tx, m ? &m->tree : &tree);
	if (rc)
		return cow__txn_poison(t, rc);
	if (m)
		m->dropped = true;
	return cow__txn_poison(t, cow__btree_del(&t->tx, &t->catalog, name, strlen(name)));
}

int cow_destroy(cow_txn *t, const char *name, unsigned flags)
{
	int rc = write_check(t);
	if (rc)
		return rc;
	size_t len;
	if ((rc = cow__name_check(name, true, &len)))
		return rc;
	struct cow__obj o = {0};
	if ((rc = cow__catalog_get(t, name, &o)))
		return rc;
	size_t gone = 0; /* snapshots destroyed: after one, all or nothing */
	if (!(o.flags & OBJF_SNAPSHOT)) {
		char prefix[COW_NAME_MAX + 2];
		snprintf(prefix, sizeof(prefix), "%s@", name);
		struct names ns = {0};
		rc = cow__catalog_each(t, prefix, collect_snaps, &ns);
		if (rc == 0 && ns.n && !(flags & COW_DESTROY_RECURSIVE))
			rc = COW_EBUSY;
		/* Refuse before changing anything if any snapshot has a clone. */
		for (size_t i = 0; rc == 0 && i < ns.n; i++) {
			char full[COW_FULLNAME_MAX + 2];
			snprintf(full, sizeof(full), "%s@%s", name, ns.v[i]);
			struct dep d = {full, false};
			rc = cow__catalog_each(t, NULL, find_dependent, &d);
			if (rc == 0 && d.found)
				rc = COW_EBUSY;
		}
		for (size_t i = 0; rc == 0 && i < ns.n; i++) {
			char full[COW_FULLNAME_MAX + 2];
			snprintf(full, sizeof(full), "%s@%s", name, ns.v[i]);
			rc = destroy_one(t, full);
			gone += rc == 0;
		}
		cow__free(ns.v);
		if (rc)
			return gone ? cow__txn_poison(t, rc) : rc;
	}
	rc = destroy_one(t, name);
	return gone ? cow__txn_poison(t, rc) : rc;
}

/* ---- promote ---- */

struct moved {
	struct names snaps; /* snapshot parts moved from the origin */
	const char *from, *to;
	uint64_t upto;
};

static int collect_upto(void *ctx, const char *name, const struct cow__obj *o)
{
	struct moved *mv = ctx;
	if (o->id > mv->upto) /* ids grow in creation order, even within one txn */
		return 0;
	return collect_snaps(&mv->snaps, name, o);
}

/* Rewrite every origin "FROM@X" of a moved X to "TO@X". */
static int fix_origin(void *ctx, const char *name, const struct cow__obj *o)
{
	struct moved *mv = ctx;
	(void)name;
	const char *at = strchr(o->origin, '@');
	if (!at || (size_t)(at - o->origin) != strlen(mv->from) ||
	    memcmp(o->origin, mv->from, (size_t)(at - o->origin)) != 0)
		return 0;
	for (size_t i = 0; i < mv->snaps.n; i++)
		if (strcmp(at + 1, mv->snaps.v[i]) == 0)
			return 1; /* found one: the caller rewrites it */
	return 0;
}

struct origin_fix {
	struct moved *mv;
	struct names who;
};

static int collect_fix(void *ctx, const char *name, const struct cow__obj *o)
{
	struct origin_fix *f = ctx;
	if (!fix_origin(f->mv, name, o))
		return 0;
	int rc = cow__grow((void **)&f->who.v, &f->who.cap, f->who.n + 1, sizeof(*f->who.v));
	if (rc)
		return rc;
	if (strlen(name) > COW_NAME_MAX) /* snapshots are never clones */
		return COW_EINTERNAL;
	memcpy(f->who.v[f->who.n++], name, strlen(name) + 1);
	return 0;
}

static int set_origin(cow_txn *t, const char *name, const char *origin)
{
	struct cow__obj o = {0};
	int rc = cow__catalog_get(t, name, &o);
	if (rc)
		return rc;
	memcpy(o.origin, origin, strlen(origin) + 1);
	cow_map *m = cow__obj_find(t, name);
	if (m)
		memcpy(m->rec.origin, origin, strlen(origin) + 1);
	return cow__catalog_put(t, name, &o);
}

int cow_promote(cow_txn *t, const char *name)
{
	int rc = write_check(t);
	if (rc)
		return rc;
	size_t len;
	if ((rc = cow__name_check(name, false, &len)))
		return rc;
	struct cow__obj c = {0}, s = {0}, o = {0};
	if ((rc = cow__catalog_get(t, name, &c)))
		return rc;
	if (!c.origin[0])
		return COW_EINVAL; /* not a clone */
	char origin[COW_FULLNAME_MAX + 1], obj[COW_NAME_MAX + 1];
	const char *snap;
	memcpy(origin, c.origin, sizeof(origin));
	if ((rc = split_name(origin, obj, &snap)) || (rc = cow__catalog_get(t, origin, &s)) ||
	    (rc = cow__catalog_get(t, obj, &o)))
		return rc;

	struct moved mv = {.from = obj, .to = name, .upto = s.id};
	char prefix[COW_NAME_MAX + 2];
	snprintf(prefix, sizeof(prefix), "%s@", obj);
	rc = cow__catalog_each(t, prefix, collect_upto, &mv);
	for (size_t i = 0; rc == 0 && i < mv.snaps.n; i++) { /* no name may collide */
		char dst[COW_FULLNAME_MAX + 2];
		snprintf(dst, sizeof(dst), "%s@%s", name, mv.snaps.v[i]);
		struct cow__obj x;
		int r = cow__catalog_get(t, dst, &x);
		rc = r == 0 ? COW_EEXIST : r == COW_ENOTFOUND ? 0 : r;
	}
	struct origin_fix fx = {&mv, {0}};
	if (rc == 0)
		rc = cow__catalog_each(t, NULL, collect_fix, &fx);
	/* Move the snapshots, then repoint the clones that hung on them. */
	bool changed = rc == 0; /* from here on a failure leaves half a promote */
	for (size_t i = 0; rc == 0 && i < mv.snaps.n; i++) {
		char src[COW_FULLNAME_MAX + 2], dst[COW_FULLNAME_MAX + 2];
		snprintf(src, sizeof(src), "%s@%s", obj, mv.snaps.v[i]);
		snprintf(dst, sizeof(dst), "%s@%s", name, mv.snaps.v[i]);
		struct cow__obj x = {0};
		rc = cow__catalog_get(t, src, &x);
		if (rc == 0)
			rc = cow__btree_del(&t->tx, &t->catalog, src, strlen(src));
		if (rc == 0)
			rc = cow__catalog_put(t, dst, &x);
		cow_map *h = cow__obj_find(t, src);
		if (h)
			h->dropped = true; /* its name is gone; reopen under the new one */
	}
	for (size_t i = 0; rc == 0 && i < fx.who.n; i++) {
		struct cow__obj x = {0};
		rc = cow__catalog_get(t, fx.who.v[i], &x);
		if (rc == 0) {
			const char *at = strchr(x.origin, '@');
			char nor[COW_FULLNAME_MAX + 2];
			snprintf(nor, sizeof(nor), "%s@%s", name, at + 1);
			rc = set_origin(t, fx.who.v[i], nor);
		}
	}
	/* The clone takes over its origin's origin; the origin hangs on the clone. */
	if (rc == 0)
		rc = set_origin(t, name, o.origin);
	if (rc == 0) {
		char nor[COW_FULLNAME_MAX + 2];
		snprintf(nor, sizeof(nor), "%s@%s", name, snap);
		rc = set_origin(t, obj, nor);
	}
	cow__free(mv.snaps.v);
	cow__free(fx.who.v);
	return changed ? cow__txn_poison(t, rc) : rc;
}

/* ---- figures ---- */

/* The current tree and record of @name: an open handle's, or the catalog's. */
static int resolve(cow_txn *t, const char *name, struct cow__obj *o, struct cow__tree *tree)
{
	size_t len;
	int rc = cow__name_check(name, true, &len);
	if (rc)
		return rc;
	cow_map *m = cow__obj_find(t, name);
	if (m) {
		*o = m->rec;
		*tree = m->tree;
		if (cow__obj_keyed(o->type))
			o->count = m->tree.count;
		o->blocks = (uint64_t)m->tree.blocks;
		return 0;
	}
	rc = cow__catalog_get(t, name, o);
	if (rc)
		return rc;
	*tree = (struct cow__tree){.root = o->root,
				   .count = cow__obj_keyed(o->type) ? o->count : 0,
				   .shared_gen = o->shared_gen,
				   .blocks = (int64_t)o->blocks};
	return 0;
}

int cow_obj_stat(cow_txn *t, const char *name, unsigned flags, cow_obj_stats *st)
{
	if (!t || !st)
		return COW_EINVAL;
	struct cow__obj o = {0};
	struct cow__tree tree;
	int rc = resolve(t, name, &o, &tree);
	if (rc)
		return rc;
	memset(st, 0, sizeof(*st));
	st->type = cow__obj_type_name(o.type);
	st->snapshot = (o.flags & OBJF_SNAPSHOT) != 0;
	if (cow__obj_keyed(o.type))
		st->entries = o.count;
	else
		st->size = o.count;
	st->referenced = o.blocks * COW_BLOCK_SIZE;
	st->created = o.created;
	st->changed = tree.root.birth;
	memcpy(st->origin, o.origin, strlen(o.origin) + 1);
	if (flags & COW_STAT_EXCLUSIVE) {
		uint64_t ex;
		rc = cow__btree_exclusive(&t->tx, &tree, &ex);
		if (rc)
			return rc;
		st->exclusive = ex * COW_BLOCK_SIZE;
	}
	return 0;
}

/* ---- diff ---- */

struct diffctx {
	int type;
	int (*fn)(void *ctx, const cow_diff_entry *e);
	void *ctx;
	struct cow__tx *tx;
	struct cow__tree *ta, *tb;
	/* block maps: the pending range, in blocks, and its map's key prefix */
	uint64_t run_start, run_len;
	uint8_t pre[COW_BMAP_PRE_MAX];
	size_t plen;
};

static int emit_range(struct diffctx *d, uint64_t b, uint64_t n)
{
	uint8_t k[COW_BMAP_PRE_MAX + 8];
	cow_diff_entry e = {.kind = COW_DIFF_CHANGED,
			    .offset = b << COW_BLOCK_SHIFT,
			    .length = n << COW_BLOCK_SHIFT};
	if (d->plen) { /* a file's blocks: the key names the file and the first block */
		memcpy(k, d->pre, d->plen);
		cow__put_be64(k + d->plen, b);
		e.key = (cow_buf){k, d->plen + 8};
	}
	return d->fn(d->ctx, &e);
}

/*
 * The pending range holds every block whose entry changed; a changed entry
 * (a run cut in two, a slice of the same extent) may still map most of its
 * blocks where it did. Report only the blocks whose pointers differ.
 */
static int flush_run(struct diffctx *d)
{
	if (!d->run_len)
		return 0;
	uint64_t s = d->run_start, end = s + d->run_len, from = 0, n = 0;
	d->run_len = 0;
	struct cow__bmap a, b;
	cow__bmap_init(&a, d->tx, d->ta, d->pre, d->plen, UINT64_MAX);
	cow__bmap_init(&b, d->tx, d->tb, d->pre, d->plen, UINT64_MAX);
	struct cow__vmap ma, mb;
	int rc = cow__vmap_start(&ma, &a, s);
	if (rc == 0)
		rc = cow__vmap_start(&mb, &b, s);
	for (uint64_t i = s; i < end && rc == 0; i++) {
		struct cow__bptr pa, pb;
		if ((rc = cow__vmap_get(&ma, i, &pa)) || (rc = cow__vmap_get(&mb, i, &pb)))
			break;
		if (pa.addr != pb.addr || pa.birth != pb.birth || pa.csum != pb.csum) {
			if (!n)
				from = i;
			n++;
		} else if (n) {
			rc = emit_range(d, from, n);
			n = 0;
		}
	}
	return rc == 0 && n ? emit_range(d, from, n) : rc;
}

static int on_diff(void *ctx, const cow_buf *key, const cow_buf *va, const cow_buf *vb)
{
	struct diffctx *d = ctx;
	size_t plen;
	if (d->type == OBJ_VOLUME && key->len != 8)
		return COW_CORRUPT(0, "bad volume block map key");
	if (cow__bmap_key(d->type, key->data, key->len, &plen)) {
		/*
		 * Every block whose mapping differs lies in an entry present on
		 * one side only, or changed: their ranges, merged in key order.
		 */
		uint64_t b = cow__be64((const uint8_t *)key->data + plen), na = 0, nb = 0;
		int rc = va ? cow__bmap_value_blocks(va, &na) : 0;
		if (rc == 0 && vb)
			rc = cow__bmap_value_blocks(vb, &nb);
		if (rc)
			return rc;
		uint64_t end = b + COW_MAX(na, nb);
		if (end < b)
			return COW_CORRUPT(0, "bad block map entry");
		if (d->run_len && d->plen == plen && memcmp(d->pre, key->data, plen) == 0 &&
		    b <= d->run_start + d->run_len) {
			d->run_len = COW_MAX(d->run_len, end - d->run_start);
			return 0;
		}
		rc = flush_run(d);
		memcpy(d->pre, key->data, plen);
		d->plen = plen;
		d->run_start = b;
		d->run_len = end - b;
		return rc;
	}
	int rc = flush_run(d);
	cow_diff_entry e = {.kind = !va	  ? COW_DIFF_ADDED
				    : !vb ? COW_DIFF_REMOVED
					  : COW_DIFF_CHANGED,
			    .key = *key};
	if (va)
		e.old_value = *va;
	if (vb)
		e.new_value = *vb;
	return rc ? rc : d->fn(d->ctx, &e);
}

int cow_diff(cow_txn *t, const char *from, const char *to,
	     int (*fn)(void *ctx, const cow_diff_entry *e), void *ctx)
{
	if (!t || !fn)
		return COW_EINVAL;
	struct cow__obj a = {0}, b = {0};
	struct cow__tree ta, tb;
	int rc = resolve(t, from, &a, &ta);
	if (rc == 0)
		rc = resolve(t, to, &b, &tb);
	if (rc)
		return rc;
	if (a.type != b.type)
		return COW_ETYPE;
	struct diffctx d = {
		.type = a.type, .fn = fn, .ctx = ctx, .tx = &t->tx, .ta = &ta, .tb = &tb};
	rc = cow__btree_diff(&t->tx, &ta, &tb, on_diff, &d);
	if (rc == 0)
		rc = flush_run(&d);
	return rc;
}

/* ---- listing ---- */

struct listctx {
	cow_txn *t;
	int (*fn)(void *ctx, const char *name, const char *type, uint64_t count);
	void *ctx;
};

static int list_one(void *ctx, const char *name, const struct cow__obj *o)
{
	struct listctx *l = ctx;
	cow_map *m = cow__obj_find(l->t, name); /* this transaction's changes */
	uint64_t count = m ? (cow__obj_keyed(o->type) ? m->tree.count : m->rec.count) : o->count;
	return l->fn(l->ctx, name, cow__obj_type_name(o->type), count);
}

int cow_store_list(cow_txn *t,
		   int (*fn)(void *ctx, const char *name, const char *type, uint64_t count),
		   void *ctx)
{
	if (!t || !fn)
		return COW_EINVAL;
	struct listctx l = {t, fn, ctx};
	return cow__catalog_each(t, NULL, list_one, &l);
}

/* ---- rename ---- */

/* Clones whose origin is exactly @name. */
struct clones_of {
	const char *origin;
	struct names who;
};

static int collect_clones(void *ctx, const char *name, const struct cow__obj *o)
{
	struct clones_of *c = ctx;
	if (strcmp(o->origin, c->origin) != 0)
		return 0;
	int rc = cow__grow((void **)&c->who.v, &c->who.cap, c->who.n + 1, sizeof(*c->who.v));
	if (rc)
		return rc;
	/* Clones are live objects: their names have no '@' and fit. */
	memcpy(c->who.v[c->who.n++], name, strlen(name) + 1);
	return 0;
}

/*
 * Move catalog entry @from to @to (which must be free) and repoint the
 * clones that hung on it. Open handles follow the name. A failure here
 * leaves half a rename: the caller poisons.
 */
static int move_entry(cow_txn *t, const char *from, const char *to)
{
	cow_map *h = cow__obj_find(t, from);
	int rc = h ? cow__obj_flush(h) : 0; /* the handle's changes go with the record */
	struct cow__obj o = {0};
	if (rc == 0)
		rc = cow__catalog_get(t, from, &o);
	struct clones_of c = {from, {0}};
	if (rc == 0 && (o.flags & OBJF_SNAPSHOT))
		rc = cow__catalog_each(t, NULL, collect_clones, &c);
	if (rc == 0)
		rc = cow__btree_del(&t->tx, &t->catalog, from, strlen(from));
	if (rc == 0)
		rc = cow__catalog_put(t, to, &o);
	for (size_t i = 0; rc == 0 && i < c.who.n; i++)
		rc = set_origin(t, c.who.v[i], to);
	if (rc == 0 && h)
		memcpy(h->name, to, strlen(to) + 1);
	cow__free(c.who.v);
	return rc;
}

/* Refuse before changing anything: @to taken? */
static int name_free(cow_txn *t, const char *to)
{
	struct cow__obj x;
	int rc = cow__catalog_get(t, to, &x);
	return rc == 0 ? COW_EEXIST : rc == COW_ENOTFOUND ? 0 : rc;
}

static int rename_object(cow_txn *t, const char *from, const char *to)
{
	struct cow__obj o = {0};
	int rc = cow__catalog_get(t, from, &o);
	if (rc)
		return rc;
	if (o.flags & OBJF_SNAPSHOT)
		return COW_EINVAL;
	if ((rc = name_free(t, to)))
		return rc;
	char prefix[COW_NAME_MAX + 2];
	snprintf(prefix, sizeof(prefix), "%s@", from);
	struct names ns = {0};
	rc = cow__catalog_each(t, prefix, collect_snaps, &ns);
	for (size_t i = 0; rc == 0 && i < ns.n; i++) {
		char dst[COW_FULLNAME_MAX + 2];
		if ((size_t)snprintf(dst, sizeof(dst), "%s@%s", to, ns.v[i]) > COW_FULLNAME_MAX)
			rc = COW_EINVAL;
		else
			rc = name_free(t, dst);
	}
	/* From here on every failure leaves half a rename. */
	bool changed = rc == 0;
	for (size_t i = 0; rc == 0 && i < ns.n; i++) {
		char src[COW_FULLNAME_MAX + 2], dst[COW_FULLNAME_MAX + 2];
		snprintf(src, sizeof(src), "%s@%s", from, ns.v[i]);
		snprintf(dst, sizeof(dst), "%s@%s", to, ns.v[i]);
		rc = move_entry(t, src, dst);
	}
	if (rc == 0)
		rc = move_entry(t, from, to);
	cow__free(ns.v);
	return changed ? cow__txn_poison(t, rc) : rc;
}

/* "@A" -> "@B": every object's snapshot A, all or nothing. */
static int rename_everywhere(cow_txn *t, const char *a, const char *to)
{
	size_t len;
	int rc = 0;
	if (to[0] != '@' || (rc = cow__name_check(a, false, &len)) ||
	    (rc = cow__name_check(to + 1, false, &len)))
		return rc ? rc : COW_EINVAL;
	struct names ns = {0};
	rc = cow__catalog_each(t, NULL, collect_live, &ns);
	struct names has = {0}; /* the objects that have snapshot A */
	for (size_t i = 0; rc == 0 && i < ns.n; i++) {
		char src[COW_FULLNAME_MAX + 2], dst[COW_FULLNAME_MAX + 2];
		snprintf(src, sizeof(src), "%s@%s", ns.v[i], a);
		if ((size_t)snprintf(dst, sizeof(dst), "%s%s", ns.v[i], to) > COW_FULLNAME_MAX) {
			rc = COW_EINVAL;
			break;
		}
		struct cow__obj x;
		int r = cow__catalog_get(t, src, &x);
		if (r == COW_ENOTFOUND)
			continue;
		rc = r ? r : name_free(t, dst);
		if (rc == 0 &&
		    (rc = cow__grow((void **)&has.v, &has.cap, has.n + 1, sizeof(*has.v))) == 0)
			memcpy(has.v[has.n++], ns.v[i], strlen(ns.v[i]) + 1);
	}
	if (rc == 0 && has.n == 0)
		rc = COW_ENOTFOUND;
	bool changed = rc == 0;
	for (size_t i = 0; rc == 0 && i < has.n; i++) {
		char src[COW_FULLNAME_MAX + 2], dst[COW_FULLNAME_MAX + 2];
		snprintf(src, sizeof(src), "%s@%s", has.v[i], a);
		snprintf(dst, sizeof(dst), "%s%s", has.v[i], to);
		rc = move_entry(t, src, dst);
	}
	cow__free(ns.v);
	cow__free(has.v);
	return changed ? cow__txn_poison(t, rc) : rc;
}

int cow_rename(cow_txn *t, const char *from, const char *to)
{
	int rc = write_check(t);
	if (rc)
		return rc;
	if (!from || !to)
		return COW_EINVAL;
	const char *fat = strchr(from, '@'), *tat = strchr(to, '@');
	if (!fat) { /* an object, with its snapshots */
		size_t len;
		if (tat || (rc = cow__name_check(from, false, &len)) ||
		    (rc = cow__name_check(to, false, &len)))
			return rc ? rc : COW_EINVAL;
		return strcmp(from, to) == 0 ? 0 : rename_object(t, from, to);
	}
	/* A snapshot stays under its object: NAME@A -> NAME@B, or "@B" for short. */
	char obj[COW_NAME_MAX + 1], full[COW_FULLNAME_MAX + 2];
	const char *snap;
	if (fat == from) /* "@A" -> "@B": that snapshot of every object */
		return rename_everywhere(t, from + 1, to);
	if ((rc = split_name(from, obj, &snap)))
		return rc;
	if (!tat)
		return COW_EINVAL;
	if (tat == to) {
		if ((size_t)snprintf(full, sizeof(full), "%s%s", obj, to) > COW_FULLNAME_MAX)
			return COW_EINVAL;
		to = full;
		tat = strchr(to, '@');
	}
	size_t len;
	if ((size_t)(tat - to) != strlen(obj) || memcmp(to, obj, strlen(obj)) != 0 ||
	    (rc = cow__name_check(to, true, &len)))
		return rc ? rc : COW_EINVAL; /* a snapshot cannot move to another object */
	if (strcmp(from, to) == 0)
		return 0;
	struct cow__obj o = {0};
	if ((rc = cow__catalog_get(t, from, &o)))
		return rc;
	if ((rc = name_free(t, to)))
		return rc;
	return cow__txn_poison(t, move_entry(t, from, to));
}
