/*
 * Full disks and damaged file sizes.
 *
 * 1. A loop of commits, each adding new keys (some with multi-block values)
 *    so the file keeps growing, under the faultio shim: in most rounds the
 *    first (or second) growth of the file fails with ENOSPC after
 *    growing it part-way, to a size that is not a multiple of 4096 (what
 *    fallocate does on a full ext4 with 1 KiB blocks), once or from then on.
 *    A failed round must fail with COW_ENOSPC (from a put or the commit);
 *    then the same handle must commit again once space is back, every so
 *    often the store is closed and reopened through its odd-sized file, and
 *    at the end every acknowledged commit is there and the checker passes.
 *    A growth that failed is retried by the next round, at another point of
 *    another transaction (a value's extent, a node, the space-map record).
 * 2. A store with a tail that is not a whole block opens, read-only and
 *    read-write, with every key; a write commits and the store checks out.
 * 3. A store truncated below what its superblock needs, or with both
 *    superblocks damaged, is COW_ECORRUPT, not COW_EFORMAT.
 *
 *   unit_full_disk [ROUNDS]   (default 200; COW_SEED=n replays a run)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "faultio.h"
#include "store/store.h"

#define MAXKEYS 40000

static uint64_t seed;
static uint8_t vbuf[30000];
static int ver[MAXKEYS]; /* acknowledged version of key i, 0 = absent */
static int nkeys;

static size_t key_make(int j, char *out)
{
	return (size_t)snprintf(out, 32, "key-%06d", j);
}

static size_t val_make(int j, int v, uint8_t *out)
{
	uint64_t s = (seed ^ ((uint64_t)j << 24) ^ (uint64_t)v) * 0x9E3779B97F4A7C15ull | 1;
	size_t len = j % 9 == 4 ? 4097 + (size_t)(s % 20000) : 1 + (size_t)(s % 700);
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(check_rand(&s) >> 56);
	return len;
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	CHECK_EQ(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void verify(cow_store *s)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	cow_map *m;
	CHECK_OK(cow_map_open(t, "m", &m));
	uint64_t n = 0;
	for (int j = 0; j < nkeys + 64 && j < MAXKEYS; j++) {
		char key[32];
		size_t klen = key_make(j, key);
		cow_buf v;
		int rc = cow_map_get(m, key, klen, &v);
		if (!ver[j]) {
			CHECK_RC(rc, COW_ENOTFOUND);
			continue;
		}
		CHECK_OK(rc);
		size_t len = val_make(j, ver[j], vbuf);
		CHECK_EQ(v.len, len);
		CHECK_MEMEQ(v.data, vbuf, len);
		n++;
	}
	CHECK_EQ(cow_map_count(m), n);
	CHECK_OK(cow_txn_commit(t));
}

/* One transaction putting keys nkeys .. nkeys + @n - 1 at version @v. */
static int round_txn(cow_store *s, int n, int v, bool *saw_enospc)
{
	cow_txn *t;
	int rc = cow_txn_begin(s, 0, &t);
	if (rc)
		return rc;
	cow_map *m;
	rc = cow_map_open(t, "m", &m);
	for (int j = nkeys; rc == 0 && j < nkeys + n; j++) {
		char key[32];
		size_t klen = key_make(j, key), len = val_make(j, v, vbuf);
		rc = cow_map_put(m, key, klen, vbuf, len);
	}
	if (rc) {
		*saw_enospc = rc == COW_ENOSPC;
		cow_txn_abort(t);
		return rc;
	}
	rc = cow_txn_commit(t);
	*saw_enospc = rc == COW_ENOSPC;
	if (rc == 0) {
		for (int j = nkeys; j < nkeys + n; j++)
			ver[j] = v;
		nkeys += n;
	}
	return rc;
}

static void full_disk_loop(const char *path, long rounds)
{
	uint64_t rng = seed | 1;
	faultio_install(&(struct faultio_cfg){0});
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_CREATE}, &s));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_txn_commit(t));
	int failed = 0, odd = 0, reopened = 0;
	for (long r = 1; r <= rounds && nkeys < MAXKEYS - 400; r++) {
		struct faultio_cfg cfg = {0};
		if (check_rand(&rng) % 4) {
			cfg.fail_grow_at = check_rand(&rng) % 8 ? 1 : 2;
			cfg.fail_errno = ENOSPC;
			cfg.persistent = check_rand(&rng) & 1;
			cfg.grow_partial = true;
		}
		faultio_install(&cfg);
		int n = 10 + (int)(check_rand(&rng) % 300);
		bool enospc = false;
		int rc = round_txn(s, n, (int)r, &enospc);
		if (rc) {
			if (!enospc)
				check__fail(__FILE__, __LINE__,
					    "round %ld: %s, expected COW_ENOSPC", r,
					    cow_errname(rc));
			failed++;
			odd += file_size(path) % 4096 != 0;
		}
		/* Space is back: the same handle commits. */
		faultio_install(&(struct faultio_cfg){0});
		if (rc)
			CHECK_OK(round_txn(s, 1 + (int)(r % 5), (int)r + 100000, &enospc));
		if (r % 10 == 0) {
			CHECK_OK(cow__store_check(s));
			cow_store_close(s);
			CHECK_OK(cow_store_open(path, NULL, &s));
			verify(s);
			reopened++;
		}
	}
	cow_store_close(s);
	faultio_uninstall();
	printf("%d keys acknowledged; %d rounds failed with ENOSPC (%d leaving an odd-sized file); "
	       "%d reopens\n",
	       nkeys, failed, odd, reopened);
	CHECK_GT(failed, 0);
	CHECK_GT(odd, 0);
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_RDONLY}, &s));
	verify(s);
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, NULL, &s));
	verify(s);
	CHECK_OK(cow__store_check(s));
	cow_fsck_report rep;
	CHECK_OK(cow_store_fsck(s, 0, NULL, NULL, &rep, NULL, NULL));
	cow_store_close(s);
}

