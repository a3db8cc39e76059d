/*
 * cow/rcu.h: RCU-published copy-on-write objects.
 *
 * A cow_rcu holds one small object that many threads read and few change,
 * like Linux's struct cred. Readers never lock and never write to shared
 * memory beyond their own read-side counter: they enter a read-side section,
 * take the current version and use it until they leave. An updater never
 * changes a version in place: it takes a private copy, changes the copy and
 * publishes it with one atomic pointer store, so a reader sees either the
 * whole old version or the whole new one, never a mix. The old version is
 * freed after a grace period (once every reader that could hold it has left
 * its section) by a background reclaimer, so updaters do not wait for
 * readers unless they ask to (COW_RCU_WAIT).
 *
 * Grace periods come from liburcu's "bulletproof" flavour (urcu-bp): a
 * thread registers itself on its first read-side section, so any thread may
 * read without calling anything first. See docs/rcu.md for why this flavour.
 *
 * Calling sequence, reader (any thread, any number at once):
 *
 *	cow_rcu_read_lock();
 *	const struct creds *c = cow_rcu_deref(r);
 *	... use *c; do not keep the pointer past the unlock ...
 *	cow_rcu_read_unlock();
 *
 * Calling sequence, updater (prepare_creds / commit_creds / abort_creds):
 *
 *	struct creds *n;
 *	if (cow_rcu_update_begin(r, (void **)&n) == 0) {   // n: private copy
 *		n->uid = 1000;
 *		cow_rcu_update_commit(r, n, 0);            // publish; old freed later
 *	}
 *
 * COW_RCU_DEFINE(name, type) below generates typed wrappers so callers do
 * not cast.
 *
 * Concurrency (same cow_rcu; "yes" = may run at the same time):
 *
 *	                 | deref (reader) | update_begin..commit | destroy
 *	-----------------+----------------+----------------------+--------
 *	deref (reader)   | yes            | yes                  | no
 *	update_begin..   | yes            | no: serialized (*)   | no
 *	destroy          | no             | no                   | no
 *
 *	(*) update_begin takes the object's update lock; a second updater
 *	    blocks in update_begin until the first commits or aborts.
 *
 * Different cow_rcu objects are independent, except that they share one
 * reclaimer and one grace-period domain.
 *
 * Rules:
 *  - A pointer from cow_rcu_deref() is valid only until the matching
 *    cow_rcu_read_unlock(). Sections nest. Do not block, sleep or wait for a
 *    grace period (update with COW_RCU_WAIT, cow_rcu_synchronize,
 *    cow_rcu_barrier, destroy) inside a section: that deadlocks.
 *  - Read-side sections are cheap (no atomic read-modify-write, no lock) but
 *    not free: keep them short, a long section holds back every reclaim.
 *  - Versions are read-only for readers. Mutating a published version is a
 *    data race; copy instead.
 *  - fork(): cowkit registers pthread_atfork handlers, so a child may keep
 *    using cow_rcu objects it inherited, from any thread. Versions whose
 *    reclaim was in flight at the instant of the fork are leaked in the
 *    child (never freed there), which is safe. Do not fork inside a
 *    read-side section: the fork handler waits for a grace period in
 *    progress, which waits for that section.
 *  - Signal handlers must not call these functions.
 */
#ifndef COW_RCU_H
#define COW_RCU_H

#include <stddef.h>

#include "cow/errors.h"
#include "cow/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An RCU-published object (opaque). */
typedef struct cow_rcu cow_rcu;

/*
 * How versions of one object are made and unmade. Every callback gets @ctx.
 */
typedef struct cow_rcu_ops {
	size_t size; /* bytes in one version; > 0; versions are aligned like max_align_t */
	/*
	 * Fill @dst (size bytes, uninitialized) from @src for a new version.
	 * NULL means memcpy. Runs in the updater, under the update lock; return
	 * 0 or a negative COW_E* code, which update_begin passes on. A copy
	 * hook is where a version takes its own reference to data it shares
	 * with others (Linux: get_group_info() in prepare_creds()).
	 */
	int (*copy)(void *dst, const void *src, void *ctx);
	/*
	 * Drop what version @obj refers to, just before its memory is freed.
	 * NULL means nothing to drop. Runs after a grace period, in the
	 * reclaimer thread (or in the updater with COW_RCU_WAIT, or in
	 * cow_rcu_destroy, or cow_rcu_update_abort for an unpublished copy).
	 * Must not block on cow_rcu calls that wait for grace periods.
	 */
	void (*release)(void *obj, void *ctx);
	void *ctx;
} cow_rcu_ops;

