/*
 * Model test: random puts, deletes, commits, aborts, reopens and long-lived
 * readers against a plain in-memory reference. After every commit the
 * store's content is compared with the reference, and a reader opened at an
 * earlier generation must still see exactly that generation. The space map is
 * checked against a walk of all trees every few commits.
 *
 *   model_store [OPS]   (COW_SEED=n replays a run)
 */
#include <stdlib.h>

#include "base/base.h"
#include "btree/btree.h"
#include "check.h"
#include "store/store.h"

#define NKEYS 3000
#define NMAPS 2

struct val {
	uint32_t len; /* UINT32_MAX: absent */
	uint64_t seed;
};

struct state {
	struct val v[NMAPS][NKEYS];
};

static uint64_t rng;
static uint8_t *vbuf;

static size_t key_make(int i, char *out)
{
	/* Lengths 1..~1024 so separators, splits and key limits get exercised. */
	size_t len = 6 + (size_t)((i * 2654435761u) % 50);
	if (i % 97 == 0)
		len = 1000 + (size_t)(i % 24);
	int n = snprintf(out, 32, "%05d", i);
	for (size_t j = (size_t)n; j < len; j++)
		out[j] = (char)('a' + (i + j) % 26);
	return len;
}

static void val_make(const struct val *v, uint8_t *out)
{
	uint64_t s = v->seed | 1;
	for (uint32_t j = 0; j < v->len; j++)
		out[j] = (uint8_t)(check_rand(&s) >> 56);
}

static uint32_t pick_len(void)
{
	uint64_t r = check_rand(&rng) % 1000;
	if (r < 700)
		return (uint32_t)(check_rand(&rng) % 120);
	if (r < 950)
		return (uint32_t)(check_rand(&rng) % 1400);
	if (r < 998)
		return (uint32_t)(check_rand(&rng) % 20000);
	return (uint32_t)(check_rand(&rng) % 300000);
}

static const char *map_name(int m)
{
	return m == 0 ? "alpha" : "beta";
}

/* Compare every map in @t with @ref: point gets and full scans both ways. */
static void compare(cow_txn *t, const struct state *ref)
{
	char key[1100];
	for (int m = 0; m < NMAPS; m++) {
		cow_map *map;
		CHECK_OK(cow_map_open(t, map_name(m), &map));
		uint64_t n = 0;
		for (int i = 0; i < NKEYS; i++) {
			const struct val *v = &ref->v[m][i];
			size_t klen = key_make(i, key);
			cow_buf b;
			int rc = cow_map_get(map, key, klen, &b);
			if (v->len == UINT32_MAX) {
				CHECK_RC(rc, COW_ENOTFOUND);
				continue;
			}
			n++;
			CHECK_OK(rc);
			CHECK_EQ(b.len, v->len);
			val_make(v, vbuf);
			CHECK(memcmp(b.data, vbuf, v->len) == 0);
		}
		CHECK_EQ(cow_map_count(map), n);
		CHECK_OK(cow__btree_verify(&t->tx, &map->tree));
		/* Scans: keys come in order, and as many as the reference has. */
		cow_cursor *c;
		CHECK_OK(cow_cursor_open(map, &c));
		uint64_t seen = 0;
		char prev[1100];
		size_t prevlen = 0;
		for (int rc = cow_cursor_first(c); rc != COW_ENOTFOUND; rc = cow_cursor_next(c)) {
			CHECK_OK(rc);
			cow_buf k;
			CHECK_OK(cow_cursor_get(c, &k, NULL));
			if (seen) {
				int cmp = memcmp(prev, k.data, COW_MIN(prevlen, k.len));
				CHECK(cmp < 0 || (cmp == 0 && prevlen < k.len));
			}
			memcpy(prev, k.data, k.len);
			prevlen = k.len;
			seen++;
		}
		CHECK_EQ(seen, n);
		seen = 0;
		for (int rc = cow_cursor_last(c); rc != COW_ENOTFOUND; rc = cow_cursor_prev(c)) {
			CHECK_OK(rc);
			seen++;
		}
		CHECK_EQ(seen, n);
		cow_cursor_close(c);
	}
}

