/*
 * Trust around the data file: writer exclusion through any path, reader
 * liveness that needs no pid, opening that never waits for a writer,
 * read-only opens that create nothing, locks released by kill -9, leftover
 * lock files of older versions, API misuse that is cheap to catch, and a
 * reader of a commit whose flush failed.
 *
 *   unit_store_trust            every case that needs nothing special
 *   unit_store_trust pidns      a reader in another PID namespace (skips
 *                               with the reason when unshare is refused)
 *   unit_store_trust otheruid   a reader under another uid, with no write
 *                               access to the store (root only; skips)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "io/io.h"
#include "store/store.h"

#define NKEYS 500

static cow_store *open_store(const char *path, unsigned flags)
{
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){flags}, &s));
	return s;
}

static void put_all(cow_store *s, uint32_t round)
{
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	for (int i = 0; i < NKEYS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%04d", i);
		uint32_t v[64]; /* 256 bytes: big enough that nodes are rewritten */
		for (int j = 0; j < 64; j++)
			v[j] = round * 1000003u + (uint32_t)i + (uint32_t)j;
		CHECK_OK(cow_map_put(m, k, strlen(k), v, sizeof(v)));
	}
	CHECK_OK(cow_txn_commit(t));
}

static cow_store *new_store(const char *path)
{
	cow_store *s = open_store(path, COW_STORE_CREATE);
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_txn_commit(t));
	put_all(s, 1);
	return s;
}

/* Number of keys of @m whose value is not round @round's. */
static int wrong_values(cow_map *m, uint32_t round)
{
	int bad = 0;
	for (int i = 0; i < NKEYS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%04d", i);
		cow_buf v;
		if (cow_map_get(m, k, strlen(k), &v) != 0 || v.len != 256) {
			bad++;
			continue;
		}
		uint32_t w[64]; /* values need not be aligned */
		memcpy(w, v.data, sizeof(w));
		for (int j = 0; j < 64; j++)
			if (w[j] != round * 1000003u + (uint32_t)i + (uint32_t)j) {
				bad++;
				break;
			}
	}
	return bad;
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void wait_ok(pid_t pid, const char *what)
{
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		check__fail(__FILE__, __LINE__, "%s: child status %#x", what, status);
}

/* ---- writer exclusion belongs to the file, not the path ---- */

static void writer_through(const char *path, char tag)
{
	cow_store *s = open_store(path, 0);
	for (int i = 0; i < 150; i++) {
		cow_txn *t;
		cow_map *m;
		char k[16];
		snprintf(k, sizeof(k), "%c%04d", tag, i);
		CHECK_OK(cow_txn_begin(s, 0, &t));
		CHECK_OK(cow_map_open(t, "m", &m));
		CHECK_OK(cow_map_put(m, k, strlen(k), k, strlen(k)));
		CHECK_OK(cow_txn_commit(t));
	}
	cow_store_close(s);
	_exit(0);
}

static void two_paths(void)
{
	const char *real = check_path("real.cow");
	cow_store *s = new_store(real);
	cow_store_close(s);
	char sym[4096], hard[4096];
	snprintf(sym, sizeof(sym), "%s", check_path("link.cow"));
	snprintf(hard, sizeof(hard), "%s", check_path("hard.cow"));
	CHECK_EQ(symlink(real, sym), 0);
	CHECK_EQ(link(real, hard), 0);
	int before = count_files(check_tmpdir());

	/* One writer, whichever name each handle used. */
	cow_store *a = open_store(real, 0), *b = open_store(sym, 0), *c = open_store(hard, 0);
	cow_txn *t, *u;
	CHECK_OK(cow_txn_begin(a, 0, &t));
	CHECK_RC(cow_txn_begin(b, COW_TXN_NOWAIT, &u), COW_ELOCKED);
	CHECK_RC(cow_txn_begin(c, COW_TXN_NOWAIT, &u), COW_ELOCKED);
	cow_txn_abort(t);
	CHECK_OK(cow_txn_begin(b, COW_TXN_NOWAIT, &u));
	CHECK_RC(cow_txn_begin(a, COW_TXN_NOWAIT, &t), COW_ELOCKED);
	cow_txn_abort(u);
	cow_store_close(a);
	cow_store_close(b);
	cow_store_close(c);

	/* Writers in three processes through three names: nothing lost, nothing torn. */
	pid_t p[3];
	const char *paths[3] = {real, sym, hard};
	for (int i = 0; i < 3; i++) {
		p[i] = fork();
		CHECK(p[i] >= 0);
		if (p[i] == 0)
			writer_through(paths[i], (char)('a' + i));
	}
	for (int i = 0; i < 3; i++)
		wait_ok(p[i], "writer");
	s = open_store(sym, 0);
	CHECK_OK(cow__store_check(s));
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	cow_map *m;
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_EQ(cow_map_count(m), NKEYS + 3 * 150);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 150; j++) {
			char k[16];
			snprintf(k, sizeof(k), "%c%04d", 'a' + i, j);
			cow_buf v;
			CHECK_OK(cow_map_get(m, k, strlen(k), &v));
			CHECK_MEMEQ(v.data, k, strlen(k));
		}
	cow_txn_abort(t);
	cow_store_close(s);
	CHECK_EQ(count_files(check_tmpdir()), before); /* no lock file beside any name */
}

