/*
 * Space benchmark (issue "day two"): giving space back, and compaction
 * against LMDB's compacting copy, in one run.
 *
 *   space_bench CSV
 *
 * Phases, each repeated COW_BENCH_RUNS times (default 5), alternating the
 * engines where two take part; the CSV has every run, the summary the
 * median with min and max:
 *
 *  destroy90   a store of ten volumes written interleaved (COW_BENCH_VOL_MIB
 *              each, default 100: 1 GiB), nine destroyed. File size and
 *              space on disk after the destroy, after `trim`, after
 *              `compact`, against the live data (target: compact within
 *              1.1x of it).
 *  compact     a map of COW_BENCH_KEYS keys (default 1,000,000, 100-byte
 *              values), 90% of them deleted, the same in LMDB: the time of
 *              cow_store_compact (online, in place) against
 *              mdb_env_copyfd2(MDB_CP_COMPACT) (what `mdb_copy -c` runs),
 *              an fsync of the copy and its rename over the old data file
 *              (offline: what compacting an LMDB takes) (target: <= 1.0x),
 *              and the file sizes after.
 *  writer      durable commits of 10 puts by a writer thread while a
 *              compaction of the destroy90 store runs, against the same
 *              writer for the same time with no compaction (target: >= 0.5x).
 *
 * Stores live under COW_BENCH_DIR, else $TMPDIR, else /tmp.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#define MIB (1024.0 * 1024.0)

#define die(...) bench_die("space_bench", __VA_ARGS__)

#define CK_COW(call) BENCH_CK("space_bench", cow_strerror, call)
#define CK_MDB(call) BENCH_CK("space_bench", mdb_strerror, call)

#define now bench_now_s

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end || n == 0)
		die("%s=%s: want a positive whole number", name, v);
	return n;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static char base[512];

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", base, name);
}

static double file_mib(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		die("stat %s: %s", path, strerror(errno));
	return (double)st.st_size / MIB;
}

static double disk_mib(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		die("stat %s: %s", path, strerror(errno));
	return (double)st.st_blocks * 512 / MIB;
}

static FILE *csv;

static void row(const char *phase, const char *engine, int run, const char *what, double v)
{
	fprintf(csv, "%s,%s,%d,%s,%.6f\n", phase, engine, run, what, v);
	fflush(csv);
}

/* Median, min and max of @n values. */
static void summary(const char *label, double *v, int n, const char *unit)
{
	double s[64];
	memcpy(s, v, (size_t)n * sizeof(double));
	qsort(s, (size_t)n, sizeof(double), bench_cmp_double);
	double med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	printf("  %-44s median %8.3f %s (min %.3f, max %.3f, %d runs)\n", label, med, unit, s[0],
	       s[n - 1], n);
}

/* ---- the destroy90 store ---- */

static uint64_t vol_mib;

/* Ten volumes written interleaved, a MiB at a time; nine destroyed. */
static cow_store *build_destroyed(const char *path)
{
	unlink(path);
	cow_store *s;
	CK_COW(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE | COW_STORE_NOSYNC}, &s));
	static uint8_t chunk[1 << 20];
	cow_txn *t;
	CK_COW(cow_txn_begin(s, 0, &t));
	for (int v = 0; v < 10; v++) {
		char name[16];
		snprintf(name, sizeof(name), "v%d", v);
		CK_COW(cow_vol_create(t, name, vol_mib << 20));
	}
	CK_COW(cow_map_create(t, "w"));
	CK_COW(cow_txn_commit(t));
	for (uint64_t m = 0; m < vol_mib; m++) {
		CK_COW(cow_txn_begin(s, 0, &t));
		for (int v = 0; v < 10; v++) {
			for (size_t i = 0; i < sizeof(chunk); i += 8) {
				uint64_t r = rng();
				memcpy(chunk + i, &r, 8);
			}
			char name[16];
			snprintf(name, sizeof(name), "v%d", v);
			cow_vol *vol;
			CK_COW(cow_vol_open(t, name, &vol));
			CK_COW(cow_vol_pwrite(vol, chunk, sizeof(chunk), m << 20));
		}
		CK_COW(cow_txn_commit(t));
	}
	CK_COW(cow_txn_begin(s, 0, &t));
	for (int v = 1; v < 10; v++) {
		char name[16];
		snprintf(name, sizeof(name), "v%d", v);
		CK_COW(cow_destroy(t, name, 0));
	}
	CK_COW(cow_txn_commit(t));
	CK_COW(cow_store_sync(s));
	cow_store_close(s);
	CK_COW(cow_store_open(path, NULL, &s));
	for (int i = 0; i < 3; i++) { /* commits that release the destroyed blocks */
		cow_map *w;
		CK_COW(cow_txn_begin(s, 0, &t));
		CK_COW(cow_map_open(t, "w", &w));
		CK_COW(cow_map_put(w, "tick", 4, &i, sizeof(i)));
		CK_COW(cow_txn_commit(t));
	}
	return s;
}

