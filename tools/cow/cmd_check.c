/*
 * fsck and scrub: check a store read-only and report each problem with its
 * place (object, block, key or offset).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cow/store.h"

static int print_problem(void *ctx, const cow_fsck_problem *p)
{
	int *json = ctx;
	if (*json) {
		printf("%s\n    {\"object\": ", *json > 1 ? "," : "");
		cli_json_bytes(stdout, p->object, strlen(p->object));
		printf(", \"block\": %llu", (unsigned long long)p->block);
		if (p->has_offset)
			printf(", \"offset\": %llu", (unsigned long long)p->offset);
		else if (p->key.len) {
			printf(", \"key\": ");
			cli_json_bytes(stdout, p->key.data, p->key.len);
		}
		printf(", \"what\": ");
		cli_json_bytes(stdout, p->what, strlen(p->what));
		printf("}");
		*json = 2;
		return 0;
	}
	printf("DAMAGE %s: block %llu", p->object, (unsigned long long)p->block);
	if (p->has_offset)
		printf(", offset %llu", (unsigned long long)p->offset);
	else if (p->key.len) {
		printf(", key '");
		for (size_t i = 0; i < p->key.len && i < 64; i++) {
			unsigned char c = ((const unsigned char *)p->key.data)[i];
			if (c >= 0x20 && c < 0x7f)
				putchar(c);
			else
				printf("\\x%02x", c);
		}
		printf("'");
	}
	printf(": %s\n", p->what);
	return 0;
}

static int check(const char *cmd, int argc, char **argv, unsigned flags)
{
	int json = 0;
	if (argc > 1 && strcmp(argv[argc - 1], "--json") == 0) {
		json = 1;
		argc--;
	}
	if (argc > 2)
		return cli_usage(cmd, "expected: cow %s [STORE] [--json]", cmd);
	if (argc == 2)
		setenv("COW_STORE", argv[1], 1);
	const char *path = cli_store_path();
	if (!path)
		return cli_usage(cmd, "no store: give STORE, -s STORE or set COW_STORE");
	setenv("COW_LOG", "off", 0); /* problems are reported below, with context */
	cow_store *s;
	/* Checking only reads: users who may only read the store can check it. */
	int rc = cow_store_open(path, &(cow_store_options){COW_STORE_RDONLY}, &s);
	if (rc == COW_ECORRUPT) {
		printf("DAMAGE %s: no commit verifies; the store cannot be opened\n", path);
		return EXIT_DAMAGED;
	}
	if (rc) {
		cli_open_fail(path, rc);
		return EXIT_FAIL; /* could not run */
	}
	cow_fsck_report r;
	if (json)
		printf("{\"problems_found\": [");
	struct cli_progress pr;
	cli_progress_begin(&pr, cmd, false);
	rc = cow_store_fsck(s, flags, print_problem, &json, &r, cli_progress, &pr);
	cow_store_close(s);
	if (rc == COW_EREADONLY) {
		/*
		 * NEEDSWORK: every checksum verified (no problem was printed), but
		 * the library's structure, reference-count and space-map check
		 * takes the writer lock, which a read-only handle cannot. Check
		 * again read-write where that is permitted; drop this once the
		 * check runs on a read-only handle.
		 */
		rc = cow_store_open(path, NULL, &s);
		if (rc == 0) {
			rc = cow_store_fsck(s, flags, print_problem, &json, &r, cli_progress, &pr);
			cow_store_close(s);
		} else {
			cli_progress_end(&pr);
			if (json)
				printf("]}\n");
			fprintf(stderr,
				"cow: %s: %s: every checksum verified, but the structure check "
				"needs write access: %s\n",
				path, cmd, cow_strerror(rc));
			return EXIT_FAIL;
		}
	}
	cli_progress_end(&pr);
	if (rc && rc != COW_ECORRUPT) {
		if (json)
			printf("]}\n");
		cli_fail(rc, "%s: %s could not finish", path, cmd);
		return EXIT_FAIL;
	}
	if (json)
		printf("%s], \"objects\": %llu, \"blocks\": %llu, \"problems\": %llu, "
		       "\"clean\": %s}\n",
		       json > 1 ? "\n  " : "", (unsigned long long)r.objects,
		       (unsigned long long)r.blocks, (unsigned long long)r.problems,
		       r.problems ? "false" : "true");
	else
		printf("%s %s: %llu objects, %llu blocks verified, %llu problems\n", cmd, path,
		       (unsigned long long)r.objects, (unsigned long long)r.blocks,
		       (unsigned long long)r.problems);
	return rc ? EXIT_DAMAGED : EXIT_OK;
}

static int cmd_fsck(int argc, char **argv)
{
	return check("fsck", argc, argv, 0);
}

static int cmd_scrub(int argc, char **argv)
{
	return check("scrub", argc, argv, COW_FSCK_SCRUB);
}

const struct cli_cmd cli_check_cmds[] = {
	{"fsck", cmd_fsck, "[STORE] [--json]",
	 "verify checksums, structure, reference counts and free space",
	 "Exit status: 0 clean, 4 damage found (each problem on a DAMAGE line),\n"
	 "3 the check could not run.\n"},
	{"scrub", cmd_scrub, "[STORE] [--json]", "verify every block's checksum (read-only, online)", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};
