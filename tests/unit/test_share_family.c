/*
 * cow_share_measure on a synthetic family: the parent maps N pages, a
 * writer child writes exactly K of them, a reader child only reads them.
 * The writer must show K private dirty pages and N-K shared, in smaps
 * figures and (as root) frame by frame: all / some / none.
 */
#include "test_share_family.h"
#include "share/share.h"

#define N 1024
#define K 100
#define P ((uint64_t)FAM_PAGE)

static bool frames_permitted(void)
{
	return fam_frames_expected();
}

/* Parent and one writer child. */
static void two(char *region)
{
	struct fam_child w = fam_fork(region, N, K);
	int pids[] = {getpid(), w.pid};
	cow_share_report *r;
	CHECK_OK(cow_share_measure(pids, 2, 0, &r));
	CHECK_EQ(cow_share_report_count(r), 2);
	CHECK_EQ(cow_share_report_skipped(r), 0);
	int frames = cow_share_report_frames(r);
	if (frames_permitted())
		CHECK_EQ(frames, 1);
	if (frames)
		CHECK_STREQ(cow_share_report_note(r), "");

	const cow_share_map *pm = fam_map(r, getpid(), region);
	const cow_share_map *wm = fam_map(r, w.pid, region);
	CHECK_EQ(pm->kind, COW_SHARE_ANON);
	CHECK_STREQ(pm->perms, "rw-p");
	CHECK_EQ(pm->end - pm->start, N * P);
	/* smaps: the writer's K copies are private dirty, the rest still shared. */
	CHECK_EQ(wm->figs.rss, N * P);
	CHECK_EQ(wm->figs.private_dirty, K * P);
	CHECK_EQ(wm->figs.shared, (N - K) * P);
	CHECK_EQ(wm->figs.private_clean, 0);
	/* The parent's originals of those K pages are now its alone. */
	CHECK_EQ(pm->figs.rss, N * P);
	CHECK_EQ(pm->figs.private_dirty, K * P);
	CHECK_EQ(pm->figs.shared, (N - K) * P);
	/* Pss: N-K pages split in two, K whole. */
	CHECK_EQ(wm->figs.pss, (N - K) * P / 2 + K * P);
	if (frames) {
		CHECK_EQ(wm->figs.pages, N);
		CHECK_EQ(wm->figs.pages_all, N - K);
		CHECK_EQ(wm->figs.pages_some, 0);
		CHECK_EQ(wm->figs.pages_none, K);
		CHECK_EQ(pm->figs.pages_all, N - K);
		CHECK_EQ(pm->figs.pages_none, K);
	} else {
		CHECK_EQ(wm->figs.pages, 0);
	}

	/* Kind and total figures are sums over the maps. */
	const cow_share_proc *wp = cow_share_report_find(r, w.pid);
	CHECK_EQ(wp->ppid, getpid());
	CHECK_GE(wp->kind[COW_SHARE_ANON].private_dirty, K * P);
	uint64_t rss = 0, dirty = 0;
	for (int k = 0; k < COW_SHARE_NKINDS; k++) {
		rss += wp->kind[k].rss;
		dirty += wp->kind[k].private_dirty;
	}
	CHECK_EQ(rss, wp->total.rss);
	CHECK_EQ(dirty, wp->total.private_dirty);
	CHECK_EQ(wp->total.rss,
		 wp->total.shared + wp->total.private_clean + wp->total.private_dirty);
	if (frames)
		CHECK_EQ(wp->total.pages,
			 wp->total.pages_all + wp->total.pages_some + wp->total.pages_none);

	/* The quick single-figure call agrees (the writer holds at least its K copies). */
	uint64_t pd = 0;
	CHECK_OK(cow_share_private_dirty(w.pid, &pd));
	CHECK_GE(pd, K * P);
	/*
	 * smaps_rollup is a separate, later walk. The idle child's private dirty
	 * can only have grown since: every page this process wrote meanwhile
	 * (the report's own allocations) left the child's original exclusive.
	 */
	CHECK_GE(pd + 4 * P, wp->total.private_dirty);
	cow_share_report_destroy(r);

	/* Forced smaps fallback: same smaps figures, no frame figures, a note. */
	CHECK_OK(cow_share_measure(pids, 2, COW_SHARE_SMAPS_ONLY, &r));
	CHECK_EQ(cow_share_report_frames(r), 0);
	CHECK(strstr(cow_share_report_note(r), "smaps") != NULL);
	wm = fam_map(r, w.pid, region);
	CHECK_EQ(wm->figs.private_dirty, K * P);
	CHECK_EQ(wm->figs.shared, (N - K) * P);
	CHECK_EQ(wm->figs.pages, 0);
	CHECK_EQ(wm->figs.pages_none, 0);
	cow_share_report_destroy(r);
	fam_release(&w);
}

