/*
 * Version commands: snapshot, clone, diff, rollback, destroy, promote. Each
 * write command is one transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cow/store.h"

static int cmd_snapshot(int argc, char **argv)
{
	if (argc != 2 || !strchr(argv[1], '@'))
		return cli_usage("snapshot", "expected: cow snapshot NAME@SNAP | @SNAP");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("snapshot", true, &s, &t);
	if (ex)
		return ex;
	ex = cli_end(s, t, cow_snapshot(t, argv[1]), "snapshot", argv[1]);
	if (ex == EXIT_OK)
		printf("created %s\n", argv[1]);
	return ex;
}

static int cmd_clone(int argc, char **argv)
{
	if (argc != 3)
		return cli_usage("clone", "expected: cow clone NAME@SNAP NEWNAME");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("clone", true, &s, &t);
	if (ex)
		return ex;
	ex = cli_end(s, t, cow_clone(t, argv[1], argv[2]), "clone", argv[1]);
	if (ex == EXIT_OK)
		printf("created %s from %s\n", argv[2], argv[1]);
	return ex;
}

static int cmd_rollback(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("rollback", "expected: cow rollback NAME@SNAP");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("rollback", true, &s, &t);
	return ex ? ex : cli_end(s, t, cow_rollback(t, argv[1]), "rollback to", argv[1]);
}

static int cmd_destroy(int argc, char **argv)
{
	unsigned flags = 0;
	int i = 1;
	if (i < argc && strcmp(argv[i], "-r") == 0) {
		flags |= COW_DESTROY_RECURSIVE;
		i++;
	}
	if (i + 1 != argc)
		return cli_usage("destroy", "expected: cow destroy [-r] NAME[@SNAP]");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("destroy", true, &s, &t);
	return ex ? ex : cli_end(s, t, cow_destroy(t, argv[i], flags), "destroy", argv[i]);
}

static int cmd_promote(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("promote", "expected: cow promote CLONE");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("promote", true, &s, &t);
	return ex ? ex : cli_end(s, t, cow_promote(t, argv[1]), "promote", argv[1]);
}


static void put_escaped(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++) {
		if (c[i] == '\t')
			fputs("\\t", stdout);
		else if (c[i] == '\n')
			fputs("\\n", stdout);
		else if (c[i] == '\\')
			fputs("\\\\", stdout);
		else if (c[i] < 0x20 || c[i] == 0x7f)
			printf("\\x%02x", c[i]);
		else
			putchar(c[i]);
	}
}

struct diffout {
	bool json;
	int n;
};

static int print_diff(void *ctx, const cow_diff_entry *e)
{
	struct diffout *d = ctx;
	const char *kind = e->kind == COW_DIFF_ADDED     ? "added"
			   : e->kind == COW_DIFF_REMOVED ? "removed"
							 : "changed";
	if (d->json) {
		printf("%s\n  {\"kind\": \"%s\"", d->n++ ? "," : "", kind);
		if (e->length) {
			printf(", \"offset\": %llu, \"length\": %llu}", (unsigned long long)e->offset,
			       (unsigned long long)e->length);
			return 0;
		}
		printf(", \"key\": ");
		cli_json_bytes(stdout, e->key.data, e->key.len);
		if (e->kind != COW_DIFF_ADDED) {
			printf(", \"old\": ");
			cli_json_bytes(stdout, e->old_value.data, e->old_value.len);
		}
		if (e->kind != COW_DIFF_REMOVED) {
			printf(", \"new\": ");
			cli_json_bytes(stdout, e->new_value.data, e->new_value.len);
		}
		printf("}");
		return 0;
	}
	if (e->length) {
		printf("M\t%llu\t%llu\n", (unsigned long long)e->offset,
		       (unsigned long long)e->length);
		return 0;
	}
	putchar(e->kind == COW_DIFF_ADDED ? '+' : e->kind == COW_DIFF_REMOVED ? '-' : 'M');
	putchar('\t');
	put_escaped(e->key.data, e->key.len);
	putchar('\t');
	const cow_buf *v = e->kind == COW_DIFF_REMOVED ? &e->old_value : &e->new_value;
	put_escaped(v->data, v->len);
	putchar('\n');
	return 0;
}

static int cmd_diff(int argc, char **argv)
{
	struct diffout d = {false, 0};
	const char *a = NULL, *b = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			d.json = true;
		else if (!a)
			a = argv[i];
		else if (!b)
			b = argv[i];
		else
			b = NULL, a = NULL, i = argc;
	}
	if (!a || !b)
		return cli_usage("diff", "expected: cow diff NAME@A NAME@B [--json] (or NAME for the live one)");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("diff", false, &s, &t);
	if (ex)
		return ex;
	if (d.json)
		printf("[");
	int rc = cow_diff(t, a, b, print_diff, &d);
	if (d.json)
		printf("\n]\n");
	cow_txn_abort(t);
	cow_store_close(s);
	return rc ? cli_fail(rc, "%s: diff %s %s", cli_store_path(), a, b) : EXIT_OK;
}

const struct cli_cmd cli_version_cmds[] = {
	{"snapshot", cmd_snapshot, "NAME@SNAP | @SNAP",
	 "a read-only version of one object, or of every object at once (O(1))", NULL},
	{"clone", cmd_clone, "NAME@SNAP NEWNAME", "a writable copy of a snapshot (O(1))", NULL},
	{"diff", cmd_diff, "NAME@A NAME@B [--json]",
	 "what changed between two versions (+/-/M lines; volumes: offset, length)", NULL},
	{"rollback", cmd_rollback, "NAME@SNAP", "make NAME equal to its snapshot again", NULL},
	{"destroy", cmd_destroy, "[-r] NAME[@SNAP]",
	 "destroy an object (-r: with its snapshots) or a snapshot", NULL},
	{"promote", cmd_promote, "CLONE", "swap a clone and its origin, like zfs promote", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};
