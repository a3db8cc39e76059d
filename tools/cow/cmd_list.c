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
	int n;
	int rc;
};

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

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
	if (o->json) {
		printf("%s\n  {\"name\": ", o->n ? "," : "");
		json_str(name);
		printf(", \"type\": \"%s\", \"snapshot\": %s, \"%s\": %llu, \"referenced\": %llu, "
		       "\"exclusive\": %llu, \"created\": %llu, \"origin\": ",
		       st.type, st.snapshot ? "true" : "false",
		       strcmp(st.type, "map") == 0 ? "entries" : "size",
		       (unsigned long long)(strcmp(st.type, "map") == 0 ? st.entries : st.size),
		       (unsigned long long)st.referenced, (unsigned long long)st.exclusive,
		       (unsigned long long)st.created);
		if (st.origin[0])
			json_str(st.origin);
		else
			printf("null");
		printf("}");
	} else {
		char size[32], ref[32], ex[32];
		if (strcmp(st.type, "map") == 0)
			snprintf(size, sizeof(size), "%llu keys", (unsigned long long)st.entries);
		else
			cli_size(size, sizeof(size), (double)st.size);
		printf("%-28s %-7s %12s %10s %10s %6llu  %s\n", name, st.type, size,
		       cli_size(ref, sizeof(ref), (double)st.referenced),
		       cli_size(ex, sizeof(ex), (double)st.exclusive),
		       (unsigned long long)st.created, st.origin[0] ? st.origin : "-");
	}
	o->n++;
	return 0;
}

static int run_list(const char *cmd, struct listopt *o)
{
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin(cmd, false, &s, &t);
	if (ex)
		return ex;
	o->t = t;
	if (o->json)
		printf("[");
	else
		printf("%-28s %-7s %12s %10s %10s %6s  %s\n", "NAME", "TYPE", "SIZE", "REFER",
		       "EXCL", "GEN", "ORIGIN");
	int rc = cow_store_list(t, list_one, o);
	if (o->json)
		printf("\n]\n");
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
	return run_list("list", &o);
}

int cmd_du(const struct cli_args *a)
{
	struct listopt o = {.exclusive = true};
	o.json = cli_flag(a, "json");
	o.only = a->argc ? a->argv[0] : NULL;
	int ex = run_list("du", &o);
	if (ex || o.json || o.only)
		return ex;
	cow_store_stats st;
	bool space;
	ex = cli_stat("du", &st, &space);
	if (ex)
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
