/*
 * The catalog (names -> object records), open-object handles, and maps:
 * named ordered key-value objects, each its own copy-on-write tree. A handle
 * lives in its transaction; changes go to the handle's tree, and commit (or
 * an operation that needs the record current, like a snapshot) writes the new
 * root back into the catalog.
 */
#include "base/base.h"
#include "store/store.h"

static int check_part(const char *p, size_t n)
{
	if (n == 0 || n > COW_NAME_MAX)
		return COW_EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch == '@' || ch == '/' || ch < 0x20 || ch == 0x7f)
			return COW_EINVAL;
	}
	return 0;
}

int cow__name_check(const char *name, bool snapshot_ok, size_t *len)
{
	if (!name)
		return COW_EINVAL;
	size_t n = strlen(name);
	const char *at = memchr(name, '@', n);
	int rc;
	if (!at)
		rc = check_part(name, n);
	else if (!snapshot_ok)
		rc = COW_EINVAL;
	else if ((rc = check_part(name, (size_t)(at - name))) == 0)
		rc = check_part(at + 1, n - (size_t)(at - name) - 1);
	if (rc == 0)
		*len = n;
	return rc;
}

int cow__catalog_get(cow_txn *t, const char *name, struct cow__obj *o)
{
	cow_buf v;
	int rc = cow__btree_get(&t->tx, &t->catalog, name, strlen(name), &v);
	if (rc)
		return rc;
	return cow__obj_decode(v.data, v.len, o);
}

int cow__catalog_put(cow_txn *t, const char *name, const struct cow__obj *o)
{
	uint8_t rec[CAT_FIXED + COW_FULLNAME_MAX];
	size_t len = cow__obj_encode(o, rec);
	return cow__txn_poison(t, cow__btree_put(&t->tx, &t->catalog, name, strlen(name), rec, len));
}

