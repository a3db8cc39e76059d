/*
 * Volume and version commands: vol, snapshot, clone, list, diff, rollback,
 * destroy, promote, du. Each write command is one transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cow/store.h"

/* End: commit on success (rc == 0), abort otherwise; report with @what. */
static int end(cow_store *s, cow_txn *t, int rc, const char *what, const char *name)
{
	if (rc == 0) {
		rc = cow_txn_commit(t);
	} else {
		cow_txn_abort(t);
	}
	int ex = EXIT_OK;
	if (rc)
		ex = cli_fail(rc, "%s: %s '%s'%s", cli_store_path(), what, name,
			      rc == COW_EBUSY ? " (clones or snapshots depend on it)" : "");
	cow_store_close(s);
	return ex;
}

static int cmd_vol(int argc, char **argv)
{
	if (argc < 3)
		return cli_usage("vol", "expected: cow vol create|write|read|resize NAME ...");
	const char *sub = argv[1], *name = argv[2];
	cow_store *s;
	cow_txn *t;
	int ex, rc;
	uint64_t a = 0, b = 0;
	if (strcmp(sub, "create") == 0 || strcmp(sub, "resize") == 0) {
		if (argc != 4)
			return cli_usage("vol", "expected: cow vol %s NAME SIZE", sub);
		if (!cli_arg_bytes("vol", "SIZE", argv[3], &a))
			return EXIT_USAGE;
		if ((ex = cli_begin("vol", true, &s, &t)))
			return ex;
		if (sub[0] == 'c') {
			rc = cow_vol_create(t, name, a);
		} else {
			cow_vol *v;
			rc = cow_vol_open(t, name, &v);
			if (rc == 0)
				rc = cow_vol_resize(v, a);
		}
		return end(s, t, rc, sub[0] == 'c' ? "create volume" : "resize volume", name);
	}
	if (strcmp(sub, "write") == 0) {
		if (argc != 4)
			return cli_usage("vol", "expected: cow vol write NAME OFFSET < DATA");
		if (!cli_arg_bytes("vol", "OFFSET", argv[3], &a))
			return EXIT_USAGE;
		if ((ex = cli_begin("vol", true, &s, &t)))
			return ex;
		cow_vol *v;
		rc = cow_vol_open(t, name, &v);
		static char buf[1 << 20];
		size_t n;
		uint64_t total = 0;
		while (rc == 0 && (n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
			if (n > UINT64_MAX - a - total) { /* past 2^64: no volume is that big */
				rc = COW_ERANGE;
				break;
			}
			rc = cow_vol_pwrite(v, buf, n, a + total);
			total += n;
		}
		if (rc == 0 && ferror(stdin))
			rc = COW_EIO;
		ex = end(s, t, rc, "write to volume", name);
		if (ex == EXIT_OK)
			fprintf(stderr, "wrote %llu bytes at %llu\n", (unsigned long long)total,
				(unsigned long long)a);
		return ex;
	}
	if (strcmp(sub, "read") == 0) {
		if (argc != 5)
			return cli_usage("vol", "expected: cow vol read NAME OFFSET LENGTH > DATA");
		if (!cli_arg_bytes("vol", "OFFSET", argv[3], &a) ||
		    !cli_arg_bytes("vol", "LENGTH", argv[4], &b))
			return EXIT_USAGE;
		if (b > UINT64_MAX - a)
			return cli_usage("vol", "OFFSET %llu + LENGTH %llu is past 2^64-1",
					 (unsigned long long)a, (unsigned long long)b);
		if ((ex = cli_begin("vol", false, &s, &t)))
			return ex;
		cow_vol *v;
		rc = cow_vol_open(t, name, &v);
		static char buf[1 << 20];
		while (rc == 0 && b > 0) {
			size_t n = b < sizeof(buf) ? (size_t)b : sizeof(buf);
			rc = cow_vol_pread(v, buf, n, a);
			if (rc == 0 && fwrite(buf, 1, n, stdout) != n)
				rc = COW_EIO;
			a += n;
			b -= n;
		}
		return end(s, t, rc, "read from volume", name);
	}
	return cli_usage("vol", "unknown subcommand '%s'", sub);
}

static int cmd_snapshot(int argc, char **argv)
{
	if (argc != 2 || !strchr(argv[1], '@'))
		return cli_usage("snapshot", "expected: cow snapshot NAME@SNAP | @SNAP");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("snapshot", true, &s, &t);
	if (ex)
		return ex;
	ex = end(s, t, cow_snapshot(t, argv[1]), "snapshot", argv[1]);
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
	ex = end(s, t, cow_clone(t, argv[1], argv[2]), "clone", argv[1]);
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
	return ex ? ex : end(s, t, cow_rollback(t, argv[1]), "rollback to", argv[1]);
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
	return ex ? ex : end(s, t, cow_destroy(t, argv[i], flags), "destroy", argv[i]);
}

static int cmd_promote(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("promote", "expected: cow promote CLONE");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("promote", true, &s, &t);
	return ex ? ex : end(s, t, cow_promote(t, argv[1]), "promote", argv[1]);
}

/* ---- list / du ---- */

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

static int cmd_list(int argc, char **argv)
{
	struct listopt o = {.exclusive = true};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
			o.type = argv[++i];
			if (strcmp(o.type, "map") && strcmp(o.type, "volume") &&
			    strcmp(o.type, "snapshot"))
				return cli_usage("list", "-t takes map, volume or snapshot");
		} else if (strcmp(argv[i], "--json") == 0) {
			o.json = true;
		} else {
			return cli_usage("list", "unexpected argument '%s'", argv[i]);
		}
	}
	return run_list("list", &o);
}

