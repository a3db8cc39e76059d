/*
 * Process-kill test: a writer in a child process is killed with SIGKILL at
 * random moments, many times, while reader processes keep reading. Unlike
 * crash_store (a simulated power loss), a killed process loses nothing that
 * reached the page cache, but it can die anywhere: in open, in recovery, in
 * the middle of a pwritev, between the superblock write and the flush,
 * holding the writer lock or a reader slot.
 *
 * Every eighth commit is followed by a compaction (commits that move blocks
 * and change no content), so kills land in its steps too.
 *
 * Every commit N of the writer is a deterministic function of N and the
 * state before it: it writes N into COUNTERS keys spread over the map, a
 * multi-block value derived from N, and random puts and deletes. The parent
 * keeps the same model, so after each kill it knows the exact content of the
 * last acknowledged commit A and of the one in flight, A + 1. It reopens the
 * store and checks:
 *
 *  - the map is exactly state A or state A + 1 (nothing torn, nothing lost,
 *    nothing from an unacknowledged commit but the whole one in flight);
 *  - cow__store_check passes (the space map agrees with the trees);
 *  - cow_store_stat counts only live readers: the killed writer held a read
 *    transaction and a doomed reader is killed with it, so stale slots of
 *    dead processes must have been cleared;
 *  - the next writer builds on what the parent saw (its first transaction
 *    reads state exactly as the model has it), with one exception below;
 *  - a commit a reader saw is never lost.
 *
 * In one round of three the readers close the store before the kill, so
 * the reopen is the only process with the store open: the reader count must
 * then be zero. Either way the reopen reads the newest slot, so a commit
 * whose writer died after writing its superblock (complete in the page
 * cache) is found at once, and the next writer builds on exactly what the
 * parent saw.
 *
 * The readers check every transaction: the counters agree, the map's digest
 * for counter N is the model's (shared memory collects them), the counter
 * never goes back, and a transaction held open across commits and kills
 * keeps reading the same bytes.
 *
 *   crash_kill [ITERATIONS]   (COW_SEED=n replays the workload; kill times vary)
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "check.h"
#include "io/io.h"
#include "store/store.h"

#define NKEYS	 2000
#define COUNTERS 8
#define STRIDE	 (NKEYS / COUNTERS)
#define BULK	 9000 /* value in a three-block extent */
#define NREADERS 2
#define MAXGEN	 (1u << 20) /* counters whose digests the readers record */

struct model {
	uint64_t n;	     /* the counter: commits since creation */
	uint32_t len[NKEYS]; /* UINT32_MAX: absent */
	uint64_t seed[NKEYS];
};

/* Shared with the reader processes. */
struct shared {
	atomic_int stop;
	atomic_int pause;  /* set: readers close the store until it is cleared */
	atomic_int paused; /* readers that have closed it */
	atomic_ulong reads[NREADERS];
	atomic_ulong digest[MAXGEN]; /* digest seen for counter N (0: not seen) */
};

static uint64_t seed0;
static struct shared *sh;
static uint8_t vbuf[20000];

static size_t key_make(int i, char *out)
{
	size_t len = 8 + (size_t)(i % 30);
	int n = snprintf(out, 16, "%06d", i);
	for (size_t j = (size_t)n; j < len; j++)
		out[j] = (char)('a' + (i * 7 + j) % 26);
	return len;
}

/* Counter key j sorts just before model key j * STRIDE ('#' < 'a'). */
static size_t counter_key(int j, char *out)
{
	return (size_t)snprintf(out, 16, "%06d#", j * STRIDE);
}

static void val_make(uint32_t len, uint64_t seed, uint8_t *out)
{
	uint64_t s = seed | 1;
	for (uint32_t j = 0; j < len; j += 8) {
		uint64_t w = check_rand(&s);
		memcpy(out + j, &w, len - j < 8 ? len - j : 8);
	}
}

static void bulk_make(uint64_t n, uint8_t *out)
{
	val_make(BULK, n * 0x9E3779B97F4A7C15ull + 7, out);
}

