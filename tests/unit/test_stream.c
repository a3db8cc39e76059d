/*
 * send/recv: full and incremental streams reproduce maps and volumes
 * exactly; incremental streams are as small as the change; every malformed,
 * truncated or mismatched stream is refused and leaves the store unchanged.
 * A bad stream is COW_ESTREAM, logged with its byte offset; bytes after a
 * stream's END (a second stream, garbage) are refused, nothing applied.
 */
#include <stdlib.h>
#include <unistd.h>

#include "base/base.h"
#include "check.h"
#include "memstream.h"
#include "store/store.h"

static cow_store *open_new(const char *name)
{
	cow_store *s;
	CHECK_OK(cow_store_open(check_path(name), &(cow_store_options){COW_STORE_CREATE}, &s));
	return s;
}

static struct mem send(cow_store *s, const char *snap, const char *base)
{
	struct mem m;
	CHECK_OK(mem_send(s, snap, base, &m));
	return m;
}

static int recv(cow_store *s, const char *name, struct mem *m)
{
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	m->pos = 0;
	int rc = cow_recv(t, name, mem_read, m, NULL, 0);
	if (rc == 0)
		return cow_txn_commit(t);
	cow_txn_abort(t);
	return rc;
}

/* Every key and value (maps) or every byte (volumes) of @a in @sa equals @b in @sb. */
static void same(cow_store *sa, const char *a, cow_store *sb, const char *b)
{
	cow_txn *ta, *tb;
	CHECK_OK(cow_txn_begin(sa, COW_TXN_RDONLY, &ta));
	CHECK_OK(cow_txn_begin(sb, COW_TXN_RDONLY, &tb));
	cow_obj_stats st;
	CHECK_OK(cow_obj_stat(ta, a, 0, &st));
	if (strcmp(st.type, "volume") == 0) {
		cow_vol *va, *vb;
		CHECK_OK(cow_vol_open(ta, a, &va));
		CHECK_OK(cow_vol_open(tb, b, &vb));
		CHECK_EQ(cow_vol_size(va), cow_vol_size(vb));
		static uint8_t x[1 << 16], y[1 << 16];
		for (uint64_t off = 0; off < cow_vol_size(va); off += sizeof(x)) {
			size_t n =
				(size_t)(cow_vol_size(va) - off < sizeof(x) ? cow_vol_size(va) - off
									    : sizeof(x));
			CHECK_OK(cow_vol_pread(va, x, n, off));
			CHECK_OK(cow_vol_pread(vb, y, n, off));
			CHECK(memcmp(x, y, n) == 0);
		}
	} else {
		cow_map *ma, *mb;
		CHECK_OK(cow_map_open(ta, a, &ma));
		CHECK_OK(cow_map_open(tb, b, &mb));
		CHECK_EQ(cow_map_count(ma), cow_map_count(mb));
		cow_cursor *ca, *cb;
		CHECK_OK(cow_cursor_open(ma, &ca));
		CHECK_OK(cow_cursor_open(mb, &cb));
		int ra = cow_cursor_first(ca), rb = cow_cursor_first(cb);
		while (ra == 0 && rb == 0) {
			cow_buf ka, va, kb, vb;
			CHECK_OK(cow_cursor_get(ca, &ka, &va));
			CHECK_OK(cow_cursor_get(cb, &kb, &vb));
			CHECK_EQ(ka.len, kb.len);
			CHECK(memcmp(ka.data, kb.data, ka.len) == 0);
			CHECK_EQ(va.len, vb.len);
			CHECK(memcmp(va.data, vb.data, va.len) == 0);
			ra = cow_cursor_next(ca);
			rb = cow_cursor_next(cb);
		}
		CHECK_EQ(ra, COW_ENOTFOUND);
		CHECK_EQ(rb, COW_ENOTFOUND);
	}
	cow_txn_abort(ta);
	cow_txn_abort(tb);
}

static uint64_t gen_of(cow_store *s)
{
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	return st.gen;
}

/* Neither @name nor any snapshot of it exists in @s. */
static void nothing_named(cow_store *s, const char *name)
{
	cow_txn *t;
	cow_obj_stats st;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_RC(cow_obj_stat(t, name, 0, &st), COW_ENOTFOUND);
	cow_txn_abort(t);
}

static char logbuf[4096];
static size_t loglen;

static void to_buf(void *ctx, int level, const char *msg)
{
	(void)ctx, (void)level;
	int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s\n", msg);
	if (n > 0)
		loglen = COW_MIN(sizeof(logbuf) - 1, loglen + (size_t)n);
}

