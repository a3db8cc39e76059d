/*
 * fork_lat: fork() against vfork+exec and posix_spawn as the parent's
 * resident memory grows.
 *
 * usage: fork_lat GIB HUGE N
 *   GIB   resident anonymous memory of the parent (fractions fine: 0.1)
 *   HUGE  0 = 4 KiB pages (MADV_NOHUGEPAGE), 1 = THP (MADV_HUGEPAGE)
 *   N     repetitions per method; medians, minimum and maximum are printed
 *
 * One CSV line per method on stdout:
 *   gib,pages,method,median_ms,min_ms,max_ms,n,thp_mib
 * Methods:
 *   fork          until fork() returns in the parent (the child _exits at once)
 *   fork_exit     fork, child _exit, until waitpid returns
 *   fork_exec     fork + execve /bin/true, until reaped
 *   vfork_exec    vfork + execve /bin/true, until reaped
 *   posix_spawn   posix_spawn /bin/true, until reaped
 * thp_mib is AnonHugePages of the parent after populating (how much of the
 * region the kernel really backed with huge pages).
 */
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

extern char **environ;

static double smaps_kb(const char *key)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	double v = 0;
	size_t kl = strlen(key);
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			v = atof(line + kl + 1);
	if (f)
		fclose(f);
	return v;
}

static const char *const truth[] = {"/bin/true", NULL};

static double one(const char *method)
{
	double t0 = bench_now_ms(), t = 0;
	pid_t pid;
	if (strcmp(method, "fork") == 0 || strcmp(method, "fork_exit") == 0) {
		pid = fork();
		if (pid == 0)
			_exit(0);
		t = bench_now_ms() - t0;
		waitpid(pid, NULL, 0);
		return strcmp(method, "fork") == 0 ? t : bench_now_ms() - t0;
	}
	if (strcmp(method, "fork_exec") == 0) {
		pid = fork();
		if (pid == 0) {
			execve(truth[0], (char *const *)truth, environ);
			_exit(127);
		}
	} else if (strcmp(method, "vfork_exec") == 0) {
		pid = vfork();
		if (pid == 0) {
			execve(truth[0], (char *const *)truth, environ);
			_exit(127);
		}
	} else {
		if (posix_spawn(&pid, truth[0], NULL, NULL, (char *const *)truth, environ))
			return -1;
	}
	if (pid < 0)
		return -1;
	waitpid(pid, NULL, 0);
	return bench_now_ms() - t0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: fork_lat GIB HUGE N\n");
		return 2;
	}
	double gib = atof(argv[1]);
	int huge = atoi(argv[2]), n = atoi(argv[3]);
	if (gib <= 0 || n < 1 || n > 1000)
		return 2;
	size_t len = (size_t)(gib * 1073741824.0) & ~(size_t)((2u << 20) - 1);
	char *mem = mmap(NULL, len + (2u << 20), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("fork_lat: mmap");
		return 1;
	}
	/* 2 MiB-align so THP can back all of it. */
	char *r = (char *)(((uintptr_t)mem + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
	madvise(r, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (size_t off = 0; off < len; off += 4096)
		r[off] = 1;
	double thp_mib = smaps_kb("AnonHugePages") / 1024;
	static const char *const methods[] = {"fork", "fork_exit", "fork_exec", "vfork_exec",
					      "posix_spawn"};
	double *v = calloc((size_t)n, sizeof(*v));
	for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
		one(methods[m]); /* warm up */
		for (int i = 0; i < n; i++)
			v[i] = one(methods[m]);
		qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
		printf("%g,%s,%s,%.4f,%.4f,%.4f,%d,%.0f\n", gib, huge ? "thp" : "4k", methods[m],
		       v[n / 2], v[0], v[n - 1], n, thp_mib);
		fflush(stdout);
	}
	free(v);
	return 0;
}
