/*
 * bench rcu_flavours: why cowkit uses liburcu-bp. The cost of an empty
 * read-side section (lock + unlock) and of one grace period
 * (synchronize_rcu) in the two flavours a library could use:
 *
 *   memb  every reader thread must call urcu_memb_register_thread() first
 *   bp    ("bulletproof") a thread registers itself on its first section
 *   cow   cow_rcu_read_lock/unlock: bp behind cowkit's exported functions
 *
 * with 1 and 2 reader threads, while one more thread runs grace periods
 * back to back (the updater's cost). Calls liburcu's exported functions, as
 * libcow does. CSV on stdout:
 *
 *   rcu_flavours [SECONDS_PER_POINT]
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <urcu/urcu-bp.h>
#include <urcu/urcu-memb.h>

#include "cow/rcu.h"

enum flavour { MEMB, BP, COW, NFLAV };
static const char *const flav_name[NFLAV] = {"memb", "bp", "cow"};

static int stop;     /* atomic */
static int sync_gps; /* 1: a thread runs grace periods meanwhile */

struct reader {
	alignas(64) enum flavour f; /* no cache line shared between readers */
	uint64_t n;
	double cpu; /* seconds this thread ran */
	pthread_t tid;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct timespec c0, c1;
	if (r->f == MEMB)
		urcu_memb_register_thread();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		for (int i = 0; i < 1024; i++) {
			switch (r->f) {
			case MEMB:
				urcu_memb_read_lock();
				urcu_memb_read_unlock();
				break;
			case BP:
				urcu_bp_read_lock();
				urcu_bp_read_unlock();
				break;
			default:
				cow_rcu_read_lock();
				cow_rcu_read_unlock();
				break;
			}
		}
		r->n += 1024;
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	r->cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) * 1e-9;
	if (r->f == MEMB)
		urcu_memb_unregister_thread();
	return NULL;
}

struct syncer {
	enum flavour f;
	uint64_t n;
	pthread_t tid;
};

static void *sync_main(void *arg)
{
	struct syncer *s = arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		if (s->f == MEMB)
			urcu_memb_synchronize_rcu();
		else if (s->f == BP)
			urcu_bp_synchronize_rcu();
		else
			cow_rcu_synchronize();
		s->n++;
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 0.3;
	if (secs <= 0) {
		fprintf(stderr, "usage: rcu_flavours [SECONDS_PER_POINT]\n");
		return 2;
	}
	printf("flavour,readers,with_grace_periods,cpu_ns_per_read_section,grace_periods_per_s\n");
	for (sync_gps = 0; sync_gps <= 1; sync_gps++) {
		for (int readers = 1; readers <= 2; readers++) {
			for (int f = 0; f < NFLAV; f++) {
				struct reader r[2];
				struct syncer s = {(enum flavour)f, 0, 0};
				__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
				double t0 = now();
				for (int i = 0; i < readers; i++) {
					r[i] = (struct reader){.f = (enum flavour)f};
					if (pthread_create(&r[i].tid, NULL, reader_main, &r[i]))
						abort();
				}
				if (sync_gps && pthread_create(&s.tid, NULL, sync_main, &s))
					abort();
				usleep((useconds_t)(secs * 1e6));
				__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
				uint64_t n = 0;
				double cpu = 0;
				for (int i = 0; i < readers; i++) {
					pthread_join(r[i].tid, NULL);
					n += r[i].n;
					cpu += r[i].cpu;
				}
				if (sync_gps)
					pthread_join(s.tid, NULL);
				double el = now() - t0;
				/* CPU ns per section: robust to other load on the machine */
				printf("%s,%d,%d,%.2f,%.0f\n", flav_name[f], readers, sync_gps,
				       cpu * 1e9 / (double)n, (double)s.n / el);
				fflush(stdout);
			}
		}
	}
	return 0;
}
