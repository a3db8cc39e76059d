/*
 * kv: a small RESP key-value server whose data lives in one cowkit region.
 *
 * Three parts, one file each:
 *   heap.c    the data: a position-independent heap inside the region (a
 *             header page, a size-class allocator, a chained hash table),
 *             addressed by offsets from the region's base, so an image of
 *             the region restores at any address;
 *   resp.c    the protocol: an incremental RESP request parser with hard
 *             limits, and reply builders;
 *   kv.c      the server: an epoll loop, the commands, BGSAVE as a forkless
 *             snapshot of the heap and restart by lazy restore of the image.
 *
 * Only the event loop's thread touches the heap. Socket reads and replies
 * go through buffers outside the region, so no system call ever writes into
 * snapshotted memory (which the in-thread backends could not allow).
 */
#ifndef KV_H
#define KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- heap.c ---- */

#define KV_MAGIC     "cowkv\0i1"
#define KV_VERSION   1
#define KV_CLASSES   56			    /* 16, 24, 32, 48, ... 2 GiB */
#define KV_MAX_CHUNK (16ull << 27)	    /* the largest class */
#define KV_HDR_SIZE  4096ull		    /* the header page at offset 0 */
#define KV_MAX_BULK  (512ull * 1024 * 1024) /* longest key or value, as Redis */

/*
 * The header at offset 0 of the region. Everything the image needs to be
 * used again is here or reachable from here by offsets; 0 means "none"
 * (offset 0 is the header itself, never a chunk).
 */
struct kv_hdr {
	char magic[8];
	uint64_t version;
	uint64_t top;		   /* bump pointer: bytes of the region handed out */
	uint64_t used;		   /* bytes in live chunks (class sizes) */
	uint64_t count;		   /* keys */
	uint64_t table;		   /* offset of the bucket array (uint64_t offsets) */
	uint64_t nbuckets;	   /* a power of two */
	int64_t save_time;	   /* unix time of the instant this image was taken */
	uint64_t free[KV_CLASSES]; /* free-list heads, one per size class */
};

/* A key and its value; the key's bytes follow the entry in the same chunk. */
struct kv_entry {
	uint64_t next;	/* next entry in the bucket, or 0 */
	uint64_t hash;	/* full hash of the key */
	uint64_t val;	/* offset of the value's chunk */
	uint32_t vlen;	/* value bytes */
	uint32_t klen;	/* key bytes */
	uint8_t vclass; /* size class of the value's chunk */
	uint8_t kclass; /* size class of this entry's chunk */
	char key[];
};

struct kv_heap {
	char *base;	    /* the region */
	uint64_t limit;	    /* bytes reserved at base: the most top may reach */
	struct kv_hdr *hdr; /* == (struct kv_hdr *)base */
};

/* Format an empty heap in fresh (zeroed) memory. 0 or -ENOMEM. */
int kv_heap_format(struct kv_heap *h, char *base, uint64_t limit);
/*
 * Adopt an image of @len bytes at @base (checks the header only: an image
 * is trusted once its header is, since the server renames it into place
 * only once complete and synced). 0 or -EINVAL with *why set.
 */
int kv_heap_adopt(struct kv_heap *h, char *base, uint64_t limit, uint64_t len, const char **why);
/* Check a header read from an image file of @len bytes. 0 or -EINVAL, *why. */
int kv_heap_check_hdr(const struct kv_hdr *hdr, uint64_t len, uint64_t limit, const char **why);

static inline void *kv_ptr(const struct kv_heap *h, uint64_t off)
{
	return h->base + off;
}

struct kv_entry *kv_find(struct kv_heap *h, const void *key, size_t klen);
/* The value of @e (vlen bytes). */
static inline const char *kv_value(const struct kv_heap *h, const struct kv_entry *e)
{
	return h->base + e->val;
}
/*
 * Set @key to @val. A value that keeps its size class is overwritten in
 * place (so an overwrite during a snapshot costs at most the pages it
 * writes, and no new memory). @created tells if the key is new.
 * 0 or -ENOMEM (nothing changed).
 */
int kv_set(struct kv_heap *h, const void *key, size_t klen, const void *val, size_t vlen,
	   bool *created);
/* Delete @key: 1 if it existed, else 0. */
int kv_del(struct kv_heap *h, const void *key, size_t klen);
/* Drop every key (the memory goes back to the free lists of a fresh heap). */
int kv_flush(struct kv_heap *h);

/* ---- resp.c ---- */

/* Hard limits on requests; beyond them the request is a protocol error. */
#define KV_MAX_ARGS  (1024 * 1024)
#define KV_MAX_QUERY (1024ull * 1024 * 1024 + 64 * 1024) /* one client's unparsed input */

struct kv_arg {
	const char *p;
	size_t len;
};

struct kv_req {
	struct kv_arg *argv; /* points into the client's input buffer */
	size_t argc;
	size_t cap;  /* argv slots allocated */
	size_t want; /* bytes the input must hold for the request in progress (a hint) */
};

enum kv_parse {
	KV_PARSE_OK = 0,    /* a request: req->argv, consumed bytes in *used */
	KV_PARSE_MORE = 1,  /* incomplete; req->want says how much input is needed */
	KV_PARSE_ERROR = 2, /* malformed: *err says why (a RESP error line, no CRLF) */
};

/*
 * Parse one request (a RESP array of bulk strings, or an inline command)
 * from @buf[0..len). Never reads past @len, never trusts a length before
 * checking it against the limits above.
 */
enum kv_parse kv_parse(const char *buf, size_t len, struct kv_req *req, size_t *used,
		       const char **err);

/* A growable output buffer (outside the region). */
struct kv_out {
	char *p;
	size_t len, off, cap;
	bool oom; /* an append failed: the connection is closed */
};

void kv_out_raw(struct kv_out *o, const void *p, size_t n);
void kv_out_status(struct kv_out *o, const char *s); /* +s */
void kv_out_error(struct kv_out *o, const char *s);  /* -s (s starts with ERR, OOM...) */
void kv_out_errorf(struct kv_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kv_out_int(struct kv_out *o, long long v);		     /* :v */
void kv_out_bulk(struct kv_out *o, const void *p, size_t n); /* $n p */
void kv_out_null(struct kv_out *o);			     /* $-1 */
void kv_out_array(struct kv_out *o, long long n);	     /* *n */

/* Strict decimal int64 (what INCR and SELECT accept): true if @p[0..n) is one. */
bool kv_parse_ll(const char *p, size_t n, long long *out);

#endif
