/*
 * io_count: an LD_PRELOAD shim that counts the bytes a process hands to the
 * kernel through write(2)-family calls on regular files under one folder,
 * so that a benchmark can report what an engine writes per commit as a
 * measured figure rather than an estimate.
 *
 *   IO_COUNT_DIR=/tmp LD_PRELOAD=build/bench/libio_count.so store_bench ...
 *
 * Counted: the bytes each successful write, pwrite, pwrite64, writev,
 * pwritev, pwritev64, pwritev2 and pwritev64v2 returns, on a descriptor
 * that is a regular file whose path starts with IO_COUNT_DIR (every regular
 * file when it is unset). Not counted: stores through a shared writable
 * mapping (none of the engines measured here writes its durable data that
 * way: LMDB without MDB_WRITEMAP, SQLite's -shm file is not durable data),
 * writes glibc makes internally (stdio), and what the file system adds
 * (journal, metadata): this is the application's side of the ledger;
 * /proc/self/io write_bytes gives the page cache's side.
 *
 * A program reads the counters through io_count_bytes() and
 * io_count_calls() (io_count.h), found with dlsym(RTLD_DEFAULT, ...) so
 * that it runs, without the figures, when the shim is not preloaded. With
 * IO_COUNT_REPORT=FILE the shim appends "io_count: BYTES bytes in CALLS
 * calls" to FILE at exit (a file: programs such as dd close stderr before
 * destructors run), which measures any program (cow put, sqlite3, dd).
 *
 * Each descriptor is classified once, at its first write (fstat, then
 * readlink of /proc/self/fd/N), and forgotten when close, dup2 or dup3
 * reuse its number. Counters are atomic: engines write from background
 * threads too (RocksDB's flushes and compactions).
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io_count.h"

#define FD_MAX 65536 /* descriptors at or above this are never counted */

enum { FD_UNKNOWN, FD_COUNTED, FD_IGNORED };

static _Atomic unsigned char fd_class[FD_MAX];
static _Atomic uint64_t total_bytes, total_calls;
static char dir[PATH_MAX];
static size_t dir_len;

__attribute__((constructor)) static void io_count_init(void)
{
	const char *d = getenv("IO_COUNT_DIR");
	if (!d || !*d)
		return;
	/* Paths from /proc/self/fd are canonical: compare against a canonical folder. */
	if (!realpath(d, dir))
		snprintf(dir, sizeof(dir), "%s", d);
	dir_len = strlen(dir);
	while (dir_len > 1 && dir[dir_len - 1] == '/')
		dir[--dir_len] = '\0';
}

__attribute__((destructor)) static void io_count_report(void)
{
	const char *path = getenv("IO_COUNT_REPORT");
	FILE *f = path && *path ? fopen(path, "a") : NULL;
	if (!f)
		return;
	fprintf(f, "io_count: %llu bytes in %llu calls\n",
		(unsigned long long)atomic_load(&total_bytes),
		(unsigned long long)atomic_load(&total_calls));
	fclose(f);
}

static int classify(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return FD_IGNORED;
	if (!dir_len)
		return FD_COUNTED;
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return FD_IGNORED;
	path[n] = '\0';
	if ((size_t)n < dir_len || memcmp(path, dir, dir_len) != 0)
		return FD_IGNORED;
	if ((size_t)n > dir_len && path[dir_len] != '/' && dir_len > 1)
		return FD_IGNORED; /* /tmp/ab is not under /tmp/a */
	return FD_COUNTED;
}

static void count(int fd, ssize_t n)
{
	if (n <= 0 || fd < 0 || fd >= FD_MAX)
		return;
	int c = atomic_load_explicit(&fd_class[fd], memory_order_relaxed);
	if (c == FD_UNKNOWN) {
		c = classify(fd);
		atomic_store_explicit(&fd_class[fd], (unsigned char)c, memory_order_relaxed);
	}
	if (c != FD_COUNTED)
		return;
	atomic_fetch_add_explicit(&total_bytes, (uint64_t)n, memory_order_relaxed);
	atomic_fetch_add_explicit(&total_calls, 1, memory_order_relaxed);
}

static void forget(int fd)
{
	if (fd >= 0 && fd < FD_MAX)
		atomic_store_explicit(&fd_class[fd], FD_UNKNOWN, memory_order_relaxed);
}

/* The next definition of @name after this shim's: libc's. */
static void *next(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (!p) {
		fprintf(stderr, "io_count: no libc %s\n", name); /* stdio: not through write() */
		abort();
	}
	return p;
}

/* real_: libc's @name, looked up at first use (calls may come before the constructor). */
#define REAL(name)                                                                                 \
	static __typeof__(&name) real_;                                                            \
	if (!real_)                                                                                \
		real_ = (__typeof__(&name))next(#name);

uint64_t io_count_bytes(void)
{
	return atomic_load(&total_bytes);
}

uint64_t io_count_calls(void)
{
	return atomic_load(&total_calls);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	REAL(write);
	ssize_t n = real_(fd, buf, len);
	count(fd, n);
	return n;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	REAL(pwrite);
	ssize_t n = real_(fd, buf, len, off);
	count(fd, n);
	return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	REAL(pwrite64);
	ssize_t n = real_(fd, buf, len, off);
	count(fd, n);
	return n;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(writev);
	ssize_t n = real_(fd, iov, cnt);
	count(fd, n);
	return n;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(pwritev);
	ssize_t n = real_(fd, iov, cnt, off);
	count(fd, n);
	return n;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	REAL(pwritev64);
	ssize_t n = real_(fd, iov, cnt, off);
	count(fd, n);
	return n;
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	REAL(pwritev2);
	ssize_t n = real_(fd, iov, cnt, off, flags);
	count(fd, n);
	return n;
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
{
	REAL(pwritev64v2);
	ssize_t n = real_(fd, iov, cnt, off, flags);
	count(fd, n);
	return n;
}

int close(int fd)
{
	REAL(close);
	forget(fd);
	return real_(fd);
}

int dup2(int old, int fd)
{
	REAL(dup2);
	int rc = real_(old, fd);
	if (rc >= 0)
		forget(rc);
	return rc;
}

int dup3(int old, int fd, int flags)
{
	REAL(dup3);
	int rc = real_(old, fd, flags);
	if (rc >= 0)
		forget(rc);
	return rc;
}
