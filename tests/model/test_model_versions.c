/*
 * Model test of versions: random writes to maps interleaved with snapshots,
 * clones, rollbacks, destroys, promotes and renames, and trims and compactions between
 * transactions, all against an in-memory reference. After every few transactions every live object
 * and every snapshot is compared with the reference, and the checker recounts every block's parents
 * against the stored reference counts (no leak, nothing freed twice, nothing shared without being
 * counted).
 *
 *   model_versions [STEPS]   (COW_SEED=n replays a run)
 */
#include <stdlib.h>

#include "check.h"
#include "store/store.h"

#define NKEYS 800
#define NOBJ 6
#define NSNAP 24

struct val {
	uint32_t len; /* UINT32_MAX: absent */
	uint32_t seed;
};

struct obj {
	bool live;
	char name[16];
	char origin[40]; /* "" or a snapshot name */
	struct val v[NKEYS];
};

struct snap {
	bool live;
	char name[40]; /* OWNER@sN */
	int owner;     /* object slot */
	long seq;      /* creation order */
	long label;    /* the N of its name OWNER@sN (a rename gives it a new one) */
	struct val v[NKEYS];
};

static struct obj objs[NOBJ];
static struct snap snaps[NSNAP];
static uint64_t rng;
static long seq;
static cow_store *s;

static size_t key_of(int i, char *k)
{
	return (size_t)snprintf(k, 16, "k%04d-%d", i, i % 7);
}

static size_t val_of(const struct val *v, char *out)
{
	uint64_t x = v->seed | 1;
	for (uint32_t j = 0; j < v->len; j++)
		out[j] = (char)('a' + check_rand(&x) % 26);
	return v->len;
}

static void compare(cow_txn *t, const char *name, const struct val *ref)
{
	cow_map *m;
	CHECK_OK(cow_map_open(t, name, &m));
	char k[16], v[2000];
	uint64_t n = 0;
	for (int i = 0; i < NKEYS; i++) {
		size_t kl = key_of(i, k);
		cow_buf b;
		int rc = cow_map_get(m, k, kl, &b);
		if (ref[i].len == UINT32_MAX) {
			if (rc != COW_ENOTFOUND)
				check__fail(__FILE__, __LINE__, "%s: key %d should be absent", name, i);
			continue;
		}
		n++;
		if (rc)
			check__fail(__FILE__, __LINE__, "%s: key %d: %s", name, i, cow_errname(rc));
		size_t vl = val_of(&ref[i], v);
		if (b.len != vl || memcmp(b.data, v, vl) != 0)
			check__fail(__FILE__, __LINE__, "%s: key %d has the wrong value", name, i);
	}
	CHECK_EQ(cow_map_count(m), n);
}

static void compare_all(void)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	for (int i = 0; i < NOBJ; i++)
		if (objs[i].live)
			compare(t, objs[i].name, objs[i].v);
	for (int i = 0; i < NSNAP; i++)
		if (snaps[i].live)
			compare(t, snaps[i].name, snaps[i].v);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
}

static int pick(bool (*ok)(int), int n)
{
	int start = (int)(check_rand(&rng) % (uint64_t)n);
	for (int k = 0; k < n; k++)
		if (ok((start + k) % n))
			return (start + k) % n;
	return -1;
}
static bool obj_live(int i)
{
	return objs[i].live;
}
static bool obj_free(int i)
{
	return !objs[i].live;
}
static bool snap_live(int i)
{
	return snaps[i].live;
}
static bool snap_free(int i)
{
	return !snaps[i].live;
}

static bool has_dependents(const char *snapname)
{
	for (int i = 0; i < NOBJ; i++)
		if (objs[i].live && strcmp(objs[i].origin, snapname) == 0)
			return true;
	return false;
}

