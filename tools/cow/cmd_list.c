/*
 * list and du: every object and snapshot with its size, referenced and
 * exclusive bytes, and (du) the store's totals.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cow/store.h"

struct listopt {
	cow_txn *t;
	const char *type; /* NULL, "map", "volume", "snapshot" */
	const char *only; /* du NAME: this object and its snapshots */
	bool json, exclusive;
	struct json j;
	int n;
	int rc;
};

static int list_one(void *ctx, const char *name, const char *type, uint64_t count)
{
	(void)count;
	struct listopt *o = ctx;
	bool snap = strchr(name, '@') != NULL;
	if (o->type && (strcmp(o->type, "snapshot") == 0 ? !snap
							: snap || strcmp(o->type, type) != 0))
		return 0;
	if (o->only) {
		size_t n = strlen(o->only);
		if (strncmp(name, o->only, n) != 0 || (name[n] && name[n] != '@'))
			return 0;
	}
	cow_obj_stats st;
	int rc = cow_obj_stat(o->t, name, o->exclusive ? COW_STAT_EXCLUSIVE : 0, &st);
	if (rc) {
		o->rc = rc;
		return rc;
	}
	bool map = strcmp(st.type, "map") == 0;
	if (o->json) {
		struct json *j = &o->j;
		json_object(j);
		json_kstr(j, "name", name);
		json_kstr(j, "type", st.type);
		json_kbool(j, "snapshot", st.snapshot);
		json_ku64(j, map ? "entries" : "size", map ? st.entries : st.size);
		json_ku64(j, "referenced", st.referenced);
		json_ku64(j, "exclusive", st.exclusive);
		json_ku64(j, "created", st.created);
		json_key(j, "origin");
		json_str_or_null(j, st.origin);
		json_end(j);
	} else {
		char size[32], ref[32], ex[32];
		if (map)
			snprintf(size, sizeof(size), "%llu keys", (unsigned long long)st.entries);
		else
			cli_size(size, sizeof(size), (double)st.size);
		cli_put_escaped(stdout, name, strlen(name));
		printf("%*s %-7s %12s %10s %10s %7llu  ", 28 - (int)cli_text_width(name), "",
		       st.type, size, cli_size(ref, sizeof(ref), (double)st.referenced),
		       cli_size(ex, sizeof(ex), (double)st.exclusive),
		       (unsigned long long)st.created);
		if (st.origin[0])
			cli_put_escaped(stdout, st.origin, strlen(st.origin));
		else
			putchar('-');
		putchar('\n');
	}
	o->n++;
	return 0;
}

/* List the objects; with @json, leave the array open in o->j for the caller's end. */
static int run_list(const char *cmd, struct listopt *o)
{
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin(cmd, false, &s, &t);
	if (ex)
		return ex;
	o->t = t;
	if (!o->json)
		printf("%-28s %-7s %12s %10s %10s %7s  %s\n", "NAME", "TYPE", "SIZE", "REFER",
		       "EXCL", "CREATED", "ORIGIN");
	int rc = cow_store_list(t, list_one, o);
	if (rc == 0 && o->only && o->n == 0)
		rc = COW_ENOTFOUND;
	cow_txn_abort(t);
	cow_store_close(s);
	return rc ? cli_fail(rc, "%s: %s", cli_store_path(), cmd) : EXIT_OK;
}

int cmd_list(const struct cli_args *a)
{
	struct listopt o = {.exclusive = true};
	o.type = cli_str(a, "type", NULL);
	o.json = cli_flag(a, "json");
	json_init(&o.j, stdout);
	if (o.json)
		json_array(&o.j);
	int ex = run_list("list", &o);
	if (o.json)
		json_end(&o.j);
	return ex;
}

int cmd_du(const struct cli_args *a)
{
	struct listopt o = {.exclusive = true};
	o.json = cli_flag(a, "json");
	o.only = a->argc ? a->argv[0] : NULL;
	json_init(&o.j, stdout);
	if (o.json) {
		json_object(&o.j);
		json_key(&o.j, "objects");
		json_array(&o.j);
	}
	int ex = run_list("du", &o);
	cow_store_stats st;
	bool space = false;
	if (ex == 0 && !o.only)
		ex = cli_stat("du", &st, &space);
	if (o.json) {
		json_end(&o.j);
		if (ex == 0 && !o.only) {
			json_key(&o.j, "store");
			json_object(&o.j);
			cli_json_space(&o.j, &st, space);
			json_end(&o.j);
		}
		json_end(&o.j);
	}
	if (ex || o.json || o.only)
		return ex;
	char f[32], b[32], c[32], d[32];
	if (!space) {
		printf("\nstore: file %s (used, pending and free need write access)\n",
		       cli_size(f, sizeof(f), (double)st.file_bytes));
		return EXIT_OK;
	}
	printf("\nstore: file %s, used %s, pending %s, free %s\n",
	       cli_size(f, sizeof(f), (double)st.file_bytes),
	       cli_size(b, sizeof(b), (double)st.used_bytes),
	       cli_size(c, sizeof(c), (double)st.pending_bytes),
	       cli_size(d, sizeof(d), (double)st.free_bytes));
	return EXIT_OK;
}
