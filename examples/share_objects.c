/*
 * share_objects: where a reference count lives decides what fork() shares.
 *
 * The parent builds millions of small heap objects (64 bytes each, malloc'd
 * one by one like a language runtime's objects), then forks readers that
 * only read them. Each read is wrapped in incref/decref, as a runtime does
 * when it hands an object to code, and the designs differ only in where that
 * count lives:
 *
 *   idle    the reader does nothing (the baseline of a forked process)
 *   inline  the count is a field of the object: every object's page is written
 *   side    the counts live in a side table: only the table's pages are written
 *   frozen  the objects are marked immortal before fork (CPython 3.12's PEP 683
 *           does this for some objects); incref/decref see the mark and write
 *           nothing
 *
 * The parent measures itself and its readers with cow_share_measure() and
 * prints what each design un-shared: the reader's private dirty memory beyond
 * the idle baseline, and (as root) the reader's heap pages that are still the
 * same physical frames as the parent's.
 *
 * usage: share_objects [--objects N] [--readers R] [--design NAME|all]
 *                      [--hold SECONDS] [--check]
 *
 * --hold keeps the readers alive that long after measuring, so `cow share
 * PARENT --children` can be run by hand; --check exits 1 unless the results
 * show what the designs promise (used as a test).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cow/cow.h"
#include "cow/share.h"

#define IMMORTAL INT64_MIN
#define MIB	 1048576.0

struct obj {
	int64_t refcnt; /* inline design; IMMORTAL when frozen */
	int64_t id;	/* index into the side table */
	char payload[48];
};

enum design { IDLE, INLINE, SIDE, FROZEN, NDESIGNS };
static const char *const design_names[NDESIGNS] = {"idle", "inline", "side", "frozen"};

struct world {
	struct obj **objs;
	int64_t *side; /* side-table counts */
	size_t n;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void incref(struct world *w, struct obj *o, enum design d)
{
	volatile int64_t *rc = d == SIDE ? &w->side[o->id] : &o->refcnt;
	if (d == IDLE || *rc == IMMORTAL)
		return;
	++*rc;
}

static inline void decref(struct world *w, struct obj *o, enum design d)
{
	volatile int64_t *rc = d == SIDE ? &w->side[o->id] : &o->refcnt;
	if (d == IDLE || *rc == IMMORTAL)
		return;
	--*rc;
}

/* The reader's work: read every payload, holding a reference while it does. */
static uint64_t read_all(struct world *w, enum design d)
{
	uint64_t sum = 0;
	if (d == IDLE)
		return 0;
	for (size_t i = 0; i < w->n; i++) {
		struct obj *o = w->objs[i];
		incref(w, o, d);
		for (size_t b = 0; b < sizeof(o->payload); b += 8) {
			uint64_t v;
			memcpy(&v, o->payload + b, 8);
			sum += v;
		}
		decref(w, o, d);
	}
	return sum;
}

struct result {
	double unshared_mib;	/* reader private dirty beyond the idle baseline, mean of readers */
	double dirty_mib;	/* reader private dirty, mean */
	double heap_shared_pct; /* reader heap pages still the parent's frames (frames only) */
	double iterate_ms;	/* the reader's loop, mean */
	double heap_mib; /* reader resident [heap], where malloc put the objects (not under ASan) */
	int frames;
};

/*
 * Fork @nreaders readers running design @d; measure once all are done; let
 * them go. The readers report their loop time through the pipe.
 */
static int run_design(struct world *w, enum design d, int nreaders, double hold, struct result *res)
{
	int ready[2], rel[2];
	if (pipe(ready) || pipe(rel)) {
		perror("pipe");
		return -1;
	}
	int pids[65];
	pids[0] = getpid();
	for (int i = 0; i < nreaders; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return -1;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(ready[0]);
			close(rel[1]);
			double t0 = now_ms();
			volatile uint64_t sum = read_all(w, d);
			(void)sum;
			double ms = now_ms() - t0;
			if (write(ready[1], &ms, sizeof(ms)) != sizeof(ms))
				_exit(1);
			char c;
			while (read(rel[0], &c, 1) > 0)
				;
			_exit(0);
		}
		pids[1 + i] = pid;
	}
	close(ready[1]);
	close(rel[0]);
	res->iterate_ms = 0;
	for (int i = 0; i < nreaders; i++) {
		double ms;
		if (read(ready[0], &ms, sizeof(ms)) != sizeof(ms)) {
			fprintf(stderr, "share_objects: a reader died\n");
			return -1;
		}
		res->iterate_ms += ms / nreaders;
	}
	close(ready[0]);