/* Parent, a reader and a writer: the parent's K originals are shared by some. */
static void three(char *region)
{
	struct fam_child rd = fam_fork(region, N, 0);
	struct fam_child w = fam_fork(region, N, K);
	int self = getpid();
	cow_share_report *r;
	/* Found through COW_SHARE_CHILDREN, listed after the named PID. */
	CHECK_OK(cow_share_measure(&self, 1, COW_SHARE_CHILDREN, &r));
	CHECK_EQ(cow_share_report_count(r), 3);
	CHECK_EQ(cow_share_report_proc(r, 0)->pid, self);
	CHECK(cow_share_report_find(r, rd.pid) != NULL);
	CHECK(cow_share_report_find(r, w.pid) != NULL);
	CHECK(cow_share_report_proc(r, 3) == NULL);

	const cow_share_map *pm = fam_map(r, self, region);
	const cow_share_map *rm = fam_map(r, rd.pid, region);
	const cow_share_map *wm = fam_map(r, w.pid, region);
	CHECK_EQ(rm->figs.private_dirty, 0);
	CHECK_EQ(rm->figs.shared, N * P);
	CHECK_EQ(pm->figs.private_dirty, 0);
	CHECK_EQ(wm->figs.private_dirty, K * P);
	CHECK_EQ(wm->figs.shared, (N - K) * P);
	if (cow_share_report_frames(r)) {
		CHECK_EQ(pm->figs.pages_all, N - K);
		CHECK_EQ(pm->figs.pages_some, K);
		CHECK_EQ(pm->figs.pages_none, 0);
		CHECK_EQ(rm->figs.pages_all, N - K);
		CHECK_EQ(rm->figs.pages_some, K);
		CHECK_EQ(rm->figs.pages_none, 0);
		CHECK_EQ(wm->figs.pages_all, N - K);
		CHECK_EQ(wm->figs.pages_some, 0);
		CHECK_EQ(wm->figs.pages_none, K);
	}
	cow_share_report_destroy(r);

	/* A PID named twice is measured once. */
	int twice[] = {w.pid, w.pid};
	CHECK_OK(cow_share_measure(twice, 2, 0, &r));
	CHECK_EQ(cow_share_report_count(r), 1);
	/* Alone, nothing is shared within the set: every page is "none". */
	if (cow_share_report_frames(r)) {
		wm = fam_map(r, w.pid, region);
		CHECK_EQ(wm->figs.pages_none, N);
		CHECK_EQ(wm->figs.pages_all, 0);
	}
	cow_share_report_destroy(r);
	fam_release(&w);
	fam_release(&rd);
}

int main(void)
{
	CHECK_STREQ(cow_share_kind_name(COW_SHARE_HEAP), "heap");
	CHECK_STREQ(cow_share_kind_name(COW_SHARE_SHMEM), "shmem");
	CHECK_STREQ(cow_share_kind_name(99), "?");
	char *region = fam_region(N);
	two(region);
	three(region);
	/*
	 * The same figures when pagemap is read linearly (kernels before 6.7).
	 * Not under sanitizers: their shadow mapping spans terabytes, which a
	 * linear read walks page by page.
	 */
#ifndef COW_SANITIZED
	cow__share_test_no_scan = true;
	two(region);
	three(region);
	cow__share_test_no_scan = false;
#endif
	if (!frames_permitted())
		printf("note: no CAP_SYS_ADMIN, frame-level figures were not checked\n");
	return 0;
}
