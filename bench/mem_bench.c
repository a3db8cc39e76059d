/*
 * Live-memory benchmark: cowkit's forkless snapshot against fork() in the
 * same process and run, plus checkpoints and restore. Prints CSV rows (no
 * header; bench/mem.sh writes it) and never asserts on time.
 *
 *   mem_bench snap SIZE_MIB THP(0|1) PATTERN(random|hot) DIR|null BACKEND...
 *       one region, populated once; for each backend: the writer alone
 *       (baseline), then a snapshot into a file in DIR (or /dev/null: the
 *       mechanism alone, no sink bandwidth limit) while it writes.
 *       Row: snap,backend,size_mib,thp,pattern,pause_ms,total_ms,extra_mib,
 *            base_mwps,snap_mwps,ratio,fault_p50_us,handler_p50_us,traps,match
 *       MEM_BENCH_FAULT_PAGES=N sets opts.fault_pages.
 *       fault_p50_us is what the writer saw: the median of its writes that
 *       took over 1.5 us (a trap or a COW fault), timed around each write.
 *   mem_bench ckpt SIZE_MIB DIRTY_PCT DIR BACKEND [file|mem]
 *       full checkpoint, then one after writing DIRTY_PCT of the pages, into
 *       a file (pwrite into the page cache) or a memory buffer.
 *       Row: ckpt,backend,size_mib,dirty_pct,sink,full_ms,incr_ms,ratio,pages
 *   mem_bench wpause SIZE_MIB THP(0|1) RUNS
 *       the pause as a writer thread sees it: the longest gap between two of
 *       its writes across the instant (held, then the instant), and across
 *       the whole snapshot; uffd-thread and fork alternating, RUNS each.
 *       Row: wpause,size_mib,thp,backend,hold_ms,min,max,max_gap_ms,min,max
 *   mem_bench pause SIZE_MIB THP(0|1) RUNS
 *       the pause alone (no writer, image to /dev/null), uffd then fork,
 *       RUNS times each; the medians. Row: pause,size_mib,thp,uffd_ms,fork_ms,ratio
 *   mem_bench restore SIZE_MIB DIR
 *       the image is a page-cached file; peer: read() into fresh memory.
 *       Row: restore,size_mib,read_ms,eager_ms,lazy_usable_ms,first_touch_us,
 *            lazy_total_ms,lazy_vs_read
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cow/mem.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "mem_bench: %s: %s\n", what, rc ? cow_strerror(rc) : strerror(errno));
	exit(1);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* ---- snap ---- */

#define MAXSLOW (1u << 20)

struct writer {
	char *mem;
	uint64_t npages;
	bool hot; /* all writes into a fixed 10% of the pages */
	pthread_mutex_t gate;
	atomic_int stop, record;
	atomic_ulong writes;
	uint32_t *slow; /* ns of writes over the threshold, while recording */
	atomic_uint nslow;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t x = 0x9E3779B97F4A7C15ull;
	uint64_t span = w->hot ? w->npages / 10 : w->npages;
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		pthread_mutex_lock(&w->gate);
		bool rec = atomic_load_explicit(&w->record, memory_order_relaxed);
		for (int k = 0; k < 64; k++) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
			uint64_t v = x * 0x2545F4914F6CDD1DULL;
			/* hot pages are spread: every 10th page */
			uint64_t page = w->hot ? (v % span) * 10 : v % span;
			char *p = w->mem + (page << 12) + ((v >> 52) & 0xff8);
			uint64_t t0 = now_ns();
			memcpy(p, &v, 8);
			uint64_t dt = now_ns() - t0;
			if (rec && dt > 1500) {
				unsigned n = atomic_fetch_add(&w->nslow, 1);
				if (n < MAXSLOW)
					w->slow[n] = (uint32_t)(dt > UINT32_MAX ? UINT32_MAX : dt);
			}
		}
		pthread_mutex_unlock(&w->gate);
		atomic_fetch_add_explicit(&w->writes, 64, memory_order_relaxed);
	}
	return NULL;
}

static cow_mem_backend parse_backend(const char *s)
{
	if (strcmp(s, "uffd") == 0)
		return COW_MEM_UFFD;
	if (strcmp(s, "mprotect") == 0)
		return COW_MEM_MPROTECT;
	if (strcmp(s, "fork") == 0)
		return COW_MEM_FORK;
	if (strcmp(s, "uffd-async") == 0)
		return COW_MEM_UFFD_ASYNC;
	return COW_MEM_AUTO;
}

