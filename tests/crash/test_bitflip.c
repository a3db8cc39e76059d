/*
 * Bit-flip test: damage a closed store anywhere, then read all of it.
 *
 * A store with several maps (empty, small, one big with inline values and
 * multi-block extents) is built and closed. Its last commit changes nothing,
 * so both superblock slots describe the same trees. Every block of the file
 * is classified from the pristine store (white-box): superblock, catalog
 * node, space-map chain block, node or extent of map i, or free (unused,
 * pending, or past the end). Then, many times: copy the file, damage one or
 * two places in the copy (a single bit, a few bytes, or a whole block zeroed),
 * open it (read-write or read-only) and read every map by get, cursor both
 * ways and count. The rules:
 *
 *   - open fails only with COW_ECORRUPT or COW_EFORMAT, and only when both
 *     superblocks, or a superblock and a tree block the other slot's
 *     open-time walk checks were hit; never for a space-map block (readers
 *     do not need it, a writer rebuilds it from the trees);
 *   - every read returns the right data or COW_ECORRUPT: never a wrong value,
 *     a missing or extra key, or another error;
 *   - a map none of whose blocks (nor any catalog block) was hit reads back
 *     completely, without errors;
 *   - the checker (cow__store_check) reports 0 or COW_ECORRUPT, and 0 when
 *     no block a tree reaches was hit (a damaged space map is rebuilt).
 *
 *   crash_bitflip [DAMAGES]   (default 300; COW_SEED=n replays a run)
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "check.h"
#include "store/store.h"

#define NMAPS	6
#define BIG	5 /* index of the big map */
#define MAXKEYS 700

static const char *map_names[NMAPS] = {"empty", "one", "few", "names.with-dots", "twelve", "big"};
static const int map_keys[NMAPS] = {0, 1, 5, 8, 12, MAXKEYS};

enum { B_FREE = -1, B_SB = -2, B_CATALOG = -3, B_SPACE = -4 }; /* >= 0: map index */

static uint64_t seed;
static uint8_t *pristine;
static size_t file_size;
static int *owner; /* per block */
static uint64_t nblocks;

static size_t key_make(int j, char *out)
{
	return (size_t)snprintf(out, 32, "key-%05d", j);
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	return x | 1;
}

static size_t val_len(int map, int j)
{
	uint64_t h = mix(seed ^ (uint64_t)map << 40 ^ (uint64_t)j);
	if (map == BIG && j % 25 == 7)
		return 4000 + (size_t)(h % 16000); /* an extent of 1..5 blocks */
	if (map == BIG)
		return (size_t)(h % 300);
	return (size_t)(h % 64);
}

static void val_make(int map, int j, size_t len, uint8_t *out)
{
	uint64_t s = mix(seed * 31 + (uint64_t)map * 7919 + (uint64_t)j);
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(check_rand(&s) >> 56);
}

static uint8_t vbuf[20000];

static void build(const char *path)
{
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_CREATE}, &s));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	for (int i = 0; i < NMAPS; i++)
		CHECK_OK(cow_map_create(t, map_names[i]));
	CHECK_OK(cow_txn_commit(t));
	/* Several commits, so the big map's nodes have different births. */
	for (int round = 0; round < 4; round++) {
		CHECK_OK(cow_txn_begin(s, 0, &t));
		for (int i = 0; i < NMAPS; i++) {
			cow_map *m;
			CHECK_OK(cow_map_open(t, map_names[i], &m));
			for (int j = round; j < map_keys[i]; j += 4) {
				char key[32];
				size_t klen = key_make(j, key), vlen = val_len(i, j);
				val_make(i, j, vlen, vbuf);
				CHECK_OK(cow_map_put(m, key, klen, vbuf, vlen));
			}
		}
		CHECK_OK(cow_txn_commit(t));
	}
	/* An empty commit: both slots now hold the same trees. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
}

static void load_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL);
	struct stat st;
	CHECK_EQ(fstat(fileno(f), &st), 0);
	file_size = (size_t)st.st_size;
	CHECK_EQ(file_size % COW_BLOCK_SIZE, 0);
	pristine = malloc(file_size);
	CHECK(pristine != NULL);
	CHECK_EQ(fread(pristine, 1, file_size, f), file_size);
	fclose(f);
	nblocks = file_size / COW_BLOCK_SIZE;
}

static void own(uint64_t addr, uint64_t n, int who)
{
	for (uint64_t b = addr; b < addr + n; b++) {
		CHECK_LT(b, nblocks);
		CHECK_EQ(owner[b], B_FREE); /* nothing is reachable twice */
		owner[b] = who;
	}
}

