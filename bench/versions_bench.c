/*
 * versions_bench: what versions of a volume cost, against file-system
 * reflinks on the same machine. Run by bench/versions.sh; never asserts.
 *
 * usage: versions_bench MODE DIR [SYSTEM]
 *
 *   snap DIR          cowkit: snapshot+commit and clone+commit time of a
 *                     volume of 1 MiB, 1 GiB and 16 GiB, fresh and after
 *                     random overwrites (fragmented)
 *   fsclone DIR SYS   the same with FICLONE+fsync and `cp --reflink=always`
 *                     (+fsync) of files in DIR (a btrfs or XFS mount); SYS
 *                     names the file system in the CSV
 *   randw DIR         cowkit: 4 KiB random overwrites into a fresh clone vs
 *                     an unshared volume, durable commit every 1,000 writes
 *   fsrandw DIR SYS   the same into a fresh FICLONE copy vs an unshared file,
 *                     buffered pwrite, fdatasync every 1,000 writes
 *   seq DIR           cowkit volume sequential write vs a raw file's buffered
 *                     write + fdatasync, in DIR
 *   destroy DIR       cowkit destroy+commit time against exclusive size: whole
 *                     volumes of 1 MiB .. 1 GiB; clones of a 1 GiB volume
 *                     that overwrote 0 .. 256 MiB sequentially, or 1,000 and
 *                     16,384 scattered 4 KiB blocks (size_bytes = writes)
 *
 * What is written (the same for every system; blocks hold a nonzero pattern,
 * since cowkit turns an all-zero block into a hole):
 *   1 MiB object:  all of it (256 blocks)
 *   1 GiB object:  all of it (262,144 blocks)
 *   16 GiB object: sparse, the first 64 KiB of every MiB (16,384 runs of
 *                  16 blocks: 1 GiB of data, 262,144 blocks)
 *   fragmenting:   VERSIONS_FRAG (default 16,384) 4 KiB overwrites at random
 *                  written blocks, after a snapshot/clone of the object exists
 *                  (so every write unshares a block), durable every 1,000
 *
 * Knobs (environment): VERSIONS_RUNS (default 7) timed repetitions per
 * case; VERSIONS_FRAG; VERSIONS_RANDW (default 20,000) writes per random-
 * overwrite run; VERSIONS_RANDW_RUNS (default 5, also the sequential runs); VERSIONS_SEQ_MIB
 * (default 1024); VERSIONS_BIG=0 drops the 16 GiB object.
 *
 * CSV on stdout, one row per measured figure (medians over n runs):
 *   experiment,system,variant,size_bytes,metric,median,min,max,n,extra
 * Progress goes to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cow/store.h"

#define BLK	4096ull
#define MIB	(1024ull * 1024)
#define GIB	(1024ull * MIB)
#define MAXRUNS 64

extern char **environ;

static const char *dir;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	long x = strtol(v, &end, 10);
	return *end || x < 0 ? def : x;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "versions_bench: %s: %s\n", what,
		rc < 0 ? cow_strerror(rc) : strerror(errno));
	exit(1);
}

/* Print one CSV row: the median, min and max of @v[0..n). */
static void row(const char *exp, const char *sys, const char *variant, uint64_t size,
		const char *metric, double *v, int n, const char *extra)
{
	if (n <= 0)
		return;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	printf("%s,%s,%s,%llu,%s,%.4f,%.4f,%.4f,%d,%s\n", exp, sys, variant,
	       (unsigned long long)size, metric, med, v[0], v[n - 1], n, extra ? extra : "");
	fflush(stdout);
}

/* ---- data pattern and offsets ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* A nonzero 4 KiB pattern for block @b (version @ver). */
static void fill(unsigned char *buf, size_t len, uint64_t b, uint64_t ver)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t x =
			(b + i / BLK) * 0x9e3779b97f4a7c15ull + ver * 0xbf58476d1ce4e5b9ull + i + 1;
		memcpy(buf + i, &x, 8);
	}
}