static int snap(int argc, char **argv)
{
	if (argc < 7)
		return 2;
	uint64_t size = strtoull(argv[2], NULL, 10) << 20;
	bool thp = atoi(argv[3]);
	const char *pattern = argv[4], *dir = argv[5];
	cow_mem_region *r;
	int rc = cow_mem_region_alloc(size, thp ? COW_MEM_THP : 0, &r);
	if (rc)
		die("region", rc);
	struct writer w = {.mem = cow_mem_region_addr(r),
			   .npages = size >> 12,
			   .hot = strcmp(pattern, "hot") == 0,
			   .gate = PTHREAD_MUTEX_INITIALIZER};
	w.slow = calloc(MAXSLOW, sizeof(uint32_t));
	for (uint64_t i = 0; i < size; i += 4096)
		memset(w.mem + i, (int)(i >> 12) | 1, 64);
	char path[4096];
	snprintf(path, sizeof(path), "%s/mem_bench.%d.img", dir, (int)getpid());
	pthread_t th;
	pthread_create(&th, NULL, writer_main, &w);
	for (int b = 6; b < argc; b++) {
		cow_mem_backend be = parse_backend(argv[b]);
		bool null = strcmp(dir, "null") == 0;
		int fd = null ? open("/dev/null", O_WRONLY | O_CLOEXEC)
			      : open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			die("image file", 0);
		cow_mem_sink *sink;
		if ((rc = cow_mem_sink_fd(fd, 0, &sink)))
			die("sink", rc);
		/* Baseline: the writer alone, timed the same way. */
		usleep(100000);
		uint64_t n0 = atomic_load(&w.writes), t0 = now_ns();
		usleep(500000);
		double base = (double)(atomic_load(&w.writes) - n0) * 1e3 / (double)(now_ns() - t0);

		const char *fp = getenv("MEM_BENCH_FAULT_PAGES"); /* opts.fault_pages */
		cow_mem_snap_opts o = {.backend = be, .fault_pages = fp ? (unsigned)atoi(fp) : 0};
		cow_mem_snap *s;
		cow_mem_snap_stats st;
		pthread_mutex_lock(&w.gate);
		atomic_store(&w.nslow, 0);
		atomic_store(&w.record, 1);
		n0 = atomic_load(&w.writes);
		t0 = now_ns();
		rc = cow_mem_snapshot_start(r, sink, &o, &s);
		pthread_mutex_unlock(&w.gate);
		if (rc)
			die("snapshot", rc);
		if ((rc = cow_mem_snapshot_wait(s, &st)))
			die("snapshot wait", rc);
		double during =
			(double)(atomic_load(&w.writes) - n0) * 1e3 / (double)(now_ns() - t0);
		atomic_store(&w.record, 0);
		unsigned ns = atomic_load(&w.nslow);
		if (ns > MAXSLOW)
			ns = MAXSLOW;
		qsort(w.slow, ns, sizeof(uint32_t), cmp_u32);
		printf("snap,%s,%llu,%d,%s%s,%.3f,%.1f,%.1f,%.2f,%.2f,%.3f,%.2f,%.2f,%llu\n",
		       cow_mem_backend_name(st.backend), (unsigned long long)(size >> 20), thp,
		       pattern, null ? "/null" : "", st.pause_ns / 1e6, st.total_ns / 1e6,
		       (double)st.extra_peak / 1048576.0, base, during,
		       base > 0 ? during / base : 0, ns ? w.slow[ns / 2] / 1e3 : 0.0,
		       st.fault_median_ns / 1e3, (unsigned long long)st.faults);
		fflush(stdout);
		fprintf(stderr, "  [%s: stalls %llu retraps %llu waits %llu]\n",
			cow_mem_backend_name(st.backend), (unsigned long long)st.stalls,
			(unsigned long long)st.retraps, (unsigned long long)st.waits);
		cow_mem_sink_destroy(sink);
		close(fd);
		if (!null)
			unlink(path);
	}
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	cow_mem_region_destroy(r);
	free(w.slow);
	return 0;
}

/* ---- ckpt ---- */

