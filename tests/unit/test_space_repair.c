/*
 * The space map is not a single point of failure (FORMAT.md section 6,
 * "Rebuild").
 *
 * A store with several maps, value extents and snapshots is built over
 * enough commits that its newest superblock reaches a space-map base with
 * bitmap and pending blocks and a log of several blocks. Then, for every
 * block of those chains, one bit of a copy of the store is flipped, and:
 *
 *   1. a read-only open works, every key of every map and snapshot reads
 *      back, and scrub reports the damage as "(space map)" at that block;
 *   2. a read-write open works (the writer rebuilds the map from the trees),
 *      fsck still reports the on-disk damage, a write transaction that
 *      rewrites, deletes and destroys commits, cow__store_check passes, fsck
 *      is then clean, and a reopen is clean with every key as written;
 *   3. (once per kind of block) a reader pinned at a generation older than
 *      the damaged one, while a second handle's first write transaction
 *      rebuilds and several commits free and reuse blocks, still reads every
 *      value it saw; after it ends its blocks are reused and the store still
 *      checks out;
 *   4. cow_store_repair on the damaged store commits a fresh space map:
 *      scrub is clean afterwards, without any other write.
 *
 *   unit_space_repair            (COW_SEED=n replays the bits chosen)
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "block/block.h"
#include "check.h"
#include "store/store.h"

#define NMAPS 4
#define NKEYS 160
#define NSNAP 3
#define NOBJ  (NMAPS + NSNAP)

/* The content of every object: the version of each key's value, -1 absent. */
struct model {
	int ver[NOBJ][NKEYS];
	char name[NOBJ][32];
	bool live[NOBJ];
};

static uint64_t seed;
static uint8_t vbuf[20000];

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	return x | 1;
}

static size_t key_make(int j, char *out)
{
	return (size_t)snprintf(out, 32, "key-%04d", j);
}

static size_t val_make(int map, int j, int ver, uint8_t *out)
{
	uint64_t s = mix(seed ^ (uint64_t)map << 48 ^ (uint64_t)j << 20 ^ (uint64_t)ver);
	size_t len = j % 40 == 3 ? 4100 + (size_t)(s % 9000) : 1 + (size_t)(s % 200);
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(check_rand(&s) >> 56);
	return len;
}

/* Round @r of updates: one map gets puts and deletes; some rounds snapshot it. */
static void update(cow_txn *t, struct model *md, int r)
{
	int i = r % NMAPS;
	cow_map *m;
	CHECK_OK(cow_map_open(t, md->name[i], &m));
	for (int j = 0; j < NKEYS; j++) {
		char key[32];
		size_t klen = key_make(j, key);
		if ((j + r) % 5 == 0) {
			size_t vlen = val_make(i, j, r, vbuf);
			CHECK_OK(cow_map_put(m, key, klen, vbuf, vlen));
			md->ver[i][j] = r;
		} else if ((j + r) % 23 == 0 && md->ver[i][j] >= 0) {
			CHECK_OK(cow_map_del(m, key, klen));
			md->ver[i][j] = -1;
		}
	}
}

static void snapshot(cow_txn *t, struct model *md, int map, int k, int r)
{
	int o = NMAPS + k;
	snprintf(md->name[o], sizeof(md->name[o]), "map%d@r%d", map, r);
	CHECK_OK(cow_snapshot(t, md->name[o]));
	memcpy(md->ver[o], md->ver[map], sizeof(md->ver[o]));
	md->live[o] = true;
}

static void build(const char *path, struct model *md)
{
	memset(md, 0, sizeof(*md));
	for (int o = 0; o < NOBJ; o++)
		for (int j = 0; j < NKEYS; j++)
			md->ver[o][j] = -1;
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_CREATE}, &s));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	for (int i = 0; i < NMAPS; i++) {
		snprintf(md->name[i], sizeof(md->name[i]), "map%d", i);
		md->live[i] = true;
		CHECK_OK(cow_map_create(t, md->name[i]));
	}
	CHECK_OK(cow_txn_commit(t));
	/* Enough commits for a second base (with pending blocks) and a long log. */
	for (int r = 0; r < 160; r++) {
		CHECK_OK(cow_txn_begin(s, 0, &t));
		update(t, md, r);
		if (r == 9 || r == 22 || r == 41)
			snapshot(t, md, r % NMAPS, r == 9 ? 0 : r == 22 ? 1 : 2, r);
		CHECK_OK(cow_txn_commit(t));
	}
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
}

