/*
 * The catalog (names -> object records) and maps: named ordered key-value
 * objects, each its own copy-on-write tree. A map handle lives in its
 * transaction; changes go to the map's tree, and commit writes the new root
 * back into the catalog.
 */
#include "base/base.h"
#include "store/store.h"

static int check_name(const char *name, size_t *len)
{
	if (!name)
		return COW_EINVAL;
	size_t n = strlen(name);
	if (n == 0 || n > COW_NAME_MAX)
		return COW_EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch == '@' || ch == '/' || ch < 0x20 || ch == 0x7f)
			return COW_EINVAL;
	}
	*len = n;
	return 0;
}

static int catalog_get(cow_txn *t, const char *name, size_t len, struct cow__obj *o)
{
	cow_buf v;
	int rc = cow__btree_get(&t->tx, &t->catalog, name, len, &v);
	if (rc)
		return rc;
	return cow__obj_decode(v.data, v.len, o);
}

/* A hard error inside a write transaction: only abort remains. */
static int fail(cow_txn *t, int rc)
{
	if (rc && rc != COW_ENOTFOUND && rc != COW_EINVAL && rc != COW_EEXIST && rc != COW_ETYPE &&
	    rc != COW_EREADONLY && rc != COW_ETOOBIG && !t->err)
		t->err = rc;
	return rc;
}