static double live_mib(cow_store *s)
{
	cow_store_stats st;
	CK_COW(cow_store_stat(s, &st));
	return (double)st.used_bytes / MIB;
}

static void phase_destroy90(int runs)
{
	char path[600];
	path_in(path, sizeof(path), "d90.cow");
	double ratio[64], secs[64];
	printf("destroy90: ten %llu MiB volumes written interleaved, nine destroyed\n",
	       (unsigned long long)vol_mib);
	for (int r = 0; r < runs; r++) {
		cow_store *s = build_destroyed(path);
		double live = live_mib(s);
		row("destroy90", "cowkit", r, "live_mib", live);
		row("destroy90", "cowkit", r, "file_mib_destroyed", file_mib(path));
		row("destroy90", "cowkit", r, "disk_mib_destroyed", disk_mib(path));
		CK_COW(cow_store_trim(s, NULL));
		row("destroy90", "cowkit", r, "file_mib_trimmed", file_mib(path));
		row("destroy90", "cowkit", r, "disk_mib_trimmed", disk_mib(path));
		double t0 = now();
		cow_compact_stats cs;
		CK_COW(cow_store_compact(s, 0, &cs, NULL, NULL));
		secs[r] = now() - t0;
		row("destroy90", "cowkit", r, "compact_secs", secs[r]);
		row("destroy90", "cowkit", r, "file_mib_compacted", file_mib(path));
		row("destroy90", "cowkit", r, "disk_mib_compacted", disk_mib(path));
		ratio[r] = file_mib(path) / live;
		row("destroy90", "cowkit", r, "compacted_over_live", ratio[r]);
		if (r == 0)
			printf("  live %.1f MiB; file %.1f MiB after destroy, disk %.1f MiB after "
			       "trim, "
			       "file %.1f MiB after compact (%.1f MiB moved)\n",
			       live, (double)cs.file_before / MIB, disk_mib(path),
			       (double)cs.file_after / MIB, (double)cs.moved_bytes / MIB);
		cow_store_close(s);
	}
	summary("file after compact / live (target <= 1.1)", ratio, runs, "x");
	summary("compact time", secs, runs, "s");
	unlink(path);
}

/* ---- compact against mdb_copy -c ---- */

static uint64_t nkeys;

static void key_of(uint64_t i, char k[16])
{
	snprintf(k, 16, "k%012llu",
		 (unsigned long long)((i * 0x9e3779b97f4a7c15ull) % 1000000000000ull));
}

static void val_of(uint64_t i, uint8_t v[100])
{
	for (int j = 0; j < 100; j++)
		v[j] = (uint8_t)(i * 31 + (uint64_t)j);
}

/* Should key i survive the 90% deletion? */
static bool kept(uint64_t i)
{
	return (i * 0xbf58476d1ce4e5b9ull >> 32) % 10 == 0;
}

static void tick(const char *path)
{
	cow_store *s;
	cow_txn *t;
	cow_map *m;
	CK_COW(cow_store_open(path, NULL, &s));
	for (int i = 0; i < 3; i++) {
		CK_COW(cow_txn_begin(s, 0, &t));
		CK_COW(cow_map_open(t, "m", &m));
		CK_COW(cow_map_put(m, "tick", 4, &i, sizeof(i)));
		CK_COW(cow_txn_commit(t));
	}
	cow_store_close(s);
}

