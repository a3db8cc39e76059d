/*
 * Write the seed corpus of the open fuzz target: small real stores.
 *
 *   make_corpus OUTDIR
 *   make_corpus --crashers OUTDIR   (the fixed-*.cow inputs of the corpus: bugs found, fixed)
 *
 * Each seed is a data file made through the public API (the lock file is
 * not part of it), cut after the last block either superblock counts
 * (nblocks) so the files stay small. Store UUIDs are random, so the bytes
 * differ from run to run; the shapes do not. tests/fuzz/corpus/open/ was
 * made with this program, then grown with small inputs libFuzzer found.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "cow/store.h"

static char tmp[256], out_dir[4096];

static void die(const char *what, int rc)
{
	fprintf(stderr, "make_corpus: %s: %s\n", what, rc ? cow_strerror(rc) : strerror(errno));
	exit(1);
}

#define OK(expr)                                                                                   \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_)                                                                           \
			die(#expr, rc_);                                                           \
	} while (0)

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Copy the data file @src to OUTDIR/@name, cut after the blocks in use. */
static void save(const char *src, const char *name)
{
	FILE *f = fopen(src, "rb");
	if (!f)
		die(src, 0);
	uint8_t sb[2][4096];
	if (fread(sb, 1, sizeof(sb), f) != sizeof(sb))
		die("short store file", 0);
	uint64_t n = 2;
	for (int i = 0; i < 2; i++)
		if (memcmp(sb[i], "COWKITSB", 8) == 0 && le64(sb[i] + 32) > n)
			n = le64(sb[i] + 32);
	char dst[8192];
	snprintf(dst, sizeof(dst), "%s/%s", out_dir, name);
	FILE *o = fopen(dst, "wb");
	if (!o)
		die(dst, 0);
	fwrite(sb, 1, sizeof(sb), o);
	uint8_t b[4096];
	for (uint64_t i = 2; i < n && fread(b, 1, sizeof(b), f) == sizeof(b); i++)
		fwrite(b, 1, sizeof(b), o);
	if (fclose(o) != 0)
		die(dst, 0);
	fclose(f);
	printf("%s: %llu blocks\n", name, (unsigned long long)n);
}

static const char *store_path(const char *name)
{
	static char p[512];
	snprintf(p, sizeof(p), "%s/%s", tmp, name);
	return p;
}

static cow_store *create(const char *name, unsigned flags)
{
	cow_store *s;
	OK(cow_store_open(store_path(name),
			  &(cow_store_options){.flags = COW_STORE_CREATE | COW_STORE_EXCL | flags},
			  &s));
	return s;
}

static void put(cow_txn *t, const char *map, int i, size_t vlen)
{
	static uint8_t val[70000];
	char key[32];
	int klen = snprintf(key, sizeof(key), "key-%05d", i);
	for (size_t j = 0; j < vlen; j++)
		val[j] = (uint8_t)(i * 31 + j * 7);
	cow_map *m;
	OK(cow_map_open(t, map, &m));
	OK(cow_map_put(m, key, (size_t)klen, val, vlen));
}

static void del(cow_txn *t, const char *map, int i)
{
	char key[32];
	int klen = snprintf(key, sizeof(key), "key-%05d", i);
	cow_map *m;
	OK(cow_map_open(t, map, &m));
	OK(cow_map_del(m, key, (size_t)klen));
}

static void fresh(void)
{
	cow_store_close(create("fresh", 0));
	save(store_path("fresh"), "fresh.cow");
}

/* Three maps: a few inline values, and one with enough keys for a branch level. */
static void maps(void)
{
	cow_store *s = create("maps", 0);
	cow_txn *t;
	OK(cow_txn_begin(s, 0, &t));
	OK(cow_map_create(t, "alpha"));
	OK(cow_map_create(t, "beta"));
	OK(cow_map_create(t, "gamma"));
	for (int i = 0; i < 5; i++)
		put(t, "alpha", i, 10);
	put(t, "beta", 0, 0);
	for (int i = 0; i < 160; i++)
		put(t, "gamma", i, 60);
	OK(cow_txn_commit(t));
	cow_store_close(s);
	save(store_path("maps"), "maps.cow");
}

