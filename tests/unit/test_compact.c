/*
 * Online compaction: live blocks move down and the file shrinks to about
 * what they need; contents, snapshots, clones and their sharing survive; a
 * reader open across it keeps reading its generation; a writer commits
 * between its steps; a power loss at any step of it loses nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "faultio.h"
#include "store/store.h"

#define KiB (1u << 10)
#define MiB (1u << 20)

static cow_store *s;
static const char *path;

static void fill(uint8_t *buf, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

static void vol_write(cow_txn *t, const char *name, size_t size, uint64_t off, uint32_t seed)
{
	uint8_t *buf = malloc(size);
	CHECK(buf != NULL);
	fill(buf, size, seed);
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, name, &v));
	CHECK_OK(cow_vol_pwrite(v, buf, size, off));
	free(buf);
}

/* Does @name read @size bytes of @seed at 0, with @nover blocks of @oseed at @over[i]? */
static bool vol_is(cow_txn *t, const char *name, size_t size, uint32_t seed, const uint64_t *over,
		   int nover, uint32_t oseed)
{
	cow_txn *own = NULL;
	if (!t)
		CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &own));
	uint8_t *want = malloc(size), *got = malloc(size), blk[4096];
	CHECK(want && got);
	fill(want, size, seed);
	fill(blk, sizeof(blk), oseed);
	for (int i = 0; i < nover; i++)
		memcpy(want + over[i], blk, sizeof(blk));
	cow_vol *v;
	bool ok = cow_vol_open(t ? t : own, name, &v) == 0 && cow_vol_size(v) == size &&
		  cow_vol_pread(v, got, size, 0) == 0 && memcmp(want, got, size) == 0;
	free(want);
	free(got);
	cow_txn_abort(own);
	return ok;
}

static uint64_t file_size(void)
{
	struct stat st;
	CHECK_EQ(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

#define NCLONES 10
#define NKEYS	3000
static const uint64_t over[3] = {0, 1 * MiB, 3 * MiB + 4096};

/* Key i of map "m": small values, and every 50th a 9 KiB one (a three-block extent). */
static size_t key_val(int i, char *k, uint8_t *v)
{
	snprintf(k, 32, "key%06d", i);
	size_t vlen = i % 50 == 0 ? 9 * KiB : 40;
	fill(v, vlen, (uint32_t)i);
	return vlen;
}

/*
 * A store whose live data sits past a big free run: "low" is written first
 * and destroyed, "v" (with a snapshot and clones that changed a few blocks)
 * and map "m" stay.
 */
static void build(void)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_create(t, "low", 24 * MiB));
	vol_write(t, "low", 24 * MiB, 0, 1);
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_create(t, "v", 4 * MiB));
	vol_write(t, "v", 4 * MiB, 0, 2);
	CHECK_OK(cow_map_create(t, "m"));
	cow_map *m;
	CHECK_OK(cow_map_open(t, "m", &m));
	for (int i = 0; i < NKEYS; i++) {
		char k[32];
		uint8_t v[9 * KiB];
		size_t vlen = key_val(i, k, v);
		CHECK_OK(cow_map_put(m, k, strlen(k), v, vlen));
	}
	CHECK_OK(cow_snapshot(t, "v@s1"));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_txn_begin(s, 0, &t));
	for (int c = 0; c < NCLONES; c++) {
		char name[16];
		snprintf(name, sizeof(name), "c%d", c);
		CHECK_OK(cow_clone(t, "v@s1", name));
		vol_write(t, name, 4096, over[c % 3], 100 + (uint32_t)c);
	}
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_destroy(t, "low", 0));
	CHECK_OK(cow_txn_commit(t));
}

static void expect_all(cow_txn *t)
{
	CHECK(vol_is(t, "v", 4 * MiB, 2, NULL, 0, 0));
	CHECK(vol_is(t, "v@s1", 4 * MiB, 2, NULL, 0, 0));
	for (int c = 0; c < NCLONES; c++) {
		char name[16];
		snprintf(name, sizeof(name), "c%d", c);
		CHECK(vol_is(t, name, 4 * MiB, 2, &over[c % 3], 1, 100 + (uint32_t)c));
	}
	cow_txn *own = NULL;
	if (!t)
		CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &own));
	cow_map *m;
	CHECK_OK(cow_map_open(t ? t : own, "m", &m));
	CHECK_EQ(cow_map_count(m), NKEYS);
	for (int i = 0; i < NKEYS; i++) {
		char k[32];
		uint8_t v[9 * KiB];
		size_t vlen = key_val(i, k, v);
		cow_buf got;
		CHECK_OK(cow_map_get(m, k, strlen(k), &got));
		CHECK(got.len == vlen && memcmp(got.data, v, vlen) == 0);
	}
	cow_txn_abort(own);
}