static void build_map_cow(const char *path)
{
	unlink(path);
	cow_store *s;
	CK_COW(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	cow_txn *t;
	cow_map *m;
	CK_COW(cow_txn_begin(s, 0, &t));
	CK_COW(cow_map_create(t, "m"));
	CK_COW(cow_map_open(t, "m", &m));
	for (uint64_t i = 0; i < nkeys; i++) {
		char k[16];
		uint8_t v[100];
		key_of(i, k);
		val_of(i, v);
		CK_COW(cow_map_put(m, k, 13, v, sizeof(v)));
	}
	CK_COW(cow_txn_commit(t));
	CK_COW(cow_txn_begin(s, 0, &t));
	CK_COW(cow_map_open(t, "m", &m));
	for (uint64_t i = 0; i < nkeys; i++) {
		char k[16];
		key_of(i, k);
		if (!kept(i))
			CK_COW(cow_map_del(m, k, 13));
	}
	CK_COW(cow_txn_commit(t));
	cow_store_close(s);
	/* A store in use: a later process has committed (the deletes are released). */
	tick(path);
}

static void build_map_lmdb(const char *dir)
{
	char cmd[1400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
	if (system(cmd) != 0)
		die("%s failed", cmd);
	MDB_env *env;
	CK_MDB(mdb_env_create(&env));
	CK_MDB(mdb_env_set_mapsize(env, (size_t)64 << 30));
	CK_MDB(mdb_env_open(env, dir, 0, 0644));
	MDB_txn *t;
	MDB_dbi dbi;
	CK_MDB(mdb_txn_begin(env, NULL, 0, &t));
	CK_MDB(mdb_dbi_open(t, NULL, 0, &dbi));
	for (uint64_t i = 0; i < nkeys; i++) {
		char k[16];
		uint8_t v[100];
		key_of(i, k);
		val_of(i, v);
		MDB_val mk = {13, k}, mv = {sizeof(v), v};
		CK_MDB(mdb_put(t, dbi, &mk, &mv, 0));
	}
	CK_MDB(mdb_txn_commit(t));
	CK_MDB(mdb_txn_begin(env, NULL, 0, &t));
	for (uint64_t i = 0; i < nkeys; i++) {
		char k[16];
		key_of(i, k);
		MDB_val mk = {13, k};
		if (!kept(i))
			CK_MDB(mdb_del(t, dbi, &mk, NULL));
	}
	CK_MDB(mdb_txn_commit(t));
	mdb_env_close(env);
}

static double compact_cow(const char *path, double *file)
{
	cow_store *s;
	CK_COW(cow_store_open(path, NULL, &s));
	double t0 = now();
	CK_COW(cow_store_compact(s, 0, NULL, NULL, NULL));
	double dt = now() - t0;
	cow_store_close(s);
	*file = file_mib(path);
	return dt;
}

/*
 * What compacting an LMDB takes: mdb_copy -c to a new file, flushed, and
 * renamed over the old data file (which frees it).
 */
static double compact_lmdb(const char *dir, const char *out, double *file)
{
	unlink(out);
	MDB_env *env;
	CK_MDB(mdb_env_create(&env));
	CK_MDB(mdb_env_set_mapsize(env, (size_t)64 << 30));
	CK_MDB(mdb_env_open(env, dir, MDB_RDONLY, 0644));
	double t0 = now();
	int fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		die("open %s: %s", out, strerror(errno));
	CK_MDB(mdb_env_copyfd2(env, fd, MDB_CP_COMPACT));
	if (fsync(fd) != 0)
		die("fsync: %s", strerror(errno));
	close(fd);
	mdb_env_close(env);
	char data[700];
	snprintf(data, sizeof(data), "%s/data.mdb", dir);
	if (rename(out, data) != 0)
		die("rename %s: %s", out, strerror(errno));
	double dt = now() - t0;
	*file = file_mib(data);
	return dt;
}

static void phase_compact(int runs)
{
	char cpath[600], ldir[600], lout[600];
	path_in(cpath, sizeof(cpath), "map.cow");
	path_in(ldir, sizeof(ldir), "lmdb");
	path_in(lout, sizeof(lout), "lmdb-copy.mdb");
	double ratio[64], tc[64], tl[64];
	printf("compact: %llu keys, 90%% deleted: cow_store_compact vs mdb_copy -c\n",
	       (unsigned long long)nkeys);
	for (int r = 0; r < runs; r++) {
		double fc, fl;
		build_map_cow(cpath);
		build_map_lmdb(ldir);
		double before_c = file_mib(cpath);
		char ldata[700];
		snprintf(ldata, sizeof(ldata), "%s/data.mdb", ldir);
		double before_l = file_mib(ldata);
		/* Alternate which goes first. */
		if (r % 2 == 0) {
			tc[r] = compact_cow(cpath, &fc);
			tl[r] = compact_lmdb(ldir, lout, &fl);
		} else {
			tl[r] = compact_lmdb(ldir, lout, &fl);
			tc[r] = compact_cow(cpath, &fc);
		}
		ratio[r] = tc[r] / tl[r];
		row("compact", "cowkit", r, "secs", tc[r]);
		row("compact", "cowkit", r, "file_mib_before", before_c);
		row("compact", "cowkit", r, "file_mib_after", fc);
		row("compact", "lmdb", r, "secs", tl[r]);
		row("compact", "lmdb", r, "file_mib_before", before_l);
		row("compact", "lmdb", r, "file_mib_after", fl);
		row("compact", "cowkit", r, "time_vs_lmdb", ratio[r]);
		if (r == 0)
			printf("  files: cowkit %.1f -> %.1f MiB, LMDB %.1f -> %.1f MiB (copy)\n",
			       before_c, fc, before_l, fl);
	}
	summary("cowkit compact", tc, runs, "s");
	summary("LMDB mdb_copy -c + fsync + rename", tl, runs, "s");
	summary("time cowkit / LMDB (target <= 1.0)", ratio, runs, "x");
	unlink(cpath);
	unlink(lout);
	char cmd[1400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ldir);
	(void)system(cmd);
}

/* ---- writer throughput while compacting ---- */

struct writer {
	cow_store *s;
	atomic_bool stop;
	uint64_t commits;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	uint64_t n = 0;
	while (!atomic_load(&w->stop)) {
		cow_txn *t;
		cow_map *m;
		CK_COW(cow_txn_begin(w->s, 0, &t));
		CK_COW(cow_map_open(t, "w", &m));
		for (int i = 0; i < 10; i++) {
			char k[24];
			int kl = snprintf(k, sizeof(k), "w%010llu",
					  (unsigned long long)(n * 10 + (uint64_t)i) % 100000);
			CK_COW(cow_map_put(m, k, (size_t)kl, k, (size_t)kl));
		}
		CK_COW(cow_txn_commit(t));
		n++;
	}
	w->commits = n;
	return NULL;
}

/* Durable commits per second of the writer over @secs, or while a compaction runs (@secs 0). */
static double writer_rate(cow_store *s, double secs, double *took)
{
	struct writer w = {.s = s};
	pthread_t th;
	double t0 = now();
	if (pthread_create(&th, NULL, writer_run, &w) != 0)
		die("pthread_create");
	if (secs > 0) {
		while (now() - t0 < secs)
			usleep(10000);
	} else {
		CK_COW(cow_store_compact(s, env_u64("COW_BENCH_STEP", 4 << 20), NULL, NULL, NULL));
	}
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	*took = now() - t0;
	return (double)w.commits / *took;
}

static void phase_writer(int runs)
{
	char path[600];
	path_in(path, sizeof(path), "writer.cow");
	double ratio[64], with[64], without[64], took = 0;
	printf("writer: durable commits of 10 puts, during a compaction vs none\n");
	for (int r = 0; r < runs; r++) {
		cow_store *s = build_destroyed(path);
		double secs;
		/*
		 * Alternating: the compaction first, then the writer alone as
		 * long; or alone first, as long as the last compaction took.
		 */
		if (r % 2 == 0) {
			with[r] = writer_rate(s, 0, &took);
			without[r] = writer_rate(s, took, &secs);
		} else {
			without[r] = writer_rate(s, took, &secs);
			with[r] = writer_rate(s, 0, &took);
		}
		ratio[r] = with[r] / without[r];
		row("writer", "cowkit", r, "commits_per_sec_compacting", with[r]);
		row("writer", "cowkit", r, "commits_per_sec_alone", without[r]);
		row("writer", "cowkit", r, "compact_secs", took);
		row("writer", "cowkit", r, "ratio", ratio[r]);
		cow_store_close(s);
	}
	summary("writer during compact / alone (target >= 0.5)", ratio, runs, "x");
	summary("commits/s during compact", with, runs, "/s");
	summary("commits/s alone", without, runs, "/s");
	unlink(path);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: space_bench CSV");
	const char *dir = getenv("COW_BENCH_DIR");
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(base, sizeof(base), "%s/space_bench.XXXXXX", dir);
	if (!mkdtemp(base))
		die("mkdtemp %s: %s", base, strerror(errno));
	csv = fopen(argv[1], "w");
	if (!csv)
		die("%s: %s", argv[1], strerror(errno));
	fprintf(csv, "phase,engine,run,what,value\n");
	int runs = (int)env_u64("COW_BENCH_RUNS", 5);
	if (runs > 64)
		die("COW_BENCH_RUNS: at most 64");
	vol_mib = env_u64("COW_BENCH_VOL_MIB", 100);
	nkeys = env_u64("COW_BENCH_KEYS", 1000000);
	const char *only = getenv("COW_BENCH_ONLY");
	if (!only || strstr(only, "destroy90"))
		phase_destroy90(runs);
	if (!only || strstr(only, "compact"))
		phase_compact(runs);
	if (!only || strstr(only, "writer"))
		phase_writer(runs);
	fclose(csv);
	rmdir(base);
	return 0;
}
