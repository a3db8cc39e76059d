/* Support for check.h: failure reports, temp dirs, allocation injection. */
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static char tmpdir[256];
static pid_t tmpdir_owner;

void check__fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (tmpdir[0])
		fprintf(stderr, "(test files kept in %s)\n", tmpdir);
	tmpdir[0] = 0; /* keep it for inspection */
	abort();
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void rm_tmpdir(void)
{
	if (tmpdir[0] && getpid() == tmpdir_owner)
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *check_tmpdir(void)
{
	if (tmpdir[0])
		return tmpdir;
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/cowtest.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(1);
	}
	tmpdir_owner = getpid();
	atexit(rm_tmpdir);
	return tmpdir;
}

const char *check_path(const char *name)
{
	static char bufs[8][512];
	static int next;
	char *b = bufs[next++ & 7];
	snprintf(b, 512, "%s/%s", check_tmpdir(), name);
	return b;
}

static long fail_at, seen;
static int fail_persistent;

static void *failing_realloc(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	if (size == 0) {
		free(ptr);
		return NULL;
	}
	seen++;
	if (fail_at > 0 && (seen == fail_at || (fail_persistent && seen > fail_at)))
		return NULL;
	return realloc(ptr, size);
}

void check_alloc_fail_at(long n, int persistent)
{
	static const cow_allocator a = {failing_realloc, NULL};
	cow_set_allocator(&a);
	fail_at = n;
	fail_persistent = persistent;
	seen = 0;
}

long check_alloc_count(void)
{
	long n = seen;
	seen = 0;
	return n;
}

uint64_t check_seed(void)
{
	const char *env = getenv("COW_SEED");
	uint64_t seed;
	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
	}
	if (seed == 0)
		seed = 1;
	printf("seed: COW_SEED=%llu\n", (unsigned long long)seed);
	fflush(stdout);
	return seed;
}
