/*
 * `cow tour` (run by cow-tour): the main job. Walks every row of the design's feature table on
 * a store in a scratch folder and prints what each step measured.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "tour.h"

#pragma weak tour_fork
#pragma weak tour_share
#pragma weak tour_mvcc
#pragma weak tour_clone
#pragma weak tour_snapshot
#pragma weak tour_crash
#pragma weak tour_livesnap
#pragma weak tour_checkpoint
#pragma weak tour_rcu
#pragma weak tour_closures
#pragma weak tour_daytwo

struct step {
	const char *title;
	const char *shows; /* one line of plain words */
	int (*run)(struct tour *t);
};

double tour_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void tour_say(const char *fmt, ...)
{
	va_list ap;
	printf("    ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -r @dir: depth first, never following symbolic links out of it. */
static int remove_tree(const char *dir)
{
	return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int cmd_tour(const struct cli_args *a)
{
	struct tour t = {.dir = cli_str(a, "dir", NULL), .quick = cli_flag(a, "quick")};
	t.size = cli_num(a, "size", t.quick ? 32ull << 20 : 256ull << 20);
	long only = (long)cli_num(a, "step", 0);
	char tmp[] = "/tmp/cowtour.XXXXXX";
	bool own = false;
	if (!t.dir) {
		if (!mkdtemp(tmp)) {
			perror("cow tour: mkdtemp");
			return EXIT_FAIL;
		}
		t.dir = tmp;
		own = true;
	}

	const struct step steps[] = {
		{"fork(): an instant clone of a whole process",
		 "fork shares every page until written; its cost is the page tables", tour_fork},
		{"runtimes that un-share pages",
		 "a write to a shared page (a refcount, a GC bit) copies it", tour_share},
		{"a long consistent read while writes go on",
		 "a reader keeps its generation; the writer never waits for it", tour_mvcc},
		{"reflink-style clone", "a clone shares every block until written", tour_clone},
		{"snapshots by path copying",
		 "a write copies one leaf-to-root path; a snapshot keeps the old root",
		 tour_snapshot},
		{"crash consistency", "new blocks first, then one superblock switch", tour_crash},
		{"day two: an online backup, and space given back",
		 "a backup keeps the sharing; freed space goes back to the file system",
		 tour_daytwo},
		{"a copy-on-write file system: cp that shares, snapshots you can walk",
		 "cow mount serves a tree kept in the store; cp inside it copies no data",
		 tour_fs},
		{"live-memory snapshot (hypervisor-style write trapping)",
		 "write-protect, copy a page before its first write", tour_livesnap},
		{"incremental checkpoint and lazy restore",
		 "store only dirty pages; restore a page on first touch", tour_checkpoint},
		{"copy-on-write credentials with RCU",
		 "readers never see a half-updated object, and never lock", tour_rcu},
		{"closures: where copy-on-write is the wrong tool",
		 "a shared mutable cell must be boxed, not copied", tour_closures},
	};

	printf("cow tour: copy-on-write, one system at a time (scratch: %s%s)\n", t.dir,
	       t.quick ? ", quick" : "");
	int failed = 0, built = 0;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct step *s = &steps[i];
		if (only && (size_t)only != i + 1)
			continue;
		printf("\n%zu. %s\n   %s\n", i + 1, s->title, s->shows);
		fflush(stdout);
		if (!s->run) {
			tour_say("not built yet");
			continue;
		}
		built++;
		if (s->run(&t) != 0) {
			tour_say("FAILED");
			failed++;
		}
	}
	printf("\n%d of %zu steps built, %d failed\n", built, sizeof(steps) / sizeof(steps[0]),
	       failed);
	if (own && remove_tree(tmp) != 0)
		fprintf(stderr, "cow tour: could not remove %s: %s\n", tmp, strerror(errno));
	return failed ? EXIT_FAIL : EXIT_OK;
}
