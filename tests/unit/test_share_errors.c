/*
 * cow_share_measure's errors: bad arguments, a PID that does not exist, a
 * process that exits in the middle of the scan (before its smaps, or
 * between its smaps and its pagemap, reaped or still a zombie), and a
 * process this one may not read.
 */
#include <grp.h>
#include <pwd.h>

#include "share/share.h"
#include "test_share_family.h"

#define N 64

static pid_t victim;
static int victim_trigger; /* kill the victim when this PID's smaps were read */
static enum { REAP, ZOMBIE } victim_end;

static void kill_victim(int pid, int stage)
{
	if (stage != 0 || pid != victim_trigger || victim <= 0)
		return;
	CHECK_EQ(kill(victim, SIGKILL), 0);
	siginfo_t si;
	/* Wait until it is dead; REAP also removes it, ZOMBIE leaves it a zombie. */
	CHECK_EQ(waitid(P_PID, (id_t)victim, &si, WEXITED | (victim_end == ZOMBIE ? WNOWAIT : 0)),
		 0);
	victim = 0;
}

static void reap(pid_t pid)
{
	int st;
	waitpid(pid, &st, 0);
}

static void bad_args(void)
{
	int pid = getpid(), zero = 0;
	cow_share_report *r = (cow_share_report *)&pid; /* must stay untouched */
	CHECK_RC(cow_share_measure(&pid, 0, 0, &r), COW_EINVAL);
	CHECK_RC(cow_share_measure(NULL, 1, 0, &r), COW_EINVAL);
	CHECK_RC(cow_share_measure(&pid, 1, 0, NULL), COW_EINVAL);
	CHECK_RC(cow_share_measure(&zero, 1, 0, &r), COW_EINVAL);
	CHECK_RC(cow_share_measure(&pid, 1, 1u << 20, &r), COW_EINVAL);
	CHECK(r == (cow_share_report *)&pid);
	uint64_t v;
	CHECK_RC(cow_share_private_dirty(0, &v), COW_EINVAL);
	CHECK_RC(cow_share_private_dirty(pid, NULL), COW_EINVAL);
	cow_share_report_destroy(NULL);
	CHECK_EQ(cow_share_report_count(NULL), 0);
}

static void nonexistent(void)
{
	pid_t dead = fork();
	CHECK(dead >= 0);
	if (dead == 0)
		_exit(0);
	reap(dead);
	int pids[] = {getpid(), dead};
	cow_share_report *r = NULL;
	CHECK_RC(cow_share_measure(&pids[1], 1, 0, &r), COW_ESRCH);
	CHECK(r == NULL);
	CHECK_RC(cow_share_measure(pids, 2, 0, &r), COW_ESRCH);
	int huge = 0x7ffffff0;
	CHECK_RC(cow_share_measure(&huge, 1, COW_SHARE_SMAPS_ONLY, &r), COW_ESRCH);
	uint64_t v;
	CHECK_RC(cow_share_private_dirty(dead, &v), COW_ESRCH);
	/* With SKIP_GONE the missing one is skipped and counted. */
	CHECK_OK(cow_share_measure(pids, 2, COW_SHARE_SKIP_GONE, &r));
	CHECK_EQ(cow_share_report_count(r), 1);
	CHECK_EQ(cow_share_report_skipped(r), 1);
	cow_share_report_destroy(r);
}

/* The child exits at a chosen point of the scan; @flags for the measurement. */
static void mid_scan(char *region, int trigger_self, int end, unsigned flags, int expect)
{
	struct fam_child c = fam_fork(region, N, 5);
	victim = c.pid;
	victim_trigger = trigger_self ? getpid() : c.pid;
	victim_end = end;
	cow__share_test_hook = kill_victim;
	int pids[] = {getpid(), c.pid};
	cow_share_report *r = NULL;
	int rc = cow_share_measure(pids, 2, flags, &r);
	cow__share_test_hook = NULL;
	CHECK_EQ(victim, 0); /* the hook ran */
	close(c.release);
	if (end == ZOMBIE)
		reap(c.pid);
	if (expect) {
		CHECK_RC(rc, expect);
		CHECK(r == NULL);
		return;
	}
	CHECK_OK(rc);
	CHECK_EQ(cow_share_report_count(r), 1);
	CHECK_EQ(cow_share_report_skipped(r), 1);
	CHECK_EQ(cow_share_report_proc(r, 0)->pid, getpid());
	/* The gone process left nothing behind: the region is the parent's alone. */
	if (cow_share_report_frames(r)) {
		const cow_share_map *m = fam_map(r, getpid(), region);
		CHECK_EQ(m->figs.pages_none, N);
	}
	cow_share_report_destroy(r);
}

/* A descendant that vanishes is skipped even without SKIP_GONE. */
static void descendant_gone(char *region)
{
	struct fam_child c = fam_fork(region, N, 5);
	victim = c.pid;
	victim_trigger = c.pid;
	victim_end = REAP;
	cow__share_test_hook = kill_victim;
	int self = getpid();
	cow_share_report *r = NULL;
	CHECK_OK(cow_share_measure(&self, 1, COW_SHARE_CHILDREN, &r));
	cow__share_test_hook = NULL;
	CHECK_EQ(victim, 0);
	close(c.release);
	CHECK_EQ(cow_share_report_count(r), 1);
	CHECK_EQ(cow_share_report_skipped(r), 1);
	cow_share_report_destroy(r);
}

/* As nobody, this root-owned test process cannot be read. */
static void no_permission(void)
{
	if (geteuid() != 0) {
		printf("note: not root; permission test uses PID 1 as is\n");
	}
	int target = getpid();
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0) {
			struct passwd *pw = getpwnam("nobody");
			uid_t uid = pw ? pw->pw_uid : 65534;
			gid_t gid = pw ? pw->pw_gid : 65534;
			CHECK_EQ(setgroups(0, NULL), 0);
			CHECK_EQ(setgid(gid), 0);
			CHECK_EQ(setuid(uid), 0);
		} else {
			target = 1;
		}
		cow_share_report *r = NULL;
		int rc = cow_share_measure(&target, 1, 0, &r);
		CHECK(rc == COW_EACCES || rc == COW_EPERM);
		CHECK(r == NULL);
		/* Skipping instead of failing: the report is empty, not an error. */
		CHECK_OK(cow_share_measure(&target, 1, COW_SHARE_SKIP_GONE, &r));
		CHECK_EQ(cow_share_report_count(r), 0);
		CHECK_EQ(cow_share_report_skipped(r), 1);
		cow_share_report_destroy(r);
		uint64_t v;
		rc = cow_share_private_dirty(target, &v);
		CHECK(rc == COW_EACCES || rc == COW_EPERM);
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
	char *region = fam_region(N);
	bad_args();
	nonexistent();
	/* Exits before its smaps are read: a named PID is an error... */
	mid_scan(region, 1, REAP, 0, COW_ESRCH);
	mid_scan(region, 1, ZOMBIE, 0, COW_ESRCH);
	/* ...or skipped on request. */
	mid_scan(region, 1, REAP, COW_SHARE_SKIP_GONE, 0);
	/* Exits between its smaps and its pagemap. */
	mid_scan(region, 0, REAP, 0, COW_ESRCH);
	mid_scan(region, 0, ZOMBIE, 0, COW_ESRCH);
	mid_scan(region, 0, ZOMBIE, COW_SHARE_SKIP_GONE, 0);
	descendant_gone(region);
	no_permission();
	return 0;
}