static void digest_add(XXH3_state_t *h, const void *k, uint64_t klen, const void *v, uint64_t vlen)
{
	XXH3_64bits_update(h, &klen, 8);
	XXH3_64bits_update(h, k, klen);
	XXH3_64bits_update(h, &vlen, 8);
	XXH3_64bits_update(h, v, vlen);
}

static uint64_t digest_model(const struct model *m)
{
	XXH3_state_t *h = XXH3_createState();
	XXH3_64bits_reset(h);
	char key[64];
	for (int i = 0; i < NKEYS; i++) {
		if (i % STRIDE == 0)
			digest_add(h, key, counter_key(i / STRIDE, key), &m->n, 8);
		if (m->len[i] == UINT32_MAX)
			continue;
		val_make(m->len[i], m->seed[i], vbuf);
		digest_add(h, key, key_make(i, key), vbuf, m->len[i]);
	}
	bulk_make(m->n, vbuf);
	digest_add(h, "zbulk", 5, vbuf, BULK);
	uint64_t d = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	return d | 1; /* never 0, the "not seen" mark */
}

/*
 * The digest of map "m" as @t sees it, in the model's format; the counter
 * (every counter key must agree) in *@n. 0 on success, else a message in @why.
 */
static int digest_store(cow_txn *t, uint64_t *n, uint64_t *digest, char *why, size_t whylen)
{
	cow_map *m;
	cow_cursor *c;
	int rc = cow_map_open(t, "m", &m);
	if (rc == 0)
		rc = cow_cursor_open(m, &c);
	if (rc) {
		snprintf(why, whylen, "open the map: %s", cow_errname(rc));
		return 1;
	}
	XXH3_state_t *h = XXH3_createState();
	XXH3_64bits_reset(h);
	int counters = 0, bad = 0;
	uint64_t count = 0;
	for (rc = cow_cursor_first(c); rc == 0 && !bad; rc = cow_cursor_next(c)) {
		cow_buf k, v;
		if ((rc = cow_cursor_get(c, &k, &v)) != 0)
			break;
		digest_add(h, k.data, k.len, v.data, v.len);
		count++;
		if (k.len == 7 && ((const char *)k.data)[6] == '#') {
			uint64_t got = 0;
			if (v.len == 8)
				memcpy(&got, v.data, 8);
			if (v.len != 8 || (counters > 0 && got != *n)) {
				snprintf(why, whylen, "torn: counter key %.7s holds %llu, not %llu",
					 (const char *)k.data, (unsigned long long)got,
					 (unsigned long long)*n);
				bad = 1;
			}
			*n = got;
			counters++;
		}
	}
	*digest = XXH3_64bits_digest(h) | 1;
	XXH3_freeState(h);
	if (bad)
		return 1;
	if (rc != COW_ENOTFOUND) {
		snprintf(why, whylen, "scan: %s", cow_errname(rc));
		return 1;
	}
	if (counters != COUNTERS || count != cow_map_count(m)) {
		snprintf(why, whylen, "%d counter keys, %llu entries scanned, count says %llu",
			 counters, (unsigned long long)count, (unsigned long long)cow_map_count(m));
		return 1;
	}
	return 0;
}

/* The puts and deletes of commit @m->n + 1, applied to the model and (if @mp) the store. */
static int step(struct model *m, cow_map *mp)
{
	m->n++;
	uint64_t rng = seed0 ^ (m->n * 0x9E3779B97F4A7C15ull);
	check_rand(&rng);
	int ops = 1 + (int)(check_rand(&rng) % 30);
	char key[64];
	int rc = 0;
	for (int j = 0; j < ops && rc == 0; j++) {
		int i = (int)(check_rand(&rng) % NKEYS);
		size_t klen = key_make(i, key);
		if (check_rand(&rng) % 4 == 0) {
			if (mp)
				rc = cow_map_del(mp, key, klen);
			if (rc == COW_ENOTFOUND && m->len[i] == UINT32_MAX)
				rc = 0;
			m->len[i] = UINT32_MAX;
		} else {
			uint64_t r = check_rand(&rng);
			uint32_t len =
				(uint32_t)(r % 100 == 0 ? (r >> 8) % sizeof(vbuf) : (r >> 8) % 300);
			m->len[i] = len;
			m->seed[i] = check_rand(&rng);
			if (mp) {
				val_make(len, m->seed[i], vbuf);
				rc = cow_map_put(mp, key, klen, vbuf, len);
			}
		}
	}
	for (int j = 0; j < COUNTERS && rc == 0 && mp; j++)
		rc = cow_map_put(mp, key, counter_key(j, key), &m->n, 8);
	if (rc == 0 && mp) {
		bulk_make(m->n, vbuf);
		rc = cow_map_put(mp, "zbulk", 5, vbuf, BULK);
	}
	return rc;
}

