/*
 * cow-tour: the tour and the live-memory demonstrations, kept out of the
 * production cow binary. `cow tour` and `cow mem snapshot|checkpoint|restore`
 * exec this program (as git runs its external commands), after parsing the
 * command line against the same table (tools/cow/commands.c), which this
 * program compiles with its own handlers.
 *
 * usage: cow-tour tour [OPTIONS] | cow-tour mem snapshot|checkpoint|restore [OPTIONS]
 */
#include <stdio.h>

#include "cli.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr,
			"usage: cow-tour tour [OPTIONS] | cow-tour mem "
			"snapshot|checkpoint|restore [OPTIONS]\n"
			"(the same as `cow tour` and `cow mem ...`; `cow help tour` says more)\n");
		return EXIT_USAGE;
	}
	return cli_dispatch("cow-tour", argc - 1, argv + 1);
}
