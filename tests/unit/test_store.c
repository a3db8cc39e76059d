/* Store basics: maps, values inline and in extents, cursors, persistence, errors. */
#include <stdlib.h>

#include "check.h"
#include "cow/store.h"
#include "btree/btree.h"
#include "store/store.h"
#include "base/base.h"

static cow_store *open_store(const char *path, unsigned flags)
{
	cow_store *s;
	cow_store_options o = {flags};
	CHECK_OK(cow_store_open(path, &o, &s));
	return s;
}

static void put_str(cow_map *m, const char *k, const char *v)
{
	CHECK_OK(cow_map_put(m, k, strlen(k), v, strlen(v)));
}

static void expect(cow_map *m, const char *k, const char *v)
{
	cow_buf b;
	CHECK_OK(cow_map_get(m, k, strlen(k), &b));
	CHECK_EQ(b.len, strlen(v));
	CHECK_MEMEQ(b.data, v, b.len);
}

static void test_basic(void)
{
	const char *path = check_path("basic.cow");
	cow_store *s;
	CHECK_RC(cow_store_open(path, NULL, &s), COW_ENOENT);
	s = open_store(path, COW_STORE_CREATE);
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "users"));
	CHECK_RC(cow_map_create(t, "users"), COW_EEXIST);
	CHECK_RC(cow_map_create(t, "a@b"), COW_EINVAL);
	CHECK_RC(cow_map_create(t, ""), COW_EINVAL);
	cow_map *m;
	CHECK_RC(cow_map_open(t, "nope", &m), COW_ENOTFOUND);
	CHECK_OK(cow_map_open(t, "users", &m));
	put_str(m, "alice", "1");
	put_str(m, "bob", "2");
	put_str(m, "alice", "one"); /* replace */
	expect(m, "alice", "one");
	CHECK_EQ(cow_map_count(m), 2);
	CHECK_RC(cow_map_put(m, "", 0, "x", 1), COW_EINVAL);
	char big[COW_KEY_MAX + 1];
	memset(big, 'k', sizeof(big));
	CHECK_RC(cow_map_put(m, big, sizeof(big), "x", 1), COW_EINVAL);
	CHECK_OK(cow_map_put(m, big, COW_KEY_MAX, "x", 1)); /* the longest key */
	CHECK_OK(cow_txn_commit(t));
	uint64_t gen1;

	/* A read transaction sees the commit; writes are refused. */
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	gen1 = cow_txn_gen(t);
	CHECK_OK(cow_map_open(t, "users", &m));
	expect(m, "bob", "2");
	CHECK_RC(cow_map_put(m, "x", 1, "y", 1), COW_EREADONLY);
	cow_buf b;
	CHECK_RC(cow_map_get(m, "carol", 5, &b), COW_ENOTFOUND);
	cow_txn_abort(t);

	/* Abort discards. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "users", &m));
	put_str(m, "carol", "3");
	CHECK_OK(cow_map_del(m, "bob", 3));
	cow_txn_abort(t);
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_EQ(cow_txn_gen(t), gen1);
	CHECK_OK(cow_map_open(t, "users", &m));
	CHECK_RC(cow_map_get(m, "carol", 5, &b), COW_ENOTFOUND);
	expect(m, "bob", "2");
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);

	/* Reopen: everything committed is there. */
	s = open_store(path, 0);
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "users", &m));
	expect(m, "alice", "one");
	CHECK_EQ(cow_map_count(m), 3);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);

	/* Not a store. */
	const char *junk = check_path("junk");
	FILE *f = fopen(junk, "w");
	for (int i = 0; i < 8192; i++)
		fputc('j', f);
	fclose(f);
	CHECK_RC(cow_store_open(junk, NULL, &s), COW_EFORMAT);
	cow_store_options excl = {COW_STORE_CREATE | COW_STORE_EXCL};
	CHECK_RC(cow_store_open(path, &excl, &s), COW_EEXIST);
}

static void key_of(char *k, int i)
{
	snprintf(k, 32, "key%08d", i);
}

