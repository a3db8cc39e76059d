/*
 * Model test of volume block maps (runs, FORMAT.md section 4): random
 * unaligned writes (some all zero, some longer than a run), punches and
 * resizes, interleaved with snapshots, clones, rollbacks and destroys, so
 * that runs are cut, sliced while shared and split while sole; aborts,
 * trims and compactions between transactions. Every few transactions each
 * volume and snapshot is read back against an in-memory reference, the diff
 * of each snapshot against its volume is checked to name every block that
 * differs, and the checker recounts every extent's parents.
 *
 *   model_volumes [STEPS]   (COW_SEED=n replays a run)
 */
#include <stdlib.h>

#include "check.h"
#include "store/store.h"

#define NOBJ  4
#define NSNAP 10
#define VMAX  (200 * 4096 + 777) /* largest volume */

struct img {
	uint64_t size;
	uint8_t d[VMAX];
};

struct obj {
	bool live;
	char name[16];
	char origin[40]; /* "" or a snapshot name */
	struct img m;
};

struct snap {
	bool live;
	char name[40]; /* OWNER@sN */
	int owner;
	struct img m;
};

static struct obj objs[NOBJ], saved_objs[NOBJ];
static struct snap snaps[NSNAP], saved_snaps[NSNAP];
static uint64_t rng;
static long seq;
static cow_store *s;

static uint64_t rnd(uint64_t n)
{
	return check_rand(&rng) % n;
}

struct seen {
	uint64_t size;
	uint8_t *changed; /* one byte per block */
};

static int on_diff(void *ctx, const cow_diff_entry *e)
{
	struct seen *sn = ctx;
	CHECK_EQ(e->offset % 4096, 0);
	CHECK_EQ(e->length % 4096, 0);
	CHECK_GT(e->length, 0);
	for (uint64_t b = e->offset / 4096; b < (e->offset + e->length) / 4096; b++)
		if (b < sn->size)
			sn->changed[b] = 1;
	return 0;
}

static void compare(cow_txn *t, const char *name, const struct img *ref)
{
	static uint8_t got[VMAX];
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, name, &v));
	if (cow_vol_size(v) != ref->size)
		check__fail(__FILE__, __LINE__, "%s: size %llu, want %llu", name,
			    (unsigned long long)cow_vol_size(v), (unsigned long long)ref->size);
	CHECK_OK(cow_vol_pread(v, got, ref->size, 0));
	for (uint64_t i = 0; i < ref->size; i++)
		if (got[i] != ref->d[i])
			check__fail(__FILE__, __LINE__, "%s: byte %llu is %u, want %u", name,
				    (unsigned long long)i, got[i], ref->d[i]);
}

/* Every block that differs between a snapshot and its volume is in their diff. */
static void compare_diff(cow_txn *t, const struct snap *x, const struct obj *o)
{
	static uint8_t changed[VMAX / 4096 + 1];
	memset(changed, 0, sizeof(changed));
	uint64_t size = COW_MIN(x->m.size, o->m.size);
	struct seen sn = {(size + 4095) / 4096, changed};
	CHECK_OK(cow_diff(t, x->name, o->name, on_diff, &sn));
	for (uint64_t b = 0; b < sn.size; b++) {
		uint64_t a = b * 4096, n = COW_MIN(4096, size - a);
		if (!changed[b] && memcmp(x->m.d + a, o->m.d + a, n) != 0)
			check__fail(__FILE__, __LINE__, "diff %s %s misses block %llu", x->name,
				    o->name, (unsigned long long)b);
	}
}

static void compare_all(void)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	for (int i = 0; i < NOBJ; i++)
		if (objs[i].live)
			compare(t, objs[i].name, &objs[i].m);
	for (int i = 0; i < NSNAP; i++) {
		if (!snaps[i].live)
			continue;
		compare(t, snaps[i].name, &snaps[i].m);
		compare_diff(t, &snaps[i], &objs[snaps[i].owner]);
	}
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
}

static int pick(bool want_live, bool objects)
{
	int n = objects ? NOBJ : NSNAP, start = (int)rnd((uint64_t)n);
	for (int k = 0; k < n; k++) {
		int i = (start + k) % n;
		if ((objects ? objs[i].live : snaps[i].live) == want_live)
			return i;
	}
	return -1;
}

static bool has_dependents(const char *snapname)
{
	for (int i = 0; i < NOBJ; i++)
		if (objs[i].live && strcmp(objs[i].origin, snapname) == 0)
			return true;
	return false;
}

/* A write: random bytes, a repeated byte, or zeros (which make holes). */
static void do_write(cow_txn *t, struct obj *o)
{
	static uint8_t buf[VMAX];
	if (!o->m.size)
		return;
	uint64_t off = rnd(o->m.size), max = o->m.size - off;
	uint64_t cap = rnd(4) ? 16 * 4096 : 100 * 4096; /* COW_MIN evaluates twice */
	uint64_t len = 1 + rnd(COW_MIN(max, cap));
	if (rnd(3) == 0) { /* block aligned, the common case of a disk */
		off &= ~4095ull;
		len = COW_MIN((len + 4095) & ~4095ull, o->m.size - off);
	}
	uint64_t kind = rnd(8);
	for (uint64_t i = 0; i < len; i++)
		buf[i] = kind == 0 ? 0 : kind == 1 ? 0x5a : (uint8_t)check_rand(&rng);
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, o->name, &v));
	if (cow_vol_size(v) != o->m.size)
		check__fail(__FILE__, __LINE__, "%s: size %llu, model %llu", o->name,
			    (unsigned long long)cow_vol_size(v), (unsigned long long)o->m.size);
	if (cow_vol_pwrite(v, buf, len, off))
		check__fail(__FILE__, __LINE__, "pwrite %llu+%llu size %llu",
			    (unsigned long long)off, (unsigned long long)len,
			    (unsigned long long)o->m.size);
	memcpy(o->m.d + off, buf, len);
}

