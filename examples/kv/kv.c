/*
 * kv: a RESP server for redis-cli and redis-benchmark whose data lives in a
 * cowkit region, saved by a forkless snapshot and restored lazily.
 *
 *   kv [--port 6379] [--bind 127.0.0.1] [--dir .] [--dbfilename kv.img]
 *      [--maxmemory 4g] [--backend uffd|auto|uffd-thread|mprotect|fork]
 *      [--save-buffer 64m] [--restore auto|lazy|eager|no] [--thp]
 *
 * Threads: the event loop (this file's main) is the only thread that reads
 * or writes the heap. BGSAVE hands the rest to others:
 *
 *   loop                          saver thread               cowkit
 *   ----                          ------------               ------
 *   BGSAVE: register [0, top+slack)
 *           as a region, open tmp  -> cow_mem_snapshot_prepare  buffer, copier
 *   (keeps serving)                   (posts 'P')
 *   'P': top still inside? ------>   no: cancel, retry bigger
 *        yes: stamp save_time,
 *        cow_mem_snapshot_instant      <- the pause (write-protect or fork)
 *        (keeps serving; a write       cow_mem_snapshot_wait      copier streams,
 *        to a page not yet copied      fdatasync, rename          trapped writes
 *        waits for its copy)           (posts 'S')                copy first
 *   'S': LASTSAVE, status, stats
 *
 * The region handle covers only the heap's used prefix at the instant:
 * memory the bump allocator hands out after it is new memory the image does
 * not need (it was zeros then), so it is never protected or copied.
 *
 * On start, a saved image is restored lazily: the prefix is registered as
 * a region and filled by cow_mem_restore_start from the mmap'ed file, and
 * the loop serves at once; a first touch of a page fills it, a prefetcher
 * streams the rest (restorer thread waits for it, posts 'R').
 *
 * No system call writes into the region: sockets are read into each
 * client's buffer (malloc'ed, outside the region) and values are copied
 * from there. So every backend is safe here, including the in-thread ones
 * (COW_MEM_UFFD, COW_MEM_MPROTECT), which make such calls fail. kv asks for
 * COW_MEM_UFFD unless told otherwise: a trapped write copies its page in
 * the writing thread, instead of waiting for the copier thread to be
 * scheduled (twice the write throughput during a save here, bench/kv.sh).
 * Where that backend cannot run, it falls back to COW_MEM_AUTO.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cow/cow.h>

#include "kv.h"

#define SAVE_SLACK (64ull << 20) /* headroom registered past top for the prepare */
#define MAX_EVENTS 64

struct client {
	int fd;
	char *in;
	size_t in_len, in_cap;
	struct kv_out out;
	struct kv_req req;
	bool closing; /* close once the output is sent */
	bool want_out;
	bool closed;
	bool blocked; /* its BGSAVE waits for the instant: run nothing else */
	struct client *next_dead;
};

/* Clients closed during one batch of events, freed after it. */
static struct client *graveyard;

enum save_phase { SAVE_IDLE, SAVE_PREPARING, SAVE_RUNNING };

static struct server {
	/* configuration */
	int port;
	const char *bind;
	const char *dir;
	const char *dbfilename;
	uint64_t maxmemory;
	cow_mem_backend backend;
	bool backend_given; /* --backend: no fallback from the in-thread default */
	cow_mem_backend restore_backend;
	bool restore;
	size_t save_buffer;
	bool thp;
	/* the heap */
	char *base;
	struct kv_heap heap;
	/* the loop */
	int ep, lfd, sigfd, note[2];
	unsigned clients;
	bool shutting;
	uint64_t start_ns;
	/* stats */
	uint64_t commands, connections, dirty, dirty_at_instant;
	uint64_t peak_used;
	/* save: the loop owns phase, the saver thread the rest until it posts */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum save_phase phase;
	bool scheduled;		      /* BGSAVE asked while a restore runs */
	struct client *bgsave_client; /* answered once the instant is taken */
	pthread_t saver;
	cow_mem_region *save_region;
	cow_mem_sink *sink;
	cow_mem_snap *snap;
	int save_fd;
	char tmp_path[4096], db_path[4096];
	uint64_t save_len, save_top, save_t0_ns; /* registered bytes; top at the instant */
	int prepare_rc, instant_rc, save_rc;
	bool armed, cancel; /* loop -> saver: instant done / never armed */
	unsigned retries;
	cow_mem_snap_stats saved_stats; /* saver -> loop, under mu */
	cow_mem_snap_stats save_stats;	/* the loop's: the last save's */
	/* what INFO says about saves */
	int64_t lastsave;
	bool last_ok;
	double last_save_s;
	uint64_t fork_usec, saves, save_fails;
	char last_err[128];
	const char *save_backend_name;
	/* restore */
	pthread_t restorer;
	bool restoring;
	cow_mem_region *restore_region;
	cow_mem_restore *restore_h;
	void *restore_map;
	size_t restore_len;
	int restore_rc;
	cow_mem_restore_stats restored_stats; /* restorer -> loop, under mu */
	cow_mem_restore_stats restore_stats;  /* the loop's, once restored */
	uint64_t restore_usable_ns; /* process start to serving from the image */
} S = {
	.port = 6379,
	.bind = "127.0.0.1",
	.dir = ".",
	.dbfilename = "kv.img",
	.maxmemory = 4ull << 30,
	.backend = COW_MEM_UFFD,
	.restore_backend = COW_MEM_AUTO,
	.restore = true,
	.save_buffer = 64u << 20,
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.save_fd = -1,
	.last_ok = true,
	.save_backend_name = "none",
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "kv[%d]: %s\n", (int)getpid(), msg);
}

