/*
 * A synthetic process family for the share tests: the parent maps N pages
 * (its own VMA, between two PROT_NONE guards so it never merges with a
 * neighbour) and fills them; each child forked from it writes exactly K of
 * them (or only reads them all, for K == 0 with reader set), says so through
 * a pipe, and waits until the parent releases it.
 */
#ifndef COW_TEST_SHARE_FAMILY_H
#define COW_TEST_SHARE_FAMILY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cow/share.h"

#define FAM_PAGE 4096ul

struct fam_child {
	pid_t pid;
	int release; /* write end; closing it lets the child exit */
};

/*
 * Should pagemap show frame numbers to us? Only with CAP_SYS_ADMIN in the
 * effective set (bit 21 of CapEff), which root in a container may lack.
 */
static inline bool fam_frames_expected(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long caps = 0;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "CapEff:", 7) == 0)
			caps = strtoull(line + 7, NULL, 16);
	if (f)
		fclose(f);
	return (caps >> 21) & 1;
}

/* N fresh, filled pages in a VMA of their own. */
static inline char *fam_region(size_t npages)
{
	size_t len = (npages + 2) * FAM_PAGE;
	char *base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(base != MAP_FAILED);
	char *r = base + FAM_PAGE;
	CHECK_EQ(mprotect(r, npages * FAM_PAGE, PROT_READ | PROT_WRITE), 0);
	madvise(r, npages * FAM_PAGE, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < npages; i++)
		r[i * FAM_PAGE] = (char)(i | 1);
	return r;
}

/* Fork a child that writes K of the N pages (spread evenly), or reads all when K == 0. */
static inline struct fam_child fam_fork(char *region, size_t npages, size_t k)
{
	int ready[2], rel[2];
	CHECK_EQ(pipe(ready), 0);
	CHECK_EQ(pipe(rel), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(ready[0]);
		close(rel[1]);
		volatile char sum = 0;
		if (k == 0)
			for (size_t i = 0; i < npages; i++)
				sum += region[i * FAM_PAGE];
		for (size_t j = 0; j < k; j++)
			region[(j * npages / k) * FAM_PAGE] = 2;
		char c = sum;
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		while (read(rel[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(rel[0]);
	char c;
	CHECK_EQ(read(ready[0], &c, 1), 1);
	close(ready[0]);
	return (struct fam_child){pid, rel[1]};
}

/* Let the child exit and reap it; it must have exited cleanly. */
static inline void fam_release(struct fam_child *c)
{
	if (c->release >= 0)
		close(c->release);
	c->release = -1;
	int st;
	CHECK_EQ(waitpid(c->pid, &st, 0), c->pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The mapping of process @pid in report @r that starts at @addr. */
static inline const cow_share_map *fam_map(const cow_share_report *r, int pid, const void *addr)
{
	const cow_share_proc *p = cow_share_report_find(r, pid);
	CHECK(p != NULL);
	for (size_t i = 0; i < p->nmaps; i++)
		if (p->maps[i].start == (uint64_t)(uintptr_t)addr)
			return &p->maps[i];
	check__fail(__FILE__, __LINE__, "no mapping at %p in pid %d", addr, pid);
}

#endif
