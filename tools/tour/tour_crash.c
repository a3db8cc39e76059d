/*
 * Tour step: crash consistency by writing new blocks, then switching one
 * pointer. A child process commits durable transactions in a loop, each one
 * writing the same counter into keys spread over many leaves and into a
 * multi-block value; after each commit returns it reports the counter on a
 * pipe. The parent kills it with SIGKILL at a random moment, reopens the
 * store and checks what it finds: the counter is the last acknowledged one
 * or the one in flight (killed after its commit, before the report), never
 * older, never newer, and every key of the transaction agrees.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "cli.h"
#include "cow/store.h"
#include "tour.h"

#define MAP    "ledger"
#define NFILL  4000	   /* filler entries: the counter keys land in different leaves */
#define NCOUNT 16	   /* keys that hold the counter */
#define BULK   (12 * 1024) /* a value stored in an extent of three blocks */

/* Key of counter slot @j: among the filler keys, NFILL / NCOUNT apart. */
static size_t count_key(int j, char *k)
{
	return (size_t)snprintf(k, 16, "k%05d", j * (NFILL / NCOUNT));
}

static void bulk_of(uint64_t n, uint8_t *v)
{
	for (size_t i = 0; i < BULK; i += 8) {
		uint64_t w = n * 0x9E3779B97F4A7C15ull + i;
		memcpy(v + i, &w, 8);
	}
}

/* One transaction: counter @n into every counter key and the bulk value. */
static int put_counter(cow_map *m, uint64_t n, uint8_t *bulk)
{
	char k[16];
	int rc = 0;
	for (int j = 0; rc == 0 && j < NCOUNT; j++)
		rc = cow_map_put(m, k, count_key(j, k), &n, sizeof(n));
	bulk_of(n, bulk);
	return rc ? rc : cow_map_put(m, "bulk", 4, bulk, BULK);
}

static int create(const char *path, uint8_t *bulk)
{
	cow_store *s;
	cow_txn *t;
	cow_map *m;
	int rc = cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s);
	if (rc)
		return rc;
	rc = cow_txn_begin(s, 0, &t);
	if (rc)
		goto out;
	rc = cow_map_create(t, MAP);
	if (rc == 0)
		rc = cow_map_open(t, MAP, &m);
	char k[16];
	for (int i = 0; rc == 0 && i < NFILL; i++)
		rc = cow_map_put(m, k, (size_t)snprintf(k, sizeof(k), "k%05d", i), "filler", 6);
	if (rc == 0)
		rc = put_counter(m, 0, bulk);
	if (rc == 0)
		rc = cow_txn_commit(t);
	else
		cow_txn_abort(t);
out:
	cow_store_close(s);
	return rc;
}

/* The child: commits counters from @from on and reports each on @fd, until killed. */
static void committer(const char *path, uint64_t from, int fd, uint8_t *bulk)
{
	cow_store *s;
	if (cow_store_open(path, NULL, &s))
		_exit(2);
	for (uint64_t n = from;; n++) {
		cow_txn *t;
		cow_map *m;
		if (cow_txn_begin(s, 0, &t))
			_exit(3);
		int rc = cow_map_open(t, MAP, &m);
		if (rc == 0)
			rc = put_counter(m, n, bulk);
		if (rc) {
			cow_txn_abort(t);
			_exit(4);
		}
		if (cow_txn_commit(t))
			_exit(5);
		if (write(fd, &n, sizeof(n)) != sizeof(n))
			_exit(6);
	}
}

/*
 * After the kill: every counter key and the bulk value must hold the same
 * counter, and every filler entry must be there. Sets *@n to the counter;
 * returns 0, or 1 with the reason in @why.
 */
static int verify(cow_store *s, uint64_t *n, uint8_t *bulk, char *why, size_t whylen)
{
	cow_txn *t;
	cow_map *m;
	char k[16];
	cow_buf v;
	int rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	if (rc) {
		snprintf(why, whylen, "begin: %s", cow_strerror(rc));
		return 1;
	}
	if ((rc = cow_map_open(t, MAP, &m)) != 0)
		goto fail;
	for (int j = 0; j < NCOUNT; j++) {
		uint64_t got;
		if ((rc = cow_map_get(m, k, count_key(j, k), &v)) != 0)
			goto fail;
		if (v.len != sizeof(got)) {
			snprintf(why, whylen, "counter key %d has %zu bytes", j, v.len);
			goto bad;
		}
		memcpy(&got, v.data, sizeof(got));
		if (j == 0)
			*n = got;
		if (got != *n) {
			snprintf(why, whylen,
				 "torn transaction: counter key %d holds %" PRIu64
				 ", key 0 holds %" PRIu64,
				 j, got, *n);
			goto bad;
		}
	}
	if ((rc = cow_map_get(m, "bulk", 4, &v)) != 0)
		goto fail;
	bulk_of(*n, bulk);
	if (v.len != BULK || memcmp(v.data, bulk, BULK) != 0) {
		snprintf(why, whylen, "torn transaction: the bulk value is not %" PRIu64, *n);
		goto bad;
	}
	if (cow_map_count(m) != NFILL + 1) {
		snprintf(why, whylen, "%" PRIu64 " entries, expected %d", cow_map_count(m),
			 NFILL + 1);
		goto bad;
	}
	cow_txn_abort(t);
	return 0;
fail:
	snprintf(why, whylen, "read: %s", cow_strerror(rc));
bad:
	cow_txn_abort(t);
	return 1;
}