/* Every key of every live object reads back as the model says, in @t. */
static void verify_txn(cow_txn *t, const struct model *md)
{
	for (int o = 0; o < NOBJ; o++) {
		if (!md->live[o])
			continue;
		int map = o < NMAPS ? o : md->name[o][3] - '0';
		cow_map *m;
		CHECK_OK(cow_map_open(t, md->name[o], &m));
		uint64_t n = 0;
		for (int j = 0; j < NKEYS; j++) {
			char key[32];
			size_t klen = key_make(j, key);
			cow_buf v;
			int rc = cow_map_get(m, key, klen, &v);
			if (md->ver[o][j] < 0) {
				CHECK_RC(rc, COW_ENOTFOUND);
				continue;
			}
			CHECK_OK(rc);
			size_t vlen = val_make(map, j, md->ver[o][j], vbuf);
			CHECK_EQ(v.len, vlen);
			CHECK_MEMEQ(v.data, vbuf, vlen);
			n++;
		}
		CHECK_EQ(cow_map_count(m), n);
	}
}

static void verify(cow_store *s, const struct model *md)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	verify_txn(t, md);
	CHECK_OK(cow_txn_commit(t));
}

/* ---- the damaged copies ---- */

struct chainblk {
	uint64_t addr;
	int kind;
};

static uint8_t *pristine;
static size_t file_size;

static uint8_t *read_whole(const char *path, size_t *size)
{
	int fd = open(path, O_RDONLY);
	CHECK_GE(fd, 0);
	struct stat st;
	CHECK_EQ(fstat(fd, &st), 0);
	*size = (size_t)st.st_size;
	uint8_t *buf = malloc(*size);
	CHECK(buf != NULL);
	CHECK_EQ(pread(fd, buf, *size, 0), (long long)*size);
	close(fd);
	return buf;
}

static void load_file(const char *path)
{
	pristine = read_whole(path, &file_size);
}

/* The chain blocks of the newest slot of store image @img: base (bitmap, pending), then log. */
static size_t chain_blocks(const uint8_t *img, size_t size, struct chainblk *out, size_t max)
{
	const uint8_t *sb = img;
	if (cow__le64(img + COW_BLOCK_SIZE + 16) > cow__le64(img + 16))
		sb = img + COW_BLOCK_SIZE;
	size_t n = 0;
	for (int chain = 0; chain < 2; chain++) {
		uint64_t a = cow__le64(sb + 64 + 24 * chain);
		while (a) {
			CHECK_LT(n, max);
			CHECK_LT(a * COW_BLOCK_SIZE, size);
			const uint8_t *b = img + a * COW_BLOCK_SIZE;
			CHECK_EQ(cow__le32(b), COW_SPACE_MAGIC);
			out[n++] = (struct chainblk){a, b[4]};
			a = cow__le64(b + 24);
		}
	}
	return n;
}

/* Flip one bit of the first block of @kind in the newest chains of the store at @path. */
static uint64_t damage_live(const char *path, int kind, uint64_t *rng)
{
	int fd = open(path, O_RDWR);
	CHECK_GE(fd, 0);
	struct stat st;
	CHECK_EQ(fstat(fd, &st), 0);
	uint8_t *img = malloc((size_t)st.st_size);
	CHECK(img != NULL);
	CHECK_EQ(pread(fd, img, (size_t)st.st_size, 0), (long long)st.st_size);
	struct chainblk blks[256];
	size_t n = chain_blocks(img, (size_t)st.st_size, blks, 256);
	uint64_t blk = 0;
	for (size_t i = 0; i < n && !blk; i++)
		if (blks[i].kind == kind)
			blk = blks[i].addr;
	CHECK_NE(blk, 0);
	size_t bit = check_rand(rng) % (COW_BLOCK_SIZE * 8);
	uint8_t c = img[blk * COW_BLOCK_SIZE + bit / 8] ^ (uint8_t)(1u << (bit % 8));
	CHECK_EQ(pwrite(fd, &c, 1, (off_t)(blk * COW_BLOCK_SIZE + bit / 8)), 1);
	CHECK_EQ(close(fd), 0);
	free(img);
	return blk;
}

