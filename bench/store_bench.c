/*
 * store_bench: cowkit's map store against LMDB, RocksDB, SQLite and the bare
 * disk, on the same data, in one run.
 *
 * Workload (DESIGN.md sections 6 and 11): N keys of 16 bytes (big-endian
 * counter + 64-bit hash) with 100-byte random values, inserted in one
 * shuffled order (Fisher-Yates, fixed seed) that every engine shares.
 * Phases, each on a fresh store in its own temporary directory:
 *
 *   insert_1txn     N random-order inserts in one durable write txn
 *   load_size       file size and live bytes right after that load
 *   get             N random gets (warm: one untimed scan first), one read txn
 *   scan            full cursor scans in key order (5, each in its own txn)
 *   put_latency     C durable txns of one new key each, on the loaded store:
 *                   p50/p99 per commit, bytes written per commit
 *   insert_per_txn  N random-order inserts, P per durable txn
 *   reader_nosync   NOSYNC store: load N, hold a read txn, U update txns of one
 *                   random key each; file size after vs live data
 *   reader_sync     the same with a forced sync every S update txns
 *
 * Engines: cowkit and LMDB run every phase. RocksDB (C API, WAL on,
 * WriteOptions.sync) and SQLite (WITHOUT ROWID table, journal_mode=WAL,
 * synchronous=FULL) run put_latency, after the same untimed load of N keys
 * (then a flush and full compaction, or a WAL checkpoint, so that the
 * commits meet a settled store), and insert_per_txn; each is built in only
 * when CMake found its library, and otherwise says it was skipped. Two
 * rows name the physical floor of put_latency on the same file system:
 * floor_4k, one 4 KiB pwrite + fdatasync, and floor_commit, one pwrite of
 * as many bytes as a cowkit one-key commit wrote (measured by the shim,
 * below) + fdatasync, both into blocks written and synced beforehand, so
 * that fdatasync has no file metadata to log.
 *
 * Rounds: every phase group runs COW_BENCH_RUNS times (5), the engines
 * taking turns within a round, the first of them rotating from round to
 * round (A B C, B C A, ...), so that all meet about the same load on this
 * shared machine. Every figure is the median of the rounds with its min and
 * max; every ratio is computed within each round, then its median, min and
 * max are reported.
 *
 * Bytes written: with the io_count shim preloaded (bench/lib/io_count.c,
 * LD_PRELOAD and IO_COUNT_DIR; bench/store.sh does it), the bytes of every
 * write-family call on the stores' files during the timed part, per txn.
 * Without it those columns are empty. The kernel's /proc/self/io
 * write_bytes (page-cache folios dirtied) is reported beside it.
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
 * COW_BENCH_RUNS (rounds, 5), COW_BENCH_QUICK=1 (a short run for checking
 * the bench itself: N 20000, C 200, U 2000, S 500, unless set), COW_BENCH_DIR
 * (parent of the temporary directories; $TMPDIR or /tmp), COW_BENCH_PHASES
 * (comma list of phase groups: load,per_txn,reader; all by default),
 * COW_BENCH_ENGINE (comma list of engines: lmdb,cowkit,rocksdb,sqlite,floor;
 * all by default; ratios need both sides).
 *
 * Usage: store_bench [CSV_FILE]
 *
 * With CSV_FILE X.csv, the per-engine rows go to X.csv and the ratios to
 * X_ratio.csv, each written to a temporary name and renamed at the end, so
 * that a stopped run leaves the previous files whole. Without it both go to
 * stdout, the ratios after a blank line.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
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
#ifdef HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif
#ifdef HAVE_SQLITE
#include <sqlite3.h>
#endif

#include "bench_util.h"
#include "cow/store.h"

#define KLEN	16
#define VLEN	100
#define POOL	(1u << 20) /* random bytes that values are cut from */
#define MIB	(1024.0 * 1024.0)
#define MAXRUNS 16

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

/* ---- the engines behind one small interface ---- */

enum { ENG_LMDB, ENG_COW, ENG_ROCKS, ENG_SQLITE, ENG_FLOOR4K, ENG_FLOORC, NENG };

static const char *const eng_name[NENG] = {
	[ENG_LMDB] = "lmdb",	 [ENG_COW] = "cowkit",	     [ENG_ROCKS] = "rocksdb",
	[ENG_SQLITE] = "sqlite", [ENG_FLOOR4K] = "floor_4k", [ENG_FLOORC] = "floor_commit",
};

/* Why a peer has no figures in this build, or NULL when it is built in. */
static const char *missing(int kind)
{
#ifndef HAVE_ROCKSDB
	if (kind == ENG_ROCKS)
		return "not built in: librocksdb-dev was missing when cmake ran";
#endif
#ifndef HAVE_SQLITE
	if (kind == ENG_SQLITE)
		return "not built in: libsqlite3-dev was missing when cmake ran";
#endif
	(void)kind;
	return NULL;
}

struct eng {
	int kind;
	const char *name;
	char dir[4096];
	char file[4200]; /* the data file whose size is reported; "" = the whole dir */
	/* cowkit */
	cow_store *s;
	cow_txn *cw, *cr;
	cow_map *cwm, *crm;
	bool have_map;
	/* LMDB */
	MDB_env *env;
	MDB_txn *mw, *mr;
	MDB_dbi dbi;
#ifdef HAVE_ROCKSDB
	rocksdb_t *rdb;
	rocksdb_options_t *ropt;
	rocksdb_writeoptions_t *rwo;
	rocksdb_readoptions_t *rro;
	rocksdb_writebatch_t *rwb;
#endif
#ifdef HAVE_SQLITE
	sqlite3 *db;
	sqlite3_stmt *ins, *sel;
#endif
};

#ifdef HAVE_ROCKSDB
static void ck_rocks(char *err, const char *what)
{
	if (err)
		die("rocksdb: %s: %s", what, err);
}
#endif

