/*
 * Tour step: a forkless snapshot of a region a writer thread keeps writing,
 * against fork() in the same run: pause, extra memory, writer throughput,
 * trapped-write median, and whether the image is the region at the instant.
 */
#include <stdio.h>

#include "cli.h"
#include "cow/mem.h"
#include "mem_demo.h"
#include "tour.h"

int tour_livesnap(struct tour *t)
{
	cow_mem_probe_info p;
	cow_mem_probe(&p);
	tour_say("backend: %s (%s)", cow_mem_backend_name(p.snapshot), p.snapshot_why);

	struct mem_demo live = {.size = t->size, .dir = t->dir, .verify = true};
	struct mem_demo forked = live;
	forked.backend = COW_MEM_FORK;
	forked.verify = false;
	int rc = mem_demo_run(&live);
	if (rc) {
		tour_say("live snapshot failed: %s", cow_strerror(rc));
		return 1;
	}
	rc = mem_demo_run(&forked);
	if (rc) {
		tour_say("fork snapshot failed: %s", cow_strerror(rc));
		return 1;
	}
	char a[32], b[32], c[32];
	tour_say("region: %s, written at random by a writer thread all along",
		 cli_size(a, sizeof(a), (double)live.size));
	tour_say("pause: %.2f ms forkless vs %.2f ms fork()", live.st.pause_ns / 1e6,
		 forked.st.pause_ns / 1e6);
	tour_say("extra memory: %s forkless (buffer %s) vs %s fork()",
		 cli_size(a, sizeof(a), (double)live.st.extra_peak),
		 cli_size(c, sizeof(c), 64.0 * 1024 * 1024),
		 cli_size(b, sizeof(b), (double)forked.st.extra_peak));
	tour_say("writer throughput during the snapshot: %.2fx forkless vs %.2fx fork()",
		 live.base_wps > 0 ? live.snap_wps / live.base_wps : 0,
		 forked.base_wps > 0 ? forked.snap_wps / forked.base_wps : 0);
	tour_say("trapped writes: %llu, median %.1f us in the handler",
		 (unsigned long long)live.st.faults, live.st.fault_median_ns / 1e3);
	tour_say("image complete after %.0f ms forkless, %.0f ms fork()", live.st.total_ns / 1e6,
		 forked.st.total_ns / 1e6);
	tour_say("image matches: %s", live.matched ? "yes" : "NO");
	return live.matched ? 0 : 1;
}