/* The written layout of an object of @size: runs of @run bytes every @stride. */
struct layout {
	uint64_t size, run, stride;
};

static struct layout layout_of(uint64_t size)
{
	if (size > GIB)
		return (struct layout){size, 64 * 1024, MIB};
	return (struct layout){size, size, size};
}

static uint64_t layout_blocks(struct layout l)
{
	return l.size / l.stride * (l.run / BLK);
}

/* The byte offset of the @i-th written block. */
static uint64_t layout_off(struct layout l, uint64_t i)
{
	uint64_t per = l.run / BLK;
	return i / per * l.stride + i % per * BLK;
}

static const char *size_name(uint64_t size)
{
	static char buf[32];
	if (size >= GIB)
		snprintf(buf, sizeof(buf), "%lluGiB", (unsigned long long)(size / GIB));
	else
		snprintf(buf, sizeof(buf), "%lluMiB", (unsigned long long)(size / MIB));
	return buf;
}

/* ---- cowkit helpers ---- */

static cow_store *store_new(const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	char lock[4200];
	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(lock);
	cow_store *s;
	int rc = cow_store_open(path, &(cow_store_options){.flags = COW_STORE_CREATE}, &s);
	if (rc)
		die("cow_store_open", rc);
	return s;
}

static void store_gone(cow_store *s, const char *name)
{
	cow_store_close(s);
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	char lock[4200];
	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(lock);
}

static cow_txn *begin(cow_store *s)
{
	cow_txn *t;
	int rc = cow_txn_begin(s, 0, &t);
	if (rc)
		die("cow_txn_begin", rc);
	return t;
}

static void commit(cow_txn *t)
{
	int rc = cow_txn_commit(t);
	if (rc)
		die("cow_txn_commit", rc);
}

static cow_vol *vol(cow_txn *t, const char *name)
{
	cow_vol *v;
	int rc = cow_vol_open(t, name, &v);
	if (rc)
		die(name, rc);
	return v;
}

/* Create volume @name with layout @l written, committing every 64 MiB. */
static void vol_fill(cow_store *s, const char *name, struct layout l)
{
	static unsigned char buf[MIB];
	cow_txn *t = begin(s);
	int rc = cow_vol_create(t, name, l.size);
	if (rc)
		die("cow_vol_create", rc);
	cow_vol *v = vol(t, name);
	uint64_t done = 0;
	for (uint64_t base = 0; base < l.size; base += l.stride) {
		for (uint64_t o = 0; o < l.run; o += MIB) {
			size_t len = (size_t)(l.run - o < MIB ? l.run - o : MIB);
			fill(buf, len, (base + o) / BLK, 0);
			rc = cow_vol_pwrite(v, buf, len, base + o);
			if (rc)
				die("cow_vol_pwrite", rc);
			done += len;
			if (done % (64 * MIB) == 0) {
				commit(t);
				t = begin(s);
				v = vol(t, name);
			}
		}
	}
	commit(t);
}

/*
 * @n random 4 KiB overwrites of written blocks of volume @name, a durable
 * commit every 1,000 (and at the end). Returns writes per second.
 */
static double vol_randw(cow_store *s, const char *name, struct layout l, uint64_t n, uint64_t seed)
{
	unsigned char buf[BLK];
	uint64_t nb = layout_blocks(l);
	rng_state = seed * 2654435761u + 88172645463325252ull;
	double t0 = now_ms();
	cow_txn *t = begin(s);
	cow_vol *v = vol(t, name);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t b = layout_off(l, rnd() % nb);
		fill(buf, BLK, b / BLK, seed + 1 + i);
		int rc = cow_vol_pwrite(v, buf, BLK, b);
		if (rc)
			die("cow_vol_pwrite", rc);
		if ((i + 1) % 1000 == 0) {
			commit(t);
			t = begin(s);
			v = vol(t, name);
		}
	}
	commit(t);
	return (double)n / ((now_ms() - t0) / 1e3);
}

