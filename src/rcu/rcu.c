/*
 * rcu: RCU-published copy-on-write objects on liburcu's bulletproof flavour.
 *
 * A cow_rcu is one published pointer to the current version plus an update
 * lock. Every version is allocated here with a hidden header in front of the
 * caller's bytes, so retiring one needs no allocation (intrusive node) and a
 * commit cannot fail once the copy exists.
 *
 * Invariants:
 *  (1) r->cur always points at a complete version: an updater fills its copy
 *      completely before the release store that publishes it, and readers
 *      load it with acquire, so they see every byte the updater wrote.
 *  (2) A version is freed only after it stopped being current AND a grace
 *      period (urcu_bp_synchronize_rcu) began after that: no reader that
 *      could have loaded it is still inside its read-side section.
 *  (3) Only the thread holding r->update_lock changes r->cur.
 *
 * Grace periods: liburcu-bp. Deferred reclaim: one cowkit thread
 * (the reclaimer), not liburcu's call_rcu worker. Reason: call_rcu's fork
 * handlers pause every call_rcu worker and poll for it in 1 ms sleeps, which
 * would add a millisecond or more to every fork() of a program that has a
 * store open; our own thread needs only a mutex across fork. The reclaimer
 * wakes when the first version is retired, lets more gather for GATHER_NS
 * (as call_rcu's worker does between batches), waits for one grace period
 * and frees the whole batch. So a grace period, whose membarrier interrupts
 * every CPU running a reader, is shared by all the updates of a window, and
 * an updater signals the reclaimer only when the pending list was empty.
 *
 * Thread sanitizer: liburcu is not instrumented, so TSan cannot see that a
 * grace period orders a reader's accesses before the reclaimer's free.
 * Publication uses C11-style atomics, which TSan understands; for the grace
 * period, each read_unlock releases a sync token and the reclaimer acquires
 * it after synchronize, which is exactly the guarantee RCU gives. A reader
 * that used a version after its section ended, or a free before a grace
 * period, is still reported. See docs/rcu.md.
 */
#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <urcu/urcu-bp.h>

#include "base/base.h"
#include "cow/rcu.h"
#include "rcu/rcu.h"

#if defined(__SANITIZE_THREAD__)
#define COW_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COW_TSAN 1
#endif
#endif

#ifdef COW_TSAN
#include <sanitizer/tsan_interface.h>
static char gp_token; /* address only: the grace-period sync object for TSan */
static inline void tsan_reader_done(void)
{
	__tsan_release(&gp_token);
}
static inline void tsan_grace_period_done(void)
{
	__tsan_acquire(&gp_token);
}
#else
static inline void tsan_reader_done(void)
{
}
static inline void tsan_grace_period_done(void)
{
}
#endif

/*
 * The hidden header. Aligned like max_align_t so the caller's bytes after it
 * are aligned for any type.
 */
struct version {
	alignas(max_align_t) struct version *next; /* pending list, reclaimer-owned */
	void (*release)(void *obj, void *ctx);	   /* copied from ops: r may be gone */
	void *ctx;
};

struct cow_rcu {
	void *cur; /* payload of the current version; atomic */
	pthread_mutex_t update_lock;
	pthread_t owner; /* holder of update_lock; debug checks only; atomic */
	bool owned;	 /* owner is valid; atomic */
	cow_rcu_ops ops;
};

static inline struct version *header(void *obj)
{
	return (struct version *)obj - 1;
}

static inline void *payload(struct version *v)
{
	return v + 1;
}

/* ---- the reclaimer --------------------------------------------------- */

/*
 * Batching window, and the pending count that cuts it short. 2 ms bounds
 * grace periods to ~500/s; at the 2.4 M updates/s measured here the window
 * holds ~5,000 versions, so memory held for reclaim stays small and bounded.
 */
#define GATHER_NS     2000000L
#define PENDING_HURRY 65536

/*
 * All fields under rec.lock. Sequence numbers count versions handed over
 * (retired) and versions freed, so cow_rcu_barrier() can wait for "all that
 * was retired before me" without knowing which batch holds what. One batch
 * is reclaimed at a time (busy), so freed only ever covers whole batches.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t work; /* pending became non-empty */
	pthread_cond_t done; /* freed advanced */
	struct version *pending, **tail;
	uint64_t retired, freed, inflight; /* inflight: end seq of the batch in progress */
	uint64_t npending;		   /* versions on the pending list */
	bool hurry;			   /* skip the batching window (barrier, backlog) */
	bool busy;			   /* a batch is being reclaimed */
	bool running;			   /* a reclaimer thread exists (in this process) */
	bool atfork;			   /* fork handlers registered */
} rec = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
	.tail = &rec.pending,
};

static void free_version(struct version *v)
{
	if (v->release)
		v->release(payload(v), v->ctx);
	cow__free(v);
}

static void free_batch(struct version *v)
{
	while (v) {
		struct version *next = v->next;
		free_version(v);
		v = next;
	}
}

