/*
 * Helpers the benchmarks and the tour share, so each measures time and
 * takes medians the same way: a monotonic clock and a qsort comparator;
 * and how they give up.
 */
#ifndef COW_BENCH_UTIL_H
#define COW_BENCH_UTIL_H

/* CLOCK_MONOTONIC in nanoseconds, milliseconds and seconds. */
double bench_now_ns(void);
double bench_now_ms(void);
double bench_now_s(void);
/* qsort comparator for doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);
/* Print "PROG: message" to stderr and exit 1. */
void bench_die(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/*
 * Give up (bench_die, naming @prog, the call and its error) when @call
 * returns nonzero; @strerr turns the code into text (cow_strerror,
 * mdb_strerror).
 */
#define BENCH_CK(prog, strerr, call)                                                               \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		if (rc_)                                                                           \
			bench_die(prog, "%s:%d: %s: %s", __FILE__, __LINE__, #call, strerr(rc_));  \
	} while (0)

#endif
