/*
 * cow tour, steps "copy-on-write credentials with RCU" and "closures".
 *
 * Both run the example code in examples/ (public API only): the credentials
 * stress (readers check permissions while an updater publishes changed
 * copies) and the closure counter, copy-on-write versus boxed.
 */
#include "../../examples/closures.h"
#include "../../examples/creds.h"
#include "tour.h"

int tour_rcu(struct tour *t)
{
	struct creds_run run = {.readers = 2, .reads_each = t->quick ? 1000000 : 2500000};
	creds_stress(&run);
	if (run.rc != 0) {
		tour_say("credentials stress failed: %s", cow_strerror(run.rc));
		return 1;
	}
	tour_say("2 reader threads, %.1f M permission checks in %.2f s: %.1f M reads/s, no lock",
		 (double)run.reads / 1e6, run.seconds, (double)run.reads / run.seconds / 1e6);
	tour_say("meanwhile the updater published %llu new credentials (copy, change, swap)",
		 (unsigned long long)run.updates);
	tour_say("readers moved to a newer version %llu times", (unsigned long long)run.changes);
	tour_say("torn reads: %llu", (unsigned long long)run.torn);
	return run.torn == 0 ? 0 : 1;
}

int tour_closures(struct tour *t)
{
	(void)t;
	long cow = counter_demo(CAPTURE_COW, 3), box = counter_demo(CAPTURE_BOX, 3);
	if (cow < 0 || box < 0) {
		tour_say("out of memory");
		return 1;
	}
	tour_say("copy-on-write environment: inc() x3, then get() = %ld (wrong: the write "
		 "un-shared it)",
		 cow);
	tour_say("boxed variable:            inc() x3, then get() = %ld (right: one shared cell)",
		 box);
	return cow == 0 && box == 3 ? 0 : 1;
}