static double last_commit_ms; /* of the last timed_*(): the cow_txn_commit part */

static double timed_snapshot(cow_store *s, const char *snap)
{
	double t0 = now_ms();
	cow_txn *t = begin(s);
	int rc = cow_snapshot(t, snap);
	if (rc)
		die("cow_snapshot", rc);
	double c0 = now_ms();
	commit(t);
	double t1 = now_ms();
	last_commit_ms = t1 - c0;
	return t1 - t0;
}

static double timed_clone(cow_store *s, const char *snap, const char *name)
{
	double t0 = now_ms();
	cow_txn *t = begin(s);
	int rc = cow_clone(t, snap, name);
	if (rc)
		die("cow_clone", rc);
	double c0 = now_ms();
	commit(t);
	double t1 = now_ms();
	last_commit_ms = t1 - c0;
	return t1 - t0;
}

static double timed_destroy(cow_store *s, const char *name, unsigned flags)
{
	double t0 = now_ms();
	cow_txn *t = begin(s);
	int rc = cow_destroy(t, name, flags);
	if (rc)
		die("cow_destroy", rc);
	commit(t);
	return now_ms() - t0;
}

static cow_obj_stats obj_stat(cow_store *s, const char *name, unsigned flags)
{
	cow_obj_stats st;
	cow_txn *t;
	int rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	if (rc)
		die("cow_txn_begin", rc);
	rc = cow_obj_stat(t, name, flags, &st);
	if (rc)
		die("cow_obj_stat", rc);
	cow_txn_abort(t);
	return st;
}

static int nsizes(uint64_t sizes[3])
{
	sizes[0] = MIB;
	sizes[1] = GIB;
	sizes[2] = 16 * GIB;
	return env_long("VERSIONS_BIG", 1) ? 3 : 2;
}

/* ---- snap: cowkit snapshot and clone time ---- */

static void snap_phase(cow_store *s, uint64_t size, const char *state, char prefix, int runs)
{
	double ts[MAXRUNS], tc[MAXRUNS], cs[MAXRUNS], cc[MAXRUNS];
	for (int r = 0; r < runs; r++) {
		char snap[64], clone[64];
		snprintf(snap, sizeof(snap), "v@%c%d", prefix, r);
		snprintf(clone, sizeof(clone), "%c%d", prefix, r);
		ts[r] = timed_snapshot(s, snap);
		cs[r] = last_commit_ms;
		tc[r] = timed_clone(s, snap, clone);
		cc[r] = last_commit_ms;
	}
	row("snap", "cowkit", state, size, "snapshot_ms", ts, runs, "begin+cow_snapshot+commit");
	row("snap", "cowkit", state, size, "clone_ms", tc, runs, "begin+cow_clone+commit");
	row("snap", "cowkit", state, size, "snapshot_commit_ms", cs, runs, "the commit part");
	row("snap", "cowkit", state, size, "clone_commit_ms", cc, runs, "the commit part");
}

static void mode_snap(void)
{
	int runs = (int)env_long("VERSIONS_RUNS", 7);
	uint64_t frag = (uint64_t)env_long("VERSIONS_FRAG", 16384);
	uint64_t sizes[3];
	int ns = nsizes(sizes);
	for (int i = 0; i < ns; i++) {
		struct layout l = layout_of(sizes[i]);
		fprintf(stderr, "versions: cowkit snapshot/clone, %s\n", size_name(l.size));
		cow_store *s = store_new("snap.cow");
		double t0 = now_ms();
		vol_fill(s, "v", l);
		double fill_ms = now_ms() - t0;
		row("snap", "cowkit", "fill", l.size, "fill_ms", &fill_ms, 1, "");
		snap_phase(s, l.size, "fresh", 'f', runs);
		double wps = vol_randw(s, "v", l, frag, 1);
		row("snap", "cowkit", "fragmenting", l.size, "writes_per_s", &wps, 1, "");
		snap_phase(s, l.size, "fragmented", 'g', runs);
		cow_obj_stats st = obj_stat(s, "v", 0);
		double ref = (double)st.referenced / (double)MIB;
		row("snap", "cowkit", "fragmented", l.size, "referenced_mib", &ref, 1, "");
		store_gone(s, "snap.cow");
	}
}

