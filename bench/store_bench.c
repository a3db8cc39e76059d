/*
 * store_bench: cowkit's map store against LMDB, on the same data, in one run.
 *
 * Workload (DESIGN.md section 6): N keys of 16 bytes (big-endian counter +
 * 64-bit hash) with 100-byte random values, inserted in one shuffled order
 * (Fisher-Yates, fixed seed) that both engines share. Phases, each on a fresh
 * store in its own temporary directory:
 *
 *   insert_1txn     N random-order inserts in one durable write txn
 *   load_size       file size and live bytes right after that load
 *   get             N random gets (warm: one untimed scan first), one read txn
 *   scan            full cursor scans in key order (5, each in its own txn)
 *   put_latency     C durable txns of one new key each: p50/p99 per commit
 *   insert_per_txn  N random-order inserts, P per durable txn
 *   reader_nosync   NOSYNC store: load N, hold a read txn, U update txns of one
 *                   random key each; file size after vs live data
 *   reader_sync     the same with a forced sync every S update txns
 *
 * Correctness is checked lightly, so that a broken engine cannot post a
 * flattering figure: every get must find its key and exactly its value, the
 * scan must return N keys in strictly ascending order, the held reader must
 * still see the old values. An engine error prints and exits 1. Nothing here
 * asserts on time.
 *
 * Environment: COW_BENCH_KEYS (N, 1000000), COW_BENCH_PER_TXN (P, 1000),
 * COW_BENCH_COMMITS (C, 1000), COW_BENCH_UPDATES (U, 100000),
 * COW_BENCH_SYNC_EVERY (S, 1000; 0 skips reader_sync), COW_BENCH_SCANS (5),
 * COW_BENCH_RUNS (repetitions, the median run is reported; 1), COW_BENCH_DIR
 * (parent of the temporary directories; $TMPDIR or /tmp), COW_BENCH_PHASES
 * (comma list of phase groups: load,per_txn,reader; all by default),
 * COW_BENCH_ENGINE (lmdb or cowkit: run only that one, for profiling; no
 * ratios then).
 *
 * Usage: store_bench [CSV_FILE]   (CSV on stdout when no file is given)
 */
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "cow/store.h"

#define KLEN 16
#define VLEN 100
#define POOL (1u << 20) /* random bytes that values are cut from */
#define MIB  (1024.0 * 1024.0)

#define die(...) bench_die("store_bench", __VA_ARGS__)

#define CK_COW(call) BENCH_CK("store_bench", cow_strerror, call)
#define CK_MDB(call) BENCH_CK("store_bench", mdb_strerror, call)

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state += 0x9e3779b97f4a7c15ull;
	return mix64(rng_state);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- configuration and data ---- */

static struct {
	uint64_t keys, per_txn, commits, updates, sync_every, runs, scans;
	const char *dir;
	const char *phases;
	const char *engine;
} cfg;

static uint8_t *keys;	    /* (keys + commits) x KLEN */
static uint32_t *ins_order; /* a permutation of 0..keys-1 */
static uint32_t *get_order; /* another one */
static uint32_t *upd_order; /* updates x a random key */
static uint8_t *pool;

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		die("%s=%s: not a number", name, s);
	return v;
}

static bool want(const char *group)
{
	if (!cfg.phases || !*cfg.phases)
		return true;
	size_t n = strlen(group);
	for (const char *p = cfg.phases; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && memcmp(p, group, n) == 0)
			return true;
		p += len + (e ? 1 : 0);
	}
	return false;
}

static const uint8_t *key(uint64_t i)
{
	return keys + i * KLEN;
}

/* Version @ver of key @i's value: 100 bytes cut from the random pool. */
static const uint8_t *value(uint64_t i, uint64_t ver)
{
	return pool + mix64(i * 0x100000001b3ull ^ (ver << 40) ^ 0x5eed) % (POOL - VLEN);
}

