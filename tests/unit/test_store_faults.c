/*
 * Fault sweeps: fail the N-th allocation, then the N-th I/O (EIO, ENOSPC;
 * once or from then on), for N = 1, 2, ... until the workload no longer
 * reaches the failure. Every failure must come back as an error (never a
 * crash), a transient one must leave the handle usable, and the store must
 * reopen consistent, holding either all of a transaction or none of it.
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "faultio.h"
#include "store/store.h"

#define NKEYS 3000

static uint8_t big[200000];

/* One write transaction: every key gets version @ver, plus one large value. */
static int write_version(cow_store *s, int ver)
{
	cow_txn *t;
	int rc = cow_txn_begin(s, 0, &t);
	if (rc)
		return rc;
	cow_map *m;
	rc = cow_map_open(t, "m", &m);
	if (rc == COW_ENOTFOUND) {
		rc = cow_map_create(t, "m");
		if (rc == 0)
			rc = cow_map_open(t, "m", &m);
	}
	for (int i = 0; i < NKEYS && rc == 0; i++) {
		char k[32], v[64];
		snprintf(k, sizeof(k), "key-%05d", i);
		int vl = snprintf(v, sizeof(v), "version-%d-of-key-%d", ver, i);
		rc = cow_map_put(m, k, strlen(k), v, (size_t)vl);
	}
	if (rc == 0) {
		memset(big, ver & 0xff, sizeof(big));
		rc = cow_map_put(m, "big", 3, big, sizeof(big));
	}
	if (rc == 0 && ver % 3 == 0) /* also delete some */
		for (int i = 0; i < NKEYS && rc == 0; i += 7) {
			char k[32];
			snprintf(k, sizeof(k), "key-%05d", i);
			rc = cow_map_del(m, k, strlen(k));
		}
	if (rc) {
		cow_txn_abort(t);
		return rc;
	}
	return cow_txn_commit(t);
}

/* Which version does the store hold? All keys must agree (atomicity). */
static int read_version(cow_store *s)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	cow_map *m;
	int rc = cow_map_open(t, "m", &m);
	if (rc == COW_ENOTFOUND) {
		cow_txn_abort(t);
		return -1;
	}
	CHECK_OK(rc);
	int ver = -2;
	for (int i = 0; i < NKEYS; i++) {
		char k[32];
		snprintf(k, sizeof(k), "key-%05d", i);
		cow_buf v;
		rc = cow_map_get(m, k, strlen(k), &v);
		if (rc == COW_ENOTFOUND)
			continue; /* deleted in a version divisible by 3 */
		CHECK_OK(rc);
		int kv = atoi((const char *)v.data + 8);
		if (ver == -2)
			ver = kv;
		CHECK_EQ(kv, ver);
	}
	cow_buf b;
	CHECK_OK(cow_map_get(m, "big", 3, &b));
	CHECK_EQ(b.len, sizeof(big));
	CHECK_EQ(((const uint8_t *)b.data)[0], ver & 0xff);
	CHECK_EQ(((const uint8_t *)b.data)[b.len - 1], ver & 0xff);
	cow_txn_abort(t);
	return ver;
}

static void reopen_and_check(const char *path, int *ver, int attempted)
{
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	CHECK_OK(cow__store_check(s));
	int v = read_version(s);
	if (v != *ver && v != attempted)
		check__fail(__FILE__, __LINE__, "store holds version %d, expected %d or %d", v, *ver,
			    attempted);
	*ver = v;
	cow_store_close(s);
}

static void sweep_alloc(const char *path)
{
	int ver = -1, n;
	for (n = 1;; n++) {
		bool persistent = n % 2 == 0;
		cow_store *s = NULL;
		check_alloc_fail_at(n, persistent);
		int rc = cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s);
		if (rc == 0)
			rc = write_version(s, n);
		if (rc && s && !persistent) /* transient: the same handle works again */
			CHECK_OK(write_version(s, n));
		long used = check_alloc_count();
		check_alloc_fail_at(0, 0);
		if (rc)
			CHECK(rc == COW_ENOMEM || rc == COW_ETXNERR);
		cow_store_close(s);
		reopen_and_check(path, &ver, n);
		if (rc == 0 && used < n)
			break;
	}
	cow_set_allocator(NULL);
	printf("allocation sweep: %d failure points\n", n);
}

static void sweep_io(const char *path, int err, bool persistent)
{
	int ver, n;
	{
		cow_store *s;
		CHECK_OK(cow_store_open(path, NULL, &s));
		ver = read_version(s);
		cow_store_close(s);
	}
	for (n = 1;; n++) {
		struct faultio_cfg fc = {.fail_at = n, .fail_errno = err, .persistent = persistent};
		faultio_install(&fc);
		cow_store *s = NULL;
		int attempted = 1000 + n;
		int rc = cow_store_open(path, NULL, &s);
		if (rc == 0)
			rc = write_version(s, attempted);
		if (rc)
			CHECK(rc == -err || rc == COW_ETXNERR);
		if (rc && s && !persistent) /* transient: the same handle works again */
			CHECK_OK(write_version(s, attempted));
		long ops = faultio_ops();
		cow_store_close(s);
		faultio_uninstall();
		reopen_and_check(path, &ver, attempted);
		if (rc == 0 && ops < n)
			break;
	}
	printf("I/O sweep (%s, %s): %d failure points\n", err == EIO ? "EIO" : "ENOSPC",
	       persistent ? "persistent" : "transient", n);
}

int main(void)
{
	setenv("COW_LOG", "off", 1);
	const char *path = check_path("faults.cow");
	sweep_alloc(path);
	sweep_io(path, EIO, false);
	sweep_io(path, EIO, true);
	sweep_io(path, ENOSPC, false);
	sweep_io(path, ENOSPC, true);
	return 0;
}