/* ---- fsclone: FICLONE and cp --reflink on a mounted btrfs/XFS ---- */

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static int file_fill(const char *name, struct layout l)
{
	static unsigned char buf[MIB];
	char path[4096];
	path_of(path, sizeof(path), name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)l.size))
		die(path, 0);
	for (uint64_t base = 0; base < l.size; base += l.stride)
		for (uint64_t o = 0; o < l.run; o += MIB) {
			size_t len = (size_t)(l.run - o < MIB ? l.run - o : MIB);
			fill(buf, len, (base + o) / BLK, 0);
			if (pwrite(fd, buf, len, (off_t)(base + o)) != (ssize_t)len)
				die("pwrite", 0);
		}
	if (fdatasync(fd))
		die("fdatasync", 0);
	return fd;
}

static double file_randw(int fd, struct layout l, uint64_t n, uint64_t seed)
{
	unsigned char buf[BLK];
	uint64_t nb = layout_blocks(l);
	rng_state = seed * 2654435761u + 88172645463325252ull;
	double t0 = now_ms();
	for (uint64_t i = 0; i < n; i++) {
		uint64_t b = layout_off(l, rnd() % nb);
		fill(buf, BLK, b / BLK, seed + 1 + i);
		if (pwrite(fd, buf, BLK, (off_t)b) != (ssize_t)BLK)
			die("pwrite", 0);
		if ((i + 1) % 1000 == 0 && fdatasync(fd))
			die("fdatasync", 0);
	}
	if (fdatasync(fd))
		die("fdatasync", 0);
	return (double)n / ((now_ms() - t0) / 1e3);
}

/* FICLONE @src into a new file @name, fsync it: the time. */
static double timed_ficlone(int src, const char *name)
{
	char path[4096];
	path_of(path, sizeof(path), name);
	double t0 = now_ms();
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(path, 0);
	if (ioctl(fd, FICLONE, src))
		die("FICLONE", 0);
	if (fsync(fd))
		die("fsync", 0);
	double ms = now_ms() - t0;
	close(fd);
	return ms;
}

/* `cp --reflink=always SRC DST`, then fsync DST: the time. */
static double timed_cp(const char *src, const char *name)
{
	char s[4096], d[4096];
	path_of(s, sizeof(s), src);
	path_of(d, sizeof(d), name);
	char *argv[] = {"cp", "--reflink=always", s, d, NULL};
	double t0 = now_ms();
	pid_t pid;
	if (posix_spawnp(&pid, "cp", NULL, NULL, argv, environ))
		die("posix_spawnp cp", 0);
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		die("cp --reflink=always", 0);
	int fd = open(d, O_RDONLY);
	if (fd < 0 || fsync(fd))
		die("fsync", 0);
	double ms = now_ms() - t0;
	close(fd);
	return ms;
}

/* Extents of @fd (FIEMAP), or -1. */
static double extents(int fd)
{
	struct fiemap fm = {.fm_length = FIEMAP_MAX_OFFSET, .fm_flags = FIEMAP_FLAG_SYNC};
	if (ioctl(fd, FS_IOC_FIEMAP, &fm))
		return -1;
	return fm.fm_mapped_extents;
}