static void shuffle(uint32_t *a, uint64_t n, uint64_t seed)
{
	for (uint64_t i = 0; i < n; i++)
		a[i] = (uint32_t)i;
	rng_state = seed;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = rng() % (i + 1);
		uint32_t t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

static void make_data(void)
{
	uint64_t nk = cfg.keys + cfg.commits;
	keys = malloc(nk * KLEN);
	ins_order = malloc(cfg.keys * sizeof(*ins_order));
	get_order = malloc(cfg.keys * sizeof(*get_order));
	upd_order = malloc((cfg.updates ? cfg.updates : 1) * sizeof(*upd_order));
	pool = malloc(POOL);
	if (!keys || !ins_order || !get_order || !upd_order || !pool)
		die("out of memory for %" PRIu64 " keys", nk);
	for (uint64_t i = 0; i < nk; i++) {
		uint8_t *k = keys + i * KLEN;
		uint64_t h = mix64(i ^ 0xc0ffee);
		for (int b = 0; b < 8; b++) {
			k[b] = (uint8_t)(i >> (56 - 8 * b));
			k[8 + b] = (uint8_t)(h >> (56 - 8 * b));
		}
	}
	rng_state = 42;
	for (uint32_t i = 0; i < POOL; i += 8) {
		uint64_t r = rng();
		memcpy(pool + i, &r, 8);
	}
	shuffle(ins_order, cfg.keys, 1);
	shuffle(get_order, cfg.keys, 2);
	rng_state = 3;
	for (uint64_t u = 0; u < cfg.updates; u++)
		upd_order[u] = (uint32_t)(rng() % cfg.keys);
}

/* ---- the two engines behind one small interface ---- */

struct eng {
	const char *name;
	char dir[4096];
	char file[4200]; /* the data file whose size is reported */
	/* cowkit */
	cow_store *s;
	cow_txn *cw, *cr;
	cow_map *cwm, *crm;
	bool have_map;
	/* LMDB */
	MDB_env *env;
	MDB_txn *mw, *mr;
	MDB_dbi dbi;
};

static bool is_cow(const struct eng *e)
{
	return e->name[0] == 'c';
}

static void eng_open(struct eng *e, bool nosync)
{
	char tmpl[4096];
	int n = snprintf(tmpl, sizeof(tmpl), "%s/cowbench.XXXXXX", cfg.dir);
	if (n < 0 || (size_t)n >= sizeof(tmpl))
		die("directory name too long: %s", cfg.dir);
	if (!mkdtemp(tmpl))
		die("mkdtemp %s: %s", tmpl, strerror(errno));
	snprintf(e->dir, sizeof(e->dir), "%s", tmpl);
	if (is_cow(e)) {
		snprintf(e->file, sizeof(e->file), "%s/store.cow", e->dir);
		cow_store_options o = {.flags = COW_STORE_CREATE | (nosync ? COW_STORE_NOSYNC : 0)};
		CK_COW(cow_store_open(e->file, &o, &e->s));
		e->have_map = false;
	} else {
		snprintf(e->file, sizeof(e->file), "%s/data.mdb", e->dir);
		/* Room for the load (~200 B/key) and ~7 pages per update under a reader. */
		uint64_t map = (256ull << 20) + cfg.keys * 1024 + (cfg.updates + 1) * 64 * 1024 +
			       cfg.commits * 4096;
		CK_MDB(mdb_env_create(&e->env));
		CK_MDB(mdb_env_set_mapsize(e->env, (size_t)map));
		CK_MDB(mdb_env_open(e->env, e->dir, nosync ? MDB_NOSYNC : 0, 0644));
		e->dbi = 0;
	}
}

static void rm_dir(const char *dir)
{
	/* The directory holds only the engine's few files. */
	static const char *const names[] = {"store.cow", "store.cow.lock", "data.mdb", "lock.mdb"};
	char p[4200];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	if (rmdir(dir) != 0)
		die("rmdir %s: %s", dir, strerror(errno));
}

static void eng_close(struct eng *e)
{
	if (is_cow(e)) {
		cow_store_close(e->s);
		e->s = NULL;
	} else {
		mdb_env_close(e->env);
		e->env = NULL;
	}
	rm_dir(e->dir);
}

static void wbegin(struct eng *e)
{
	if (is_cow(e)) {
		CK_COW(cow_txn_begin(e->s, 0, &e->cw));
		if (!e->have_map) {
			CK_COW(cow_map_create(e->cw, "bench"));
			e->have_map = true;
		}
		CK_COW(cow_map_open(e->cw, "bench", &e->cwm));
	} else {
		CK_MDB(mdb_txn_begin(e->env, NULL, 0, &e->mw));
		if (!e->dbi)
			CK_MDB(mdb_dbi_open(e->mw, NULL, 0, &e->dbi));
	}
}

static void put(struct eng *e, const uint8_t *k, const uint8_t *v)
{
	if (is_cow(e)) {
		CK_COW(cow_map_put(e->cwm, k, KLEN, v, VLEN));
	} else {
		MDB_val mk = {KLEN, (void *)k}, mv = {VLEN, (void *)v};
		CK_MDB(mdb_put(e->mw, e->dbi, &mk, &mv, 0));
	}
}

static void wcommit(struct eng *e)
{
	if (is_cow(e)) {
		CK_COW(cow_txn_commit(e->cw));
		e->cw = NULL;
	} else {
		CK_MDB(mdb_txn_commit(e->mw));
		e->mw = NULL;
	}
}

static void rbegin(struct eng *e)
{
	if (is_cow(e)) {
		CK_COW(cow_txn_begin(e->s, COW_TXN_RDONLY, &e->cr));
		CK_COW(cow_map_open(e->cr, "bench", &e->crm));
	} else {
		CK_MDB(mdb_txn_begin(e->env, NULL, MDB_RDONLY, &e->mr));
	}
}

static void rend(struct eng *e)
{
	if (is_cow(e)) {
		cow_txn_abort(e->cr);
		e->cr = NULL;
	} else {
		mdb_txn_abort(e->mr);
		e->mr = NULL;
	}
}

/* Look @k up in the read txn; die unless it holds exactly @want. */
static void get_check(struct eng *e, const uint8_t *k, const uint8_t *want_v)
{
	const void *v;
	size_t vlen;
	if (is_cow(e)) {
		cow_buf b;
		int rc = cow_map_get(e->crm, k, KLEN, &b);
		if (rc)
			die("cowkit: get of a loaded key: %s", cow_strerror(rc));
		v = b.data;
		vlen = b.len;
	} else {
		MDB_val mk = {KLEN, (void *)k}, mv;
		int rc = mdb_get(e->mr, e->dbi, &mk, &mv);
		if (rc)
			die("lmdb: get of a loaded key: %s", mdb_strerror(rc));
		v = mv.mv_data;
		vlen = mv.mv_size;
	}
	if (vlen != VLEN || memcmp(v, want_v, VLEN) != 0)
		die("%s: get returned a wrong value (%zu bytes)", e->name, vlen);
}

/* Walk the whole map in the read txn; die unless keys ascend strictly. */
static uint64_t scan(struct eng *e)
{
	uint64_t n = 0;
	uint8_t prev[KLEN];
	if (is_cow(e)) {
		cow_cursor *c;
		CK_COW(cow_cursor_open(e->crm, &c));
		int rc = cow_cursor_first(c);
		while (rc == 0) {
			cow_buf k, v;
			CK_COW(cow_cursor_get(c, &k, &v));
			if (k.len != KLEN || v.len != VLEN ||
			    (n && memcmp(prev, k.data, KLEN) >= 0))
				die("cowkit: scan out of order or wrong sizes at entry %" PRIu64,
				    n);
			memcpy(prev, k.data, KLEN);
			n++;
			rc = cow_cursor_next(c);
		}
		if (rc != COW_ENOTFOUND)
			die("cowkit: scan: %s", cow_strerror(rc));
		cow_cursor_close(c);
	} else {
		MDB_cursor *c;
		MDB_val k, v;
		CK_MDB(mdb_cursor_open(e->mr, e->dbi, &c));
		int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		while (rc == 0) {
			if (k.mv_size != KLEN || v.mv_size != VLEN ||
			    (n && memcmp(prev, k.mv_data, KLEN) >= 0))
				die("lmdb: scan out of order or wrong sizes at entry %" PRIu64, n);
			memcpy(prev, k.mv_data, KLEN);
			n++;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		}
		if (rc != MDB_NOTFOUND)
			die("lmdb: scan: %s", mdb_strerror(rc));
		mdb_cursor_close(c);
	}
	return n;
}

static void eng_sync(struct eng *e)
{
	if (is_cow(e))
		CK_COW(cow_store_sync(e->s));
	else
		CK_MDB(mdb_env_sync(e->env, 1));
}

/* Bytes this process has caused to be written to storage (/proc/self/io). */
static double written_mib(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	if (!f)
		return 0;
	char line[128];
	unsigned long long v = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "write_bytes: %llu", &v) == 1)
			break;
	fclose(f);
	return (double)v / MIB;
}

