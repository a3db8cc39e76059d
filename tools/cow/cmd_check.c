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

static int check(const struct cli_args *a, unsigned flags)
{
	const char *cmd = a->cmd->name;
	int json = cli_flag(a, "json");
	if (a->argc == 1)
		setenv("COW_STORE", a->argv[0], 1);
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

int cmd_fsck(const struct cli_args *a)
{
	return check(a, 0);
}

int cmd_scrub(const struct cli_args *a)
{
	return check(a, COW_FSCK_SCRUB);
}
