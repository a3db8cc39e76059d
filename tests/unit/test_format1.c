/*
 * A store written by the format 1 build (tests/data/format1.cow: a map, a
 * volume with a snapshot and a clone that changed 4 bytes, made with the
 * cow CLI of that build; its space log is 16 kind 3 blocks). This build
 * reads it, checks it clean, writes to it (the commit upgrades it to format
 * 3), writes runs over a clone's one-block entries, and reads and checks it
 * again after a reopen.
 *
 *   unit_format1 PATH/TO/format1.cow
 */
#include <fcntl.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(in >= 0 && out >= 0);
	uint8_t buf[1 << 16];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK_EQ(write(out, buf, (size_t)n), n);
	CHECK_EQ(n, 0);
	close(in);
	close(out);
}

/* The format version of the newest superblock slot of the file at @path. */
static uint32_t version(const char *path)
{
	uint8_t sb[2][4096];
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, sb, sizeof(sb), 0), (ssize_t)sizeof(sb));
	close(fd);
	int i = cow__le64(sb[1] + 16) > cow__le64(sb[0] + 16);
	return cow__le32(sb[i] + 8);
}

/* Everything the format 1 build wrote, as of @t. */
static void expect_contents(cow_store *s)
{
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_EQ(cow_map_count(m), 11);
	for (int i = 1; i <= 12; i++) {
		char k[16], want[32];
		snprintf(k, sizeof(k), "key%d", i);
		snprintf(want, sizeof(want), "value %d \xc3\xa9", i);
		cow_buf v;
		int rc = cow_map_get(m, k, strlen(k), &v);
		if (i == 3) {
			CHECK_RC(rc, COW_ENOTFOUND);
			continue;
		}
		CHECK_OK(rc);
		CHECK(v.len == strlen(want) && memcmp(v.data, want, v.len) == 0);
	}
	static uint8_t a[12288], b[12288], c[12288];
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, "vol", &v));
	CHECK_EQ(cow_vol_size(v), sizeof(a));
	CHECK_OK(cow_vol_pread(v, a, sizeof(a), 0));
	CHECK_OK(cow_vol_open(t, "vol@a", &v));
	CHECK_OK(cow_vol_pread(v, b, sizeof(b), 0));
	CHECK_OK(cow_vol_open(t, "c", &v));
	CHECK_OK(cow_vol_pread(v, c, sizeof(c), 0));
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	CHECK(memcmp(c + 5000, "XYZW", 4) == 0);
	memcpy(b + 5000, "XYZW", 4);
	CHECK(memcmp(b, c, sizeof(c)) == 0);
	cow_txn_abort(t);
}

int main(int argc, char **argv)
{
	CHECK_EQ(argc, 2);
	const char *path = check_path("format1.cow");
	copy_file(argv[1], path);
	CHECK_EQ(version(path), 1);

	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_RDONLY}, &s));
	expect_contents(s);
	cow_store_close(s);

	CHECK_OK(cow_store_open(path, NULL, &s));
	CHECK_OK(cow__store_check(s)); /* the kind 3 log replays to the map the trees need */
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_map_put(m, "new", 3, "format 2", 8));
	CHECK_OK(cow_txn_commit(t));
	CHECK_EQ(version(path), 3);
	CHECK_OK(cow__store_check(s));

	/* A run written across one-block entries of format 1, shared with vol@a. */
	static uint8_t want[12288], got[12288], patch[6000];
	for (size_t i = 0; i < sizeof(patch); i++)
		patch[i] = (uint8_t)(i * 13 + 1);
	cow_vol *v;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_clone(t, "vol@a", "d"));
	CHECK_OK(cow_vol_open(t, "d", &v));
	CHECK_OK(cow_vol_pread(v, want, sizeof(want), 0));
	CHECK_OK(cow_vol_pwrite(v, patch, sizeof(patch), 3000));
	CHECK_OK(cow_txn_commit(t));
	memcpy(want + 3000, patch, sizeof(patch));
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, NULL, &s));
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_open(t, "d", &v));
	CHECK_OK(cow_vol_pread(v, got, sizeof(got), 0));
	CHECK(memcmp(got, want, sizeof(got)) == 0);
	CHECK_OK(cow_destroy(t, "d", 0));
	CHECK_OK(cow_txn_commit(t));
	cow_store_close(s);

	CHECK_OK(cow_store_open(path, NULL, &s));
	CHECK_OK(cow__store_check(s));
	cow_fsck_report r;
	CHECK_OK(cow_store_fsck(s, 0, NULL, NULL, &r, NULL, NULL));
	CHECK_EQ(r.problems, 0);
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_map_del(m, "new", 3));
	CHECK_OK(cow_txn_commit(t));
	expect_contents(s);
	cow_store_close(s);
	printf("a format 1 store opened, checked, upgraded by its first commit, clean after\n");
	return 0;
}
