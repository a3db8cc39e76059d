/* Diagnostics: through the log hook (cow_set_log), stderr by default. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

static cow_log_fn log_fn;
static void *log_ctx;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static bool quiet;

static void read_env(void)
{
	const char *env = getenv("COW_LOG");
	quiet = env && strcmp(env, "off") == 0;
}

static void to_stderr(void *ctx, int level, const char *msg)
{
	(void)ctx;
	pthread_once(&env_once, read_env);
	if (!quiet && level <= COW_LOG_WARN)
		fprintf(stderr, "cowkit: %s\n", msg);
}

void cow_set_log(cow_log_fn fn, void *ctx)
{
	log_fn = fn;
	log_ctx = ctx;
}

static void vlog(int level, const char *fmt, va_list ap)
{
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_fn)
		log_fn(log_ctx, level, buf);
	else
		to_stderr(NULL, level, buf);
}

void cow__log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(COW_LOG_WARN, fmt, ap);
	va_end(ap);
}

void cow__log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(COW_LOG_ERROR, fmt, ap);
	va_end(ap);
}

int cow__corrupt(const char *file, int line, uint64_t blk, const char *why)
{
	cow__log_error("corruption detected at block %llu: %s (%s:%d)", (unsigned long long)blk, why,
		 file, line);
	return COW_ECORRUPT;
}

uint64_t cow__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
