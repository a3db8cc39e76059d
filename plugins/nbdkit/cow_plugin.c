/*
 * nbdkit-cow-plugin: serve a cowkit volume, snapshot or clone over NBD.
 *
 *	nbdkit cow store=STORE volume=NAME [readonly=true] [cache=SIZE]
 *
 * NAME may be a snapshot ("disk@monday"), which is served read-only. The
 * plugin uses only the public API (include/cow/store.h).
 *
 * Write-back cache. Writes between flushes collect in a cache in this
 * process (at most cache=SIZE bytes, 16 MiB by default, in 4 KiB blocks);
 * reads see them at once. The cache is applied to the volume in one write
 * transaction, and committed (durably: one fdatasync), when
 *
 *	- a client sends FLUSH, or a write, zero or trim with FUA;
 *	- a request would not fit in the cache: the cache is applied first,
 *	  so a request is never split across two commits;
 *	- a request is bigger than the cache, or zeroes or trims more than
 *	  ZERO_DIRECT bytes: cache and request go into one commit;
 *	- a client connects (so a size changed by `cow vol resize` is seen),
 *	  and when the last client disconnects or nbdkit exits.
 *
 * Invariants that follow:
 *
 *	(1) A write acknowledged before a FLUSH that succeeded, or with FUA,
 *	    is in a durable commit.
 *	(2) No request is torn: each is wholly in one commit or wholly in
 *	    a later one.
 *	(3) The store's writer lock is taken only while a commit is built and
 *	    flushed (apply()), never between requests. A `cow snapshot` or any
 *	    other writer in another process waits at most for one such commit:
 *	    at most cache=SIZE bytes of blocks, or one request of at most
 *	    BLOCK_MAX bytes plus that. nbdkit -v logs each commit's hold time.
 *	(4) Commits happen only at the points listed above, so a snapshot
 *	    taken from another process sees the volume as of an acknowledged
 *	    flush, unless the cache overflowed or a big zero/trim forced a
 *	    commit in between; then it sees the last flush plus some later
 *	    requests, each whole, as a disk with a write-back cache may leave
 *	    it after a power cut.
 *
 * Threads and connections. Every connection of this nbdkit process shares
 * one store handle, one cache and one read view, under one mutex, so the
 * thread model is PARALLEL (nbdkit reads the next request off the socket
 * while one runs) and multi-conn holds: a FLUSH on any connection commits the
 * writes of all, and a read on any connection sees writes acknowledged on
 * any. Two nbdkit processes must not serve one volume for writing: each
 * would apply its own cache over the other's writes.
 *
 * Reads go through a read transaction (lock-free, pinned to a generation)
 * that is renewed after each commit of ours and at each connect.
 */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cow/cow.h"
#include "cow/store.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

#define BLK 4096u
#define BLK_SHIFT 12
#define CACHE_DEFAULT (16u << 20)
#define BLOCK_MAX (32u << 20) /* the largest request we advertise */
/*
 * Zeroes and trims bigger than this skip the cache: a cached zero block
 * costs 4 KiB of memory, a punched range costs metadata only.
 */
#define ZERO_DIRECT (1u << 20)

static char *store_path;
static char *volume;
static bool readonly;
static uint64_t cache_bytes = CACHE_DEFAULT;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cow_store *store;
static cow_txn *view_txn; /* read view: reads and read-modify-write */
static cow_vol *view;
static unsigned connections;

/*
 * The cache: up to cap dirty blocks, each 4 KiB in data[], found by block
 * index through an open-addressing hash (slot + 1, 0 = empty). Cleared whole
 * after each commit, so entries are never deleted one by one.
 */
static struct {
	size_t cap, n;
	uint64_t *blk;  /* slot -> block index */
	uint8_t *zero;  /* slot -> the block is all zeros (written by zero/trim) */
	uint8_t *data;  /* cap blocks */
	uint32_t *hash; /* hmask + 1 entries */
	size_t hmask;
	size_t *order; /* scratch for apply(): slots sorted by block */
} cache;

