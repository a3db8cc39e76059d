/*
 * cowkit base: what every face shares. The library's version, small value
 * types, the allocation hook and the log hook.
 */
#ifndef COW_BASE_H
#define COW_BASE_H

#include <stddef.h>

#include "cow/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A byte string returned by cowkit: where it points and for how long, see each call. */
typedef struct cow_buf {
	const void *data;
	size_t len;
} cow_buf;

#define COW_VERSION_MAJOR 0
#define COW_VERSION_MINOR 1
#define COW_VERSION_PATCH 0

/* cow_version - the library's version as "MAJOR.MINOR.PATCH"; static string. */
COW_API const char *cow_version(void);

/*
 * The allocation hook. Every allocation the library makes goes through
 * realloc(ctx, ptr, size) with C realloc semantics: ptr == NULL allocates,
 * size == 0 frees ptr and returns NULL, otherwise resizes. Returning NULL for
 * a nonzero size means out of memory: the calling cowkit function then fails
 * with COW_ENOMEM and leaves its objects as they were.
 */
typedef struct cow_allocator {
	void *(*realloc)(void *ctx, void *ptr, size_t size);
	void *ctx;
} cow_allocator;

/*
 * cow_set_allocator - route the library's allocations through @a.
 *
 * @a: the hook; NULL restores the C library's realloc/free. The struct is
 *     copied.
 *
 * Not thread-safe: call it before any other cowkit call, or when no cowkit
 * object allocated under the previous hook is still alive (memory is freed
 * through the hook that is current at the time of the free).
 */
COW_API void cow_set_allocator(const cow_allocator *a);

/* Levels of a log message, most severe first. */
enum {
	COW_LOG_ERROR = 0, /* damage found, an I/O error, a cowkit bug */
	COW_LOG_WARN = 1,  /* misuse, a fallback taken, a repair made */
	COW_LOG_INFO = 2,  /* what a long operation did */
};

/* A log sink: @msg is one line without a newline, valid during the call. */
typedef void (*cow_log_fn)(void *ctx, int level, const char *msg);

/*
 * cow_set_log - send the library's diagnostics to @fn (with @ctx).
 *
 * @fn: the sink; NULL restores the default, which writes "cowkit: MSG" to
 *      stderr for COW_LOG_ERROR and COW_LOG_WARN, unless the environment
 *      variable COW_LOG is "off" when the first message is logged.
 *
 * The library never writes to stderr otherwise. @fn may be called from any
 * thread that calls into cowkit, concurrently; it must not call cowkit.
 * Not thread-safe itself: set it before other threads use cowkit.
 */
COW_API void cow_set_log(cow_log_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