/*
 * Kill at an exact point: in half of the rounds the writer kills itself just
 * before or just after its kill_at-th write, flush or grow of the data file,
 * which lands the kill in the narrow windows a timer rarely hits (between
 * the blocks and the superblock, between the superblock and the flush,
 * just after the flush).
 */
static long kill_at, kill_ops;
static bool kill_after;

struct kio {
	struct cow__io io;
	struct cow__io *inner;
};

static void kill_before(void)
{
	if (++kill_ops == kill_at && !kill_after)
		raise(SIGKILL);
}

static int kill_then(int rc)
{
	if (kill_ops == kill_at && kill_after)
		raise(SIGKILL);
	return rc;
}

static int k_pwritev(struct cow__io *io, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct cow__io *in = ((struct kio *)io)->inner;
	kill_before();
	return kill_then(in->ops->pwritev(in, iov, iovcnt, off));
}

static int k_sync(struct cow__io *io)
{
	struct cow__io *in = ((struct kio *)io)->inner;
	kill_before();
	return kill_then(in->ops->sync(in));
}

static int k_grow(struct cow__io *io, uint64_t size)
{
	struct cow__io *in = ((struct kio *)io)->inner;
	kill_before();
	return kill_then(in->ops->grow(in, size));
}

static int k_pread(struct cow__io *io, void *buf, size_t len, uint64_t off)
{
	struct cow__io *in = ((struct kio *)io)->inner;
	return in->ops->pread(in, buf, len, off);
}

static int k_size(struct cow__io *io, uint64_t *size)
{
	struct cow__io *in = ((struct kio *)io)->inner;
	return in->ops->size(in, size);
}

static void k_close(struct cow__io *io)
{
	struct cow__io *in = ((struct kio *)io)->inner;
	in->ops->close(in);
	free(io);
}

static const struct cow__io_ops kops = {
	.pwritev = k_pwritev,
	.pread = k_pread,
	.sync = k_sync,
	.grow = k_grow,
	.size = k_size,
	.close = k_close,
};

static int kwrap(struct cow__io *inner, struct cow__io **out)
{
	struct kio *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->io.ops = &kops;
	k->io.fd = inner->fd;
	k->inner = inner;
	*out = &k->io;
	return 0;
}

static void die(int code, const char *fmt, const char *arg)
{
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	_exit(code);
}

/*
 * The writer (a child process, killed at any moment): holds a read
 * transaction of its own all along, then commits step after step and
 * acknowledges each counter on @fd once its commit has returned.
 */
