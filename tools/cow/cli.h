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
#include "json.h"
#include "num.h"

/* Exit codes scripts can trust (documented in docs/cow.1 and `cow help`). */
enum {
	EXIT_OK = 0,       /* done */
	EXIT_NOTFOUND = 1, /* the key, object or process does not exist */
	EXIT_USAGE = 2,    /* bad command line */
	EXIT_FAIL = 3,     /* the operation failed (I/O, permission, busy, ...) */
	EXIT_DAMAGED = 4,  /* the store is corrupt (fsck/scrub found damage) */
};

/*
 * The command table (commands.c) is the one place that defines each
 * command: its name, positional arguments, options and help. The parser
 * (command.c) reads options with getopt_long in any position, `cow help`
 * and `cow help --man` (the man page's SYNOPSIS and COMMANDS) print from it.
 */
enum cli_opt_kind {
	CLI_FLAG,   /* no argument */
	CLI_STRING, /* any string */
	CLI_BYTES,  /* a size or offset in bytes (num.h), within [min, max] */
	CLI_COUNT,  /* decimal digits, within [min, max] */
	CLI_FIXED,  /* a decimal such as 0.5, kept as an integer times 10^decimals */
	CLI_CHOICE, /* one of the words in @choices ("map|volume|snapshot") */
};

struct cli_opt {
	const char *name; /* long name without "--"; NULL ends a list */
	char letter;	  /* short option, or 0 */
	enum cli_opt_kind kind;
	const char *arg;     /* the argument's name in help ("SIZE"); NULL for flags */
	const char *help;    /* one line */
	uint64_t min, max;   /* numeric kinds; max 0 means no limit */
	unsigned decimals;   /* CLI_FIXED: digits kept after the point */
	const char *choices; /* CLI_CHOICE: the words; CLI_FIXED: the range in words */
};

#define CLI_MAXOPT 16

/* A parsed command line, handed to the command's handler. */
struct cli_args {
	const struct cli_cmd *cmd;
	int argc;		     /* positional arguments left after the options */
	char **argv;		     /* argv[0] is the first positional argument */
	bool set[CLI_MAXOPT];	     /* option i was given */
	const char *str[CLI_MAXOPT]; /* its argument as written */
	uint64_t num[CLI_MAXOPT];    /* numeric kinds: its value */
};

struct cli_cmd {
	const char *name;		      /* "get", or a command and subcommand: "vol create" */
	const char *args;		      /* positional arguments in the synopsis, or "" */
	int min_args, max_args;		      /* how many positional arguments; max -1: no limit */
	const struct cli_opt *opts;	      /* NULL, or a list ending with {NULL} */
	int (*run)(const struct cli_args *a); /* NULL: runs in @program */
	const char *summary;		      /* one line */
	const char *help;		      /* longer text for `cow help NAME`, or NULL */
	const char *program;		      /* NULL, or the program that runs it ("cow-tour") */
};

/* The table, in `cow help` order; ends with {NULL}. */
extern const struct cli_cmd cli_commands[];

/* Option @name of @a's command: given? its string, its number (or @dflt). */
bool cli_flag(const struct cli_args *a, const char *name);
const char *cli_str(const struct cli_args *a, const char *name, const char *dflt);
uint64_t cli_num(const struct cli_args *a, const char *name, uint64_t dflt);

/*
 * Run the command line @argv (after the global options: argv[0] is the
 * command's first word) as @prog ("cow", "cow-tour"): find the command,
 * parse its options, run its handler, or exec the program that holds it.
 * Returns the exit code.
 */
int cli_dispatch(const char *prog, int argc, char **argv);
/* `cow help [--man] [COMMAND]`. */
int cli_help(int argc, char **argv);
/* The command list of `cow help`. */
void cli_list_commands(FILE *f);

/* Handlers, one per table row; each lives in the cmd_*.c file named for it. */
int cmd_init(const struct cli_args *a);
int cmd_stat(const struct cli_args *a);
int cmd_map_create(const struct cli_args *a);
int cmd_map_drop(const struct cli_args *a);
int cmd_put(const struct cli_args *a);
int cmd_get(const struct cli_args *a);
int cmd_del(const struct cli_args *a);
int cmd_scan(const struct cli_args *a);
int cmd_load(const struct cli_args *a);
int cmd_vol_create(const struct cli_args *a);
int cmd_vol_write(const struct cli_args *a);
int cmd_vol_read(const struct cli_args *a);
int cmd_vol_resize(const struct cli_args *a);
int cmd_import(const struct cli_args *a);
int cmd_export(const struct cli_args *a);
int cmd_snapshot(const struct cli_args *a);
int cmd_clone(const struct cli_args *a);
int cmd_diff(const struct cli_args *a);
int cmd_rollback(const struct cli_args *a);
int cmd_destroy(const struct cli_args *a);
int cmd_promote(const struct cli_args *a);
int cmd_rename(const struct cli_args *a);
int cmd_trim(const struct cli_args *a);
int cmd_compact(const struct cli_args *a);
int cmd_serve(const struct cli_args *a);
int cmd_fs_create(const struct cli_args *a);
int cmd_mount(const struct cli_args *a);
int cmd_umount(const struct cli_args *a);
int cmd_list(const struct cli_args *a);
int cmd_du(const struct cli_args *a);
int cmd_send(const struct cli_args *a);
int cmd_recv(const struct cli_args *a);
int cmd_fsck(const struct cli_args *a);
int cmd_scrub(const struct cli_args *a);
int cmd_backup(const struct cli_args *a);
int cmd_share(const struct cli_args *a);
int cmd_mem_probe(const struct cli_args *a);
int cmd_mem_snapshot(const struct cli_args *a);
int cmd_mem_checkpoint(const struct cli_args *a);
int cmd_mem_restore(const struct cli_args *a);
int cmd_tour(const struct cli_args *a);

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
/*
 * Finish a write command: commit @t if @rc is 0, else abort it; close @s.
 * On failure print "cow: STORE: WHAT 'NAME': why" and return its exit code.
 */
int cli_end(struct cow_store *s, struct cow_txn *t, int rc, const char *what, const char *name);

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

/*
 * The store's space figures as members of the current JSON object:
 * file_bytes, and used_bytes, pending_bytes, free_bytes (null unless @space).
 */
void cli_json_space(struct json *j, const cow_store_stats *st, bool space);

/*
 * Keys, values and names as text: the form `scan` prints and `load` and the
 * KEY arguments read. \t, \n and \\ stand for a tab, a newline and a
 * backslash; \xHH for a control byte, DEL, or a byte that is not part of
 * valid UTF-8; everything else (UTF-8 text included) is itself.
 */
void cli_put_escaped(FILE *f, const void *p, size_t n);
/* The columns cli_put_escaped takes for @s (a UTF-8 character counts one). */
size_t cli_text_width(const char *s);
/* Undo cli_put_escaped in place: the new length, or -1 on a bad escape. */
long cli_unescape(char *p, size_t n);
/*
 * A KEY argument in cli_put_escaped's form, decoded in place into 1-1024
 * bytes (*@len); otherwise say why and return false (exit 2).
 */
bool cli_arg_key(const char *cmd, char *arg, size_t *len);

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