static void append(const char *path, size_t n, int byte)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	CHECK_GE(fd, 0);
	memset(vbuf, byte, n);
	CHECK_EQ(write(fd, vbuf, n), (long long)n);
	CHECK_EQ(close(fd), 0);
}

static void odd_tail(const char *path)
{
	append(path, 1000, 0x5a);
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_RDONLY}, &s));
	verify(s);
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, NULL, &s));
	verify(s);
	bool enospc;
	CHECK_OK(round_txn(s, 50, 7777777, &enospc)); /* grows from the odd size */
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
	CHECK_OK(cow_store_open(path, NULL, &s));
	verify(s);
	cow_store_close(s);
}

static void damaged_sizes(const char *path)
{
	/* Truncated below what the superblock's nblocks needs, odd tail and all. */
	uint64_t size = file_size(path);
	CHECK_EQ(truncate(path, (off_t)(size / 2 + 1000)), 0);
	cow_store *s;
	CHECK_RC(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_RDONLY}, &s),
		 COW_ECORRUPT);
	CHECK_RC(cow_store_open(path, NULL, &s), COW_ECORRUPT);
	/* Both superblocks damaged. */
	int fd = open(path, O_RDWR);
	CHECK_GE(fd, 0);
	for (int i = 0; i < 2; i++) {
		uint8_t c;
		CHECK_EQ(pread(fd, &c, 1, i * 4096 + 200), 1);
		c ^= 1;
		CHECK_EQ(pwrite(fd, &c, 1, i * 4096 + 200), 1);
	}
	CHECK_EQ(close(fd), 0);
	CHECK_RC(cow_store_open(path, &(cow_store_options){.flags = COW_STORE_RDONLY}, &s),
		 COW_ECORRUPT);
	CHECK_RC(cow_store_open(path, NULL, &s), COW_ECORRUPT);
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 200;
	setenv("COW_LOG", "off", 0);
	seed = check_seed();
	char path[4096];
	snprintf(path, sizeof(path), "%s", check_path("full.cow"));
	full_disk_loop(path, rounds);
	odd_tail(path);
	damaged_sizes(path);
	printf("ok (seed %llu)\n", (unsigned long long)seed);
	return 0;
}