static struct {
	uint64_t commits;
	double max_hold_ms;
} stats;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Report a cowkit error to nbdkit and the client; returns -1. */
static int fail(int rc, const char *what)
{
	nbdkit_error("cow: %s: %s", what, cow_strerror(rc));
	if (rc == COW_EREADONLY)
		errno = EROFS;
	else if (rc == COW_ENOTFOUND)
		errno = ENOENT;
	else if (rc < 0 && rc > -1000)
		errno = -rc; /* system codes are -errno */
	else
		errno = EIO;
	return -1;
}

/* ---- configuration ---- */

static int cow_config(const char *key, const char *value)
{
	if (strcmp(key, "store") == 0) {
		free(store_path);
		store_path = nbdkit_realpath(value);
		return store_path ? 0 : -1;
	} else if (strcmp(key, "volume") == 0) {
		free(volume);
		volume = strdup(value);
		return volume ? 0 : -1;
	} else if (strcmp(key, "readonly") == 0) {
		int r = nbdkit_parse_bool(value);
		if (r < 0)
			return -1;
		readonly = r;
		return 0;
	} else if (strcmp(key, "cache") == 0) {
		int64_t r = nbdkit_parse_size(value);
		if (r < 0)
			return -1;
		if (r < BLK || r > (INT64_C(1) << 34)) {
			nbdkit_error("cache=%s: between 4K and 16G", value);
			return -1;
		}
		cache_bytes = (uint64_t)r;
		return 0;
	}
	nbdkit_error("unknown parameter '%s'", key);
	return -1;
}

static int cow_config_complete(void)
{
	if (!store_path || !volume) {
		nbdkit_error("store=STORE and volume=NAME are required");
		return -1;
	}
	if (strchr(volume, '@'))
		readonly = true; /* a snapshot */
	return 0;
}

#define cow_config_help                                                                            \
	"store=<FILE>     (required) the cowkit store.\n"                                           \
	"volume=<NAME>    (required) a volume, clone or snapshot (NAME@SNAP, read-only).\n"      \
	"readonly=true    serve it read-only.\n"                                                    \
	"cache=<SIZE>     bytes of writes held between flushes (default 16M)."

/* Check the store and volume before nbdkit forks, so mistakes are reported. */
static int cow_get_ready(void)
{
	cow_store *s;
	int rc = cow_store_open(store_path, &(cow_store_options){.flags = COW_STORE_RDONLY}, &s);
	if (rc)
		return fail(rc, store_path);
	cow_txn *t;
	cow_vol *v;
	rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	if (rc == 0) {
		rc = cow_vol_open(t, volume, &v);
		cow_txn_abort(t);
	}
	cow_store_close(s);
	if (rc)
		return fail(rc, volume);
	return 0;
}

static int view_renew(void)
{
	cow_txn_abort(view_txn);
	view_txn = NULL;
	view = NULL;
	int rc = cow_txn_begin(store, COW_TXN_RDONLY, &view_txn);
	if (rc == 0 && (rc = cow_vol_open(view_txn, volume, &view))) {
		cow_txn_abort(view_txn);
		view_txn = NULL;
	}
	return rc ? fail(rc, volume) : 0;
}

/* Open the store after nbdkit forked into the background (if it does). */
static int cow_after_fork(void)
{
	int rc = cow_store_open(store_path,
				&(cow_store_options){.flags = readonly ? COW_STORE_RDONLY : 0}, &store);
	if (rc)
		return fail(rc, store_path);
	if (!readonly) {
		cache.cap = (size_t)(cache_bytes / BLK);
		size_t h = 1;
		while (h < 2 * cache.cap)
			h <<= 1;
		cache.hmask = h - 1;
		cache.blk = calloc(cache.cap, sizeof(*cache.blk));
		cache.zero = calloc(cache.cap, 1);
		cache.order = calloc(cache.cap, sizeof(*cache.order));
		cache.hash = calloc(h, sizeof(*cache.hash));
		cache.data = malloc(cache.cap * BLK);
		if (!cache.blk || !cache.zero || !cache.order || !cache.hash || !cache.data) {
			nbdkit_error("cow: no memory for a %" PRIu64 "-byte cache", cache_bytes);
			return -1;
		}
	}
	pthread_mutex_lock(&lock);
	rc = view_renew();
	pthread_mutex_unlock(&lock);
	return rc;
}

