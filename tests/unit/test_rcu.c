/*
 * rcu: the API contract, single-threaded where possible: versions, copy and
 * release hooks, deferred and waited reclaim, abort, errors, allocation
 * failure, typed wrappers, fork.
 */
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cow/rcu.h"
#include "rcu/rcu.h"

struct thing {
	uint64_t a, b;
	int *shared; /* a refcounted cell the copy hook takes a reference to */
};

COW_RCU_DEFINE(thing_ref, struct thing)

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN_CLANG 1
#endif
#endif
#ifndef TEST_TSAN_CLANG
#define TEST_TSAN_CLANG 0
#endif

static long copies, releases, fail_copy;

static int thing_copy(void *dst, const void *src, void *ctx)
{
	CHECK(ctx == &copies);
	if (fail_copy)
		return COW_EPERM;
	const struct thing *s = src;
	struct thing *d = dst;
	*d = *s;
	if (d->shared)
		(*d->shared)++;
	copies++;
	return 0;
}

static void thing_release(void *obj, void *ctx)
{
	CHECK(ctx == &copies);
	struct thing *t = obj;
	if (t->shared)
		(*t->shared)--;
	releases++;
}

static const cow_rcu_ops thing_ops = {sizeof(struct thing), thing_copy, thing_release, &copies};

static void test_basic(void)
{
	int cell = 1; /* one reference: init's */
	struct thing init = {1, 2, &cell};
	struct thing_ref ref;
	copies = releases = 0;
	CHECK_OK(thing_ref_create(&ref, &thing_ops, &init));
	CHECK_EQ(copies, 1);
	CHECK_EQ(cell, 2);

	cow_rcu_read_lock();
	const struct thing *v1 = thing_ref_deref(&ref);
	CHECK_EQ(v1->a, 1);
	CHECK(v1 != &init); /* a copy, not the caller's struct */
	CHECK_EQ((uintptr_t)v1 % alignof(max_align_t), 0);

	/* Update while a reader holds v1: v1 stays intact for it. */
	struct thing *n;
	CHECK_OK(thing_ref_update_begin(&ref, &n));
	CHECK_EQ(n->a, 1);
	n->a = 10;
	CHECK(thing_ref_deref(&ref) == v1); /* unpublished: still v1 */
	CHECK_OK(thing_ref_update_commit(&ref, n, 0));
	CHECK_EQ(v1->a, 1);
	CHECK_EQ(v1->b, 2);
	const struct thing *v2 = thing_ref_deref(&ref);
	CHECK(v2 == n);
	CHECK_EQ(v2->a, 10);

	/* Nested sections. */
	cow_rcu_read_lock();
	CHECK(thing_ref_deref(&ref) == v2);
	cow_rcu_read_unlock();
	cow_rcu_read_unlock();

	cow_rcu_barrier(); /* v1 released by the reclaimer */
	CHECK_EQ(releases, 1);
	CHECK_EQ(cell, 2);

	/* Abort: the copy is released at once, nothing published. */
	CHECK_OK(thing_ref_update_begin(&ref, &n));
	n->a = 99;
	CHECK_EQ(cell, 3);
	thing_ref_update_abort(&ref, n);
	CHECK_EQ(releases, 2);
	CHECK_EQ(cell, 2);
	cow_rcu_read_lock();
	CHECK_EQ(thing_ref_deref(&ref)->a, 10);
	cow_rcu_read_unlock();

	/* COW_RCU_WAIT: the old version is gone when commit returns. */
	CHECK_OK(thing_ref_update_begin(&ref, &n));
	n->b = 20;
	CHECK_OK(thing_ref_update_commit(&ref, n, COW_RCU_WAIT));
	CHECK_EQ(releases, 3);

	/* Bad flags: nothing published, lock still held, abort works. */
	CHECK_OK(thing_ref_update_begin(&ref, &n));
	CHECK_RC(thing_ref_update_commit(&ref, n, 0x80), COW_EINVAL);
	thing_ref_update_abort(&ref, n);

	/* A failing copy hook: its error, lock not held (begin works again). */
	fail_copy = 1;
	CHECK_RC(thing_ref_update_begin(&ref, &n), COW_EPERM);
	fail_copy = 0;
	CHECK_OK(thing_ref_update_begin(&ref, &n));
	thing_ref_update_abort(&ref, n);

	thing_ref_destroy(&ref);
	CHECK(ref.rcu == NULL);
	CHECK_EQ(copies, releases); /* every version released exactly once */
	CHECK_EQ(cell, 1);
	cow_rcu_destroy(NULL);
}