/*
 * Free everything pending after one grace period. Called with rec.lock held;
 * drops it while waiting. Used by the reclaimer thread and, when no thread
 * can be started, by whoever needs the work done.
 */
static void reclaim_pending_locked(void)
{
	while (rec.busy) /* only without a reclaimer thread: updaters reclaiming inline */
		pthread_cond_wait(&rec.done, &rec.lock);
	rec.busy = true;
	struct version *batch = rec.pending;
	uint64_t end = rec.retired;
	rec.pending = NULL;
	rec.tail = &rec.pending;
	rec.npending = 0;
	rec.inflight = end;
	pthread_mutex_unlock(&rec.lock);

	urcu_bp_synchronize_rcu(); /* grace period for every version in batch */
	tsan_grace_period_done();
	free_batch(batch);

	pthread_mutex_lock(&rec.lock);
	rec.freed = end;
	rec.busy = false;
	pthread_cond_broadcast(&rec.done);
}

static void *reclaimer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&rec.lock);
	for (;;) {
		while (!rec.pending)
			pthread_cond_wait(&rec.work, &rec.lock);
		/* Let more versions join this grace period, unless asked to hurry. */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until); /* the clock of rec.work */
		until.tv_nsec += GATHER_NS;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!rec.hurry && pthread_cond_timedwait(&rec.work, &rec.lock, &until) == 0)
			;
		rec.hurry = false;
		reclaim_pending_locked();
	}
	return NULL; /* not reached: the thread lives as long as the process */
}

/*
 * fork(): hold rec.lock and liburcu-bp's locks across it, so the child
 * inherits them in a known state. The reclaimer thread does not exist in the
 * child: a batch it was freeing is leaked there (counted as freed, so
 * barriers do not wait for it), and the next retire starts a new thread.
 */
static void fork_prepare(void)
{
	pthread_mutex_lock(&rec.lock);
	urcu_bp_before_fork();
}

static void fork_parent(void)
{
	urcu_bp_after_fork_parent();
	pthread_mutex_unlock(&rec.lock);
}

static void fork_child(void)
{
	urcu_bp_after_fork_child();
	/*
	 * The parent's reclaimer may have been waiting on these at the fork:
	 * their waiter counts are meaningless here, and a signal would wait for
	 * a thread that does not exist in the child. Start them afresh.
	 */
	pthread_cond_init(&rec.work, NULL);
	pthread_cond_init(&rec.done, NULL);
	rec.running = false;
	if (rec.busy) { /* the parent's reclaimer was freeing a batch: leak it here */
		rec.freed = rec.inflight;
		rec.busy = false;
	}
	pthread_mutex_unlock(&rec.lock);
}

/* Register the fork handlers once per process. rec.lock held. 0 or -errno. */
static int register_atfork_locked(void)
{
	if (rec.atfork)
		return 0;
	int rc = pthread_atfork(fork_prepare, fork_parent, fork_child);
	if (rc != 0)
		return -rc;
	rec.atfork = true;
	return 0;
}

/*
 * Start the reclaimer if it is not running: lazily, on the first retired
 * version, so a program that only reads gets no thread. rec.lock held.
 * 0 or -errno.
 */