/* ---- the cache ---- */

static size_t hash_pos(uint64_t b)
{
	return (size_t)((b * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & cache.hmask;
}

static long cache_find(uint64_t b)
{
	for (size_t i = hash_pos(b);; i = (i + 1) & cache.hmask) {
		uint32_t e = cache.hash[i];
		if (e == 0)
			return -1;
		if (cache.blk[e - 1] == b)
			return (long)(e - 1);
	}
}

/* A new slot for block @b, which is not cached; the cache must have room. */
static size_t cache_add(uint64_t b)
{
	size_t slot = cache.n++;
	size_t i = hash_pos(b);
	while (cache.hash[i])
		i = (i + 1) & cache.hmask;
	cache.hash[i] = (uint32_t)(slot + 1);
	cache.blk[slot] = b;
	cache.zero[slot] = 0;
	return slot;
}

static void cache_clear(void)
{
	memset(cache.hash, 0, (cache.hmask + 1) * sizeof(*cache.hash));
	cache.n = 0;
}

static uint8_t *slot_data(size_t slot)
{
	return cache.data + slot * BLK;
}

/* Read block @b of the volume as committed into @dst (zeros past its end). */
static int base_read(uint64_t b, uint8_t *dst)
{
	uint64_t size = cow_vol_size(view), off = b << BLK_SHIFT;
	size_t n = off >= size ? 0 : (size_t)(size - off < BLK ? size - off : BLK);
	memset(dst + n, 0, BLK - n);
	int rc = n ? cow_vol_pread(view, dst, n, off) : 0;
	return rc ? fail(rc, "read") : 0;
}

enum { EXTRA_NONE, EXTRA_WRITE, EXTRA_PUNCH };

struct extra {
	int kind;
	const void *buf;
	uint64_t off, len;
};

static int by_block(const void *a, const void *b)
{
	uint64_t x = cache.blk[*(const size_t *)a], y = cache.blk[*(const size_t *)b];
	return x < y ? -1 : x > y;
}

/*
 * Apply the cache, then @x (may be NULL), to the volume in one write
 * transaction and commit it. The only place the writer lock is taken. On
 * failure nothing is committed and the cache is kept, so a later FLUSH may
 * retry.
 */
static int apply(const struct extra *x)
{
	if (cache.n == 0 && !x)
		return 0;
	double t0 = now_ms();
	cow_txn *t;
	cow_vol *v;
	int rc = cow_txn_begin(store, 0, &t);
	if (rc)
		return fail(rc, "begin");
	double t1 = now_ms();
	size_t n = cache.n;
	if ((rc = cow_vol_open(t, volume, &v)))
		goto out;
	for (size_t i = 0; i < n; i++)
		cache.order[i] = i;
	qsort(cache.order, n, sizeof(*cache.order), by_block);
	uint64_t size = cow_vol_size(v); /* may have shrunk under us: skip what is past it */
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t s = cache.order[i];
		uint64_t off = cache.blk[s] << BLK_SHIFT;
		if (off >= size)
			continue;
		size_t len = size - off < BLK ? (size_t)(size - off) : BLK;
		rc = cow_vol_pwrite(v, slot_data(s), len, off);
	}
	if (rc == 0 && x && x->kind == EXTRA_WRITE)
		rc = cow_vol_pwrite(v, x->buf, (size_t)x->len, x->off);
	else if (rc == 0 && x && x->kind == EXTRA_PUNCH)
		rc = cow_vol_punch(v, x->off, x->len);
out:
	if (rc) {
		cow_txn_abort(t);
		return fail(rc, "write");
	}
	rc = cow_txn_commit(t);
	if (rc)
		return fail(rc, "commit");
	double t2 = now_ms();
	stats.commits++;
	if (t2 - t1 > stats.max_hold_ms)
		stats.max_hold_ms = t2 - t1;
	nbdkit_debug("cow: commit %" PRIu64 ": %zu cached blocks%s, waited %.2f ms for the "
		     "lock, held it %.2f ms (max %.2f)",
		     stats.commits, n, x ? " + one request" : "", t1 - t0, t2 - t1,
		     stats.max_hold_ms);
	cache_clear();
	return view_renew();
}

/* Blocks that [off, off+len) touches. */
static uint64_t span(uint64_t off, uint64_t len)
{
	return len ? ((off + len - 1) >> BLK_SHIFT) - (off >> BLK_SHIFT) + 1 : 0;
}

/* ---- connections ---- */

struct conn {
	uint64_t size;
};

static void *cow_open(int ro)
{
	(void)ro;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		nbdkit_error("cow: out of memory");
		return NULL;
	}
	pthread_mutex_lock(&lock);
	/* Commit what is cached, then look again: the size may have changed. */
	int rc = readonly ? 0 : apply(NULL);
	if (rc == 0)
		rc = view_renew();
	if (rc == 0) {
		c->size = cow_vol_size(view);
		connections++;
	}
	pthread_mutex_unlock(&lock);
	if (rc) {
		free(c);
		return NULL;
	}
	return c;
}