/* Flags for cow_rcu_update_commit(). */
enum {
	/*
	 * Wait for a grace period and free the old version before returning,
	 * instead of handing it to the reclaimer. Slower (the updater waits
	 * for every reader in a section), but memory is back when it returns.
	 */
	COW_RCU_WAIT = 1u << 0,
};

/*
 * cow_rcu_create - make an object whose first version is a copy of @init.
 *
 * @ops:  how versions are copied and released; copied into the object.
 * @init: ops->size bytes copied (through ops->copy if set) into version 1.
 * @out:  receives the object; unchanged on error.
 *
 * Returns 0, COW_EINVAL (a NULL argument or ops->size == 0), COW_ENOMEM
 * (also when the fork handlers cannot be registered), or an error from
 * ops->copy. Any thread; the new object is not yet shared, so publish the
 * cow_rcu pointer to other threads by the usual means (mutex, thread start).
 *
 * The reclaimer thread starts on the first update of any object (a program
 * that only reads gets no thread); if it cannot start, updaters free old
 * versions themselves after a grace period, as with COW_RCU_WAIT.
 */
COW_API int cow_rcu_create(const cow_rcu_ops *ops, const void *init, cow_rcu **out);

/*
 * cow_rcu_destroy - free an object and its current version.
 *
 * Waits for a grace period (readers still in a section that took a version
 * of @r finish first), releases the current version, and waits until every
 * older version of @r handed to the reclaimer has been released, so no
 * ops callback of @r runs after it returns. NULL is accepted.
 *
 * No other thread may use @r once destroy has begun. Must not be called
 * inside a read-side section.
 */
COW_API void cow_rcu_destroy(cow_rcu *r);

/*
 * cow_rcu_read_lock - enter a read-side section.
 *
 * Any thread; sections nest. The first call in a thread registers the
 * thread with liburcu-bp (one allocation inside liburcu; if that fails,
 * liburcu aborts the process: the one abort cowkit cannot avoid, see
 * docs/rcu.md). No lock, no atomic read-modify-write.
 */
COW_API void cow_rcu_read_lock(void);

/* cow_rcu_read_unlock - leave the innermost read-side section. Same thread. */
COW_API void cow_rcu_read_unlock(void);

/*
 * cow_rcu_deref - the current version of @r.
 *
 * Must be called inside a read-side section (the updater may call it under
 * its update lock too). The version is complete: every store the updater
 * made to it before publishing is visible. It stays valid, and unchanged,
 * until this thread leaves its outermost read-side section; two derefs in
 * one section may return different versions if an update was published in
 * between. Never NULL for a live object.
 */
COW_API const void *cow_rcu_deref(const cow_rcu *r);

/*
 * cow_rcu_update_begin - take the update lock and a private copy.
 *
 * @copy: receives a new, unpublished version holding a copy of the current
 *        one (through ops->copy). The caller may change it freely; nobody
 *        else sees it until cow_rcu_update_commit().
 *
 * Blocks while another updater holds @r. On success the caller holds the
 * update lock and must end with exactly one cow_rcu_update_commit() or
 * cow_rcu_update_abort(), from the same thread. Returns 0, COW_ENOMEM, or
 * an error from ops->copy; on error the lock is not held and *copy is
 * unchanged. Must not be called inside a read-side section if another
 * thread may be committing with COW_RCU_WAIT (it would wait for us).
 */
COW_API int cow_rcu_update_begin(cow_rcu *r, void **copy);