static double file_mib(const struct eng *e)
{
	struct stat st;
	if (stat(e->file, &st) != 0)
		die("stat %s: %s", e->file, strerror(errno));
	return (double)st.st_size / MIB;
}

/* Bytes the live data occupies in the engine: tree pages (and cowkit's space maps). */
static double live_mib(struct eng *e)
{
	if (is_cow(e)) {
		cow_store_stats st;
		CK_COW(cow_store_stat(e->s, &st));
		return (double)st.used_bytes / MIB;
	}
	MDB_stat st;
	MDB_txn *t;
	CK_MDB(mdb_txn_begin(e->env, NULL, MDB_RDONLY, &t));
	CK_MDB(mdb_stat(t, e->dbi, &st));
	mdb_txn_abort(t);
	return (double)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages + 2) *
	       st.ms_psize / MIB;
}

/* ---- results ---- */

enum { ENG_LMDB, ENG_COW, NENG };
enum {
	PH_INSERT_1TXN,
	PH_LOAD_SIZE,
	PH_GET,
	PH_SCAN,
	PH_PUT_LATENCY,
	PH_INSERT_PER_TXN,
	PH_READER_NOSYNC,
	PH_READER_SYNC,
	NPH
};

static const char *const phase_name[NPH] = {
	"insert_1txn", "load_size",	 "get",		  "scan",
	"put_latency", "insert_per_txn", "reader_nosync", "reader_sync",
};