static void test_many_and_cursors(void)
{
	const char *path = check_path("many.cow");
	cow_store *s = open_store(path, COW_STORE_CREATE);
	cow_txn *t;
	cow_map *m;
	const int N = 20000;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_map_open(t, "m", &m));
	char k[32], v[64];
	for (int i = 0; i < N; i++) {
		int j = (int)((i * 7919LL) % N); /* a permutation */
		key_of(k, j);
		snprintf(v, sizeof(v), "value-%d", j);
		CHECK_OK(cow_map_put(m, k, strlen(k), v, strlen(v)));
	}
	CHECK_OK(cow__btree_verify(&t->tx, &m->tree));
	CHECK_OK(cow_txn_commit(t));

	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow__btree_verify(&t->tx, &m->tree));
	CHECK_GE(cow__btree_depth(&t->tx, &m->tree), 2);
	cow_cursor *c;
	CHECK_OK(cow_cursor_open(m, &c));
	int i = 0;
	for (int rc = cow_cursor_first(c); rc == 0; rc = cow_cursor_next(c), i++) {
		cow_buf kb, vb;
		CHECK_OK(cow_cursor_get(c, &kb, &vb));
		key_of(k, i);
		CHECK_EQ(kb.len, strlen(k));
		CHECK_MEMEQ(kb.data, k, kb.len);
	}
	CHECK_EQ(i, N);
	i = N - 1;
	for (int rc = cow_cursor_last(c); rc == 0; rc = cow_cursor_prev(c), i--) {
		cow_buf kb;
		CHECK_OK(cow_cursor_get(c, &kb, NULL));
		key_of(k, i);
		CHECK_MEMEQ(kb.data, k, kb.len);
	}
	CHECK_EQ(i, -1);
	/* seek: exact, between, past the end */
	key_of(k, 777);
	CHECK_OK(cow_cursor_seek(c, k, strlen(k)));
	cow_buf kb;
	CHECK_OK(cow_cursor_get(c, &kb, NULL));
	CHECK_MEMEQ(kb.data, k, kb.len);
	CHECK_OK(cow_cursor_seek(c, "key00000777x", 12));
	CHECK_OK(cow_cursor_get(c, &kb, NULL));
	key_of(k, 778);
	CHECK_MEMEQ(kb.data, k, kb.len);
	CHECK_RC(cow_cursor_seek(c, "zzz", 3), COW_ENOTFOUND);
	CHECK_RC(cow_cursor_get(c, &kb, NULL), COW_ENOTFOUND);
	CHECK_OK(cow_cursor_seek(c, "a", 1));
	CHECK_OK(cow_cursor_get(c, &kb, NULL));
	key_of(k, 0);
	CHECK_MEMEQ(kb.data, k, kb.len);
	cow_cursor_close(c);
	cow_txn_abort(t);

	/* Delete every other key, then all: the tree shrinks back to nothing. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_cursor_open(m, &c));
	CHECK_OK(cow_cursor_first(c));
	/* Deleting under a cursor: it re-finds its place. */
	for (int j = 0; j < N; j += 2) {
		key_of(k, j);
		CHECK_OK(cow_map_del(m, k, strlen(k)));
	}
	CHECK_RC(cow_map_del(m, "key00000000", 11), COW_ENOTFOUND);
	CHECK_OK(cow_cursor_next(c));
	CHECK_OK(cow_cursor_get(c, &kb, NULL));
	key_of(k, 1);
	CHECK_MEMEQ(kb.data, k, kb.len);
	CHECK_OK(cow__btree_verify(&t->tx, &m->tree));
	CHECK_EQ(cow_map_count(m), N / 2);
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));

	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	for (int j = 1; j < N; j += 2) {
		key_of(k, j);
		CHECK_OK(cow_map_del(m, k, strlen(k)));
	}
	CHECK_EQ(cow_map_count(m), 0);
	CHECK_OK(cow__btree_verify(&t->tx, &m->tree));
	CHECK_EQ(m->tree.root.addr, 0);
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));

	/* Drop the map; its name is free again. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_drop(t, "m"));
	CHECK_RC(cow_map_open(t, "m", &m), COW_ENOTFOUND);
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
}

static void test_large_values(void)
{
	const char *path = check_path("large.cow");
	cow_store *s = open_store(path, COW_STORE_CREATE);
	cow_txn *t;
	cow_map *m;
	size_t sizes[] = {0, 1, 1200, 1292, 1293, 4096, 4097, 100000, 64u << 20};
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "blobs"));
	CHECK_OK(cow_map_open(t, "blobs", &m));
	uint8_t *buf = malloc(64u << 20);
	for (size_t i = 0; i < COW_ARRAY_SIZE(sizes); i++) {
		for (size_t j = 0; j < sizes[i]; j++)
			buf[j] = (uint8_t)(j * 31 + i);
		char k[16];
		snprintf(k, sizeof(k), "v%02zu", i);
		CHECK_OK(cow_map_put(m, k, strlen(k), buf, sizes[i]));
	}
	CHECK_OK(cow_txn_commit(t));
	cow_store_close(s);

	s = open_store(path, 0);
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "blobs", &m));
	for (size_t i = 0; i < COW_ARRAY_SIZE(sizes); i++) {
		for (size_t j = 0; j < sizes[i]; j++)
			buf[j] = (uint8_t)(j * 31 + i);
		char k[16];
		snprintf(k, sizeof(k), "v%02zu", i);
		cow_buf v;
		CHECK_OK(cow_map_get(m, k, strlen(k), &v));
		CHECK_EQ(v.len, sizes[i]);
		CHECK(memcmp(v.data, buf, sizes[i]) == 0);
	}
	cow_txn_abort(t);
	/* Replace and delete large values: their extents are freed. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "blobs", &m));
	CHECK_OK(cow_map_put(m, "v08", 3, "small", 5));
	CHECK_OK(cow_map_del(m, "v07", 3));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_GE(st.file_bytes, 64u << 20);
	/* The 64 MiB extent is pending or free now, not in use. */
	CHECK_LT(st.used_bytes, 1u << 20);
	free(buf);
	cow_store_close(s);
}