/* ---- a reader the writer cannot see by pid still holds its generation ---- */

/*
 * In the child: open, pin round 1 with a read transaction, keep pointers to
 * the values (zero-copy), tell the parent, wait, then count values that
 * changed under the transaction. Exit status: that count (0 is right).
 */
static void pinned_reader(const char *path, int ready, int go)
{
	cow_store *s = open_store(path, COW_STORE_RDONLY);
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	static const void *ptr[NKEYS];
	static uint8_t copy[NKEYS][256];
	for (int i = 0; i < NKEYS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%04d", i);
		cow_buf v;
		CHECK_OK(cow_map_get(m, k, strlen(k), &v));
		ptr[i] = v.data;
		memcpy(copy[i], v.data, 256);
	}
	CHECK_EQ(write(ready, "r", 1), 1);
	char c;
	CHECK_EQ(read(go, &c, 1), 1);
	int changed = 0;
	for (int i = 0; i < NKEYS; i++)
		changed += memcmp(ptr[i], copy[i], 256) != 0;
	changed += wrong_values(m, 1);
	cow_txn_abort(t);
	cow_store_close(s);
	_exit(changed > 100 ? 100 : changed);
}

/* Run @child_setup then pinned_reader in a child; write 60 rounds meanwhile. */
static void reader_held_while_writing(const char *path, int (*child_setup)(void))
{
	int ready[2], go[2], why[2];
	CHECK_EQ(pipe(ready), 0);
	CHECK_EQ(pipe(go), 0);
	CHECK_EQ(pipe(why), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int rc = child_setup();
		if (rc) { /* tell the parent why we cannot run */
			CHECK_EQ(write(why[1], &rc, sizeof(rc)), (ssize_t)sizeof(rc));
			_exit(0);
		}
		pinned_reader(path, ready[1], go[0]);
	}
	close(ready[1]);
	close(why[1]);
	char c;
	if (read(ready[0], &c, 1) != 1) {
		int rc = 0;
		CHECK_EQ(read(why[0], &rc, sizeof(rc)), (ssize_t)sizeof(rc));
		wait_ok(pid, "setup");
		SKIP("cannot set up the reader: %s", strerror(rc));
	}
	cow_store *s = open_store(path, 0);
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_GE(st.readers, 1);
	for (uint32_t r = 2; r < 62; r++)
		put_all(s, r); /* frees and reuses everything round 1 does not pin */
	CHECK_OK(cow__store_check(s));
	CHECK_EQ(write(go[1], "g", 1), 1);
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0); /* values that changed under the reader */
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_EQ(st.readers, 0);
	cow_store_close(s);
}

/* A new PID namespace: the reader becomes pid 1 of it, a pid the writer's kill(2) would miss. */
static int into_pidns(void)
{
	if (unshare(CLONE_NEWPID) != 0)
		return errno;
	pid_t pid = fork(); /* the first child is pid 1 of the namespace */
	if (pid < 0)
		return errno;
	if (pid > 0) {
		int status;
		waitpid(pid, &status, 0);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 101);
	}
	CHECK_EQ(getpid(), 1);
	return 0;
}

static void pidns(void)
{
	const char *path = check_path("pidns.cow");
	cow_store *s = new_store(path);
	cow_store_close(s);
	reader_held_while_writing(path, into_pidns);
}

static int as_nobody(void)
{
	if (setgid(65534) != 0 || setuid(65534) != 0)
		return errno;
	return 0;
}

