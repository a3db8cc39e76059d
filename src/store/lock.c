/*
 * The lock file: writer lock, the newest committed root for readers in every
 * process, and the reader table (FORMAT.md section 8).
 *
 * Readers never lock: a reader claims a slot with compare-and-swap, writes
 * the generation it reads, then re-reads the newest generation; if it moved,
 * it tries again. The writer publishes a generation before it scans the
 * slots, so (all accesses sequentially consistent) any reader it misses has
 * seen the newer generation and retried. Slots of dead processes are cleared
 * by the writer's scan.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store.h"

static const char lk_magic[8] = {'C', 'O', 'W', 'K', 'I', 'T', 'L', 'K'};

#define LK_SEQ 64
#define LK_GEN 72
#define LK_NBLOCKS 80
#define LK_CATALOG 88
#define LK_REFS 112
#define LK_INFLIGHT 136 /* generation a writer is committing, or 0 */

static uint64_t *u64at(uint8_t *base, size_t off)
{
	return (uint64_t *)(void *)(base + off);
}

/* Process start time in clock ticks since boot (field 22 of /proc/self/stat). */
static uint64_t proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command name may contain spaces */
	if (!p)
		return 0;
	int field = 2;
	for (; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

static int ofd_lock(int fd, short type, off_t start, bool wait)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
	for (;;) {
		if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EACCES)
			return COW_ELOCKED;
		return -errno;
	}
}

int cow__lock_open(const char *path, struct cow__lock *lk, bool *alone)
{
	char lpath[4096];
	memset(lk, 0, sizeof(*lk));
	lk->fd = lk->wfd = -1;
	if (snprintf(lpath, sizeof(lpath), "%s.lock", path) >= (int)sizeof(lpath))
		return COW_ENAMETOOLONG;
	int rc;
	lk->fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lk->fd < 0)
		return -errno;
	lk->wfd = open(lpath, O_RDWR | O_CLOEXEC);
	if (lk->wfd < 0) {
		rc = -errno;
		goto fail;
	}
	lk->wfd_pid = getpid();
	/* Serialize openers with the writer lock, then see whether we are alone. */
	rc = ofd_lock(lk->wfd, F_WRLCK, 0, true);
	if (rc)
		goto fail;
	*alone = ofd_lock(lk->fd, F_WRLCK, 1, false) == 0;
	struct stat st;
	if (fstat(lk->fd, &st) != 0) {
		rc = -errno;
		goto fail;
	}
	if (*alone && (uint64_t)st.st_size != LK_SIZE && ftruncate(lk->fd, LK_SIZE) != 0) {
		rc = -errno;
		goto fail;
	}
	if (!*alone && (uint64_t)st.st_size != LK_SIZE) {
		rc = COW_EFORMAT;
		goto fail;
	}
	lk->map = mmap(NULL, LK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, lk->fd, 0);
	if (lk->map == MAP_FAILED) {
		lk->map = NULL;
		rc = -errno;
		goto fail;
	}
	if (!*alone && memcmp(lk->map, lk_magic, 8) != 0) {
		rc = COW_EFORMAT;
		goto fail;
	}
	lk->start_pid = getpid();
	lk->start_time = proc_start_time(lk->start_pid);
	return 0; /* still holding the writer lock: the caller recovers, then releases */
fail:
	cow__lock_close(lk);
	return rc;
}

int cow__lock_shared(struct cow__lock *lk)
{
	/* Downgrade (or take) our shared "open" lock on byte 1, release the writer lock. */
	int rc = ofd_lock(lk->fd, F_RDLCK, 1, true);
	cow__lock_writer_release(lk);
	return rc;
}

void cow__lock_close(struct cow__lock *lk)
{
	if (lk->map)
		munmap(lk->map, LK_SIZE);
	if (lk->fd >= 0)
		close(lk->fd);
	if (lk->wfd >= 0)
		close(lk->wfd);
	lk->map = NULL;
	lk->fd = lk->wfd = -1;
}

