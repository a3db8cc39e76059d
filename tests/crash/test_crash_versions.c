/*
 * Crash test with versions: a map, a volume (written a block or a run of
 * blocks at a time), snapshots, clones, rollbacks,
 * renames and destroys, and compactions between transactions, on an io that simulates a power loss
 * at a random write or flush (see tests/lib/faultio.h). After each crash the store must reopen
 * holding exactly one allowed state of the whole catalog (every object and snapshot, byte for
 * byte), and the checker must find every reference count and the space map consistent.
 *
 *   crash_versions [ITERATIONS]   (COW_SEED=n replays a run)
 */
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/base.h"
#include "check.h"
#include "faultio.h"
#include "first_problem.h"
#include "store/store.h"

#define NK   200 /* keys per map */
#define NB   48	 /* blocks of the volume */
#define NOBJ 12	 /* object slots: 0 = "m", 1 = "v", the rest snapshots or clones */

struct obj {
	bool live;
	bool vol;
	char name[24];
	uint32_t len[NK]; /* maps: value length, UINT32_MAX absent; volumes: block seed, 0 hole */
	uint32_t seed[NK];
};

struct state {
	struct obj o[NOBJ];
	int nsnap; /* names used so far */
};

static uint8_t vbuf[8192], wbuf[NB * 4096];

static size_t key_of(int i, char *k)
{
	return (size_t)snprintf(k, 16, "k%05d", i);
}

static void val_of(uint32_t len, uint32_t seed, uint8_t *out)
{
	uint64_t s = seed | 1;
	for (uint32_t j = 0; j < len; j++)
		out[j] = (uint8_t)(check_rand(&s) >> 56);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct obj *)a)->name, ((const struct obj *)b)->name);
}

static void hash_obj_ref(XXH3_state_t *h, const struct obj *o)
{
	XXH3_64bits_update(h, o->name, strlen(o->name) + 1);
	if (o->vol) {
		for (int b = 0; b < NB; b++) {
			if (o->len[b])
				val_of(4096, o->len[b], vbuf);
			else
				memset(vbuf, 0, 4096);
			XXH3_64bits_update(h, vbuf, 4096);
		}
		return;
	}
	char k[16];
	for (int i = 0; i < NK; i++) {
		if (o->len[i] == UINT32_MAX)
			continue;
		uint64_t kl = key_of(i, k), vl = o->len[i];
		val_of(o->len[i], o->seed[i], vbuf);
		XXH3_64bits_update(h, &kl, 8);
		XXH3_64bits_update(h, k, kl);
		XXH3_64bits_update(h, &vl, 8);
		XXH3_64bits_update(h, vbuf, vl);
	}
}

static uint64_t digest_state(const struct state *st)
{
	struct obj sorted[NOBJ];
	int n = 0;
	for (int i = 0; i < NOBJ; i++)
		if (st->o[i].live)
			sorted[n++] = st->o[i];
	qsort(sorted, (size_t)n, sizeof(sorted[0]), cmp_name);
	XXH3_state_t *h = XXH3_createState();
	XXH3_64bits_reset(h);
	for (int i = 0; i < n; i++)
		hash_obj_ref(h, &sorted[i]);
	uint64_t d = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	return d;
}

struct dctx {
	cow_txn *t;
	XXH3_state_t *h;
};

static int hash_obj_store(void *ctx, const char *name, const char *type, uint64_t count)
{
	(void)count;
	struct dctx *d = ctx;
	XXH3_64bits_update(d->h, name, strlen(name) + 1);
	if (strcmp(type, "volume") == 0) {
		cow_vol *v;
		CHECK_OK(cow_vol_open(d->t, name, &v));
		CHECK_EQ(cow_vol_size(v), NB * 4096);
		static uint8_t all[NB * 4096];
		CHECK_OK(cow_vol_pread(v, all, sizeof(all), 0));
		XXH3_64bits_update(d->h, all, sizeof(all));
		return 0;
	}
	cow_map *m;
	cow_cursor *c;
	CHECK_OK(cow_map_open(d->t, name, &m));
	CHECK_OK(cow_cursor_open(m, &c));
	for (int rc = cow_cursor_first(c); rc != COW_ENOTFOUND; rc = cow_cursor_next(c)) {
		CHECK_OK(rc);
		cow_buf k, v;
		CHECK_OK(cow_cursor_get(c, &k, &v));
		uint64_t kl = k.len, vl = v.len;
		XXH3_64bits_update(d->h, &kl, 8);
		XXH3_64bits_update(d->h, k.data, kl);
		XXH3_64bits_update(d->h, &vl, 8);
		XXH3_64bits_update(d->h, v.data, vl);
	}
	cow_cursor_close(c);
	return 0;
}

