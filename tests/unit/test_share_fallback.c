/*
 * Without CAP_SYS_ADMIN, pagemap hides frame numbers: the report must fall
 * back to smaps figures, say so, and still count the writer's K pages. As
 * root the test drops to nobody in a forked child first, so the fallback is
 * the real unprivileged path, not the forced COW_SHARE_SMAPS_ONLY one.
 */
#include <grp.h>
#include <pwd.h>

#include "test_share_family.h"

#define N 256
#define K 32
#define P ((uint64_t)FAM_PAGE)

static void unprivileged(void)
{
	char *region = fam_region(N);
	struct fam_child w = fam_fork(region, N, K);
	int pids[] = {getpid(), w.pid};
	cow_share_report *r;
	CHECK_OK(cow_share_measure(pids, 2, 0, &r));
	CHECK_EQ(cow_share_report_count(r), 2);
	CHECK_EQ(cow_share_report_frames(r), 0);
	CHECK(strstr(cow_share_report_note(r), "CAP_SYS_ADMIN") != NULL);
	const cow_share_map *wm = fam_map(r, w.pid, region);
	const cow_share_map *pm = fam_map(r, getpid(), region);
	CHECK_EQ(wm->figs.private_dirty, K * P);
	CHECK_EQ(wm->figs.shared, (N - K) * P);
	CHECK_EQ(pm->figs.private_dirty, K * P);
	CHECK_EQ(wm->figs.pages, 0);
	CHECK_EQ(cow_share_report_proc(r, 1)->total.pages_none, 0);
	cow_share_report_destroy(r);
	fam_release(&w);
}

int main(void)
{
	if (geteuid() != 0) {
		unprivileged();
		return 0;
	}
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct passwd *pw = getpwnam("nobody");
		CHECK_EQ(setgroups(0, NULL), 0);
		CHECK_EQ(setgid(pw ? pw->pw_gid : 65534), 0);
		CHECK_EQ(setuid(pw ? pw->pw_uid : 65534), 0);
		/* setuid made us undumpable, which would lock our own children out. */
		CHECK_EQ(prctl(PR_SET_DUMPABLE, 1), 0);
		unprivileged();
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return 0;
}