int tour_crash(struct tour *t)
{
	char path[4096], lock[4200];
	snprintf(path, sizeof(path), "%s/crash.cow", t->dir);
	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(path);
	unlink(lock);
	static uint8_t bulk[BULK];
	const int kills = t->quick ? 5 : 20;
	double reopen_ms[20];
	uint64_t rng = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(bench_now_s() * 1e9);
	int rc = create(path, bulk);
	if (rc) {
		tour_say("create the store: %s", cow_strerror(rc));
		return 1;
	}
	uint64_t counter = 0, commits = 0;
	int inflight = 0, ret = 1;
	double run_s = 0;
	for (int i = 0; i < kills; i++) {
		int p[2];
		if (pipe(p)) {
			tour_say("pipe: %s", strerror(errno));
			goto out;
		}
		pid_t kid = fork();
		if (kid < 0) {
			tour_say("fork: %s", strerror(errno));
			close(p[0]);
			close(p[1]);
			goto out;
		}
		if (kid == 0) {
			close(p[0]);
			committer(path, counter + 1, p[1], bulk);
		}
		close(p[1]);
		/* Let it commit for a while (the first ack shows it runs), then kill it. */
		uint64_t acked = counter, got;
		bool started = read(p[0], &got, sizeof(got)) == sizeof(got);
		if (started)
			acked = got;
		double t0 = bench_now_s();
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		usleep((useconds_t)(2000 + rng % (t->quick ? 20000 : 40000)));
		kill(kid, SIGKILL);
		int status;
		waitpid(kid, &status, 0);
		run_s += bench_now_s() - t0;
		while (read(p[0], &got, sizeof(got)) == sizeof(got))
			acked = got;
		close(p[0]);
		if (!started || !WIFSIGNALED(status)) {
			tour_say("the committing child failed before the kill (exit %d)",
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			goto out;
		}
		commits += acked - counter;

		cow_store *s;
		t0 = bench_now_s();
		rc = cow_store_open(path, NULL, &s);
		reopen_ms[i] = (bench_now_s() - t0) * 1e3;
		if (rc) {
			tour_say("kill %d: reopen failed: %s", i + 1, cow_strerror(rc));
			goto out;
		}
		char why[160];
		uint64_t found = 0;
		int bad = verify(s, &found, bulk, why, sizeof(why));
		cow_store_close(s);
		if (bad) {
			tour_say("kill %d: %s", i + 1, why);
			goto out;
		}
		if (found < acked || found > acked + 1) {
			tour_say("kill %d: the store holds commit %" PRIu64
				 ", the last acknowledged "
				 "was %" PRIu64,
				 i + 1, found, acked);
			goto out;
		}
		inflight += found == acked + 1;
		counter = found;
	}
	qsort(reopen_ms, (size_t)kills, sizeof(reopen_ms[0]), bench_cmp_double);
	tour_say("%d kills, %d reopens, last acknowledged commit intact every time", kills, kills);
	tour_say("%" PRIu64 " durable commits acknowledged (%.0f/s), each %d keys in different "
		 "leaves plus a %d KiB value: never torn",
		 commits, run_s > 0 ? (double)commits / run_s : 0, NCOUNT, BULK / 1024);
	tour_say("the commit in flight was there whole after %d of the %d kills (its superblock "
		 "was written: a killed process loses no page cache), absent otherwise",
		 inflight, kills);
	tour_say("reopen (recovery) time: median %.2f ms, max %.2f ms", reopen_ms[kills / 2],
		 reopen_ms[kills - 1]);
	tour_say("protocol: new blocks first, then the superblock, one flush; open verifies "
		 "every block born after the last sync");
	ret = 0;
out:
	unlink(path);
	unlink(lock);
	return ret;
}