static int cmd_du(int argc, char **argv)
{
	struct listopt o = {.exclusive = true};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			o.json = true;
		else if (!o.only && argv[i][0] != '-')
			o.only = argv[i];
		else
			return cli_usage("du", "unexpected argument '%s'", argv[i]);
	}
	int ex = run_list("du", &o);
	if (ex || o.json || o.only)
		return ex;
	cow_store_stats st;
	bool space;
	ex = cli_stat("du", &st, &space);
	if (ex)
		return ex;
	char a[32], b[32], c[32], d[32];
	if (!space) {
		printf("\nstore: file %s (used, pending and free need write access)\n",
		       cli_size(a, sizeof(a), (double)st.file_bytes));
		return EXIT_OK;
	}
	printf("\nstore: file %s, used %s, pending %s, free %s\n",
	       cli_size(a, sizeof(a), (double)st.file_bytes),
	       cli_size(b, sizeof(b), (double)st.used_bytes),
	       cli_size(c, sizeof(c), (double)st.pending_bytes),
	       cli_size(d, sizeof(d), (double)st.free_bytes));
	return EXIT_OK;
}

/* ---- diff ---- */

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

static int cmd_import(int argc, char **argv)
{
	if (argc != 3)
		return cli_usage("import", "expected: cow import FILE NAME");
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail(-errno, "cannot open %s", argv[1]);
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("import", true, &s, &t);
	if (ex) {
		close(fd);
		return ex;
	}
	uint64_t bytes = 0;
	struct cli_progress pr;
	cli_progress_begin(&pr, "importing", true);
	int rc = cow_vol_import(t, argv[2], fd, &bytes, cli_progress, &pr);
	cli_progress_end(&pr);
	close(fd);
	ex = end(s, t, rc, "import into volume", argv[2]);
	if (ex == EXIT_OK) {
		char b[32];
		printf("imported %s from %s into volume %s\n", cli_size(b, sizeof(b), (double)bytes),
		       argv[1], argv[2]);
	}
	return ex;
}