/* Wake the loop: a background thread has news (one byte names it). */
static void post(char what)
{
	while (write(S.note[1], &what, 1) < 0 && errno == EINTR)
		;
}

/* ---- save ---- */

static void client_unblock(const char *status, const char *error);

static void *saver_main(void *arg)
{
	(void)arg;
	cow_mem_snap_opts o = {.backend = S.backend, .buffer = S.save_buffer};
	cow_mem_snap *snap = NULL;
	int rc = cow_mem_snapshot_prepare(S.save_region, S.sink, &o, &snap);
	if ((rc == COW_EOPNOTSUPP || rc == COW_EPERM) && !S.backend_given) {
		/* No SIGBUS mode here, or a thread blocks SIGBUS: let cowkit choose. */
		o.backend = COW_MEM_AUTO;
		rc = cow_mem_snapshot_prepare(S.save_region, S.sink, &o, &snap);
	}
	pthread_mutex_lock(&S.mu);
	S.prepare_rc = rc;
	S.snap = snap;
	pthread_mutex_unlock(&S.mu);
	post('P');
	if (rc)
		return NULL;
	pthread_mutex_lock(&S.mu);
	while (!S.armed && !S.cancel)
		pthread_cond_wait(&S.cv, &S.mu);
	pthread_mutex_unlock(&S.mu);
	cow_mem_snap_stats st;
	rc = cow_mem_snapshot_wait(snap, &st);
	/* Past top the image is zeros (never written): keep the file short. */
	if (rc == 0 && ftruncate(S.save_fd, (off_t)S.save_top) < 0)
		rc = -errno;
	if (rc == 0 && fdatasync(S.save_fd) < 0)
		rc = -errno;
	if (close(S.save_fd) < 0 && rc == 0)
		rc = -errno;
	S.save_fd = -1;
	if (rc == 0 && rename(S.tmp_path, S.db_path) < 0)
		rc = -errno;
	if (rc == 0) {
		int d = open(S.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (d >= 0) {
			fsync(d);
			close(d);
		}
	} else {
		unlink(S.tmp_path);
	}
	pthread_mutex_lock(&S.mu);
	S.save_rc = rc;
	S.saved_stats = st;
	pthread_mutex_unlock(&S.mu);
	post('S');
	return NULL;
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* Start a BGSAVE: the region handle over the heap's prefix, the file, the saver. */
static int save_start(void)
{
	uint64_t slack = SAVE_SLACK << (S.retries < 6 ? S.retries : 6);
	uint64_t len = round_up(S.heap.hdr->top + slack, 2ull << 20);
	if (len > S.maxmemory)
		len = S.maxmemory;
	snprintf(S.tmp_path, sizeof(S.tmp_path), "%s/temp-%d.kv", S.dir, (int)getpid());
	S.save_fd = open(S.tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (S.save_fd < 0)
		return -errno;
	int rc = 0;
	if (ftruncate(S.save_fd, (off_t)len) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = cow_mem_region_register(S.base, len, &S.save_region);
	if (rc)
		goto fail;
	rc = cow_mem_sink_fd(S.save_fd, 0, &S.sink);
	if (rc)
		goto fail;
	S.save_len = len;
	S.armed = S.cancel = false;
	S.snap = NULL;
	S.save_t0_ns = now_ns();
	S.phase = SAVE_PREPARING;
	rc = -pthread_create(&S.saver, NULL, saver_main, NULL);
	if (rc) {
		S.phase = SAVE_IDLE;
		goto fail;
	}
	return 0;
fail:
	cow_mem_sink_destroy(S.sink);
	S.sink = NULL;
	cow_mem_region_destroy(S.save_region);
	S.save_region = NULL;
	close(S.save_fd);
	S.save_fd = -1;
	unlink(S.tmp_path);
	return rc;
}

static void save_failed(int rc, const char *what)
{
	S.last_ok = false;
	S.save_fails++;
	snprintf(S.last_err, sizeof(S.last_err), "%s: %s", what, cow_strerror(rc));
	logf_("background save failed: %s", S.last_err);
}

static void save_cleanup(void)
{
	pthread_join(S.saver, NULL);
	cow_mem_sink_destroy(S.sink);
	S.sink = NULL;
	cow_mem_region_destroy(S.save_region);
	S.save_region = NULL;
	S.phase = SAVE_IDLE;
}

/* 'P': the saver prepared; take the instant here, where nothing else writes. */
static void on_prepared(void)
{
	pthread_mutex_lock(&S.mu);
	int rc = S.prepare_rc;
	pthread_mutex_unlock(&S.mu);
	if (rc) {
		if (S.save_fd >= 0) {
			close(S.save_fd);
			S.save_fd = -1;
		}
		unlink(S.tmp_path);
		save_cleanup();
		save_failed(rc, "prepare");
		client_unblock(NULL, "ERR cannot start a background save (see the log)");
		return;
	}
	if (S.heap.hdr->top > S.save_len && S.save_len < S.maxmemory) {
		/* The heap outgrew the registered prefix meanwhile: start over. */
		pthread_mutex_lock(&S.mu);
		S.cancel = true;
		pthread_cond_signal(&S.cv);
		pthread_mutex_unlock(&S.mu);
		S.retries++;
		return;
	}
	uint64_t t0 = now_ns();
	S.heap.hdr->save_time = (int64_t)time(NULL);
	S.save_top = round_up(S.heap.hdr->top, 4096);
	rc = cow_mem_snapshot_instant(S.snap);
	S.fork_usec = (now_ns() - t0) / 1000;
	S.dirty_at_instant = S.dirty;
	S.instant_rc = rc;
	S.phase = SAVE_RUNNING;
	pthread_mutex_lock(&S.mu);
	S.armed = true;
	pthread_cond_signal(&S.cv);
	pthread_mutex_unlock(&S.mu);
	if (rc)
		client_unblock(NULL, "ERR background save failed at the instant (see the log)");
	else
		client_unblock("Background saving started", NULL);
}

/* 'S': the image is complete (or failed). */
static void on_saved(void)
{
	pthread_mutex_lock(&S.mu);
	int rc = S.save_rc;
	cow_mem_snap_stats st = S.saved_stats;
	bool cancelled = S.cancel;
	pthread_mutex_unlock(&S.mu);
	save_cleanup();
	if (cancelled && !S.armed) {
		rc = save_start(); /* the retry after the heap outgrew the prefix */
		if (rc) {
			save_failed(rc, "start");
			client_unblock(NULL, "ERR cannot start a background save (see the log)");
		}
		return;
	}
	S.retries = 0;
	S.last_save_s = (double)(now_ns() - S.save_t0_ns) / 1e9;
	S.save_backend_name = cow_mem_backend_name(st.backend);
	if (rc) {
		save_failed(rc, "snapshot");
		return;
	}
	S.save_stats = st;
	S.last_ok = true;
	S.last_err[0] = '\0';
	S.saves++;
	S.lastsave = S.heap.hdr->save_time;
	S.dirty -= S.dirty_at_instant;
	logf_("background save done: %.0f MiB in %.2f s (%s, pause %" PRIu64 " us, %" PRIu64
	      " trapped writes, %" PRIu64 " waited for buffer space, extra peak %.1f MiB)",
	      (double)S.save_top / (1 << 20), S.last_save_s, S.save_backend_name, S.fork_usec,
	      st.faults, st.stalls, (double)st.extra_peak / (1 << 20));
}

/* ---- restore ---- */

static void *restorer_main(void *arg)
{
	(void)arg;
	cow_mem_restore_stats st;
	int rc = cow_mem_restore_wait(S.restore_h, &st);
	pthread_mutex_lock(&S.mu);
	S.restore_rc = rc;
	S.restored_stats = st;
	pthread_mutex_unlock(&S.mu);
	post('R');
	return NULL;
}

/* Restore the image at db_path, if any: 1 restored, 0 none, < 0 error. */
static int restore_start(void)
{
	int fd = open(S.db_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat sb;
	struct kv_hdr hdr;
	const char *why = "unreadable";
	int rc = 0;
	if (fstat(fd, &sb) < 0 || pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		rc = -EINVAL;
		goto out;
	}
	uint64_t len = (uint64_t)sb.st_size;
	if (len % 4096) {
		why = "size not a multiple of 4 KiB";
		rc = -EINVAL;
		goto out;
	}
	rc = kv_heap_check_hdr(&hdr, len, S.maxmemory, &why);
	if (rc)
		goto out;
	why = "mmap";
	S.restore_map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (S.restore_map == MAP_FAILED) {
		S.restore_map = NULL;
		rc = -errno;
		goto out;
	}
	S.restore_len = len;
	if (S.restore_backend == COW_MEM_AUTO) {
		cow_mem_probe_info p;
		cow_mem_probe(&p);
		S.restore_backend = p.restore; /* so INFO names what runs */
	}
	why = "register";
	rc = cow_mem_region_register(S.base, len, &S.restore_region);
	if (rc)
		goto out;
	why = "restore";
	rc = cow_mem_restore_start(S.restore_region, S.restore_map, len, S.restore_backend,
				   &S.restore_h);
	if (rc)
		goto out;
	/* The header page is the first touch: it comes in lazily too. */
	rc = kv_heap_adopt(&S.heap, S.base, S.maxmemory, len, &why);
	if (rc) {
		cow_mem_restore_wait(S.restore_h, NULL);
		goto out;
	}
	S.restoring = true;
	rc = -pthread_create(&S.restorer, NULL, restorer_main, NULL);
	if (rc) {
		cow_mem_restore_wait(S.restore_h, NULL);
		S.restoring = false;
		goto out;
	}
	S.lastsave = S.heap.hdr->save_time;
	rc = 1;
out:
	close(fd);
	if (rc < 0) {
		logf_("cannot restore %s (%s): %s", S.db_path, why, cow_strerror(rc));
		cow_mem_region_destroy(S.restore_region);
		S.restore_region = NULL;
		if (S.restore_map)
			munmap(S.restore_map, S.restore_len);
		S.restore_map = NULL;
	}
	return rc;
}

static void on_restored(void)
{
	pthread_join(S.restorer, NULL);
	S.restore_stats = S.restored_stats;
	S.restoring = false;
	cow_mem_region_destroy(S.restore_region);
	S.restore_region = NULL;
	munmap(S.restore_map, S.restore_len);
	S.restore_map = NULL;
	if (S.restore_rc)
		logf_("restore: prefetch failed: %s", cow_strerror(S.restore_rc));
	else
		logf_("restore complete: %.0f MiB in %.0f ms (%s, %" PRIu64 " first touches)",
		      (double)S.restore_stats.bytes / (1 << 20),
		      (double)S.restore_stats.total_ns / 1e6,
		      cow_mem_backend_name(S.restore_stats.backend), S.restore_stats.faults);
	if (S.scheduled) {
		S.scheduled = false;
		int rc = save_start();
		if (rc)
			save_failed(rc, "start");
	}
}

/* ---- commands ---- */

struct cmd {
	const char *name;
	int arity; /* > 0 exactly, < 0 at least -arity (with the name) */
	void (*fn)(struct client *c, struct kv_arg *a, size_t n);
};

static bool eq(const struct kv_arg *a, const char *s)
{
	return a->len == strlen(s) && strncasecmp(a->p, s, a->len) == 0;
}

static void reply_set_error(struct client *c, int rc)
{
	if (rc == -ENOMEM)
		kv_out_error(&c->out, "OOM command not allowed when used memory > 'maxmemory'.");
	else
		kv_out_errorf(&c->out, "ERR %s", cow_strerror(rc));
}

static void c_ping(struct client *c, struct kv_arg *a, size_t n)
{
	if (n == 2)
		kv_out_bulk(&c->out, a[1].p, a[1].len);
	else if (n == 1)
		kv_out_status(&c->out, "PONG");
	else
		kv_out_error(&c->out, "ERR wrong number of arguments for 'ping' command");
}

static void c_echo(struct client *c, struct kv_arg *a, size_t n)
{
	(void)n;
	kv_out_bulk(&c->out, a[1].p, a[1].len);
}

static void c_get(struct client *c, struct kv_arg *a, size_t n)
{
	(void)n;
	struct kv_entry *e = kv_find(&S.heap, a[1].p, a[1].len);
	if (e)
		kv_out_bulk(&c->out, kv_value(&S.heap, e), e->vlen);
	else
		kv_out_null(&c->out);
}

static void note_write(uint64_t n)
{
	S.dirty += n;
	if (S.heap.hdr->used > S.peak_used)
		S.peak_used = S.heap.hdr->used;
}

static void c_set(struct client *c, struct kv_arg *a, size_t n)
{
	bool nx = false, xx = false, get = false;
	for (size_t i = 3; i < n; i++) {
		if (eq(&a[i], "NX"))
			nx = true;
		else if (eq(&a[i], "XX"))
			xx = true;
		else if (eq(&a[i], "GET"))
			get = true;
		else {
			kv_out_error(&c->out,
				     eq(&a[i], "EX") || eq(&a[i], "PX") || eq(&a[i], "EXAT") ||
						     eq(&a[i], "PXAT") || eq(&a[i], "KEEPTTL")
					     ? "ERR kv keeps no expiry times"
					     : "ERR syntax error");
			return;
		}
	}
	if (nx && xx) {
		kv_out_error(&c->out, "ERR syntax error");
		return;
	}
	struct kv_entry *e = kv_find(&S.heap, a[1].p, a[1].len);
	if (get) {
		if (e)
			kv_out_bulk(&c->out, kv_value(&S.heap, e), e->vlen);
		else
			kv_out_null(&c->out);
	}
	if ((nx && e) || (xx && !e)) {
		if (!get)
			kv_out_null(&c->out);
		return;
	}
	bool created;
	int rc = kv_set(&S.heap, a[1].p, a[1].len, a[2].p, a[2].len, &created);
	if (rc) {
		if (get) /* the old value was sent; Redis would have failed first */
			return;
		reply_set_error(c, rc);
		return;
	}
	note_write(1);
	if (!get)
		kv_out_status(&c->out, "OK");
}

static void c_mset(struct client *c, struct kv_arg *a, size_t n)
{
	if (n % 2 == 0) {
		kv_out_error(&c->out, "ERR wrong number of arguments for 'mset' command");
		return;
	}
	for (size_t i = 1; i < n; i += 2) {
		bool created;
		int rc = kv_set(&S.heap, a[i].p, a[i].len, a[i + 1].p, a[i + 1].len, &created);
		if (rc) {
			reply_set_error(c, rc);
			return;
		}
		note_write(1);
	}
	kv_out_status(&c->out, "OK");
}

static void c_del(struct client *c, struct kv_arg *a, size_t n)
{
	long long d = 0;
	for (size_t i = 1; i < n; i++)
		d += kv_del(&S.heap, a[i].p, a[i].len);
	note_write((uint64_t)d);
	kv_out_int(&c->out, d);
}

static void c_exists(struct client *c, struct kv_arg *a, size_t n)
{
	long long d = 0;
	for (size_t i = 1; i < n; i++)
		d += kv_find(&S.heap, a[i].p, a[i].len) != NULL;
	kv_out_int(&c->out, d);
}

static void incr_by(struct client *c, struct kv_arg *key, long long by)
{
	long long v = 0;
	struct kv_entry *e = kv_find(&S.heap, key->p, key->len);
	if (e && !kv_parse_ll(kv_value(&S.heap, e), e->vlen, &v)) {
		kv_out_error(&c->out, "ERR value is not an integer or out of range");
		return;
	}
	if ((by > 0 && v > INT64_MAX - by) || (by < 0 && v < INT64_MIN - by)) {
		kv_out_error(&c->out, "ERR increment or decrement would overflow");
		return;
	}
	v += by;
	char b[24];
	int len = snprintf(b, sizeof(b), "%lld", v);
	bool created;
	int rc = kv_set(&S.heap, key->p, key->len, b, (size_t)len, &created);
	if (rc) {
		reply_set_error(c, rc);
		return;
	}
	note_write(1);
	kv_out_int(&c->out, v);
}

static void c_incr(struct client *c, struct kv_arg *a, size_t n)
{
	(void)n;
	incr_by(c, &a[1], eq(&a[0], "DECR") ? -1 : 1);
}

static void c_incrby(struct client *c, struct kv_arg *a, size_t n)
{
	(void)n;
	long long by;
	if (!kv_parse_ll(a[2].p, a[2].len, &by) || (eq(&a[0], "DECRBY") && by == INT64_MIN)) {
		kv_out_error(&c->out, "ERR value is not an integer or out of range");
		return;
	}
	incr_by(c, &a[1], eq(&a[0], "DECRBY") ? -by : by);
}

static void c_mget(struct client *c, struct kv_arg *a, size_t n)
{
	kv_out_array(&c->out, (long long)n - 1);
	for (size_t i = 1; i < n; i++)
		c_get(c, &a[i - 1], 2);
}

static void c_strlen(struct client *c, struct kv_arg *a, size_t n)
{
	(void)n;
	struct kv_entry *e = kv_find(&S.heap, a[1].p, a[1].len);
	kv_out_int(&c->out, e ? e->vlen : 0);
}

static void c_dbsize(struct client *c, struct kv_arg *a, size_t n)
{
	(void)a;
	(void)n;
	kv_out_int(&c->out, (long long)S.heap.hdr->count);
}

static void c_flushall(struct client *c, struct kv_arg *a, size_t n)
{
	(void)a;
	(void)n;
	note_write(S.heap.hdr->count);
	kv_flush(&S.heap);
	kv_out_status(&c->out, "OK");
}

static void c_select(struct client *c, struct kv_arg *a, size_t n)
{
	(void)n;
	long long db;
	if (!kv_parse_ll(a[1].p, a[1].len, &db))
		kv_out_error(&c->out, "ERR value is not an integer or out of range");
	else if (db != 0)
		kv_out_error(&c->out, "ERR DB index is out of range");
	else
		kv_out_status(&c->out, "OK");
}

static void c_bgsave(struct client *c, struct kv_arg *a, size_t n)
{
	(void)a;
	(void)n;
	if (S.phase != SAVE_IDLE) {
		kv_out_error(&c->out, "ERR Background save already in progress");
		return;
	}
	if (S.restoring) {
		S.scheduled = true;
		kv_out_status(&c->out, "Background saving scheduled");
		return;
	}
	int rc = save_start();
	if (rc) {
		save_failed(rc, "start");
		kv_out_errorf(&c->out, "ERR cannot start a background save: %s", cow_strerror(rc));
		return;
	}
	/*
	 * As with Redis, once BGSAVE answers, the image is of this moment: the
	 * reply waits for the instant, and this client's next commands with it.
	 */
	c->blocked = true;
	S.bgsave_client = c;
}

static void c_lastsave(struct client *c, struct kv_arg *a, size_t n)
{
	(void)a;
	(void)n;
	kv_out_int(&c->out, S.lastsave);
}

static void c_shutdown(struct client *c, struct kv_arg *a, size_t n)
{
	if (n > 2 || (n == 2 && !eq(&a[1], "NOSAVE") && !eq(&a[1], "SAVE"))) {
		kv_out_error(&c->out, "ERR syntax error");
		return;
	}
	if (n == 2 && eq(&a[1], "SAVE") && S.phase == SAVE_IDLE) {
		if (S.restoring)
			S.scheduled = true;
		else if (save_start() != 0) {
			kv_out_error(&c->out, "ERR Errors trying to SHUTDOWN. Check logs.");
			return;
		}
	}
	/* Redis closes the connection without a reply when it goes down. */
	S.shutting = true;
	c->closing = true;
}

static void c_quit(struct client *c, struct kv_arg *a, size_t n)
{
	(void)a;
	(void)n;
	kv_out_status(&c->out, "OK");
	c->closing = true;
}

/* What redis-benchmark and redis-cli ask at connect, and a few settings. */
static void c_config(struct client *c, struct kv_arg *a, size_t n)
{
	if (eq(&a[1], "RESETSTAT") && n == 2) {
		S.commands = S.connections = 0;
		kv_out_status(&c->out, "OK");
		return;
	}
	if (!eq(&a[1], "GET") || n < 3) {
		kv_out_error(&c->out, "ERR kv answers CONFIG GET and CONFIG RESETSTAT only");
		return;
	}
	char maxmem[24], port[16];
	snprintf(maxmem, sizeof(maxmem), "%" PRIu64, S.maxmemory);
	snprintf(port, sizeof(port), "%d", S.port);
	const char *kv[][2] = {
		{"save", ""},
		{"appendonly", "no"},
		{"maxmemory", maxmem},
		{"dir", S.dir},
		{"dbfilename", S.dbfilename},
		{"databases", "1"},
		{"port", port},
		{"bind", S.bind},
		{"maxclients", "10000"},
		{"timeout", "0"},
	};
	size_t nkv = sizeof(kv) / sizeof(kv[0]);
	bool hit[sizeof(kv) / sizeof(kv[0])] = {false};
	size_t found = 0;
	for (size_t i = 2; i < n; i++) {
		char pat[128];
		if (a[i].len >= sizeof(pat) || memchr(a[i].p, 0, a[i].len))
			continue;
		memcpy(pat, a[i].p, a[i].len);
		pat[a[i].len] = '\0';
		for (size_t k = 0; k < nkv; k++)
			if (!hit[k] && fnmatch(pat, kv[k][0], FNM_CASEFOLD) == 0) {
				hit[k] = true;
				found++;
			}
	}
	kv_out_array(&c->out, (long long)found * 2);
	for (size_t k = 0; k < nkv; k++)
		if (hit[k]) {
			kv_out_bulk(&c->out, kv[k][0], strlen(kv[k][0]));
			kv_out_bulk(&c->out, kv[k][1], strlen(kv[k][1]));
		}
}

static void c_command(struct client *c, struct kv_arg *a, size_t n)
{
	if (n >= 2 && eq(&a[1], "COUNT"))
		kv_out_int(&c->out, 0);
	else
		kv_out_array(&c->out, 0); /* COMMAND, COMMAND DOCS ...: nothing to tell */
}

static void c_client(struct client *c, struct kv_arg *a, size_t n)
{
	(void)n;
	if (eq(&a[1], "GETNAME"))
		kv_out_null(&c->out);
	else if (eq(&a[1], "ID"))
		kv_out_int(&c->out, c->fd);
	else
		kv_out_status(&c->out, "OK"); /* SETNAME, SETINFO, ...: accepted, ignored */
}

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long size = 0, rss = 0;
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void c_info(struct client *c, struct kv_arg *a, size_t n)
{
	const char *want = n >= 2 ? a[1].p : "all";
	size_t wlen = n >= 2 ? a[1].len : 3;
	bool all = n < 2 || eq(&a[1], "all") || eq(&a[1], "everything") || eq(&a[1], "default");
	static char buf[8192];
	size_t len = 0;
#define SECTION(name) (all || (wlen == strlen(name) && strncasecmp(want, name, wlen) == 0))
#define ADD(...)                                                                                   \
	do {                                                                                       \
		int w_ = snprintf(buf + len, sizeof(buf) - len, __VA_ARGS__);                      \
		if (w_ > 0 && (size_t)w_ < sizeof(buf) - len)                                      \
			len += (size_t)w_;                                                         \
	} while (0)
	uint64_t up = (now_ns() - S.start_ns) / 1000000000ull;
	struct kv_hdr *h = S.heap.hdr;
	if (SECTION("server"))
		ADD("# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\n"
		    "kv_version:%s\r\nprocess_id:%d\r\ntcp_port:%d\r\nuptime_in_seconds:%" PRIu64
		    "\r\n\r\n",
		    cow_version(), (int)getpid(), S.port, up);
	if (SECTION("clients"))
		ADD("# Clients\r\nconnected_clients:%u\r\n\r\n", S.clients);
	if (SECTION("memory"))
		ADD("# Memory\r\nused_memory:%" PRIu64 "\r\nused_memory_rss:%" PRIu64
		    "\r\nused_memory_peak:%" PRIu64 "\r\nused_memory_heap_top:%" PRIu64
		    "\r\nmaxmemory:%" PRIu64 "\r\n\r\n",
		    h->used, rss_bytes(), S.peak_used > h->used ? S.peak_used : h->used, h->top,
		    S.maxmemory);
	if (SECTION("persistence")) {
		const cow_mem_snap_stats *st = &S.save_stats;
		ADD("# Persistence\r\nloading:0\r\nasync_loading:0\r\n"
		    "rdb_changes_since_last_save:%" PRIu64 "\r\nrdb_bgsave_in_progress:%d\r\n"
		    "rdb_last_save_time:%" PRId64 "\r\nrdb_last_bgsave_status:%s\r\n"
		    "rdb_last_bgsave_time_sec:%.0f\r\nrdb_current_bgsave_time_sec:%" PRId64 "\r\n"
		    "rdb_saves:%" PRIu64 "\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n"
		    "latest_fork_usec:%" PRIu64 "\r\n",
		    S.dirty, S.phase != SAVE_IDLE || S.scheduled, S.lastsave,
		    S.last_ok ? "ok" : "err", S.saves || S.save_fails ? S.last_save_s : -1.0,
		    S.phase != SAVE_IDLE ? (int64_t)((now_ns() - S.save_t0_ns) / 1000000000ull)
					 : (int64_t)-1,
		    S.saves, S.fork_usec);
		ADD("cow_save_backend:%s\r\ncow_save_bytes:%" PRIu64
		    "\r\ncow_save_pause_usec:%" PRIu64 "\r\ncow_save_trapped_writes:%" PRIu64
		    "\r\ncow_save_trap_median_usec:%.1f\r\ncow_save_stalls:%" PRIu64
		    "\r\ncow_save_extra_peak:%" PRIu64 "\r\ncow_save_buffer:%zu\r\n"
		    "cow_save_last_error:%s\r\n",
		    S.save_backend_name, S.save_len, st->pause_ns / 1000, st->faults,
		    (double)st->fault_median_ns / 1000, st->stalls, st->extra_peak, S.save_buffer,
		    S.last_err);
		ADD("cow_restore_in_progress:%d\r\ncow_restore_backend:%s\r\n"
		    "cow_restore_usable_usec:%" PRIu64 "\r\ncow_restore_total_ms:%.1f\r\n"
		    "cow_restore_first_touches:%" PRIu64 "\r\n\r\n",
		    S.restoring,
		    S.restore_usable_ns ? cow_mem_backend_name(S.restore_backend) : "none",
		    S.restore_usable_ns / 1000, (double)S.restore_stats.total_ns / 1e6,
		    S.restore_stats.faults);
	}
	if (SECTION("stats"))
		ADD("# Stats\r\ntotal_connections_received:%" PRIu64
		    "\r\ntotal_commands_processed:%" PRIu64 "\r\n\r\n",
		    S.connections, S.commands);
	if (SECTION("keyspace") && h->count)
		ADD("# Keyspace\r\ndb0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n", h->count);
#undef ADD
#undef SECTION
	kv_out_bulk(&c->out, buf, len);
}

static const struct cmd cmds[] = {
	{"ping", -1, c_ping},	      {"echo", 2, c_echo},	   {"get", 2, c_get},
	{"set", -3, c_set},	      {"mset", -3, c_mset},	   {"del", -2, c_del},
	{"unlink", -2, c_del},	      {"exists", -2, c_exists},	   {"incr", 2, c_incr},
	{"decr", 2, c_incr},	      {"incrby", 3, c_incrby},	   {"decrby", 3, c_incrby},
	{"mget", -2, c_mget},	      {"strlen", 2, c_strlen},	   {"dbsize", 1, c_dbsize},
	{"flushall", -1, c_flushall}, {"flushdb", -1, c_flushall}, {"select", 2, c_select},
	{"bgsave", -1, c_bgsave},     {"lastsave", 1, c_lastsave}, {"shutdown", -1, c_shutdown},
	{"quit", -1, c_quit},	      {"config", -2, c_config},	   {"command", -1, c_command},
	{"client", -2, c_client},     {"info", -1, c_info},
};

static void dispatch(struct client *c, struct kv_arg *a, size_t n)
{
	S.commands++;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!eq(&a[0], cmds[i].name))
			continue;
		int ar = cmds[i].arity;
		if ((ar > 0 && n != (size_t)ar) || (ar < 0 && n < (size_t)-ar)) {
			kv_out_errorf(&c->out, "ERR wrong number of arguments for '%s' command",
				      cmds[i].name);
			return;
		}
		cmds[i].fn(c, a, n);
		return;
	}
	/* Quote the name as Redis does, printable bytes only. */
	char name[64];
	size_t k = 0;
	for (size_t i = 0; i < a[0].len && k < sizeof(name) - 1; i++)
		name[k++] =
			isprint((unsigned char)a[0].p[i]) && a[0].p[i] != '\'' ? a[0].p[i] : '?';
	name[k] = '\0';
	kv_out_errorf(&c->out, "ERR unknown command '%s'", name);
}

/* ---- the loop ---- */

static void client_close(struct client *c)
{
	if (S.bgsave_client == c)
		S.bgsave_client = NULL;
	epoll_ctl(S.ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out.p);
	free(c->req.argv);
	S.clients--;
	c->closed = true;
	c->next_dead = graveyard;
	graveyard = c;
}

static void client_flush(struct client *c)
{
	while (c->out.off < c->out.len) {
		ssize_t w =
			send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!c->want_out) {
					struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
								 .data.ptr = c};
					epoll_ctl(S.ep, EPOLL_CTL_MOD, c->fd, &ev);
					c->want_out = true;
				}
				return;
			}
			c->closing = true;
			c->out.off = c->out.len;
			break;
		}
		c->out.off += (size_t)w;
	}
	c->out.off = c->out.len = 0;
	if (c->want_out) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(S.ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_out = false;
	}
	if (c->closing)
		client_close(c);
}