static int who_now;
static int mark(void *ctx, uint64_t addr, uint64_t n, uint64_t birth)
{
	(void)ctx, (void)birth;
	own(addr, n, who_now);
	return 0;
}

/* Which block is what, from the pristine store. */
static void classify(const char *path)
{
	owner = malloc(nblocks * sizeof(*owner));
	CHECK(owner != NULL);
	for (uint64_t b = 0; b < nblocks; b++)
		owner[b] = B_FREE;
	owner[0] = owner[1] = B_SB;
	uint8_t *sb0 = pristine, *sb1 = pristine + COW_BLOCK_SIZE;
	CHECK_MEMEQ(sb0 + 40, sb1 + 40, COW_BPTR_SIZE); /* same catalog root */
	/* Space chains of both slots: base and log, linked by `next` (offset 24). */
	for (int i = 0; i < 2; i++) {
		for (int chain = 0; chain < 2; chain++) {
			uint64_t a = cow__le64(pristine + i * COW_BLOCK_SIZE + 64 + 24 * chain);
			for (int k = 0; a && k < 1000; k++) {
				CHECK_LT(a, nblocks);
				const uint8_t *blk = pristine + a * COW_BLOCK_SIZE;
				CHECK_MEMEQ(blk, "COWS", 4);
				owner[a] = B_SPACE; /* the slots share older chain blocks */
				a = cow__le64(blk + 24);
			}
		}
	}
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_RDONLY}, &s));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	struct cow__walk w = {.blk = mark};
	who_now = B_CATALOG;
	CHECK_OK(cow__btree_walk(&t->tx, &t->catalog, &w));
	for (int i = 0; i < NMAPS; i++) {
		cow_map *m;
		CHECK_OK(cow_map_open(t, map_names[i], &m));
		CHECK_EQ(cow_map_count(m), map_keys[i]);
		who_now = i;
		CHECK_OK(cow__btree_walk(&t->tx, &m->tree, &w));
	}
	CHECK_OK(cow_txn_commit(t));
	cow_store_close(s);
	int counts[NMAPS + 4] = {0};
	for (uint64_t b = 0; b < nblocks; b++)
		counts[owner[b] + 4]++;
	printf("store: %llu blocks: %d superblock, %d catalog, %d space, %d free; maps:",
	       (unsigned long long)nblocks, counts[B_SB + 4], counts[B_CATALOG + 4],
	       counts[B_SPACE + 4], counts[B_FREE + 4]);
	for (int i = 0; i < NMAPS; i++)
		printf(" %s %d", map_names[i], counts[i + 4]);
	printf("\n");
}

/* ---- one damaged copy ---- */

struct damage {
	bool hit[NMAPS]; /* a block of map i */
	bool catalog, space;
	int sb;		/* slots hit */
	bool tree;	/* anything a tree reaches */
	char what[256];
};

static const char *class_name(int o)
{
	switch (o) {
	case B_SB:
		return "superblock";
	case B_CATALOG:
		return "catalog";
	case B_SPACE:
		return "space map";
	case B_FREE:
		return "free";
	default:
		return map_names[o];
	}
}

static uint64_t pick_block(uint64_t *rng)
{
	/* Half the time a block of a random class, so small classes get hit too. */
	if (check_rand(rng) & 1)
		return check_rand(rng) % nblocks;
	int cls = (int)(check_rand(rng) % (NMAPS + 4)) - 4;
	uint64_t n = 0, b = 0;
	for (uint64_t i = 0; i < nblocks; i++)
		if (owner[i] == cls && check_rand(rng) % ++n == 0)
			b = i; /* reservoir sampling */
	return n ? b : check_rand(rng) % nblocks;
}

