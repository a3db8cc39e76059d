/*
 * Crash test: random workloads on a store whose io simulates a power loss at
 * a random write or flush (unsynced writes dropped, torn at 512-byte sectors,
 * or landing out of order). After each crash the store is reopened without
 * faults and must hold exactly one of the states a correct store may show:
 * the last acknowledged commit, or the commit that was in flight (if all of
 * it reached the disk); with no-sync commits, any commit since the last sync.
 * The space map must agree with a walk of every tree (cow__store_check).
 *
 *   crash_store [ITERATIONS]   (COW_SEED=n replays a run)
 */
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

#include "check.h"
#include "first_problem.h"
#include "faultio.h"
#include "base/base.h"
#include "store/store.h"

#define NKEYS 1500

struct state {
	uint32_t len[NKEYS]; /* UINT32_MAX: absent */
	uint64_t seed[NKEYS];
};

static uint8_t vbuf[70000];

static size_t key_make(int i, char *out)
{
	size_t len = 8 + (size_t)(i % 40);
	int n = snprintf(out, 16, "%06d", i);
	for (size_t j = (size_t)n; j < len; j++)
		out[j] = (char)('a' + (i * 7 + j) % 26);
	return len;
}

static void val_make(uint32_t len, uint64_t seed, uint8_t *out)
{
	uint64_t s = seed | 1;
	for (uint32_t j = 0; j < len; j++)
		out[j] = (uint8_t)(check_rand(&s) >> 56);
}

static uint64_t digest_state(const struct state *st)
{
	XXH3_state_t *h = XXH3_createState();
	XXH3_64bits_reset(h);
	char key[64];
	for (int i = 0; i < NKEYS; i++) {
		if (st->len[i] == UINT32_MAX)
			continue;
		uint64_t klen = key_make(i, key), vlen = st->len[i];
		val_make(st->len[i], st->seed[i], vbuf);
		XXH3_64bits_update(h, &klen, 8);
		XXH3_64bits_update(h, key, klen);
		XXH3_64bits_update(h, &vlen, 8);
		XXH3_64bits_update(h, vbuf, vlen);
	}
	uint64_t d = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	return d;
}

static uint64_t digest_store(cow_store *s)
{
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	cow_cursor *c;
	CHECK_OK(cow_cursor_open(m, &c));
	XXH3_state_t *h = XXH3_createState();
	XXH3_64bits_reset(h);
	for (int rc = cow_cursor_first(c); rc != COW_ENOTFOUND; rc = cow_cursor_next(c)) {
		CHECK_OK(rc);
		cow_buf k, v;
		CHECK_OK(cow_cursor_get(c, &k, &v));
		uint64_t klen = k.len, vlen = v.len;
		XXH3_64bits_update(h, &klen, 8);
		XXH3_64bits_update(h, k.data, klen);
		XXH3_64bits_update(h, &vlen, 8);
		XXH3_64bits_update(h, v.data, vlen);
	}
	uint64_t d = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	cow_txn_abort(t);
	return d;
}

#define MAXALLOWED 256
static struct state allowed[MAXALLOWED];
static uint64_t allowed_digest[MAXALLOWED];
static int nallowed;

