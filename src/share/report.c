/*
 * share/report: cow_share_measure() and the report accessors.
 *
 * One process at a time: its stat (ppid, comm), its smaps, then at once its
 * pagemap, so the two views of one process are microseconds apart. A
 * process that vanishes or refuses access is either an error (a PID the
 * caller named, without COW_SHARE_SKIP_GONE) or skipped and counted; a
 * skipped process contributes nothing, not even the frames read before it
 * vanished. Frame matching runs once all processes are read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "share/share.h"

void (*cow__share_test_hook)(int pid, int stage);

const char *cow_share_kind_name(int kind)
{
	static const char *const names[COW_SHARE_NKINDS] = {"heap", "stack", "anon",
							    "file", "shmem", "other"};
	if (kind < 0 || kind >= COW_SHARE_NKINDS)
		return "?";
	return names[kind];
}

void cow_share_report_destroy(cow_share_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nproc; i++)
		cow__share_proc_release(&r->procs[i]);
	cow__free(r->procs);
	cow__free(r);
}

static bool gone_or_denied(int rc)
{
	return rc == COW_ESRCH || rc == COW_EACCES || rc == COW_EPERM;
}

int cow_share_measure(const int *pids, size_t n, unsigned flags, cow_share_report **out)
{
	const unsigned known = COW_SHARE_CHILDREN | COW_SHARE_SMAPS_ONLY | COW_SHARE_SKIP_GONE;
	if (!pids || n == 0 || !out || (flags & ~known))
		return COW_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (pids[i] <= 0)
			return COW_EINVAL;

	uint64_t t0 = cow__now_ns();
	int *list = NULL;
	size_t nlist = 0, caplist = 0, nexplicit;
	struct cow__share_frames fr;
	memset(&fr, 0, sizeof(fr));
	bool frames = !(flags & COW_SHARE_SMAPS_ONLY);
	cow_share_report *r = cow__calloc(1, sizeof(*r));
	int rc = COW_ENOMEM;
	if (!r)
		goto out;
	r->note = frames ? "" : "smaps figures only, as requested";

	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t j = 0; j < nlist; j++)
			dup |= list[j] == pids[i];
		if (dup)
			continue;
		if ((rc = cow__grow((void **)&list, &caplist, nlist + 1, sizeof(*list))))
			goto out;
		list[nlist++] = pids[i];
	}
	nexplicit = nlist;
	if ((flags & COW_SHARE_CHILDREN) && (rc = cow__share_descendants(&list, &nlist, &caplist)))
		goto out;
	if ((rc = cow__grow((void **)&r->procs, &r->cap, nlist, sizeof(*r->procs))))
		goto out;
	if (frames && (rc = cow__share_frames_init(&fr)))
		goto out;

	for (size_t i = 0; i < nlist; i++) {
		cow_share_proc *p = &r->procs[r->nproc];
		memset(p, 0, sizeof(*p));
		p->pid = list[i];
		bool zombie = false;
		rc = cow__share_stat(p->pid, &p->ppid, p->comm, sizeof(p->comm), &zombie);
		if (rc == 0 && zombie)
			rc = COW_ESRCH;
		if (rc == 0)
			rc = cow__share_read_smaps(p);
		if (cow__share_test_hook)
			cow__share_test_hook(p->pid, 0);
		if (rc == 0 && frames) {
			rc = cow__share_frames_collect(&fr, p, (uint32_t)r->nproc);
			if (rc == 1) {
				/* Hidden frame numbers: the whole report falls back to smaps. */
				frames = false;
				r->note =
					"page frame numbers need CAP_SYS_ADMIN; smaps figures only";
				rc = 0;
			}
		}
		if (rc) {
			cow__share_proc_release(p);
			if (!gone_or_denied(rc) ||
			    (i < nexplicit && !(flags & COW_SHARE_SKIP_GONE)))
				goto out;
			r->skipped++;
			rc = 0;
			continue;
		}
		r->nproc++;
	}
	if (frames)
		cow__share_frames_match(&fr, r);
	for (size_t i = 0; i < r->nproc; i++)
		cow__share_sum(&r->procs[i]);
	r->elapsed_ns = cow__now_ns() - t0;
	*out = r;
	r = NULL;
	rc = 0;
out:
	cow__share_frames_release(&fr);
	cow_share_report_destroy(r);
	cow__free(list);
	return rc;
}

size_t cow_share_report_count(const cow_share_report *r)
{
	return r ? r->nproc : 0;
}

const cow_share_proc *cow_share_report_proc(const cow_share_report *r, size_t i)
{
	return r && i < r->nproc ? &r->procs[i] : NULL;
}

const cow_share_proc *cow_share_report_find(const cow_share_report *r, int pid)
{
	for (size_t i = 0; r && i < r->nproc; i++)
		if (r->procs[i].pid == pid)
			return &r->procs[i];
	return NULL;
}

int cow_share_report_frames(const cow_share_report *r)
{
	return r ? r->frames : 0;
}

const char *cow_share_report_note(const cow_share_report *r)
{
	return r && r->note ? r->note : "";
}

size_t cow_share_report_skipped(const cow_share_report *r)
{
	return r ? r->skipped : 0;
}

uint64_t cow_share_report_elapsed_ns(const cow_share_report *r)
{
	return r ? r->elapsed_ns : 0;
}

int cow_share_private_dirty(int pid, uint64_t *out)
{
	if (pid <= 0 || !out)
		return COW_EINVAL;
	char path[64], *buf = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	int rc = cow__share_proc_errno(cow__share_slurp(path, &buf, &len));
	if (rc)
		return rc;
	const char *line = strstr(buf, "\nPrivate_Dirty:");
	if (!line)
		rc = COW_ESRCH; /* an empty rollup: a zombie without an address space */
	else
		*out = strtoull(line + strlen("\nPrivate_Dirty:"), NULL, 10) * 1024;
	cow__free(buf);
	return rc;
}