/* One value stored as an extent (several blocks) beside inline ones. */
static void large(void)
{
	cow_store *s = create("large", 0);
	cow_txn *t;
	OK(cow_txn_begin(s, 0, &t));
	OK(cow_map_create(t, "big"));
	put(t, "big", 1, 9000);
	put(t, "big", 2, 1200);
	put(t, "big", 3, 5);
	OK(cow_txn_commit(t));
	cow_store_close(s);
	save(store_path("large"), "large.cow");
}

/* Many small commits with deletes and a dropped map: pending extents, log records. */
static void build_deletes(const char *name)
{
	cow_store *s = create(name, 0);
	cow_txn *t;
	OK(cow_txn_begin(s, 0, &t));
	OK(cow_map_create(t, "m"));
	OK(cow_map_create(t, "gone"));
	for (int i = 0; i < 120; i++)
		put(t, "m", i, 40);
	put(t, "gone", 1, 3000);
	OK(cow_txn_commit(t));
	for (int round = 0; round < 20; round++) {
		OK(cow_txn_begin(s, 0, &t));
		for (int i = round; i < 120; i += 20)
			del(t, "m", i);
		put(t, "m", 1000 + round, 20);
		OK(cow_txn_commit(t));
	}
	OK(cow_txn_begin(s, 0, &t));
	OK(cow_map_drop(t, "gone"));
	OK(cow_txn_commit(t));
	cow_store_close(s);
}

static void deletes(void)
{
	build_deletes("deletes");
	save(store_path("deletes"), "deletes.cow");
}

/*
 * Versions: snapshots and a clone share nodes (the refs tree holds their
 * counts), a clone's record carries its origin, and a volume's blocks are
 * extents, some shared with its snapshot.
 */
static void versions(void)
{
	cow_store *s = create("versions", 0);
	cow_txn *t;
	OK(cow_txn_begin(s, 0, &t));
	OK(cow_map_create(t, "alpha"));
	for (int i = 0; i < 160; i++)
		put(t, "alpha", i, 50);
	OK(cow_vol_create(t, "disk", 16 * 4096 + 100));
	cow_vol *v;
	OK(cow_vol_open(t, "disk", &v));
	static uint8_t blk[4096];
	for (int b = 0; b < 16; b += 3) {
		memset(blk, 'a' + b, sizeof(blk));
		OK(cow_vol_pwrite(v, blk, sizeof(blk), (uint64_t)b * 4096));
	}
	OK(cow_snapshot(t, "@s1"));
	OK(cow_txn_commit(t));
	OK(cow_txn_begin(s, 0, &t));
	put(t, "alpha", 3, 20);
	del(t, "alpha", 150);
	OK(cow_vol_open(t, "disk", &v));
	OK(cow_vol_pwrite(v, "changed", 7, 4096 * 3 + 10));
	OK(cow_clone(t, "alpha@s1", "beta"));
	put(t, "beta", 500, 10);
	OK(cow_txn_commit(t));
	cow_store_close(s);
	save(store_path("versions"), "versions.cow");
}

/* Commits that were never flushed: the superblock's synced lags its gen. */
static void nosync(void)
{
	cow_store *s = create("nosync", COW_STORE_NOSYNC);
	for (int round = 0; round < 3; round++) {
		cow_txn *t;
		OK(cow_txn_begin(s, 0, &t));
		if (round == 0)
			OK(cow_map_create(t, "n"));
		for (int i = 0; i < 10; i++)
			put(t, "n", round * 10 + i, 30 + (size_t)round * 500);
		OK(cow_txn_commit(t));
	}
	save(store_path("nosync"), "nosync.cow"); /* before close, which would flush */
	cow_store_close(s);
}

/* ---- crashers: inputs that broke the store once (docs/fuzz.md, "Fixed findings") ---- */