static void write_damaged(const char *path, uint64_t blk, uint64_t *rng, size_t *bit)
{
	*bit = check_rand(rng) % (COW_BLOCK_SIZE * 8);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK_GE(fd, 0);
	CHECK_EQ(write(fd, pristine, file_size), (long long)file_size);
	uint8_t c = pristine[blk * COW_BLOCK_SIZE + *bit / 8] ^ (uint8_t)(1u << (*bit % 8));
	CHECK_EQ(pwrite(fd, &c, 1, (off_t)(blk * COW_BLOCK_SIZE + *bit / 8)), 1);
	CHECK_EQ(close(fd), 0);
	char lock[4200];
	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(lock);
}

struct problems {
	int n, space;
	uint64_t block;
};

static int collect(void *ctx, const cow_fsck_problem *p)
{
	struct problems *pr = ctx;
	pr->n++;
	if (strcmp(p->object, "(space map)") == 0) {
		pr->space++;
		pr->block = p->block;
	}
	return 0;
}

static int fsck(cow_store *s, unsigned flags, struct problems *pr)
{
	memset(pr, 0, sizeof(*pr));
	cow_fsck_report r;
	int rc = cow_store_fsck(s, flags, collect, pr, &r, NULL, NULL);
	CHECK_EQ(r.problems, (uint64_t)pr->n);
	return rc;
}

/* The damage is reported, once, at @blk. */
static void expect_damage(cow_store *s, unsigned flags, uint64_t blk)
{
	struct problems pr;
	CHECK_RC(fsck(s, flags, &pr), COW_ECORRUPT);
	CHECK_EQ(pr.n, 1);
	CHECK_EQ(pr.space, 1);
	CHECK_EQ(pr.block, blk);
}

static void expect_clean(cow_store *s, unsigned flags)
{
	struct problems pr;
	CHECK_OK(fsck(s, flags, &pr));
	CHECK_EQ(pr.n, 0);
}

/* 1: read-only. */
static void rdonly(const char *path, const struct model *md, uint64_t blk)
{
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_RDONLY}, &s));
	verify(s, md);
	expect_damage(s, COW_FSCK_SCRUB, blk);
	cow_store_close(s);
}

/* A round of writes that frees a lot: updates, a destroyed snapshot, a dropped map. */
static void churn(cow_store *s, struct model *md, int r)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	update(t, md, r);
	update(t, md, r + 1);
	for (int o = NMAPS; o < NOBJ; o++)
		if (md->live[o] && r % NOBJ == o) {
			CHECK_OK(cow_destroy(t, md->name[o], 0));
			md->live[o] = false;
		}
	CHECK_OK(cow_txn_commit(t));
}

/* 2: read-write, one handle. */
static void rdwr(const char *path, struct model md, uint64_t blk)
{
	cow_store *s;
	CHECK_OK(cow_store_open(path, NULL, &s));
	verify(s, &md);
	expect_damage(s, COW_FSCK_SCRUB, blk); /* the writer's rebuild is not on disk yet */
	expect_damage(s, 0, blk);
	churn(s, &md, 100);
	CHECK_OK(cow__store_check(s));
	expect_clean(s, 0);
	verify(s, &md);
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, NULL, &s));
	verify(s, &md);
	CHECK_OK(cow__store_check(s));
	expect_clean(s, 0);
	churn(s, &md, 200);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
}