/* recv @m into @s with the library's log captured (cow_set_log); what it logged (free it). */
static char *logged(cow_store *s, struct mem *m)
{
	loglen = 0;
	logbuf[0] = 0;
	cow_set_log(to_buf, NULL);
	CHECK_RC(recv(s, "m", m), COW_ESTREAM);
	cow_set_log(NULL, NULL);
	return strdup(logbuf);
}

int main(void)
{
	setenv("COW_LOG", "off", 1);
	cow_store *a = open_new("a.cow"), *b = open_new("b.cow");
	cow_txn *t;
	cow_map *m;
	cow_vol *v;
	static uint8_t big[300000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	CHECK_OK(cow_txn_begin(a, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_map_open(t, "m", &m));
	for (int i = 0; i < 20000; i++) {
		char k[32];
		snprintf(k, sizeof(k), "key%06d", i);
		CHECK_OK(cow_map_put(m, k, strlen(k), big + i, (size_t)(i % 300)));
	}
	CHECK_OK(cow_map_put(m, "large", 5, big, sizeof(big)));
	CHECK_OK(cow_vol_create(t, "v", (8 << 20) + 123));
	CHECK_OK(cow_vol_open(t, "v", &v));
	CHECK_OK(cow_vol_pwrite(v, big, sizeof(big), 4000));
	CHECK_OK(cow_vol_pwrite(v, big, 123, 8 << 20));
	CHECK_OK(cow_map_create(t, "small"));
	CHECK_OK(cow_map_open(t, "small", &m));
	for (int i = 0; i < 40; i++) {
		char k[32];
		snprintf(k, sizeof(k), "s%03d", i);
		CHECK_OK(cow_map_put(m, k, strlen(k), big + i, (size_t)(i * 3)));
	}
	CHECK_OK(cow_snapshot(t, "@one"));
	CHECK_OK(cow_txn_commit(t));

	CHECK_OK(cow_txn_begin(a, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_map_put(m, "key000100", 9, "changed", 7));
	CHECK_OK(cow_map_del(m, "key000200", 9));
	CHECK_OK(cow_map_put(m, "zzz", 3, "added", 5));
	CHECK_OK(cow_vol_open(t, "v", &v));
	CHECK_OK(cow_vol_pwrite(v, "hello", 5, 1 << 20));
	CHECK_OK(cow_vol_punch(v, 4096, 8192));
	CHECK_OK(cow_snapshot(t, "@two"));
	CHECK_OK(cow_txn_commit(t));

	/* Full, then incremental: each received snapshot equals its source. */
	struct mem mf = send(a, "m@one", NULL), mi = send(a, "m@two", "m@one");
	struct mem vf = send(a, "v@one", NULL), vi = send(a, "v@two", "v@one");
	printf("streams: map full %zu, incremental %zu bytes; volume full %zu, incremental %zu\n",
	       mf.n, mi.n, vf.n, vi.n);
	CHECK_LT(mi.n, 400);	  /* three changed keys */
	CHECK_LT(vi.n, 4 * 4200); /* a written block and a punched range */
	CHECK_OK(recv(b, "m", &mf));
	same(a, "m@one", b, "m@one");
	CHECK_OK(recv(b, "m", &mi));
	same(a, "m@two", b, "m@two");
	same(a, "m", b, "m");
	CHECK_OK(recv(b, "v", &vf));
	CHECK_OK(recv(b, "v", &vi));
	same(a, "v@two", b, "v@two");
	same(a, "v@one", b, "v@one");
	CHECK_OK(cow__store_check(b));

	/* Refusals, each leaving the store as it was. */
	uint64_t g = gen_of(b);
	CHECK_RC(recv(b, "m", &mi), COW_EEXIST); /* m@two exists already */
	CHECK_RC(recv(b, "m", &mf), COW_EEXIST);
	CHECK_RC(recv(b, "other", &mi), COW_EMISMATCH); /* no base */
	/* A base with the same name but another identity. */
	CHECK_OK(cow_txn_begin(b, 0, &t));
	CHECK_OK(cow_map_create(t, "fake"));
	CHECK_OK(cow_snapshot(t, "fake@one"));
	CHECK_OK(cow_txn_commit(t));
	g = gen_of(b);
	CHECK_RC(recv(b, "fake", &mi), COW_EMISMATCH);
	/* The target changed since its base. */
	cow_store *c = open_new("c.cow");
	CHECK_OK(recv(c, "m", &mf));
	CHECK_OK(cow_txn_begin(c, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_map_put(m, "local", 5, "edit", 4));
	CHECK_OK(cow_txn_commit(t));
	CHECK_RC(recv(c, "m", &mi), COW_EBUSY);
	CHECK_OK(cow_txn_begin(c, 0, &t));
	CHECK_OK(cow_rollback(t, "m@one"));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(recv(c, "m", &mi)); /* after a rollback it applies */
	same(a, "m", c, "m");

	/*
	 * Truncated at every length, or with any one byte flipped: refused as a
	 * bad stream (never as a corrupt store), each time leaving the store as
	 * it was: the same generation, no object created.
	 */
	cow_store *d = open_new("d.cow");
	uint64_t gd = gen_of(d);
	struct mem sm = send(a, "small@one", NULL);
	for (size_t cut = 1; cut < sm.n; cut++) {
		struct mem tr = sm;
		tr.limit = cut;
		CHECK_RC(recv(d, "m", &tr), COW_ESTREAM);
		CHECK_EQ(gen_of(d), gd);
	}
	cow_store *e = open_new("e.cow"); /* an incremental one, onto its base */
	CHECK_OK(recv(e, "m", &mf));
	uint64_t ge = gen_of(e);
	for (size_t cut = 1; cut < mi.n; cut++) {
		struct mem tr = mi;
		tr.limit = cut;
		CHECK_RC(recv(e, "m", &tr), COW_ESTREAM);
		CHECK_EQ(gen_of(e), ge);
	}
	same(a, "m@one", e, "m");
	CHECK_OK(recv(e, "m", &mi));
	same(a, "m@two", e, "m");
	cow_store_close(e);
	for (size_t cut = 1; cut < vf.n; cut += vf.n / 97 + 1) {
		struct mem tr = vf;
		tr.limit = cut;
		CHECK_RC(recv(d, "v", &tr), COW_ESTREAM);
	}
	CHECK_EQ(gen_of(d), gd);
	for (size_t i = 0; i < sm.n; i++) {
		sm.p[i] ^= 0x20;
		CHECK_RC(recv(d, "m", &sm), COW_ESTREAM);
		sm.p[i] ^= 0x20;
	}
	CHECK_EQ(gen_of(d), gd);
	nothing_named(d, "m");

	/*
	 * Bytes after END are an error, whatever they are: one byte, a block of
	 * zeros, or a whole second stream (`cat full inc | cow recv`). Nothing
	 * of the first stream is applied either.
	 */
	struct mem two = {0};
	CHECK_OK(mem_write(&two, mf.p, mf.n));
	CHECK_OK(mem_write(&two, mi.p, mi.n));
	CHECK_RC(recv(d, "m", &two), COW_ESTREAM);
	CHECK_EQ(gen_of(d), gd);
	nothing_named(d, "m");
	static const uint8_t zeros[4096];
	const struct {
		const void *p;
		size_t n;
	} tails[] = {{"x", 1}, {zeros, 1}, {zeros, sizeof(zeros)}, {sm.p, sm.n}};
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		struct mem tr = {0};
		CHECK_OK(mem_write(&tr, sm.p, sm.n));
		CHECK_OK(mem_write(&tr, tails[i].p, tails[i].n));
		CHECK_RC(recv(d, "m", &tr), COW_ESTREAM);
		CHECK_EQ(gen_of(d), gd);
		free(tr.p);
	}
	nothing_named(d, "m");
	CHECK_OK(cow__store_check(d));

	/* The log says what is wrong with the stream, and where. */
	struct mem tr = sm;
	tr.limit = sm.n - 3;
	char *log = logged(d, &tr);
	CHECK(strstr(log, "recv: stream: truncated record at byte ") != NULL);
	free(log);
	log = logged(d, &two);
	char want[80];
	snprintf(want, sizeof(want), "recv: stream: bytes after the END record at byte %zu", mf.n);
	CHECK(strstr(log, want) != NULL);
	CHECK(strstr(log, "corrupt") == NULL);
	free(log);
	free(two.p);
	CHECK_OK(recv(d, "m", &sm)); /* the intact stream still applies */
	same(a, "small@one", d, "m@one");
	free(sm.p);
	(void)g;
	free(mf.p);
	free(mi.p);
	free(vf.p);
	free(vi.p);
	cow_store_close(a);
	cow_store_close(b);
	cow_store_close(c);
	cow_store_close(d);
	return 0;
}