static void one_step(cow_txn *t)
{
	uint64_t r = check_rand(&rng) % 100;
	int o, sn;
	if (r < 50 && (o = pick(obj_live, NOBJ)) >= 0) { /* writes */
		cow_map *m;
		CHECK_OK(cow_map_open(t, objs[o].name, &m));
		int n = 1 + (int)(check_rand(&rng) % 40);
		for (int j = 0; j < n; j++) {
			int i = (int)(check_rand(&rng) % NKEYS);
			char k[16], v[2000];
			size_t kl = key_of(i, k);
			if (check_rand(&rng) % 4 == 0) {
				int rc = cow_map_del(m, k, kl);
				CHECK_RC(rc, objs[o].v[i].len == UINT32_MAX ? COW_ENOTFOUND : 0);
				objs[o].v[i].len = UINT32_MAX;
			} else {
				struct val nv = {(uint32_t)(check_rand(&rng) % (j % 9 ? 60 : 1800)),
						 (uint32_t)check_rand(&rng)};
				size_t vl = val_of(&nv, v);
				CHECK_OK(cow_map_put(m, k, kl, v, vl));
				objs[o].v[i] = nv;
			}
		}
	} else if (r < 58 && (o = pick(obj_free, NOBJ)) >= 0) { /* create */
		snprintf(objs[o].name, sizeof(objs[o].name), "o%d", o);
		CHECK_OK(cow_map_create(t, objs[o].name));
		objs[o].live = true;
		objs[o].origin[0] = 0;
		for (int i = 0; i < NKEYS; i++)
			objs[o].v[i].len = UINT32_MAX;
	} else if (r < 70 && (o = pick(obj_live, NOBJ)) >= 0 && (sn = pick(snap_free, NSNAP)) >= 0) {
		struct snap *x = &snaps[sn];
		snprintf(x->name, sizeof(x->name), "%s@s%ld", objs[o].name, ++seq);
		CHECK_OK(cow_snapshot(t, x->name));
		x->live = true;
		x->owner = o;
		x->seq = x->label = seq;
		memcpy(x->v, objs[o].v, sizeof(x->v));
	} else if (r < 78 && (sn = pick(snap_live, NSNAP)) >= 0 && (o = pick(obj_free, NOBJ)) >= 0) {
		snprintf(objs[o].name, sizeof(objs[o].name), "o%d", o);
		CHECK_OK(cow_clone(t, snaps[sn].name, objs[o].name));
		objs[o].live = true;
		memcpy(objs[o].origin, snaps[sn].name, sizeof(objs[o].origin));
		memcpy(objs[o].v, snaps[sn].v, sizeof(objs[o].v));
	} else if (r < 84 && (sn = pick(snap_live, NSNAP)) >= 0) { /* rollback */
		o = snaps[sn].owner;
		CHECK_OK(cow_rollback(t, snaps[sn].name));
		memcpy(objs[o].v, snaps[sn].v, sizeof(objs[o].v));
	} else if (r < 91 && (sn = pick(snap_live, NSNAP)) >= 0) { /* destroy a snapshot */
		if (has_dependents(snaps[sn].name)) {
			CHECK_RC(cow_destroy(t, snaps[sn].name, 0), COW_EBUSY);
		} else {
			CHECK_OK(cow_destroy(t, snaps[sn].name, 0));
			snaps[sn].live = false;
		}
	} else if (r < 95 && (o = pick(obj_live, NOBJ)) >= 0) { /* destroy an object */
		bool busy = false;
		for (int i = 0; i < NSNAP; i++)
			if (snaps[i].live && snaps[i].owner == o && has_dependents(snaps[i].name))
				busy = true;
		if (busy) {
			CHECK_RC(cow_destroy(t, objs[o].name, COW_DESTROY_RECURSIVE), COW_EBUSY);
			return;
		}
		CHECK_OK(cow_destroy(t, objs[o].name, COW_DESTROY_RECURSIVE));
		objs[o].live = false;
		for (int i = 0; i < NSNAP; i++)
			if (snaps[i].live && snaps[i].owner == o)
				snaps[i].live = false;
	} else if (r < 97 && (o = pick(obj_live, NOBJ)) >= 0) { /* rename an object */
		int to = pick(obj_free, NOBJ);
		if (to < 0)
			return;
		char newname[16];
		snprintf(newname, sizeof(newname), "o%d", to);
		CHECK_OK(cow_rename(t, objs[o].name, newname));
		objs[to] = objs[o];
		memcpy(objs[to].name, newname, sizeof(newname));
		objs[o].live = false;
		for (int i = 0; i < NSNAP; i++) {
			if (!snaps[i].live || snaps[i].owner != o)
				continue;
			char old[40];
			memcpy(old, snaps[i].name, sizeof(old));
			snprintf(snaps[i].name, sizeof(snaps[i].name), "%s@s%ld", newname,
				 snaps[i].label);
			snaps[i].owner = to;
			for (int j = 0; j < NOBJ; j++) /* clones keep their origin */
				if (objs[j].live && strcmp(objs[j].origin, old) == 0)
					memcpy(objs[j].origin, snaps[i].name,
					       sizeof(objs[j].origin));
		}
	} else if (r < 98 && (sn = pick(snap_live, NSNAP)) >= 0) { /* rename a snapshot */
		char old[40], nn[40];
		memcpy(old, snaps[sn].name, sizeof(old));
		long label = ++seq;
		snprintf(nn, sizeof(nn), "%s@s%ld", objs[snaps[sn].owner].name, label);
		CHECK_OK(cow_rename(t, old, strchr(nn, '@'))); /* the short form */
		memcpy(snaps[sn].name, nn, sizeof(nn));
		snaps[sn].label = label;
		for (int j = 0; j < NOBJ; j++)
			if (objs[j].live && strcmp(objs[j].origin, old) == 0)
				memcpy(objs[j].origin, nn, sizeof(objs[j].origin));
	} else if ((o = pick(obj_live, NOBJ)) >= 0 && objs[o].origin[0]) { /* promote */
		int os = -1;
		for (int i = 0; i < NSNAP; i++)
			if (snaps[i].live && strcmp(snaps[i].name, objs[o].origin) == 0)
				os = i;
		CHECK(os >= 0);
		int from = snaps[os].owner;
		CHECK_OK(cow_promote(t, objs[o].name));
		char oldorigin[40];
		memcpy(oldorigin, objs[from].origin, sizeof(oldorigin));
		for (int i = 0; i < NSNAP; i++) {
			if (!snaps[i].live || snaps[i].owner != from || snaps[i].seq > snaps[os].seq)
				continue;
			char old[40];
			memcpy(old, snaps[i].name, sizeof(old));
			snprintf(snaps[i].name, sizeof(snaps[i].name), "%s@s%ld", objs[o].name,
				 snaps[i].label);
			snaps[i].owner = o;
			for (int j = 0; j < NOBJ; j++)
				if (objs[j].live && strcmp(objs[j].origin, old) == 0)
					memcpy(objs[j].origin, snaps[i].name, sizeof(objs[j].origin));
		}
		memcpy(objs[o].origin, oldorigin, sizeof(objs[o].origin));
		memcpy(objs[from].origin, snaps[os].name, sizeof(objs[from].origin));
	}
}