cow_map *cow__obj_find(cow_txn *t, const char *name)
{
	for (cow_map *m = t->maps; m; m = m->next)
		if (!m->dropped && m->renewal == t->renewals && strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

int cow__obj_flush(cow_map *m)
{
	if (m->dropped || m->readonly || m->tree.mods == m->clean_mods)
		return 0;
	cow_txn *t = m->txn;
	int rc = cow__btree_finalize(&t->tx, &m->tree);
	if (rc)
		return cow__txn_poison(t, rc);
	m->rec.root = m->tree.root;
	m->rec.blocks = (uint64_t)m->tree.blocks;
	m->rec.shared_gen = m->tree.shared_gen;
	if (cow__obj_keyed(m->rec.type))
		m->rec.count = m->tree.count;
	rc = cow__catalog_put(t, m->name, &m->rec);
	if (rc == 0)
		m->clean_mods = m->tree.mods;
	return rc;
}

int cow__obj_open(cow_txn *t, const char *name, int type, cow_map **out)
{
	size_t len;
	int rc = cow__txn_check(t, false);
	if (rc || !out)
		return rc ? rc : COW_EINVAL;
	rc = cow__name_check(name, true, &len);
	if (rc)
		return rc;
	cow_map *m = cow__obj_find(t, name);
	if (m) {
		if (type && m->rec.type != type)
			return COW_ETYPE;
		*out = m;
		return 0;
	}
	struct cow__obj o = {0};
	rc = cow__catalog_get(t, name, &o);
	if (rc)
		return rc;
	if (type && o.type != type)
		return COW_ETYPE;
	m = cow__calloc(1, sizeof(*m));
	if (!m)
		return COW_ENOMEM;
	m->txn = t;
	m->renewal = t->renewals;
	memcpy(m->name, name, len + 1);
	m->rec = o;
	m->tree.root = o.root;
	m->tree.count = cow__obj_keyed(o.type) ? o.count : 0;
	m->tree.shared_gen = o.shared_gen;
	m->tree.blocks = (int64_t)o.blocks;
	m->clean_mods = m->tree.mods;
	m->readonly = !t->write || (o.flags & OBJF_SNAPSHOT);
	m->next = t->maps;
	t->maps = m;
	*out = m;
	return 0;
}

int cow__obj_create(cow_txn *t, const char *name, int type, uint64_t count)
{
	size_t len;
	int rc = cow__txn_check(t, true);
	if (rc)
		return rc;
	rc = cow__name_check(name, false, &len);
	if (rc)
		return rc;
	struct cow__obj o = {0};
	rc = cow__catalog_get(t, name, &o);
	if (rc == 0)
		return COW_EEXIST;
	if (rc != COW_ENOTFOUND)
		return rc;
	o = (struct cow__obj){
		.type = type, .id = t->s->next_id++, .count = count, .created = t->tx.gen};
	cow__guid(o.guid);
	return cow__catalog_put(t, name, &o);
}

int cow_map_create(cow_txn *t, const char *name)
{
	return cow__obj_create(t, name, OBJ_MAP, 0);
}

int cow_map_drop(cow_txn *t, const char *name)
{
	cow_map *m;
	int rc = cow__obj_open(t, name, OBJ_MAP, &m);
	if (rc)
		return rc;
	if (m->rec.flags & OBJF_SNAPSHOT)
		return COW_EINVAL; /* snapshots go with cow_destroy() */
	return cow_destroy(t, name, 0);
}

int cow_map_open(cow_txn *t, const char *name, cow_map **out)
{
	return cow__obj_open(t, name, OBJ_MAP, out);
}

static int map_check_slow(cow_map *m, bool write)
{
	if (!m)
		return COW_EINVAL;
	int rc = cow__txn_check(m->txn, write && !m->readonly);
	if (rc)
		return rc;
	if (m->renewal != m->txn->renewals)
		return COW_EINVAL; /* opened before the transaction was reset */
	if (m->dropped)
		return COW_ENOTFOUND;
	if (write && m->readonly)
		return COW_EREADONLY;
	return 0;
}

/*
 * Every get, put and cursor step passes here, so the common case is a few
 * loads. Reads do not look at the fork epoch: a transaction that crossed
 * fork() is refused when its objects are opened, and at every write.
 */
static inline __attribute__((always_inline)) int map_check(cow_map *m, bool write)
{
	if (m && !m->dropped && !m->txn->blocked && !write) /* a reset drops every handle */
		return 0;
	return map_check_slow(m, write);
}

int cow_map_get(cow_map *m, const void *key, size_t klen, cow_buf *val)
{
	int rc = map_check(m, false);
	if (rc)
		return rc;
	if (!val || klen == 0 || klen > COW_KEY_MAX)
		return COW_EINVAL;
	return cow__btree_get(&m->txn->tx, &m->tree, key, klen, val);
}

int cow_map_put(cow_map *m, const void *key, size_t klen, const void *val, size_t vlen)
{
	int rc = map_check(m, true);
	if (rc)
		return rc;
	if (klen == 0 || klen > COW_KEY_MAX || (!val && vlen))
		return COW_EINVAL;
	return cow__txn_poison(m->txn,
			       cow__btree_put(&m->txn->tx, &m->tree, key, klen, val ? val : "", vlen));
}

int cow_map_del(cow_map *m, const void *key, size_t klen)
{
	int rc = map_check(m, true);
	if (rc)
		return rc;
	if (klen == 0 || klen > COW_KEY_MAX)
		return COW_EINVAL;
	rc = cow__btree_del(&m->txn->tx, &m->tree, key, klen);
	return rc == COW_ENOTFOUND ? rc : cow__txn_poison(m->txn, rc); /* absent: nothing changed */
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

static inline __attribute__((always_inline)) int cur_check(cow_cursor *c)
{
	if (c && !c->map->dropped && !c->map->txn->blocked) /* every step of a scan */
		return 0;
	return c ? map_check_slow(c->map, false) : COW_EINVAL;
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