static void cow_close(void *handle)
{
	pthread_mutex_lock(&lock);
	if (--connections == 0 && !readonly && cache.n)
		apply(NULL); /* nobody is left to hear of an error; nbdkit logs it */
	pthread_mutex_unlock(&lock);
	free(handle);
}

static void cow_unload(void)
{
	if (store) {
		if (!readonly && cache.n)
			apply(NULL);
		cow_txn_abort(view_txn);
		cow_store_close(store);
	}
	free(cache.blk);
	free(cache.zero);
	free(cache.order);
	free(cache.hash);
	free(cache.data);
	free(store_path);
	free(volume);
}

static int64_t cow_get_size(void *handle)
{
	return (int64_t)((struct conn *)handle)->size;
}

static int cow_can_write(void *handle)
{
	(void)handle;
	return !readonly;
}

static int cow_yes(void *handle)
{
	(void)handle;
	return 1;
}

static int cow_no(void *handle)
{
	(void)handle;
	return 0;
}

static int cow_can_fua(void *handle)
{
	(void)handle;
	return NBDKIT_FUA_NATIVE;
}

static int cow_can_cache(void *handle)
{
	(void)handle;
	return NBDKIT_CACHE_EMULATE; /* nbdkit reads the range: it lands in the page cache */
}

static int cow_block_size(void *handle, uint32_t *minimum, uint32_t *preferred,
			  uint32_t *maximum)
{
	(void)handle;
	*minimum = 1;
	*preferred = BLK;
	*maximum = BLOCK_MAX;
	return 0;
}

/* ---- data ---- */

static int cow_pread(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	(void)handle;
	(void)flags;
	int ret = 0;
	pthread_mutex_lock(&lock);
	int rc = cow_vol_pread(view, buf, count, offset);
	if (rc) {
		ret = fail(rc, "read");
		goto out;
	}
	if (cache.n == 0 || count == 0)
		goto out;
	uint64_t first = offset >> BLK_SHIFT, nb = span(offset, count);
	uint8_t *dst = buf;
	for (uint64_t i = 0; i < (nb <= cache.n ? nb : cache.n); i++) {
		/* Few blocks: look each up; many: walk the cache instead. */
		uint64_t b;
		long s;
		if (nb <= cache.n) {
			b = first + i;
			s = cache_find(b);
			if (s < 0)
				continue;
		} else {
			s = (long)i;
			b = cache.blk[s];
			if (b < first || b >= first + nb)
				continue;
		}
		uint64_t bs = b << BLK_SHIFT;
		uint64_t from = bs > offset ? bs : offset;
		uint64_t to = bs + BLK < offset + count ? bs + BLK : offset + count;
		memcpy(dst + (from - offset), slot_data((size_t)s) + (from - bs), to - from);
	}
out:
	pthread_mutex_unlock(&lock);
	return ret;
}