static void test_errors(void)
{
	cow_rcu *r = NULL;
	uint64_t x = 7;
	cow_rcu_ops ops = {sizeof(x), NULL, NULL, NULL};
	CHECK_RC(cow_rcu_create(NULL, &x, &r), COW_EINVAL);
	CHECK_RC(cow_rcu_create(&ops, NULL, &r), COW_EINVAL);
	CHECK_RC(cow_rcu_create(&ops, &x, NULL), COW_EINVAL);
	ops.size = 0;
	CHECK_RC(cow_rcu_create(&ops, &x, &r), COW_EINVAL);
	ops.size = SIZE_MAX;
	CHECK_RC(cow_rcu_create(&ops, &x, &r), COW_ENOMEM);
	CHECK(r == NULL);
	CHECK_RC(cow_rcu_update_begin(NULL, NULL), COW_EINVAL);
	CHECK_RC(cow_rcu_update_commit(NULL, &x, 0), COW_EINVAL);
	cow_rcu_update_abort(NULL, NULL);

	/* The typed wrapper refuses a size that is not sizeof(type). */
	struct thing_ref ref;
	cow_rcu_ops wrong = thing_ops;
	wrong.size = 8;
	struct thing init = {0, 0, NULL};
	CHECK_RC(thing_ref_create(&ref, &wrong, &init), COW_EINVAL);
	CHECK_RC(thing_ref_create(&ref, NULL, &init), COW_EINVAL);
}

/* Fail the Nth allocation until the operation succeeds: state unchanged. */
static void test_alloc_failures(void)
{
	uint64_t x = 5;
	cow_rcu_ops ops = {sizeof(x), NULL, NULL, NULL};
	cow_rcu *r = NULL;
	int rc;
	long n = 1;
	do {
		check_alloc_fail_at(n++, 1);
		rc = cow_rcu_create(&ops, &x, &r);
		check_alloc_fail_at(0, 0);
		CHECK(rc == 0 || rc == COW_ENOMEM);
		if (rc)
			CHECK(r == NULL);
	} while (rc != 0);
	CHECK_GT(n, 2); /* at least one failure was injected and survived */

	void *copy;
	check_alloc_fail_at(1, 1);
	CHECK_RC(cow_rcu_update_begin(r, &copy), COW_ENOMEM);
	check_alloc_fail_at(0, 0);
	cow_rcu_read_lock();
	CHECK_EQ(*(const uint64_t *)cow_rcu_deref(r), 5);
	cow_rcu_read_unlock();
	CHECK_OK(cow_rcu_update_begin(r, &copy)); /* the lock was released */
	*(uint64_t *)copy = 6;
	CHECK_OK(cow_rcu_update_commit(r, copy, 0));
	cow_rcu_read_lock();
	CHECK_EQ(*(const uint64_t *)cow_rcu_deref(r), 6);
	cow_rcu_read_unlock();
	cow_rcu_destroy(r);
}

/* Barrier counts: everything retired is freed once barrier returns. */
static void test_barrier(void)
{
	uint64_t x = 0;
	cow_rcu_ops ops = {sizeof(x), NULL, NULL, NULL};
	cow_rcu *r;
	CHECK_OK(cow_rcu_create(&ops, &x, &r));
	for (int i = 0; i < 1000; i++) {
		void *c;
		CHECK_OK(cow_rcu_update_begin(r, &c));
		(*(uint64_t *)c)++;
		CHECK_OK(cow_rcu_update_commit(r, c, 0));
	}
	cow_rcu_barrier();
	struct cow__rcu_stats st;
	cow__rcu_stats(&st);
	CHECK_EQ(st.retired, st.freed);
	cow_rcu_read_lock();
	CHECK_EQ(*(const uint64_t *)cow_rcu_deref(r), 1000);
	cow_rcu_read_unlock();
	cow_rcu_destroy(r);
}