static void fs_phase(const char *sys, int fd, uint64_t size, const char *state, char prefix,
		     int runs)
{
	double tf[MAXRUNS], tc[MAXRUNS];
	for (int r = 0; r < runs; r++) {
		char name[64];
		snprintf(name, sizeof(name), "%cficlone%d", prefix, r);
		tf[r] = timed_ficlone(fd, name);
		snprintf(name, sizeof(name), "%ccp%d", prefix, r);
		tc[r] = timed_cp("v", name);
	}
	row("snap", sys, state, size, "ficlone_ms", tf, runs, "FICLONE+fsync");
	row("snap", sys, state, size, "cp_reflink_ms", tc, runs, "cp --reflink=always+fsync");
}

static void fs_cleanup(int runs)
{
	char path[4096], name[64];
	const char *kinds[] = {"ficlone", "cp"};
	for (int r = 0; r < runs; r++)
		for (int p = 0; p < 2; p++)
			for (int k = 0; k < 2; k++) {
				snprintf(name, sizeof(name), "%c%s%d", "fg"[p], kinds[k], r);
				path_of(path, sizeof(path), name);
				unlink(path);
			}
	path_of(path, sizeof(path), "v");
	unlink(path);
}

static void mode_fsclone(const char *sys)
{
	int runs = (int)env_long("VERSIONS_RUNS", 7);
	uint64_t frag = (uint64_t)env_long("VERSIONS_FRAG", 16384);
	uint64_t sizes[3];
	int ns = nsizes(sizes);
	for (int i = 0; i < ns; i++) {
		struct layout l = layout_of(sizes[i]);
		fprintf(stderr, "versions: %s FICLONE / cp --reflink, %s\n", sys,
			size_name(l.size));
		double t0 = now_ms();
		int fd = file_fill("v", l);
		double fill_ms = now_ms() - t0;
		row("snap", sys, "fill", l.size, "fill_ms", &fill_ms, 1, "");
		double ext = extents(fd);
		row("snap", sys, "fresh", l.size, "extents", &ext, 1, "FIEMAP");
		fs_phase(sys, fd, l.size, "fresh", 'f', runs);
		double wps = file_randw(fd, l, frag, 1);
		row("snap", sys, "fragmenting", l.size, "writes_per_s", &wps, 1, "");
		ext = extents(fd);
		row("snap", sys, "fragmented", l.size, "extents", &ext, 1, "FIEMAP");
		fs_phase(sys, fd, l.size, "fragmented", 'g', runs);
		close(fd);
		fs_cleanup(runs);
	}
}

/* ---- randw: random overwrites into a fresh clone vs an unshared object ---- */

static void mode_randw(void)
{
	uint64_t n = (uint64_t)env_long("VERSIONS_RANDW", 20000);
	int runs = (int)env_long("VERSIONS_RANDW_RUNS", 5);
	struct layout l = layout_of(GIB);
	fprintf(stderr, "versions: cowkit random overwrites, 1 GiB volumes\n");
	cow_store *s = store_new("randw.cow");
	vol_fill(s, "plain", l);
	vol_fill(s, "base", l);
	double u[MAXRUNS], c[MAXRUNS], d[MAXRUNS];
	for (int r = 0; r < runs; r++) {
		/* Odd runs write the clone first: the order's effect cancels out. */
		if (r % 2 == 0)
			u[r] = vol_randw(s, "plain", l, n, (uint64_t)r + 100);
		char snap[64], clone[64];
		snprintf(snap, sizeof(snap), "base@s%d", r);
		snprintf(clone, sizeof(clone), "c%d", r);
		timed_snapshot(s, snap);
		timed_clone(s, snap, clone);
		c[r] = vol_randw(s, clone, l, n, (uint64_t)r + 100);
		if (r % 2)
			u[r] = vol_randw(s, "plain", l, n, (uint64_t)r + 100);
		d[r] = timed_destroy(s, clone, 0);
		timed_destroy(s, snap, 0);
		fprintf(stderr, "  run %d: unshared %.0f/s, clone %.0f/s\n", r, u[r], c[r]);
	}
	double ratio[MAXRUNS];
	for (int r = 0; r < runs; r++)
		ratio[r] = c[r] / u[r];
	row("randw", "cowkit", "unshared", l.size, "writes_per_s", u, runs, "commit every 1000");
	row("randw", "cowkit", "clone", l.size, "writes_per_s", c, runs, "commit every 1000");
	row("randw", "cowkit", "clone/unshared", l.size, "ratio", ratio, runs, "per run");
	row("randw", "cowkit", "clone", l.size, "destroy_ms", d, runs, "after the writes");
	store_gone(s, "randw.cow");
}