static int ckpt(int argc, char **argv)
{
	if (argc < 6)
		return 2;
	uint64_t size = strtoull(argv[2], NULL, 10) << 20;
	double pct = atof(argv[3]);
	const char *dir = argv[4];
	cow_mem_backend be = parse_backend(argv[5]);
	cow_mem_region *r;
	int rc = cow_mem_region_alloc(size, 0, &r);
	if (rc)
		die("region", rc);
	char *m = cow_mem_region_addr(r);
	for (uint64_t i = 0; i < size; i += 4096)
		m[i] = 1;
	char path[4096];
	snprintf(path, sizeof(path), "%s/mem_bench.%d.ckpt", dir, (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die("checkpoint file", 0);
	unlink(path);
	bool to_mem = argc > 6 && strcmp(argv[6], "mem") == 0;
	char *buf = to_mem ? malloc(size) : NULL;
	cow_mem_sink *sink;
	if (to_mem && !buf)
		die("buffer", COW_ENOMEM);
	if ((rc = to_mem ? cow_mem_sink_buffer(buf, size, &sink) : cow_mem_sink_fd(fd, 0, &sink)))
		die("sink", rc);
	if ((rc = cow_mem_track_start(r, be)))
		die("track", rc);
	cow_mem_ckpt_stats full, inc;
	/* The first full checkpoint warms the file; the second is the measured one. */
	if ((rc = cow_mem_checkpoint(r, sink, &full)))
		die("checkpoint", rc);
	cow_mem_track_stop(r);
	if ((rc = cow_mem_track_start(r, be)) || (rc = cow_mem_checkpoint(r, sink, &full)))
		die("checkpoint", rc);
	uint64_t npages = size >> 12, every = (uint64_t)(100.0 / pct), x = 12345;
	for (uint64_t p = 0; p < npages; p += every) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t q = p + (x >> 33) % every; /* one random page per stride */
		m[(q < npages ? q : p) << 12] ^= 2;
	}
	if ((rc = cow_mem_checkpoint(r, sink, &inc)))
		die("checkpoint", rc);
	printf("ckpt,%s,%llu,%.1f,%s,%.2f,%.3f,%.4f,%llu\n", cow_mem_backend_name(inc.backend),
	       (unsigned long long)(size >> 20), pct, to_mem ? "mem" : "file", full.total_ns / 1e6,
	       inc.total_ns / 1e6, (double)inc.total_ns / (double)full.total_ns,
	       (unsigned long long)inc.pages);
	cow_mem_sink_destroy(sink);
	close(fd);
	free(buf);
	cow_mem_region_destroy(r);
	return 0;
}

/* A region of @size bytes, every page touched, and a sink into /dev/null. */
static cow_mem_region *pause_setup(uint64_t size, bool thp, int *fd, cow_mem_sink **sink)
{
	cow_mem_region *r;
	int rc = cow_mem_region_alloc(size, thp ? COW_MEM_THP : 0, &r);
	if (rc)
		die("region", rc);
	char *m = cow_mem_region_addr(r);
	for (uint64_t i = 0; i < size; i += 4096)
		m[i] = 1;
	*fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (*fd < 0 || (rc = cow_mem_sink_fd(*fd, 0, sink)))
		die("sink", rc);
	return r;
}

/* ---- the pause as a writer sees it ---- */

/*
 * A writer thread stamps the time into random pages of the region as fast
 * as it can. For the instant the main thread holds it (a flag it polls
 * between writes), takes the instant (cow_mem_snapshot_instant: write-protect,
 * or fork), and lets it go; the writer's own clock gives the longest gap
 * between two of its writes across the whole snapshot: the hold plus the
 * instant, and any write it had to wait for (a trapped first write).
 */
struct wp {
	char *m;
	uint64_t pages;
	_Atomic int hold, held, stop;
	uint64_t max_gap_ns, hold_gap_ns, writes;
};

static uint64_t wp_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *wp_writer(void *arg)
{
	struct wp *w = arg;
	uint64_t x = 88172645463325252ull, last = wp_now();
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		if (atomic_load_explicit(&w->hold, memory_order_acquire)) {
			atomic_store(&w->held, 1);
			while (atomic_load_explicit(&w->hold, memory_order_acquire))
				;
			atomic_store(&w->held, 0);
			uint64_t t = wp_now();
			if (t - last > w->hold_gap_ns)
				w->hold_gap_ns = t - last; /* the gap across the instant */
		}
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t t = wp_now();
		*(volatile uint64_t *)(void *)(w->m + (x % w->pages) * 4096) = t;
		if (t - last > w->max_gap_ns)
			w->max_gap_ns = t - last;
		last = wp_now();
		w->writes++;
	}
	return NULL;
}