/* A second updater blocks in update_begin until the first commits. */
static cow_rcu *race_r;

static void *second_updater(void *arg)
{
	(void)arg;
	void *c;
	CHECK_OK(cow_rcu_update_begin(race_r, &c));
	/* It must see the first updater's committed value, then add to it. */
	CHECK_EQ(*(uint64_t *)c, 1);
	*(uint64_t *)c = 2;
	CHECK_OK(cow_rcu_update_commit(race_r, c, 0));
	return NULL;
}

static void test_serialized_updaters(void)
{
	uint64_t x = 0;
	cow_rcu_ops ops = {sizeof(x), NULL, NULL, NULL};
	CHECK_OK(cow_rcu_create(&ops, &x, &race_r));
	void *c;
	CHECK_OK(cow_rcu_update_begin(race_r, &c));
	pthread_t t;
	CHECK_EQ(pthread_create(&t, NULL, second_updater, NULL), 0);
	usleep(20000); /* give it time to block; correctness does not depend on it */
	*(uint64_t *)c = 1;
	CHECK_OK(cow_rcu_update_commit(race_r, c, 0));
	CHECK_EQ(pthread_join(t, NULL), 0);
	cow_rcu_read_lock();
	CHECK_EQ(*(const uint64_t *)cow_rcu_deref(race_r), 2);
	cow_rcu_read_unlock();
	cow_rcu_destroy(race_r);
}

/* A forked child keeps using an inherited object, reclaim included. */
static void test_fork(void)
{
#if defined(__SANITIZE_THREAD__) || TEST_TSAN_CLANG
	/* TSan cannot start threads in the child of a multi-threaded fork. */
	printf("rcu: fork test not run under ThreadSanitizer\n");
	return;
#endif
	uint64_t x = 1;
	cow_rcu_ops ops = {sizeof(x), NULL, NULL, NULL};
	cow_rcu *r;
	CHECK_OK(cow_rcu_create(&ops, &x, &r));
	for (int i = 0; i < 100; i++) { /* keep the reclaimer busy across the fork */
		void *c;
		CHECK_OK(cow_rcu_update_begin(r, &c));
		(*(uint64_t *)c)++;
		CHECK_OK(cow_rcu_update_commit(r, c, 0));
	}
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 100; i++) {
			void *c;
			if (cow_rcu_update_begin(r, &c) != 0)
				_exit(2);
			(*(uint64_t *)c)++;
			cow_rcu_update_commit(r, c, 0);
		}
		cow_rcu_barrier(); /* needs a new reclaimer in the child */
		cow_rcu_read_lock();
		uint64_t v = *(const uint64_t *)cow_rcu_deref(r);
		cow_rcu_read_unlock();
		cow_rcu_destroy(r);
		_exit(v == 201 ? 0 : 1);
	}
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	cow_rcu_read_lock();
	CHECK_EQ(*(const uint64_t *)cow_rcu_deref(r), 101);
	cow_rcu_read_unlock();
	cow_rcu_destroy(r);
}

static int thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* A program that only reads (and creates, destroys) gets no extra thread. */
static void test_readers_get_no_thread(void)
{
	int before = thread_count();
	if (before < 0)
		return; /* no /proc: nothing to check against */
	uint64_t x = 3;
	cow_rcu_ops ops = {sizeof(x), NULL, NULL, NULL};
	cow_rcu *r;
	CHECK_OK(cow_rcu_create(&ops, &x, &r));
	cow_rcu_read_lock();
	CHECK_EQ(*(const uint64_t *)cow_rcu_deref(r), 3);
	cow_rcu_read_unlock();
	void *c;
	CHECK_OK(cow_rcu_update_begin(r, &c));
	cow_rcu_update_abort(r, c); /* nothing retired */
	cow_rcu_destroy(r);
	CHECK_EQ(thread_count(), before);
}

int main(void)
{
	test_readers_get_no_thread(); /* first: before any update starts the reclaimer */
	test_basic();
	test_errors();
	test_alloc_failures();
	test_barrier();
	test_serialized_updaters();
	test_fork();
	printf("rcu: ok\n");
	return 0;
}
