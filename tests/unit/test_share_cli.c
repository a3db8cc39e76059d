/*
 * `cow share` end to end: a synthetic family (parent maps N pages, a child
 * writes K), then share_json_check.py runs the real binary with --json,
 * checks the documented schema and the figures, and the CLI's error exits.
 * As root it also runs the binary as nobody; where nobody cannot reach the
 * build (a clone in a home directory only root may enter) the script runs
 * everything else and exits 77, and so does this test.
 *
 * usage: test_share_cli COW_BINARY CHECK_SCRIPT
 */
#include <stdio.h>

#include "test_share_family.h"

#define N 512
#define K 50

int main(int argc, char **argv)
{
	if (argc != 3)
		SKIP("usage: test_share_cli COW_BINARY CHECK_SCRIPT");
	if (system("python3 -c 'import json' >/dev/null 2>&1") != 0)
		SKIP("python3 is not installed (scripts/deps.sh test)");
	char *region = fam_region(N);
	struct fam_child w = fam_fork(region, N, K);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' %d %d 0x%llx %d %d %d", argv[2], argv[1],
		 (int)getpid(), (int)w.pid, (unsigned long long)(uintptr_t)region, N, K,
		 fam_frames_expected());
	int rc = system(cmd);
	fam_release(&w);
	CHECK(WIFEXITED(rc));
	if (WEXITSTATUS(rc) == 77)
		SKIP("the check script could not run every check (its reason is above)");
	CHECK_EQ(WEXITSTATUS(rc), 0);
	return 0;
}
