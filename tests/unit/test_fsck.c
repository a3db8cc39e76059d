/*
 * fsck and scrub: a clean store passes; damage to one map's leaf, one
 * volume's data block, and a refcount or space-map inconsistency are each
 * reported with the object, the key or offset, and the block; undamaged
 * objects stay readable.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

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
	uint64_t leaf = find_block(path, "needle-value", 12), dblk = find_block(path, "needle-data", 11);
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
	return 0;
}
