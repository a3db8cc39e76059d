/*
 * fsck and scrub: a clean store passes; damage to one map's leaf, one
 * volume's data block, and a refcount or space-map inconsistency are each
 * reported with the object, the key or offset, and the block; undamaged
 * objects stay readable.
 *
 * Structural damage behind good checksums (the node changed, then every
 * checksum on the way up recomputed, so only a structural check can see it):
 * keys out of order, a key below its separator, an unknown value kind, an
 * extent whose length says the value fits inline, an entry count that
 * differs from the tree; each is reported with the object's name, damage to
 * two objects gives two findings, and the report keeps the first
 * COW_FSCK_KEEP of many. The report is never left uninitialized, even when
 * the check cannot start or an allocation fails.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/base.h"
#include "check.h"
#include "store/store.h"

struct seen {
	int n;
	char object[8][64];
	uint64_t block[8];
	int has_offset[8];
	size_t keylen[8];
};

static int collect(void *ctx, const cow_fsck_problem *p)
{
	struct seen *s = ctx;
	if (s->n < 8) {
		snprintf(s->object[s->n], 64, "%s", p->object);
		s->block[s->n] = p->block;
		s->has_offset[s->n] = p->has_offset;
		s->keylen[s->n] = p->key.len;
	}
	s->n++;
	return 0;
}

/* Find the block holding @needle in the file (first match after block 1). */
static uint64_t find_block(const char *path, const void *needle, size_t len)
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	static uint8_t b[4096];
	for (uint64_t blk = 2;; blk++) {
		ssize_t n = pread(fd, b, sizeof(b), (off_t)(blk * 4096));
		if (n <= 0)
			break;
		if (memmem(b, sizeof(b), needle, len)) {
			close(fd);
			return blk;
		}
	}
	close(fd);
	return 0;
}

static void flip(const char *path, uint64_t blk, size_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;
	CHECK_EQ(pread(fd, &c, 1, (off_t)(blk * 4096 + off)), 1);
	c ^= 0x40;
	CHECK_EQ(pwrite(fd, &c, 1, (off_t)(blk * 4096 + off)), 1);
	close(fd);
}

/* ---- structural damage behind good checksums ---- */

static uint8_t *img;
static uint64_t img_blocks;

