/*
 * check.h: assertions for cowkit's test programs.
 *
 * Each macro prints file:line, the expression and both operands, then
 * aborts (so sanitizers and gdb show the stack). A test that cannot run here
 * calls SKIP("reason"), which prints the reason and exits 77, which ctest
 * counts as skipped, never as passed.
 */
#ifndef COW_TEST_CHECK_H
#define COW_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/cow.h"

void check__fail(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond))                                                               \
			check__fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);        \
	} while (0)

#define CHECK_CMP_(a, op, b)                                                               \
	do {                                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);                        \
		if (!(a_ op b_))                                                           \
			check__fail(__FILE__, __LINE__, "CHECK(%s %s %s) failed: %lld vs %lld", \
				    #a, #op, #b, a_, b_);                                  \
	} while (0)

#define CHECK_EQ(a, b) CHECK_CMP_(a, ==, b)
#define CHECK_NE(a, b) CHECK_CMP_(a, !=, b)
#define CHECK_LT(a, b) CHECK_CMP_(a, <, b)
#define CHECK_LE(a, b) CHECK_CMP_(a, <=, b)
#define CHECK_GT(a, b) CHECK_CMP_(a, >, b)
#define CHECK_GE(a, b) CHECK_CMP_(a, >=, b)

#define CHECK_STREQ(a, b)                                                                  \
	do {                                                                               \
		const char *a_ = (a), *b_ = (b);                                           \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                                     \
			check__fail(__FILE__, __LINE__, "CHECK_STREQ(%s, %s) failed: \"%s\" vs \"%s\"", \
				    #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");        \
	} while (0)

#define CHECK_MEMEQ(a, b, n)                                                               \
	do {                                                                               \
		const unsigned char *a_ = (const void *)(a), *b_ = (const void *)(b);     \
		size_t n_ = (n);                                                           \
		for (size_t i_ = 0; i_ < n_; i_++)                                         \
			if (a_[i_] != b_[i_])                                              \
				check__fail(__FILE__, __LINE__,                            \
					    "CHECK_MEMEQ(%s, %s, %zu) differs at byte %zu: %#x vs %#x", \
					    #a, #b, n_, i_, a_[i_], b_[i_]);               \
	} while (0)

/* A cowkit call that must succeed; prints the code's name and message if not. */
#define CHECK_OK(expr)                                                                     \
	do {                                                                               \
		int rc_ = (expr);                                                          \
		if (rc_ != 0)                                                              \
			check__fail(__FILE__, __LINE__, "%s failed: %s (%s)", #expr,       \
				    cow_errname(rc_), cow_strerror(rc_));                  \
	} while (0)

/* A cowkit call that must fail with exactly @code. */
#define CHECK_RC(expr, code)                                                               \
	do {                                                                               \
		int rc_ = (expr), want_ = (code);                                          \
		if (rc_ != want_)                                                          \
			check__fail(__FILE__, __LINE__, "%s returned %s, expected %s", #expr, \
				    cow_errname(rc_), cow_errname(want_));                 \
	} while (0)

#define SKIP(...)                                                                          \
	do {                                                                               \
		printf("SKIP: ");                                                          \
		printf(__VA_ARGS__);                                                       \
		printf("\n");                                                              \
		fflush(stdout);                                                            \
		exit(77);                                                                  \
	} while (0)

/*
 * CHECK_STARTED(expr): @expr started a live-memory operation on a backend
 * asked for by name. Under ThreadSanitizer its runtime starts a thread of
 * its own with every signal blocked, so the SIGBUS and SIGSEGV backends
 * refuse up front, by design (docs/mem.md): that is a skip with its reason,
 * never a pass; in any other build a refusal fails the test.
 */
#if defined(__SANITIZE_THREAD__)
#define CHECK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHECK_TSAN 1
#endif
#endif
#ifdef CHECK_TSAN
#define CHECK_STARTED(expr)                                                                \
	do {                                                                               \
		int rc_s_ = (expr);                                                        \
		if (rc_s_ == COW_EOPNOTSUPP)                                               \
			SKIP("%s: refused, since ThreadSanitizer's own thread blocks every "    \
			     "signal (the signal-based backends refuse such programs)",        \
			     #expr);                                                         \
		CHECK_OK(rc_s_);                                                           \
	} while (0)
#else
#define CHECK_STARTED(expr) CHECK_OK(expr)
#endif

/*
 * A fresh temporary directory for this test, removed (recursively) at exit
 * unless the test failed. Returns a static path; call once.
 */
const char *check_tmpdir(void);

/* A path inside check_tmpdir(); static buffer rotated among 8 slots. */
const char *check_path(const char *name);

/*
 * Allocation failure injection through cow_set_allocator(): after
 * check_alloc_fail_at(n), the n-th allocation from now (1-based) fails, and
 * every later one too when @persistent. n == 0 disables. check_alloc_count()
 * tells how many allocations went through the hook since the last call.
 */
void check_alloc_fail_at(long n, int persistent);
long check_alloc_count(void);

/* Seed from $COW_SEED or the clock; printed so a failing run can be replayed. */
uint64_t check_seed(void);
/* xorshift64* step; any nonzero state. */
static inline uint64_t check_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

#endif
