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
