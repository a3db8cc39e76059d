/*
 * The process-wide fault handler of the in-thread backends.
 *
 * A write to a protected page raises SIGBUS (userfaultfd with
 * UFFD_FEATURE_SIGBUS) or SIGSEGV (mprotect) in the writing thread. The
 * handler looks the address up in a table of live traps and calls the
 * trap's fault function, which copies what must be copied and lifts the
 * protection of that page; returning retries the write. Handling the fault
 * in the faulting thread avoids the ~30 us cross-vCPU wake-up a handler
 * thread pays on these VMs.
 *
 * Faults that are not ours go to the handler installed before cowkit's (the
 * sigaction saved when ours went in). If that was SIG_DFL or SIG_IGN, the
 * default disposition is restored and the faulting instruction re-runs, so
 * the process dies exactly as it would have without cowkit.
 *
 * A trap covers [start, end), or, with a contains() function, the ranges it
 * says inside that hull: one snapshot of many regions is one trap, so the
 * number of regions is limited by memory only, and the ring of retired
 * ranges below (for the one-retry rule) holds one entry per snapshot.
 *
 * Retiring a trap: the slot is cleared, then cow__trap_remove waits until no
 * handler holds the slot (per-slot counters), so the trap's memory may be
 * freed. A fault raised just before retirement but handled after it finds
 * no trap; since retirement happens only after the whole range was
 * unprotected, such a fault is retried once (remembered per thread) before
 * being treated as foreign.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mem/mem.h"

#if defined(__SANITIZE_THREAD__)
#define COW_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COW_TSAN 1
#endif
#endif
#ifdef COW_TSAN
/* ThreadSanitizer's runtime: ignore this thread's accesses in between. */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
static void unchecked_begin(void)
{
	AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
	AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
}
static void unchecked_end(void)
{
	AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
	AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
}
#else
static void unchecked_begin(void)
{
}
static void unchecked_end(void)
{
}
#endif

/*
 * The table: blocks of NTRAPS slots, chained; a block is added when every
 * slot is taken and never freed, so a handler can walk the chain without
 * locks while another thread adds or retires traps.
 */
#define NTRAPS 64

struct block {
	_Atomic(struct cow__trap *) table[NTRAPS];
	_Atomic unsigned inside[NTRAPS];
	_Atomic(struct block *) next;
};

static struct block first;
/* Ranges of recently retired traps, for the one-retry rule above. */
static _Atomic uintptr_t retired_start[NTRAPS], retired_end[NTRAPS];
static _Atomic unsigned retired_next;
static __thread uintptr_t last_retry __attribute__((tls_model("initial-exec")));
/* Set during cow__copy_guarded: a fault there jumps back instead. */
static __thread sigjmp_buf *volatile guard __attribute__((tls_model("initial-exec")));

static struct sigaction old_segv, old_bus;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;

static void chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
	if (old->sa_flags & SA_SIGINFO) {
		old->sa_sigaction(sig, si, uc);
		return;
	}
	if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN) {
		/* Let the fault kill the process as it would have. */
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigemptyset(&dfl.sa_mask);
		sigaction(sig, &dfl, NULL);
		return;
	}
	old->sa_handler(sig);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	uintptr_t addr = (uintptr_t)si->si_addr;
	if (guard) {
		/* A guarded copy read memory that went away: no trap can fix that. */
		sigjmp_buf *g = guard;
		guard = NULL;
		siglongjmp(*g, 1);
	}
	for (struct block *b = &first; b; b = atomic_load(&b->next)) {
		for (int i = 0; i < NTRAPS; i++) {
			struct cow__trap *t = atomic_load(&b->table[i]);
			if (!t || t->sig != sig || addr < t->start || addr >= t->end)
				continue;
			/* Pin the slot, then check it still holds the same trap. */
			atomic_fetch_add(&b->inside[i], 1);
			if (atomic_load(&b->table[i]) == t &&
			    (!t->contains || t->contains(t, addr))) {
				t->fault(t, addr & ~(uintptr_t)(COW__PAGE - 1));
				atomic_fetch_sub(&b->inside[i], 1);
				last_retry = 0;
				errno = saved;
				return;
			}
			atomic_fetch_sub(&b->inside[i], 1);
		}
	}
	for (int i = 0; i < NTRAPS; i++) {
		if (addr >= atomic_load(&retired_start[i]) && addr < atomic_load(&retired_end[i]) &&
		    last_retry != addr) {
			last_retry = addr;
			errno = saved;
			return;
		}
	}
	errno = saved;
	chain(sig, si, uc);
}

static int install(void)
{
	int rc = 0;
	pthread_mutex_lock(&install_lock);
	if (!installed) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_fault;
		sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSEGV, &sa, &old_segv) < 0 || sigaction(SIGBUS, &sa, &old_bus) < 0)
			rc = -errno;
		else
			installed = true;
	}
	pthread_mutex_unlock(&install_lock);
	return rc;
}

int cow__trap_install(void)
{
	return install();
}

int cow__trap_add(struct cow__trap *t)
{
	int rc = install();
	if (rc)
		return rc;
	for (struct block *b = &first;;) {
		for (int i = 0; i < NTRAPS; i++) {
			struct cow__trap *empty = NULL;
			if (atomic_compare_exchange_strong(&b->table[i], &empty, t))
				return 0;
		}
		struct block *next = atomic_load(&b->next);
		if (!next) {
			struct block *nb = cow__calloc(1, sizeof(*nb));
			if (!nb)
				return COW_ENOMEM;
			if (!atomic_compare_exchange_strong(&b->next, &next, nb))
				cow__free(nb); /* another thread added one: use it */
			else
				next = nb;
		}
		b = next;
	}
}

void cow__trap_remove(struct cow__trap *t)
{
	if (!t)
		return;
	for (struct block *b = &first; b; b = atomic_load(&b->next)) {
		for (int i = 0; i < NTRAPS; i++) {
			if (atomic_load(&b->table[i]) != t)
				continue;
			unsigned r = atomic_fetch_add(&retired_next, 1) % NTRAPS;
			atomic_store(&retired_start[r], 0);
			atomic_store(&retired_end[r], t->end);
			atomic_store(&retired_start[r], t->start);
			atomic_store(&b->table[i], NULL);
			while (atomic_load(&b->inside[i]) != 0)
				sched_yield();
			return;
		}
	}
}

int cow__copy_guarded(void *dst, const void *src, size_t len)
{
	sigjmp_buf jb;
	sigjmp_buf *prev = guard;
	if (sigsetjmp(jb, 0)) {
		guard = prev;
		unchecked_end();
		return COW_EFAULT;
	}
	guard = &jb;
	unchecked_begin();
	atomic_signal_fence(memory_order_seq_cst); /* the handler reads `guard` */
	memcpy(dst, src, len);
	atomic_signal_fence(memory_order_seq_cst);
	unchecked_end();
	guard = prev;
	return 0;
}

void cow__futex_wait(_Atomic uint32_t *word, uint32_t expect, uint64_t timeout_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
			      .tv_nsec = (long)(timeout_ns % 1000000000u)};
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expect, &ts, NULL, 0);
}

void cow__futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

bool cow__is_zero(const void *p, size_t len)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i += 8) {
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	}
	return true;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

uint64_t cow__median(uint32_t *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u32);
	return v[n / 2];
}

unsigned cow__ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}
