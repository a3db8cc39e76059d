/*
 * Tour step: runtimes that un-share pages. A compact run of the C-objects
 * experiment (examples/share_objects.c has the full one): the parent builds
 * small heap objects, forks one reader per design, and cow_share_measure()
 * tells how much each reader un-shared by only reading, depending on where
 * the reference count lives: inside each object, in a side table, or
 * nowhere (objects frozen as immortal).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cow/share.h"
#include "tour.h"

#define IMMORTAL INT64_MIN

struct tobj {
	int64_t refcnt;
	int64_t id;
	char payload[48];
};

enum { T_INLINE, T_SIDE, T_FROZEN };

static void reader(struct tobj **objs, int64_t *side, size_t n, int design)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		struct tobj *o = objs[i];
		volatile int64_t *rc = design == T_SIDE ? &side[o->id] : &o->refcnt;
		if (*rc != IMMORTAL)
			++*rc;
		sum += (uint64_t)o->payload[i % sizeof(o->payload)];
		if (*rc != IMMORTAL)
			--*rc;
	}
	volatile uint64_t keep = sum;
	(void)keep;
}

/* Fork a reader of @design, wait until it is done, return its private dirty bytes. */
static int measure(struct tobj **objs, int64_t *side, size_t n, int design, uint64_t *dirty,
		   double *shared_pct)
{
	int ready[2], rel[2];
	if (pipe(ready) || pipe(rel))
		return COW_EMFILE;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(ready[0]);
		close(rel[1]);
		reader(objs, side, n, design);
		char c = 1;
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		while (read(rel[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(rel[0]);
	char c;
	int rc = read(ready[0], &c, 1) == 1 ? 0 : COW_ESRCH;
	close(ready[0]);
	cow_share_report *r = NULL;
	int pids[2] = {getpid(), pid};
	if (rc == 0)
		rc = cow_share_measure(pids, 2, 0, &r);
	if (rc == 0) {
		const cow_share_proc *p = cow_share_report_find(r, pid);
		const cow_share_figs *h = &p->kind[COW_SHARE_HEAP];
		*dirty = p->total.private_dirty;
		*shared_pct =
			cow_share_report_frames(r) && h->pages
				? 100.0 * (double)(h->pages - h->pages_none) / (double)h->pages
				: -1;
		cow_share_report_destroy(r);
	}
	close(rel[1]);
	waitpid(pid, NULL, 0);
	return rc;
}

int tour_share(struct tour *t)
{
	size_t n = t->quick ? 200000 : 1000000;
	struct tobj **objs = malloc(n * sizeof(*objs));
	int64_t *side = calloc(n, sizeof(*side));
	int ret = 1;
	size_t built = 0;
	if (!objs || !side)
		goto oom;
	for (; built < n; built++) {
		struct tobj *o = malloc(sizeof(*o));
		if (!o)
			goto oom;
		o->refcnt = 1;
		o->id = (int64_t)built;
		memset(o->payload, (int)built, sizeof(o->payload));
		objs[built] = o;
		side[built] = 1;
	}
	char a[32], b[32];
	tour_say("parent: %zu objects of 64 bytes on the heap (%s), side table %s", n,
		 cli_size(a, sizeof(a), (double)n * 80), cli_size(b, sizeof(b), (double)n * 8));
	static const char *const names[] = {"count inside each object", "counts in a side table",
					    "objects frozen (immortal)"};
	for (int d = T_INLINE; d <= T_FROZEN; d++) {
		if (d == T_FROZEN)
			for (size_t i = 0; i < n; i++)
				objs[i]->refcnt = IMMORTAL;
		uint64_t dirty = 0;
		double pct = -1;
		int rc = measure(objs, side, n, d, &dirty, &pct);
		if (rc) {
			tour_say("measuring a reader failed: %s", cow_strerror(rc));
			goto out;
		}
		if (pct >= 0)
			tour_say(
				"reader, %-26s private dirty %9s; heap pages still shared %5.1f %%",
				names[d], cli_size(a, sizeof(a), (double)dirty), pct);
		else
			tour_say("reader, %-26s private dirty %9s (frame figures need root)",
				 names[d], cli_size(a, sizeof(a), (double)dirty));
	}
	tour_say("try it on any process family: cow share PID --children (--json, --watch 1)");
	ret = 0;
	goto out;
oom:
	tour_say("out of memory building the objects");
out:
	for (size_t i = 0; i < built; i++)
		free(objs[i]);
	free(objs);
	free(side);
	return ret;
}
