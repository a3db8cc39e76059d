/*
 * cow_mem_probe: what the kernel and this process allow, and which backend
 * each operation will use, with the reason in one sentence. The choice
 * follows the measurements in DESIGN.md section 6: in-thread fault handling
 * (userfaultfd SIGBUS, else mprotect + SIGSEGV) beats a handler thread on
 * these VMs; WP_ASYNC + PAGEMAP_SCAN tracks dirty pages without any fault
 * handler.
 */
#include <stdio.h>
#include <string.h>

#include "mem/mem.h"

const char *cow_mem_backend_name(cow_mem_backend b)
{
	switch (b) {
	case COW_MEM_AUTO:
		return "auto";
	case COW_MEM_UFFD:
		return "uffd";
	case COW_MEM_UFFD_ASYNC:
		return "uffd-async";
	case COW_MEM_MPROTECT:
		return "mprotect";
	case COW_MEM_FORK:
		return "fork";
	case COW_MEM_EAGER:
		return "eager";
	}
	return "unknown";
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
	read_thp(out->thp, sizeof(out->thp));

	cow_mem_backend forced = cow__mem_forced();
	bool uffd_ok = c->error == 0;
	bool sync_ok = uffd_ok && out->wp && out->sigbus;
	const char *no_uffd = c->error ? cow_strerror(c->error) : "";

	if (forced != COW_MEM_AUTO) {
		out->snapshot = forced;
		snprintf(out->snapshot_why, sizeof(out->snapshot_why),
			 "forced by COW_MEM_BACKEND=%s", cow_mem_backend_name(forced));
	} else if (sync_ok) {
		out->snapshot = COW_MEM_UFFD;
		snprintf(
			out->snapshot_why, sizeof(out->snapshot_why),
			"userfaultfd write-protect with SIGBUS: the writing thread copies the page "
			"itself, no handler-thread wake-up, no VMA splits");
	} else {
		out->snapshot = COW_MEM_MPROTECT;
		snprintf(out->snapshot_why, sizeof(out->snapshot_why),
			 "fallback: %s; mprotect + SIGSEGV in the writing thread instead",
			 !uffd_ok   ? no_uffd
			 : !out->wp ? "userfaultfd has no write-protect"
				    : "userfaultfd has no SIGBUS mode");
	}

	if (forced == COW_MEM_MPROTECT) {
		out->track = COW_MEM_MPROTECT;
		snprintf(out->track_why, sizeof(out->track_why),
			 "forced by COW_MEM_BACKEND=mprotect");
	} else if (uffd_ok && out->wp_async && out->pagemap_scan) {
		out->track = COW_MEM_UFFD_ASYNC;
		snprintf(out->track_why, sizeof(out->track_why),
			 "WP_ASYNC + PAGEMAP_SCAN: the kernel resolves write faults itself and one "
			 "ioctl collects and re-arms the written pages");
	} else if (sync_ok) {
		out->track = COW_MEM_UFFD;
		snprintf(out->track_why, sizeof(out->track_why),
			 "fallback: no %s; first write per page traps (userfaultfd SIGBUS)",
			 out->wp_async ? "PAGEMAP_SCAN" : "WP_ASYNC");
	} else {
		out->track = COW_MEM_MPROTECT;
		snprintf(out->track_why, sizeof(out->track_why),
			 "fallback: %s; first write per page traps (mprotect + SIGSEGV)",
			 !uffd_ok ? no_uffd : "no userfaultfd write-protect with SIGBUS");
	}

	if (uffd_ok && out->sigbus) {
		out->restore = COW_MEM_UFFD;
		snprintf(
			out->restore_why, sizeof(out->restore_why),
			"userfaultfd MISSING with SIGBUS: first touch fills 64 KiB in the touching "
			"thread, a prefetcher streams 2 MiB batches");
	} else {
		out->restore = COW_MEM_EAGER;
		snprintf(out->restore_why, sizeof(out->restore_why),
			 "fallback: %s; restore reads everything eagerly",
			 !uffd_ok ? no_uffd : "userfaultfd has no SIGBUS mode");
	}
	return 0;
}
