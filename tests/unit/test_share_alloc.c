/*
 * cow_share_measure under allocation failure: fail the Nth allocation, once
 * and for good, for N = 1 until a measurement needs no more. Every call must
 * either succeed with the same figures as an unhindered one or fail with
 * COW_ENOMEM and leave *out untouched; sanitizers check that nothing leaks.
 */
#include "test_share_family.h"

#define N 128
#define K 16

int main(void)
{
	char *region = fam_region(N);
	struct fam_child w = fam_fork(region, N, K);
	int self = getpid();
	const unsigned flagsets[] = {COW_SHARE_CHILDREN, COW_SHARE_SMAPS_ONLY};
	for (size_t f = 0; f < sizeof(flagsets) / sizeof(flagsets[0]); f++) {
		for (int persistent = 0; persistent < 2; persistent++) {
			long n = 1;
			for (;; n++) {
				cow_share_report *r = (cow_share_report *)&self;
				check_alloc_fail_at(n, persistent);
				int rc = cow_share_measure(&self, 1, flagsets[f], &r);
				long used = check_alloc_count();
				check_alloc_fail_at(0, 0);
				if (rc == COW_ENOMEM) {
					CHECK(r == (cow_share_report *)&self);
					continue;
				}
				CHECK_OK(rc);
				const cow_share_map *wm = NULL;
				if (flagsets[f] & COW_SHARE_CHILDREN) {
					CHECK_EQ(cow_share_report_count(r), 2);
					wm = fam_map(r, w.pid, region);
					CHECK_EQ(wm->figs.private_dirty, K * FAM_PAGE);
				}
				CHECK_EQ(fam_map(r, self, region)->figs.private_dirty,
					 K * FAM_PAGE);
				cow_share_report_destroy(r);
				/* Success with no failure injected within reach: done. */
				if (used < n)
					break;
			}
			printf("flags %#x, %s failures: swept %ld allocations\n", flagsets[f],
			       persistent ? "persistent" : "single", n);
		}
	}
	fam_release(&w);
	return 0;
}