struct row {
	bool done;
	uint64_t ops;
	double secs, p50, p99, file, live;
	double wrote; /* MiB this process sent to storage during the timed part */
};

static struct row res[NPH][NENG][16]; /* per run */
static FILE *say; /* the human summary: stdout, or stderr when the CSV goes there */

static struct row *row(int ph, int eng, uint64_t run)
{
	struct row *r = &res[ph][eng][run];
	memset(r, 0, sizeof(*r));
	r->done = true;
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void sync_all(void)
{
	/* Let the previous phase's writeback finish before the next one is timed. */
	sync();
}

/* ---- phases ---- */

static void phase_load(struct eng *e, int ei, uint64_t run)
{
	eng_open(e, false);
	sync_all();

	struct row *r = row(PH_INSERT_1TXN, ei, run);
	double w0 = written_mib();
	double t0 = now();
	wbegin(e);
	for (uint64_t i = 0; i < cfg.keys; i++)
		put(e, key(ins_order[i]), value(ins_order[i], 0));
	wcommit(e);
	r->secs = now() - t0;
	r->wrote = written_mib() - w0;
	r->ops = cfg.keys;
	r->file = file_mib(e);

	r = row(PH_LOAD_SIZE, ei, run);
	r->file = file_mib(e);
	r->live = live_mib(e);
	r->ops = cfg.keys;

	/* Warm: one untimed walk over everything. */
	rbegin(e);
	if (scan(e) != cfg.keys)
		die("%s: warm-up scan count differs from %" PRIu64, e->name, cfg.keys);
	rend(e);

	r = row(PH_GET, ei, run);
	rbegin(e);
	t0 = now();
	for (uint64_t i = 0; i < cfg.keys; i++)
		get_check(e, key(get_order[i]), value(get_order[i], 0));
	r->secs = now() - t0;
	rend(e);
	r->ops = cfg.keys;

	/* A scan is short: time several, each in its own read txn. */
	r = row(PH_SCAN, ei, run);
	for (uint64_t pass = 0; pass < cfg.scans; pass++) {
		rbegin(e);
		t0 = now();
		uint64_t n = scan(e);
		r->secs += now() - t0;
		rend(e);
		if (n != cfg.keys)
			die("%s: scan found %" PRIu64 " keys, loaded %" PRIu64, e->name, n,
			    cfg.keys);
		r->ops += n;
	}

	/* One durable txn per new key, as an application logging events would. */
	r = row(PH_PUT_LATENCY, ei, run);
	double *lat = malloc((cfg.commits ? cfg.commits : 1) * sizeof(*lat));
	if (!lat)
		die("out of memory");
	sync_all();
	double w1 = written_mib();
	for (uint64_t j = 0; j < cfg.commits; j++) {
		uint64_t k = cfg.keys + j;
		double a = now();
		wbegin(e);
		put(e, key(k), value(k, 0));
		wcommit(e);
		lat[j] = now() - a;
		r->secs += lat[j];
	}
	r->ops = cfg.commits;
	r->wrote = written_mib() - w1;
	if (cfg.commits) {
		qsort(lat, cfg.commits, sizeof(*lat), cmp_double);
		r->p50 = lat[cfg.commits / 2] * 1e6;
		r->p99 = lat[cfg.commits * 99 / 100] * 1e6;
	}
	free(lat);
	r->file = file_mib(e);
	rbegin(e);
	for (uint64_t j = 0; j < cfg.commits; j++)
		get_check(e, key(cfg.keys + j), value(cfg.keys + j, 0));
	rend(e);
	eng_close(e);
}

static void phase_per_txn(struct eng *e, int ei, uint64_t run)
{
	eng_open(e, false);
	sync_all();
	struct row *r = row(PH_INSERT_PER_TXN, ei, run);
	double w0 = written_mib();
	double t0 = now();
	for (uint64_t i = 0; i < cfg.keys;) {
		wbegin(e);
		for (uint64_t j = 0; j < cfg.per_txn && i < cfg.keys; j++, i++)
			put(e, key(ins_order[i]), value(ins_order[i], 0));
		wcommit(e);
	}
	r->secs = now() - t0;
	r->wrote = written_mib() - w0;
	r->ops = cfg.keys;
	r->file = file_mib(e);
	rbegin(e);
	for (uint64_t i = 0; i < cfg.keys; i += 997)
		get_check(e, key(i), value(i, 0));
	rend(e);
	eng_close(e);
}

/*
 * A reader pinned at the loaded generation while @cfg.updates txns rewrite
 * one random value each, on a NOSYNC store (as the LMDB anchors measured);
 * with @sync_every, a forced sync after every that many txns.
 */
static void phase_reader(struct eng *e, int ei, uint64_t run, int ph, uint64_t sync_every)
{
	eng_open(e, true);
	wbegin(e);
	for (uint64_t i = 0; i < cfg.keys; i++)
		put(e, key(ins_order[i]), value(ins_order[i], 0));
	wcommit(e);
	eng_sync(e);
	sync_all();

	struct row *r = row(ph, ei, run);
	r->live = live_mib(e);
	double before = file_mib(e);
	rbegin(e);
	double w0 = written_mib();
	double t0 = now();
	for (uint64_t u = 0; u < cfg.updates; u++) {
		uint32_t k = upd_order[u];
		wbegin(e);
		put(e, key(k), value(k, u + 1));
		wcommit(e);
		if (sync_every && (u + 1) % sync_every == 0)
			eng_sync(e);
	}
	eng_sync(e);
	r->secs = now() - t0;
	r->wrote = written_mib() - w0;
	r->ops = cfg.updates;
	r->file = file_mib(e);
	if (is_cow(e)) {
		cow_store_stats st;
		CK_COW(cow_store_stat(e->s, &st));
		fprintf(stderr, "  cowkit %s: used %.1f pending %.1f free %.1f MiB\n",
			phase_name[ph], (double)st.used_bytes / MIB, (double)st.pending_bytes / MIB,
			(double)st.free_bytes / MIB);
	}
	/* The pinned reader still sees the loaded values. */
	for (uint64_t u = 0; u < cfg.updates && u < 1000; u++)
		get_check(e, key(upd_order[u]), value(upd_order[u], 0));
	rend(e);
	/* And a new reader sees the last update of the first updated key. */
	if (cfg.updates) {
		uint64_t last = 0;
		for (uint64_t u = 0; u < cfg.updates; u++)
			if (upd_order[u] == upd_order[0])
				last = u;
		rbegin(e);
		get_check(e, key(upd_order[0]), value(upd_order[0], last + 1));
		rend(e);
	}
	fprintf(stderr, "  %s %s: file %.1f -> %.1f MiB, live %.1f MiB\n", e->name, phase_name[ph],
		before, r->file, r->live);
	eng_close(e);
}

/* ---- report ---- */

static double ops_per_s(const struct row *r)
{
	return r->secs > 0 ? (double)r->ops / r->secs : 0;
}

/* The median run of a phase: by throughput, by p50 for latency, by size otherwise. */
static const struct row *median(int ph, int ei)
{
	double key_of[16];
	int idx[16], n = 0;
	for (uint64_t run = 0; run < cfg.runs; run++) {
		const struct row *r = &res[ph][ei][run];
		if (!r->done)
			continue;
		double k = ph == PH_PUT_LATENCY ? r->p50
			   : ph == PH_LOAD_SIZE ? r->file
						: ops_per_s(r);
		int j = n++;
		while (j > 0 && key_of[j - 1] > k) {
			key_of[j] = key_of[j - 1];
			idx[j] = idx[j - 1];
			j--;
		}
		key_of[j] = k;
		idx[j] = (int)run;
	}
	return n ? &res[ph][ei][idx[n / 2]] : NULL;
}

struct verdict {
	double ratio;
	const char *target;
	bool met;
};

static struct verdict judge(int ph, const struct row *c, const struct row *l)
{
	struct verdict v = {0, "", false};
	switch (ph) {
	case PH_INSERT_1TXN:
	case PH_GET:
	case PH_SCAN:
		v.ratio = ops_per_s(l) > 0 ? ops_per_s(c) / ops_per_s(l) : 0;
		v.target = ">=1.0x";
		v.met = v.ratio >= 1.0;
		break;
	case PH_INSERT_PER_TXN:
		v.ratio = ops_per_s(l) > 0 ? ops_per_s(c) / ops_per_s(l) : 0;
		v.target = ">=1.5x";
		v.met = v.ratio >= 1.5;
		break;
	case PH_PUT_LATENCY:
		v.ratio = l->p50 > 0 ? c->p50 / l->p50 : 0;
		v.target = "p50<=0.7x";
		v.met = v.ratio <= 0.7;
		break;
	case PH_LOAD_SIZE:
		v.ratio = l->file > 0 ? c->file / l->file : 0;
		v.target = "";
		v.met = true;
		break;
	default: /* reader phases: the file against the live data */
		v.ratio = l->file > 0 ? c->file / l->file : 0;
		v.target = "file<=2x_live";
		v.met = c->live > 0 && c->file <= 2 * c->live;
		break;
	}
	return v;
}

static void csv_row(FILE *f, int ph, const char *eng, const struct row *r, double ratio,
		    const char *target, const char *met)
{
	fprintf(f, "%s,%s,%" PRIu64 ",%.4f,%.0f,%.1f,%.1f,%.2f,%.2f,%.1f,%.3f,%s,%s\n",
		phase_name[ph], eng, r->ops, r->secs, ops_per_s(r), r->p50, r->p99, r->file,
		r->live, r->wrote, ratio, target, met);
}

/* A phase's figure for the human summary. */
static void describe(int ph, const struct row *r, char *buf, size_t size)
{
	if (!r)
		snprintf(buf, size, "-");
	else if (ph == PH_PUT_LATENCY)
		snprintf(buf, size, "%.0f/%.0f us", r->p50, r->p99);
	else if (ph == PH_LOAD_SIZE)
		snprintf(buf, size, "%.1f MiB", r->file);
	else if (ph == PH_READER_NOSYNC || ph == PH_READER_SYNC)
		snprintf(buf, size, "%.0f/%.0f MiB", r->file, r->live);
	else
		snprintf(buf, size, "%.0f k/s", ops_per_s(r) / 1e3);
}

static void report(FILE *f)
{
	fprintf(f, "phase,engine,ops,seconds,ops_per_s,p50_us,p99_us,file_mib,live_mib,"
		   "write_mib,ratio_vs_lmdb,target,met\n");
	fprintf(say, "\n%-15s %14s %14s %8s  %s\n", "phase", "lmdb", "cowkit", "ratio", "target");
	for (int ph = 0; ph < NPH; ph++) {
		const struct row *l = median(ph, ENG_LMDB), *c = median(ph, ENG_COW);
		if (!l && !c)
			continue;
		bool reader = ph == PH_READER_NOSYNC || ph == PH_READER_SYNC;
		struct verdict v = {0, "", false};
		if (l && c)
			v = judge(ph, c, l);
		if (l)
			csv_row(f, ph, "lmdb", l, 1.0, reader ? "file<=2x_live" : "",
				reader ? (l->file <= 2 * l->live ? "yes" : "no") : "");
		if (c)
			csv_row(f, ph, "cowkit", c, v.ratio, v.target,
				*v.target ? (v.met ? "yes" : "no") : "");

		char lb[64], cb[64];
		describe(ph, l, lb, sizeof(lb));
		describe(ph, c, cb, sizeof(cb));
		fprintf(say, "%-15s %14s %14s %7.2fx  %s%s\n", phase_name[ph], lb, cb, v.ratio,
			v.target, *v.target ? (v.met ? " met" : " MISSED") : "");
		if (reader)
			fprintf(say,
				"%-15s %14.0f %14.0f   (update txn/s; file/live: %.1fx, %.1fx)\n",
				"", l ? ops_per_s(l) : 0, c ? ops_per_s(c) : 0,
				l ? l->file / l->live : 0, c ? c->file / c->live : 0);
	}
}

int main(int argc, char **argv)
{
	cfg.keys = env_u64("COW_BENCH_KEYS", 1000000);
	cfg.per_txn = env_u64("COW_BENCH_PER_TXN", 1000);
	cfg.commits = env_u64("COW_BENCH_COMMITS", 1000);
	cfg.updates = env_u64("COW_BENCH_UPDATES", 100000);
	cfg.sync_every = env_u64("COW_BENCH_SYNC_EVERY", 1000);
	cfg.runs = env_u64("COW_BENCH_RUNS", 1);
	cfg.scans = env_u64("COW_BENCH_SCANS", 5);
	cfg.phases = getenv("COW_BENCH_PHASES");
	cfg.engine = getenv("COW_BENCH_ENGINE");
	cfg.dir = getenv("COW_BENCH_DIR");
	if (!cfg.dir || !*cfg.dir)
		cfg.dir = getenv("TMPDIR");
	if (!cfg.dir || !*cfg.dir)
		cfg.dir = "/tmp";
	if (cfg.keys < 2 || cfg.keys + cfg.commits > UINT32_MAX || cfg.per_txn == 0)
		die("COW_BENCH_KEYS must be 2..2^32-1-COMMITS, COW_BENCH_PER_TXN at least 1");
	if (cfg.runs < 1 || cfg.runs > 16)
		die("COW_BENCH_RUNS must be 1..16");
	FILE *out = stdout;
	if (argc > 1 && !(out = fopen(argv[1], "w")))
		die("%s: %s", argv[1], strerror(errno));

	say = out == stdout ? stderr : stdout;
	make_data();
	fprintf(say,
		"store_bench: %" PRIu64 " keys (16 B + 100 B), %" PRIu64 " per txn, %" PRIu64
		" commits, %" PRIu64 " updates, sync every %" PRIu64 ", %" PRIu64
		" run(s), in %s\n",
		cfg.keys, cfg.per_txn, cfg.commits, cfg.updates, cfg.sync_every, cfg.runs, cfg.dir);
	fflush(say);

	struct eng engs[NENG] = {[ENG_LMDB] = {.name = "lmdb"}, [ENG_COW] = {.name = "cowkit"}};
	/*
	 * Engines take turns group by group, so that both meet about the same
	 * load on this shared machine; which one goes first alternates.
	 */
	for (uint64_t run = 0; run < cfg.runs; run++) {
		for (int g = 0; g < 4; g++) {
			static const char *const group[] = {"load", "per_txn", "reader", "reader"};
			static const char *const label[] = {"load", "per_txn", "reader_nosync",
							    "reader_sync"};
			if (!want(group[g]) || (g >= 2 && !cfg.updates) ||
			    (g == 3 && !cfg.sync_every))
				continue;
			for (int k = 0; k < NENG; k++) {
				int ei = (int)((k + run + (uint64_t)g) % NENG);
				struct eng *e = &engs[ei];
				if (cfg.engine && *cfg.engine && strcmp(cfg.engine, e->name) != 0)
					continue;
				double t0 = now();
				if (g == 0)
					phase_load(e, ei, run);
				else if (g == 1)
					phase_per_txn(e, ei, run);
				else if (g == 2)
					phase_reader(e, ei, run, PH_READER_NOSYNC, 0);
				else
					phase_reader(e, ei, run, PH_READER_SYNC, cfg.sync_every);
				fprintf(stderr, "run %" PRIu64 " %s %s: %.1f s\n", run + 1,
					label[g], e->name, now() - t0);
			}
		}
	}
	report(out);
	if (out != stdout && fclose(out) != 0)
		die("%s: %s", argv[1], strerror(errno));
	return 0;
}