/*
 * 3: a reader pinned at an older generation than the one rebuilt from. A
 * first writer frees blocks the reader sees (they are pending on disk, held
 * for it); then the newest chains are damaged, and a second writer rebuilds:
 * it cannot know the reader's roots, so nothing it does may reuse them.
 */
static void pinned(const char *path, struct model md, int kind, uint64_t *rng)
{
	struct model old = md;
	cow_store *r, *w;
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_RDONLY}, &r));
	cow_txn *rt;
	CHECK_OK(cow_txn_begin(r, COW_TXN_RDONLY, &rt));
	verify_txn(rt, &old);
	CHECK_OK(cow_store_open(path, NULL, &w));
	for (int k = 0; k < 4; k++)
		churn(w, &md, 300 + 2 * k);
	CHECK_OK(cow__store_check(w));
	cow_store_close(w);
	uint64_t blk = damage_live(path, kind, rng);
	CHECK_OK(cow_store_open(path, NULL, &w)); /* not alone: loads at its first write */
	expect_damage(w, COW_FSCK_SCRUB, blk);
	for (int k = 0; k < 12; k++)
		churn(w, &md, 320 + 2 * k);
	CHECK_OK(cow__store_check(w));
	verify_txn(rt, &old); /* nothing it sees was reused */
	CHECK_OK(cow_txn_commit(rt));
	for (int k = 0; k < 6; k++)
		churn(w, &md, 400 + 2 * k); /* now its blocks may be reused */
	CHECK_OK(cow__store_check(w));
	verify(w, &md);
	expect_clean(w, 0);
	cow_store_close(r);
	cow_store_close(w);
	CHECK_OK(cow_store_open(path, NULL, &w));
	verify(w, &md);
	CHECK_OK(cow__store_check(w));
	cow_store_close(w);
}

/* 4: cow_store_repair alone makes the store clean. */
static void repair(const char *path, const struct model *md, uint64_t blk)
{
	cow_store *s;
	CHECK_OK(cow_store_open(path, NULL, &s));
	expect_damage(s, 0, blk);
	CHECK_OK(cow_store_repair(s));
	expect_clean(s, COW_FSCK_SCRUB);
	expect_clean(s, 0);
	CHECK_OK(cow__store_check(s));
	verify(s, md);
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_RDONLY}, &s));
	verify(s, md);
	expect_clean(s, COW_FSCK_SCRUB);
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_RDONLY}, &s));
	CHECK_RC(cow_store_repair(s), COW_EREADONLY);
	cow_store_close(s);
}

/*
 * The superblock's tail of space records is covered by the superblock's
 * checksum; a record that checks out but makes no sense (written so by a
 * bug) makes the map unloadable like a damaged block: the writer rebuilds
 * it from the trees, nothing is lost.
 */
static void tail_damage(const char *path, struct model md)
{
	/*
	 * The pristine store's last commit may have flushed its tail into a log
	 * block (which seed makes it so is chance): then small commits on a
	 * copy give a tail to damage. An empty tail takes at least one record.
	 */
	size_t size = file_size;
	uint8_t *base = malloc(size);
	CHECK(base != NULL);
	memcpy(base, pristine, size);
	uint8_t *sb;
	uint32_t count;
	for (int round = 0;; round++) {
		sb = cow__le64(base + COW_BLOCK_SIZE + 16) > cow__le64(base + 16)
			     ? base + COW_BLOCK_SIZE
			     : base;
		count = cow__le32(sb + 184);
		if (count > 0 || round == 4)
			break;
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK_GE(fd, 0);
		CHECK_EQ(write(fd, base, size), (long long)size);
		CHECK_EQ(close(fd), 0);
		cow_store *s;
		CHECK_OK(cow_store_open(path, NULL, &s));
		cow_txn *t;
		CHECK_OK(cow_txn_begin(s, 0, &t));
		update(t, &md, 450 + round);
		CHECK_OK(cow_txn_commit(t));
		cow_store_close(s);
		free(base);
		base = read_whole(path, &size);
	}
	printf("superblock tail: %u records\n", count);
	CHECK_GT(count, 0);
	cow__put64(sb + COW_SB_TAIL_OFF + 16, UINT64_C(1) << 50); /* record 0's start */
	cow__put64(sb + 4088, cow__csum(sb, 4088));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK_GE(fd, 0);
	CHECK_EQ(write(fd, base, size), (long long)size);
	CHECK_EQ(close(fd), 0);
	free(base);
	cow_store *s;
	CHECK_OK(cow_store_open(path, NULL, &s));
	verify(s, &md);
	churn(s, &md, 400);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, NULL, &s));
	verify(s, &md);
	expect_clean(s, COW_FSCK_SCRUB);
	cow_store_close(s);
}