static void writer(const char *path, struct model *m, int fd)
{
	cow_store *s;
	cow_txn *pin, *t;
	cow_map *mp;
	if (kill_at)
		cow__io_wrap = kwrap;
	int rc = cow_store_open(path, NULL, &s);
	if (rc)
		die(20, "writer: open: %s", cow_errname(rc));
	if ((rc = cow_txn_begin(s, COW_TXN_RDONLY, &pin)) != 0)
		die(21, "writer: begin read: %s", cow_errname(rc));
	for (bool first = true;; first = false) {
		if ((rc = cow_txn_begin(s, 0, &t)) != 0)
			die(22, "writer: begin: %s", cow_errname(rc));
		if (first) { /* what does the writer build on? Tell the parent. */
			char why[200];
			uint64_t n = 0, d = 0;
			if (digest_store(t, &n, &d, why, sizeof(why)))
				die(23, "writer: %s", why);
			if (d != digest_model(m))
				die(24, "writer: %s",
				    "the write transaction starts from another state than the "
				    "parent's reopen saw");
			if (write(fd, &m->n, 8) != 8)
				die(27, "writer: %s", "ack pipe");
		}
		if ((rc = cow_map_open(t, "m", &mp)) != 0 || (rc = step(m, mp)) != 0)
			die(25, "writer: write: %s", cow_errname(rc));
		if ((rc = cow_txn_commit(t)) != 0)
			die(26, "writer: commit: %s", cow_errname(rc));
		if (write(fd, &m->n, 8) != 8)
			die(27, "writer: %s", "ack pipe");
		/* Compaction now and then: its commits move blocks and change no content. */
		if (m->n % 8 == 0 &&
		    (rc = cow_store_compact(s, 4096 * (1 + m->n % 5), NULL, NULL, NULL)) != 0)
			die(28, "writer: compact: %s", cow_errname(rc));
	}
}

/* Checks one read transaction; holds it open a while now and then and checks it again. */
static void read_once(cow_store *s, int r, uint64_t *last, uint64_t *rng)
{
	cow_txn *t;
	char why[200];
	uint64_t n = 0, d = 0, n2 = 0, d2 = 0;
	int rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	if (rc)
		die(30, "reader: begin: %s", cow_errname(rc));
	if (digest_store(t, &n, &d, why, sizeof(why)))
		die(31, "reader: %s", why);
	if (n < *last) {
		fprintf(stderr, "reader %d: counter went back from %llu to %llu\n", r,
			(unsigned long long)*last, (unsigned long long)n);
		_exit(32);
	}
	*last = n;
	if (n < MAXGEN) {
		unsigned long want = 0;
		if (!atomic_compare_exchange_strong(&sh->digest[n], &want, d) && want != d) {
			fprintf(stderr,
				"reader %d: counter %llu seen with two different contents\n", r,
				(unsigned long long)n);
			_exit(33);
		}
	}
	if (check_rand(rng) % 8 == 0) { /* a long reader: the writer must not reuse its blocks */
		nanosleep(&(struct timespec){0, (long)(check_rand(rng) % 20000000)}, NULL);
		if (digest_store(t, &n2, &d2, why, sizeof(why)))
			die(34, "reader (held): %s", why);
		if (n2 != n || d2 != d) {
			fprintf(stderr, "reader %d: a held transaction changed under it (%llu)\n",
				r, (unsigned long long)n);
			_exit(35);
		}
	}
	cow_txn_abort(t);
}

/* Children die with the parent (a failed CHECK must not leave readers behind). */
static void die_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(50);
}

static void reader(const char *path, int r)
{
	uint64_t last = 0, rng = seed0 + (uint64_t)r + 1;
	check_rand(&rng);
	while (!atomic_load(&sh->stop)) {
		cow_store *s;
		int rc = cow_store_open(path, NULL, &s);
		if (rc)
			die(36, "reader: open: %s", cow_errname(rc));
		while (!atomic_load(&sh->stop) && !atomic_load(&sh->pause)) {
			read_once(s, r, &last, &rng);
			atomic_fetch_add(&sh->reads[r], 1);
		}
		cow_store_close(s);
		if (!atomic_load(&sh->pause))
			continue;
		atomic_fetch_add(&sh->paused, 1);
		while (atomic_load(&sh->pause) && !atomic_load(&sh->stop))
			nanosleep(&(struct timespec){0, 200000}, NULL);
		atomic_fetch_sub(&sh->paused, 1);
	}
	_exit(0);
}

/* A reader that registers and waits to be killed with the writer. */
static void doomed(const char *path, int fd)
{
	cow_store *s;
	cow_txn *t;
	if (cow_store_open(path, NULL, &s) || cow_txn_begin(s, COW_TXN_RDONLY, &t))
		_exit(40);
	if (write(fd, "d", 1) != 1)
		_exit(41);
	for (;;)
		pause();
}

