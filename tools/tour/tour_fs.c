/*
 * Tour step: a copy-on-write file system. An fs object is mounted with
 * `cow mount` (FUSE); a large file is copied inside it with
 * copy_file_range, which is what coreutils' cp does, and the copy shares
 * every block; one block of the copy is edited; a snapshot freezes the
 * tree and shows up read-only under .snapshots/. Where FUSE cannot mount
 * (no /dev/fuse, a container without the right), the step says so.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cow/fs.h"
#include "cow/store.h"
#include "tour.h"

/* The cow binary beside this one (cow-tour is installed next to it). */
static int cow_binary(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 8);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *slash = strrchr(buf, '/');
	if (!slash)
		return -1;
	memcpy(slash + 1, "cow", 4);
	return access(buf, X_OK);
}

static bool is_mounted(const char *dir, dev_t parent)
{
	struct stat st;
	return stat(dir, &st) == 0 && st.st_dev != parent;
}

static uint64_t used(const char *store)
{
	cow_store *s;
	cow_store_stats st = {0};
	if (cow_store_open(store, &(cow_store_options){COW_STORE_RDONLY}, &s) == 0) {
		cow_store_stat(s, &st);
		cow_store_close(s);
	}
	return st.used_bytes;
}

int tour_fs(struct tour *t)
{
	char store[PATH_MAX], mnt[PATH_MAX], cow[PATH_MAX], a[PATH_MAX + 64], b[PATH_MAX + 64];
	snprintf(store, sizeof(store), "%s/fs.cow", t->dir);
	snprintf(mnt, sizeof(mnt), "%s/mnt", t->dir);
	if (access("/dev/fuse", R_OK | W_OK) != 0 || cow_binary(cow, sizeof(cow)) != 0) {
		tour_say("skipped: no /dev/fuse here (or no cow binary beside cow-tour)");
		return 0;
	}
	cow_store *s = NULL;
	cow_txn *x = NULL;
	char *buf = malloc(1 << 20);
	pid_t pid = -1;
	int ret = 1, in = -1, out = -1;
	if (!buf || mkdir(mnt, 0755) != 0)
		goto fail;
	TRY(cow_store_open(store, &(cow_store_options){COW_STORE_CREATE}, &s));
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_fs_create(x, "home", NULL));
	TRY(cow_txn_commit(x));
	x = NULL;
	cow_store_close(s);
	s = NULL;

	struct stat pst;
	stat(t->dir, &pst);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 2);
		execl(cow, "cow", "-s", store, "mount", "home", mnt, "-f", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !is_mounted(mnt, pst.st_dev); i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			pid = -1;
			tour_say("skipped: FUSE cannot mount here (cow mount exited)");
			ret = 0;
			goto fail;
		}
		usleep(20000);
	}
	if (!is_mounted(mnt, pst.st_dev)) {
		tour_say("cow mount did not come up");
		goto fail;
	}
	tour_say("cow mount home %s: a file system kept in one copy-on-write tree", mnt);

	/* A large file, then cp inside the mount: copy_file_range shares its blocks. */
	snprintf(a, sizeof(a), "%s/big", mnt);
	snprintf(b, sizeof(b), "%s/big.copy", mnt);
	out = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (out < 0)
		goto fail;
	for (uint64_t off = 0; off < t->size; off += 1 << 20) {
		for (size_t i = 0; i < (1u << 20); i += 8)
			*(uint64_t *)(void *)(buf + i) = off + i + 1;
		if (write(out, buf, 1 << 20) != 1 << 20)
			goto fail;
	}
	if (fsync(out) != 0)
		goto fail;
	close(out);
	char sz[32];
	uint64_t u0 = used(store);
	in = open(a, O_RDONLY);
	out = open(b, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (in < 0 || out < 0)
		goto fail;
	double t0 = tour_now_ms();
	uint64_t done = 0;
	while (done < t->size) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, t->size - done, 0);
		if (n <= 0)
			goto fail;
		done += (uint64_t)n;
	}
	if (fsync(out) != 0)
		goto fail;
	double ms = tour_now_ms() - t0;
	uint64_t u1 = used(store);
	tour_say("cp of a %s file inside the mount (copy_file_range): %.1f ms; no data copied, the "
		 "store grew %.1f KiB (for each run of up to 64 blocks, a slice of it in the tree "
		 "and a reference count: %.0f B per 256 KiB)",
		 cli_size(sz, sizeof(sz), (double)t->size), ms, (double)(u1 - u0) / 1024,
		 (double)(u1 - u0) / ((double)t->size / (64 * 4096)));

	/* Edit one block of the copy: only that block is new. */
	memset(buf, 'E', 4096);
	if (pwrite(out, buf, 4096, 4096 * 7) != 4096 || fsync(out) != 0)
		goto fail;
	uint64_t u2 = used(store);
	tour_say("one 4 KiB block of the copy rewritten: the store grew %.1f KiB more (the block "
		 "and a path of the tree), the original untouched",
		 (double)(u2 - u1) / 1024);

	/* A snapshot of the whole tree, seen under .snapshots/. */
	TRY(cow_store_open(store, NULL, &s));
	t0 = tour_now_ms();
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_snapshot(x, "home@monday"));
	TRY(cow_txn_commit(x));
	x = NULL;
	ms = tour_now_ms() - t0;
	cow_store_close(s);
	s = NULL;
	if (pwrite(out, "after the snapshot", 18, 4096 * 7) != 18 || fsync(out) != 0)
		goto fail;
	snprintf(a, sizeof(a), "%s/.snapshots/monday/big.copy", mnt);
	int snap = open(a, O_RDONLY);
	char got[18] = {0};
	if (snap < 0 || pread(snap, got, sizeof(got), 4096 * 7) != (ssize_t)sizeof(got)) {
		if (snap >= 0)
			close(snap);
		goto fail;
	}
	close(snap);
	bool kept = got[0] == 'E';
	tour_say("cow snapshot home@monday: %.1f ms; %s/.snapshots/monday/big.copy still has the "
		 "edited block (%s), the live file the newer bytes",
		 ms, mnt, kept ? "yes" : "NO");
	if (!kept)
		goto fail;
	ret = 0;
fail:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (x)
		cow_txn_abort(x);
	cow_store_close(s);
	if (pid > 0) {
		pid_t um = fork();
		if (um == 0) {
			execlp("fusermount3", "fusermount3", "-u", mnt, (char *)NULL);
			_exit(127);
		}
		if (um > 0)
			waitpid(um, NULL, 0);
		for (int i = 0; i < 250 && waitpid(pid, NULL, WNOHANG) == 0; i++)
			usleep(20000);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	free(buf);
	return ret;
}