	cow_share_report *r;
	int rc = cow_share_measure(pids, (size_t)nreaders + 1, 0, &r);
	if (rc) {
		fprintf(stderr, "share_objects: cow_share_measure: %s\n", cow_strerror(rc));
		return -1;
	}
	res->frames = cow_share_report_frames(r);
	res->dirty_mib = 0;
	res->heap_mib = 0;
	res->heap_shared_pct = 0;
	for (int i = 0; i < nreaders; i++) {
		const cow_share_proc *p = cow_share_report_find(r, pids[1 + i]);
		if (!p)
			continue;
		res->dirty_mib += (double)p->total.private_dirty / MIB / nreaders;
		const cow_share_figs *h = &p->kind[COW_SHARE_HEAP];
		res->heap_mib += (double)h->rss / MIB / nreaders;
		if (res->frames && h->pages)
			res->heap_shared_pct += 100.0 * (double)(h->pages - h->pages_none) /
						(double)h->pages / nreaders;
	}
	cow_share_report_destroy(r);
	if (hold > 0) {
		printf("  readers of design %s are alive for %.0f s: cow share %d --children\n",
		       design_names[d], hold, (int)getpid());
		fflush(stdout);
		struct timespec ts = {(time_t)hold, 0};
		nanosleep(&ts, NULL);
	}
	close(rel[1]);
	for (int i = 0; i < nreaders; i++)
		waitpid(pids[1 + i], NULL, 0);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: share_objects [--objects N] [--readers R] "
			"[--design idle|inline|side|frozen|all] [--hold SECONDS] [--check]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	size_t n = 2000000;
	int nreaders = 2, only = -1;
	bool check = false;
	double hold = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--objects") == 0 && i + 1 < argc)
			n = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--readers") == 0 && i + 1 < argc)
			nreaders = atoi(argv[++i]);
		else if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc)
			hold = atof(argv[++i]);
		else if (strcmp(argv[i], "--check") == 0)
			check = true;
		else if (strcmp(argv[i], "--design") == 0 && i + 1 < argc) {
			i++;
			only = -1;
			for (int d = 0; d < NDESIGNS; d++)
				if (strcmp(argv[i], design_names[d]) == 0)
					only = d;
			if (only < 0 && strcmp(argv[i], "all") != 0)
				usage();
		} else
			usage();
	}
	if (n == 0 || nreaders < 1 || nreaders > 64)
		usage();

	struct world w = {.n = n};
	w.objs = malloc(n * sizeof(*w.objs));
	w.side = calloc(n, sizeof(*w.side));
	if (!w.objs || !w.side) {
		fprintf(stderr, "share_objects: out of memory\n");
		return 1;
	}
	uint64_t before = 0, after = 0;
	cow_share_private_dirty(getpid(), &before);
	for (size_t i = 0; i < n; i++) {
		struct obj *o = malloc(sizeof(*o));
		if (!o) {
			fprintf(stderr, "share_objects: out of memory\n");
			return 1;
		}
		o->refcnt = 1;
		o->id = (int64_t)i;
		memset(o->payload, (int)(i & 0xff), sizeof(o->payload));
		w.objs[i] = o;
		w.side[i] = 1;
	}
	cow_share_private_dirty(getpid(), &after);
	double side_mib = (double)(n * sizeof(*w.side)) / MIB;
	double ptrs_mib = (double)(n * sizeof(*w.objs)) / MIB;
	double heap_mib = (double)(after - before) / MIB - side_mib - ptrs_mib;
	printf("share_objects: %zu objects of %zu bytes: object heap %.1f MiB (with malloc "
	       "headers), pointer array %.1f MiB, side table %.1f MiB; %d reader%s per design\n",
	       n, sizeof(struct obj), heap_mib, ptrs_mib, side_mib, nreaders,
	       nreaders == 1 ? "" : "s");
	printf("%-8s %14s %14s %18s %12s\n", "design", "reader dirty", "un-shared",
	       "heap still shared", "iterate");

	struct result res[NDESIGNS];
	memset(res, 0, sizeof(res));
	for (int d = 0; d < NDESIGNS; d++) {
		if (only >= 0 && d != only && d != IDLE)
			continue;
		if (d == FROZEN)
			for (size_t i = 0; i < n; i++)
				w.objs[i]->refcnt = IMMORTAL;
		if (run_design(&w, (enum design)d, nreaders, hold, &res[d]))
			return 1;
		if (d == FROZEN)
			for (size_t i = 0; i < n; i++)
				w.objs[i]->refcnt = 1;
		res[d].unshared_mib = res[d].dirty_mib - res[IDLE].dirty_mib;
		char pct[32] = "(needs root)";
		if (res[d].frames)
			snprintf(pct, sizeof(pct), "%.1f %%", res[d].heap_shared_pct);
		printf("%-8s %10.1f MiB %10.1f MiB %18s %9.1f ms\n", design_names[d],
		       res[d].dirty_mib, res[d].unshared_mib, pct, res[d].iterate_ms);
		fflush(stdout);
	}
	for (size_t i = 0; i < n; i++)
		free(w.objs[i]);
	free(w.objs);
	free(w.side);
	if (!check)
		return 0;

	/* What the designs promise, with generous margins for allocator noise. */
	int bad = 0;
	if (only < 0) {
		if (res[INLINE].unshared_mib < 0.8 * heap_mib) {
			printf("check: inline should un-share the object heap\n");
			bad = 1;
		}
		if (res[SIDE].unshared_mib > side_mib * 1.2 + 1 ||
		    res[SIDE].unshared_mib < side_mib * 0.8 - 1) {
			printf("check: side should un-share about the side table\n");
			bad = 1;
		}
		if (res[FROZEN].unshared_mib > 1) {
			printf("check: frozen should un-share (almost) nothing\n");
			bad = 1;
		}
		/* Only where malloc put the objects on the brk heap (not under ASan). */
		if (res[FROZEN].frames && res[FROZEN].heap_mib > 0.5 * heap_mib &&
		    res[FROZEN].heap_shared_pct < 95) {
			printf("check: frozen readers should keep the heap's frames\n");
			bad = 1;
		}
	}
	printf("check: %s\n", bad ? "FAILED" : "ok");
	return bad;
}
