/*
 * cow_fault: what a write after fork() costs, per page and in memory.
 *
 * usage: cow_fault MIB HUGE N FRACTION...
 *   The parent populates MIB of anonymous memory (4 KiB pages, or THP with
 *   HUGE=1) and forks; the child writes one byte into FRACTION of the pages
 *   (spread evenly), timing the loop, then reports its private dirty memory
 *   (cow_share_private_dirty) and exits. N forks per fraction.
 *
 * Peers in the same run, written to the same CSV:
 *   write_private   the same loop on pages the parent owns alone (no fault)
 *   first_touch     the same loop on fresh, never-touched memory (zero-fill fault)
 *
 * CSV on stdout: mib,pages,case,fraction,pages_written,ns_per_page,extra_mib,n
 * (ns_per_page and extra_mib are medians; extra_mib is the writer's private
 * dirty beyond what an idle child holds).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "cow/share.h"

#define PG 4096ul

static char *region(size_t len, int huge)
{
	char *mem = mmap(NULL, len + (2u << 20), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("cow_fault: mmap");
		exit(1);
	}
	char *r = (char *)(((uintptr_t)mem + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
	madvise(r, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return r;
}

static double write_pages(char *r, size_t npages, size_t k)
{
	double t0 = bench_now_ns();
	for (size_t j = 0; j < k; j++)
		r[(j * npages / k) * PG] += 1;
	return k ? (bench_now_ns() - t0) / (double)k : 0;
}

/* Fork a child that writes k pages; returns its ns/page and private dirty bytes. */
static void child_writes(char *r, size_t npages, size_t k, double *ns, double *dirty)
{
	int p[2];
	if (pipe(p))
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		double out[2];
		out[0] = write_pages(r, npages, k);
		uint64_t pd = 0;
		cow_share_private_dirty(getpid(), &pd);
		out[1] = (double)pd;
		if (write(p[1], out, sizeof(out)) != sizeof(out))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	double in[2] = {0, 0};
	if (read(p[0], in, sizeof(in)) != sizeof(in))
		fprintf(stderr, "cow_fault: child failed\n");
	close(p[0]);
	waitpid(pid, NULL, 0);
	*ns = in[0];
	*dirty = in[1];
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: cow_fault MIB HUGE N FRACTION...\n");
		return 2;
	}
	size_t mib = strtoul(argv[1], NULL, 10);
	int huge = atoi(argv[2]), n = atoi(argv[3]);
	if (mib < 2 || n < 1 || n > 100)
		return 2;
	size_t len = mib << 20, npages = len / PG;
	const char *kind = huge ? "thp" : "4k";
	char *r = region(len, huge);
	for (size_t off = 0; off < len; off += PG)
		r[off] = 1;
	double *ns = calloc((size_t)n, sizeof(double)), *dirty = calloc((size_t)n, sizeof(double));
	double base_dirty = 0;
	for (int i = 0; i < n; i++) {
		double t;
		child_writes(r, npages, 0, &t, &dirty[i]);
	}
	qsort(dirty, (size_t)n, sizeof(double), bench_cmp_double);
	base_dirty = dirty[n / 2];
	for (int a = 4; a < argc; a++) {
		double f = atof(argv[a]);
		size_t k = (size_t)(f * (double)npages);
		if (k == 0)
			continue;
		for (int i = 0; i < n; i++)
			child_writes(r, npages, k, &ns[i], &dirty[i]);
		qsort(ns, (size_t)n, sizeof(double), bench_cmp_double);
		qsort(dirty, (size_t)n, sizeof(double), bench_cmp_double);
		printf("%zu,%s,cow_fault,%g,%zu,%.0f,%.1f,%d\n", mib, kind, f, k, ns[n / 2],
		       (dirty[n / 2] - base_dirty) / 1048576.0, n);
		/* Peer: the same writes on pages this process owns alone. */
		for (int i = 0; i < n; i++)
			ns[i] = write_pages(r, npages, k);
		qsort(ns, (size_t)n, sizeof(double), bench_cmp_double);
		printf("%zu,%s,write_private,%g,%zu,%.0f,0,%d\n", mib, kind, f, k, ns[n / 2], n);
		fflush(stdout);
	}
	/* Peer: first touch of fresh memory (zero-fill fault), once over the region. */
	char *fresh = region(len, huge);
	printf("%zu,%s,first_touch,1,%zu,%.0f,%.1f,1\n", mib, kind, npages,
	       write_pages(fresh, npages, npages), (double)len / 1048576.0);
	free(ns);
	free(dirty);
	return 0;
}