static void mode_fsrandw(const char *sys)
{
	uint64_t n = (uint64_t)env_long("VERSIONS_RANDW", 20000);
	int runs = (int)env_long("VERSIONS_RANDW_RUNS", 5);
	struct layout l = layout_of(GIB);
	fprintf(stderr, "versions: %s random overwrites, 1 GiB files\n", sys);
	int plain = file_fill("plain", l);
	int base = file_fill("base", l);
	double u[MAXRUNS], c[MAXRUNS];
	for (int r = 0; r < runs; r++) {
		if (r % 2 == 0)
			u[r] = file_randw(plain, l, n, (uint64_t)r + 100);
		timed_ficlone(base, "clone");
		char path[4096];
		path_of(path, sizeof(path), "clone");
		int fd = open(path, O_RDWR);
		if (fd < 0)
			die(path, 0);
		c[r] = file_randw(fd, l, n, (uint64_t)r + 100);
		close(fd);
		unlink(path);
		if (r % 2)
			u[r] = file_randw(plain, l, n, (uint64_t)r + 100);
		fprintf(stderr, "  run %d: unshared %.0f/s, clone %.0f/s\n", r, u[r], c[r]);
	}
	double ratio[MAXRUNS];
	for (int r = 0; r < runs; r++)
		ratio[r] = c[r] / u[r];
	row("randw", sys, "unshared", l.size, "writes_per_s", u, runs, "fdatasync every 1000");
	row("randw", sys, "clone", l.size, "writes_per_s", c, runs, "fdatasync every 1000");
	row("randw", sys, "clone/unshared", l.size, "ratio", ratio, runs, "per run");
	close(plain);
	close(base);
	char path[4096];
	path_of(path, sizeof(path), "plain");
	unlink(path);
	path_of(path, sizeof(path), "base");
	unlink(path);
}

/* ---- seq: volume sequential write vs raw file ---- */

static double seq_commit_ms; /* of the last seq_cow(): time inside cow_txn_commit */

static double seq_cow(uint64_t size, uint64_t per_commit)
{
	static unsigned char buf[MIB];
	cow_store *s = store_new("seq.cow");
	double t0 = now_ms();
	cow_txn *t = begin(s);
	int rc = cow_vol_create(t, "v", size);
	if (rc)
		die("cow_vol_create", rc);
	cow_vol *v = vol(t, "v");
	for (uint64_t o = 0; o < size; o += MIB) {
		fill(buf, MIB, o / BLK, 0);
		rc = cow_vol_pwrite(v, buf, MIB, o);
		if (rc)
			die("cow_vol_pwrite", rc);
		if (per_commit && (o + MIB) % per_commit == 0 && o + MIB < size) {
			double c0 = now_ms();
			commit(t);
			seq_commit_ms += now_ms() - c0;
			t = begin(s);
			v = vol(t, "v");
		}
	}
	double c0 = now_ms();
	commit(t);
	seq_commit_ms += now_ms() - c0;
	double ms = now_ms() - t0;
	store_gone(s, "seq.cow");
	return (double)size / MIB / (ms / 1e3);
}