/*
 * cow_rcu_update_commit - publish @copy and release the update lock.
 *
 * @copy:  the version from cow_rcu_update_begin(); @r owns it from now on.
 * @flags: 0, or COW_RCU_WAIT.
 *
 * One atomic pointer store makes @copy current: readers that deref after it
 * see the new version, readers already holding the old one keep it. The old
 * version is released after a grace period: by the reclaimer (default; the
 * updater does not wait), or before returning with COW_RCU_WAIT. Returns 0
 * or COW_EINVAL (flags unknown; nothing published, lock still held). With
 * COW_RCU_WAIT it must not be called inside a read-side section.
 */
COW_API int cow_rcu_update_commit(cow_rcu *r, void *copy, unsigned flags);

/*
 * cow_rcu_update_abort - throw @copy away and release the update lock.
 *
 * @copy was never published, so it is released and freed at once. NULL is
 * accepted (just unlocks).
 */
COW_API void cow_rcu_update_abort(cow_rcu *r, void *copy);

/*
 * cow_rcu_synchronize - wait for a grace period: every read-side section
 * that had begun when this was called has ended. Any thread, not inside a
 * read-side section.
 */
COW_API void cow_rcu_synchronize(void);

/*
 * cow_rcu_barrier - wait until every version handed to the reclaimer before
 * this call (by any object) has been released and freed. Any thread, not
 * inside a read-side section, not from an ops->release callback.
 */
COW_API void cow_rcu_barrier(void);

/*
 * COW_RCU_DEFINE(name, type) - typed wrappers around one cow_rcu, so that
 * callers never cast. Defines `struct name { cow_rcu *rcu; }` and static
 * inline functions:
 *
 *	int name_create(struct name *h, const cow_rcu_ops *ops, const type *init);
 *	void name_destroy(struct name *h);
 *	const type *name_deref(const struct name *h);           // in a section
 *	int name_update_begin(struct name *h, type **copy);
 *	int name_update_commit(struct name *h, type *copy, unsigned flags);
 *	void name_update_abort(struct name *h, type *copy);
 *
 * Same contracts as the untyped calls. ops->size must be sizeof(type):
 * name_create() returns COW_EINVAL otherwise. Use it at file scope, without
 * a semicolon after it (ISO C forbids an empty declaration).
 */
/* Clang warns about unused static functions expanded in a .c file. */
#if defined(__GNUC__) || defined(__clang__)
#define COW__RCU_UNUSED __attribute__((unused))
#else
#define COW__RCU_UNUSED
#endif

#define COW_RCU_DEFINE(name, type)                                                                 \
	struct name {                                                                              \
		cow_rcu *rcu;                                                                      \
	};                                                                                         \
	static inline COW__RCU_UNUSED int name##_create(struct name *h, const cow_rcu_ops *ops,    \
							const type *init)                          \
	{                                                                                          \
		if (!ops || ops->size != sizeof(type))                                             \
			return COW_EINVAL;                                                         \
		return cow_rcu_create(ops, init, &h->rcu);                                         \
	}                                                                                          \
	static inline COW__RCU_UNUSED void name##_destroy(struct name *h)                          \
	{                                                                                          \
		cow_rcu_destroy(h->rcu);                                                           \
		h->rcu = NULL;                                                                     \
	}                                                                                          \
	static inline COW__RCU_UNUSED const type *name##_deref(const struct name *h)               \
	{                                                                                          \
		return (const type *)cow_rcu_deref(h->rcu);                                        \
	}                                                                                          \
	static inline COW__RCU_UNUSED int name##_update_begin(struct name *h, type **copy)         \
	{                                                                                          \
		void *p = NULL;                                                                    \
		int rc = cow_rcu_update_begin(h->rcu, &p);                                         \
		if (rc == 0)                                                                       \
			*copy = (type *)p;                                                         \
		return rc;                                                                         \
	}                                                                                          \
	static inline COW__RCU_UNUSED int name##_update_commit(struct name *h, type *copy,         \
							       unsigned flags)                     \
	{                                                                                          \
		return cow_rcu_update_commit(h->rcu, copy, flags);                                 \
	}                                                                                          \
	static inline COW__RCU_UNUSED void name##_update_abort(struct name *h, type *copy)         \
	{                                                                                          \
		cow_rcu_update_abort(h->rcu, copy);                                                \
	}

#ifdef __cplusplus
}
#endif

#endif