static cow_map *find_open(cow_txn *t, const char *name)
{
	for (cow_map *m = t->maps; m; m = m->next)
		if (!m->dropped && strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

int cow_map_create(cow_txn *t, const char *name)
{
	size_t len;
	if (!t)
		return COW_EINVAL;
	if (!t->write)
		return COW_EREADONLY;
	if (t->err)
		return COW_ETXNERR;
	int rc = check_name(name, &len);
	if (rc)
		return rc;
	struct cow__obj o = {0};
	rc = catalog_get(t, name, len, &o);
	if (rc == 0)
		return COW_EEXIST;
	if (rc != COW_ENOTFOUND)
		return fail(t, rc);
	o = (struct cow__obj){OBJ_MAP, t->s->next_id++, {0, 0, 0}, 0, t->tx.gen};
	uint8_t rec[CAT_REC];
	cow__obj_encode(&o, rec);
	return fail(t, cow__btree_put(&t->tx, &t->catalog, name, len, rec, CAT_REC));
}

int cow_map_open(cow_txn *t, const char *name, cow_map **out)
{
	size_t len;
	if (!t || !out)
		return COW_EINVAL;
	if (t->err)
		return COW_ETXNERR;
	int rc = check_name(name, &len);
	if (rc)
		return rc;
	cow_map *m = find_open(t, name);
	if (m) {
		*out = m;
		return 0;
	}
	struct cow__obj o = {0};
	rc = catalog_get(t, name, len, &o);
	if (rc)
		return rc == COW_ENOTFOUND ? rc : fail(t, rc);
	if (o.type != OBJ_MAP)
		return COW_ETYPE;
	m = cow__calloc(1, sizeof(*m));
	if (!m)
		return COW_ENOMEM;
	m->txn = t;
	memcpy(m->name, name, len + 1);
	m->tree.root = o.root;
	m->tree.count = o.count;
	m->id = o.id;
	m->created = o.created;
	m->clean_mods = m->tree.mods;
	m->next = t->maps;
	t->maps = m;
	*out = m;
	return 0;
}

int cow_map_drop(cow_txn *t, const char *name)
{
	size_t len;
	if (!t)
		return COW_EINVAL;
	if (!t->write)
		return COW_EREADONLY;
	if (t->err)
		return COW_ETXNERR;
	int rc = check_name(name, &len);
	if (rc)
		return rc;
	struct cow__obj o = {0};
	rc = catalog_get(t, name, len, &o);
	if (rc)
		return rc == COW_ENOTFOUND ? rc : fail(t, rc);
	if (o.type != OBJ_MAP)
		return COW_ETYPE;
	cow_map *m = find_open(t, name);
	struct cow__tree tree = {.root = o.root, .count = o.count};
	struct cow__tree *tp = m ? &m->tree : &tree; /* the open handle has the newest root */
	rc = cow__btree_destroy(&t->tx, tp);
	if (rc)
		return fail(t, rc);
	if (m)
		m->dropped = true;
	return fail(t, cow__btree_del(&t->tx, &t->catalog, name, len));
}

static int map_check(cow_map *m, bool write)
{
	if (!m)
		return COW_EINVAL;
	if (m->dropped)
		return COW_ENOTFOUND;
	if (m->txn->err)
		return COW_ETXNERR;
	if (write && !m->txn->write)
		return COW_EREADONLY;
	return 0;
}

int cow_map_get(cow_map *m, const void *key, size_t klen, cow_buf *val)
{
	int rc = map_check(m, false);
	if (rc)
		return rc;
	if (!val || klen == 0 || klen > COW_KEY_MAX)
		return COW_EINVAL;
	rc = cow__btree_get(&m->txn->tx, &m->tree, key, klen, val);
	return m->txn->write ? fail(m->txn, rc) : rc;
}

int cow_map_put(cow_map *m, const void *key, size_t klen, const void *val, size_t vlen)
{
	int rc = map_check(m, true);
	if (rc)
		return rc;
	if (klen == 0 || klen > COW_KEY_MAX || (!val && vlen))
		return COW_EINVAL;
	return fail(m->txn, cow__btree_put(&m->txn->tx, &m->tree, key, klen, val ? val : "", vlen));
}

int cow_map_del(cow_map *m, const void *key, size_t klen)
{
	int rc = map_check(m, true);
	if (rc)
		return rc;
	if (klen == 0 || klen > COW_KEY_MAX)
		return COW_EINVAL;
	return fail(m->txn, cow__btree_del(&m->txn->tx, &m->tree, key, klen));
}

uint64_t cow_map_count(const cow_map *m)
{
	return m && !m->dropped ? m->tree.count : 0;
}

/* ---- cursors ---- */

int cow_cursor_open(cow_map *m, cow_cursor **out)
{
	int rc = map_check(m, false);
	if (rc)
		return rc;
	if (!out)
		return COW_EINVAL;
	cow_cursor *c = cow__calloc(1, sizeof(*c));
	if (!c)
		return COW_ENOMEM;
	cow__cursor_init(&c->c, &m->txn->tx, &m->tree);
	c->map = m;
	c->next = m->txn->cursors;
	m->txn->cursors = c;
	*out = c;
	return 0;
}

void cow_cursor_close(cow_cursor *c)
{
	if (!c)
		return;
	cow_txn *t = c->map->txn;
	for (cow_cursor **pp = &t->cursors; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			cow__free(c);
			return;
		}
}

static int cur_check(cow_cursor *c)
{
	if (!c)
		return COW_EINVAL;
	return map_check(c->map, false);
}

#define CURSOR_CALL(expr)                                                                  \
	do {                                                                               \
		int rc_ = cur_check(c);                                                    \
		if (rc_)                                                                   \
			return rc_;                                                        \
		return (expr);                                                             \
	} while (0)

int cow_cursor_first(cow_cursor *c)
{
	CURSOR_CALL(cow__cursor_first(&c->c));
}

int cow_cursor_last(cow_cursor *c)
{
	CURSOR_CALL(cow__cursor_last(&c->c));
}

int cow_cursor_seek(cow_cursor *c, const void *key, size_t klen)
{
	if (klen > COW_KEY_MAX)
		return COW_EINVAL;
	CURSOR_CALL(cow__cursor_seek(&c->c, key, klen));
}

int cow_cursor_next(cow_cursor *c)
{
	CURSOR_CALL(cow__cursor_next(&c->c));
}

int cow_cursor_prev(cow_cursor *c)
{
	CURSOR_CALL(cow__cursor_prev(&c->c));
}

int cow_cursor_get(cow_cursor *c, cow_buf *key, cow_buf *val)
{
	CURSOR_CALL(cow__cursor_get(&c->c, key, val));
}

/* ---- listing ---- */

int cow_store_list(cow_txn *t, int (*fn)(void *ctx, const char *name, const char *type,
					 uint64_t count),
		   void *ctx)
{
	if (!t || !fn)
		return COW_EINVAL;
	struct cow__cursor c;
	cow__cursor_init(&c, &t->tx, &t->catalog);
	int rc = cow__cursor_first(&c);
	while (rc == 0) {
		cow_buf k, v;
		rc = cow__cursor_get(&c, &k, &v);
		if (rc)
			break;
		struct cow__obj o = {0};
		rc = cow__obj_decode(v.data, v.len, &o);
		if (rc)
			break;
		char name[COW_NAME_MAX + 1];
		size_t n = COW_MIN(k.len, (size_t)COW_NAME_MAX);
		memcpy(name, k.data, n);
		name[n] = 0;
		cow_map *m = find_open(t, name); /* this transaction's changes */
		uint64_t count = m ? m->tree.count : o.count;
		rc = fn(ctx, name, o.type == OBJ_MAP ? "map" : "volume", count);
		if (rc)
			return rc;
		rc = cow__cursor_next(&c);
	}
	return rc == COW_ENOTFOUND ? 0 : rc;
}