static void otheruid(void)
{
	if (geteuid() != 0)
		SKIP("needs root to run a reader as another user");
	const char *path = check_path("uid.cow");
	cow_store *s = new_store(path);
	cow_store_close(s);
	/* Readable by everyone, writable by root only, in a directory only root writes. */
	CHECK_EQ(chmod(check_tmpdir(), 0755), 0);
	CHECK_EQ(chmod(path, 0644), 0);
	int before = count_files(check_tmpdir());
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (as_nobody() != 0)
			_exit(77);
		cow_store *r;
		/* Read-write is refused with the file system's answer... */
		if (cow_store_open(path, NULL, &r) != COW_EACCES)
			_exit(2);
		/* ...read-only works, and creates nothing. */
		if (cow_store_open(path, &(cow_store_options){COW_STORE_RDONLY}, &r) != 0)
			_exit(3);
		cow_txn *t;
		cow_map *m;
		if (cow_txn_begin(r, COW_TXN_RDONLY, &t) || cow_map_open(t, "m", &m) ||
		    wrong_values(m, 1))
			_exit(4);
		cow_txn_abort(t);
		cow_store_stats st;
		if (cow_store_stat(r, &st) || st.gen < 2)
			_exit(5);
		cow_store_close(r);
		_exit(0);
	}
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		SKIP("cannot switch to uid 65534");
	CHECK_EQ(WEXITSTATUS(status), 0);
	CHECK_EQ(count_files(check_tmpdir()), before);
	reader_held_while_writing(path, as_nobody);
}

/* ---- opening and reading never wait for a writer ---- */

static void never_waits(void)
{
	const char *path = check_path("wait.cow");
	cow_store *s = new_store(path);
	cow_txn *w;
	CHECK_OK(cow_txn_begin(s, 0, &w)); /* held through the whole child */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(20); /* a wait would hang until the parent commits: it never does first */
		for (int i = 0; i < 2; i++) {
			cow_store *r = open_store(path, i ? COW_STORE_RDONLY : 0);
			cow_txn *t;
			cow_map *m;
			CHECK_OK(cow_txn_begin(r, COW_TXN_RDONLY, &t));
			CHECK_OK(cow_map_open(t, "m", &m));
			CHECK_EQ(wrong_values(m, 1), 0);
			cow_txn_abort(t);
			cow_store_stats st;
			CHECK_OK(cow_store_stat(r, &st));
			CHECK_GE(st.gen, 2);
			CHECK_RC(cow_txn_begin(r, COW_TXN_NOWAIT, &t),
				 i ? COW_EREADONLY : COW_ELOCKED);
			cow_store_close(r);
		}
		_exit(0);
	}
	wait_ok(pid, "reader while a write txn is open");
	cow_txn_abort(w);
	cow_store_close(s);
}

/* ---- kill -9 releases every lock ---- */

static void kill_releases(void)
{
	const char *path = check_path("kill.cow");
	cow_store *s = new_store(path);
	for (int writer = 0; writer < 2; writer++) {
		int ready[2];
		CHECK_EQ(pipe(ready), 0);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			cow_store *c = open_store(path, 0);
			cow_txn *t;
			CHECK_OK(cow_txn_begin(c, writer ? 0 : COW_TXN_RDONLY, &t));
			CHECK_EQ(write(ready[1], "r", 1), 1);
			pause();
			_exit(0);
		}
		char ch;
		CHECK_EQ(read(ready[0], &ch, 1), 1);
		cow_txn *t;
		cow_store_stats st;
		if (writer) {
			CHECK_RC(cow_txn_begin(s, COW_TXN_NOWAIT, &t), COW_ELOCKED);
		} else {
			CHECK_OK(cow_store_stat(s, &st));
			CHECK_EQ(st.readers, 1);
		}
		kill(pid, SIGKILL);
		int status;
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK_OK(cow_txn_begin(s, COW_TXN_NOWAIT, &t));
		cow_txn_abort(t);
		CHECK_OK(cow_store_stat(s, &st));
		CHECK_EQ(st.readers, 0);
		close(ready[0]);
		close(ready[1]);
	}
	cow_store_close(s);
}

/* ---- lock files of earlier versions are not read ---- */

static void old_lock_files(void)
{
	const char *path = check_path("old.cow");
	cow_store *s = new_store(path);
	cow_store_close(s);
	char lpath[4096];
	snprintf(lpath, sizeof(lpath), "%s.lock", path);
	uint64_t rng = check_seed();
	for (int round = 0; round < 8; round++) {
		/* Garbage, a torn seqlock (odd sequence word), empty, huge. */
		int fd = open(lpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0);
		size_t n = round == 2 ? 0 : round == 3 ? 1 << 20 : 65536;
		uint8_t *b = calloc(1, n + 1);
		for (size_t i = 0; round != 1 && i < n; i++)
			b[i] = (uint8_t)check_rand(&rng);
		if (n >= 72) {
			memcpy(b, "COWKITLK", 8);
			b[64] = 1; /* an odd sequence word hung every open before */
		}
		CHECK_EQ(write(fd, b, n), (ssize_t)n);
		close(fd);
		alarm(20);
		s = open_store(path, 0);
		put_all(s, 2 + (uint32_t)round);
		cow_txn *t;
		cow_map *m;
		CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
		CHECK_OK(cow_map_open(t, "m", &m));
		CHECK_EQ(wrong_values(m, 2 + (uint32_t)round), 0);
		cow_txn_abort(t);
		cow_store_close(s);
		alarm(0);
		struct stat st;
		CHECK_EQ(stat(lpath, &st), 0);
		CHECK_EQ((size_t)st.st_size, n); /* not touched */
		free(b);
	}
}

