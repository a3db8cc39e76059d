/*
 * Tour step: snapshots by path copying. A map with many keys is
 * snapshotted; then one key changes: the write copies only the path from the
 * root to that key's leaf, the diff finds exactly that key without reading
 * the whole tree, and the snapshot still answers with the old value.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cow/store.h"
#include "tour.h"

struct stream {
	char *p;
	size_t n, cap, pos;
	double ms;
};

static int to_mem(void *ctx, const void *buf, size_t len)
{
	struct stream *st = ctx;
	if (st->n + len > st->cap) {
		size_t cap = (st->n + len) * 2;
		char *p = realloc(st->p, cap);
		if (!p)
			return COW_ENOMEM;
		st->p = p;
		st->cap = cap;
	}
	memcpy(st->p + st->n, buf, len);
	st->n += len;
	return 0;
}

static int from_mem(void *ctx, void *buf, size_t len)
{
	struct stream *st = ctx;
	size_t k = st->n - st->pos < len ? st->n - st->pos : len;
	memcpy(buf, st->p + st->pos, k);
	st->pos += k;
	return (int)k;
}

/* cow send SNAP [-i BASE] | cow recv users, in memory; times both. */
static int ship(cow_store *from, cow_store *to, const char *snap, const char *base,
		struct stream *st)
{
	double t0 = tour_now_ms();
	cow_txn *t;
	int rc = cow_txn_begin(from, COW_TXN_RDONLY, &t);
	if (rc)
		return rc;
	rc = cow_send(t, snap, base, to_mem, st);
	cow_txn_abort(t);
	if (rc == 0)
		rc = cow_txn_begin(to, 0, &t);
	if (rc)
		return rc;
	st->pos = 0;
	rc = cow_recv(t, "users", from_mem, st, NULL, 0);
	if (rc == 0)
		rc = cow_txn_commit(t);
	else
		cow_txn_abort(t);
	st->ms = tour_now_ms() - t0;
	return rc;
}

static int count_diff(void *ctx, const cow_diff_entry *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

int tour_snapshot(struct tour *t)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/snap.cow", t->dir);
	uint64_t n = t->size / 128; /* 16-byte keys, 100-byte values, ~128 bytes each */
	cow_store *s = NULL;
	cow_txn *x = NULL;
	cow_map *m;
	TRY(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	double t0 = tour_now_ms();
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_map_create(x, "users"));
	TRY(cow_map_open(x, "users", &m));
	char key[32], val[100];
	memset(val, 'v', sizeof(val));
	for (uint64_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "user%012llu", (unsigned long long)i);
		TRY(cow_map_put(m, key, 16, val, sizeof(val)));
	}
	TRY(cow_txn_commit(x));
	x = NULL;
	tour_say("loaded %llu keys in %.0f ms", (unsigned long long)n, tour_now_ms() - t0);

	cow_store_stats st0, st1;
	TRY(cow_store_stat(s, &st0));
	t0 = tour_now_ms();
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_snapshot(x, "users@monday"));
	TRY(cow_txn_commit(x));
	x = NULL;
	double snap_ms = tour_now_ms() - t0;
	TRY(cow_store_stat(s, &st1));
	tour_say("snapshot users@monday: %.2f ms, %lld KiB of new blocks for %.0f MiB of data",
		 snap_ms, (long long)(st1.used_bytes - st0.used_bytes) / 1024,
		 st0.used_bytes / 1048576.0);

	/* One key changes: only its root-to-leaf path is copied. */
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_map_open(x, "users", &m));
	snprintf(key, sizeof(key), "user%012llu", (unsigned long long)(n / 2));
	TRY(cow_map_put(m, key, 16, "changed", 7));
	TRY(cow_txn_commit(x));
	x = NULL;
	TRY(cow_txn_begin(s, COW_TXN_RDONLY, &x));
	cow_obj_stats live;
	TRY(cow_obj_stat(x, "users", COW_STAT_EXCLUSIVE, &live));
	tour_say("after changing one key, users owns %llu KiB exclusively: the copied path "
		 "(root to leaf), everything else is shared with the snapshot",
		 (unsigned long long)live.exclusive / 1024);
	int changes = 0;
	t0 = tour_now_ms();
	TRY(cow_diff(x, "users@monday", "users", count_diff, &changes));
	tour_say("diff users@monday users: %d changed key in %.2f ms (shared subtrees skipped)",
		 changes, tour_now_ms() - t0);
	cow_map *old;
	cow_buf v;
	TRY(cow_map_open(x, "users@monday", &old));
	TRY(cow_map_get(old, key, 16, &v));
	tour_say("the snapshot still holds the old value (%zu bytes of 'v')", v.len);
	cow_txn_abort(x);
	x = NULL;

	/* send | recv: the full stream once, then only the change. */
	char path2[512];
	snprintf(path2, sizeof(path2), "%s/replica.cow", t->dir);
	cow_store *r = NULL;
	TRY(cow_store_open(path2, &(cow_store_options){COW_STORE_CREATE}, &r));
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_snapshot(x, "users@tuesday"));
	TRY(cow_txn_commit(x));
	x = NULL;
	struct stream st = {0};
	int rc = ship(s, r, "users@monday", NULL, &st);
	uint64_t full = st.n;
	double full_ms = st.ms;
	st.n = 0;
	if (rc == 0)
		rc = ship(s, r, "users@tuesday", "users@monday", &st);
	free(st.p);
	cow_store_close(r);
	if (rc) {
		tour_say("send/recv: %s", cow_strerror(rc));
		goto fail;
	}
	tour_say("send | recv into a replica: full stream %.1f MiB in %.0f ms, then the change: "
		 "%llu bytes in %.2f ms",
		 full / 1048576.0, full_ms, (unsigned long long)st.n, st.ms);
	cow_store_close(s);
	return changes == 1 ? 0 : 1;
fail:
	cow_txn_abort(x);
	cow_store_close(s);
	return 1;
}
