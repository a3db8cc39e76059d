/*
 * The credentials example (examples/creds.h): 1 M permission checks by two
 * reader threads while credentials change as fast as the updater can; no
 * reader ever sees a mix of old and new fields.
 */
#include "../../examples/creds.h"
#include "check.h"

static void test_checker(void)
{
	/* The consistency check itself catches a mix of two versions. */
	struct creds a, b;
	creds_fill(&a, 41);
	creds_fill(&b, 42);
	CHECK(creds_consistent(&a));
	CHECK(creds_consistent(&b));
	struct creds mix = a;
	mix.groups[3] = b.groups[3];
	CHECK(!creds_consistent(&mix));
	mix = a;
	mix.cap_effective = b.cap_effective;
	CHECK(!creds_consistent(&mix));

	/* Permission checks: root (odd serial) may; others by owner/group/other. */
	CHECK(creds_may_read(&a, 1, 1, 0)); /* 41: euid 0 */
	struct creds u;
	creds_fill(&u, 2);
	u.cap_effective = 0;
	CHECK(creds_may_read(&u, u.euid, 0, 0400));
	CHECK(!creds_may_read(&u, u.euid, 0, 0040));
	CHECK(creds_may_read(&u, 1, u.groups[0], 0040));
	CHECK(!creds_may_read(&u, 1, 12345, 0040));
	CHECK(creds_may_read(&u, 1, 12345, 0004));
}

int main(void)
{
	test_checker();
	struct creds_run run = {.readers = 2, .reads_each = 500000};
	creds_stress(&run);
	CHECK_OK(run.rc);
	CHECK_EQ(run.reads, 1000000);
	CHECK_EQ(run.torn, 0);
	CHECK_GT(run.updates, 0);
	printf("creds: %llu reads, %llu updates, readers saw %llu changes, torn reads: %llu\n",
	       (unsigned long long)run.reads, (unsigned long long)run.updates,
	       (unsigned long long)run.changes, (unsigned long long)run.torn);
	return 0;
}
