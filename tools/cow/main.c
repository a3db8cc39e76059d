/*
 * cow: the command-line face of cowkit. Dispatches to command tables, one
 * per group of commands; `cow help` lists them all.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cow/store.h"

static const struct cli_cmd *const groups[] = {
	cli_store_cmds,
	cli_version_cmds,
	cli_trust_cmds,
	cli_share_cmds,
	cli_mem_cmds,
	cli_serve_cmds,
	cli_tour_cmds,
};

static const struct cli_cmd *find(const char *name)
{
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const struct cli_cmd *c = groups[g]; c->name; c++)
			if (strcmp(c->name, name) == 0)
				return c;
	return NULL;
}

static void list_commands(FILE *f)
{
	fprintf(f, "usage: cow [-s STORE] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const struct cli_cmd *c = groups[g]; c->name; c++) {
			char head[64];
			snprintf(head, sizeof(head), "%s %s", c->name, c->args);
			fprintf(f, "  %-34s %s\n", head, c->summary);
		}
	fprintf(f, "\nThe store is named by -s STORE or $COW_STORE.\n"
		   "Sizes and offsets are whole bytes: 4096, 4K (= 4096), 4kB (= 4000), 16G.\n"
		   "Exit codes:\n"
		   "  0  ok (fsck, scrub: no damage)\n"
		   "  1  not found: key, object, process, or the store file\n"
		   "  2  usage: bad arguments, a refused number, an invalid name\n"
		   "  3  failed, nothing changed: permission, I/O, space, busy, exists,\n"
		   "     a bad stream, not a cowkit store (fsck, scrub: could not run)\n"
		   "  4  the store is damaged: corrupt, cut short, no commit verifies\n"
		   "`cow help COMMAND` says more about one command.\n");
}

static int help(int argc, char **argv)
{
	if (argc < 2) {
		list_commands(stdout);
		return EXIT_OK;
	}
	const struct cli_cmd *c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "cow: no command '%s'; `cow help` lists them\n", argv[1]);
		return EXIT_USAGE;
	}
	printf("usage: cow %s %s\n\n%s\n", c->name, c->args, c->summary);
	if (c->help)
		printf("\n%s", c->help);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("cow %s\n", cow_version());
			return EXIT_OK;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			list_commands(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
			setenv("COW_STORE", argv[++i], 1);
		} else {
			fprintf(stderr, "cow: unknown option '%s'\n", argv[i]);
			list_commands(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		list_commands(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0)
		return help(argc - i, argv + i);
	const struct cli_cmd *c = find(argv[i]);
	if (!c) {
		fprintf(stderr, "cow: no command '%s'; `cow help` lists them\n", argv[i]);
		return EXIT_USAGE;
	}
	return c->run(argc - i, argv + i);
}

int cli_exit_code(int rc)
{
	switch (rc) {
	case 0:
		return EXIT_OK;
	case COW_ENOTFOUND:
	case COW_ENOENT:
	case COW_ESRCH:
		return EXIT_NOTFOUND;
	case COW_ECORRUPT:
		return EXIT_DAMAGED;
	case COW_EINVAL:
		return EXIT_USAGE;
	default:
		return EXIT_FAIL;
	}
}

int cli_fail(int rc, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cow: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s%s\n", rc == COW_ECORRUPT ? "damaged: " : "", cow_strerror(rc));
	return cli_exit_code(rc);
}

int cli_open_fail(const char *path, int rc)
{
	const char *hint = rc == COW_ENOENT	? " (`cow init` creates a store)"
			   : rc == COW_ECORRUPT ? "; `cow fsck` says more"
						: "";
	fprintf(stderr, "cow: %s: %s%s%s\n", path, rc == COW_ECORRUPT ? "damaged: " : "",
		cow_strerror(rc), hint);
	return cli_exit_code(rc);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cow %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see `cow help %s`)\n", cmd);
	return EXIT_USAGE;
}

const char *cli_size(char *buf, size_t len, double bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	size_t u = 0;
	while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		bytes /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f B", bytes);
	else
		snprintf(buf, len, "%.*f %s", bytes < 10 ? 2 : bytes < 100 ? 1 : 0, bytes, units[u]);
	return buf;
}

bool cli_arg_num(const char *cmd, const char *what, const char *s, enum cli_num_kind kind,
		 uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	char why[160];
	enum cli_num_error err = cli_num_parse(s, kind, max, &v);
	if (err) {
		cli_usage(cmd, "bad %s '%s': %s", what, s,
			  cli_num_explain(err, kind, max, why, sizeof(why)));
		return false;
	}
	if (v < min) {
		cli_usage(cmd, "bad %s '%s': at least %llu", what, s, (unsigned long long)min);
		return false;
	}
	*out = v;
	return true;
}

bool cli_arg_fixed(const char *cmd, const char *what, const char *s, unsigned decimals,
		   uint64_t min, uint64_t max, const char *range, uint64_t *out)
{
	uint64_t v;
	char why[160];
	enum cli_num_error err = cli_num_parse_fixed(s, decimals, max, &v);
	if (err == CLI_NUM_OK && v < min)
		err = CLI_NUM_RANGE;
	if (err == CLI_NUM_RANGE) {
		cli_usage(cmd, "bad %s '%s': expected %s", what, s, range);
		return false;
	}
	if (err) {
		cli_usage(cmd, "bad %s '%s': %s (%s)", what, s,
			  cli_num_explain(err, CLI_NUM_FIXED, max, why, sizeof(why)), range);
		return false;
	}
	*out = v;
	return true;
}

void cli_json_bytes(FILE *f, const void *p, size_t n)
{
	const unsigned char *c = p;
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		if (c[i] == '"' || c[i] == '\\')
			fprintf(f, "\\%c", c[i]);
		else if (c[i] < 0x20 || c[i] >= 0x7f)
			fprintf(f, "\\u%04x", c[i]);
		else
			fputc(c[i], f);
	}
	fputc('"', f);
}

const char *cli_store_path(void)
{
	const char *p = getenv("COW_STORE");
	return p && *p ? p : NULL;
}

int cli_open(const char *cmd, bool write, cow_store **s)
{
	const char *path = cli_store_path();
	if (!path)
		return cli_usage(cmd, "no store: give -s STORE or set COW_STORE");
	cow_store_options o = {write ? 0 : COW_STORE_RDONLY};
	int rc = cow_store_open(path, &o, s);
	return rc ? cli_open_fail(path, rc) : 0;
}

int cli_begin(const char *cmd, bool write, cow_store **s, cow_txn **t)
{
	int ex = cli_open(cmd, write, s);
	if (ex)
		return ex;
	const char *path = cli_store_path();
	int rc = cow_txn_begin(*s, write ? 0 : COW_TXN_RDONLY, t);
	if (rc) {
		cow_store_close(*s);
		return cli_fail(rc, "%s: cannot begin a transaction", path);
	}
	return 0;
}

int cli_stat(const char *cmd, cow_store_stats *st, bool *space)
{
	cow_store *s;
	int ex = cli_open(cmd, false, &s);
	if (ex)
		return ex;
	int rc = cow_store_stat(s, st);
	cow_store_close(s);
	if (rc)
		return cli_fail(rc, "%s: stat", cli_store_path());
	/* All zero: the last commit was made by a build that did not record them. */
	*space = st->used_bytes || st->pending_bytes || st->free_bytes || !st->file_bytes;
	return 0;
}

void cli_progress_begin(struct cli_progress *p, const char *verb, bool bytes)
{
	p->on = isatty(STDERR_FILENO);
	p->bytes = bytes;
	p->last = 0;
	p->verb = verb;
}

void cli_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct cli_progress *p = ctx;
	if (!p->on)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double now = ts.tv_sec + ts.tv_nsec / 1e9;
	if (now - p->last < 0.2 && done < total)
		return;
	p->last = now;
	char a[32], b[32];
	if (p->bytes)
		fprintf(stderr, "\r%s %3.0f%% (%s of %s)   ", p->verb,
			total ? 100.0 * (double)done / (double)total : 100.0,
			cli_size(a, sizeof(a), (double)done), cli_size(b, sizeof(b), (double)total));
	else
		fprintf(stderr, "\r%s %3.0f%% (%llu blocks)   ", p->verb,
			total ? 100.0 * (double)done / (double)total : 100.0,
			(unsigned long long)done);
}

void cli_progress_end(struct cli_progress *p)
{
	if (p->on && p->last > 0)
		fprintf(stderr, "\n");
}
