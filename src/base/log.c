/* Diagnostics: quiet by default, loud about corruption. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

void cow__log(const char *fmt, ...)
{
	const char *env = getenv("COW_LOG");
	if (env && strcmp(env, "off") == 0)
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cowkit: %s\n", buf);
}

static _Thread_local uint64_t last_blk;
static _Thread_local const char *last_why;

bool cow__last_corrupt(uint64_t *blk, const char **why)
{
	if (!last_why)
		return false;
	*blk = last_blk;
	*why = last_why;
	return true;
}

int cow__corrupt(const char *file, int line, uint64_t blk, const char *why)
{
	last_blk = blk;
	last_why = why;
	cow__log("corruption detected at block %llu: %s (%s:%d)", (unsigned long long)blk, why,
		 file, line);
	return COW_ECORRUPT;
}

uint64_t cow__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
