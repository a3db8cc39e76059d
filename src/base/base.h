/*
 * base: what every layer of the library stands on: allocation through the
 * one hook, error reporting, byte-order helpers, small utilities. Nothing
 * here knows about stores, memory regions or processes.
 */
#ifndef COW_BASE_INT_H
#define COW_BASE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cow/base.h"
#include "cow/errors.h"

/* Allocation. All library memory comes from here; see cow_set_allocator(). */
void *cow__malloc(size_t size);
void *cow__calloc(size_t n, size_t size);
void *cow__realloc(void *ptr, size_t size);
void cow__free(void *ptr);
char *cow__strdup(const char *s);
void *cow__memdup(const void *p, size_t size);

/*
 * Grow a dynamic array so it holds at least @need elements of @elem bytes.
 * *cap is updated; returns 0 or COW_ENOMEM with the array unchanged.
 */
int cow__grow(void **arr, size_t *cap, size_t need, size_t elem);

/*
 * One open-addressing hash map keyed by uint64_t, for every in-memory index
 * of the library (and its test shims): linear probing over a power-of-two
 * table at most half full, each entry a key and a value of a fixed size
 * chosen at init. Any key may be stored, 0 included. The caller owns the
 * struct (init/release); the table comes from cow__malloc, so allocation
 * failures are injected like any other. Not thread-safe. A pointer to a
 * value stays valid until the next put or delete on the map.
 */
struct cow__u64map {
	uint8_t *slots; /* cap + 1 entries of `stride` bytes, key then value; the last is key 0's */
	size_t cap;	/* 0 (nothing allocated) or a power of two >= 16 */
	size_t n;	/* keys held, key 0 included */
	size_t vsize;	/* bytes of a value */
	size_t stride;	/* bytes of an entry: 8 + vsize rounded up to 8 */
	unsigned shift; /* 64 - log2(cap): the hash is the top bits of key * golden ratio */
	bool has_zero;	/* key 0 is held (in the entry after the table) */
};

/* An empty map whose values are @vsize bytes (0 for a set). Allocates nothing. */
void cow__u64map_init(struct cow__u64map *m, size_t vsize);

/* Free the table; @m is empty (as after init) and may be used again. */
void cow__u64map_release(struct cow__u64map *m);

/* Remove every key, keeping the table. */
void cow__u64map_clear(struct cow__u64map *m);

/* Make room for @n keys in all, so that puts up to there cannot fail. 0 or COW_ENOMEM. */
int cow__u64map_reserve(struct cow__u64map *m, size_t n);

/*
 * Insert-or-find @key: *@val points to its value. Returns 1 when @key was
 * there already, 0 when it was inserted (value zeroed), COW_ENOMEM with the
 * map unchanged.
 */
int cow__u64map_put(struct cow__u64map *m, uint64_t key, void **val);

/* Remove @key, if held (true). Later entries of its probe run shift back: no tombstones. */
bool cow__u64map_del(struct cow__u64map *m, uint64_t key);

/*
 * Iterate: start with *@pos = 0; each call that returns true gives one key
 * and (when @val is not NULL) its value, in no particular order. The map
 * must not change during an iteration.
 */
bool cow__u64map_next(const struct cow__u64map *m, size_t *pos, uint64_t *key, void **val);

static inline size_t cow__u64map_count(const struct cow__u64map *m)
{
	return m->n;
}

static inline size_t cow__u64map_home(const struct cow__u64map *m, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> m->shift);
}

/* The value of @key, or NULL. Inline: it is on the write path. */
static inline void *cow__u64map_get(const struct cow__u64map *m, uint64_t key)
{
	if (key == 0)
		return m->has_zero ? m->slots + m->cap * m->stride + 8 : NULL;
	if (!m->cap)
		return NULL;
	for (size_t i = cow__u64map_home(m, key);; i = (i + 1) & (m->cap - 1)) {
		uint8_t *e = m->slots + i * m->stride;
		uint64_t k;
		memcpy(&k, e, sizeof(k));
		if (k == key)
			return e + 8;
		if (k == 0)
			return NULL;
	}
}

/*
 * Diagnostics, through the log hook (cow_set_log). The library is quiet
 * unless something is wrong: cow__log for warnings (misuse, a fallback, a
 * repair), cow__log_error for damage and failures.
 */
void cow__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cow__log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * COW_CORRUPT(blk, why): log where corruption was detected and evaluate to
 * COW_ECORRUPT, so call sites read `return COW_CORRUPT(b, "bad magic");`.
 */
#define COW_CORRUPT(blk, why) cow__corrupt(__FILE__, __LINE__, (uint64_t)(blk), (why))
int cow__corrupt(const char *file, int line, uint64_t blk, const char *why);

/* Little-endian fixed-width access for on-disk structures. */
static inline uint16_t cow__le16(const void *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}
static inline uint32_t cow__le32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}
static inline uint64_t cow__le64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}
static inline void cow__put16(void *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}
static inline void cow__put32(void *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}
static inline void cow__put64(void *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* Big-endian 64-bit keys sort the same as their numbers under memcmp. */
static inline void cow__put_be64(void *p, uint64_t v)
{
	v = __builtin_bswap64(v);
	memcpy(p, &v, sizeof(v));
}
static inline uint64_t cow__be64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return __builtin_bswap64(v);
}

#define COW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define COW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define COW_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Monotonic clock in nanoseconds. */
uint64_t cow__now_ns(void);

#endif