int cow__lock_writer(struct cow__lock *lk, bool wait)
{
	if (lk->wfd_pid != getpid()) {
		/* A forked child: the inherited description is the parent's lock. */
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", lk->fd);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		close(lk->wfd);
		lk->wfd = fd;
		lk->wfd_pid = getpid();
	}
	return ofd_lock(lk->wfd, F_WRLCK, 0, wait);
}

void cow__lock_writer_release(struct cow__lock *lk)
{
	struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	fcntl(lk->wfd, F_OFD_SETLK, &fl);
}

/*
 * The seqlock over the published root. Written with release stores after an
 * odd sequence number and read with acquire loads between two reads of the
 * sequence, so a reader that sees the same even number twice saw one whole
 * version. (No standalone fences: ThreadSanitizer does not model them.)
 */
static void put_meta(struct cow__lock *lk, size_t off, uint64_t v)
{
	__atomic_store_n(u64at(lk->map, off), v, __ATOMIC_RELEASE);
}

static uint64_t get_meta(struct cow__lock *lk, size_t off)
{
	return __atomic_load_n(u64at(lk->map, off), __ATOMIC_ACQUIRE);
}

void cow__lock_publish(struct cow__lock *lk, const struct cow__meta *m)
{
	uint64_t *seq = u64at(lk->map, LK_SEQ);
	uint64_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);
	__atomic_store_n(seq, s + 1, __ATOMIC_SEQ_CST);
	put_meta(lk, LK_NBLOCKS, m->nblocks);
	put_meta(lk, LK_CATALOG, m->catalog.addr);
	put_meta(lk, LK_CATALOG + 8, m->catalog.birth);
	put_meta(lk, LK_CATALOG + 16, m->catalog.csum);
	put_meta(lk, LK_REFS, m->refs.addr);
	put_meta(lk, LK_REFS + 8, m->refs.birth);
	put_meta(lk, LK_REFS + 16, m->refs.csum);
	__atomic_store_n(u64at(lk->map, LK_GEN), m->gen, __ATOMIC_SEQ_CST);
	__atomic_store_n(seq, s + 2, __ATOMIC_SEQ_CST);
}

void cow__lock_read_meta(struct cow__lock *lk, struct cow__meta *m)
{
	for (;;) {
		uint64_t s1 = get_meta(lk, LK_SEQ);
		if (s1 & 1) {
			sched_yield();
			continue;
		}
		m->gen = get_meta(lk, LK_GEN);
		m->nblocks = get_meta(lk, LK_NBLOCKS);
		m->catalog.addr = get_meta(lk, LK_CATALOG);
		m->catalog.birth = get_meta(lk, LK_CATALOG + 8);
		m->catalog.csum = get_meta(lk, LK_CATALOG + 16);
		m->refs.addr = get_meta(lk, LK_REFS);
		m->refs.birth = get_meta(lk, LK_REFS + 8);
		m->refs.csum = get_meta(lk, LK_REFS + 16);
		if (get_meta(lk, LK_SEQ) == s1)
			return;
	}
}

void cow__lock_set_inflight(struct cow__lock *lk, uint64_t gen)
{
	__atomic_store_n(u64at(lk->map, LK_INFLIGHT), gen, __ATOMIC_SEQ_CST);
}

uint64_t cow__lock_inflight(struct cow__lock *lk)
{
	return __atomic_load_n(u64at(lk->map, LK_INFLIGHT), __ATOMIC_SEQ_CST);
}

void cow__lock_reset(struct cow__lock *lk, const struct cow__meta *m)
{
	memset(lk->map + LK_HDR, 0, LK_SIZE - LK_HDR);
	memcpy(lk->map, lk_magic, 8);
	cow__lock_set_inflight(lk, 0);
	cow__put32(lk->map + 8, 1);
	cow__lock_publish(lk, m);
}

