/*
 * `cow mem`: live memory of a running program.
 *
 *   cow mem probe [--json]            what works here, which backend and why
 *
 * The demonstrations (mem snapshot, checkpoint, restore) run in cow-tour
 * (tools/tour/mem_demos.c); cow execs it for them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cow/mem.h"

static const char *yes(bool b)
{
	return b ? "yes" : "no";
}

int cmd_mem_probe(const struct cli_args *args)
{
	bool json = cli_flag(args, "json");
	cow_mem_probe_info p;
	int rc = cow_mem_probe(&p);
	if (rc)
		return cli_fail(rc, "mem probe");
	if (json) {
		struct json j;
		json_init(&j, stdout);
		json_object(&j);
		json_kbool(&j, "userfaultfd", !p.uffd_error);
		json_kstr(&j, "uffd_error", p.uffd_error ? cow_errname(p.uffd_error) : "");
		json_kstr(&j, "uffd_via", p.uffd_via);
		json_ku64(&j, "features", p.uffd_features);
		json_kbool(&j, "wp", p.wp);
		json_kbool(&j, "wp_async", p.wp_async);
		json_kbool(&j, "wp_unpopulated", p.wp_unpopulated);
		json_kbool(&j, "sigbus", p.sigbus);
		json_kbool(&j, "pagemap_scan", p.pagemap_scan);
		json_kstr(&j, "thp", p.thp);
		const char *ops[] = {"snapshot", "track", "restore"};
		cow_mem_backend be[] = {p.snapshot, p.track, p.restore};
		const char *why[] = {p.snapshot_why, p.track_why, p.restore_why};
		for (int i = 0; i < 3; i++) {
			json_key(&j, ops[i]);
			json_object(&j);
			json_kstr(&j, "backend", cow_mem_backend_name(be[i]));
			json_kstr(&j, "why", why[i]);
			json_end(&j);
		}
		json_end(&j);
		return EXIT_OK;
	}
	if (p.uffd_error)
		printf("userfaultfd:     unavailable (%s)\n", cow_strerror(p.uffd_error));
	else
		printf("userfaultfd:     yes, via %s (features %#llx)\n", p.uffd_via,
		       (unsigned long long)p.uffd_features);
	printf("write-protect:   %s\n", yes(p.wp));
	printf("WP_ASYNC:        %s\n", yes(p.wp_async));
	printf("WP_UNPOPULATED:  %s\n", yes(p.wp_unpopulated));
	printf("SIGBUS mode:     %s\n", yes(p.sigbus));
	printf("PAGEMAP_SCAN:    %s\n", yes(p.pagemap_scan));
	printf("THP:             %s\n", p.thp);
	printf("\nsnapshot: %-10s %s\n", cow_mem_backend_name(p.snapshot), p.snapshot_why);
	printf("track:    %-10s %s\n", cow_mem_backend_name(p.track), p.track_why);
	printf("restore:  %-10s %s\n", cow_mem_backend_name(p.restore), p.restore_why);
	printf("fork:     %-10s always available; `--backend fork` for comparison\n", "fork");
	return EXIT_OK;
}