#ifdef HAVE_SQLITE
static void ck_sql(struct eng *e, int rc, const char *what)
{
	if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		die("sqlite: %s: %s", what, sqlite3_errmsg(e->db));
}

static void sql(struct eng *e, const char *stmt)
{
	char *msg = NULL;
	if (sqlite3_exec(e->db, stmt, NULL, NULL, &msg) != SQLITE_OK)
		die("sqlite: %s: %s", stmt, msg ? msg : "?");
}
#endif

static void eng_open(struct eng *e, bool nosync)
{
	char tmpl[4096];
	int n = snprintf(tmpl, sizeof(tmpl), "%s/cowbench.XXXXXX", cfg.dir);
	if (n < 0 || (size_t)n >= sizeof(tmpl))
		die("directory name too long: %s", cfg.dir);
	if (!mkdtemp(tmpl))
		die("mkdtemp %s: %s", tmpl, strerror(errno));
	snprintf(e->dir, sizeof(e->dir), "%s", tmpl);
	e->file[0] = '\0';
	switch (e->kind) {
	case ENG_COW: {
		snprintf(e->file, sizeof(e->file), "%s/store.cow", e->dir);
		cow_store_options o = {.flags = COW_STORE_CREATE | (nosync ? COW_STORE_NOSYNC : 0)};
		CK_COW(cow_store_open(e->file, &o, &e->s));
		e->have_map = false;
		break;
	}
	case ENG_LMDB: {
		snprintf(e->file, sizeof(e->file), "%s/data.mdb", e->dir);
		/* Room for the load (~200 B/key) and ~7 pages per update under a reader. */
		uint64_t map = (256ull << 20) + cfg.keys * 1024 + (cfg.updates + 1) * 64 * 1024 +
			       cfg.commits * 4096;
		CK_MDB(mdb_env_create(&e->env));
		CK_MDB(mdb_env_set_mapsize(e->env, (size_t)map));
		CK_MDB(mdb_env_open(e->env, e->dir, nosync ? MDB_NOSYNC : 0, 0644));
		e->dbi = 0;
		break;
	}
#ifdef HAVE_ROCKSDB
	case ENG_ROCKS: {
		/* Defaults, as a user would start; the WAL on and synced at every write. */
		char *err = NULL;
		e->ropt = rocksdb_options_create();
		rocksdb_options_set_create_if_missing(e->ropt, 1);
		e->rdb = rocksdb_open(e->ropt, e->dir, &err);
		ck_rocks(err, "open");
		e->rwo = rocksdb_writeoptions_create();
		rocksdb_writeoptions_set_sync(e->rwo, nosync ? 0 : 1);
		rocksdb_writeoptions_disable_WAL(e->rwo, 0);
		e->rro = rocksdb_readoptions_create();
		e->rwb = rocksdb_writebatch_create();
		break;
	}
#endif
#ifdef HAVE_SQLITE
	case ENG_SQLITE: {
		char path[4200];
		snprintf(path, sizeof(path), "%s/bench.db", e->dir);
		if (sqlite3_open(path, &e->db) != SQLITE_OK)
			die("sqlite: open %s: %s", path, sqlite3_errmsg(e->db));
		/* A clustered B-tree on the key, as LMDB's and cowkit's. */
		sql(e, "PRAGMA journal_mode=WAL");
		sql(e, nosync ? "PRAGMA synchronous=OFF" : "PRAGMA synchronous=FULL");
		sql(e, "CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
		ck_sql(e,
		       sqlite3_prepare_v2(e->db, "INSERT INTO kv(k, v) VALUES(?1, ?2)", -1, &e->ins,
					  NULL),
		       "prepare insert");
		ck_sql(e,
		       sqlite3_prepare_v2(e->db, "SELECT v FROM kv WHERE k = ?1", -1, &e->sel,
					  NULL),
		       "prepare select");
		break;
	}
#endif
	default:
		die("%s: %s", e->name, missing(e->kind) ? missing(e->kind) : "no such engine");
	}
}

/* Remove @dir and the files in it (every engine keeps its files flat). */
static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		die("opendir %s: %s", dir, strerror(errno));
	struct dirent *de;
	char p[4400];
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (unlink(p) != 0)
			die("unlink %s: %s", p, strerror(errno));
	}
	closedir(d);
	if (rmdir(dir) != 0)
		die("rmdir %s: %s", dir, strerror(errno));
}

static void eng_close(struct eng *e)
{
	switch (e->kind) {
	case ENG_COW:
		cow_store_close(e->s);
		e->s = NULL;
		break;
	case ENG_LMDB:
		mdb_env_close(e->env);
		e->env = NULL;
		break;
#ifdef HAVE_ROCKSDB
	case ENG_ROCKS:
		rocksdb_writebatch_destroy(e->rwb);
		rocksdb_readoptions_destroy(e->rro);
		rocksdb_writeoptions_destroy(e->rwo);
		rocksdb_close(e->rdb);
		rocksdb_options_destroy(e->ropt);
		e->rdb = NULL;
		break;
#endif
#ifdef HAVE_SQLITE
	case ENG_SQLITE:
		sqlite3_finalize(e->ins);
		sqlite3_finalize(e->sel);
		if (sqlite3_close(e->db) != SQLITE_OK)
			die("sqlite: close: %s", sqlite3_errmsg(e->db));
		e->db = NULL;
		break;
#endif
	}
	rm_dir(e->dir);
}

static void wbegin(struct eng *e)
{
	switch (e->kind) {
	case ENG_COW:
		CK_COW(cow_txn_begin(e->s, 0, &e->cw));
		if (!e->have_map) {
			CK_COW(cow_map_create(e->cw, "bench"));
			e->have_map = true;
		}
		CK_COW(cow_map_open(e->cw, "bench", &e->cwm));
		break;
	case ENG_LMDB:
		CK_MDB(mdb_txn_begin(e->env, NULL, 0, &e->mw));
		if (!e->dbi)
			CK_MDB(mdb_dbi_open(e->mw, NULL, 0, &e->dbi));
		break;
#ifdef HAVE_ROCKSDB
	case ENG_ROCKS:
		/* A txn is a write batch: atomic, and one synced WAL append. */
		rocksdb_writebatch_clear(e->rwb);
		break;
#endif
#ifdef HAVE_SQLITE
	case ENG_SQLITE:
		sql(e, "BEGIN");
		break;
#endif
	}
}