static uint64_t digest_store(cow_store *s)
{
	struct dctx d;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &d.t));
	d.h = XXH3_createState();
	XXH3_64bits_reset(d.h);
	CHECK_OK(cow_store_list(d.t, hash_obj_store, &d));
	uint64_t r = XXH3_64bits_digest(d.h);
	XXH3_freeState(d.h);
	cow_txn_abort(d.t);
	return r;
}

#define MAXALLOWED 48
static struct state allowed[MAXALLOWED];
static uint64_t allowed_digest[MAXALLOWED];
static int nallowed;

static void allow(const struct state *st)
{
	if (nallowed == MAXALLOWED) { /* keep the durable one and the newest */
		memmove(&allowed[1], &allowed[2], (MAXALLOWED - 2) * sizeof(allowed[0]));
		memmove(&allowed_digest[1], &allowed_digest[2],
			(MAXALLOWED - 2) * sizeof(uint64_t));
		nallowed--;
	}
	allowed[nallowed] = *st;
	allowed_digest[nallowed++] = digest_state(st);
}

static int free_slot(const struct state *st)
{
	for (int i = 2; i < NOBJ; i++)
		if (!st->o[i].live)
			return i;
	return -1;
}

static bool has_clone(const struct state *st, const char *snap, const char (*origin)[24])
{
	for (int i = 2; i < NOBJ; i++)
		if (st->o[i].live && !strchr(st->o[i].name, '@') && strcmp(origin[i], snap) == 0)
			return true;
	return false;
}

static char origin[NOBJ][24]; /* clones' origins, kept beside the state (names only) */
static char origins_allowed[MAXALLOWED][NOBJ][24];

