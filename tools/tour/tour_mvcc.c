/*
 * Tour step: a long consistent read while writes go on (the seed's "database
 * fork snapshot for a long consistent query"). Redis forks to get a frozen
 * copy for BGSAVE; the store gets the same from a read transaction: it keeps
 * the generation it began at, copy-on-write keeps that generation's blocks
 * unchanged, and the writer never waits for it.
 *
 * The step loads a map, measures the writer alone, then opens a read
 * transaction (and another one in a forked child) and lets the writer rewrite
 * random keys while both readers scan the whole map again and again: every
 * pass must give the checksum of the generation the reader began at. Then it
 * shows where the space went: blocks only the old reader can still see are
 * pending; blocks born after its generation were reused as soon as the next
 * commit replaced them, so the file grows by at most what the reader sees.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "cli.h"
#include "cow/store.h"
#include "tour.h"

#define MAP	"accounts"
#define VLEN	100 /* bytes per value: about 128 per entry with key and cell */
#define PER_TXN 8   /* random keys rewritten by each write transaction */
#define BATCH	50000
#define PACE	2048 /* entries between the paced readers' 1 ms rests */

static size_t key_of(uint64_t i, char *k)
{
	return (size_t)snprintf(k, 24, "acct%010" PRIu64, i);
}

/* Value @ver of entry @i: the version, the index, then filler bytes. */
static void val_of(uint64_t i, uint64_t ver, uint8_t *v)
{
	memcpy(v, &ver, 8);
	memcpy(v + 8, &i, 8);
	for (int j = 16; j < VLEN; j++)
		v[j] = (uint8_t)(i * 31 + ver * 7 + (uint64_t)j);
}

/* Folds @len bytes (and the length) into @h: a checksum, not a cryptographic hash. */
static uint64_t mix(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	h = (h ^ len) * 0x9E3779B97F4A7C15ull;
	for (; len >= 8; len -= 8, b += 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = ((h ^ w) * 0xFF51AFD7ED558CCDull);
		h ^= h >> 29;
	}
	for (; len; len--, b++)
		h = (h ^ *b) * 0x100000001B3ull;
	return h;
}

/*
 * Checksum of every key and value of the map, in key order, as @t sees it.
 * With @paced the scan rests 1 ms after every PACE entries, as a query that
 * streams its result does, so that the readers measure waiting, not the
 * sharing of the machine's CPUs.
 */
