/*
 * rcu stress: reader threads and updaters on one object, at least 1 M reads.
 *
 * Every version carries a serial and a payload derived from it; a reader
 * checks the whole payload (no mix of versions) and that the version is
 * still alive (the release hook marks it dead before it is freed, so a
 * version freed under a reader shows up here even without a sanitizer; with
 * ASan it is a use-after-free report, with TSan a race with the free).
 * Serials a reader sees never go backwards. Two updaters publish at once,
 * one deferring reclaim, one waiting for it (COW_RCU_WAIT).
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "cow/rcu.h"
#include "rcu/rcu.h"

#define WORDS 14

struct ver {
	uint64_t serial;
	uint64_t alive; /* 1 while the version may be read; 0 from release on */
	uint64_t word[WORDS];
};

COW_RCU_DEFINE(ver_ref, struct ver)

static struct ver_ref ref;
static long released;	 /* atomic */
static int readers_done; /* atomic */

static void ver_release(void *obj, void *ctx)
{
	(void)ctx;
	struct ver *v = obj;
	v->alive = 0;
	__atomic_fetch_add(&released, 1, __ATOMIC_RELAXED);
}

static void fill(struct ver *v, uint64_t serial)
{
	v->serial = serial;
	v->alive = 1;
	for (int i = 0; i < WORDS; i++)
		v->word[i] = serial * 0x9E3779B97F4A7C15ull + (uint64_t)i;
}

struct reader {
	alignas(64) uint64_t reads, bad, dead, backwards, seen;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	uint64_t last = 0;
	for (uint64_t i = 0; i < rd->reads; i++) {
		cow_rcu_read_lock();
		const struct ver *v = ver_ref_deref(&ref);
		uint64_t s = v->serial;
		for (int w = 0; w < WORDS; w++)
			if (v->word[w] != s * 0x9E3779B97F4A7C15ull + (uint64_t)w)
				rd->bad++;
		if (v->alive != 1)
			rd->dead++;
		if (s < last)
			rd->backwards++;
		if (s != last)
			rd->seen++;
		last = s;
		cow_rcu_read_unlock();
	}
	return NULL;
}

struct updater {
	unsigned flags;
	uint64_t updates;
};

static void *updater_main(void *arg)
{
	struct updater *up = arg;
	while (!__atomic_load_n(&readers_done, __ATOMIC_ACQUIRE)) {
		struct ver *n;
		CHECK_OK(ver_ref_update_begin(&ref, &n));
		CHECK_EQ(n->alive, 1);
		fill(n, n->serial + 1);
		CHECK_OK(ver_ref_update_commit(&ref, n, up->flags));
		up->updates++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
#ifdef COW_SANITIZED
	uint64_t reads_each = 500000; /* 1 M in all, slower under sanitizers */
#else
	uint64_t reads_each = 1500000;
#endif
	if (argc > 1) /* the long tier asks for more */
		reads_each = strtoull(argv[1], NULL, 10);
	enum { READERS = 2, UPDATERS = 2 };
	cow_rcu_ops ops = {sizeof(struct ver), NULL, ver_release, NULL};
	struct ver init;
	fill(&init, 1);
	CHECK_OK(ver_ref_create(&ref, &ops, &init));

	struct reader rd[READERS];
	struct updater up[UPDATERS] = {{0, 0}, {COW_RCU_WAIT, 0}};
	pthread_t rt[READERS], ut[UPDATERS];
	for (int i = 0; i < UPDATERS; i++)
		CHECK_EQ(pthread_create(&ut[i], NULL, updater_main, &up[i]), 0);
	for (int i = 0; i < READERS; i++) {
		rd[i] = (struct reader){reads_each, 0, 0, 0, 0};
		CHECK_EQ(pthread_create(&rt[i], NULL, reader_main, &rd[i]), 0);
	}
	for (int i = 0; i < READERS; i++)
		CHECK_EQ(pthread_join(rt[i], NULL), 0);
	__atomic_store_n(&readers_done, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < UPDATERS; i++)
		CHECK_EQ(pthread_join(ut[i], NULL), 0);

	uint64_t reads = 0, seen = 0, updates = up[0].updates + up[1].updates;
	for (int i = 0; i < READERS; i++) {
		CHECK_EQ(rd[i].bad, 0);
		CHECK_EQ(rd[i].dead, 0);
		CHECK_EQ(rd[i].backwards, 0);
		reads += rd[i].reads;
		seen += rd[i].seen;
	}
	CHECK_GE(reads, 2 * reads_each);
	CHECK_GE(reads, 1000000);
	CHECK_GT(up[0].updates, 0);
	CHECK_GT(up[1].updates, 0);

	cow_rcu_read_lock();
	CHECK_EQ(ver_ref_deref(&ref)->serial, 1 + updates);
	cow_rcu_read_unlock();
	ver_ref_destroy(&ref);
	/* Every version but none twice: init's copy plus one per update. */
	CHECK_EQ(__atomic_load_n(&released, __ATOMIC_RELAXED), (long)(1 + updates));
	printf("rcu stress: %llu reads, %llu updates, readers saw %llu versions, 0 torn\n",
	       (unsigned long long)reads, (unsigned long long)updates, (unsigned long long)seen);
	return 0;
}
