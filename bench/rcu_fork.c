/*
 * bench rcu_fork: what deferred reclaim costs every fork(). cowkit frees old
 * versions in its own reclaimer thread instead of liburcu's call_rcu worker
 * because call_rcu's fork handlers pause each worker and poll for it in 1 ms
 * sleeps. This times fork() (until it returns in the parent; the child exits
 * at once) in one of three set-ups, one per process run:
 *
 *   rcu_fork none      plain fork, no RCU at all
 *   rcu_fork cow_read  a cow_rcu that was only read: cowkit's fork handlers,
 *                      no reclaimer thread
 *   rcu_fork cow       a cow_rcu after an update: handlers and reclaimer thread
 *   rcu_fork call_rcu  liburcu-bp with a call_rcu worker and the fork
 *                      handlers liburcu asks for (call_rcu_before_fork ...)
 *
 * Prints "MODE,median_us,p90_us" for N forks (default 200).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urcu/urcu-bp.h>

#include "cow/rcu.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void free_head(struct rcu_head *h)
{
	free(h);
}

static void before(void)
{
	urcu_bp_call_rcu_before_fork();
	urcu_bp_before_fork();
}

static void parent(void)
{
	urcu_bp_after_fork_parent();
	urcu_bp_call_rcu_after_fork_parent();
}

static void child(void)
{
	urcu_bp_after_fork_child();
	urcu_bp_call_rcu_after_fork_child();
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "none";
	int n = argc > 2 ? atoi(argv[2]) : 200;
	if (n < 1 || n > 100000) {
		fprintf(stderr, "usage: rcu_fork none|cow_read|cow|call_rcu [N]\n");
		return 2;
	}
	cow_rcu *r = NULL;
	if (strcmp(mode, "cow_read") == 0) {
		uint64_t x = 0;
		cow_rcu_ops ops = {sizeof(x), NULL, NULL, NULL};
		if (cow_rcu_create(&ops, &x, &r))
			return 1;
		cow_rcu_read_lock();
		x = *(const uint64_t *)cow_rcu_deref(r);
		cow_rcu_read_unlock();
	} else if (strcmp(mode, "cow") == 0) {
		uint64_t x = 0;
		cow_rcu_ops ops = {sizeof(x), NULL, NULL, NULL};
		void *c;
		if (cow_rcu_create(&ops, &x, &r) || cow_rcu_update_begin(r, &c) ||
		    cow_rcu_update_commit(r, c, 0))
			return 1;
		cow_rcu_barrier(); /* the reclaimer exists and is idle, as in a store */
	} else if (strcmp(mode, "call_rcu") == 0) {
		pthread_atfork(before, parent, child);
		struct rcu_head *h = malloc(sizeof(*h));
		if (!h)
			return 1;
		urcu_bp_call_rcu(h, free_head); /* starts the default worker */
		urcu_bp_barrier();
	} else if (strcmp(mode, "none") != 0) {
		fprintf(stderr, "rcu_fork: unknown mode '%s'\n", mode);
		return 2;
	}
	double *t = malloc(sizeof(double) * (size_t)n);
	if (!t)
		return 1;
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		t[i] = now_us() - t0;
		if (pid < 0 || waitpid(pid, NULL, 0) != pid)
			return 1;
		usleep(1000); /* let the workers go idle again, as between real forks */
	}
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	printf("%s,%.1f,%.1f\n", mode, t[n / 2], t[n * 9 / 10]);
	free(t);
	cow_rcu_destroy(r);
	return 0;
}