static void damage_one(uint8_t *img, uint64_t *rng, struct damage *d)
{
	uint64_t b = pick_block(rng);
	uint8_t *blk = img + b * COW_BLOCK_SIZE;
	size_t len = strlen(d->what);
	int kind = (int)(check_rand(rng) % 3);
	if (kind == 0) {
		size_t bit = check_rand(rng) % (COW_BLOCK_SIZE * 8);
		blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		snprintf(d->what + len, sizeof(d->what) - len, " bit %zu of block %llu", bit,
			 (unsigned long long)b);
	} else if (kind == 1) {
		size_t n = 1 + check_rand(rng) % 16;
		size_t off = check_rand(rng) % (COW_BLOCK_SIZE - n);
		for (size_t i = 0; i < n; i++)
			blk[off + i] = (uint8_t)check_rand(rng);
		snprintf(d->what + len, sizeof(d->what) - len, " %zu bytes at %zu of block %llu", n,
			 off, (unsigned long long)b);
	} else {
		memset(blk, 0, COW_BLOCK_SIZE);
		snprintf(d->what + len, sizeof(d->what) - len, " zeroed block %llu",
			 (unsigned long long)b);
	}
	int o = owner[b];
	if (o >= 0)
		d->hit[o] = true;
	d->catalog |= o == B_CATALOG;
	d->space |= o == B_SPACE;
	d->sb += o == B_SB;
	d->tree |= o >= 0 || o == B_CATALOG;
	len = strlen(d->what);
	snprintf(d->what + len, sizeof(d->what) - len, " (%s)", class_name(o));
}

static void write_copy(const char *path, const uint8_t *img)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK_GE(fd, 0);
	CHECK_EQ(write(fd, img, file_size), (long long)file_size);
	CHECK_EQ(close(fd), 0);
}

/* Rc of a read: 0 or ECORRUPT, and 0 when the map must be intact. */
#define READ_OK(expr, intact, d)                                                                   \
	do {                                                                                       \
		int r_ = (expr);                                                                   \
		if (r_ != 0 && (r_ != COW_ECORRUPT || (intact)))                                   \
			check__fail(__FILE__, __LINE__, "%s returned %s after%s", #expr,           \
				    cow_errname(r_), (d)->what);                                   \
	} while (0)

static void check_entry(int i, int j, const cow_buf *k, const cow_buf *v, const struct damage *d)
{
	char key[32];
	size_t klen = key_make(j, key), vlen = val_len(i, j);
	if (k && (k->len != klen || memcmp(k->data, key, klen) != 0))
		check__fail(__FILE__, __LINE__, "map %s: wrong key at %d after%s", map_names[i], j,
			    d->what);
	val_make(i, j, vlen, vbuf);
	if (v->len != vlen || memcmp(v->data, vbuf, vlen) != 0)
		check__fail(__FILE__, __LINE__, "map %s: wrong value of key %d after%s",
			    map_names[i], j, d->what);
}

/* Walk map @i with a cursor: exactly the expected entries in order, or ECORRUPT. */
static void scan(cow_map *m, int i, bool forward, bool intact, const struct damage *d)
{
	cow_cursor *c;
	CHECK_OK(cow_cursor_open(m, &c));
	int n = map_keys[i], seen = 0;
	int rc = forward ? cow_cursor_first(c) : cow_cursor_last(c);
	while (rc == 0) {
		CHECK_LT(seen, n);
		cow_buf k, v;
		rc = cow_cursor_get(c, &k, &v);
		if (rc)
			break;
		check_entry(i, forward ? seen : n - 1 - seen, &k, &v, d);
		seen++;
		rc = forward ? cow_cursor_next(c) : cow_cursor_prev(c);
	}
	if (rc == COW_ENOTFOUND && seen != n)
		check__fail(__FILE__, __LINE__,
			    "map %s: cursor ended after %d of %d entries after%s", map_names[i],
			    seen, n, d->what);
	if (rc != COW_ENOTFOUND)
		READ_OK(rc, intact, d);
	cow_cursor_close(c);
}