int main(int argc, char **argv)
{
	long ops = argc > 1 ? atol(argv[1]) : 100000;
	rng = check_seed();
	vbuf = malloc(300000);
	const char *path = check_path("model.cow");
	cow_store_options o = {COW_STORE_CREATE};
	if (check_rand(&rng) & 1)
		o.flags |= COW_STORE_NOSYNC; /* half the runs: no-sync commits */
	cow_store *s;
	CHECK_OK(cow_store_open(path, &o, &s));

	static struct state committed, cur, pinned;
	for (int m = 0; m < NMAPS; m++)
		for (int i = 0; i < NKEYS; i++)
			committed.v[m][i].len = UINT32_MAX;
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	for (int m = 0; m < NMAPS; m++)
		CHECK_OK(cow_map_create(t, map_name(m)));
	CHECK_OK(cow_txn_commit(t));

	cow_txn *reader = NULL; /* a long-lived reader pinned to `pinned` */
	long commits = 0, aborts = 0, reopens = 0;
	char key[1100];
	for (long done = 0; done < ops;) {
		cur = committed;
		CHECK_OK(cow_txn_begin(s, 0, &t));
		cow_map *maps[NMAPS];
		for (int m = 0; m < NMAPS; m++)
			CHECK_OK(cow_map_open(t, map_name(m), &maps[m]));
		long n = 1 + (long)(check_rand(&rng) % (check_rand(&rng) % 8 == 0 ? 2000 : 60));
		for (long j = 0; j < n; j++, done++) {
			int m = (int)(check_rand(&rng) % NMAPS);
			int i = (int)(check_rand(&rng) % NKEYS);
			size_t klen = key_make(i, key);
			struct val *v = &cur.v[m][i];
			uint64_t r = check_rand(&rng) % 100;
			if (r < 60) {
				struct val nv = {pick_len(), check_rand(&rng)};
				val_make(&nv, vbuf);
				CHECK_OK(cow_map_put(maps[m], key, klen, vbuf, nv.len));
				*v = nv;
			} else if (r < 85) {
				int rc = cow_map_del(maps[m], key, klen);
				CHECK_RC(rc, v->len == UINT32_MAX ? COW_ENOTFOUND : 0);
				v->len = UINT32_MAX;
			} else {
				cow_buf b;
				int rc = cow_map_get(maps[m], key, klen, &b);
				if (v->len == UINT32_MAX) {
					CHECK_RC(rc, COW_ENOTFOUND);
				} else {
					CHECK_OK(rc);
					CHECK_EQ(b.len, v->len);
					val_make(v, vbuf);
					CHECK(memcmp(b.data, vbuf, v->len) == 0);
				}
			}
		}
		uint64_t r = check_rand(&rng) % 100;
		if (r < 20) {
			cow_txn_abort(t);
			aborts++;
		} else {
			CHECK_OK(cow_txn_commit(t));
			committed = cur;
			commits++;
		}
		/* The reader still sees its own generation, whatever was committed. */
		if (reader && check_rand(&rng) % 4 == 0) {
			compare(reader, &pinned);
			cow_txn_abort(reader);
			reader = NULL;
		}
		if (!reader && check_rand(&rng) % 3 == 0) {
			CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &reader));
			pinned = committed;
		}
		if (commits % 25 == 0 || check_rand(&rng) % 50 == 0) {
			cow_txn *rt;
			CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &rt));
			compare(rt, &committed);
			cow_txn_abort(rt);
			CHECK_OK(cow__store_check(s));
		}
		if (check_rand(&rng) % 40 == 0) {
			if (reader) {
				cow_txn_abort(reader);
				reader = NULL;
			}
			cow_store_close(s);
			o.flags &= ~(unsigned)COW_STORE_CREATE;
			CHECK_OK(cow_store_open(path, &o, &s));
			reopens++;
			CHECK_OK(cow__store_check(s));
		}
	}
	if (reader)
		cow_txn_abort(reader);
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	compare(t, &committed);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	printf("%ld ops: %ld commits, %ld aborts, %ld reopens; file %.1f MiB, used %.1f MiB\n", ops,
	       commits, aborts, reopens, st.file_bytes / 1048576.0, st.used_bytes / 1048576.0);
	cow_store_close(s);
	free(vbuf);
	return 0;
}
