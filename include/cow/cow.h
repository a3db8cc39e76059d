/*
 * cowkit: copy-on-write for C programs and the people who run them.
 *
 * This umbrella header includes every face of the library:
 *   cow/errors.h  error codes and cow_strerror()
 *   cow/store.h   the crash-proof store (maps, volumes, snapshots, clones)
 *   cow/mem.h     live memory: forkless snapshots, checkpoints, lazy restore
 *   cow/share.h   what a process family shares after fork()
 *   cow/rcu.h     RCU-published copy-on-write objects
 *
 * and declares the process-wide settings below.
 */
#ifndef COW_COW_H
#define COW_COW_H

#include <stddef.h>

#include "cow/visibility.h"
#include "cow/errors.h"
#include "cow/store.h"
#include "cow/mem.h"
#include "cow/share.h"
#include "cow/rcu.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif
