/*
 * Space given back to the file system: a free tail is cut off by commits,
 * free runs inside the file are punched out (by cow_store_trim, and by
 * commits past the threshold), never under a reader that still sees them,
 * and a power loss at any step of it loses nothing.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "faultio.h"
#include "store/store.h"

#define MiB (1u << 20)

static cow_store *s;
static const char *path;

static void reopen(void)
{
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, NULL, &s));
}

static void fill(uint8_t *buf, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

/* A volume @name of @size bytes of pattern @seed. */
static void make_vol(const char *name, size_t size, uint32_t seed)
{
	uint8_t *buf = malloc(size);
	CHECK(buf != NULL);
	fill(buf, size, seed);
	cow_txn *t;
	cow_vol *v;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_create(t, name, size));
	CHECK_OK(cow_vol_open(t, name, &v));
	CHECK_OK(cow_vol_pwrite(v, buf, size, 0));
	CHECK_OK(cow_txn_commit(t));
	free(buf);
}

/* Does @name read back as pattern @seed (in read txn @t, or a new one)? */
static bool vol_is(cow_txn *t, const char *name, size_t size, uint32_t seed)
{
	cow_txn *own = NULL;
	if (!t)
		CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &own));
	cow_vol *v;
	uint8_t *want = malloc(size), *got = malloc(size);
	CHECK(want && got);
	fill(want, size, seed);
	bool ok = cow_vol_open(t ? t : own, name, &v) == 0 && cow_vol_size(v) == size &&
		  cow_vol_pread(v, got, size, 0) == 0 && memcmp(want, got, size) == 0;
	free(want);
	free(got);
	cow_txn_abort(own);
	return ok;
}

static void destroy(const char *name)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_destroy(t, name, COW_DESTROY_RECURSIVE));
	CHECK_OK(cow_txn_commit(t));
}

/* A small commit, so pending blocks are released and a new slot is written. */
static void tick(void)
{
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_map_put(m, "tick", 4, "x", 1));
	CHECK_OK(cow_txn_commit(t));
}

