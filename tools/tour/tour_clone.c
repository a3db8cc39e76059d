/*
 * Tour step: reflink-style clones. A volume is cloned in O(1) (a snapshot
 * and a clone share its whole tree) against a byte copy of the same data;
 * then random 4 KiB overwrites go into the fresh clone and into the
 * unshared original, to show that sharing costs writes (almost) nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cow/store.h"
#include "tour.h"

/* @n random 4 KiB overwrites into volume @name, a durable commit every 1000. */
static double overwrite_rate(cow_store *s, const char *name, uint64_t size, int n, uint64_t *rng)
{
	static char block[4096];
	double t0 = tour_now_ms();
	cow_txn *t = NULL;
	cow_vol *v;
	for (int i = 0; i < n; i++) {
		if (!t) {
			if (cow_txn_begin(s, 0, &t) || cow_vol_open(t, name, &v))
				return -1;
		}
		*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t b = (*rng >> 20) % (size / 4096);
		memset(block, (int)(i & 0xff) | 1, sizeof(block));
		if (cow_vol_pwrite(v, block, sizeof(block), b * 4096))
			return -1;
		if (i % 1000 == 999 || i == n - 1) {
			if (cow_txn_commit(t))
				return -1;
			t = NULL;
		}
	}
	return n / ((tour_now_ms() - t0) / 1e3);
}

int tour_clone(struct tour *t)
{
	char path[512], sz[32];
	snprintf(path, sizeof(path), "%s/clone.cow", t->dir);
	uint64_t size = t->size;
	cow_store *s = NULL;
	cow_txn *x = NULL;
	cow_vol *v, *c;
	char *buf = malloc(1 << 20);
	if (!buf)
		return 1;
	TRY(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));

	/* A volume written end to end. */
	double t0 = tour_now_ms();
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_vol_create(x, "base", size));
	TRY(cow_vol_open(x, "base", &v));
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		for (size_t i = 0; i < (1u << 20); i += 8)
			memcpy(buf + i, &(uint64_t){off + i + 1}, 8);
		TRY(cow_vol_pwrite(v, buf, 1 << 20, off));
	}
	TRY(cow_txn_commit(x));
	x = NULL;
	double wr = tour_now_ms() - t0;
	tour_say("wrote a %s volume in %.0f ms (%.0f MiB/s, one durable commit)",
		 cli_size(sz, sizeof(sz), (double)size), wr, size / 1048576.0 / (wr / 1e3));

	/* Clone: snapshot + clone + durable commit. */
	t0 = tour_now_ms();
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_snapshot(x, "base@v1"));
	TRY(cow_clone(x, "base@v1", "fast"));
	TRY(cow_txn_commit(x));
	x = NULL;
	double clone_ms = tour_now_ms() - t0;

	/* Copy: read every byte, write a new volume. */
	t0 = tour_now_ms();
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_vol_create(x, "slow", size));
	TRY(cow_vol_open(x, "base", &v));
	TRY(cow_vol_open(x, "slow", &c));
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		TRY(cow_vol_pread(v, buf, 1 << 20, off));
		TRY(cow_vol_pwrite(c, buf, 1 << 20, off));
	}
	TRY(cow_txn_commit(x));
	x = NULL;
	double copy_ms = tour_now_ms() - t0;
	tour_say("clone (snapshot + clone + commit): %.2f ms; byte copy: %.0f ms (%.0fx)", clone_ms,
		 copy_ms, copy_ms / clone_ms);

	/* Overwrites into the fresh clone vs into an unshared volume. */
	uint64_t rng = 42;
	int n = t->quick ? 2000 : 10000;
	double rc_clone = overwrite_rate(s, "fast", size, n, &rng);
	rng = 42;
	double rc_plain = overwrite_rate(s, "slow", size, n, &rng);
	if (rc_clone < 0 || rc_plain < 0) {
		tour_say("overwrite run failed");
		goto fail;
	}
	tour_say("%d random 4 KiB overwrites: fresh clone %.0f/s, unshared volume %.0f/s (%.2fx)",
		 n, rc_clone, rc_plain, rc_clone / rc_plain);

	cow_obj_stats st;
	TRY(cow_txn_begin(s, COW_TXN_RDONLY, &x));
	TRY(cow_obj_stat(x, "fast", COW_STAT_EXCLUSIVE, &st));
	char a[32], b[32];
	tour_say("the clone references %s, of which only %s is its own (the rest is shared)",
		 cli_size(a, sizeof(a), (double)st.referenced),
		 cli_size(b, sizeof(b), (double)st.exclusive));
	cow_txn_abort(x);
	cow_store_close(s);
	free(buf);
	return 0;
fail:
	cow_txn_abort(x);
	cow_store_close(s);
	free(buf);
	return 1;
}
