/*
 * bench rcu_read: read-side throughput of a read-mostly object (process
 * credentials, examples/creds.h) published three ways:
 *
 *   rcu     cow_rcu: readers lock-free, updater copies and publishes
 *   rwlock  pthread_rwlock: readers share the lock, updater writes in place
 *   mutex   pthread_mutex: everyone serializes
 *
 * Every thread runs the same mix for a fixed time: with probability P an
 * update (all fields change), otherwise a read (a permission check on the
 * current credentials). Prints one CSV row per (mechanism, P, threads) with
 * reads/s, the ratio to rwlock measured in the same run, and how many CPUs
 * the workers really had (median; on a busy 2-vCPU machine a 2-thread point
 * with cpus near 1 did not run its threads side by side), and reads per
 * CPU-second (the cost of a read, less sensitive to other load):
 *
 *   rcu_read [SECONDS_PER_POINT] [REPEATS]     (default 0.3 s, median of 3)
 *
 * Never asserts on time.
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../examples/creds.h"

COW_RCU_DEFINE(cred_pub, struct creds)

enum mech { RCU, RWLOCK, MUTEX, NMECH };
static const char *const mech_name[NMECH] = {"rcu", "rwlock", "mutex"};

static struct {
	struct cred_pub pub; /* RCU */
	struct creds plain;  /* RWLOCK, MUTEX */
	pthread_rwlock_t rw;
	pthread_mutex_t mu;
	uint64_t serial; /* under the update lock of each mechanism */
} obj = {.rw = PTHREAD_RWLOCK_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER};

/*
 * Per-thread counters are written on every operation: 64-byte aligned so
 * that two workers never share a cache line (false sharing would slow every
 * mechanism alike at 2 threads and hide the difference being measured).
 */
struct worker {
	alignas(64) enum mech m;
	uint32_t update_ppm; /* updates per million operations */
	uint64_t seed;
	uint64_t reads, updates, allowed;
	double cpu; /* seconds this thread ran */
	pthread_t tid;
};

static int stop; /* atomic */

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void read_once(struct worker *w, uint32_t file_uid)
{
	const struct creds *c;
	switch (w->m) {
	case RCU:
		cow_rcu_read_lock();
		c = cred_pub_deref(&obj.pub);
		w->allowed += creds_may_read(c, file_uid, 3001, 0640);
		cow_rcu_read_unlock();
		break;
	case RWLOCK:
		pthread_rwlock_rdlock(&obj.rw);
		w->allowed += creds_may_read(&obj.plain, file_uid, 3001, 0640);
		pthread_rwlock_unlock(&obj.rw);
		break;
	default:
		pthread_mutex_lock(&obj.mu);
		w->allowed += creds_may_read(&obj.plain, file_uid, 3001, 0640);
		pthread_mutex_unlock(&obj.mu);
		break;
	}
}

static void update_once(struct worker *w)
{
	struct creds *n;
	switch (w->m) {
	case RCU:
		if (cred_pub_update_begin(&obj.pub, &n) != 0)
			abort(); /* ENOMEM in a benchmark: nothing sensible to measure */
		creds_fill(n, n->serial + 1);
		cred_pub_update_commit(&obj.pub, n, 0);
		break;
	case RWLOCK:
		pthread_rwlock_wrlock(&obj.rw);
		creds_fill(&obj.plain, obj.plain.serial + 1);
		pthread_rwlock_unlock(&obj.rw);
		break;
	default:
		pthread_mutex_lock(&obj.mu);
		creds_fill(&obj.plain, obj.plain.serial + 1);
		pthread_mutex_unlock(&obj.mu);
		break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct timespec c0, c1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		for (int i = 0; i < 256; i++) {
			uint64_t r = rnd(&w->seed);
			if (r % 1000000 < w->update_ppm) {
				update_once(w);
				w->updates++;
			} else {
				read_once(w, 1000 + (uint32_t)(r >> 40) % 64);
				w->reads++;
			}
		}
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	w->cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) * 1e-9;
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * One measurement: reads/s over @secs with @threads workers; *cpu is how
 * many CPUs the workers had on average (2.0: both ran all the time; near
 * 1.0 with 2 threads: other work on the machine held a vCPU).
 */
static double run_point(enum mech m, uint32_t ppm, int threads, double secs, double *upd_per_s,
			double *cpu)
{
	struct worker w[2];
	__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
	double t0 = now();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){.m = m,
				       .update_ppm = ppm,
				       .seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1)};
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
			abort();
	}
	usleep((useconds_t)(secs * 1e6));
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	uint64_t reads = 0, updates = 0;
	double cpus = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		reads += w[i].reads;
		updates += w[i].updates;
		cpus += w[i].cpu;
	}
	double el = now() - t0;
	*cpu = cpus / el;
	cow_rcu_barrier(); /* reclaim outside the next measurement */
	*upd_per_s = (double)updates / el;
	return (double)reads / el;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 0.3;
	int repeats = argc > 2 ? atoi(argv[2]) : 3;
	if (secs <= 0 || repeats < 1 || repeats > 15) {
		fprintf(stderr, "usage: rcu_read [SECONDS_PER_POINT] [REPEATS (1-15)]\n");
		return 2;
	}
	struct creds init;
	creds_fill(&init, 1);
	obj.plain = init;
	cow_rcu_ops ops = {sizeof(struct creds), NULL, NULL, NULL};
	int rc = cred_pub_create(&obj.pub, &ops, &init);
	if (rc != 0) {
		fprintf(stderr, "rcu_read: %s\n", cow_strerror(rc));
		return 1;
	}
	static const uint32_t ppms[] = {1000, 10000, 100000}; /* 0.1 %, 1 %, 10 % */
	printf("mechanism,update_pct,threads,reads_per_s,updates_per_s,ratio_vs_rwlock,cpus,"
	       "reads_per_cpu_s\n");
	for (size_t p = 0; p < sizeof(ppms) / sizeof(ppms[0]); p++) {
		for (int threads = 1; threads <= 2; threads++) {
			/* Repeats interleave the mechanisms, so load drift hits all alike. */
			double r[NMECH][15], u[NMECH][15], c[NMECH][15], pc[NMECH][15];
			for (int k = 0; k < repeats; k++) {
				for (int m = 0; m < NMECH; m++) {
					r[m][k] = run_point((enum mech)m, ppms[p], threads, secs,
							    &u[m][k], &c[m][k]);
					pc[m][k] = c[m][k] > 0 ? r[m][k] / c[m][k] : 0;
				}
			}
			double med[NMECH], upd[NMECH], cpu[NMECH], percpu[NMECH];
			for (int m = 0; m < NMECH; m++) {
				med[m] = median(r[m], repeats);
				upd[m] = median(u[m], repeats);
				cpu[m] = median(c[m], repeats);
				percpu[m] = median(pc[m], repeats);
			}
			for (int m = 0; m < NMECH; m++)
				printf("%s,%g,%d,%.0f,%.0f,%.3f,%.2f,%.0f\n", mech_name[m],
				       ppms[p] / 1e4, threads, med[m], upd[m], med[m] / med[RWLOCK],
				       cpu[m], percpu[m]);
			fflush(stdout);
		}
	}
	cred_pub_destroy(&obj.pub);
	return 0;
}