static void allow(const struct state *st)
{
	if (nallowed == MAXALLOWED) { /* keep the oldest (durable) and the newest */
		memmove(&allowed[1], &allowed[2], (MAXALLOWED - 2) * sizeof(allowed[0]));
		memmove(&allowed_digest[1], &allowed_digest[2], (MAXALLOWED - 2) * sizeof(uint64_t));
		nallowed--;
	}
	allowed[nallowed] = *st;
	allowed_digest[nallowed++] = digest_state(st);
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 400;
	uint64_t seed0 = check_seed();
	const char *path = check_path("crash.cow");
	char lockpath[600];
	snprintf(lockpath, sizeof(lockpath), "%s.lock", path);
	static struct state committed, cur;
	long crashes = 0, fallbacks = 0, inflight = 0;
	setenv("COW_LOG", "off", 1); /* expected "does not verify" messages */

	for (long it = 0; it < iters; it++) {
		uint64_t rng = seed0 + (uint64_t)it * 0x9E3779B97F4A7C15ull;
		check_rand(&rng);
		bool fresh = it % 8 == 0;
		bool nosync = check_rand(&rng) % 4 == 0;
		if (fresh) {
			unlink(path);
			unlink(lockpath);
			cow_store *s;
			cow_store_options o = {COW_STORE_CREATE};
			CHECK_OK(cow_store_open(path, &o, &s));
			cow_txn *t;
			CHECK_OK(cow_txn_begin(s, 0, &t));
			CHECK_OK(cow_map_create(t, "m"));
			CHECK_OK(cow_txn_commit(t));
			cow_store_close(s);
			for (int i = 0; i < NKEYS; i++)
				committed.len[i] = UINT32_MAX;
		}
		nallowed = 0;
		allow(&committed);

		struct faultio_cfg fc = {.crash_at = 1 + (long)(check_rand(&rng) % 150),
					 .seed = check_rand(&rng),
					 /* a third of the crashes keep every issued write */
					 .keep_percent = it % 3 == 1 ? 100 : 0};
		faultio_install(&fc);
		cow_store *s = NULL;
		cow_store_options o = {nosync ? COW_STORE_NOSYNC : 0};
		int rc = cow_store_open(path, &o, &s);
		while (rc == 0 && !faultio_crashed()) {
			cow_txn *t;
			rc = cow_txn_begin(s, 0, &t);
			if (rc)
				break;
			cow_map *m;
			rc = cow_map_open(t, "m", &m);
			CHECK(rc == 0 || faultio_crashed());
			if (rc) {
				cow_txn_abort(t);
				break;
			}
			cur = committed;
			int n = 1 + (int)(check_rand(&rng) % 40);
			char key[64];
			for (int j = 0; j < n && rc == 0; j++) {
				int i = (int)(check_rand(&rng) % NKEYS);
				size_t klen = key_make(i, key);
				if (check_rand(&rng) % 4 == 0) {
					rc = cow_map_del(m, key, klen);
					if (rc == COW_ENOTFOUND && cur.len[i] == UINT32_MAX)
						rc = 0;
					cur.len[i] = UINT32_MAX;
				} else {
					uint32_t len = (uint32_t)(check_rand(&rng) % 100 == 0
									  ? check_rand(&rng) % 70000
									  : check_rand(&rng) % 300);
					uint64_t vs = check_rand(&rng);
					val_make(len, vs, vbuf);
					rc = cow_map_put(m, key, klen, vbuf, len);
					cur.len[i] = len;
					cur.seed[i] = vs;
				}
			}
			if (rc) { /* only the simulated power loss may fail an operation */
				CHECK(faultio_crashed());
				cow_txn_abort(t);
				break;
			}
			rc = cow_txn_commit(t);
			if (rc == 0) {
				committed = cur;
				if (!nosync)
					nallowed = 0;
				allow(&committed);
				if (nosync && check_rand(&rng) % 5 == 0 && cow_store_sync(s) == 0) {
					nallowed = 0;
					allow(&committed);
				}
			} else {
				CHECK(faultio_crashed());
				allow(&cur); /* it may have reached the disk whole */
			}
		}
		CHECK(faultio_crashed());
		crashes++;
		cow_store_close(s);
		faultio_uninstall();

		/* Power back on: the store opens, is consistent, and shows an allowed state. */
		o.flags = 0;
		CHECK_OK(cow_store_open(path, &o, &s));
		struct first_problem fp = {0};
		rc = cow__store_check_all(s, keep_first, &fp);
		if (rc)
			check__fail(__FILE__, __LINE__,
				    "iteration %ld (crash at op %ld, %s): store check failed: %s: "
				    "block %llu: %s",
				    it, fc.crash_at, nosync ? "nosync" : "sync", cow_errname(rc),
				    (unsigned long long)fp.blk, fp.why);
		uint64_t d = digest_store(s);
		int found = -1;
		for (int k = nallowed - 1; k >= 0 && found < 0; k--)
			if (allowed_digest[k] == d)
				found = k;
		if (found < 0)
			check__fail(__FILE__, __LINE__,
				    "iteration %ld (crash at op %ld, %s): reopened store matches none of "
				    "the %d allowed states",
				    it, fc.crash_at, nosync ? "nosync" : "sync", nallowed);
		bool is_committed = memcmp(&allowed[found], &committed, sizeof(committed)) == 0;
		if (!is_committed && found == nallowed - 1)
			inflight++; /* the failed commit had reached the disk whole */
		else if (!is_committed)
			fallbacks++; /* an older no-sync commit */
		committed = allowed[found];
		cow_store_close(s);
	}
	printf("%ld crashes: reopened at the last acknowledged commit %ld times, at the in-flight "
	       "one %ld, at an older unsynced one (no-sync mode) %ld\n",
	       crashes, crashes - inflight - fallbacks, inflight, fallbacks);
	return 0;
}
