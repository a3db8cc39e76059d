/*
 * Helpers every command file shares: opening the store, error messages and
 * exit codes, numeric arguments, sizes for people, progress.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cow/store.h"

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

void cli_json_space(struct json *j, const cow_store_stats *st, bool space)
{
	json_ku64(j, "file_bytes", st->file_bytes);
	const char *names[] = {"used_bytes", "pending_bytes", "free_bytes"};
	uint64_t v[] = {st->used_bytes, st->pending_bytes, st->free_bytes};
	for (int i = 0; i < 3; i++) {
		json_key(j, names[i]);
		if (space)
			json_u64(j, v[i]);
		else
			json_null(j);
	}
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


int cli_end(cow_store *s, cow_txn *t, int rc, const char *what, const char *name)
{
	if (rc == 0)
		rc = cow_txn_commit(t);
	else
		cow_txn_abort(t);
	int ex = EXIT_OK;
	if (rc)
		ex = cli_fail(rc, "%s: %s '%s'%s", cli_store_path(), what, name,
			      rc == COW_EBUSY ? " (clones or snapshots depend on it)" : "");
	cow_store_close(s);
	return ex;
}

void cli_put_escaped(FILE *f, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n;) {
		size_t len = json_utf8_len(c + i, n - i);
		if (len > 1) {
			fwrite(c + i, 1, len, f); /* UTF-8 stays readable */
			i += len;
			continue;
		}
		if (c[i] == '\t')
			fputs("\\t", f);
		else if (c[i] == '\n')
			fputs("\\n", f);
		else if (c[i] == '\\')
			fputs("\\\\", f);
		else if (len == 0 || c[i] < 0x20 || c[i] == 0x7f)
			fprintf(f, "\\x%02x", c[i]);
		else
			fputc(c[i], f);
		i++;
	}
}

size_t cli_text_width(const char *s)
{
	const unsigned char *c = (const unsigned char *)s;
	size_t n = strlen(s), w = 0;
	for (size_t i = 0; i < n;) {
		size_t len = json_utf8_len(c + i, n - i);
		if (len > 1)
			w += 1;
		else if (c[i] == '\t' || c[i] == '\n' || c[i] == '\\')
			w += 2;
		else if (len == 0 || c[i] < 0x20 || c[i] == 0x7f)
			w += 4;
		else
			w += 1;
		i += len > 1 ? len : 1;
	}
	return w;
}

/* The value of a hex digit, or -1 (strtol would take " f", "+f" and "-1"). */
static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long cli_unescape(char *p, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\\') {
			p[o++] = p[i];
			continue;
		}
		if (++i == n)
			return -1;
		switch (p[i]) {
		case 't':
			p[o++] = '\t';
			break;
		case 'n':
			p[o++] = '\n';
			break;
		case '\\':
			p[o++] = '\\';
			break;
		case 'x': {
			int hi = i + 2 < n ? hex_digit(p[i + 1]) : -1;
			int lo = i + 2 < n ? hex_digit(p[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			p[o++] = (char)(hi << 4 | lo);
			i += 2;
			break;
		}
		default:
			return -1;
		}
	}
	return (long)o;
}

bool cli_arg_key(const char *cmd, char *arg, size_t *len)
{
	long n = cli_unescape(arg, strlen(arg));
	if (n < 0) {
		cli_usage(cmd, "bad KEY '%s': \\t, \\n, \\\\ and \\xHH are the escapes", arg);
		return false;
	}
	if (n == 0 || n > 1024) {
		cli_usage(cmd, "bad KEY: keys are 1-1024 bytes, this one is %ld", n);
		return false;
	}
	*len = (size_t)n;
	return true;
}