/* One random step in write transaction @t; updates @st. Returns an error code. */
static int step(cow_txn *t, struct state *st, uint64_t *rng)
{
	uint64_t r = check_rand(rng) % 100;
	int i, rc;
	char k[16];
	if (r < 55) { /* writes into "m", "v" or a clone */
		int target = (int)(check_rand(rng) % 3);
		int o = target < 2 ? target : -1;
		if (o < 0) /* a clone, if any */
			for (int j = 2; j < NOBJ; j++)
				if (st->o[j].live && !strchr(st->o[j].name, '@'))
					o = j;
		if (o < 0)
			o = 0;
		struct obj *ob = &st->o[o];
		if (ob->vol) {
			cow_vol *v;
			if ((rc = cow_vol_open(t, ob->name, &v)))
				return rc;
			/* One block, or a run of them (holes among them) in one write. */
			int b = (int)(check_rand(rng) % NB);
			int n = check_rand(rng) % 3 ? 1 : 1 + (int)(check_rand(rng) % (NB - b));
			uint32_t seeds[NB];
			for (int j = 0; j < n; j++) {
				seeds[j] = check_rand(rng) % 5 == 0 ? 0
								    : (uint32_t)check_rand(rng) | 1;
				if (seeds[j])
					val_of(4096, seeds[j], wbuf + 4096 * j);
				else
					memset(wbuf + 4096 * j, 0, 4096);
			}
			if ((rc = cow_vol_pwrite(v, wbuf, 4096 * (size_t)n, (uint64_t)b * 4096)))
				return rc;
			memcpy(ob->len + b, seeds, sizeof(seeds[0]) * (size_t)n);
			return 0;
		}
		cow_map *m;
		if ((rc = cow_map_open(t, ob->name, &m)))
			return rc;
		for (int n = 1 + (int)(check_rand(rng) % 8); n > 0; n--) {
			i = (int)(check_rand(rng) % NK);
			size_t kl = key_of(i, k);
			if (check_rand(rng) % 4 == 0) {
				rc = cow_map_del(m, k, kl);
				if (rc == COW_ENOTFOUND && ob->len[i] == UINT32_MAX)
					rc = 0;
				ob->len[i] = UINT32_MAX;
			} else {
				uint32_t len = (uint32_t)(check_rand(rng) % 30 == 0
								  ? 1500 + check_rand(rng) % 5000
								  : check_rand(rng) % 80);
				uint32_t seed = (uint32_t)check_rand(rng);
				val_of(len, seed, vbuf);
				rc = cow_map_put(m, k, kl, vbuf, len);
				ob->len[i] = len;
				ob->seed[i] = seed;
			}
			if (rc)
				return rc;
		}
		return 0;
	}
	int slot = free_slot(st);
	if (r < 70 && slot >= 0) { /* snapshot "m" or "v" */
		int src = (int)(check_rand(rng) % 2);
		struct obj *ob = &st->o[slot];
		*ob = st->o[src];
		snprintf(ob->name, sizeof(ob->name), "%s@s%03d", src ? "v" : "m", ++st->nsnap);
		origin[slot][0] = 0;
		return cow_snapshot(t, ob->name);
	}
	if (r < 80 && slot >= 0) { /* clone a snapshot of "m" */
		for (int j = 2; j < NOBJ; j++)
			if (st->o[j].live && strncmp(st->o[j].name, "m@", 2) == 0) {
				struct obj *ob = &st->o[slot];
				*ob = st->o[j];
				snprintf(ob->name, sizeof(ob->name), "c%03d", ++st->nsnap);
				memcpy(origin[slot], st->o[j].name, 24);
				return cow_clone(t, st->o[j].name, ob->name);
			}
		return 0;
	}
	if (r < 86) { /* rollback "m" to one of its snapshots */
		for (int j = 2; j < NOBJ; j++)
			if (st->o[j].live && strncmp(st->o[j].name, "m@", 2) == 0) {
				rc = cow_rollback(t, st->o[j].name);
				if (rc == 0) {
					memcpy(st->o[0].len, st->o[j].len, sizeof(st->o[0].len));
					memcpy(st->o[0].seed, st->o[j].seed, sizeof(st->o[0].seed));
				}
				return rc;
			}
		return 0;
	}
	int j = 2 + (int)(check_rand(rng) % (NOBJ - 2));
	if (r < 92) { /* rename a snapshot (within its object) or a clone */
		if (!st->o[j].live)
			return 0;
		char old[24], nn[24];
		memcpy(old, st->o[j].name, sizeof(old));
		const char *at = strchr(old, '@');
		if (at)
			snprintf(nn, sizeof(nn), "%.*s@s%03d", (int)(at - old), old, ++st->nsnap);
		else
			snprintf(nn, sizeof(nn), "c%03d", ++st->nsnap);
		rc = cow_rename(t, old, nn);
		if (rc)
			return rc;
		memcpy(st->o[j].name, nn, sizeof(nn));
		for (int c = 2; c < NOBJ; c++) /* clones keep their origin under its new name */
			if (strcmp(origin[c], old) == 0)
				memcpy(origin[c], nn, sizeof(nn));
		return 0;
	}
	/* destroy a snapshot without clones, or a clone */
	if (!st->o[j].live || (strchr(st->o[j].name, '@') && has_clone(st, st->o[j].name, origin)))
		return 0;
	rc = cow_destroy(t, st->o[j].name, 0);
	if (rc == 0)
		st->o[j].live = false;
	return rc;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 200;
	uint64_t seed0 = check_seed();
	const char *path = check_path("cv.cow");
	char lockpath[600];
	snprintf(lockpath, sizeof(lockpath), "%s.lock", path);
	static struct state committed, cur;
	long inflight = 0, older = 0;
	setenv("COW_LOG", "off", 1);

	for (long it = 0; it < iters; it++) {
		uint64_t rng = seed0 + (uint64_t)it * 0x9E3779B97F4A7C15ull;
		check_rand(&rng);
		bool nosync = check_rand(&rng) % 4 == 0;
		if (it % 10 == 0) { /* a fresh store now and then */
			unlink(path);
			unlink(lockpath);
			memset(&committed, 0, sizeof(committed));
			memset(origin, 0, sizeof(origin));
			cow_store *s;
			cow_txn *t;
			CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
			CHECK_OK(cow_txn_begin(s, 0, &t));
			CHECK_OK(cow_map_create(t, "m"));
			CHECK_OK(cow_vol_create(t, "v", NB * 4096));
			CHECK_OK(cow_txn_commit(t));
			cow_store_close(s);
			committed.o[0] = (struct obj){.live = true, .name = "m"};
			committed.o[1] = (struct obj){.live = true, .vol = true, .name = "v"};
			for (int i = 0; i < NK; i++)
				committed.o[0].len[i] = UINT32_MAX;
		}
		nallowed = 0;
		allow(&committed);
		memcpy(origins_allowed[0], origin, sizeof(origin));

		struct faultio_cfg fc = {.crash_at = 1 + (long)(check_rand(&rng) % 120),
					 .seed = check_rand(&rng),
					 .keep_percent = it % 3 == 1 ? 100 : 0};
		faultio_install(&fc);
		cow_store *s = NULL;
		int rc = cow_store_open(path, &(cow_store_options){nosync ? COW_STORE_NOSYNC : 0},
					&s);
		while (rc == 0 && !faultio_crashed()) {
			cow_txn *t;
			if ((rc = cow_txn_begin(s, 0, &t)))
				break;
			cur = committed;
			char saved_origin[NOBJ][24];
			memcpy(saved_origin, origin, sizeof(origin));
			for (int n = 1 + (int)(check_rand(&rng) % 4); n > 0 && rc == 0; n--)
				rc = step(t, &cur, &rng);
			if (rc) {
				CHECK(faultio_crashed());
				cow_txn_abort(t);
				memcpy(origin, saved_origin, sizeof(origin));
				break;
			}
			rc = cow_txn_commit(t);
			if (rc == 0) {
				committed = cur;
				if (!nosync)
					nallowed = 0;
				allow(&committed);
				memcpy(origins_allowed[nallowed - 1], origin, sizeof(origin));
			} else {
				CHECK(faultio_crashed());
				allow(&cur);
				memcpy(origins_allowed[nallowed - 1], origin, sizeof(origin));
				break;
			}
			/* Compaction now and then: it moves blocks, never changes a state. */
			if (check_rand(&rng) % 6 == 0) {
				uint64_t step_bytes = (1 + check_rand(&rng) % 16) * 4096;
				rc = cow_store_compact(s, step_bytes, NULL, NULL, NULL);
				if (rc)
					CHECK(faultio_crashed());
			}
		}
		CHECK(faultio_crashed());
		cow_store_close(s);
		faultio_uninstall();

		CHECK_OK(cow_store_open(path, NULL, &s));
		struct first_problem fp = {0};
		rc = cow__store_check_all(s, keep_first, &fp);
		if (rc)
			check__fail(__FILE__, __LINE__,
				    "iteration %ld (crash at op %ld, %s): %s at block %llu: %s", it,
				    fc.crash_at, nosync ? "nosync" : "sync", cow_errname(rc),
				    (unsigned long long)fp.blk, fp.why);
		uint64_t d = digest_store(s);
		int found = -1;
		for (int k = nallowed - 1; k >= 0 && found < 0; k--)
			if (allowed_digest[k] == d)
				found = k;
		if (found < 0)
			check__fail(__FILE__, __LINE__,
				    "iteration %ld (crash at op %ld, %s): the store matches none "
				    "of the "
				    "%d allowed states",
				    it, fc.crash_at, nosync ? "nosync" : "sync", nallowed);
		if (memcmp(&allowed[found], &committed, sizeof(committed)) != 0) {
			if (found == nallowed - 1)
				inflight++;
			else
				older++;
		}
		committed = allowed[found];
		memcpy(origin, origins_allowed[found], sizeof(origin));
		cow_store_close(s);
	}
	printf("%ld crashes with snapshots, clones, rollbacks and destroys: reopened at the "
	       "in-flight commit %ld times, at an older unsynced one %ld, else at the last "
	       "acknowledged one; every reference count checked\n",
	       iters, inflight, older);
	return 0;
}
