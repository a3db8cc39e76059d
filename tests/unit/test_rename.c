/*
 * Renaming objects and snapshots the way zfs rename does, and read
 * transactions that reset and renew (LMDB's mdb_txn_reset/renew).
 */
#include "check.h"
#include "store/store.h"

static cow_store *s;

static cow_txn *wbegin(void)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	return t;
}

static void put(cow_txn *t, const char *map, const char *k, const char *v)
{
	cow_map *m;
	CHECK_OK(cow_map_open(t, map, &m));
	CHECK_OK(cow_map_put(m, k, strlen(k), v, strlen(v)));
}

static void expect(cow_txn *t, const char *map, const char *k, const char *v)
{
	cow_map *m;
	CHECK_OK(cow_map_open(t, map, &m));
	cow_buf b;
	CHECK_OK(cow_map_get(m, k, strlen(k), &b));
	CHECK_EQ(b.len, strlen(v));
	CHECK_MEMEQ(b.data, v, b.len);
}

static bool exists(cow_txn *t, const char *name)
{
	cow_obj_stats st;
	int rc = cow_obj_stat(t, name, 0, &st);
	CHECK(rc == 0 || rc == COW_ENOTFOUND);
	return rc == 0;
}

static void test_rename(void)
{
	cow_txn *t = wbegin();
	CHECK_OK(cow_map_create(t, "users"));
	put(t, "users", "alice", "1");
	CHECK_OK(cow_snapshot(t, "users@mon"));
	put(t, "users", "alice", "2");
	CHECK_OK(cow_snapshot(t, "users@tue"));
	CHECK_OK(cow_clone(t, "users@mon", "scratch"));
	CHECK_OK(cow_map_create(t, "other"));
	CHECK_OK(cow_snapshot(t, "other@mon"));
	CHECK_OK(cow_txn_commit(t));

	/* Refusals change nothing, and the transaction goes on. */
	t = wbegin();
	CHECK_RC(cow_rename(t, "users", "other"), COW_EEXIST);
	CHECK_RC(cow_rename(t, "nope", "x"), COW_ENOTFOUND);
	CHECK_RC(cow_rename(t, "users@mon", "other@mon2"), COW_EINVAL); /* another object */
	CHECK_RC(cow_rename(t, "users@mon", "users@tue"), COW_EEXIST);
	CHECK_RC(cow_rename(t, "users", "u@x"), COW_EINVAL);
	CHECK_RC(cow_rename(t, "users@mon", "plain"), COW_EINVAL);
	CHECK_RC(cow_rename(t, "users", "bad/name"), COW_EINVAL);

	/* An object moves with its snapshots; its clone keeps its origin; handles follow. */
	cow_map *h;
	CHECK_OK(cow_map_open(t, "users", &h));
	CHECK_OK(cow_map_put(h, "bob", 3, "b", 1)); /* unflushed: must move too */
	CHECK_OK(cow_rename(t, "users", "people"));
	CHECK_OK(cow_map_put(h, "carol", 5, "c", 1)); /* the handle follows the name */
	CHECK(!exists(t, "users"));
	CHECK(!exists(t, "users@mon"));
	CHECK(exists(t, "people@mon") && exists(t, "people@tue"));
	CHECK_OK(cow_txn_commit(t));

	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	expect(t, "people", "alice", "2");
	expect(t, "people", "bob", "b");
	expect(t, "people", "carol", "c");
	expect(t, "people@mon", "alice", "1");
	cow_obj_stats st;
	CHECK_OK(cow_obj_stat(t, "scratch", 0, &st));
	CHECK_STREQ(st.origin, "people@mon");
	cow_txn_abort(t);

	/* A snapshot within its object, short and long form; the clone follows. */
	t = wbegin();
	CHECK_OK(cow_rename(t, "people@mon", "@monday"));
	CHECK_OK(cow_rename(t, "people@tue", "people@tuesday"));
	CHECK_OK(cow_obj_stat(t, "scratch", 0, &st));
	CHECK_STREQ(st.origin, "people@monday");
	/* The origin stays protected under its new name. */
	CHECK_RC(cow_destroy(t, "people@monday", 0), COW_EBUSY);
	CHECK_OK(cow_txn_commit(t));

	/* One snapshot of every object that has it, all or nothing. */
	t = wbegin();
	CHECK_OK(cow_snapshot(t, "people@mon"));
	CHECK_RC(cow_rename(t, "@mon", "@monday"), COW_EEXIST); /* people@monday exists */
	CHECK(exists(t, "other@mon"));
	CHECK_OK(cow_rename(t, "@mon", "@weekstart"));
	CHECK(exists(t, "other@weekstart") && exists(t, "people@weekstart"));
	CHECK(!exists(t, "other@mon"));
	CHECK_RC(cow_rename(t, "@nothing", "@x"), COW_ENOTFOUND);
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));

	/* It all survives a reopen. */
	cow_store_close(s);
	CHECK_OK(cow_store_open(check_path("r.cow"), NULL, &s));
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	expect(t, "people@monday", "alice", "1");
	expect(t, "people@tuesday", "alice", "2");
	expect(t, "scratch", "alice", "1");
	CHECK_OK(cow_obj_stat(t, "scratch", 0, &st));
	CHECK_STREQ(st.origin, "people@monday");
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
}

static void test_renew(void)
{
	cow_txn *r, *t = wbegin();
	put(t, "people", "k", "old");
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &r));
	uint64_t g1 = cow_txn_gen(r);
	cow_map *m;
	CHECK_OK(cow_map_open(r, "people", &m));

	t = wbegin();
	put(t, "people", "k", "new");
	CHECK_OK(cow_txn_commit(t));
	expect(r, "people", "k", "old"); /* still its generation */

	cow_txn_reset(r);
	cow_buf b;
	CHECK_RC(cow_map_get(m, "k", 1, &b), COW_EINVAL);    /* stale handle */
	CHECK_RC(cow_map_open(r, "people", &m), COW_EINVAL); /* renew first */
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_EQ(st.readers, 0);			   /* the reset let go of its pin */
	CHECK_RC(cow_txn_renew(t = wbegin()), COW_EINVAL); /* not a reset read txn */
	cow_txn_abort(t);

	CHECK_OK(cow_txn_renew(r));
	CHECK_GT(cow_txn_gen(r), g1);
	expect(r, "people", "k", "new");
	CHECK_RC(cow_txn_renew(r), COW_EINVAL); /* not reset */
	for (int i = 0; i < 1000; i++) {	/* a service loop: no allocation, no churn */
		cow_txn_reset(r);
		CHECK_OK(cow_txn_renew(r));
	}
	expect(r, "people", "k", "new");
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_EQ(st.readers, 1);
	cow_txn_abort(r);
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_EQ(st.readers, 0);
}

int main(void)
{
	CHECK_OK(cow_store_open(check_path("r.cow"), &(cow_store_options){COW_STORE_CREATE}, &s));
	test_rename();
	test_renew();
	cow_store_close(s);
	return 0;
}
