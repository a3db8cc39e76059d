/*
 * Map commands: map create/drop, put, get, del, scan, load.
 *
 * Keys and values on the command line are taken as bytes. `scan` prints
 * KEY<TAB>VALUE lines with \t, \n, \\ and other control bytes escaped
 * (\xHH), and `load` reads the same format back, so scan | load round-trips.
 * Every write command is one transaction: it either happens whole or, on any
 * error, leaves the store as it was.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cow/store.h"

/* Open STORE, begin a transaction and open map @name in it. */
static int open_map(const char *cmd, const char *name, bool write, cow_store **s, cow_txn **t,
		    cow_map **m)
{
	int ex = cli_begin(cmd, write, s, t);
	if (ex)
		return ex;
	int rc = cow_map_open(*t, name, m);
	if (rc) {
		ex = cli_fail(rc, "%s: map '%s'", cli_store_path(), name);
		cow_txn_abort(*t);
		cow_store_close(*s);
		return ex;
	}
	return 0;
}

/* Commit @t and close @s; report a failure. */
static int finish(const char *what, const char *name, cow_store *s, cow_txn *t)
{
	int rc = cow_txn_commit(t);
	int ex = rc ? cli_fail(rc, "%s: %s '%s' (nothing was changed)", cli_store_path(), what, name)
		    : EXIT_OK;
	cow_store_close(s);
	return ex;
}

static int fail_abort(int rc, const char *what, const char *name, cow_store *s, cow_txn *t)
{
	int ex = cli_fail(rc, "%s: %s '%s' (nothing was changed)", cli_store_path(), what, name);
	cow_txn_abort(t);
	cow_store_close(s);
	return ex;
}

static int map_create_drop(const struct cli_args *a, bool create)
{
	const char *name = a->argv[0];
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin(a->cmd->name, true, &s, &t);
	if (ex)
		return ex;
	int rc = create ? cow_map_create(t, name) : cow_map_drop(t, name);
	if (rc)
		return fail_abort(rc, create ? "create map" : "drop map", name, s, t);
	return finish(create ? "create map" : "drop map", name, s, t);
}

int cmd_map_create(const struct cli_args *a)
{
	return map_create_drop(a, true);
}

int cmd_map_drop(const struct cli_args *a)
{
	return map_create_drop(a, false);
}

/* Read all of stdin into a malloc'd buffer. */
static int slurp(FILE *f, char **out, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return COW_ENOMEM;
	size_t got;
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				return COW_ENOMEM;
			}
			buf = nb;
		}
	}
	if (ferror(f)) {
		free(buf);
		return COW_EIO;
	}
	*out = buf;
	*len = n;
	return 0;
}

int cmd_put(const struct cli_args *a)
{
	size_t klen;
	if (!cli_arg_key(a->cmd->name, a->argv[1], &klen))
		return EXIT_USAGE;
	char *val = a->argv[2];
	size_t vlen = strlen(val);
	bool from_stdin = strcmp(val, "-") == 0;
	if (from_stdin) {
		int rc = slurp(stdin, &val, &vlen);
		if (rc)
			return cli_fail(rc, "cannot read the value from stdin");
	}
	cow_store *s;
	cow_txn *t;
	cow_map *m;
	int ex = open_map("put", a->argv[0], true, &s, &t, &m);
	if (ex == 0) {
		int rc = cow_map_put(m, a->argv[1], klen, val, vlen);
		ex = rc ? fail_abort(rc, "put into map", a->argv[0], s, t)
			: finish("put into map", a->argv[0], s, t);
	}
	if (from_stdin)
		free(val);
	return ex;
}

int cmd_get(const struct cli_args *a)
{
	size_t klen;
	if (!cli_arg_key(a->cmd->name, a->argv[1], &klen))
		return EXIT_USAGE;
	bool json = cli_flag(a, "json");
	cow_store *s;
	cow_txn *t;
	cow_map *m;
	int ex = open_map("get", a->argv[0], false, &s, &t, &m);
	if (ex)
		return ex;
	cow_buf v;
	int rc = cow_map_get(m, a->argv[1], klen, &v);
	if (rc == COW_ENOTFOUND) {
		fprintf(stderr, "cow: %s: map '%s' has no key '", cli_store_path(), a->argv[0]);
		cli_put_escaped(stderr, a->argv[1], klen);
		fprintf(stderr, "'\n");
		ex = EXIT_NOTFOUND;
	} else if (rc) {
		ex = cli_fail(rc, "%s: get from map '%s'", cli_store_path(), a->argv[0]);
	} else if (json) {
		struct json j;
		json_init(&j, stdout);
		json_object(&j);
		json_kbytes(&j, "key", a->argv[1], klen);
		json_kbytes(&j, "value", v.data, v.len);
		json_end(&j);
	} else {
		fwrite(v.data, 1, v.len, stdout);
		if (isatty(STDOUT_FILENO))
			putchar('\n');
	}
	cow_txn_abort(t);
	cow_store_close(s);
	return ex;
}

int cmd_del(const struct cli_args *a)
{
	size_t klen;
	if (!cli_arg_key(a->cmd->name, a->argv[1], &klen))
		return EXIT_USAGE;
	cow_store *s;
	cow_txn *t;
	cow_map *m;
	int ex = open_map("del", a->argv[0], true, &s, &t, &m);
	if (ex)
		return ex;
	int rc = cow_map_del(m, a->argv[1], klen);
	if (rc == COW_ENOTFOUND) {
		fprintf(stderr, "cow: %s: map '%s' has no key '", cli_store_path(), a->argv[0]);
		cli_put_escaped(stderr, a->argv[1], klen);
		fprintf(stderr, "'\n");
		cow_txn_abort(t);
		cow_store_close(s);
		return EXIT_NOTFOUND;
	}
	if (rc)
		return fail_abort(rc, "delete from map", a->argv[0], s, t);
	return finish("delete from map", a->argv[0], s, t);
}