struct slot {
	uint32_t pid;
	uint32_t pad;
	uint64_t start;
	uint64_t gen;
	uint64_t pad2;
};

static struct slot *slot_at(struct cow__lock *lk, int i)
{
	return (struct slot *)(void *)(lk->map + LK_HDR + (size_t)i * LK_SLOT);
}

int cow__lock_reader_enter(struct cow__lock *lk, void (*local)(void *ctx, struct cow__meta *m),
			   void *ctx, struct cow__meta *m, int *out)
{
	uint32_t me = (uint32_t)getpid();
	if ((pid_t)me != lk->start_pid) { /* forked child */
		lk->start_pid = (pid_t)me;
		lk->start_time = proc_start_time((pid_t)me);
	}
	static _Thread_local int hint;
	for (int k = 0; k < (int)LK_NSLOTS; k++) {
		int i = (hint + k) % (int)LK_NSLOTS;
		struct slot *s = slot_at(lk, i);
		uint32_t zero = 0;
		if (__atomic_load_n(&s->pid, __ATOMIC_RELAXED) != 0 ||
		    !__atomic_compare_exchange_n(&s->pid, &zero, me, false, __ATOMIC_SEQ_CST,
						 __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&s->start, lk->start_time, __ATOMIC_RELAXED);
		for (;;) {
			/*
			 * This process's own newest commit, published by RCU, unless
			 * another process has committed since: then the shared copy.
			 */
			uint64_t gen = __atomic_load_n(u64at(lk->map, LK_GEN), __ATOMIC_SEQ_CST);
			if (local)
				local(ctx, m);
			if (!local || m->gen != gen)
				cow__lock_read_meta(lk, m);
			__atomic_store_n(&s->gen, m->gen, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(u64at(lk->map, LK_GEN), __ATOMIC_SEQ_CST) == m->gen)
				break;
		}
		hint = i;
		*out = i;
		return 0;
	}
	return COW_EBUSY;
}

void cow__lock_reader_leave(struct cow__lock *lk, int i)
{
	struct slot *s = slot_at(lk, i);
	__atomic_store_n(&s->gen, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int cow__lock_readers(struct cow__lock *lk, uint64_t **gens, size_t *n, size_t *cap)
{
	*n = 0; /* every load below is sequentially consistent with the publish */
	for (int i = 0; i < (int)LK_NSLOTS; i++) {
		struct slot *s = slot_at(lk, i);
		uint32_t pid = __atomic_load_n(&s->pid, __ATOMIC_SEQ_CST);
		if (!pid)
			continue;
		uint64_t gen = __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST);
		uint64_t start = __atomic_load_n(&s->start, __ATOMIC_RELAXED);
		bool dead = kill((pid_t)pid, 0) != 0 && errno == ESRCH;
		/*
		 * A live pid may have been reused by another process: compare start
		 * times, reading /proc at most once a second per slot (this runs at
		 * every write transaction's begin).
		 */
		uint64_t now = cow__now_ns();
		if (!dead && gen && start &&
		    (lk->checked_pid[i] != pid || now - lk->checked_at[i] > 1000000000u)) {
			dead = proc_start_time((pid_t)pid) != start;
			lk->checked_pid[i] = pid;
			lk->checked_at[i] = now;
		}
		if (dead) {
			/* Nobody else writes a slot whose owner is dead: clear gen, then free it. */
			__atomic_store_n(&s->gen, 0, __ATOMIC_SEQ_CST);
			__atomic_compare_exchange_n(&s->pid, &pid, 0, false, __ATOMIC_SEQ_CST,
						    __ATOMIC_RELAXED);
			continue;
		}
		if (!gen)
			continue;
		int rc = cow__grow((void **)gens, cap, *n + 1, sizeof(uint64_t));
		if (rc)
			return rc;
		(*gens)[(*n)++] = gen;
	}
	if (*n > 1)
		qsort(*gens, *n, sizeof(uint64_t), cmp_u64);
	return 0;
}
