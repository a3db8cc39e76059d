/*
 * Fuzz target: a byte stream given to cow_recv. The receiving store holds
 * map "m" and volume "v" with base snapshots NAME@base (fixed identity, see
 * recv_common.h); a full stream is received as a new object, an incremental
 * one into the object of its type. Whatever the bytes, recv must return 0 or
 * a documented refusal, never crash, hang or leak; an accepted stream's
 * object is then read back whole. The transaction is always aborted, so every
 * input meets the same store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "recv_common.h"

static cow_store *s;

struct src {
	const uint8_t *p;
	size_t n, pos;
};

static int src_read(void *ctx, void *buf, size_t len)
{
	struct src *r = ctx;
	size_t k = r->n - r->pos < len ? r->n - r->pos : len;
	memcpy(buf, r->p + r->pos, k);
	r->pos += k;
	return (int)k;
}

static void setup(void)
{
	char dir[] = "/tmp/cowfuzzrecv.XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char path[64];
	snprintf(path, sizeof(path), "%s/r.cow", dir);
	setenv("COW_LOG", "off", 1);
	cow_txn *t;
	if (cow_store_open(path, &(cow_store_options){COW_STORE_CREATE | COW_STORE_NOSYNC}, &s) ||
	    cow_txn_begin(s, 0, &t) || recv_make_base(t) || cow_txn_commit(t))
		abort();
}

static void read_back(cow_txn *t, const char *name)
{
	cow_obj_stats st;
	if (cow_obj_stat(t, name, 0, &st))
		abort();
	if (strcmp(st.type, "map") == 0) {
		cow_map *m;
		cow_cursor *c;
		if (cow_map_open(t, name, &m) || cow_cursor_open(m, &c))
			abort();
		for (int rc = cow_cursor_first(c); rc != COW_ENOTFOUND; rc = cow_cursor_next(c)) {
			cow_buf k, v;
			if (rc || cow_cursor_get(c, &k, &v))
				abort();
		}
	} else {
		cow_vol *v;
		static uint8_t buf[1 << 16];
		if (cow_vol_open(t, name, &v))
			abort();
		uint64_t size = cow_vol_size(v), lim = size < (8u << 20) ? size : (8u << 20);
		for (uint64_t off = 0; off < lim; off += sizeof(buf)) {
			size_t n = (size_t)(lim - off < sizeof(buf) ? lim - off : sizeof(buf));
			if (cow_vol_pread(v, buf, n, off))
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!s)
		setup();
	/* Byte 16 of a stream is its object type: pick the target that fits. */
	const char *name = "new";
	if (size > 16 && (data[12] & 1))
		name = data[16] == 2 ? "v" : "m";
	cow_txn *t;
	if (cow_txn_begin(s, 0, &t))
		abort();
	struct src r = {data, size, 0};
	char snap[600];
	int rc = cow_recv(t, name, src_read, &r, snap, sizeof(snap));
	if (getenv("COW_FUZZ_VERBOSE"))
		fprintf(stderr, "recv into %s: %s\n", name, cow_errname(rc));
	if (rc == 0)
		read_back(t, snap);
	else if (rc != COW_ESTREAM && rc != COW_EMISMATCH && rc != COW_EEXIST && rc != COW_EBUSY &&
		 rc != COW_ETOOBIG && rc != COW_ENOMEM)
		abort();
	cow_txn_abort(t);
	return 0;
}
