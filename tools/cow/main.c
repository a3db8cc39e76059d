/*
 * cow: the command-line face of cowkit. Reads the global options, then hands
 * the command line to the command table (commands.c, command.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cow/store.h"

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"store", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int ch;
	opterr = 0;
	/* '+': stop at the command's name; its own options are the command's. */
	while ((ch = getopt_long(argc, argv, "+:s:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			setenv("COW_STORE", optarg, 1);
			break;
		case 'h':
			cli_list_commands(stdout);
			return EXIT_OK;
		case 'V':
			printf("cow %s\n", cow_version());
			return EXIT_OK;
		default:
			fprintf(stderr, "cow: %s '%s'\n",
				ch == ':' ? "option needs an argument:" : "unknown option",
				argv[optind - 1]);
			cli_list_commands(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_list_commands(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0)
		return cli_help(argc - optind, argv + optind);
	return cli_dispatch("cow", argc - optind, argv + optind);
}