/* ---- misuse ---- */

static void misuse(void)
{
	const char *path = check_path("misuse.cow");
	cow_store *s = new_store(path);
	cow_txn *t, *u;
	cow_map *m;

	/* Commit or abort twice; a map after its transaction ended. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_map_put(m, "x", 1, "1", 1));
	CHECK_OK(cow_txn_commit(t));
	CHECK_RC(cow_txn_commit(t), COW_EINVAL);
	cow_txn_abort(t);
	cow_buf v;
	CHECK_RC(cow_map_get(m, "x", 1, &v), COW_EINVAL);
	CHECK_RC(cow_map_put(m, "y", 1, "1", 1), COW_EINVAL);
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	cow_txn_abort(t);
	cow_txn_abort(t);
	CHECK_RC(cow_map_get(m, "x", 1, &v), COW_EINVAL);

	/* A second write transaction in the thread that holds one. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_RC(cow_txn_begin(s, 0, &u), COW_EDEADLK);
	CHECK_RC(cow_txn_begin(s, COW_TXN_NOWAIT, &u), COW_EDEADLK);

	/* Closing with a transaction open neither frees it nor hangs. */
	alarm(20);
	cow_store_close(s);
	alarm(0);
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_map_put(m, "z", 1, "2", 1));

	/* A write transaction crosses fork(): the child can use neither it nor the lock. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (cow_map_put(m, "c", 1, "child", 5) != COW_EINVAL)
			_exit(2);
		if (cow_txn_commit(t) != COW_EINVAL)
			_exit(3);
		cow_txn *c;
		if (cow_txn_begin(s, COW_TXN_NOWAIT, &c) != COW_ELOCKED) /* the parent writes */
			_exit(4);
		_exit(0);
	}
	wait_ok(pid, "child with the parent's write txn");
	uint64_t gen = cow_txn_gen(t);
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_EQ(cow_txn_gen(t), gen);
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_OK(cow_map_get(m, "z", 1, &v));
	CHECK_RC(cow_map_get(m, "c", 1, &v), COW_ENOTFOUND);
	/* A read transaction crosses fork(): opening objects in it is refused in the child. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		cow_map *cm;
		_exit(cow_map_open(t, "m", &cm) == COW_EINVAL ? 0 : 2);
	}
	wait_ok(pid, "child with the parent's read txn");
	CHECK_OK(cow_map_get(m, "z", 1, &v));
	cow_txn_abort(t);
	/* After fork the child's own transactions work. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		put_all(s, 7);
		_exit(0);
	}
	wait_ok(pid, "child's own write txn");
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_EQ(wrong_values(m, 7), 0);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
}

/* ---- a reader of a commit whose flush failed ---- */

/*
 * An io whose next sync fails with EIO, after letting a reader begin: the
 * superblock of the failing commit is in the file by then, so the reader
 * pins that generation before the writer spoils its slot.
 */
struct hio {
	struct cow__io io;
	struct cow__io *inner;
};
static cow_store *hook_store;
static cow_txn *hook_reader;
static bool fail_next_sync;

static int h_pwritev(struct cow__io *io, const struct iovec *iov, int n, uint64_t off)
{
	struct cow__io *in = ((struct hio *)io)->inner;
	return in->ops->pwritev(in, iov, n, off);
}

static int h_sync(struct cow__io *io)
{
	struct cow__io *in = ((struct hio *)io)->inner;
	if (!fail_next_sync)
		return in->ops->sync(in);
	fail_next_sync = false;
	CHECK_OK(cow_txn_begin(hook_store, COW_TXN_RDONLY, &hook_reader));
	return -EIO;
}

static int h_pread(struct cow__io *io, void *buf, size_t len, uint64_t off)
{
	struct cow__io *in = ((struct hio *)io)->inner;
	return in->ops->pread(in, buf, len, off);
}

static int h_grow(struct cow__io *io, uint64_t size)
{
	struct cow__io *in = ((struct hio *)io)->inner;
	return in->ops->grow(in, size);
}