/* One snapshot of @r with a writer running: the writer's gaps, in ns. */
static void wp_run(cow_mem_region *r, cow_mem_sink *sink, cow_mem_backend b, uint64_t *hold,
		   uint64_t *max)
{
	struct wp w = {.m = cow_mem_region_addr(r), .pages = cow_mem_region_size(r) / 4096};
	pthread_t th;
	if (pthread_create(&th, NULL, wp_writer, &w) != 0)
		die("writer", COW_ENOMEM);
	struct timespec warm = {0, 20 * 1000 * 1000};
	nanosleep(&warm, NULL);
	cow_mem_snap_opts o = {.backend = b};
	cow_mem_snap *s;
	int rc = cow_mem_snapshot_prepare(r, sink, &o, &s); /* the writer goes on meanwhile */
	if (rc)
		die("prepare", rc);
	w.max_gap_ns = w.hold_gap_ns = 0;
	atomic_store(&w.hold, 1);
	while (!atomic_load(&w.held))
		;
	rc = cow_mem_snapshot_instant(s);
	atomic_store(&w.hold, 0);
	if (rc)
		die("instant", rc);
	cow_mem_snap_stats st;
	if ((rc = cow_mem_snapshot_wait(s, &st)))
		die("wait", rc);
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	*hold = w.hold_gap_ns;
	*max = w.max_gap_ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* mem_bench wpause SIZE_MIB THP RUNS: uffd-thread and fork alternating. */
static int writer_pause(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	uint64_t size = strtoull(argv[2], NULL, 10) << 20;
	bool thp = atoi(argv[3]);
	int runs = atoi(argv[4]);
	if (runs < 1 || runs > 15)
		runs = 5;
	int fd;
	cow_mem_sink *sink;
	cow_mem_region *r = pause_setup(size, thp, &fd, &sink);
	uint64_t uh[15], um[15], fh[15], fm[15];
	for (int i = 0; i < runs; i++) {
		wp_run(r, sink, COW_MEM_UFFD_THREAD, &uh[i], &um[i]);
		wp_run(r, sink, COW_MEM_FORK, &fh[i], &fm[i]);
	}
	qsort(uh, (size_t)runs, 8, cmp_u64), qsort(um, (size_t)runs, 8, cmp_u64);
	qsort(fh, (size_t)runs, 8, cmp_u64), qsort(fm, (size_t)runs, 8, cmp_u64);
	/* Median, then min and max, in ms. */
	printf("wpause,%llu,%d,uffd-thread,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f\n",
	       (unsigned long long)(size >> 20), thp, uh[runs / 2] / 1e6, uh[0] / 1e6,
	       uh[runs - 1] / 1e6, um[runs / 2] / 1e6, um[0] / 1e6, um[runs - 1] / 1e6);
	printf("wpause,%llu,%d,fork,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f\n",
	       (unsigned long long)(size >> 20), thp, fh[runs / 2] / 1e6, fh[0] / 1e6,
	       fh[runs - 1] / 1e6, fm[runs / 2] / 1e6, fm[0] / 1e6, fm[runs - 1] / 1e6);
	cow_mem_sink_destroy(sink);
	close(fd);
	cow_mem_region_destroy(r);
	return 0;
}

/* ---- pause ---- */

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int pause_only(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	uint64_t size = strtoull(argv[2], NULL, 10) << 20;
	bool thp = atoi(argv[3]);
	int runs = atoi(argv[4]);
	if (runs < 1 || runs > 15)
		runs = 3;
	int fd, rc;
	cow_mem_sink *sink;
	cow_mem_region *r = pause_setup(size, thp, &fd, &sink);
	double u[15], f[15];
	for (int i = 0; i < runs; i++) {
		cow_mem_snap_stats st;
		cow_mem_snap_opts o = {.backend = COW_MEM_UFFD};
		if ((rc = cow_mem_snapshot(r, sink, &o, &st)))
			die("snapshot", rc);
		u[i] = st.pause_ns / 1e6;
		o.backend = COW_MEM_FORK;
		if ((rc = cow_mem_snapshot(r, sink, &o, &st)))
			die("fork snapshot", rc);
		f[i] = st.pause_ns / 1e6;
	}
	qsort(u, (size_t)runs, sizeof(double), cmp_dbl);
	qsort(f, (size_t)runs, sizeof(double), cmp_dbl);
	printf("pause,%llu,%d,%.3f,%.3f,%.3f\n", (unsigned long long)(size >> 20), thp, u[runs / 2],
	       f[runs / 2], u[runs / 2] / f[runs / 2]);
	cow_mem_sink_destroy(sink);
	close(fd);
	cow_mem_region_destroy(r);
	return 0;
}

/* ---- restore ---- */

static int restore(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	uint64_t size = strtoull(argv[2], NULL, 10) << 20;
	const char *dir = argv[3];
	char path[4096];
	snprintf(path, sizeof(path), "%s/mem_bench.%d.rst", dir, (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die("image file", 0);
	unlink(path);
	char *chunk = malloc(1 << 20);
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		memset(chunk, (int)(off >> 20) | 1, 1 << 20);
		if (pwrite(fd, chunk, 1 << 20, (off_t)off) != 1 << 20)
			die("write image", 0);
	}
	free(chunk);
	fsync(fd);

	/* Peer: read() the cached file into fresh anonymous memory. */
	char *dst = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(dst, size, MADV_NOHUGEPAGE);
	uint64_t t0 = now_ns();
	for (uint64_t off = 0; off < size;) {
		ssize_t n = pread(fd, dst + off, size - off > (1 << 20) ? 1 << 20 : size - off,
				  (off_t)off);
		if (n <= 0)
			die("read", 0);
		off += (uint64_t)n;
	}
	double read_ms = (double)(now_ns() - t0) / 1e6;
	munmap(dst, size);

	const char *img = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (img == MAP_FAILED)
		die("mmap image", 0);
	cow_mem_region *r;
	cow_mem_restore *h;
	cow_mem_restore_stats st;
	int rc = cow_mem_region_alloc(size, 0, &r);
	if (rc || (rc = cow_mem_restore_start(r, img, size, COW_MEM_EAGER, &h)) ||
	    (rc = cow_mem_restore_wait(h, &st)))
		die("eager restore", rc);
	double eager_ms = st.total_ns / 1e6;
	cow_mem_region_destroy(r);

	if ((rc = cow_mem_region_alloc(size, 0, &r)))
		die("region", rc);
	t0 = now_ns();
	if ((rc = cow_mem_restore_start(r, img, size, COW_MEM_UFFD, &h)))
		die("lazy restore", rc);
	double usable_ms = (double)(now_ns() - t0) / 1e6;
	uint64_t t1 = now_ns();
	volatile char c = ((volatile char *)cow_mem_region_addr(r))[size / 2 + 4096 * 7];
	(void)c;
	double first_us = (double)(now_ns() - t1) / 1e3;
	if ((rc = cow_mem_restore_wait(h, &st)))
		die("lazy restore wait", rc);
	double lazy_ms = st.total_ns / 1e6;
	printf("restore,%llu,%.1f,%.1f,%.3f,%.1f,%.1f,%.3f\n", (unsigned long long)(size >> 20),
	       read_ms, eager_ms, usable_ms, first_us, lazy_ms, lazy_ms / read_ms);
	cow_mem_region_destroy(r);
	munmap((void *)img, size);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;
	if (argc > 1 && strcmp(argv[1], "snap") == 0)
		rc = snap(argc, argv);
	else if (argc > 1 && strcmp(argv[1], "ckpt") == 0)
		rc = ckpt(argc, argv);
	else if (argc > 1 && strcmp(argv[1], "pause") == 0)
		rc = pause_only(argc, argv);
	else if (argc > 1 && strcmp(argv[1], "wpause") == 0)
		rc = writer_pause(argc, argv);
	else if (argc > 1 && strcmp(argv[1], "restore") == 0)
		rc = restore(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: see the comment at the top of bench/mem_bench.c\n");
	return rc;
}