static int list_fn(void *ctx, const char *name, const char *type, uint64_t count)
{
	int *seen = ctx;
	for (int i = 0; i < NMAPS; i++) {
		if (strcmp(name, map_names[i]) == 0) {
			CHECK_STREQ(type, "map");
			CHECK_EQ(count, map_keys[i]);
			seen[i]++;
			return 0;
		}
	}
	check__fail(__FILE__, __LINE__, "cow_store_list: unknown object \"%s\"", name);
}

/*
 * Each map is read in a read transaction of its own, so a damaged map shows
 * up where it is (fuzz_open reads them all in one transaction).
 */
static void read_map(cow_store *s, int i, const struct damage *d)
{
	bool intact = !d->catalog && !d->hit[i];
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	cow_map *m;
	int rc = cow_map_open(t, map_names[i], &m);
	READ_OK(rc, intact, d);
	if (rc) {
		CHECK_OK(cow_txn_commit(t));
		return;
	}
	CHECK_EQ(cow_map_count(m), map_keys[i]);
	for (int j = 0; j < map_keys[i]; j++) {
		char key[32];
		size_t klen = key_make(j, key);
		cow_buf v;
		rc = cow_map_get(m, key, klen, &v);
		READ_OK(rc, intact, d);
		if (rc == 0)
			check_entry(i, j, NULL, &v, d);
	}
	cow_buf v;
	rc = cow_map_get(m, "key-99999", 9, &v);
	if (rc != COW_ENOTFOUND)
		READ_OK(rc == 0 ? COW_EINTERNAL : rc, intact, d);
	scan(m, i, true, intact, d);
	scan(m, i, false, intact, d);
	CHECK_OK(cow_txn_commit(t));
}

static void read_all(cow_store *s, const struct damage *d)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	int listed[NMAPS] = {0};
	READ_OK(cow_store_list(t, list_fn, listed), !d->catalog, d);
	for (int i = 0; i < NMAPS; i++)
		CHECK_LE(listed[i], 1);
	CHECK_OK(cow_txn_commit(t));
	for (int i = 0; i < NMAPS; i++)
		read_map(s, i, d);
}

static void one(const char *path, uint8_t *img, uint64_t *rng, long iter)
{
	memcpy(img, pristine, file_size);
	struct damage d = {0};
	snprintf(d.what, sizeof(d.what), " [damage %ld]", iter);
	int sites = check_rand(rng) % 4 == 0 ? 2 : 1;
	for (int k = 0; k < sites; k++)
		damage_one(img, rng, &d);
	write_copy(path, img);
	bool rdonly = check_rand(rng) & 1;
	cow_store *s;
	int rc = cow_store_open(path, &(cow_store_options){.flags = rdonly ? COW_STORE_RDONLY : 0},
				&s);
	/*
	 * With one slot hit, open falls back to the other, whose walk checks the
	 * blocks born in its generation: those may be hit too.
	 */
	bool may_fail = d.sb == 2 || (d.sb && d.tree);
	if (rc != 0 && (!may_fail || (rc != COW_ECORRUPT && rc != COW_EFORMAT)))
		check__fail(__FILE__, __LINE__, "cow_store_open(%s) returned %s after%s",
			    rdonly ? "RDONLY" : "rdwr", cow_errname(rc), d.what);
	if (rc)
		return;
	read_all(s, &d);
	if (!rdonly) {
		rc = cow__store_check(s);
		if (rc != 0 && (rc != COW_ECORRUPT || !d.tree))
			check__fail(__FILE__, __LINE__, "cow__store_check returned %s after%s",
				    cow_errname(rc), d.what);
	}
	cow_store_close(s);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 300;
	setenv("COW_LOG", "off", 0); /* every detected corruption is logged otherwise */
	seed = check_seed();
	const char *path = check_path("pristine.cow");
	build(path);
	load_file(path);
	classify(path);
	uint8_t *img = malloc(file_size);
	CHECK(img != NULL);
	uint64_t rng = seed | 1;
	const char *copy = check_path("damaged.cow");
	for (long i = 0; i < n; i++)
		one(copy, img, &rng, i);
	printf("%ld damaged copies checked (seed %llu)\n", n, (unsigned long long)seed);
	free(img);
	free(owner);
	free(pristine);
	return 0;
}