static uint64_t live_bytes(void)
{
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	return st.used_bytes + st.pending_bytes;
}

static void fresh(const char *name)
{
	cow_store_close(s);
	path = check_path(name);
	unlink(path);
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	build();
}

static void test_shrinks(void)
{
	fresh("compact.cow");
	uint64_t size = file_size(), before = live_bytes();
	CHECK_GE(size, 24 * MiB);
	uint64_t trimmed;
	CHECK_OK(cow_store_trim(s, &trimmed));
	CHECK_EQ(file_size(), size); /* the live data is at the end: only holes */

	cow_compact_stats st;
	CHECK_OK(cow_store_compact(s, 0, &st, NULL, NULL));
	uint64_t live = live_bytes();
	printf("compact: file %llu -> %llu KiB, live %llu KiB, moved %llu KiB in %llu commits\n",
	       (unsigned long long)st.file_before >> 10, (unsigned long long)st.file_after >> 10,
	       (unsigned long long)live >> 10, (unsigned long long)st.moved_bytes >> 10,
	       (unsigned long long)st.commits);
	CHECK_EQ(st.file_before, size);
	CHECK_EQ(st.file_after, file_size());
	CHECK_LE(st.file_after, live + live / 10 + 1 * MiB);
	CHECK_GE(st.moved_bytes, 4 * MiB);
	CHECK_EQ(st.waiting_bytes, 0);
	/* Sharing kept: the clones still share v@s1's blocks; the destroyed volume is gone. */
	CHECK_LE(live, before - 24 * MiB + 256 * KiB);
	CHECK_LE(live, 6 * MiB);
	expect_all(NULL);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, NULL, &s));
	CHECK_OK(cow__store_check(s));
	expect_all(NULL);

	/* A compact store: nothing to do, nothing written. */
	cow_store_stats a, b;
	CHECK_OK(cow_store_stat(s, &a));
	CHECK_OK(cow_store_compact(s, 0, &st, NULL, NULL));
	CHECK_OK(cow_store_stat(s, &b));
	CHECK_EQ(st.moved_bytes, 0);
	CHECK_EQ(st.commits, 0);
	CHECK_EQ(a.gen, b.gen);

	/* And the store goes on: writes, destroy, snapshot, on the moved trees. */
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	vol_write(t, "c0", 4096, 2 * MiB, 55);
	CHECK_OK(cow_destroy(t, "c1", 0));
	CHECK_OK(cow_snapshot(t, "c0@after"));
	CHECK_OK(cow_txn_commit(t));
	CHECK(vol_is(NULL, "v@s1", 4 * MiB, 2, NULL, 0, 0));
	CHECK(vol_is(NULL, "c2", 4 * MiB, 2, &over[2], 1, 102));
	uint8_t want[4096], got[4096];
	fill(want, sizeof(want), 55);
	cow_vol *v;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_vol_open(t, "c0@after", &v));
	CHECK_OK(cow_vol_pread(v, got, sizeof(got), 2 * MiB));
	CHECK(memcmp(want, got, sizeof(got)) == 0);
	fill(want, sizeof(want), 100);
	CHECK_OK(cow_vol_pread(v, got, sizeof(got), over[0]));
	CHECK(memcmp(want, got, sizeof(got)) == 0);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
}

/* A value larger than a step still moves: as the first move of a step. */
static void test_big_value(void)
{
	cow_store_close(s);
	path = check_path("compact-big.cow");
	unlink(path);
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_create(t, "low", 8 * MiB));
	vol_write(t, "low", 8 * MiB, 0, 1);
	CHECK_OK(cow_txn_commit(t));
	size_t vlen = 2 * MiB;
	uint8_t *v = malloc(vlen);
	CHECK(v != NULL);
	fill(v, vlen, 9);
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_map_put(m, "big", 3, v, vlen));
	CHECK_OK(cow_destroy(t, "low", 0));
	CHECK_OK(cow_txn_commit(t));
	cow_compact_stats st;
	CHECK_OK(cow_store_compact(s, 64 * KiB, &st, NULL, NULL));
	printf("a 2 MiB value, steps of 64 KiB: file %llu -> %llu KiB\n",
	       (unsigned long long)st.file_before >> 10, (unsigned long long)st.file_after >> 10);
	CHECK_GE(st.moved_bytes, vlen);
	CHECK_LT(st.file_after, 4 * MiB);
	cow_buf got;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_map_get(m, "big", 3, &got));
	CHECK(got.len == vlen && memcmp(got.data, v, vlen) == 0);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
	free(v);
}

