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
	struct json *j = ctx;
	if (j) {
		json_object(j);
		json_kstr(j, "object", p->object);
		json_ku64(j, "block", p->block);
		if (p->has_offset)
			json_ku64(j, "offset", p->offset);
		else if (p->key.len)
			json_kbytes(j, "key", p->key.data, p->key.len);
		json_kstr(j, "what", p->what);
		json_end(j);
		return 0;
	}
	printf("DAMAGE ");
	cli_put_escaped(stdout, p->object, strlen(p->object));
	printf(": block %llu", (unsigned long long)p->block);
	if (p->has_offset)
		printf(", offset %llu", (unsigned long long)p->offset);
	else if (p->key.len) {
		printf(", key '");
		cli_put_escaped(stdout, p->key.data, p->key.len < 64 ? p->key.len : 64);
		printf("'");
	}
	printf(": %s\n", p->what);
	return 0;
}

static int check(const struct cli_args *a, unsigned flags)
{
	const char *cmd = a->cmd->name;
	bool json = cli_flag(a, "json");
	bool repair = !(flags & COW_FSCK_SCRUB) && cli_flag(a, "repair");
	struct json jw, *j = json ? &jw : NULL;
	json_init(&jw, stdout);
	if (a->argc == 1)
		setenv("COW_STORE", a->argv[0], 1);
	const char *path = cli_store_path();
	if (!path)
		return cli_usage(cmd, "no store: give STORE, -s STORE or set COW_STORE");
	setenv("COW_LOG", "off", 0); /* problems are reported below, with context */
	cow_store *s;
	/* Checking only reads: users who may only read the store can check it. */
	int rc = cow_store_open(path, &(cow_store_options){repair ? 0 : COW_STORE_RDONLY}, &s);
	if (rc == COW_ECORRUPT) {
		const char *what = "no commit verifies; the store cannot be opened";
		if (!json) {
			printf("DAMAGE %s: %s\n", path, what);
			return EXIT_DAMAGED;
		}
		json_object(j);
		json_key(j, "problems_found");
		json_array(j);
		json_object(j);
		json_kstr(j, "object", "");
		json_kstr(j, "what", what);
		json_end(j);
		json_end(j);
		json_ku64(j, "objects", 0);
		json_ku64(j, "blocks", 0);
		json_ku64(j, "problems", 1);
		json_kbool(j, "clean", false);
		json_end(j);
		return EXIT_DAMAGED;
	}
	if (rc) {
		cli_open_fail(path, rc);
		return EXIT_FAIL; /* could not run */
	}
	if (repair) {
		/* The space map is rebuilt from the trees; the check below shows what is left. */
		rc = cow_store_repair(s);
		if (rc) {
			cow_store_close(s);
			cli_fail(rc, "%s: cannot repair", path);
			return rc == COW_ECORRUPT ? EXIT_DAMAGED : EXIT_FAIL;
		}
		if (!json)
			printf("repaired %s: space map rebuilt from the trees\n", path);
	}
	cow_fsck_report r;
	if (json) {
		json_object(j);
		json_key(j, "problems_found");
		json_array(j);
	}
	struct cli_progress pr;
	cli_progress_begin(&pr, cmd, false);
	rc = cow_store_fsck(s, flags, print_problem, j, &r, cli_progress, &pr);
	cow_store_close(s);
	cli_progress_end(&pr);
	if (rc && rc != COW_ECORRUPT) {
		if (json)
			json_end(j), json_end(j);
		cli_fail(rc, "%s: %s could not finish", path, cmd);
		return EXIT_FAIL;
	}
	if (json) {
		json_end(j);
		json_ku64(j, "objects", r.objects);
		json_ku64(j, "blocks", r.blocks);
		json_ku64(j, "problems", r.problems);
		json_kbool(j, "clean", r.problems == 0);
		json_end(j);
	} else
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
