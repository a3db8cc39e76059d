/*
 * Locks on the data file: writer exclusion and reader pins (FORMAT.md
 * section 8).
 *
 * Both are open file description (OFD) locks on byte ranges of the data file
 * itself, so they belong to the store's inode, not to the path it was reached
 * by: a symlink, a hard link, a bind mount or a relative path all meet the
 * same locks. The kernel drops them when the last descriptor of their owner
 * closes, which includes every way a process can die, in any PID namespace
 * and under any uid. Nothing here reads a pid or /proc.
 *
 *   byte 0                  writer lock (F_WRLCK, held for a write txn)
 *   PIN_BASE + gen          a reader pin on generation gen (F_RDLCK, shared)
 *
 * A process keeps its own descriptor (fd) for its locks; forked children open
 * another, since a description shared across fork() is one lock owner. The
 * writer enumerates pins with F_OFD_GETLK through a descriptor that never
 * holds a lock (the store's io descriptor), so it sees every process's pins,
 * its own included. Pins are counted per process, so threads reading the same
 * generation share one kernel lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store.h"

#define PIN_BASE COW_PIN_BASE
#define PIN_MAX	 ((1ull << 62) - 1) /* highest generation a pin can name */

/* Bumped in every child after fork(): descriptors shared with the parent are stale. */
_Atomic uint64_t cow__fork_epoch_v = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	cow__fork_epoch_v++;
}

static void install_atfork(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

/*
 * A descriptor of the same file as @fd, with its own open file description.
 * Through /proc when it is there; otherwise by path, checked to be the same
 * inode.
 */
static int reopen(int fd, const char *path, bool rdonly)
{
	int flags = (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int nfd = open(proc, flags);
	if (nfd < 0)
		nfd = open(path, flags);
	if (nfd < 0)
		return -errno;
	struct stat a, b;
	if (fstat(fd, &a) != 0 || fstat(nfd, &b) != 0) {
		int rc = -errno;
		close(nfd);
		return rc;
	}
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(nfd);
		cow__log("%s: the path now names another file", path);
		return COW_EAGAIN;
	}
	return nfd;
}

int cow__locks_open(struct cow__locks *lk, const char *path, int probe_fd, bool rdonly)
{
	memset(lk, 0, sizeof(*lk));
	lk->fd = -1;
	lk->probe_fd = probe_fd;
	lk->path = path;
	lk->rdonly = rdonly;
	pthread_mutex_init(&lk->mu, NULL);
	pthread_once(&atfork_once, install_atfork); /* before any epoch is taken */
	lk->epoch = cow__fork_epoch();
	int fd = reopen(probe_fd, path, rdonly);
	if (fd < 0)
		return fd;
	lk->fd = fd;
	return 0;
}

void cow__locks_close(struct cow__locks *lk)
{
	if (lk->fd >= 0)
		close(lk->fd);
	lk->fd = -1;
	cow__free(lk->pins);
	lk->pins = NULL;
	lk->npins = lk->cap = 0;
	pthread_mutex_destroy(&lk->mu);
}

/*
 * After fork(): the child's locks need a description of its own, and the
 * pins it inherited are the parent's. lk->mu held.
 */
static int own_fd(struct cow__locks *lk)
{
	uint64_t e = cow__fork_epoch();
	if (lk->epoch == e)
		return 0;
	int fd = reopen(lk->probe_fd, lk->path, lk->rdonly);
	if (fd < 0)
		return fd;
	/* Not close(lk->fd) on a lock: the description is still the parent's owner. */
	close(lk->fd);
	lk->fd = fd;
	lk->npins = 0;
	lk->epoch = e;
	return 0;
}

static int setlk(int fd, short type, uint64_t start, bool wait)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = (off_t)start, .l_len = 1};
	for (;;) {
		if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EACCES)
			return COW_ELOCKED;
		if (errno == EBADF) /* a write lock through a read-only descriptor */
			return COW_EREADONLY;
		return -errno;
	}
}

int cow__locks_writer(struct cow__locks *lk, bool wait)
{
	pthread_mutex_lock(&lk->mu);
	int rc = own_fd(lk);
	int fd = lk->fd;
	pthread_mutex_unlock(&lk->mu);
	if (rc)
		return rc;
	if (lk->rdonly)
		return COW_EREADONLY;
	return setlk(fd, F_WRLCK, 0, wait);
}