/* A reader open across the compaction keeps its generation, and the space it sees. */
static void test_reader(void)
{
	fresh("compact-reader.cow");
	cow_txn *r;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &r));
	cow_compact_stats st;
	CHECK_OK(cow_store_compact(s, 1 * MiB, &st, NULL, NULL));
	printf("compact under a reader: %llu KiB moved, %llu KiB wait for it, file %llu KiB\n",
	       (unsigned long long)st.moved_bytes >> 10, (unsigned long long)st.waiting_bytes >> 10,
	       (unsigned long long)st.file_after >> 10);
	CHECK_GE(st.commits, 4); /* steps of 1 MiB */
	CHECK_GE(st.waiting_bytes, 4 * MiB);
	CHECK_GE(st.file_after, 24 * MiB); /* what the reader sees stays */
	expect_all(r);
	expect_all(NULL);
	cow_txn_abort(r);
	CHECK_OK(cow_store_compact(s, 0, &st, NULL, NULL));
	CHECK_EQ(st.waiting_bytes, 0);
	CHECK_LT(st.file_after, 12 * MiB);
	CHECK_OK(cow__store_check(s));
	expect_all(NULL);
}

/* A writer commits between the steps. */
static atomic_bool stop;
static void *writer(void *arg)
{
	(void)arg;
	unsigned n = 0;
	while (!atomic_load(&stop)) {
		cow_txn *t;
		cow_map *m;
		CHECK_OK(cow_txn_begin(s, 0, &t));
		CHECK_OK(cow_map_open(t, "m", &m));
		char k[32];
		snprintf(k, sizeof(k), "w%08u", n++);
		CHECK_OK(cow_map_put(m, k, strlen(k), k, strlen(k)));
		CHECK_OK(cow_txn_commit(t));
	}
	return (void *)(uintptr_t)n;
}

static void test_writer(void)
{
	fresh("compact-writer.cow");
	cow_store_close(s); /* commits without flushes: the writer gets many in */
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_NOSYNC}, &s));
	pthread_t th;
	atomic_store(&stop, false);
	CHECK_EQ(pthread_create(&th, NULL, writer, NULL), 0);
	cow_compact_stats st;
	CHECK_OK(cow_store_compact(s, 256 * KiB, &st, NULL, NULL));
	atomic_store(&stop, true);
	void *ret;
	CHECK_EQ(pthread_join(th, &ret), 0);
	unsigned n = (unsigned)(uintptr_t)ret;
	printf("compact beside a writer: %llu commits of its own, the writer's %u\n",
	       (unsigned long long)st.commits, n);
	CHECK_GE(st.commits, 16);
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_EQ(cow_map_count(m), NKEYS + n);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(in >= 0 && out >= 0);
	static uint8_t buf[1 << 16];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK_EQ(write(out, buf, (size_t)n), n);
	CHECK_EQ(n, 0);
	close(in);
	close(out);
}

/* A power loss at every I/O of a compaction: the store opens clean and whole. */
static void test_crash(void)
{
	fresh("compact-crash.cow");
	cow_store_close(s);
	s = NULL;
	char pristine[4096];
	snprintf(pristine, sizeof(pristine), "%s.pristine", path);
	copy_file(path, pristine);
	long points = 0;
	for (long at = 1;; at += 1 + at / 40) {
		copy_file(pristine, path);
		struct faultio_cfg cfg = {.crash_at = at, .seed = (uint64_t)at * 7919};
		faultio_install(&cfg);
		CHECK_OK(cow_store_open(path, NULL, &s));
		cow_compact_stats st;
		int rc = cow_store_compact(s, 1 * MiB, &st, NULL, NULL);
		bool crashed = faultio_crashed();
		CHECK(rc == 0 || crashed);
		cow_store_close(s);
		faultio_uninstall();
		CHECK_OK(cow_store_open(path, NULL, &s));
		CHECK_OK(cow__store_check(s));
		expect_all(NULL);
		cow_store_close(s);
		s = NULL;
		points++;
		if (!crashed)
			break;
	}
	printf("crash: %ld power-loss points in a compaction, each reopened clean and whole\n",
	       points);
	unlink(pristine);
	CHECK_OK(cow_store_open(path, NULL, &s));
}

/*
 * Errors on the way: an I/O error or a full disk at every write of a
 * compaction fails it cleanly (the store stays whole and usable), a
 * damaged block it would move fails it with COW_ECORRUPT and changes
 * nothing, a read-only store is refused.
 */
