/*
 * cow: the command-line face of cowkit. Dispatches to command tables, one
 * per group of commands; `cow help` lists them all.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cow/store.h"

static const struct cli_cmd *const groups[] = {
	cli_store_cmds,
	cli_map_cmds,
	cli_vol_cmds,
	cli_version_cmds,
	cli_list_cmds,
	cli_stream_cmds,
	cli_check_cmds,
	cli_share_cmds,
	cli_mem_cmds,
	cli_tour_cmds,
};

static const struct cli_cmd *find(const char *name)
{
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const struct cli_cmd *c = groups[g]; c->name; c++)
			if (strcmp(c->name, name) == 0)
				return c;
	return NULL;
}

static void list_commands(FILE *f)
{
	fprintf(f, "usage: cow [-s STORE] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const struct cli_cmd *c = groups[g]; c->name; c++) {
			char head[64];
			snprintf(head, sizeof(head), "%s %s", c->name, c->args);
			fprintf(f, "  %-34s %s\n", head, c->summary);
		}
	fprintf(f, "\nThe store is named by -s STORE or $COW_STORE.\n"
		   "Sizes and offsets are whole bytes: 4096, 4K (= 4096), 4kB (= 4000), 16G.\n"
		   "Exit codes:\n"
		   "  0  ok (fsck, scrub: no damage)\n"
		   "  1  not found: key, object, process, or the store file\n"
		   "  2  usage: bad arguments, a refused number, an invalid name\n"
		   "  3  failed, nothing changed: permission, I/O, space, busy, exists,\n"
		   "     a bad stream, not a cowkit store (fsck, scrub: could not run)\n"
		   "  4  the store is damaged: corrupt, cut short, no commit verifies\n"
		   "`cow help COMMAND` says more about one command.\n");
}

static int help(int argc, char **argv)
{
	if (argc < 2) {
		list_commands(stdout);
		return EXIT_OK;
	}
	const struct cli_cmd *c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "cow: no command '%s'; `cow help` lists them\n", argv[1]);
		return EXIT_USAGE;
	}
	printf("usage: cow %s %s\n\n%s\n", c->name, c->args, c->summary);
	if (c->help)
		printf("\n%s", c->help);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("cow %s\n", cow_version());
			return EXIT_OK;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			list_commands(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
			setenv("COW_STORE", argv[++i], 1);
		} else {
			fprintf(stderr, "cow: unknown option '%s'\n", argv[i]);
			list_commands(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		list_commands(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0)
		return help(argc - i, argv + i);
	const struct cli_cmd *c = find(argv[i]);
	if (!c) {
		fprintf(stderr, "cow: no command '%s'; `cow help` lists them\n", argv[i]);
		return EXIT_USAGE;
	}
	return c->run(argc - i, argv + i);
}