static uint64_t file_size(void)
{
	struct stat st;
	CHECK_EQ(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static uint64_t disk_size(void)
{
	struct stat st;
	CHECK_EQ(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void test_tail(void)
{
	make_vol("big", 48 * MiB, 1);
	uint64_t before = file_size();
	CHECK_GE(before, 48 * MiB);

	/* A reader that still sees the volume keeps its blocks, tail included. */
	cow_txn *r;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &r));
	destroy("big");
	for (int i = 0; i < 4; i++)
		tick();
	CHECK_GE(file_size(), 48 * MiB);
	CHECK(vol_is(r, "big", 48 * MiB, 1));
	cow_txn_abort(r);

	/*
	 * Then the tail goes within a few commits: the freed blocks are released,
	 * the space map's chain, if it holds the tail, moves to a new base, and
	 * the cut waits until the older slot no longer reaches the tail either.
	 */
	for (int i = 0; i < 6 && file_size() >= 10 * MiB; i++)
		tick();
	printf("file after destroying 48 MiB: %llu KiB (was %llu KiB), %llu KiB on disk\n",
	       (unsigned long long)file_size() >> 10, (unsigned long long)before >> 10,
	       (unsigned long long)disk_size() >> 10);
	CHECK_LT(file_size(), 10 * MiB); /* "keep" is 8 MiB */
	CHECK_OK(cow__store_check(s));
	reopen();
	CHECK_OK(cow__store_check(s));
	CHECK(vol_is(NULL, "keep", 8 * MiB, 7));
}

/*
 * Big writes leave the space map's own chain at the end of the file; in one
 * long-lived process the tail is still given back (a new base moves it).
 */
static void test_chain_at_tail(void)
{
	uint64_t before = file_size();
	make_vol("t0", 16 * MiB, 8);
	make_vol("t1", 16 * MiB, 9);
	make_vol("t2", 16 * MiB, 10);
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_destroy(t, "t0", 0));
	CHECK_OK(cow_destroy(t, "t1", 0));
	CHECK_OK(cow_destroy(t, "t2", 0));
	CHECK_OK(cow_txn_commit(t));
	for (int i = 0; i < 4; i++)
		tick();
	printf("three 16 MiB volumes destroyed in one transaction: file %llu KiB (was %llu KiB "
	       "before them)\n",
	       (unsigned long long)file_size() >> 10, (unsigned long long)before >> 10);
	CHECK_LE(file_size(), before + 128 * 1024); /* not the chain's 400 KiB */
	CHECK_OK(cow__store_check(s));
}

static void test_punch(void)
{
	make_vol("front", 32 * MiB, 2);
	make_vol("back", 8 * MiB, 3);
	destroy("front");
	tick();
	tick();
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_GE(st.reclaimable_bytes, 30 * MiB);
	uint64_t disk = disk_size(), size = file_size();
	uint64_t bytes;
	CHECK_OK(cow_store_trim(s, &bytes));
	printf("trim: %llu KiB given back; on disk %llu -> %llu KiB\n",
	       (unsigned long long)bytes >> 10, (unsigned long long)disk >> 10,
	       (unsigned long long)disk_size() >> 10);
	CHECK_GE(bytes, 30 * MiB);
	CHECK_EQ(file_size(), size); /* holes, not a shorter file */
	CHECK_LE(disk_size() + 30 * MiB, disk);
	CHECK(vol_is(NULL, "back", 8 * MiB, 3));
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_LT(st.reclaimable_bytes, 1 * MiB);
	/* Punched blocks are reused like any free block. */
	make_vol("again", 16 * MiB, 4);
	CHECK(vol_is(NULL, "again", 16 * MiB, 4));
	CHECK(vol_is(NULL, "back", 8 * MiB, 3));
	CHECK_OK(cow__store_check(s));
	destroy("again");
	destroy("back");
}

/*
 * A power loss at every step of a destroy, the commits that cut the tail
 * and a trim: after it, the store opens, checks clean and holds "keep" and
 * either all or none of "gone".
 */
static void test_crash(void)
{
	for (long at = 1;; at++) {
		make_vol("gone", 12 * MiB, 5);
		struct faultio_cfg cfg = {.crash_at = at, .seed = (uint64_t)at * 7919};
		cow_store_close(s);
		faultio_install(&cfg);
		CHECK_OK(cow_store_open(path, NULL, &s));
		cow_txn *t;
		bool done = false;
		if (cow_txn_begin(s, 0, &t) == 0) {
			if (cow_destroy(t, "gone", 0) == 0 && cow_txn_commit(t) == 0) {
				for (int i = 0; i < 3; i++) {
					cow_map *m;
					if (cow_txn_begin(s, 0, &t) != 0)
						break;
					if (cow_map_open(t, "m", &m) ||
					    cow_map_put(m, "c", 1, "1", 1)) {
						cow_txn_abort(t);
						break;
					}
					if (cow_txn_commit(t) != 0)
						break;
				}
				uint64_t b;
				done = cow_store_trim(s, &b) == 0 && !faultio_crashed();
			} else {
				cow_txn_abort(t);
			}
		}
		bool crashed = faultio_crashed();
		cow_store_close(s);
		faultio_uninstall();
		CHECK_OK(cow_store_open(path, NULL, &s));
		CHECK_OK(cow__store_check(s));
		CHECK(vol_is(NULL, "keep", 8 * MiB, 7));
		cow_txn *r;
		cow_obj_stats os;
		CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &r));
		int rc = cow_obj_stat(r, "gone", 0, &os);
		cow_txn_abort(r);
		if (rc == 0) {
			CHECK(!done);
			CHECK(vol_is(NULL, "gone", 12 * MiB, 5));
			destroy("gone");
		} else {
			CHECK_RC(rc, COW_ENOTFOUND);
		}
		if (!crashed) {
			printf("crash: %ld power-loss points, each reopened clean\n", at - 1);
			break;
		}
	}
}

int main(void)
{
	path = check_path("trim.cow");
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_txn_commit(t));
	make_vol("keep", 8 * MiB, 7);
	test_tail();
	test_chain_at_tail();
	test_punch();
	test_crash();
	cow_store_close(s);
	return 0;
}