/* memcmp order of two byte strings, as the map sorts keys. */
static int keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	return c ? c : (alen > blen) - (alen < blen);
}

int cmd_scan(const struct cli_args *a)
{
	const char *name = a->argv[0];
	char *prefix = (char *)cli_str(a, "prefix", NULL), *from = (char *)cli_str(a, "from", NULL);
	char *to = (char *)cli_str(a, "to", NULL);
	size_t plen = 0, flen = 0, tlen = 0;
	if ((prefix && !cli_arg_key("scan", prefix, &plen)) ||
	    (from && !cli_arg_key("scan", from, &flen)) || (to && !cli_arg_key("scan", to, &tlen)))
		return EXIT_USAGE;
	uint64_t limit = cli_num(a, "limit", UINT64_MAX);
	bool json = cli_flag(a, "json"), reverse = cli_flag(a, "reverse");
	bool keys_only = cli_flag(a, "keys-only");
	cow_store *s;
	cow_txn *t;
	cow_map *m;
	int ex = open_map("scan", name, false, &s, &t, &m);
	if (ex)
		return ex;
	cow_cursor *c;
	int rc = cow_cursor_open(m, &c);
	cow_buf k, v;
	if (rc == 0 && !reverse) {
		/* Start at the larger of --from and --prefix. */
		const char *start = from;
		size_t slen = flen;
		if (prefix && (!from || keycmp(prefix, plen, from, flen) > 0))
			start = prefix, slen = plen;
		rc = start ? cow_cursor_seek(c, start, slen) : cow_cursor_first(c);
	} else if (rc == 0) {
		/* Backwards from --to (inclusive), else from the last key. */
		rc = to ? cow_cursor_seek(c, to, tlen) : cow_cursor_last(c);
		if (to && rc == COW_ENOTFOUND)
			rc = cow_cursor_last(c);
		else if (to && rc == 0 && cow_cursor_get(c, &k, &v) == 0 &&
			 keycmp(k.data, k.len, to, tlen) > 0)
			rc = cow_cursor_prev(c);
	}
	struct json j;
	json_init(&j, stdout);
	if (json)
		json_array(&j);
	for (uint64_t n = 0; rc == 0 && n < limit;) {
		rc = cow_cursor_get(c, &k, &v);
		if (rc)
			break;
		bool in_prefix = !prefix || (k.len >= plen && memcmp(k.data, prefix, plen) == 0);
		if (!reverse && (!in_prefix || (to && keycmp(k.data, k.len, to, tlen) > 0)))
			break; /* past the prefix or --to: nothing further qualifies */
		if (reverse && from && keycmp(k.data, k.len, from, flen) < 0)
			break;
		if (in_prefix) {
			if (json) {
				json_object(&j);
				json_kbytes(&j, "key", k.data, k.len);
				if (!keys_only)
					json_kbytes(&j, "value", v.data, v.len);
				json_end(&j);
			} else {
				cli_put_escaped(stdout, k.data, k.len);
				if (!keys_only) {
					putchar('\t');
					cli_put_escaped(stdout, v.data, v.len);
				}
				putchar('\n');
			}
			n++;
		} else if (prefix && reverse && keycmp(k.data, k.len, prefix, plen) < 0) {
			break; /* below the prefix */
		}
		rc = reverse ? cow_cursor_prev(c) : cow_cursor_next(c);
	}
	if (json)
		json_end(&j);
	if (rc && rc != COW_ENOTFOUND)
		ex = cli_fail(rc, "%s: scan of map '%s'", cli_store_path(), name);
	cow_txn_abort(t);
	cow_store_close(s);
	return ex;
}

int cmd_load(const struct cli_args *a)
{
	cow_store *s;
	cow_txn *t;
	cow_map *m;
	int ex = open_map("load", a->argv[0], true, &s, &t, &m);
	if (ex)
		return ex;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0, n = 0;
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = 0;
		if (len == 0)
			continue;
		char *tab = memchr(line, '\t', (size_t)len);
		if (!tab) {
			fprintf(stderr, "cow load: line %ld: no TAB between key and value\n", lineno);
			free(line);
			cow_txn_abort(t);
			cow_store_close(s);
			return EXIT_USAGE;
		}
		long kl = cli_unescape(line, (size_t)(tab - line));
		long vl = cli_unescape(tab + 1, (size_t)(line + len - tab - 1));
		if (kl <= 0 || vl < 0) {
			fprintf(stderr, "cow load: line %ld: empty key or bad escape\n", lineno);
			free(line);
			cow_txn_abort(t);
			cow_store_close(s);
			return EXIT_USAGE;
		}
		int rc = cow_map_put(m, line, (size_t)kl, tab + 1, (size_t)vl);
		if (rc) {
			free(line);
			fprintf(stderr, "cow load: line %ld:\n", lineno);
			return fail_abort(rc, "load into map", a->argv[0], s, t);
		}
		n++;
	}
	free(line);
	ex = finish("load into map", a->argv[0], s, t);
	if (ex == EXIT_OK)
		fprintf(stderr, "loaded %ld entries into '%s'\n", n, a->argv[0]);
	return ex;
}

/* A byte count, or "unknown" / null when @known is false. */