static int cmd_export(int argc, char **argv)
{
	if (argc != 3)
		return cli_usage("export", "expected: cow export NAME FILE");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("export", false, &s, &t);
	if (ex)
		return ex;
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		ex = cli_fail(-errno, "cannot create %s", argv[2]);
		cow_txn_abort(t);
		cow_store_close(s);
		return ex;
	}
	cow_export_stats st;
	struct cli_progress pr;
	cli_progress_begin(&pr, "exporting", true);
	int rc = cow_vol_export(t, argv[1], fd, &st, cli_progress, &pr);
	cli_progress_end(&pr);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	cow_txn_abort(t);
	cow_store_close(s);
	if (rc)
		return cli_fail(rc, "%s: export of '%s' to %s", cli_store_path(), argv[1], argv[2]);
	char a[32], b[32], c[32], d[32];
	printf("exported %s to %s: %s cloned (reflink), %s copied, %s left as holes%s\n", argv[1],
	       argv[2], cli_size(a, sizeof(a), (double)st.cloned_bytes),
	       cli_size(b, sizeof(b), (double)st.copied_bytes),
	       cli_size(c, sizeof(c), (double)st.hole_bytes),
	       st.cloned_bytes ? "" : " (no reflinks between these files: copied)");
	(void)d;
	return EXIT_OK;
}

const struct cli_cmd cli_version_cmds[] = {
	{"import", cmd_import, "FILE NAME", "a new volume holding a file's bytes (zeros stay holes)",
	 NULL},
	{"export", cmd_export, "NAME FILE",
	 "write a volume or snapshot to a file; reflinks (btrfs, XFS) instead of copies where possible",
	 NULL},
	{"vol", cmd_vol, "create|write|read|resize NAME ...", "sparse volumes",
	 "  cow vol create NAME SIZE         a new volume of SIZE bytes (64M, 16T, ...)\n"
	 "  cow vol write NAME OFFSET < DATA write stdin at OFFSET, in one transaction\n"
	 "  cow vol read NAME OFFSET LENGTH  write LENGTH bytes to stdout (holes are zeros)\n"
	 "  cow vol resize NAME SIZE         grow with zeros or shrink\n"
	 "\n"
	 "SIZE, OFFSET and LENGTH are whole numbers of bytes in decimal, optionally\n"
	 "followed by K, M, G, T, P or E (powers of 1024; KiB, MiB, ... say the same)\n"
	 "or kB, MB, GB, TB, PB, EB (powers of 1000). 4K is 4096, 4kB is 4000.\n"
	 "No fractions, exponents, signs or hex; at most 2^64-1.\n"},
	{"snapshot", cmd_snapshot, "NAME@SNAP | @SNAP",
	 "a read-only version of one object, or of every object at once (O(1))", NULL},
	{"clone", cmd_clone, "NAME@SNAP NEWNAME", "a writable copy of a snapshot (O(1))", NULL},
	{"list", cmd_list, "[-t map|volume|snapshot] [--json]",
	 "objects and snapshots: size, referenced, exclusive, generation, origin",
	 "REFER counts every block the version references; EXCL only those no other\n"
	 "version shares, i.e. what destroying it would free.\n"},
	{"diff", cmd_diff, "NAME@A NAME@B [--json]",
	 "what changed between two versions (+/-/M lines; volumes: offset, length)", NULL},
	{"rollback", cmd_rollback, "NAME@SNAP", "make NAME equal to its snapshot again", NULL},
	{"destroy", cmd_destroy, "[-r] NAME[@SNAP]",
	 "destroy an object (-r: with its snapshots) or a snapshot", NULL},
	{"promote", cmd_promote, "CLONE", "swap a clone and its origin, like zfs promote", NULL},
	{"du", cmd_du, "[NAME] [--json]", "referenced vs exclusive bytes, and the store's totals",
	 NULL},
	{NULL, NULL, NULL, NULL, NULL},
};