static void test_errors(void)
{
	fresh("compact-errors.cow");
	cow_store_close(s);
	s = NULL;
	char pristine[4096];
	snprintf(pristine, sizeof(pristine), "%s.pristine", path);
	copy_file(path, pristine);
	long failures = 0;
	for (long at = 1;; at += 1 + at / 30) {
		copy_file(pristine, path);
		struct faultio_cfg cfg = {
			.fail_at = at, .fail_errno = at % 2 ? ENOSPC : EIO, .persistent = at % 3 == 0};
		faultio_install(&cfg);
		CHECK_OK(cow_store_open(path, NULL, &s));
		cow_compact_stats st;
		int rc = cow_store_compact(s, 1 * MiB, &st, NULL, NULL);
		bool hit = faultio_ops() >= at;
		faultio_uninstall();
		if (rc) {
			CHECK(rc == COW_ENOSPC || rc == COW_EIO);
			failures++;
		}
		/* Usable at once in the same handle, and whole after a reopen. */
		expect_all(NULL);
		cow_store_close(s);
		CHECK_OK(cow_store_open(path, NULL, &s));
		CHECK_OK(cow__store_check(s));
		expect_all(NULL);
		CHECK_OK(cow_store_compact(s, 0, &st, NULL, NULL));
		CHECK_LT(st.file_after, 12 * MiB);
		cow_store_close(s);
		s = NULL;
		if (!hit)
			break;
	}
	printf("errors: %ld compactions failed by an injected EIO or ENOSPC, each store whole\n",
	       failures);
	CHECK_GT(failures, 10);

	/*
	 * A damaged block the compaction would move (the last written: a
	 * clone's own block): COW_ECORRUPT; the steps before it stand, the one
	 * that met it is undone, and the damage stays where it was: that clone
	 * fails to read, everything else reads as before.
	 */
	copy_file(pristine, path);
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	struct stat fst;
	CHECK_EQ(fstat(fd, &fst), 0);
	uint8_t blk[4096];
	off_t at = -1;
	for (off_t off = fst.st_size - 4096; off >= 24 * MiB && at < 0; off -= 4096) {
		CHECK_EQ(pread(fd, blk, sizeof(blk), off), 4096);
		int c = 0;
		for (; c < NCLONES; c++) { /* the block of clone c's own data? */
			uint8_t want[4096];
			fill(want, sizeof(want), 100 + (uint32_t)c);
			if (memcmp(blk, want, sizeof(want)) == 0)
				break;
		}
		if (c < NCLONES)
			at = off;
	}
	CHECK_GE(at, 24 * MiB); /* past the aim: it will move */
	blk[100] ^= 1;
	CHECK_EQ(pwrite(fd, blk, sizeof(blk), at), 4096);
	close(fd);
	CHECK_OK(cow_store_open(path, NULL, &s));
	cow_compact_stats st;
	CHECK_RC(cow_store_compact(s, 0, &st, NULL, NULL), COW_ECORRUPT);
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, NULL, &s));
	int bad = 0;
	for (int c = 0; c < NCLONES; c++) {
		char name[16];
		snprintf(name, sizeof(name), "c%d", c);
		bad += !vol_is(NULL, name, 4 * MiB, 2, &over[c % 3], 1, 100 + (uint32_t)c);
	}
	CHECK_EQ(bad, 1);
	CHECK(vol_is(NULL, "v", 4 * MiB, 2, NULL, 0, 0));
	CHECK(vol_is(NULL, "v@s1", 4 * MiB, 2, NULL, 0, 0));
	cow_store_close(s);

	/* Read-only: refused before anything. */
	copy_file(pristine, path);
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_RDONLY}, &s));
	CHECK_RC(cow_store_compact(s, 0, &st, NULL, NULL), COW_EREADONLY);
	CHECK_RC(cow_store_compact(NULL, 0, &st, NULL, NULL), COW_EINVAL);
	CHECK_RC(cow_store_compact(s, 100, &st, NULL, NULL), COW_EINVAL);
	cow_store_close(s);
	s = NULL;
	unlink(pristine);
	CHECK_OK(cow_store_open(path, NULL, &s));
}

/*
 * No argument: everything. "threads": only the parts where other threads
 * read and write during a compaction (the set run under ThreadSanitizer,
 * where the power-loss sweeps would take many minutes and check nothing
 * more about threads).
 */
int main(int argc, char **argv)
{
	bool threads = argc > 1 && strcmp(argv[1], "threads") == 0;
	if (!threads) {
		test_shrinks();
		test_big_value();
	}
	test_reader();
	test_writer();
	if (!threads) {
		test_crash();
		test_errors();
	}
	cow_store_close(s);
	return 0;
}