/*
 * Put [offset, offset+count) in the cache: @buf's bytes, or zeros when @buf
 * is NULL. The caller made room for span() blocks.
 */
static int cache_put(const void *buf, uint64_t count, uint64_t offset)
{
	const uint8_t *in = buf;
	while (count > 0) {
		uint64_t b = offset >> BLK_SHIFT, inb = offset & (BLK - 1);
		size_t n = count < BLK - inb ? (size_t)count : (size_t)(BLK - inb);
		long s = cache_find(b);
		if (s < 0) {
			s = (long)cache_add(b);
			if (n < BLK && base_read(b, slot_data((size_t)s))) {
				cache.n--; /* undo: the slot is the last one added */
				for (size_t i = hash_pos(b);; i = (i + 1) & cache.hmask)
					if (cache.hash[i] == (uint32_t)s + 1) {
						cache.hash[i] = 0; /* the last one probed: no gap after */
						break;
					}
				return -1;
			}
		}
		uint8_t *d = slot_data((size_t)s);
		if (in) {
			memcpy(d + inb, in, n);
			cache.zero[s] = 0;
			in += n;
		} else {
			memset(d + inb, 0, n);
			cache.zero[s] = n == BLK || cache.zero[s];
		}
		offset += n;
		count -= n;
	}
	return 0;
}

/* A write (@buf) or zero/trim (@buf NULL) request, cached or applied directly. */
static int request(const void *buf, uint64_t count, uint64_t offset, uint32_t flags)
{
	int ret = 0;
	pthread_mutex_lock(&lock);
	uint64_t need = span(offset, count);
	if (need > cache.cap || (!buf && count > ZERO_DIRECT)) {
		/* Too big for the cache: one commit for cache and request. */
		struct extra x = {buf ? EXTRA_WRITE : EXTRA_PUNCH, buf, offset, count};
		ret = apply(&x);
		goto out;
	}
	if (cache.n + need > cache.cap && (ret = apply(NULL)))
		goto out;
	if ((ret = cache_put(buf, count, offset)))
		goto out;
	if (flags & NBDKIT_FLAG_FUA)
		ret = apply(NULL);
out:
	pthread_mutex_unlock(&lock);
	return ret;
}

static int cow_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset,
		      uint32_t flags)
{
	(void)handle;
	return request(buf, count, offset, flags);
}

/* Zeroing is always fast (holes), so NBDKIT_FLAG_FAST_ZERO needs nothing. */
static int cow_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	(void)handle;
	return request(NULL, count, offset, flags);
}

/* Trimmed ranges read as zeros afterwards; whole blocks are freed. */
static int cow_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	(void)handle;
	return request(NULL, count, offset, flags);
}

static int cow_flush(void *handle, uint32_t flags)
{
	(void)handle;
	(void)flags;
	pthread_mutex_lock(&lock);
	int ret = apply(NULL);
	pthread_mutex_unlock(&lock);
	return ret;
}

/* ---- block status ---- */

#define RUNS_MAX 4096 /* a reply maps at most this many written runs; clients ask again */

struct runs {
	size_t n;
	uint64_t off[RUNS_MAX], len[RUNS_MAX];
};

static int add_run(void *ctx, uint64_t off, uint64_t len)
{
	struct runs *r = ctx;
	if (r->n == RUNS_MAX)
		return 1;
	r->off[r->n] = off;
	r->len[r->n] = len;
	r->n++;
	return 0;
}