void cow__locks_writer_release(struct cow__locks *lk)
{
	setlk(lk->fd, F_UNLCK, 0, false);
}

int cow__locks_pin(struct cow__locks *lk, uint64_t gen)
{
	if (gen == 0 || gen > PIN_MAX)
		return COW_CORRUPT(0, "generation out of range");
	pthread_mutex_lock(&lk->mu);
	int rc = own_fd(lk);
	if (rc)
		goto out;
	for (size_t i = 0; i < lk->npins; i++)
		if (lk->pins[i].gen == gen) {
			lk->pins[i].count++;
			goto out;
		}
	rc = cow__grow((void **)&lk->pins, &lk->cap, lk->npins + 1, sizeof(*lk->pins));
	if (rc)
		goto out;
	rc = setlk(lk->fd, F_RDLCK, PIN_BASE + gen, false);
	if (rc == COW_ELOCKED) /* only a writer's F_WRLCK could conflict, and none is taken */
		rc = COW_EINTERNAL;
	if (rc)
		goto out;
	lk->pins[lk->npins++] = (struct cow__pin){gen, 1};
out:
	pthread_mutex_unlock(&lk->mu);
	return rc;
}

void cow__locks_unpin(struct cow__locks *lk, uint64_t gen, uint64_t epoch)
{
	pthread_mutex_lock(&lk->mu);
	/* A pin taken before fork() belongs to the parent: not ours to drop. */
	if (epoch == lk->epoch) {
		for (size_t i = 0; i < lk->npins; i++) {
			if (lk->pins[i].gen != gen)
				continue;
			if (--lk->pins[i].count == 0) {
				setlk(lk->fd, F_UNLCK, PIN_BASE + gen, false);
				lk->pins[i] = lk->pins[--lk->npins];
			}
			break;
		}
	}
	pthread_mutex_unlock(&lk->mu);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * F_OFD_GETLK reports one conflicting lock per call, so the pinned range is
 * searched by halves around each lock found: 2k + 1 calls for k disjoint
 * lock ranges. Overlapping pins of several processes on one generation are
 * one answer, which is all the writer needs.
 */
int cow__locks_pinned(struct cow__locks *lk, uint64_t **gens, size_t *n, size_t *cap)
{
	struct range {
		uint64_t lo, hi; /* generations lo .. hi-1 */
	} *stack = NULL;
	size_t top = 0, scap = 0;
	int rc = cow__grow((void **)&stack, &scap, 1, sizeof(*stack));
	if (rc)
		return rc;
	*n = 0;
	stack[top++] = (struct range){1, PIN_MAX + 1};
	while (top > 0) {
		struct range r = stack[--top];
		if (r.lo >= r.hi)
			continue;
		struct flock fl = {.l_type = F_WRLCK,
				   .l_whence = SEEK_SET,
				   .l_start = (off_t)(PIN_BASE + r.lo),
				   .l_len = (off_t)(r.hi - r.lo)};
		if (fcntl(lk->probe_fd, F_OFD_GETLK, &fl) != 0) {
			rc = -errno;
			goto out;
		}
		if (fl.l_type == F_UNLCK)
			continue;
		uint64_t s = (uint64_t)fl.l_start,
			 e = fl.l_len ? s + (uint64_t)fl.l_len : UINT64_MAX;
		if (s < PIN_BASE + r.lo)
			s = PIN_BASE + r.lo;
		if (e > PIN_BASE + r.hi)
			e = PIN_BASE + r.hi;
		if (s >= e) { /* cannot happen: the kernel reported a conflict in range */
			rc = COW_EINTERNAL;
			goto out;
		}
		for (uint64_t g = s - PIN_BASE; g < e - PIN_BASE; g++) {
			rc = cow__grow((void **)gens, cap, *n + 1, sizeof(uint64_t));
			if (rc)
				goto out;
			(*gens)[(*n)++] = g;
		}
		rc = cow__grow((void **)&stack, &scap, top + 2, sizeof(*stack));
		if (rc)
			goto out;
		stack[top++] = (struct range){r.lo, s - PIN_BASE};
		stack[top++] = (struct range){e - PIN_BASE, r.hi};
	}
	/* The halves are disjoint, so no generation is reported twice. */
	if (*n > 1)
		qsort(*gens, *n, sizeof(uint64_t), cmp_u64);
out:
	cow__free(stack);
	return rc;
}
