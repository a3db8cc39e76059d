/*
 * Version commands: snapshot, clone, diff, rollback, destroy, promote. Each
 * write command is one transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cow/store.h"

int cmd_snapshot(const struct cli_args *a)
{
	if (!strchr(a->argv[0], '@'))
		return cli_usage("snapshot", "expected: cow snapshot NAME@SNAP | @SNAP");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("snapshot", true, &s, &t);
	if (ex)
		return ex;
	ex = cli_end(s, t, cow_snapshot(t, a->argv[0]), "snapshot", a->argv[0]);
	if (ex == EXIT_OK)
		printf("created %s\n", a->argv[0]);
	return ex;
}

int cmd_clone(const struct cli_args *a)
{
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("clone", true, &s, &t);
	if (ex)
		return ex;
	ex = cli_end(s, t, cow_clone(t, a->argv[0], a->argv[1]), "clone", a->argv[0]);
	if (ex == EXIT_OK)
		printf("created %s from %s\n", a->argv[1], a->argv[0]);
	return ex;
}

int cmd_rollback(const struct cli_args *a)
{
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("rollback", true, &s, &t);
	return ex ? ex : cli_end(s, t, cow_rollback(t, a->argv[0]), "rollback to", a->argv[0]);
}

int cmd_destroy(const struct cli_args *a)
{
	unsigned flags = cli_flag(a, "recursive") ? COW_DESTROY_RECURSIVE : 0;
	const char *name = a->argv[0];
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("destroy", true, &s, &t);
	return ex ? ex : cli_end(s, t, cow_destroy(t, name, flags), "destroy", name);
}

int cmd_promote(const struct cli_args *a)
{
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("promote", true, &s, &t);
	return ex ? ex : cli_end(s, t, cow_promote(t, a->argv[0]), "promote", a->argv[0]);
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

int cmd_diff(const struct cli_args *a)
{
	struct diffout d = {cli_flag(a, "json"), 0};
	const char *from = a->argv[0], *to = a->argv[1];
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("diff", false, &s, &t);
	if (ex)
		return ex;
	if (d.json)
		printf("[");
	int rc = cow_diff(t, from, to, print_diff, &d);
	if (d.json)
		printf("\n]\n");
	cow_txn_abort(t);
	cow_store_close(s);
	return rc ? cli_fail(rc, "%s: diff %s %s", cli_store_path(), from, to) : EXIT_OK;
}