static int by_value(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Cached block indices, in order, go in @cb (n of them); emit [a, z) of @type around them. */
static int emit(struct nbdkit_extents *e, uint64_t a, uint64_t z, uint32_t type,
		const uint64_t *cb, size_t n, size_t *ci)
{
	while (*ci < n && (cb[*ci] << BLK_SHIFT) < z) {
		uint64_t b = cb[*ci];
		long s = cache_find(b);
		uint64_t bs = b << BLK_SHIFT;
		uint64_t cs = bs > a ? bs : a, ce = bs + BLK < z ? bs + BLK : z;
		if (cs > a && nbdkit_add_extent(e, a, cs - a, type))
			return -1;
		uint32_t ct = cache.zero[s] ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0;
		if (ce > cs && nbdkit_add_extent(e, cs, ce - cs, ct))
			return -1;
		a = ce;
		if (bs + BLK > z)
			break; /* the block goes on into the next segment */
		(*ci)++;
	}
	if (z > a && nbdkit_add_extent(e, a, z - a, type))
		return -1;
	return 0;
}

static int cow_extents(void *handle, uint32_t count, uint64_t offset, uint32_t flags,
		       struct nbdkit_extents *e)
{
	(void)handle;
	int ret = 0;
	struct runs *r = malloc(sizeof(*r));
	uint64_t *cb = NULL;
	if (!r) {
		nbdkit_error("cow: out of memory");
		return -1;
	}
	r->n = 0;
	pthread_mutex_lock(&lock);
	uint64_t end = offset + count;
	if (flags & NBDKIT_FLAG_REQ_ONE) /* one extent is enough: don't walk far */
		end = offset + (count < (64u << 20) ? count : (64u << 20));
	int rc = cow_vol_extents(view, offset, end - offset, add_run, r);
	if (rc < 0) {
		ret = fail(rc, "extents");
		goto out;
	}
	if (rc == 1) /* RUNS_MAX reached: answer up to the last run */
		end = r->off[r->n - 1] + r->len[r->n - 1];
	/* Cached blocks in the range, sorted. */
	size_t n = 0, ci = 0;
	if (cache.n) {
		cb = malloc(cache.n * sizeof(*cb));
		if (!cb) {
			nbdkit_error("cow: out of memory");
			ret = -1;
			goto out;
		}
		for (size_t s = 0; s < cache.n; s++) {
			uint64_t bs = cache.blk[s] << BLK_SHIFT;
			if (bs + BLK > offset && bs < end)
				cb[n++] = cache.blk[s];
		}
		qsort(cb, n, sizeof(*cb), by_value);
	}
	const uint32_t hole = NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
	uint64_t pos = offset;
	for (size_t i = 0; i < r->n && ret == 0; i++) {
		if (r->off[i] > pos)
			ret = emit(e, pos, r->off[i], hole, cb, n, &ci);
		if (ret == 0)
			ret = emit(e, r->off[i], r->off[i] + r->len[i], 0, cb, n, &ci);
		pos = r->off[i] + r->len[i];
	}
	if (ret == 0 && end > pos)
		ret = emit(e, pos, end, hole, cb, n, &ci);
out:
	pthread_mutex_unlock(&lock);
	free(cb);
	free(r);
	return ret;
}

static struct nbdkit_plugin plugin = {
	.name = "cow",
	.longname = "cowkit volume plugin",
	.version = "0.1.0",
	.description = "Serve a cowkit volume, snapshot or clone.",
	.config = cow_config,
	.config_complete = cow_config_complete,
	.config_help = cow_config_help,
	.magic_config_key = "volume",
	.get_ready = cow_get_ready,
	.after_fork = cow_after_fork,
	.unload = cow_unload,
	.open = cow_open,
	.close = cow_close,
	.get_size = cow_get_size,
	.block_size = cow_block_size,
	.can_write = cow_can_write,
	.can_flush = cow_yes,
	.is_rotational = cow_no,
	.can_trim = cow_yes,
	.can_zero = cow_yes,
	.can_fast_zero = cow_yes,
	.can_fua = cow_can_fua,
	.can_multi_conn = cow_yes,
	.can_extents = cow_yes,
	.can_cache = cow_can_cache,
	.pread = cow_pread,
	.pwrite = cow_pwrite,
	.zero = cow_zero,
	.trim = cow_trim,
	.flush = cow_flush,
	.extents = cow_extents,
	.errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