static int h_size(struct cow__io *io, uint64_t *size)
{
	struct cow__io *in = ((struct hio *)io)->inner;
	return in->ops->size(in, size);
}

static void h_close(struct cow__io *io)
{
	struct cow__io *in = ((struct hio *)io)->inner;
	in->ops->close(in);
	free(io);
}

static const struct cow__io_ops hops = {
	.pwritev = h_pwritev,
	.pread = h_pread,
	.sync = h_sync,
	.grow = h_grow,
	.size = h_size,
	.close = h_close,
};

static int hwrap(struct cow__io *inner, struct cow__io **out)
{
	struct hio *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->io.ops = &hops;
	h->io.fd = inner->fd;
	h->inner = inner;
	*out = &h->io;
	return 0;
}

static void failed_commit_seen(void)
{
	const char *path = check_path("eio.cow");
	cow_store *s = new_store(path);
	cow_store_close(s);
	cow__io_wrap = hwrap;
	hook_store = s = open_store(path, 0);
	cow__io_wrap = NULL;
	uint64_t gen;
	{
		cow_txn *t;
		cow_map *m;
		CHECK_OK(cow_txn_begin(s, 0, &t));
		fail_next_sync = true; /* the commit's flush */
		gen = cow_txn_gen(t);
		CHECK_OK(cow_map_open(t, "m", &m));
		CHECK_OK(cow_map_put(m, "failed", 6, "x", 1));
		CHECK_RC(cow_txn_commit(t), COW_EIO);
	}
	/* The reader began while the failed commit's superblock was in the file. */
	CHECK(hook_reader != NULL);
	CHECK_EQ(cow_txn_gen(hook_reader), gen);
	cow_map *rm;
	CHECK_OK(cow_map_open(hook_reader, "m", &rm));
	cow_buf v;
	CHECK_OK(cow_map_get(rm, "failed", 6, &v));
	/* No writer may reuse that generation's blocks under it. */
	cow_txn *t;
	CHECK_RC(cow_txn_begin(s, 0, &t), COW_EBUSY);
	CHECK_EQ(wrong_values(rm, 1), 0);
	cow_txn_abort(hook_reader);
	/* Once it ends, writing goes on from the last good commit. */
	put_all(s, 3);
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &rm));
	CHECK_RC(cow_map_get(rm, "failed", 6, &v), COW_ENOTFOUND);
	CHECK_EQ(wrong_values(rm, 3), 0);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	struct stat st;
	CHECK_EQ(fstat(fd, &st), 0);
	uint8_t *b = calloc(1, (size_t)st.st_size + 1);
	CHECK(b != NULL);
	CHECK_EQ(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

/*
 * A power loss tears a commit: its superblock is in the file, some of its
 * blocks are not. Open falls back to the commit before and remembers the
 * torn slot as rejected. The writer then makes the same change again: the
 * same generation, the same blocks, the same roots, into the same slot. The
 * process must read that new commit, not go on rejecting it as the torn one.
 */
static void torn_then_rewritten(void)
{
	const char *path = check_path("torn.cow");
	cow_store *s = new_store(path);
	cow_store_close(s);
	size_t alen, blen;
	uint8_t *a = slurp(path, &alen);
	s = open_store(path, 0);
	put_all(s, 2);
	uint8_t *b = slurp(path, &blen); /* before close marks the commit clean */
	cow_store_close(s);
	/* Every block the second commit wrote, apart from the superblocks, is lost. */
	size_t lost = 0;
	for (size_t off = 2 * 4096; off < blen; off += 4096) {
		bool changed = off >= alen || memcmp(a + off, b + off, 4096) != 0;
		if (changed) {
			memset(b + off, 0, 4096);
			lost++;
		}
	}
	CHECK_GT(lost, 0);
	int fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, b, blen, 0), (ssize_t)blen);
	close(fd);

	s = open_store(path, 0); /* logs the fallback */
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_EQ(wrong_values(m, 1), 0);
	cow_txn_abort(t);
	put_all(s, 2); /* the same commit again */
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_EQ(wrong_values(m, 2), 0);
	cow_txn_abort(t);
	cow_store_close(s);
	s = open_store(path, 0);
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_EQ(wrong_values(m, 2), 0);
	cow_txn_abort(t);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && strcmp(argv[1], "pidns") == 0) {
		pidns();
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "eio") == 0) {
		failed_commit_seen();
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "otheruid") == 0) {
		otheruid();
		return 0;
	}
	two_paths();
	never_waits();
	kill_releases();
	old_lock_files();
	misuse();
	failed_commit_seen();
	torn_then_rewritten();
	return 0;
}