static void put(struct eng *e, const uint8_t *k, const uint8_t *v)
{
	switch (e->kind) {
	case ENG_COW:
		CK_COW(cow_map_put(e->cwm, k, KLEN, v, VLEN));
		break;
	case ENG_LMDB: {
		MDB_val mk = {KLEN, (void *)k}, mv = {VLEN, (void *)v};
		CK_MDB(mdb_put(e->mw, e->dbi, &mk, &mv, 0));
		break;
	}
#ifdef HAVE_ROCKSDB
	case ENG_ROCKS:
		rocksdb_writebatch_put(e->rwb, (const char *)k, KLEN, (const char *)v, VLEN);
		break;
#endif
#ifdef HAVE_SQLITE
	case ENG_SQLITE:
		ck_sql(e, sqlite3_bind_blob(e->ins, 1, k, KLEN, SQLITE_STATIC), "bind");
		ck_sql(e, sqlite3_bind_blob(e->ins, 2, v, VLEN, SQLITE_STATIC), "bind");
		if (sqlite3_step(e->ins) != SQLITE_DONE)
			die("sqlite: insert: %s", sqlite3_errmsg(e->db));
		ck_sql(e, sqlite3_reset(e->ins), "reset");
		break;
#endif
	}
}

static void wcommit(struct eng *e)
{
	switch (e->kind) {
	case ENG_COW:
		CK_COW(cow_txn_commit(e->cw));
		e->cw = NULL;
		break;
	case ENG_LMDB:
		CK_MDB(mdb_txn_commit(e->mw));
		e->mw = NULL;
		break;
#ifdef HAVE_ROCKSDB
	case ENG_ROCKS: {
		char *err = NULL;
		rocksdb_write(e->rdb, e->rwo, e->rwb, &err);
		ck_rocks(err, "write");
		rocksdb_writebatch_clear(e->rwb);
		break;
	}
#endif
#ifdef HAVE_SQLITE
	case ENG_SQLITE:
		sql(e, "COMMIT");
		break;
#endif
	}
}

static void rbegin(struct eng *e)
{
	switch (e->kind) {
	case ENG_COW:
		CK_COW(cow_txn_begin(e->s, COW_TXN_RDONLY, &e->cr));
		CK_COW(cow_map_open(e->cr, "bench", &e->crm));
		break;
	case ENG_LMDB:
		CK_MDB(mdb_txn_begin(e->env, NULL, MDB_RDONLY, &e->mr));
		break;
#ifdef HAVE_SQLITE
	case ENG_SQLITE:
		sql(e, "BEGIN");
		break;
#endif
	}
}

static void rend(struct eng *e)
{
	switch (e->kind) {
	case ENG_COW:
		cow_txn_abort(e->cr);
		e->cr = NULL;
		break;
	case ENG_LMDB:
		mdb_txn_abort(e->mr);
		e->mr = NULL;
		break;
#ifdef HAVE_SQLITE
	case ENG_SQLITE:
		sql(e, "COMMIT");
		break;
#endif
	}
}

/* Look @k up in the read txn; die unless it holds exactly @want. */
static void get_check(struct eng *e, const uint8_t *k, const uint8_t *want_v)
{
	const void *v = NULL;
	size_t vlen = 0;
	bool same;
	switch (e->kind) {
	case ENG_COW: {
		cow_buf b;
		int rc = cow_map_get(e->crm, k, KLEN, &b);
		if (rc)
			die("cowkit: get of a loaded key: %s", cow_strerror(rc));
		v = b.data;
		vlen = b.len;
		break;
	}
	case ENG_LMDB: {
		MDB_val mk = {KLEN, (void *)k}, mv;
		int rc = mdb_get(e->mr, e->dbi, &mk, &mv);
		if (rc)
			die("lmdb: get of a loaded key: %s", mdb_strerror(rc));
		v = mv.mv_data;
		vlen = mv.mv_size;
		break;
	}
#ifdef HAVE_ROCKSDB
	case ENG_ROCKS: {
		char *err = NULL;
		char *got = rocksdb_get(e->rdb, e->rro, (const char *)k, KLEN, &vlen, &err);
		ck_rocks(err, "get");
		if (!got)
			die("rocksdb: get of a loaded key: not found");
		same = vlen == VLEN && memcmp(got, want_v, VLEN) == 0;
		rocksdb_free(got);
		if (!same)
			die("rocksdb: get returned a wrong value (%zu bytes)", vlen);
		return;
	}
#endif
#ifdef HAVE_SQLITE
	case ENG_SQLITE: {
		ck_sql(e, sqlite3_bind_blob(e->sel, 1, k, KLEN, SQLITE_STATIC), "bind");
		if (sqlite3_step(e->sel) != SQLITE_ROW)
			die("sqlite: get of a loaded key: %s", sqlite3_errmsg(e->db));
		v = sqlite3_column_blob(e->sel, 0);
		vlen = (size_t)sqlite3_column_bytes(e->sel, 0);
		same = vlen == VLEN && memcmp(v, want_v, VLEN) == 0;
		ck_sql(e, sqlite3_reset(e->sel), "reset");
		if (!same)
			die("sqlite: get returned a wrong value (%zu bytes)", vlen);
		return;
	}
#endif
	}
	same = vlen == VLEN && memcmp(v, want_v, VLEN) == 0;
	if (!same)
		die("%s: get returned a wrong value (%zu bytes)", e->name, vlen);
}