int main(void)
{
	setenv("COW_LOG", "off", 0); /* the damage and each rebuild are logged otherwise */
	seed = check_seed();
	uint64_t rng = seed | 1;
	const char *path = check_path("pristine.cow");
	struct model md;
	build(path, &md);
	load_file(path);
	struct chainblk blks[256];
	size_t n;
	int kinds[5];
	/*
	 * Where the commits' sizes (random) put a rebase near the end, the log
	 * is still short: commit on until it spans two blocks.
	 */
	for (int r = 160;; r++) {
		n = chain_blocks(pristine, file_size, blks, 256);
		memset(kinds, 0, sizeof(kinds));
		for (size_t i = 0; i < n; i++)
			kinds[blks[i].kind]++;
		if (kinds[COW_SPACE_LOG2] >= 2 || r == 400)
			break;
		cow_store *s;
		cow_txn *t;
		CHECK_OK(cow_store_open(path, NULL, &s));
		CHECK_OK(cow_txn_begin(s, 0, &t));
		update(t, &md, r);
		CHECK_OK(cow_txn_commit(t));
		cow_store_close(s);
		free(pristine);
		load_file(path);
	}
	printf("space chains: %d bitmap, %d pending, %d log blocks\n", kinds[COW_SPACE_BITMAP],
	       kinds[COW_SPACE_PENDING], kinds[COW_SPACE_LOG2]);
	CHECK_GE(kinds[COW_SPACE_BITMAP], 1);
	CHECK_GE(kinds[COW_SPACE_PENDING], 1);
	CHECK_GE(kinds[COW_SPACE_LOG2], 2);
	CHECK_EQ(kinds[COW_SPACE_LOG], 0); /* format 1's log blocks are only read */

	char copy[4096];
	snprintf(copy, sizeof(copy), "%s", check_path("damaged.cow"));
	for (size_t i = 0; i < n; i++) {
		size_t bit;
		printf("block %llu (kind %d)\n", (unsigned long long)blks[i].addr, blks[i].kind);
		fflush(stdout);
		write_damaged(copy, blks[i].addr, &rng, &bit);
		rdonly(copy, &md, blks[i].addr);
		rdwr(copy, md, blks[i].addr);
		write_damaged(copy, blks[i].addr, &rng, &bit);
		repair(copy, &md, blks[i].addr);
	}
	for (int kind = COW_SPACE_BITMAP; kind <= COW_SPACE_LOG2; kind++) {
		static const char *names[] = {"", "bitmap", "pending", "", "log"};
		if (kind == COW_SPACE_LOG)
			continue;
		printf("pinned reader, damaged %s block\n", names[kind]);
		fflush(stdout);
		memcpy(copy + strlen(copy) - 4, ".pin", 4); /* "damaged.pin": a pristine copy */
		int fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK_GE(fd, 0);
		CHECK_EQ(write(fd, pristine, file_size), (long long)file_size);
		CHECK_EQ(close(fd), 0);
		pinned(copy, md, kind, &rng);
		memcpy(copy + strlen(copy) - 4, ".cow", 4);
	}
	tail_damage(copy, md);
	printf("%zu space-map blocks damaged, one at a time (seed %llu)\n", n,
	       (unsigned long long)seed);
	free(pristine);
	return 0;
}