static double seq_raw(uint64_t size)
{
	static unsigned char buf[MIB];
	char path[4096];
	path_of(path, sizeof(path), "seq.raw");
	unlink(path);
	double t0 = now_ms();
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(path, 0);
	for (uint64_t o = 0; o < size; o += MIB) {
		fill(buf, MIB, o / BLK, 0);
		if (write(fd, buf, MIB) != (ssize_t)MIB)
			die("write", 0);
	}
	if (fdatasync(fd))
		die("fdatasync", 0);
	double ms = now_ms() - t0;
	close(fd);
	unlink(path);
	return (double)size / MIB / (ms / 1e3);
}

static void mode_seq(void)
{
	uint64_t size = (uint64_t)env_long("VERSIONS_SEQ_MIB", 1024) * MIB;
	int runs = (int)env_long("VERSIONS_RANDW_RUNS", 5);
	double raw[MAXRUNS], one[MAXRUNS], chunk[MAXRUNS], r1[MAXRUNS], r64[MAXRUNS];
	double c1[MAXRUNS], c64[MAXRUNS];
	fprintf(stderr, "versions: sequential write, %s\n", size_name(size));
	for (int r = 0; r < runs; r++) {
		/* The three take turns; which goes first rotates from round to round. */
		for (int k = 0; k < 3; k++) {
			switch ((k + r) % 3) {
			case 0:
				raw[r] = seq_raw(size);
				break;
			case 1:
				seq_commit_ms = 0;
				one[r] = seq_cow(size, 0);
				c1[r] = seq_commit_ms;
				break;
			default:
				seq_commit_ms = 0;
				chunk[r] = seq_cow(size, 64 * MIB);
				c64[r] = seq_commit_ms;
				break;
			}
		}
		r1[r] = one[r] / raw[r];
		r64[r] = chunk[r] / raw[r];
		fprintf(stderr,
			"  run %d: raw %.0f MiB/s, volume %.0f (one commit), %.0f (commit/64 "
			"MiB)\n",
			r, raw[r], one[r], chunk[r]);
	}
	row("seq", "raw", "write+fdatasync", size, "mib_per_s", raw, runs, "1 MiB writes");
	row("seq", "cowkit", "one commit", size, "mib_per_s", one, runs, "1 MiB pwrites");
	row("seq", "cowkit", "commit every 64 MiB", size, "mib_per_s", chunk, runs,
	    "1 MiB pwrites");
	row("seq", "cowkit", "one commit", size, "commit_ms", c1, runs, "inside cow_txn_commit");
	row("seq", "cowkit", "commit every 64 MiB", size, "commit_ms", c64, runs,
	    "inside cow_txn_commit, summed");
	row("seq", "cowkit", "one commit/raw", size, "ratio", r1, runs, "per run");
	row("seq", "cowkit", "commit every 64 MiB/raw", size, "ratio", r64, runs, "per run");
}

/* ---- destroy: time against exclusive size ---- */

