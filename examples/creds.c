/*
 * creds: copy-on-write credentials published with RCU.
 *
 *   creds [READERS [READS_PER_READER]]      (default: 2 readers, 1000000 reads each)
 *
 * Reader threads check file permissions against the current credentials
 * (uid, gid, supplementary groups, capabilities) with no lock, while the main
 * thread keeps replacing them: copy, change every field, publish. Each reader
 * verifies that all fields of the version it sees belong together. Exits 1
 * if any read was torn. See examples/creds.h for the code that matters.
 */
#include <stdio.h>
#include <stdlib.h>

#include "creds.h"

int main(int argc, char **argv)
{
	struct creds_run run = {.readers = 2, .reads_each = 1000000};
	if (argc > 1)
		run.readers = atoi(argv[1]);
	if (argc > 2)
		run.reads_each = strtoull(argv[2], NULL, 10);
	if (argc > 3 || run.readers < 1 || run.readers > 64 || run.reads_each == 0) {
		fprintf(stderr, "usage: creds [READERS (1-64) [READS_PER_READER]]\n");
		return 2;
	}
	creds_stress(&run);
	if (run.rc != 0) {
		fprintf(stderr, "creds: %s\n", cow_strerror(run.rc));
		return 1;
	}
	printf("readers: %d, reads: %llu in %.3f s (%.1f M reads/s)\n", run.readers,
	       (unsigned long long)run.reads, run.seconds, (double)run.reads / run.seconds / 1e6);
	printf("credential updates published: %llu; readers saw a newer version %llu times\n",
	       (unsigned long long)run.updates, (unsigned long long)run.changes);
	printf("permission checks allowed: %llu\n", (unsigned long long)run.allowed);
	printf("torn reads: %llu\n", (unsigned long long)run.torn);
	return run.torn == 0 ? 0 : 1;
}