static void put16(uint8_t *p, uint64_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static void put_bptr(uint8_t *p, const uint8_t *img, uint64_t addr, uint64_t birth)
{
	put64(p, addr);
	put64(p + 8, birth);
	put64(p + 16, XXH3_64bits(img + addr * 4096, 4096));
}

/* Node header (FORMAT.md section 4); cells are laid out by the caller. */
static void node_hdr(uint8_t *n, int kind, int level, unsigned cnt, uint64_t addr, unsigned top,
		     unsigned used)
{
	memcpy(n, "COWN", 4);
	n[4] = (uint8_t)kind;
	n[5] = (uint8_t)level;
	put16(n + 6, cnt);
	put64(n + 8, addr);
	put64(n + 16, 1);
	put16(n + 24, top);
	put16(n + 26, used);
}

/*
 * hang-dag.cow: a map whose tree is a DAG with valid checksums: each of six
 * branch levels holds 120 pointers to the same child. The tree is 8 blocks,
 * but a walk that does not notice shared children visits 120^6 nodes; the
 * open-time verification walk does exactly that.
 */
static void crasher_dag(void)
{
	enum { LEVELS = 6, FAN = 120, NB = 4 + LEVELS };
	static uint8_t img[NB * 4096];
	memset(img, 0, sizeof(img));
	/* The leaf: one key "a", inline value "v". */
	uint64_t leaf = NB - 1;
	uint8_t *n = img + leaf * 4096;
	unsigned top = 4096 - 10;
	node_hdr(n, 1, 0, 1, leaf, top, 10);
	put16(n + 32, top);
	put16(n + top, 1);
	n[top + 4] = 1; /* vlen */
	n[top + 8] = 'a';
	n[top + 9] = 'v';
	/* Branches, bottom up: block b's cells all point at block b + 1. */
	for (uint64_t b = leaf - 1; b >= 3; b--) {
		n = img + b * 4096;
		unsigned cell = 2 + 24 + 2;
		top = 4096 - FAN * cell;
		node_hdr(n, 2, (int)(leaf - b), FAN, b, top, FAN * cell);
		for (unsigned i = 0; i < FAN; i++) {
			uint8_t *c = n + top + i * cell;
			put16(n + 32 + 2 * i, top + i * cell);
			put16(c, 2);
			put_bptr(c + 2, img, b + 1, 1);
			c[26] = (uint8_t)('a' + i / 26);
			c[27] = (uint8_t)('a' + i % 26);
		}
	}
	/* The catalog: one leaf holding the map "dag". */
	n = img + 2 * 4096;
	unsigned csize = 8 + 3 + 56;
	top = 4096 - csize;
	node_hdr(n, 1, 0, 1, 2, top, csize);
	put16(n + 32, top);
	uint8_t *c = n + top;
	put16(c, 3);
	c[4] = 56;
	memcpy(c + 8, "dag", 3);
	uint8_t *rec = c + 11;
	rec[0] = 1;	   /* a map */
	put64(rec + 8, 1); /* id */
	put_bptr(rec + 16, img, 3, 1);
	put64(rec + 40, 1); /* entries */
	put64(rec + 48, 1); /* created */
	/* Superblock slot 0, generation 1; slot 1 stays empty. */
	uint8_t *sb = img;
	memcpy(sb, "COWKITSB", 8);
	sb[8] = 1;
	put16(sb + 12, 4096);
	put64(sb + 16, 1);
	put64(sb + 32, NB);
	put_bptr(sb + 40, img, 2, 1);
	put64(sb + 136, 2);
	put64(sb + 4088, XXH3_64bits(sb, 4088));
	char dst[8192];
	snprintf(dst, sizeof(dst), "%s/hang-dag.cow", out_dir);
	FILE *o = fopen(dst, "wb");
	if (!o || fwrite(img, 1, sizeof(img), o) != sizeof(img) || fclose(o) != 0)
		die(dst, 0);
	printf("hang-dag.cow: %d blocks\n", NB);
}

/*
 * etxnerr-catalog.cow: two maps, then an empty commit (so the open-time walk
 * skips the catalog, born before the last sync), then the catalog leaf zeroed.
 */
static void crasher_catalog(void)
{
	cow_store *s = create("catalog", 0);
	cow_txn *t;
	OK(cow_txn_begin(s, 0, &t));
	OK(cow_map_create(t, "alpha"));
	OK(cow_map_create(t, "beta"));
	put(t, "alpha", 1, 10);
	put(t, "beta", 1, 10);
	OK(cow_txn_commit(t));
	OK(cow_txn_begin(s, 0, &t));
	OK(cow_txn_commit(t));
	cow_store_close(s);
	FILE *f = fopen(store_path("catalog"), "r+b");
	uint8_t sb[4096], zero[4096] = {0};
	if (!f || fread(sb, 1, sizeof(sb), f) != sizeof(sb))
		die("catalog store", 0);
	uint64_t root = le64(sb + 40);
	if (fseek(f, (long)(root * 4096), SEEK_SET) != 0 || fwrite(zero, 1, 4096, f) != 4096 ||
	    fclose(f) != 0)
		die("catalog store", 0);
	save(store_path("catalog"), "etxnerr-catalog.cow");
	unlink(store_path("catalog"));
}

/*
 * segv-pending-range.cow: the deletes store with one pending extent of the
 * space-map base moved far past the end of the store (start += 2^33), every
 * checksum on the way made valid again. The first write transaction releases
 * it and bits_set() writes outside the bitmap.
 */
static void crasher_pending(void)
{
	build_deletes("pending");
	FILE *f = fopen(store_path("pending"), "r+b");
	static uint8_t img[64 * 4096];
	size_t len = f ? fread(img, 1, sizeof(img), f) : 0;
	if (len < 2 * 4096)
		die("pending store", 0);
	uint64_t nb = len / 4096, chain[64];
	int n = 0;
	for (uint64_t a = le64(img + 64); a && a < nb && n < 64; a = le64(img + a * 4096 + 24))
		chain[n++] = a;
	int hit = -1;
	for (int i = 0; i < n && hit < 0; i++)
		if (img[chain[i] * 4096 + 4] == 2 && le64(img + chain[i] * 4096 + 48) & 0xffffffff)
			hit = i; /* a pending block with records */
	if (hit < 0)
		die("no pending records in the space-map base", 0);
	img[chain[hit] * 4096 + 56 + 4] += 2; /* first record's start += 2^33 */
	for (int i = hit; i > 0; i--)
		put64(img + chain[i - 1] * 4096 + 24 + 16,
		      XXH3_64bits(img + chain[i] * 4096, 4096));
	for (int slot = 0; slot < 2; slot++) {
		uint8_t *sb = img + slot * 4096;
		if (le64(sb + 64) == chain[0]) {
			put64(sb + 64 + 16, XXH3_64bits(img + chain[0] * 4096, 4096));
			put64(sb + 4088, XXH3_64bits(sb, 4088));
		}
	}
	if (fseek(f, 0, SEEK_SET) != 0 || fwrite(img, 1, len, f) != len || fclose(f) != 0)
		die("pending store", 0);
	save(store_path("pending"), "segv-pending-range.cow");
	unlink(store_path("pending"));
}

int main(int argc, char **argv)
{
	bool crashers = argc == 3 && strcmp(argv[1], "--crashers") == 0;
	if (argc != 2 && !crashers) {
		fprintf(stderr, "usage: make_corpus [--crashers] OUTDIR\n");
		return 2;
	}
	snprintf(out_dir, sizeof(out_dir), "%s", argv[argc - 1]);
	if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
		die(out_dir, 0);
	const char *base = getenv("TMPDIR");
	snprintf(tmp, sizeof(tmp), "%s/cowcorpus.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmp))
		die("mkdtemp", 0);
	if (crashers) {
		crasher_dag();
		crasher_catalog();
		crasher_pending();
		const char *names[] = {"catalog", "pending"};
		for (int i = 0; i < 2; i++) {
			char lk[600];
			snprintf(lk, sizeof(lk), "%s.lock", store_path(names[i]));
			unlink(lk);
		}
		rmdir(tmp);
		return 0;
	}
	fresh();
	maps();
	large();
	deletes();
	nosync();
	versions();
	const char *names[] = {"fresh", "maps", "large", "deletes", "nosync", "versions"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char lk[600];
		unlink(store_path(names[i]));
		snprintf(lk, sizeof(lk), "%s.lock", store_path(names[i]));
		unlink(lk);
	}
	rmdir(tmp);
	return 0;
}
