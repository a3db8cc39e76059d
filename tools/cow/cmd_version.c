/*
 * Version commands: snapshot, clone, diff, rollback, destroy, promote. Each
 * write command is one transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cow/fs.h"
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
	if (ex)
		return ex;
	int rc = cow_destroy(t, name, flags);
	if (rc != COW_EBUSY || flags || strchr(name, '@'))
		return cli_end(s, t, rc, "destroy", name);
	cow_txn_abort(t);
	cow_store_close(s);
	fprintf(stderr,
		"cow: %s: destroy '%s': in use: snapshots or clones depend on it; use -r to "
		"destroy it with its snapshots (a clone's origin stays until the clone goes or "
		"is promoted)\n",
		cli_store_path(), name);
	return EXIT_FAIL;
}

int cmd_promote(const struct cli_args *a)
{
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("promote", true, &s, &t);
	return ex ? ex : cli_end(s, t, cow_promote(t, a->argv[0]), "promote", a->argv[0]);
}

int cmd_rename(const struct cli_args *a)
{
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("rename", true, &s, &t);
	return ex ? ex : cli_end(s, t, cow_rename(t, a->argv[0], a->argv[1]), "rename", a->argv[0]);
}

struct diffout {
	bool json, keys_only;
	struct json j;
};

static int print_diff(void *ctx, const cow_diff_entry *e)
{
	struct diffout *d = ctx;
	const char *kind = e->kind == COW_DIFF_ADDED     ? "added"
			   : e->kind == COW_DIFF_REMOVED ? "removed"
							 : "changed";
	if (d->json) {
		struct json *j = &d->j;
		json_object(j);
		json_kstr(j, "kind", kind);
		if (e->length) {
			json_ku64(j, "offset", e->offset);
			json_ku64(j, "length", e->length);
		} else {
			json_kbytes(j, "key", e->key.data, e->key.len);
			if (e->kind != COW_DIFF_ADDED && !d->keys_only)
				json_kbytes(j, "old", e->old_value.data, e->old_value.len);
			if (e->kind != COW_DIFF_REMOVED && !d->keys_only)
				json_kbytes(j, "new", e->new_value.data, e->new_value.len);
		}
		json_end(j);
		return 0;
	}
	if (e->length) {
		printf("M\t%llu\t%llu\n", (unsigned long long)e->offset,
		       (unsigned long long)e->length);
		return 0;
	}
	putchar(e->kind == COW_DIFF_ADDED ? '+' : e->kind == COW_DIFF_REMOVED ? '-' : 'M');
	putchar('\t');
	cli_put_escaped(stdout, e->key.data, e->key.len);
	if (!d->keys_only) {
		putchar('\t');
		const cow_buf *v = e->kind == COW_DIFF_REMOVED ? &e->old_value : &e->new_value;
		cli_put_escaped(stdout, v->data, v->len);
	}
	putchar('\n');
	return 0;
}

/* A file system's diff: one path per line. */
static int print_path(void *ctx, char kind, const char *path, size_t len)
{
	struct diffout *d = ctx;
	if (d->json) {
		json_object(&d->j);
		json_kstr(&d->j, "kind",
			  kind == '+'	? "added"
			  : kind == '-' ? "removed"
					: "changed");
		json_kbytes(&d->j, "path", path, len);
		json_end(&d->j);
		return 0;
	}
	printf("%c\t", kind);
	cli_put_escaped(stdout, path, len);
	putchar('\n');
	return 0;
}

int cmd_diff(const struct cli_args *a)
{
	struct diffout d = {.json = cli_flag(a, "json"), .keys_only = cli_flag(a, "keys-only")};
	json_init(&d.j, stdout);
	const char *from = a->argv[0], *to = a->argv[1];
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("diff", false, &s, &t);
	if (ex)
		return ex;
	if (d.json)
		json_array(&d.j);
	cow_obj_stats st;
	int rc = cow_obj_stat(t, from, 0, &st);
	if (rc == 0 && strcmp(st.type, "fs") == 0)
		rc = cow_fs_diff(t, from, to, print_path, &d);
	else if (rc == 0)
		rc = cow_diff(t, from, to, print_diff, &d);
	if (d.json)
		json_end(&d.j);
	cow_txn_abort(t);
	cow_store_close(s);
	return rc ? cli_fail(rc, "%s: diff %s %s", cli_store_path(), from, to) : EXIT_OK;
}