/* Walk the whole map in the read txn; die unless keys ascend strictly (cowkit, LMDB). */
static uint64_t scan(struct eng *e)
{
	uint64_t n = 0;
	uint8_t prev[KLEN];
	if (e->kind == ENG_COW) {
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
	if (e->kind == ENG_COW)
		CK_COW(cow_store_sync(e->s));
	else
		CK_MDB(mdb_env_sync(e->env, 1));
}

/*
 * After a peer's load: leave it as settled as cowkit's and LMDB's are after
 * theirs, so that the commits timed next do not pay for the load. RocksDB
 * flushes its memtable and compacts everything (no background work left);
 * SQLite checkpoints its WAL into the database and empties it.
 */
static void settle(struct eng *e)
{
	switch (e->kind) {
#ifdef HAVE_ROCKSDB
	case ENG_ROCKS: {
		char *err = NULL;
		rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
		rocksdb_flushoptions_set_wait(fo, 1);
		rocksdb_flush(e->rdb, fo, &err);
		rocksdb_flushoptions_destroy(fo);
		ck_rocks(err, "flush");
		rocksdb_compact_range(e->rdb, NULL, 0, NULL, 0);
		break;
	}
#endif
#ifdef HAVE_SQLITE
	case ENG_SQLITE:
		sql(e, "PRAGMA wal_checkpoint(TRUNCATE)");
		break;
#endif
	default:
		break;
	}
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

/* The io_count shim's byte counter, when it is preloaded (bench/lib/io_count.h). */
static uint64_t (*shim_bytes)(void);

static double shim_now(void)
{
	return shim_bytes ? (double)shim_bytes() : 0;
}

static double file_mib(const struct eng *e)
{
	struct stat st;
	if (e->file[0]) {
		if (stat(e->file, &st) != 0)
			die("stat %s: %s", e->file, strerror(errno));
		return (double)st.st_size / MIB;
	}
	/* RocksDB's and SQLite's files: everything in the directory. */
	DIR *d = opendir(e->dir);
	if (!d)
		die("opendir %s: %s", e->dir, strerror(errno));
	double sum = 0;
	struct dirent *de;
	char p[4400];
	while ((de = readdir(d)) != NULL) {
		snprintf(p, sizeof(p), "%s/%s", e->dir, de->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			sum += (double)st.st_size;
	}
	closedir(d);
	return sum / MIB;
}

/* Bytes the live data occupies in the engine: tree pages (and cowkit's space maps). */
static double live_mib(struct eng *e)
{
	if (e->kind == ENG_COW) {
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

/* One engine's figures for one phase in one round. */
struct row {
	bool done;
	uint64_t ops;  /* keys put, got or scanned */
	uint64_t txns; /* write txns in the timed part (what bytes are divided by) */
	double secs, p50, p99, file, live;
	double dirtied; /* bytes of page cache dirtied meanwhile (/proc/self/io) */
	double bytes;	/* bytes written to the store's files meanwhile (io_count); <0: unknown */
};

static struct row res[NPH][NENG][MAXRUNS];
static FILE *say; /* the human summary: stdout, or stderr when the CSV goes there */

static struct row *row(int ph, int eng, uint64_t run)
{
	struct row *r = &res[ph][eng][run];
	memset(r, 0, sizeof(*r));
	r->done = true;
	r->bytes = -1;
	return r;
}

/* Measure bytes from here: call before the timed part, then meter_end. */
struct meter {
	double dirtied, bytes;
};

static struct meter meter_begin(void)
{
	return (struct meter){written_mib(), shim_now()};
}

static void meter_end(struct row *r, struct meter m, uint64_t txns)
{
	r->dirtied = (written_mib() - m.dirtied) * MIB;
	r->bytes = shim_bytes ? shim_now() - m.bytes : -1;
	r->txns = txns;
}

static void sync_all(void)
{
	/* Let the previous phase's writeback finish before the next one is timed. */
	sync();
}

/* Bytes per one-key commit cowkit wrote in its last put_latency phase (0: not known). */
static double cow_commit_bytes;

/* ---- phases ---- */

static bool full_engine(const struct eng *e)
{
	return e->kind == ENG_COW || e->kind == ENG_LMDB;
}

/* One durable txn per new key, as an application logging events would. */
static void put_latency(struct eng *e, int ei, uint64_t run)
{
	struct row *r = row(PH_PUT_LATENCY, ei, run);
	double *lat = malloc((cfg.commits ? cfg.commits : 1) * sizeof(*lat));
	if (!lat)
		die("out of memory");
	sync_all();
	struct meter m = meter_begin();
	for (uint64_t j = 0; j < cfg.commits; j++) {
		uint64_t k = cfg.keys + j;
		double a = now();
		wbegin(e);
		put(e, key(k), value(k, 0));
		wcommit(e);
		lat[j] = now() - a;
		r->secs += lat[j];
	}
	meter_end(r, m, cfg.commits);
	r->ops = cfg.commits;
	if (cfg.commits) {
		qsort(lat, cfg.commits, sizeof(*lat), bench_cmp_double);
		r->p50 = lat[cfg.commits / 2] * 1e6;
		r->p99 = lat[cfg.commits * 99 / 100] * 1e6;
	}
	free(lat);
	r->file = file_mib(e);
	if (e->kind == ENG_COW && r->bytes > 0 && cfg.commits)
		cow_commit_bytes = r->bytes / (double)cfg.commits;
	rbegin(e);
	for (uint64_t j = 0; j < cfg.commits; j++)
		get_check(e, key(cfg.keys + j), value(cfg.keys + j, 0));
	rend(e);
}

static void phase_load(struct eng *e, int ei, uint64_t run)
{
	eng_open(e, false);
	sync_all();

	/* The peers load untimed: only their commits afterwards are measured. */
	bool full = full_engine(e);
	struct row scratch = {0};
	struct row *r = full ? row(PH_INSERT_1TXN, ei, run) : &scratch;
	struct meter m = meter_begin();
	double t0 = now();
	wbegin(e);
	for (uint64_t i = 0; i < cfg.keys; i++)
		put(e, key(ins_order[i]), value(ins_order[i], 0));
	wcommit(e);
	r->secs = now() - t0;
	meter_end(r, m, 1);
	r->ops = cfg.keys;
	r->file = file_mib(e);
	if (!full) {
		settle(e);
		put_latency(e, ei, run);
		eng_close(e);
		return;
	}

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

	put_latency(e, ei, run);
	eng_close(e);
}

static void write_all(int fd, const uint8_t *buf, size_t len, off_t off, const char *path)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("pwrite %s: %s", path, n < 0 ? strerror(errno) : "wrote nothing");
		buf += n;
		len -= (size_t)n;
		off += n;
	}
}

/*
 * The physical floor of a durable put on this file system: per commit one
 * pwrite + fdatasync, no tree, no checksum, no allocation. floor_4k writes
 * one 4 KiB block; floor_commit as many bytes as cowkit's last measured
 * one-key commit (rounded up to 4 KiB), when that is known. Both write into
 * blocks that were written and synced beforehand, so that fdatasync has no
 * size change or extent to log: the least a commit of that size can cost.
 * The two alternate commit by commit, so they meet the same disk.
 */
static void phase_floor(uint64_t run)
{
	char dir[4096], path[4200];
	int n = snprintf(dir, sizeof(dir), "%s/cowbench.XXXXXX", cfg.dir);
	if (n < 0 || (size_t)n >= sizeof(dir) || !mkdtemp(dir))
		die("mkdtemp under %s: %s", cfg.dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/floor.dat", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	uint64_t commits = cfg.commits ? cfg.commits : 1;
	uint64_t big = ((uint64_t)cow_commit_bytes + 4095) / 4096 * 4096;
	if (big > POOL / 2)
		big = POOL / 2;
	uint64_t span4k = commits * 4096, span = span4k + commits * big;
	for (uint64_t off = 0; off < span; off += POOL / 2)
		write_all(fd, pool, span - off < POOL / 2 ? span - off : POOL / 2, (off_t)off,
			  path);
	if (fsync(fd) != 0)
		die("fsync %s: %s", path, strerror(errno));
	sync_all();

	struct row *r4 = row(PH_PUT_LATENCY, ENG_FLOOR4K, run);
	struct row *rc = big ? row(PH_PUT_LATENCY, ENG_FLOORC, run) : NULL;
	double *lat4 = malloc(commits * sizeof(double)), *latc = malloc(commits * sizeof(double));
	if (!lat4 || !latc)
		die("out of memory");
	double b4 = 0, bc = 0, d4 = 0, dc = 0;
	for (uint64_t j = 0; j < cfg.commits; j++) {
		/* A fresh part of the pool each time, as a commit writes new bytes. */
		const uint8_t *src = pool + (j * 4099) % (POOL - big - 4096);
		double b = shim_now(), d = written_mib(), a = now();
		write_all(fd, src, 4096, (off_t)(j * 4096), path);
		if (fdatasync(fd) != 0)
			die("fdatasync %s: %s", path, strerror(errno));
		lat4[j] = now() - a;
		r4->secs += lat4[j];
		b4 += shim_now() - b;
		d4 += written_mib() - d;
		if (!rc)
			continue;
		b = shim_now();
		d = written_mib();
		a = now();
		write_all(fd, src + 4096, big, (off_t)(span4k + j * big), path);
		if (fdatasync(fd) != 0)
			die("fdatasync %s: %s", path, strerror(errno));
		latc[j] = now() - a;
		rc->secs += latc[j];
		bc += shim_now() - b;
		dc += written_mib() - d;
	}
	close(fd);
	struct row *rows[2] = {r4, rc};
	double *lats[2] = {lat4, latc}, bytes[2] = {b4, bc}, dirtied[2] = {d4, dc};
	for (int i = 0; i < 2; i++) {
		struct row *r = rows[i];
		if (!r)
			continue;
		r->ops = r->txns = cfg.commits;
		r->bytes = shim_bytes ? bytes[i] : -1;
		r->dirtied = dirtied[i] * MIB;
		if (cfg.commits) {
			qsort(lats[i], cfg.commits, sizeof(double), bench_cmp_double);
			r->p50 = lats[i][cfg.commits / 2] * 1e6;
			r->p99 = lats[i][cfg.commits * 99 / 100] * 1e6;
		}
		r->file = (double)span / MIB;
	}
	free(lat4);
	free(latc);
	rm_dir(dir);
}

static void phase_per_txn(struct eng *e, int ei, uint64_t run)
{
	eng_open(e, false);
	sync_all();
	struct row *r = row(PH_INSERT_PER_TXN, ei, run);
	struct meter m = meter_begin();
	uint64_t txns = 0;
	double t0 = now();
	for (uint64_t i = 0; i < cfg.keys; txns++) {
		wbegin(e);
		for (uint64_t j = 0; j < cfg.per_txn && i < cfg.keys; j++, i++)
			put(e, key(ins_order[i]), value(ins_order[i], 0));
		wcommit(e);
	}
	r->secs = now() - t0;
	meter_end(r, m, txns);
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
	struct meter m = meter_begin();
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
	meter_end(r, m, cfg.updates);
	r->ops = cfg.updates;
	r->file = file_mib(e);
	if (e->kind == ENG_COW) {
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

/* The figure a phase is judged by, and its unit. */
static double metric(int ph, const struct row *r)
{
	switch (ph) {
	case PH_PUT_LATENCY:
		return r->p50;
	case PH_LOAD_SIZE:
	case PH_READER_NOSYNC:
	case PH_READER_SYNC:
		return r->file;
	default:
		return ops_per_s(r);
	}
}

static const char *metric_name(int ph)
{
	switch (ph) {
	case PH_PUT_LATENCY:
		return "p50_us";
	case PH_LOAD_SIZE:
	case PH_READER_NOSYNC:
	case PH_READER_SYNC:
		return "file_mib";
	default:
		return "ops_per_s";
	}
}

static double kib_per_txn(const struct row *r)
{
	return r->bytes >= 0 && r->txns ? r->bytes / (double)r->txns / 1024 : -1;
}

static double dirtied_kib_per_txn(const struct row *r)
{
	return r->txns ? r->dirtied / (double)r->txns / 1024 : -1;
}

/* Median, min and max of @n values (n >= 1); @v is sorted in place. */
struct spread {
	int n;
	double med, min, max;
};

static struct spread spread_of(double *v, int n)
{
	struct spread s = {n, 0, 0, 0};
	if (n <= 0)
		return s;
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

/* The spread over the rounds of @get applied to engine @ei's rows of phase @ph. */
static struct spread over_runs(int ph, int ei, double (*get)(int, const struct row *))
{
	double v[MAXRUNS];
	int n = 0;
	for (uint64_t run = 0; run < cfg.runs; run++) {
		const struct row *r = &res[ph][ei][run];
		if (r->done) {
			double x = get(ph, r);
			if (x >= 0)
				v[n++] = x;
		}
	}
	return spread_of(v, n);
}

static double get_metric(int ph, const struct row *r)
{
	return metric(ph, r);
}
static double get_p99(int ph, const struct row *r)
{
	(void)ph;
	return r->p99;
}
static double get_file(int ph, const struct row *r)
{
	(void)ph;
	return r->file;
}
static double get_live(int ph, const struct row *r)
{
	(void)ph;
	return r->live;
}
static double get_kib(int ph, const struct row *r)
{
	(void)ph;
	return kib_per_txn(r);
}
static double get_dirtied(int ph, const struct row *r)
{
	(void)ph;
	return dirtied_kib_per_txn(r);
}
static double get_ops(int ph, const struct row *r)
{
	(void)ph;
	return (double)r->ops;
}

/*
 * A ratio of engine @a to engine @b on phase @ph, taken within each round
 * both ran in; @by_bytes compares bytes per txn instead of the phase's
 * metric. A target is "<=X" or ">=X", or "" for none.
 */
struct ratio {
	int ph, a, b;
	bool by_bytes;
	const char *target;
};

static const struct ratio ratios[] = {
	{PH_INSERT_1TXN, ENG_COW, ENG_LMDB, false, ">=1.0"},
	{PH_LOAD_SIZE, ENG_COW, ENG_LMDB, false, ""},
	{PH_GET, ENG_COW, ENG_LMDB, false, ">=1.0"},
	{PH_SCAN, ENG_COW, ENG_LMDB, false, ">=1.0"},
	{PH_PUT_LATENCY, ENG_COW, ENG_LMDB, false, "<=0.7"},
	{PH_PUT_LATENCY, ENG_COW, ENG_FLOORC, false, "<=1.15"},
	{PH_PUT_LATENCY, ENG_COW, ENG_FLOOR4K, false, ""},
	{PH_PUT_LATENCY, ENG_COW, ENG_ROCKS, false, ""},
	{PH_PUT_LATENCY, ENG_COW, ENG_SQLITE, false, ""},
	{PH_PUT_LATENCY, ENG_LMDB, ENG_FLOOR4K, false, ""},
	{PH_PUT_LATENCY, ENG_ROCKS, ENG_FLOOR4K, false, ""},
	{PH_PUT_LATENCY, ENG_SQLITE, ENG_FLOOR4K, false, ""},
	{PH_PUT_LATENCY, ENG_COW, ENG_LMDB, true, "<=1.0"},
	{PH_PUT_LATENCY, ENG_COW, ENG_ROCKS, true, ""},
	{PH_PUT_LATENCY, ENG_COW, ENG_SQLITE, true, ""},
	{PH_INSERT_PER_TXN, ENG_COW, ENG_LMDB, false, ">=1.5"},
	{PH_INSERT_PER_TXN, ENG_COW, ENG_ROCKS, false, ""},
	{PH_INSERT_PER_TXN, ENG_COW, ENG_SQLITE, false, ""},
	{PH_READER_NOSYNC, ENG_COW, ENG_LMDB, false, ""},
	{PH_READER_SYNC, ENG_COW, ENG_LMDB, false, ""},
};

static struct spread ratio_spread(const struct ratio *q)
{
	double v[MAXRUNS];
	int n = 0;
	for (uint64_t run = 0; run < cfg.runs; run++) {
		const struct row *a = &res[q->ph][q->a][run], *b = &res[q->ph][q->b][run];
		if (!a->done || !b->done)
			continue;
		double x = q->by_bytes ? kib_per_txn(a) : metric(q->ph, a);
		double y = q->by_bytes ? kib_per_txn(b) : metric(q->ph, b);
		if (x >= 0 && y > 0)
			v[n++] = x / y;
	}
	return spread_of(v, n);
}

static const char *met(const char *target, double x)
{
	if (!*target)
		return "";
	double t = strtod(target + 2, NULL);
	bool ok = target[0] == '<' ? x <= t : x >= t;
	return ok ? "yes" : "no";
}

/* A figure for the human summary: "median (min-max) unit". */
static void describe(char *buf, size_t size, int ph, struct spread s)
{
	if (!s.n) {
		snprintf(buf, size, "-");
		return;
	}
	if (ph == PH_PUT_LATENCY)
		snprintf(buf, size, "%.0f us (%.0f-%.0f)", s.med, s.min, s.max);
	else if (!strcmp(metric_name(ph), "file_mib"))
		snprintf(buf, size, "%.1f MiB (%.1f-%.1f)", s.med, s.min, s.max);
	else
		snprintf(buf, size, "%.0f k/s (%.0f-%.0f)", s.med / 1e3, s.min / 1e3, s.max / 1e3);
}

static bool ran_any(int ph, int ei)
{
	for (uint64_t run = 0; run < cfg.runs; run++)
		if (res[ph][ei][run].done)
			return true;
	return false;
}

/* Phases a peer takes part in: the rest of its rows would only say "not run". */
static bool peer_phase(int ph)
{
	return ph == PH_PUT_LATENCY || ph == PH_INSERT_PER_TXN;
}

static void print_num(FILE *f, double x, const char *fmt)
{
	if (x >= 0)
		fprintf(f, fmt, x);
	fputc(',', f);
}

static void report(FILE *f, FILE *fr)
{
	fprintf(f, "phase,engine,runs,ops,metric,median,min,max,p99_us,file_mib,live_mib,"
		   "kib_per_txn,kib_dirtied_per_txn,note\n");
	fprintf(say, "\n%-15s %-13s %-30s %10s %10s\n", "phase", "engine",
		"median (min-max) of rounds", "KiB/txn", "dirtied");
	for (int ph = 0; ph < NPH; ph++) {
		for (int ei = 0; ei < NENG; ei++) {
			if (!ran_any(ph, ei)) {
				const char *why = missing(ei);
				if (why && peer_phase(ph)) {
					fprintf(f, "%s,%s,0,0,%s,,,,,,,,,skipped: %s\n",
						phase_name[ph], eng_name[ei], metric_name(ph), why);
					fprintf(say, "%-15s %-13s skipped: %s\n", phase_name[ph],
						eng_name[ei], why);
				}
				continue;
			}
			struct spread m = over_runs(ph, ei, get_metric);
			struct spread kib = over_runs(ph, ei, get_kib);
			struct spread dirt = over_runs(ph, ei, get_dirtied);
			const char *fmt = "%.0f"; /* ops/s */
			if (ph == PH_PUT_LATENCY)
				fmt = "%.1f";
			else if (strcmp(metric_name(ph), "file_mib") == 0)
				fmt = "%.2f";
			fprintf(f, "%s,%s,%d,%.0f,%s,", phase_name[ph], eng_name[ei], m.n,
				over_runs(ph, ei, get_ops).med, metric_name(ph));
			print_num(f, m.med, fmt);
			print_num(f, m.min, fmt);
			print_num(f, m.max, fmt);
			print_num(f, ph == PH_PUT_LATENCY ? over_runs(ph, ei, get_p99).med : -1,
				  "%.1f");
			/* Sizes only where the phase records them. */
			double file = over_runs(ph, ei, get_file).med;
			double live = over_runs(ph, ei, get_live).med;
			print_num(f, file > 0 ? file : -1, "%.2f");
			print_num(f, live > 0 ? live : -1, "%.2f");
			print_num(f, kib.n ? kib.med : -1, "%.2f");
			print_num(f, dirt.n ? dirt.med : -1, "%.2f");
			fprintf(f, "%s\n",
				ei == ENG_FLOORC ? "bytes of cowkit's one-key commit" : "");

			char b[96], kb[32] = "-", db[32] = "-";
			describe(b, sizeof(b), ph, m);
			if (kib.n)
				snprintf(kb, sizeof(kb), "%.1f", kib.med);
			if (dirt.n)
				snprintf(db, sizeof(db), "%.1f", dirt.med);
			fprintf(say, "%-15s %-13s %-30s %10s %10s\n", phase_name[ph], eng_name[ei],
				b, kb, db);
		}
	}

	if (fr == f)
		fputc('\n', f);
	fprintf(fr, "phase,engine,vs,runs,metric,median,min,max,target,met\n");
	fprintf(say, "\n%-15s %-28s %-24s %s\n", "phase", "ratio", "median (min-max)", "target");
	for (size_t i = 0; i < sizeof(ratios) / sizeof(ratios[0]); i++) {
		const struct ratio *q = &ratios[i];
		struct spread s = ratio_spread(q);
		if (!s.n)
			continue;
		const char *mname = q->by_bytes ? "kib_per_txn" : metric_name(q->ph);
		const char *ok = met(q->target, s.med);
		fprintf(fr, "%s,%s,%s,%d,%s,%.3f,%.3f,%.3f,%s,%s\n", phase_name[q->ph],
			eng_name[q->a], eng_name[q->b], s.n, mname, s.med, s.min, s.max, q->target,
			ok);
		char name[64], fig[64];
		snprintf(name, sizeof(name), "%s/%s%s", eng_name[q->a], eng_name[q->b],
			 q->by_bytes ? " bytes" : "");
		snprintf(fig, sizeof(fig), "%.2fx (%.2f-%.2f)", s.med, s.min, s.max);
		fprintf(say, "%-15s %-28s %-24s %s%s\n", phase_name[q->ph], name, fig, q->target,
			*ok ? (*ok == 'y' ? " met" : " MISSED") : "");
	}
	/* The reader phases: cowkit's own file against its live data. */
	for (int ph = PH_READER_NOSYNC; ph <= PH_READER_SYNC; ph++)
		for (int ei = ENG_LMDB; ei <= ENG_COW; ei++) {
			if (!ran_any(ph, ei))
				continue;
			double v[MAXRUNS];
			int n = 0;
			for (uint64_t run = 0; run < cfg.runs; run++) {
				const struct row *r = &res[ph][ei][run];
				if (r->done && r->live > 0)
					v[n++] = r->file / r->live;
			}
			struct spread s = spread_of(v, n);
			if (!s.n)
				continue;
			fprintf(fr, "%s,%s,live,%d,file_over_live,%.3f,%.3f,%.3f,<=2.0,%s\n",
				phase_name[ph], eng_name[ei], s.n, s.med, s.min, s.max,
				met("<=2.0", s.med));
			char name[64], fig[64];
			snprintf(name, sizeof(name), "%s file/live", eng_name[ei]);
			snprintf(fig, sizeof(fig), "%.2fx (%.2f-%.2f)", s.med, s.min, s.max);
			fprintf(say, "%-15s %-28s %-24s <=2.0%s\n", phase_name[ph], name, fig,
				s.med <= 2.0 ? " met" : " MISSED");
		}
}

/* ---- driver ---- */

static bool in_list(const char *list, const char *word)
{
	if (!list || !*list)
		return true;
	size_t n = strlen(word);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && memcmp(p, word, n) == 0)
			return true;
		p += len + (e ? 1 : 0);
	}
	return false;
}

/* Open @path's temporary twin for writing; rename_into() puts it in place. */
static FILE *open_tmp(const char *path, char *tmp, size_t size)
{
	snprintf(tmp, size, "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f)
		die("%s: %s", tmp, strerror(errno));
	return f;
}

static void rename_into(FILE *f, const char *tmp, const char *path)
{
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0)
		die("%s: %s", tmp, strerror(errno));
	if (rename(tmp, path) != 0)
		die("rename %s %s: %s", tmp, path, strerror(errno));
}

int main(int argc, char **argv)
{
	bool quick = env_u64("COW_BENCH_QUICK", 0) != 0;
	cfg.keys = env_u64("COW_BENCH_KEYS", quick ? 20000 : 1000000);
	cfg.per_txn = env_u64("COW_BENCH_PER_TXN", 1000);
	cfg.commits = env_u64("COW_BENCH_COMMITS", quick ? 200 : 1000);
	cfg.updates = env_u64("COW_BENCH_UPDATES", quick ? 2000 : 100000);
	cfg.sync_every = env_u64("COW_BENCH_SYNC_EVERY", quick ? 500 : 1000);
	cfg.runs = env_u64("COW_BENCH_RUNS", 5);
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
	if (cfg.runs < 1 || cfg.runs > MAXRUNS)
		die("COW_BENCH_RUNS must be 1..%d", MAXRUNS);
	shim_bytes = (uint64_t(*)(void))dlsym(RTLD_DEFAULT, "io_count_bytes");

	FILE *out = stdout, *rout = stdout;
	char tmp[4200], rpath[4200], rtmp[4300];
	if (argc > 1) {
		size_t len = strlen(argv[1]);
		if (len > 4 && strcmp(argv[1] + len - 4, ".csv") == 0)
			snprintf(rpath, sizeof(rpath), "%.*s_ratio.csv", (int)(len - 4), argv[1]);
		else
			snprintf(rpath, sizeof(rpath), "%s_ratio", argv[1]);
		out = open_tmp(argv[1], tmp, sizeof(tmp));
		rout = open_tmp(rpath, rtmp, sizeof(rtmp));
	}

	say = out == stdout ? stderr : stdout;
	make_data();
	fprintf(say,
		"store_bench: %" PRIu64 " keys (16 B + 100 B), %" PRIu64 " per txn, %" PRIu64
		" commits, %" PRIu64 " updates, sync every %" PRIu64 ", %" PRIu64
		" round(s), in %s; bytes per commit %s\n",
		cfg.keys, cfg.per_txn, cfg.commits, cfg.updates, cfg.sync_every, cfg.runs, cfg.dir,
		shim_bytes ? "counted by io_count" : "not counted (io_count not preloaded)");
	for (int k = ENG_ROCKS; k <= ENG_SQLITE; k++)
		if (missing(k))
			fprintf(say, "store_bench: %s %s: skipped, no figures\n", eng_name[k],
				missing(k));
	if (cfg.runs < 5)
		fprintf(say,
			"store_bench: %" PRIu64 " round(s): fewer than the 5 a ratio "
			"needs to be quoted\n",
			cfg.runs);
	fflush(say);

	struct eng engs[NENG];
	for (int k = 0; k < NENG; k++)
		engs[k] = (struct eng){.kind = k, .name = eng_name[k]};
	/*
	 * The phase groups and who takes part; ENG_FLOOR4K stands for both
	 * floors. Within a round the engines of a group take turns, the first
	 * rotating from round to round.
	 */
	static const struct {
		const char *group, *label;
		int engines[5], n;
	} groups[] = {
		{"load", "load", {ENG_LMDB, ENG_COW, ENG_ROCKS, ENG_SQLITE, ENG_FLOOR4K}, 5},
		{"per_txn", "per_txn", {ENG_LMDB, ENG_COW, ENG_ROCKS, ENG_SQLITE}, 4},
		{"reader", "reader_nosync", {ENG_LMDB, ENG_COW}, 2},
		{"reader", "reader_sync", {ENG_LMDB, ENG_COW}, 2},
	};
	for (uint64_t run = 0; run < cfg.runs; run++) {
		for (int g = 0; g < 4; g++) {
			if (!in_list(cfg.phases, groups[g].group) || (g >= 2 && !cfg.updates) ||
			    (g == 3 && !cfg.sync_every))
				continue;
			int n = groups[g].n;
			for (int k = 0; k < n; k++) {
				int ei = groups[g].engines[(k + run + (uint64_t)g) % (uint64_t)n];
				const char *name = ei == ENG_FLOOR4K ? "floor" : eng_name[ei];
				if (missing(ei) || !in_list(cfg.engine, name))
					continue;
				struct eng *e = &engs[ei];
				double t0 = now();
				if (ei == ENG_FLOOR4K)
					phase_floor(run);
				else if (g == 0)
					phase_load(e, ei, run);
				else if (g == 1)
					phase_per_txn(e, ei, run);
				else if (g == 2)
					phase_reader(e, ei, run, PH_READER_NOSYNC, 0);
				else
					phase_reader(e, ei, run, PH_READER_SYNC, cfg.sync_every);
				fprintf(stderr, "round %" PRIu64 " %s %s: %.1f s\n", run + 1,
					groups[g].label, name, now() - t0);
			}
		}
	}
	report(out, rout);
	if (out != stdout) {
		rename_into(out, tmp, argv[1]);
		rename_into(rout, rtmp, rpath);
	} else {
		fflush(stdout);
	}
	return 0;
}