/*
 * A refusal made before anything changes leaves the transaction usable; a
 * mutation that fails part-way poisons it, so only abort remains.
 */
static void test_poison(void)
{
	const char *path = check_path("poison.cow");
	cow_store *s = open_store(path, COW_STORE_CREATE);
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_map_open(t, "m", &m));
	put_str(m, "a", "1");
	CHECK_OK(cow_snapshot(t, "m@s"));
	/* Refusals: the transaction goes on. */
	CHECK_RC(cow_map_put(m, "", 0, "x", 1), COW_EINVAL);
	CHECK_RC(cow_map_del(m, "nope", 4), COW_ENOTFOUND);
	CHECK_RC(cow_map_create(t, "m"), COW_EEXIST);
	CHECK_RC(cow_snapshot(t, "m@s"), COW_EEXIST);
	CHECK_RC(cow_clone(t, "m@s", "m"), COW_EEXIST);
	CHECK_RC(cow_clone(t, "m@nope", "c"), COW_ENOTFOUND);
	CHECK_RC(cow_destroy(t, "m", 0), COW_EBUSY); /* has a snapshot */
	CHECK_RC(cow_destroy(t, "nope", 0), COW_ENOTFOUND);
	put_str(m, "b", "2");
	CHECK_OK(cow_txn_commit(t));

	/* A put whose allocation fails half-way: poisoned. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	int rc = 0;
	char big[3000];
	memset(big, 'v', sizeof(big));
	for (int i = 0; rc == 0 && i < 1000; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%04d", i);
		if (i == 500)
			check_alloc_fail_at(1, 1);
		rc = cow_map_put(m, k, strlen(k), big, sizeof(big));
	}
	check_alloc_fail_at(0, 0);
	CHECK_RC(rc, COW_ENOMEM);
	CHECK_RC(cow_map_put(m, "c", 1, "3", 1), COW_ETXNERR);
	cow_buf v;
	CHECK_RC(cow_map_get(m, "a", 1, &v), COW_ETXNERR);
	CHECK_RC(cow_txn_commit(t), COW_ETXNERR);
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_EQ(cow_map_count(m), 2); /* nothing of the failed transaction */
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
}

int main(void)
{
	test_basic();
	test_many_and_cursors();
	test_large_values();
	test_poison();
	return 0;
}