int main(int argc, char **argv)
{
	long steps = argc > 1 ? atol(argv[1]) : 3000;
	rng = check_seed();
	CHECK_OK(cow_store_open(check_path("mv.cow"), &(cow_store_options){COW_STORE_CREATE}, &s));
	static struct obj saved_objs[NOBJ];
	static struct snap saved_snaps[NSNAP];
	long saved_seq = 0;
	long commits = 0, aborts = 0, trims = 0, compacts = 0;
	uint64_t moved = 0;
	for (long step = 0; step < steps;) {
		memcpy(saved_objs, objs, sizeof(objs));
		memcpy(saved_snaps, snaps, sizeof(snaps));
		saved_seq = seq;
		cow_txn *t;
		CHECK_OK(cow_txn_begin(s, 0, &t));
		int n = 1 + (int)(check_rand(&rng) % 6);
		for (int j = 0; j < n; j++, step++)
			one_step(t);
		if (check_rand(&rng) % 6 == 0) {
			cow_txn_abort(t);
			memcpy(objs, saved_objs, sizeof(objs));
			memcpy(snaps, saved_snaps, sizeof(snaps));
			seq = saved_seq;
			aborts++;
		} else {
			CHECK_OK(cow_txn_commit(t));
			commits++;
		}
		if (check_rand(&rng) % 25 == 0) { /* punch out free space between transactions */
			CHECK_OK(cow_store_trim(s, NULL));
			trims++;
		}
		if (check_rand(&rng) % 40 == 0) { /* move live blocks down, in small steps */
			uint64_t step_bytes = (1 + check_rand(&rng) % 64) * 4096;
			cow_compact_stats cs;
			CHECK_OK(cow_store_compact(s, step_bytes, &cs, NULL, NULL));
			compacts++;
			moved += cs.moved_bytes;
			compare_all();
		}
		if (commits % 10 == 0)
			compare_all();
	}
	compare_all();
	int nsnap = 0;
	for (int i = 0; i < NSNAP; i++)
		nsnap += snaps[i].live;
	printf("%ld steps: %ld commits, %ld aborts, %ld trims, %ld compactions (%llu KiB "
	       "moved); %d snapshots alive at the end\n",
	       steps, commits, aborts, trims, compacts, (unsigned long long)moved >> 10, nsnap);
	cow_store_close(s);
	return 0;
}
