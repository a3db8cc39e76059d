/*
 * The cow command: shared declarations for its command files. Each
 * cmd_*.c file implements one group of commands against the public API only.
 */
#ifndef COW_CLI_H
#define COW_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cow/cow.h"
#include "cow/store.h"
#include "num.h"

/* Exit codes scripts can trust (documented in docs/cow.1 and `cow help`). */
enum {
	EXIT_OK = 0,       /* done */
	EXIT_NOTFOUND = 1, /* the key, object or process does not exist */
	EXIT_USAGE = 2,    /* bad command line */
	EXIT_FAIL = 3,     /* the operation failed (I/O, permission, busy, ...) */
	EXIT_DAMAGED = 4,  /* the store is corrupt (fsck/scrub found damage) */
};

struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *args;                  /* synopsis after the name */
	const char *summary;               /* one line */
	const char *help;                  /* longer text for `cow help NAME`, or NULL */
};

/* Command groups; each file defines its table. */
extern const struct cli_cmd cli_tour_cmds[];
extern const struct cli_cmd cli_store_cmds[];
extern const struct cli_cmd cli_version_cmds[];
extern const struct cli_cmd cli_trust_cmds[];
extern const struct cli_cmd cli_share_cmds[];
extern const struct cli_cmd cli_mem_cmds[];
extern const struct cli_cmd cli_serve_cmds[];

/* The store named by -s STORE or $COW_STORE, or NULL. */
const char *cli_store_path(void);

/*
 * Open the store named by -s or $COW_STORE: read-write if @write, otherwise
 * with COW_STORE_RDONLY, so commands that only read work for users who may
 * only read. On failure print why (naming the file) and return the exit
 * code; 0 on success.
 */
struct cow_store;
struct cow_txn;
int cli_open(const char *cmd, bool write, struct cow_store **s);
/* cli_open, then begin a transaction (a write one if @write). */
int cli_begin(const char *cmd, bool write, struct cow_store **s, struct cow_txn **t);
/*
 * cow_store_stat on a read-only open of the store; *@space says whether the
 * used/pending/free figures are known. Returns an exit code.
 */
int cli_stat(const char *cmd, cow_store_stats *st, bool *space);

/* Print "cow: CONTEXT: MESSAGE" for a cowkit error and map it to an exit code. */
int cli_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Print why the store at @path did not open, naming the file and the cause
 * ("cow: s.cow: permission denied", "cow: s.cow: damaged: ...", "cow: s.cow:
 * not a cowkit store, ..."), and return the exit code for @rc.
 */
int cli_open_fail(const char *path, int rc);
/* Print "cow: MESSAGE" plus a usage hint; returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Exit code for a cowkit error. */
int cli_exit_code(int rc);

/* Write @n bytes as a JSON string (quotes included; other bytes as \u00XX). */
void cli_json_bytes(FILE *f, const void *p, size_t n);

/*
 * Progress on stderr when it is a terminal: "\rVERB 45% (x of y)". Pass
 * cli_progress as a cow_progress_fn with the struct as its context.
 */
struct cli_progress {
	bool on;
	bool bytes; /* units are bytes (else blocks) */
	double last;
	const char *verb;
};
void cli_progress_begin(struct cli_progress *p, const char *verb, bool bytes);
void cli_progress(void *ctx, uint64_t done, uint64_t total);
void cli_progress_end(struct cli_progress *p);

/* Sizes: "1.5 GiB" into buf. */
const char *cli_size(char *buf, size_t len, double bytes);
/*
 * Numeric arguments (num.h says what is accepted). Parse @s, the argument
 * @what ("SIZE", "--limit") of command @cmd, as @kind within [@min, @max].
 * On failure print "cow CMD: bad WHAT 'S': why" and return false; the
 * caller then exits with EXIT_USAGE.
 */
bool cli_arg_num(const char *cmd, const char *what, const char *s, enum cli_num_kind kind,
		 uint64_t min, uint64_t max, uint64_t *out);
/* Sizes and offsets in bytes, 0 to 2^64-1. */
static inline bool cli_arg_bytes(const char *cmd, const char *what, const char *s, uint64_t *out)
{
	return cli_arg_num(cmd, what, s, CLI_NUM_BYTES, 0, UINT64_MAX, out);
}
/*
 * A decimal such as "0.5", kept as an integer times 10^@decimals, within
 * [@min, @max] (scaled too); @range says the bounds in words for the message.
 */
bool cli_arg_fixed(const char *cmd, const char *what, const char *s, unsigned decimals,
		   uint64_t min, uint64_t max, const char *range, uint64_t *out);

#endif