static int start_reclaimer_locked(void)
{
	if (rec.running)
		return 0;
	int rc = register_atfork_locked();
	if (rc != 0)
		return rc;
	pthread_attr_t attr;
	rc = pthread_attr_init(&attr);
	if (rc != 0)
		return -rc;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* The thread inherits our signal mask: block everything there. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t tid;
	rc = pthread_create(&tid, &attr, reclaimer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return -rc;
	rec.running = true;
	return 0;
}

/* Hand @v to the reclaimer. Never fails: without a thread, reclaim inline. */
static void retire(struct version *v)
{
	v->next = NULL;
	pthread_mutex_lock(&rec.lock);
	bool was_empty = !rec.pending;
	*rec.tail = v;
	rec.tail = &v->next;
	rec.retired++;
	if (++rec.npending >= PENDING_HURRY)
		rec.hurry = true;
	if (start_reclaimer_locked() != 0)
		reclaim_pending_locked();
	else if (was_empty || rec.hurry)
		pthread_cond_signal(&rec.work); /* else it is awake already, gathering */
	pthread_mutex_unlock(&rec.lock);
}

void cow_rcu_barrier(void)
{
	pthread_mutex_lock(&rec.lock);
	uint64_t target = rec.retired;
	while (rec.freed < target) {
		if (!rec.running && start_reclaimer_locked() != 0) {
			reclaim_pending_locked();
			continue;
		}
		rec.hurry = true;
		pthread_cond_signal(&rec.work);
		pthread_cond_wait(&rec.done, &rec.lock);
	}
	pthread_mutex_unlock(&rec.lock);
}

void cow__rcu_stats(struct cow__rcu_stats *st)
{
	pthread_mutex_lock(&rec.lock);
	st->retired = rec.retired;
	st->freed = rec.freed;
	pthread_mutex_unlock(&rec.lock);
}

/* ---- read side -------------------------------------------------------- */

void cow_rcu_read_lock(void)
{
	urcu_bp_read_lock();
}

void cow_rcu_read_unlock(void)
{
	tsan_reader_done();
	urcu_bp_read_unlock();
}

const void *cow_rcu_deref(const cow_rcu *r)
{
#ifndef NDEBUG
	/* Misuse check: a reader outside a section could see its version freed. */
	assert(urcu_bp_read_ongoing() ||
	       (__atomic_load_n(&r->owned, __ATOMIC_RELAXED) &&
		pthread_equal(__atomic_load_n(&r->owner, __ATOMIC_RELAXED), pthread_self())));
#endif
	/* Acquire pairs with the release in commit: invariant (1). */
	return __atomic_load_n(&r->cur, __ATOMIC_ACQUIRE);
}

void cow_rcu_synchronize(void)
{
	urcu_bp_synchronize_rcu();
	tsan_grace_period_done();
}

/* ---- update side ------------------------------------------------------ */

/* A new version of @r holding a copy of @src. 0, COW_ENOMEM or copy's error. */
static int make_version(const cow_rcu_ops *ops, const void *src, void **out)
{
	if (ops->size > SIZE_MAX - sizeof(struct version))
		return COW_ENOMEM;
	struct version *v = cow__malloc(sizeof(*v) + ops->size);
	if (!v)
		return COW_ENOMEM;
	v->next = NULL;
	v->release = ops->release;
	v->ctx = ops->ctx;
	void *obj = payload(v);
	if (ops->copy) {
		int rc = ops->copy(obj, src, ops->ctx);
		if (rc != 0) {
			cow__free(v); /* not a version yet: nothing to release */
			return rc;
		}
	} else {
		memcpy(obj, src, ops->size);
	}
	*out = obj;
	return 0;
}

int cow_rcu_create(const cow_rcu_ops *ops, const void *init, cow_rcu **out)
{
	if (!ops || !init || !out || ops->size == 0)
		return COW_EINVAL;
	pthread_mutex_lock(&rec.lock);
	int rc = register_atfork_locked(); /* readers may fork from now on */
	pthread_mutex_unlock(&rec.lock);
	if (rc != 0)
		return rc;

	cow_rcu *r = cow__calloc(1, sizeof(*r));
	if (!r)
		return COW_ENOMEM;
	r->ops = *ops;
	rc = pthread_mutex_init(&r->update_lock, NULL);
	if (rc != 0) {
		cow__free(r);
		return -rc;
	}
	rc = make_version(&r->ops, init, &r->cur);
	if (rc != 0) {
		pthread_mutex_destroy(&r->update_lock);
		cow__free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void cow_rcu_destroy(cow_rcu *r)
{
	if (!r)
		return;
	cow_rcu_synchronize();
	free_version(header(r->cur));
	cow_rcu_barrier(); /* older versions still carry r's callbacks */
	pthread_mutex_destroy(&r->update_lock);
	cow__free(r);
}

static void set_owner(cow_rcu *r, bool owned)
{
#ifndef NDEBUG
	if (owned)
		__atomic_store_n(&r->owner, pthread_self(), __ATOMIC_RELAXED);
	__atomic_store_n(&r->owned, owned, __ATOMIC_RELAXED);
#else
	(void)r;
	(void)owned;
#endif
}

int cow_rcu_update_begin(cow_rcu *r, void **copy)
{
	if (!r || !copy)
		return COW_EINVAL;
	pthread_mutex_lock(&r->update_lock);
	/* Only we change r->cur (3), and r->cur cannot be freed while current. */
	const void *cur = __atomic_load_n(&r->cur, __ATOMIC_RELAXED);
	int rc = make_version(&r->ops, cur, copy);
	if (rc != 0) {
		pthread_mutex_unlock(&r->update_lock);
		return rc;
	}
	set_owner(r, true);
	return 0;
}

int cow_rcu_update_commit(cow_rcu *r, void *copy, unsigned flags)
{
	if (!r || !copy || (flags & ~(unsigned)COW_RCU_WAIT))
		return COW_EINVAL;
	void *old = __atomic_load_n(&r->cur, __ATOMIC_RELAXED);
	__atomic_store_n(&r->cur, copy, __ATOMIC_RELEASE); /* publish: (1) */
	set_owner(r, false);
	pthread_mutex_unlock(&r->update_lock);

	if (flags & COW_RCU_WAIT) {
		cow_rcu_synchronize(); /* grace period for old: (2) */
		free_version(header(old));
	} else {
		retire(header(old)); /* the reclaimer's grace period: (2) */
	}
	return 0;
}

void cow_rcu_update_abort(cow_rcu *r, void *copy)
{
	if (!r)
		return;
	set_owner(r, false);
	pthread_mutex_unlock(&r->update_lock);
	if (copy)
		free_version(header(copy)); /* never published: no grace period */
}