/* Run every complete request in the input; keep the rest. */
static void client_process(struct client *c)
{
	size_t off = 0;
	while (off < c->in_len && !c->closing && !c->blocked) {
		size_t used = 0;
		const char *err = NULL;
		enum kv_parse r = kv_parse(c->in + off, c->in_len - off, &c->req, &used, &err);
		if (r == KV_PARSE_MORE)
			break;
		if (r == KV_PARSE_ERROR) {
			kv_out_error(&c->out, err);
			c->closing = true; /* the framing is lost, as Redis does */
			break;
		}
		off += used;
		if (c->req.argc)
			dispatch(c, c->req.argv, c->req.argc);
		if (c->out.oom)
			c->closing = true;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void client_read(struct client *c)
{
	for (;;) {
		size_t want = c->req.want > c->in_len ? c->req.want : c->in_len + 16 * 1024;
		if (want > KV_MAX_QUERY) {
			kv_out_error(&c->out, "ERR Protocol error: query buffer limit exceeded");
			c->closing = true;
			break;
		}
		if (want > c->in_cap) {
			size_t cap = c->in_cap ? c->in_cap : 16 * 1024;
			while (cap < want)
				cap *= 2;
			char *p = realloc(c->in, cap);
			if (!p) {
				c->closing = true;
				break;
			}
			c->in = p;
			c->in_cap = cap;
		}
		ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0) {
			client_close(c);
			return;
		}
		bool full = (size_t)r == c->in_cap - c->in_len;
		c->in_len += (size_t)r;
		client_process(c);
		if (c->closing || !full)
			break; /* a short read: the socket is drained for now */
	}
	client_flush(c);
}

static void client_unblock(const char *status, const char *error)
{
	struct client *c = S.bgsave_client;
	S.bgsave_client = NULL;
	if (!c)
		return;
	c->blocked = false;
	if (status)
		kv_out_status(&c->out, status);
	else
		kv_out_error(&c->out, error);
	client_process(c);
	client_flush(c);
}

static void accept_clients(void)
{
	for (;;) {
		int fd = accept4(S.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct client *c = calloc(1, sizeof(*c));
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (!c || epoll_ctl(S.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		S.clients++;
		S.connections++;
	}
}

static int listen_on(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
	if (inet_pton(AF_INET, S.bind, &sa.sin_addr) != 1) {
		logf_("--bind %s: not an IPv4 address", S.bind);
		return -1;
	}
	S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(S.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (S.lfd < 0 || bind(S.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(S.lfd, 511) < 0) {
		logf_("cannot listen on %s:%d: %s", S.bind, S.port, strerror(errno));
		return -1;
	}
	return 0;
}

static void on_note(void)
{
	char b[16];
	ssize_t n;
	while ((n = read(S.note[0], b, sizeof(b))) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (b[i] == 'P')
				on_prepared();
			else if (b[i] == 'S')
				on_saved();
			else if (b[i] == 'R')
				on_restored();
		}
}

static int loop(void)
{
	struct epoll_event ev[MAX_EVENTS];
	for (;;) {
		if (S.shutting && S.phase == SAVE_IDLE && !S.scheduled)
			return 0;
		int n = epoll_wait(S.ep, ev, MAX_EVENTS, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			void *p = ev[i].data.ptr;
			if (p == &S.lfd) {
				if (!S.shutting)
					accept_clients();
			} else if (p == &S.note[0]) {
				on_note();
			} else if (p == &S.sigfd) {
				struct signalfd_siginfo si;
				if (read(S.sigfd, &si, sizeof(si)) > 0) {
					logf_("signal %u: shutting down", si.ssi_signo);
					S.shutting = true;
				}
			} else {
				struct client *c = p;
				if (c->closed)
					continue;
				if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					client_read(c);
				else if (ev[i].events & EPOLLOUT)
					client_flush(c);
			}
		}
		while (graveyard) {
			struct client *c = graveyard;
			graveyard = c->next_dead;
			free(c);
		}
	}
}

/* ---- options ---- */

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -1;
	uint64_t m = 1;
	if (*end) {
		switch (tolower((unsigned char)*end)) {
		case 'k':
			m = 1ull << 10;
			break;
		case 'm':
			m = 1ull << 20;
			break;
		case 'g':
			m = 1ull << 30;
			break;
		case 't':
			m = 1ull << 40;
			break;
		default:
			return -1;
		}
		end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -1;
	}
	if (v > UINT64_MAX / m)
		return -1;
	*out = v * m;
	return 0;
}

/* A backend's name; "lazy" (for --restore) lets the library choose a lazy restore. */
static int parse_backend(const char *s, cow_mem_backend *out)
{
	if (strcmp(s, "lazy") == 0) {
		*out = COW_MEM_AUTO;
		return 0;
	}
	return cow_mem_backend_parse(s, out) ? -1 : 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: kv [--port N] [--bind ADDR] [--dir DIR] [--dbfilename NAME]\n"
		"          [--maxmemory SIZE] [--backend uffd|auto|uffd-thread|mprotect|fork]\n"
		"          [--save-buffer SIZE] [--restore auto|lazy|eager|no] [--thp]\n");
}

static int options(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t sz;
		if (strcmp(o, "--thp") == 0) {
			S.thp = true;
			continue;
		}
		if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
			usage();
			exit(0);
		}
		if (!v) {
			usage();
			return -1;
		}
		i++;
		if (strcmp(o, "--port") == 0) {
			char *end;
			long p = strtol(v, &end, 10);
			if (*end || p < 0 || p > 65535)
				return -1;
			S.port = (int)p;
		} else if (strcmp(o, "--bind") == 0) {
			S.bind = v;
		} else if (strcmp(o, "--dir") == 0) {
			S.dir = v;
		} else if (strcmp(o, "--dbfilename") == 0) {
			S.dbfilename = v;
		} else if (strcmp(o, "--maxmemory") == 0) {
			if (parse_size(v, &sz) || sz < (1u << 20))
				return -1;
			S.maxmemory = round_up(sz, 2ull << 20);
		} else if (strcmp(o, "--save-buffer") == 0) {
			if (parse_size(v, &sz) || sz > SIZE_MAX)
				return -1;
			S.save_buffer = (size_t)sz;
		} else if (strcmp(o, "--backend") == 0) {
			if (parse_backend(v, &S.backend) || S.backend == COW_MEM_EAGER)
				return -1;
			S.backend_given = true;
		} else if (strcmp(o, "--restore") == 0) {
			if (strcmp(v, "no") == 0)
				S.restore = false;
			else if (parse_backend(v, &S.restore_backend))
				return -1;
		} else {
			usage();
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	S.start_ns = now_ns();
	if (options(argc, argv)) {
		fprintf(stderr, "kv: bad option\n");
		return 2;
	}
	snprintf(S.db_path, sizeof(S.db_path), "%s/%s", S.dir, S.dbfilename);
	/* The heap's reservation: address space only until written. */
	S.base = mmap(NULL, S.maxmemory, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (S.base == MAP_FAILED) {
		logf_("cannot reserve %" PRIu64 " bytes: %s", S.maxmemory, strerror(errno));
		return 1;
	}
	madvise(S.base, S.maxmemory, S.thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	/*
	 * Before any thread starts: every thread inherits SIGINT and SIGTERM
	 * blocked (they arrive through the signalfd), and the pipe a
	 * background thread posts to exists.
	 */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	S.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (pipe2(S.note, O_NONBLOCK | O_CLOEXEC) < 0 || S.sigfd < 0) {
		logf_("cannot make the event descriptors: %s", strerror(errno));
		return 1;
	}
	int rc = S.restore ? restore_start() : 0;
	if (rc < 0)
		return 1;
	if (rc == 0 && kv_heap_format(&S.heap, S.base, S.maxmemory)) {
		logf_("--maxmemory too small");
		return 1;
	}
	S.peak_used = S.heap.hdr->used;
	if (listen_on() < 0)
		return 1;
	S.ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e1 = {.events = EPOLLIN, .data.ptr = &S.lfd};
	struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = &S.note[0]};
	struct epoll_event e3 = {.events = EPOLLIN, .data.ptr = &S.sigfd};
	if (S.ep < 0 || epoll_ctl(S.ep, EPOLL_CTL_ADD, S.lfd, &e1) < 0 ||
	    epoll_ctl(S.ep, EPOLL_CTL_ADD, S.note[0], &e2) < 0 ||
	    epoll_ctl(S.ep, EPOLL_CTL_ADD, S.sigfd, &e3) < 0)
		return 1;
	if (rc == 1) {
		S.restore_usable_ns = now_ns() - S.start_ns;
		logf_("restoring %s lazily: %" PRIu64 " keys, serving after %.2f ms", S.db_path,
		      S.heap.hdr->count, (double)S.restore_usable_ns / 1e6);
	}
	logf_("ready on %s:%d (maxmemory %" PRIu64 " MiB)", S.bind, S.port, S.maxmemory >> 20);
	rc = loop();
	logf_("bye");
	return rc ? 1 : 0;
}