static void one_step(cow_txn *t)
{
	uint64_t r = rnd(100);
	int o, sn;
	cow_vol *v;
	if (r < 45 && (o = pick(true, true)) >= 0) {
		int n = 1 + (int)rnd(6);
		for (int j = 0; j < n; j++)
			do_write(t, &objs[o]);
	} else if (r < 53 && (o = pick(true, true)) >= 0 && objs[o].m.size) { /* punch */
		struct img *m = &objs[o].m;
		uint64_t off = rnd(m->size), len = 1 + rnd(COW_MIN(m->size - off, 80 * 4096));
		CHECK_OK(cow_vol_open(t, objs[o].name, &v));
		CHECK_OK(cow_vol_punch(v, off, len));
		memset(m->d + off, 0, len);
	} else if (r < 57 && (o = pick(true, true)) >= 0) { /* resize */
		struct img *m = &objs[o].m;
		uint64_t size = rnd(VMAX + 1);
		CHECK_OK(cow_vol_open(t, objs[o].name, &v));
		CHECK_OK(cow_vol_resize(v, size));
		if (size > m->size)
			memset(m->d + m->size, 0, size - m->size);
		m->size = size;
	} else if (r < 62 && (o = pick(false, true)) >= 0) { /* create */
		snprintf(objs[o].name, sizeof(objs[o].name), "v%d", o);
		uint64_t size = rnd(VMAX + 1);
		CHECK_OK(cow_vol_create(t, objs[o].name, size));
		objs[o].live = true;
		objs[o].origin[0] = 0;
		objs[o].m.size = size;
		memset(objs[o].m.d, 0, sizeof(objs[o].m.d));
	} else if (r < 74 && (o = pick(true, true)) >= 0 && (sn = pick(false, false)) >= 0) {
		struct snap *x = &snaps[sn];
		snprintf(x->name, sizeof(x->name), "%s@s%ld", objs[o].name, ++seq);
		CHECK_OK(cow_snapshot(t, x->name));
		x->live = true;
		x->owner = o;
		x->m = objs[o].m;
	} else if (r < 82 && (sn = pick(true, false)) >= 0 && (o = pick(false, true)) >= 0) {
		snprintf(objs[o].name, sizeof(objs[o].name), "v%d", o);
		CHECK_OK(cow_clone(t, snaps[sn].name, objs[o].name));
		objs[o].live = true;
		memcpy(objs[o].origin, snaps[sn].name, sizeof(objs[o].origin));
		objs[o].m = snaps[sn].m;
	} else if (r < 87 && (sn = pick(true, false)) >= 0) { /* rollback */
		CHECK_OK(cow_rollback(t, snaps[sn].name));
		objs[snaps[sn].owner].m = snaps[sn].m;
	} else if (r < 95 && (sn = pick(true, false)) >= 0) { /* destroy a snapshot */
		if (has_dependents(snaps[sn].name)) {
			CHECK_RC(cow_destroy(t, snaps[sn].name, 0), COW_EBUSY);
		} else {
			CHECK_OK(cow_destroy(t, snaps[sn].name, 0));
			snaps[sn].live = false;
		}
	} else if ((o = pick(true, true)) >= 0) { /* destroy a volume and its snapshots */
		for (int i = 0; i < NSNAP; i++)
			if (snaps[i].live && snaps[i].owner == o && has_dependents(snaps[i].name)) {
				CHECK_RC(cow_destroy(t, objs[o].name, COW_DESTROY_RECURSIVE),
					 COW_EBUSY);
				return;
			}
		CHECK_OK(cow_destroy(t, objs[o].name, COW_DESTROY_RECURSIVE));
		objs[o].live = false;
		for (int i = 0; i < NSNAP; i++)
			if (snaps[i].live && snaps[i].owner == o)
				snaps[i].live = false;
	}
}

int main(int argc, char **argv)
{
	long steps = argc > 1 ? atol(argv[1]) : 2000;
	rng = check_seed();
	CHECK_OK(
		cow_store_open(check_path("mvol.cow"), &(cow_store_options){COW_STORE_CREATE}, &s));
	long commits = 0, aborts = 0, trims = 0, compacts = 0;
	for (long step = 0; step < steps;) {
		memcpy(saved_objs, objs, sizeof(objs));
		memcpy(saved_snaps, snaps, sizeof(snaps));
		long saved_seq = seq;
		cow_txn *t;
		CHECK_OK(cow_txn_begin(s, 0, &t));
		int n = 1 + (int)rnd(5);
		for (int j = 0; j < n; j++, step++)
			one_step(t);
		if (rnd(6) == 0) {
			cow_txn_abort(t);
			memcpy(objs, saved_objs, sizeof(objs));
			memcpy(snaps, saved_snaps, sizeof(snaps));
			seq = saved_seq;
			aborts++;
		} else {
			CHECK_OK(cow_txn_commit(t));
			commits++;
		}
		if (rnd(25) == 0) {
			CHECK_OK(cow_store_trim(s, NULL));
			trims++;
		}
		if (rnd(40) == 0) {
			cow_compact_stats cs;
			CHECK_OK(cow_store_compact(s, (1 + rnd(64)) * 4096, &cs, NULL, NULL));
			compacts++;
			compare_all();
		}
		if (commits % 8 == 0)
			compare_all();
	}
	compare_all();
	printf("%ld steps: %ld commits, %ld aborts, %ld trims, %ld compactions\n", steps, commits,
	       aborts, trims, compacts);
	cow_store_close(s);
	return 0;
}
