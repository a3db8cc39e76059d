/*
 * cow_mem_probe: what the kernel and this process allow, and which backend
 * each operation will use, with the reason in one sentence. The choice
 * follows the measurements in DESIGN.md section 6: in-thread fault handling
 * (userfaultfd SIGBUS, else mprotect + SIGSEGV) beats a handler thread on
 * these VMs; WP_ASYNC + PAGEMAP_SCAN tracks dirty pages without any fault
 * handler.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem/mem.h"

static const struct {
	const char *name;
	cow_mem_backend b;
} backend_names[] = {
	{"auto", COW_MEM_AUTO},		    {"uffd", COW_MEM_UFFD},   {"uffd-thread", COW_MEM_UFFD_THREAD},
	{"uffd-async", COW_MEM_UFFD_ASYNC}, {"mprotect", COW_MEM_MPROTECT}, {"fork", COW_MEM_FORK},
	{"eager", COW_MEM_EAGER},
};

const char *cow_mem_backend_name(cow_mem_backend b)
{
	for (size_t i = 0; i < sizeof(backend_names) / sizeof(backend_names[0]); i++)
		if (backend_names[i].b == b)
			return backend_names[i].name;
	return "unknown";
}

int cow_mem_backend_parse(const char *name, cow_mem_backend *out)
{
	for (size_t i = 0; name && i < sizeof(backend_names) / sizeof(backend_names[0]); i++)
		if (strcmp(name, backend_names[i].name) == 0) {
			*out = backend_names[i].b;
			return 0;
		}
	return COW_EINVAL;
}

static void read_thp(char *out, size_t len)
{
	snprintf(out, len, "absent");
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
	if (!f)
		return;
	char line[128];
	if (fgets(line, sizeof(line), f)) {
		char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
		if (a && b) {
			*b = '\0';
			snprintf(out, len, "%s", a + 1);
		}
	}
	fclose(f);
}

int cow__sig_blocked_tid(int sig)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -errno;
	int found = 0;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[300], line[128];
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue; /* the thread exited */
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "SigBlk:", 7) != 0)
				continue;
			unsigned long long m = strtoull(line + 7, NULL, 16);
			if (m & (1ull << (sig - 1)))
				found = atoi(e->d_name);
			break;
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

int cow__check_sigmask(int sig)
{
	/*
	 * glibc blocks every signal for a moment in a thread being created
	 * (pthread_create) and in a thread spawning (posix_spawn, system):
	 * a mask that stays blocked over about 5 ms is the thread's own.
	 */
	for (int i = 0; i < 25; i++) {
		int tid = cow__sig_blocked_tid(sig);
		if (tid <= 0)
			return 0;
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	return COW_EOPNOTSUPP;
}

int cow_mem_probe(cow_mem_probe_info *out)
{
	if (!out)
		return COW_EINVAL;
	memset(out, 0, sizeof(*out));
	const struct cow__uffd_caps *c = cow__uffd_caps();
	out->uffd_error = c->error;
	out->uffd_via = c->via;
	out->uffd_features = c->features;
	out->wp = c->features & COW__UFFD_WP;
	out->wp_async = c->features & COW__UFFD_WP_ASYNC;
	out->wp_unpopulated = c->features & COW__UFFD_WP_UNPOPULATED;
	out->sigbus = c->features & COW__UFFD_SIGBUS;
	out->pagemap_scan = c->pagemap_scan;
	out->uffd_kernel = c->error == 0 && c->kernel;
	int tid = cow__sig_blocked_tid(SIGBUS);
	if (tid <= 0)
		tid = cow__sig_blocked_tid(SIGSEGV);
	out->sig_blocked_tid = tid > 0 ? tid : 0;
	read_thp(out->thp, sizeof(out->thp));

	/*
	 * AUTO only picks a backend that is right for every program: one whose
	 * faults are served by a cowkit thread (so system calls writing into
	 * the region succeed, and threads blocking SIGBUS/SIGSEGV are safe),
	 * or fork. The in-thread backends (uffd SIGBUS, mprotect) are faster
	 * per fault but must be asked for by name (see cow/mem.h).
	 */
	cow_mem_backend forced = cow__mem_forced();
	bool uffd_ok = c->error == 0;
	bool thread_ok = uffd_ok && out->wp && out->uffd_kernel;
	const char *no_uffd = c->error ? cow_strerror(c->error) : "";
	const char *no_thread = !uffd_ok ? no_uffd
				: !out->wp
					? "userfaultfd has no write-protect"
					: "this process may only make user-mode-only userfaultfds";

	if (forced != COW_MEM_AUTO) {
		out->snapshot = forced;
		snprintf(out->snapshot_why, sizeof(out->snapshot_why),
			 "forced by COW_MEM_BACKEND=%s", cow_mem_backend_name(forced));
	} else if (thread_ok) {
		out->snapshot = COW_MEM_UFFD_THREAD;
		snprintf(out->snapshot_why, sizeof(out->snapshot_why),
			 "userfaultfd write-protect served by the copier thread: system calls may "
			 "write into the region, no signal handler involved");
	} else {
		out->snapshot = COW_MEM_FORK;
		snprintf(out->snapshot_why, sizeof(out->snapshot_why),
			 "fallback: %.64s; fork() instead (uffd/mprotect by name only)", no_thread);
	}

	bool mp_forced = forced == COW_MEM_MPROTECT;
	if (mp_forced) {
		out->track = COW_MEM_MPROTECT;
		snprintf(out->track_why, sizeof(out->track_why),
			 "forced by COW_MEM_BACKEND=mprotect");
	} else if (uffd_ok && out->wp_async && out->pagemap_scan) {
		out->track = COW_MEM_UFFD_ASYNC;
		snprintf(out->track_why, sizeof(out->track_why),
			 "WP_ASYNC + PAGEMAP_SCAN: the kernel resolves write faults itself and one "
			 "ioctl collects and re-arms the written pages");
	} else if (thread_ok) {
		out->track = COW_MEM_UFFD_THREAD;
		snprintf(out->track_why, sizeof(out->track_why),
			 "fallback: no %s; first write per page is served by a tracking thread",
			 out->wp_async ? "PAGEMAP_SCAN" : "WP_ASYNC");
	} else {
		out->track = COW_MEM_AUTO;
		snprintf(out->track_why, sizeof(out->track_why),
			 "none: %.48s; uffd (SIGBUS) or mprotect only by name, and then system calls "
			 "writing into the region fail with EFAULT",
			 no_thread);
	}

	if (uffd_ok && out->uffd_kernel) {
		out->restore = COW_MEM_UFFD_THREAD;
		snprintf(out->restore_why, sizeof(out->restore_why),
			 "userfaultfd MISSING served by the prefetcher thread, which streams 2 MiB "
			 "batches and fills a touched 64 KiB chunk first");
	} else {
		out->restore = COW_MEM_EAGER;
		snprintf(
			out->restore_why, sizeof(out->restore_why),
			"fallback: %.48s; restore reads everything eagerly (uffd SIGBUS by name only)",
			!uffd_ok ? no_uffd : "no userfaultfd that sees system calls' faults");
	}
	return 0;
}
