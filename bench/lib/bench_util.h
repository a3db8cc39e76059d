/*
 * Helpers the benchmarks and the tour share, so each measures time and
 * takes medians the same way: a monotonic clock and a qsort comparator.
 */
#ifndef COW_BENCH_UTIL_H
#define COW_BENCH_UTIL_H

/* CLOCK_MONOTONIC in nanoseconds, milliseconds and seconds. */
double bench_now_ns(void);
double bench_now_ms(void);
double bench_now_s(void);
/* qsort comparator for doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);

#endif