static int scan(cow_txn *t, bool paced, uint64_t *count, uint64_t *sum)
{
	cow_map *m;
	cow_cursor *c;
	int rc = cow_map_open(t, MAP, &m);
	if (rc == 0)
		rc = cow_cursor_open(m, &c);
	if (rc)
		return rc;
	uint64_t n = 0, h = 0;
	for (rc = cow_cursor_first(c); rc == 0; rc = cow_cursor_next(c)) {
		cow_buf k, v;
		rc = cow_cursor_get(c, &k, &v);
		if (rc)
			break;
		h = mix(mix(h, k.data, k.len), v.data, v.len);
		if (++n % PACE == 0 && paced)
			nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	*count = n;
	*sum = h;
	cow_cursor_close(c);
	return rc == COW_ENOTFOUND ? 0 : rc;
}

static int load(cow_store *s, uint64_t n)
{
	uint8_t v[VLEN];
	char k[24];
	for (uint64_t i = 0; i < n;) {
		cow_txn *t;
		cow_map *m;
		int rc = cow_txn_begin(s, 0, &t);
		if (rc)
			return rc;
		rc = i == 0 ? cow_map_create(t, MAP) : 0;
		if (rc == 0)
			rc = cow_map_open(t, MAP, &m);
		for (uint64_t end = i + BATCH < n ? i + BATCH : n; rc == 0 && i < end; i++) {
			val_of(i, 0, v);
			rc = cow_map_put(m, k, key_of(i, k), v, VLEN);
		}
		if (rc) {
			cow_txn_abort(t);
			return rc;
		}
		rc = cow_txn_commit(t);
		if (rc)
			return rc;
	}
	return 0;
}

/* One durable commit rewriting PER_TXN random keys. */
static int rewrite(cow_store *s, uint64_t n, uint64_t *rng)
{
	cow_txn *t;
	cow_map *m;
	int rc = cow_txn_begin(s, 0, &t);
	if (rc)
		return rc;
	rc = cow_map_open(t, MAP, &m);
	uint8_t v[VLEN];
	char k[24];
	for (int j = 0; rc == 0 && j < PER_TXN; j++) {
		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		uint64_t i = *rng % n;
		val_of(i, cow_txn_gen(t), v);
		rc = cow_map_put(m, k, key_of(i, k), v, VLEN);
	}
	if (rc) {
		cow_txn_abort(t);
		return rc;
	}
	return cow_txn_commit(t);
}

/*
 * Commits for @secs seconds, at least once, and until both counters of
 * @until (when given) are nonzero: each reader has finished a pass.
 */
static int write_for(cow_store *s, uint64_t n, uint64_t *rng, double secs, atomic_int *const *until,
		     uint64_t *commits, double *elapsed)
{
	double t0 = bench_now_s();
	uint64_t c = 0;
	int rc;
	do {
		rc = rewrite(s, n, rng);
		c += rc == 0;
	} while (rc == 0 && (bench_now_s() - t0 < secs ||
			     (until && (!atomic_load(until[0]) || !atomic_load(until[1])))));
	*commits = c;
	*elapsed = bench_now_s() - t0;
	return rc;
}

/* The long query: scans again and again in one read transaction. */
struct reader {
	cow_txn *txn;
	uint64_t n, sum;   /* what every pass must find */
	atomic_int stop;   /* set by the writer when it is done */
	atomic_int passes; /* completed passes; the writer waits for the first */
	int bad;	   /* passes whose count or checksum differed */
	int rc;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	do {
		uint64_t n, sum;
		r->rc = scan(r->txn, true, &n, &sum);
		if (r->rc)
			break;
		r->bad += n != r->n || sum != r->sum;
		atomic_fetch_add(&r->passes, 1);
	} while (!atomic_load(&r->stop));
	return NULL;
}

/*
 * The forked reader: begins its own read transaction (on the store handle the
 * parent opened before fork), says which generation it got, then scans until
 * the parent writes to @stop_fd, counting passes in shared memory (@passes).
 * Reports {gen, passes, bad, rc} on @out_fd.
 */
static void child_reader(cow_store *s, uint64_t n, uint64_t sum, int ready_fd, int stop_fd,
			 int out_fd, atomic_int *passes)
{
	int64_t rep[4] = {0, 0, 0, 0};
	cow_txn *t;
	int rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	rep[0] = rc ? -1 : (int64_t)cow_txn_gen(t);
	if (write(ready_fd, &rep[0], 8) != 8 || rc)
		_exit(1);
	char c;
	do {
		uint64_t got_n, got_sum;
		rc = scan(t, true, &got_n, &got_sum);
		if (rc)
			break;
		rep[1]++;
		atomic_fetch_add(passes, 1);
		rep[2] += got_n != n || got_sum != sum;
	} while (read(stop_fd, &c, 1) < 0 && errno == EAGAIN);
	rep[3] = rc;
	cow_txn_abort(t);
	_exit(write(out_fd, rep, sizeof(rep)) == sizeof(rep) ? 0 : 1);
}

/* Bytes this process has passed to write(2)-family calls (/proc/self/io), or 0. */
static uint64_t wchar(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	if (!f)
		return 0;
	char line[128];
	unsigned long long v = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "wchar: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int say_fail(const char *what, int rc)
{
	tour_say("%s: %s", what, cow_strerror(rc));
	return 1;
}

int tour_mvcc(struct tour *t)
{
	char path[4096], lock[4200], a[32], b[32], c[32], d[32];
	snprintf(path, sizeof(path), "%s/mvcc.cow", t->dir);
	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(path);
	unlink(lock);
	const uint64_t n = t->size / 256; /* live data about --size: leaves ~half full */
	const double secs = t->quick ? 0.15 : 0.6;
	uint64_t rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
	cow_store *s;
	int rc = cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s);
	if (rc)
		return say_fail("open the store", rc);
	int ret = 1;
	cow_txn *rt = NULL;
	pid_t kid = -1;
	atomic_int *kid_passes = NULL;
	int ready[2] = {-1, -1}, stop[2] = {-1, -1}, out[2] = {-1, -1};

	double t0 = bench_now_s();
	rc = load(s, n);
	if (rc) {
		say_fail("load the map", rc);
		goto out;
	}
	cow_store_stats st0;
	if ((rc = cow_store_stat(s, &st0)) != 0) {
		say_fail("stat", rc);
		goto out;
	}
	tour_say("map of %" PRIu64 " entries (%d-byte values) loaded in %.2f s; file %s, live "
		 "data %s",
		 n, VLEN, bench_now_s() - t0, cli_size(a, sizeof(a), (double)st0.file_bytes),
		 cli_size(b, sizeof(b), (double)st0.used_bytes));

	/* The writer alone. */
	uint64_t alone_commits, open_commits;
	double alone_s, open_s;
	rc = write_for(s, n, &rng, secs, NULL, &alone_commits, &alone_s);
	if (rc) {
		say_fail("write", rc);
		goto out;
	}
	cow_store_stats st1;
	if ((rc = cow_store_stat(s, &st1)) != 0) {
		say_fail("stat", rc);
		goto out;
	}

	/* The long query begins; its first pass, before any write, is the reference. */
	struct reader r = {.stop = 0, .passes = 0};
	if ((rc = cow_txn_begin(s, COW_TXN_RDONLY, &rt)) != 0) {
		say_fail("begin the read transaction", rc);
		goto out;
	}
	t0 = bench_now_s();
	if ((rc = scan(rt, false, &r.n, &r.sum)) != 0) {
		say_fail("scan", rc);
		goto out;
	}
	double scan_ms = (bench_now_s() - t0) * 1e3;
	uint64_t rgen = cow_txn_gen(rt);
	if (r.n != n) {
		tour_say("the scan found %" PRIu64 " entries, expected %" PRIu64, r.n, n);
		goto out;
	}

	/* A forked child opens a read transaction at the same time. */
	if (pipe(ready) || pipe2(stop, O_NONBLOCK) || pipe(out)) {
		tour_say("pipe: %s", strerror(errno));
		goto out;
	}
	kid_passes = mmap(NULL, sizeof(*kid_passes), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (kid_passes == MAP_FAILED) {
		kid_passes = NULL;
		tour_say("mmap: %s", strerror(errno));
		goto out;
	}
	kid = fork();
	if (kid < 0) {
		tour_say("fork: %s", strerror(errno));
		goto out;
	}
	if (kid == 0) {
		close(ready[0]);
		close(stop[1]);
		close(out[0]);
		child_reader(s, r.n, r.sum, ready[1], stop[0], out[1], kid_passes);
	}
	close(ready[1]);
	close(stop[0]);
	close(out[1]);
	ready[1] = stop[0] = out[1] = -1;
	int64_t kid_gen = -1;
	if (read(ready[0], &kid_gen, 8) != 8 || kid_gen < 0) {
		tour_say("the forked reader could not begin its transaction");
		goto out;
	}

	r.txn = rt;
	pthread_t th;
	if ((rc = pthread_create(&th, NULL, reader_main, &r)) != 0) {
		tour_say("pthread_create: %s", strerror(rc));
		goto out;
	}
	atomic_int *const until[2] = {&r.passes, kid_passes};
	uint64_t wchar0 = wchar();
	rc = write_for(s, n, &rng, secs, until, &open_commits, &open_s);
	uint64_t wrote = wchar() - wchar0;
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	if (rc) {
		say_fail("write under the reader", rc);
		goto out;
	}
	cow_store_stats st2;
	if ((rc = cow_store_stat(s, &st2)) != 0) {
		say_fail("stat", rc);
		goto out;
	}
	if (write(stop[1], "s", 1) != 1) {
		tour_say("could not stop the forked reader: %s", strerror(errno));
		goto out;
	}
	int64_t rep[4];
	int status;
	bool kid_ok = read(out[0], rep, sizeof(rep)) == sizeof(rep);
	kid_ok &= waitpid(kid, &status, 0) == kid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	kid = -1;
	if (!kid_ok) {
		tour_say("the forked reader failed");
		goto out;
	}

	tour_say("long reader at generation %" PRIu64 " (a forked child's at %" PRId64
		 "); a full scan takes %.0f ms",
		 rgen, kid_gen, scan_ms);
	tour_say("while it stayed open: %" PRIu64 " commits of %d random keys each, newest "
		 "generation %" PRIu64,
		 open_commits, PER_TXN, st2.gen);
	tour_say("reader scanned the map %d times, the forked child %" PRId64
		 " times: %severy pass matched generation %" PRIu64 "'s checksum",
		 atomic_load(&r.passes) + 1, rep[1],
		 r.bad || rep[2] || r.rc || rep[3] ? "NOT " : "", rgen);
	if (r.bad || rep[2] || r.rc || rep[3] || kid_gen != (int64_t)rgen) {
		tour_say("the readers did not see their generation (rc %s / %s)", cow_errname(r.rc),
			 cow_errname((int)rep[3]));
		goto out;
	}
	double alone_rate = (double)alone_commits / alone_s;
	double open_rate = (double)open_commits / open_s;
	tour_say("durable commits: %.0f/s with both readers scanning, %.0f/s before (%.0f%%): "
		 "readers take no lock the writer waits for",
		 open_rate, alone_rate, 100.0 * open_rate / alone_rate);
	tour_say("readers registered: %" PRIu64 " (this process and the child)", st2.readers);
	tour_say("file %s before the reader, %s after; live data %s, pending %s",
		 cli_size(a, sizeof(a), (double)st1.file_bytes),
		 cli_size(b, sizeof(b), (double)st2.file_bytes),
		 cli_size(c, sizeof(c), (double)st2.used_bytes),
		 cli_size(d, sizeof(d), (double)st2.pending_bytes));
	tour_say("pending: old blocks only the reader still sees (at most its whole generation, "
		 "%s)",
		 cli_size(a, sizeof(a), (double)st1.used_bytes));
	/*
	 * Every block a commit writes stays in use (live or pending) unless it is
	 * reused; under an LMDB-style rule (nothing freed after the oldest
	 * reader's snapshot is reused) the space in use would grow by all of it.
	 */
	uint64_t held1 = st1.used_bytes + st1.pending_bytes;
	uint64_t held2 = st2.used_bytes + st2.pending_bytes;
	uint64_t grew = held2 > held1 ? held2 - held1 : 0;
	if (wrote)
		tour_say("the commits wrote %s; space in use (live + pending) grew %s%s",
			 cli_size(a, sizeof(a), (double)wrote),
			 cli_size(b, sizeof(b), (double)grew),
			 grew < wrote ? ": blocks born after the reader's generation were reused "
					"as soon as replaced"
				      : "");

	cow_txn_abort(rt);
	rt = NULL;
	uint64_t one;
	double one_s;
	rc = write_for(s, n, &rng, 0, NULL, &one, &one_s);
	cow_store_stats st3;
	if (rc == 0)
		rc = cow_store_stat(s, &st3);
	if (rc) {
		say_fail("write after the reader", rc);
		goto out;
	}
	tour_say("reader closed: the next commit made %s reusable; pending now %s, free %s",
		 cli_size(a, sizeof(a), (double)(st2.pending_bytes - st3.pending_bytes)),
		 cli_size(b, sizeof(b), (double)st3.pending_bytes),
		 cli_size(c, sizeof(c), (double)st3.free_bytes));
	ret = 0;
out:
	if (kid > 0) {
		kill(kid, SIGKILL);
		waitpid(kid, NULL, 0);
	}
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (stop[i] >= 0)
			close(stop[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	if (kid_passes)
		munmap(kid_passes, sizeof(*kid_passes));
	cow_txn_abort(rt);
	cow_store_close(s);
	unlink(path);
	unlink(lock);
	return ret;
}