static void img_load(const char *path)
{
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	free(img);
	img = malloc((size_t)n);
	CHECK(img != NULL);
	CHECK_EQ(fread(img, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	img_blocks = (uint64_t)n / 4096;
}

static void img_save(const char *path)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK_EQ(fwrite(img, 4096, img_blocks, f), img_blocks);
	CHECK_EQ(fclose(f), 0);
	char lock[600];
	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(lock); /* rebuilt from the data file */
}

static uint8_t *blk(uint64_t b)
{
	return img + b * 4096;
}

/*
 * Block @b changed (its checksum was @old): every block pointer to it (FORMAT.md
 * section 2: addr, birth, csum) gets the new checksum, and so on up to the
 * superblocks, whose own checksums are redone.
 */
static void reseal(uint64_t b, uint64_t old)
{
	uint64_t now = cow__csum(blk(b), 4096);
	for (uint64_t i = 0; i < img_blocks; i++) {
		uint8_t *p = blk(i);
		uint64_t before = i >= 2 ? cow__csum(p, 4096) : 0;
		bool changed = false;
		for (size_t off = 0; off + 24 <= 4096; off++)
			if (cow__le64(p + off) == b && cow__le64(p + off + 16) == old) {
				cow__put64(p + off + 16, now);
				changed = true;
			}
		if (changed && i < 2)
			cow__put64(p + 4088, cow__csum(p, 4088));
		else if (changed)
			reseal(i, before);
	}
}

/* The leaf (FORMAT.md section 4: magic "COWN", kind 1) holding @needle; its offset in *at. */
static uint64_t leaf_with(const char *needle, size_t *at)
{
	for (uint64_t b = 2; b < img_blocks; b++) {
		uint8_t *n = blk(b);
		if (cow__le32(n) != 0x4e574f43u || n[4] != 1)
			continue;
		uint8_t *hit = memmem(n, 4096, needle, strlen(needle));
		if (hit) {
			*at = (size_t)(hit - n);
			return b;
		}
	}
	CHECK(!"no leaf holds the needle");
	return 0;
}

struct found {
	int n;
	char object[32][64];
	char what[32][96];
};

static int gather(void *ctx, const cow_fsck_problem *p)
{
	struct found *f = ctx;
	if (f->n < 32) {
		snprintf(f->object[f->n], 64, "%s", p->object);
		snprintf(f->what[f->n], 96, "%s", p->what);
	}
	f->n++;
	return 0;
}

/* fsck the image as it is now: exactly @n problems. */
static void fsck_image(const char *path, struct found *f, cow_fsck_report *r, uint64_t n)
{
	img_save(path);
	cow_store *s;
	CHECK_OK(cow_store_open(path, NULL, &s));
	memset(f, 0, sizeof(*f));
	int rc = cow_store_fsck(s, 0, gather, f, r, NULL, NULL);
	for (int i = 0; i < f->n && i < 32; i++)
		printf("  %s: %s\n", f->object[i], f->what[i]);
	CHECK_RC(rc, n ? COW_ECORRUPT : 0);
	CHECK_EQ(r->problems, n);
	CHECK_EQ((uint64_t)f->n, n);
	CHECK_EQ(r->kept, n < COW_FSCK_KEEP ? n : COW_FSCK_KEEP);
	cow_store_close(s);
}

/* Problem @i names @object and says @what; the report kept the same. */
static void saw(const struct found *f, const cow_fsck_report *r, const char *object,
		const char *what)
{
	for (int i = 0; i < f->n && i < 32; i++)
		if (strcmp(f->object[i], object) == 0 && strstr(f->what[i], what)) {
			if ((uint64_t)i < r->kept) {
				CHECK_STREQ(r->found[i].object, object);
				CHECK(strstr(r->found[i].what, what) != NULL);
			}
			return;
		}
	printf("expected a problem in %s: %s\n", object, what);
	CHECK(!"problem not reported");
}

static void damage_order(void)
{
	size_t at;
	uint64_t b = leaf_with("needle-a1", &at), old = cow__csum(blk(b), 4096);
	blk(b)[at + 7] = 'z'; /* needle-z1 now sorts after needle-b1 */
	reseal(b, old);
}

static void damage_kind(const char *key)
{
	size_t at;
	uint64_t b = leaf_with(key, &at), old = cow__csum(blk(b), 4096);
	blk(b)[at - 8 + 2] = 7; /* the cell's vkind */
	reseal(b, old);
}

static void structural(void)
{
	const char *path = check_path("s.cow");
	cow_store *s;
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	CHECK_OK(cow_txn_begin(s, 0, &t));
	const char *maps[] = {"order", "kind", "ext", "tally", "sep", "other"};
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		CHECK_OK(cow_map_create(t, maps[i]));
	CHECK_OK(cow_map_open(t, "order", &m));
	CHECK_OK(cow_map_put(m, "needle-a1", 9, "1", 1));
	CHECK_OK(cow_map_put(m, "needle-b1", 9, "2", 1));
	CHECK_OK(cow_map_put(m, "needle-c1", 9, "3", 1));
	CHECK_OK(cow_map_open(t, "kind", &m));
	CHECK_OK(cow_map_put(m, "kind-key", 8, "v", 1));
	CHECK_OK(cow_map_open(t, "ext", &m));
	static char big[5000];
	memset(big, 'E', sizeof(big));
	CHECK_OK(cow_map_put(m, "ext-key", 7, big, sizeof(big)));
	CHECK_OK(cow_map_open(t, "tally", &m));
	CHECK_OK(cow_map_put(m, "t1", 2, "x", 1));
	CHECK_OK(cow_map_put(m, "t2", 2, "y", 1));
	CHECK_OK(cow_map_open(t, "sep", &m));
	for (int i = 0; i < 400; i++) {
		char k[16];
		snprintf(k, sizeof(k), "sep%06d", i);
		CHECK_OK(cow_map_put(m, k, 9, big, 40));
	}
	CHECK_OK(cow_map_open(t, "other", &m));
	CHECK_OK(cow_map_put(m, "o", 1, "o", 1));
	for (int i = 0; i < 20; i++) { /* many small maps, each a leaf */
		char name[16], key[16];
		snprintf(name, sizeof(name), "bulk%02d", i);
		snprintf(key, sizeof(key), "bulk-key-%02d", i);
		CHECK_OK(cow_map_create(t, name));
		CHECK_OK(cow_map_open(t, name, &m));
		CHECK_OK(cow_map_put(m, key, strlen(key), "b", 1));
	}
	CHECK_OK(cow_txn_commit(t));
	cow_store_close(s);
	img_load(path);
	uint8_t *pristine = malloc(img_blocks * 4096);
	CHECK(pristine != NULL);
	memcpy(pristine, img, img_blocks * 4096);
	struct found f;
	cow_fsck_report r;
	fsck_image(path, &f, &r, 0); /* the re-sealing itself breaks nothing */

	damage_order();
	fsck_image(path, &f, &r, 1);
	saw(&f, &r, "order", "keys out of order");

	memcpy(img, pristine, img_blocks * 4096);
	damage_kind("kind-key");
	fsck_image(path, &f, &r, 1);
	saw(&f, &r, "kind", "unknown value kind");

	/* ext-key's value is an extent of 5000 bytes; say 100, with the checksum to match. */
	memcpy(img, pristine, img_blocks * 4096);
	size_t at;
	uint64_t b = leaf_with("ext-key", &at), old = cow__csum(blk(b), 4096);
	uint8_t *cell = blk(b) + at - 8, *ep = blk(b) + at + 7;
	CHECK_EQ(cow__le32(cell + 4), sizeof(big));
	cow__put32(cell + 4, 100);
	cow__put64(ep + 16, cow__csum(blk(cow__le64(ep)), 100));
	reseal(b, old);
	fsck_image(path, &f, &r, 1);
	saw(&f, &r, "ext", "small enough to be inline");

	/* tally's catalog record (88 bytes after its key) says 7 entries; the tree has 2. */
	memcpy(img, pristine, img_blocks * 4096);
	b = leaf_with("tally", &at);
	old = cow__csum(blk(b), 4096);
	CHECK_EQ(cow__le64(blk(b) + at + 5 + 40), 2);
	cow__put64(blk(b) + at + 5 + 40, 7);
	reseal(b, old);
	fsck_image(path, &f, &r, 1);
	saw(&f, &r, "tally", "entry count");

	/* A later leaf of sep whose first key drops below the separator that leads to it. */
	memcpy(img, pristine, img_blocks * 4096);
	uint64_t later = 0;
	for (uint64_t i = 2; i < img_blocks && !later; i++) {
		uint8_t *n = blk(i);
		if (cow__le32(n) != 0x4e574f43u || n[4] != 1 || cow__le16(n + 6) < 2)
			continue;
		uint8_t *k0 = n + cow__le16(n + 32) + 8;
		if (memcmp(k0, "sep", 3) == 0 && memcmp(k0, "sep000000", 9) != 0)
			later = i;
	}
	CHECK_GT(later, 1);
	old = cow__csum(blk(later), 4096);
	memcpy(blk(later) + cow__le16(blk(later) + 32) + 8, "sep000000", 9);
	reseal(later, old);
	fsck_image(path, &f, &r, 1);
	saw(&f, &r, "sep", "below its separator");

	/* Two damaged objects: two findings, each with its name. */
	memcpy(img, pristine, img_blocks * 4096);
	damage_order();
	damage_kind("kind-key");
	fsck_image(path, &f, &r, 2);
	saw(&f, &r, "order", "keys out of order");
	saw(&f, &r, "kind", "unknown value kind");

	/* Twenty: all counted, the first COW_FSCK_KEEP kept. */
	memcpy(img, pristine, img_blocks * 4096);
	for (int i = 0; i < 20; i++) {
		char key[16];
		snprintf(key, sizeof(key), "bulk-key-%02d", i);
		damage_kind(key);
	}
	fsck_image(path, &f, &r, 20);
	for (int i = 0; i < 20; i++) {
		char name[16];
		snprintf(name, sizeof(name), "bulk%02d", i);
		saw(&f, &r, name, "unknown value kind");
	}
	memcpy(img, pristine, img_blocks * 4096);
	fsck_image(path, &f, &r, 0); /* left clean for never_uninitialized() */
	free(pristine);
	free(img);
	img = NULL;
}

/* The report is always initialized: on a check that cannot start, or fails part-way. */
static void never_uninitialized(void)
{
	cow_fsck_report r;
	memset(&r, 0xAA, sizeof(r));
	CHECK_RC(cow_store_fsck(NULL, 0, NULL, NULL, &r, NULL, NULL), COW_EINVAL);
	CHECK_EQ(r.objects, 0);
	CHECK_EQ(r.blocks, 0);
	CHECK_EQ(r.problems, 0);
	CHECK_EQ(r.kept, 0);

	cow_store *s;
	CHECK_OK(cow_store_open(check_path("s.cow"), NULL, &s));
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	uint64_t nblocks = st.file_bytes / 4096;
	for (long n = 1;; n++) {
		memset(&r, 0xAA, sizeof(r));
		check_alloc_fail_at(n, 0);
		int rc = cow_store_fsck(s, 0, NULL, NULL, &r, NULL, NULL);
		check_alloc_fail_at(0, 0);
		CHECK_LE(r.blocks, nblocks);
		CHECK_LE(r.objects, 100);
		CHECK_LE(r.kept, COW_FSCK_KEEP);
		if (rc == 0)
			break;
		if (rc != COW_ENOMEM)
			printf("alloc %ld: %s: %s %s\n", n, cow_errname(rc),
			       r.kept ? r.found[0].object : "", r.kept ? r.found[0].what : "");
		CHECK_RC(rc, COW_ENOMEM);
		CHECK_EQ(r.problems, 0); /* no memory is not damage */
		CHECK_LT(n, 10000);
	}
	cow_store_close(s);
}

int main(void)
{
	setenv("COW_LOG", "off", 1);
	const char *path = check_path("f.cow");
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	cow_txn *t;
	cow_map *m;
	cow_vol *v;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "good"));
	CHECK_OK(cow_map_create(t, "bad"));
	CHECK_OK(cow_map_open(t, "good", &m));
	CHECK_OK(cow_map_put(m, "k", 1, "v", 1));
	CHECK_OK(cow_map_open(t, "bad", &m));
	CHECK_OK(cow_map_put(m, "needle-key", 10, "needle-value", 12));
	CHECK_OK(cow_vol_create(t, "disk", 1 << 20));
	CHECK_OK(cow_vol_open(t, "disk", &v));
	char data[4096];
	memset(data, 'Q', sizeof(data));
	memcpy(data, "needle-data", 11);
	CHECK_OK(cow_vol_pwrite(v, data, sizeof(data), 5 * 4096));
	CHECK_OK(cow_snapshot(t, "@s"));
	CHECK_OK(cow_txn_commit(t));
	cow_fsck_report r;
	struct seen seen = {0};
	CHECK_OK(cow_store_fsck(s, 0, collect, &seen, &r, NULL, NULL));
	CHECK_EQ(r.problems, 0);
	CHECK_EQ(r.objects, 6);
	cow_store_close(s);

	/* Damage the map's leaf and the volume's data block. */
	uint64_t leaf = find_block(path, "needle-value", 12),
		 dblk = find_block(path, "needle-data", 11);
	CHECK_GT(leaf, 1);
	CHECK_GT(dblk, 1);
	flip(path, leaf, 2000);
	flip(path, dblk, 100);
	CHECK_OK(cow_store_open(path, NULL, &s));
	memset(&seen, 0, sizeof(seen));
	CHECK_RC(cow_store_fsck(s, COW_FSCK_SCRUB, collect, &seen, &r, NULL, NULL), COW_ECORRUPT);
	/* Each damaged block once, though two versions (live and @s) share it. */
	CHECK_EQ(seen.n, 2);
	bool saw_leaf = false, saw_data = false;
	for (int i = 0; i < seen.n; i++) {
		if (seen.block[i] == leaf)
			saw_leaf = strncmp(seen.object[i], "bad", 3) == 0;
		if (seen.block[i] == dblk)
			saw_data = strncmp(seen.object[i], "disk", 4) == 0 && seen.has_offset[i];
	}
	CHECK(saw_leaf);
	CHECK(saw_data);
	CHECK_RC(cow_store_fsck(s, 0, NULL, NULL, &r, NULL, NULL), COW_ECORRUPT);
	/* Reads: damage is COW_ECORRUPT, the rest still works. */
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	cow_buf b;
	CHECK_OK(cow_map_open(t, "good", &m));
	CHECK_OK(cow_map_get(m, "k", 1, &b));
	CHECK_OK(cow_map_open(t, "bad", &m));
	CHECK_RC(cow_map_get(m, "needle-key", 10, &b), COW_ECORRUPT);
	CHECK_OK(cow_vol_open(t, "disk", &v));
	CHECK_RC(cow_vol_pread(v, data, 4096, 5 * 4096), COW_ECORRUPT);
	CHECK_OK(cow_vol_pread(v, data, 4096, 0));
	cow_txn_abort(t);
	cow_store_close(s);

	structural();
	never_uninitialized();
	return 0;
}
