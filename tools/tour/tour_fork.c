/*
 * Tour step: fork() is an instant clone of a whole process. It copies no
 * data, only page tables, so its cost grows with resident memory (one PTE
 * per 4 KiB page, one PMD per 2 MiB huge page); the copying happens later,
 * one page per first write. This step measures both at two sizes
 * (bench/fork.sh does the full sweep against vfork+exec and posix_spawn).
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "cli.h"
#include "cow/share.h"
#include "tour.h"

#define PG   4096ul
#define HUGE (2ul << 20)

extern char **environ;

/* A populated, 2 MiB-aligned anonymous region; THP on request. */
static char *region(size_t len, int huge, void **base)
{
	char *m =
		mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	*base = m;
	char *r = (char *)(((uintptr_t)m + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	madvise(r, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (size_t off = 0; off < len; off += PG)
		r[off] = 1;
	return r;
}

/* Median time until fork() returns in the parent; the child exits at once. */
static double fork_ms(int reps)
{
	double v[9];
	for (int i = 0; i < reps; i++) {
		double t0 = bench_now_ns();
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		v[i] = (bench_now_ns() - t0) / 1e6;
		if (pid < 0)
			return -1;
		waitpid(pid, NULL, 0);
	}
	qsort(v, (size_t)reps, sizeof(v[0]), bench_cmp_double);
	return v[reps / 2];
}

static double spawn_ms(int reps)
{
	double v[9];
	char *const argv[] = {(char *)"/bin/true", NULL};
	for (int i = 0; i < reps; i++) {
		double t0 = bench_now_ns();
		pid_t pid;
		if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ))
			return -1;
		waitpid(pid, NULL, 0);
		v[i] = (bench_now_ns() - t0) / 1e6;
	}
	qsort(v, (size_t)reps, sizeof(v[0]), bench_cmp_double);
	return v[reps / 2];
}

/*
 * The child writes one byte into every page of r; returns its ns per page and
 * its private dirty bytes. For comparison the parent then times the same loop
 * twice: once on its still write-protected pages (a fault that reuses the
 * page, nothing copied), once more on pages now plainly writable.
 */
static int cow_cost(char *r, size_t len, double *cow_ns, double *reuse_ns, double *plain_ns,
		    uint64_t *dirty)
{
	int p[2];
	if (pipe(p))
		return -errno;
	size_t npages = len / PG;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(p[0]);
		double out[2];
		double t0 = bench_now_ns();
		for (size_t i = 0; i < npages; i++)
			r[i * PG] += 1;
		out[0] = (bench_now_ns() - t0) / (double)npages;
		uint64_t pd = 0;
		cow_share_private_dirty(getpid(), &pd);
		out[1] = (double)pd;
		_exit(write(p[1], out, sizeof(out)) == sizeof(out) ? 0 : 1);
	}
	close(p[1]);
	double in[2] = {0, 0};
	ssize_t got = read(p[0], in, sizeof(in));
	close(p[0]);
	waitpid(pid, NULL, 0);
	if (got != sizeof(in))
		return COW_ESRCH;
	*cow_ns = in[0];
	*dirty = (uint64_t)in[1];
	/* The parent's PTEs are still write-protected: the first write faults and reuses the page.
	 */
	double t0 = bench_now_ns();
	for (size_t i = 0; i < npages; i++)
		r[i * PG] += 1;
	*reuse_ns = (bench_now_ns() - t0) / (double)npages;
	t0 = bench_now_ns();
	for (size_t i = 0; i < npages; i++)
		r[i * PG] += 1;
	*plain_ns = (bench_now_ns() - t0) / (double)npages;
	return 0;
}

int tour_fork(struct tour *t)
{
	const size_t sizes[2] = {t->quick ? 16ul << 20 : 64ul << 20,
				 t->quick ? 64ul << 20 : 512ul << 20};
	const int reps = t->quick ? 3 : 7;
	char a[32];
	for (int s = 0; s < 2; s++) {
		double ms[2];
		for (int huge = 0; huge < 2; huge++) {
			void *base;
			char *r = region(sizes[s], huge, &base);
			if (!r) {
				tour_say("mmap of %s failed: %s",
					 cli_size(a, sizeof(a), (double)sizes[s]), strerror(errno));
				return 1;
			}
			ms[huge] = fork_ms(reps);
			munmap(base, sizes[s] + HUGE);
		}
		tour_say("fork() with %8s resident: %7.3f ms on 4 KiB pages, %6.3f ms on THP "
			 "(%.0fx less)",
			 cli_size(a, sizeof(a), (double)sizes[s]), ms[0], ms[1],
			 ms[1] > 0 ? ms[0] / ms[1] : 0);
	}
	tour_say("posix_spawn of /bin/true, for comparison: %.3f ms (flat as the parent grows: "
		 "bench/fork)",
		 spawn_ms(reps));

	size_t len = sizes[0];
	void *base;
	char *r = region(len, 0, &base);
	if (!r) {
		tour_say("mmap failed: %s", strerror(errno));
		return 1;
	}
	double cow_ns = 0, reuse_ns = 0, plain_ns = 0;
	uint64_t dirty = 0;
	int rc = cow_cost(r, len, &cow_ns, &reuse_ns, &plain_ns, &dirty);
	munmap(base, len + HUGE);
	if (rc) {
		tour_say("the writing child failed: %s", cow_strerror(rc));
		return 1;
	}
	char b[32];
	tour_say("child writes every page of %s: %.0f ns per page (copy-on-write fault: copy)",
		 cli_size(a, sizeof(a), (double)len), cow_ns);
	tour_say("parent then writes them: %.0f ns per page (fault, page reused), then %.0f ns "
		 "(no fault)",
		 reuse_ns, plain_ns);
	tour_say("child's private dirty memory afterwards: %s (the copies)",
		 cli_size(b, sizeof(b), (double)dirty));
	return 0;
}