static void check_readers(const pid_t *pids)
{
	for (int r = 0; r < NREADERS; r++) {
		int status;
		pid_t w = waitpid(pids[r], &status, WNOHANG);
		CHECK(w >= 0);
		if (w == pids[r])
			check__fail(__FILE__, __LINE__, "reader %d exited early (status %#x)", r,
				    status);
	}
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 200;
	seed0 = check_seed();
	pid_t parent = getpid();
	uint64_t rng = seed0;
	check_rand(&rng);
	const char *path = check_path("kill.cow");
	setenv("COW_LOG", "off", 1);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);

	/* The store with the model's first state, commit 1. */
	static struct model model, next;
	for (int i = 0; i < NKEYS; i++)
		model.len[i] = UINT32_MAX;
	cow_store *s;
	cow_txn *t;
	cow_map *mp;
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_map_open(t, "m", &mp));
	CHECK_OK(step(&model, mp));
	CHECK_OK(cow_txn_commit(t));
	cow_store_close(s);
	uint64_t *digests = calloc(MAXGEN, sizeof(uint64_t)); /* the model's, per commit */
	CHECK(digests != NULL);
	digests[model.n] = digest_model(&model);
	next = model;

	pid_t readers[NREADERS];
	for (int r = 0; r < NREADERS; r++) {
		readers[r] = fork();
		CHECK(readers[r] >= 0);
		if (readers[r] == 0) {
			die_with_parent(parent);
			reader(path, r);
		}
	}

	long inflight = 0, commits = 0, early = 0;
	long alone_rounds = 0;
	for (long it = 0; it < iters; it++) {
		int ack[2], dp[2];
		bool alone = it % 3 == 2;
		if (alone) { /* the readers close the store: no reader may be counted */
			atomic_store(&sh->pause, 1);
			while (atomic_load(&sh->paused) < NREADERS) {
				check_readers(readers);
				nanosleep(&(struct timespec){0, 200000}, NULL);
			}
			alone_rounds++;
		}
		CHECK_EQ(pipe(ack), 0);
		CHECK_EQ(pipe(dp), 0);
		pid_t dk = fork(); /* a reader that dies with the writer */
		CHECK(dk >= 0);
		if (dk == 0) {
			close(dp[0]);
			die_with_parent(parent);
			doomed(path, dp[1]);
		}
		close(dp[1]);
		char c;
		CHECK_EQ(read(dp[0], &c, 1), 1);
		close(dp[0]);

		/*
		 * Kill at a random moment (often early: open, recovery, the first
		 * commit), or have the writer kill itself at a chosen io operation.
		 */
		uint64_t r = check_rand(&rng);
		bool at_io = r % 2 == 0;
		long us = r % 3 == 0 ? (long)(r >> 8) % 3000 : (long)(r >> 8) % 40000;
		kill_at = at_io ? 1 + (long)((r >> 8) % 40) : 0;
		kill_after = (r >> 20) % 2;
		pid_t w = fork();
		CHECK(w >= 0);
		if (w == 0) {
			close(ack[0]);
			die_with_parent(parent);
			writer(path, &model, ack[1]);
		}
		close(ack[1]);
		if (!at_io) {
			nanosleep(&(struct timespec){0, us * 1000}, NULL);
			kill(w, SIGKILL);
		}
		int status;
		CHECK_EQ(waitpid(w, &status, 0), w);
		kill(dk, SIGKILL);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			check__fail(__FILE__, __LINE__,
				    "iteration %ld: the writer exited (status %#x) before the kill",
				    it, status);
		CHECK_EQ(waitpid(dk, &status, 0), dk);

		/* The acknowledged commits: bring the model up to the last one, A. */
		/* The writer first says which commit it builds on: the one the parent saw. */
		uint64_t got, acked = model.n;
		bool started = read(ack[0], &got, 8) == 8;
		if (started && got != model.n)
			check__fail(__FILE__, __LINE__,
				    "iteration %ld: the writer builds on commit %llu, the parent's "
				    "reopen saw %llu",
				    it, (unsigned long long)got, (unsigned long long)model.n);
		long round = 0;
		while (read(ack[0], &got, 8) == 8) {
			CHECK_EQ(got, model.n + 1);
			CHECK_OK(step(&model, NULL));
			if (model.n < MAXGEN)
				digests[model.n] = digest_model(&model);
			acked = got;
			round++;
		}
		close(ack[0]);
		commits += round;
		early += round == 0;
		next = model;
		CHECK_OK(step(&next, NULL)); /* A + 1, the commit that may have been in flight */
		uint64_t want = digest_model(&model), want_next = digest_model(&next);
		/* A reader saw A + 1: it was published, so it was durable and must be there. */
		bool seen_next = next.n < MAXGEN && atomic_load(&sh->digest[next.n]) != 0;

		/* Reopen and check. */
		CHECK_OK(cow_store_open(path, NULL, &s));
		int rc = cow__store_check(s);
		if (rc)
			check__fail(__FILE__, __LINE__, "iteration %ld: store check: %s", it,
				    cow_errname(rc));
		CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
		char why[200];
		uint64_t n = 0, d = 0;
		if (digest_store(t, &n, &d, why, sizeof(why)))
			check__fail(__FILE__, __LINE__, "iteration %ld: %s", it, why);
		cow_txn_abort(t);
		if (d == want_next) {
			model = next; /* the commit in flight had reached the file whole */
			if (model.n < MAXGEN)
				digests[model.n] = want_next;
			inflight++;
		} else if (d == want && seen_next) {
			check__fail(
				__FILE__, __LINE__,
				"iteration %ld: a reader saw commit %llu, the reopened store lost "
				"it",
				it, (unsigned long long)next.n);
		} else if (d != want) {
			check__fail(
				__FILE__, __LINE__,
				"iteration %ld (kill after %ld us): the store holds counter %llu, "
				"matching neither the last acknowledged commit %llu nor the one "
				"in flight",
				it, us, (unsigned long long)n, (unsigned long long)acked);
		}
		cow_store_stats st;
		CHECK_OK(cow_store_stat(s, &st));
		if (alone && st.readers != 0) /* the readers had closed the store */
			check__fail(__FILE__, __LINE__,
				    "iteration %ld: %llu readers registered, no reader alive", it,
				    (unsigned long long)st.readers);
		if (st.readers > NREADERS)
			check__fail(
				__FILE__, __LINE__,
				"iteration %ld: %llu readers registered, only %d processes alive",
				it, (unsigned long long)st.readers, NREADERS);
		cow_store_close(s);
		if (alone) {
			atomic_store(&sh->pause, 0);
			while (atomic_load(&sh->paused) > 0)
				nanosleep(&(struct timespec){0, 200000}, NULL);
		}
		check_readers(readers);
	}

	atomic_store(&sh->stop, 1);
	unsigned long reads = 0;
	for (int r = 0; r < NREADERS; r++) {
		int status;
		CHECK_EQ(waitpid(readers[r], &status, 0), readers[r]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			check__fail(__FILE__, __LINE__, "reader %d failed (status %#x)", r, status);
		reads += atomic_load(&sh->reads[r]);
	}
	/* What the readers saw for each counter is what the model says it holds. */
	for (uint64_t n = 1; n <= model.n && n < MAXGEN; n++) {
		unsigned long seen = atomic_load(&sh->digest[n]);
		if (seen && seen != digests[n])
			check__fail(__FILE__, __LINE__,
				    "readers saw other contents for commit %llu than it has",
				    (unsigned long long)n);
	}
	CHECK_OK(cow_store_open(path, NULL, &s));
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_EQ(st.readers, 0);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
	printf("%ld kills (%ld with the store open nowhere else): %ld acknowledged commits; the "
	       "one in flight was found whole at reopen %ld times; %ld writers killed before their "
	       "first commit; %lu consistent reads by %d "
	       "readers\n",
	       iters, alone_rounds, commits, inflight, early, reads, NREADERS);
	free(digests);
	return 0;
}