static void mode_destroy(void)
{
	int runs = (int)env_long("VERSIONS_RUNS", 7);
	if (runs > 3)
		runs = 3;
	static const uint64_t mibs[] = {1, 16, 256, 1024};
	cow_store *s = store_new("destroy.cow");
	fprintf(stderr, "versions: destroy, volumes of 1 MiB .. 1 GiB\n");
	for (size_t i = 0; i < sizeof(mibs) / sizeof(mibs[0]); i++) {
		struct layout l = layout_of(mibs[i] * MIB);
		double ms[MAXRUNS], ex = 0;
		for (int r = 0; r < runs; r++) {
			vol_fill(s, "e", l);
			ex = (double)obj_stat(s, "e", COW_STAT_EXCLUSIVE).exclusive / MIB;
			ms[r] = timed_destroy(s, "e", 0);
		}
		char extra[64];
		snprintf(extra, sizeof(extra), "exclusive %.1f MiB", ex);
		row("destroy", "cowkit", "volume", l.size, "destroy_ms", ms, runs, extra);
		row("destroy", "cowkit", "volume", l.size, "exclusive_mib", &ex, 1, "");
	}
	/* Clones of a 1 GiB volume that overwrote 0 .. 256 MiB of it. */
	fprintf(stderr, "versions: destroy, clones of a 1 GiB volume\n");
	struct layout base = layout_of(GIB);
	vol_fill(s, "base", base);
	static const uint64_t over[] = {0, 1, 16, 256};
	static unsigned char buf[MIB];
	for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
		double ms[MAXRUNS], ex = 0;
		for (int r = 0; r < runs; r++) {
			timed_snapshot(s, "base@s");
			timed_clone(s, "base@s", "k");
			cow_txn *t = begin(s);
			for (uint64_t o = 0; o < over[i] * MIB; o += MIB) {
				fill(buf, MIB, o / BLK, 7);
				int rc = cow_vol_pwrite(vol(t, "k"), buf, MIB, o);
				if (rc)
					die("cow_vol_pwrite", rc);
			}
			commit(t);
			ex = (double)obj_stat(s, "k", COW_STAT_EXCLUSIVE).exclusive / MIB;
			ms[r] = timed_destroy(s, "k", 0);
			timed_destroy(s, "base@s", 0);
		}
		char extra[64];
		snprintf(extra, sizeof(extra), "exclusive %.1f MiB of 1024 referenced", ex);
		row("destroy", "cowkit", "clone", over[i] * MIB, "destroy_ms", ms, runs, extra);
		row("destroy", "cowkit", "clone", over[i] * MIB, "exclusive_mib", &ex, 1, "");
	}
	/*
	 * Clones with scattered 4 KiB overwrites: little exclusive data, but
	 * the clone owns a copy of nearly every leaf it touched.
	 */
	static const uint64_t scattered[] = {1000, 16384};
	for (size_t i = 0; i < sizeof(scattered) / sizeof(scattered[0]); i++) {
		double ms[MAXRUNS], ex = 0;
		for (int r = 0; r < runs; r++) {
			timed_snapshot(s, "base@s");
			timed_clone(s, "base@s", "k");
			vol_randw(s, "k", base, scattered[i], (uint64_t)r + 7);
			ex = (double)obj_stat(s, "k", COW_STAT_EXCLUSIVE).exclusive / MIB;
			ms[r] = timed_destroy(s, "k", 0);
			timed_destroy(s, "base@s", 0);
		}
		char extra[80];
		snprintf(extra, sizeof(extra), "exclusive %.1f MiB of 1024 referenced", ex);
		row("destroy", "cowkit", "clone_scattered", scattered[i], "destroy_ms", ms, runs,
		    extra);
		row("destroy", "cowkit", "clone_scattered", scattered[i], "exclusive_mib", &ex, 1,
		    "");
	}
	store_gone(s, "destroy.cow");
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: versions_bench snap|fsclone|randw|fsrandw|seq|destroy DIR "
				"[SYSTEM]\n");
		return 2;
	}
	dir = argv[2];
	const char *sys = argc > 3 ? argv[3] : "fs";
	if (env_long("VERSIONS_RUNS", 7) > MAXRUNS ||
	    env_long("VERSIONS_RANDW_RUNS", 5) > MAXRUNS) {
		fprintf(stderr, "versions_bench: at most %d runs\n", MAXRUNS);
		return 2;
	}
	if (!strcmp(argv[1], "snap"))
		mode_snap();
	else if (!strcmp(argv[1], "fsclone"))
		mode_fsclone(sys);
	else if (!strcmp(argv[1], "randw"))
		mode_randw();
	else if (!strcmp(argv[1], "fsrandw"))
		mode_fsrandw(sys);
	else if (!strcmp(argv[1], "seq"))
		mode_seq();
	else if (!strcmp(argv[1], "destroy"))
		mode_destroy();
	else {
		fprintf(stderr, "versions_bench: unknown mode %s\n", argv[1]);
		return 2;
	}
	return 0;
}
