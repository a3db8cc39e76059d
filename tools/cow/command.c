/*
 * The command table's machinery: find a command, parse its options with
 * getopt_long (in any position, --opt=value, "--" ends them), run it, and
 * print `cow help`, `cow help CMD` and `cow help --man` from the same table,
 * so the help, the man page and the parser cannot disagree.
 *
 * A command whose handler lives in another program (the tour and the memory
 * demonstrations, in cow-tour) is parsed here too, so a bad option is a
 * usage error before anything runs; then that program is exec'd, found next
 * to this one or on PATH, as git runs its external commands.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int opt_index(const struct cli_cmd *c, const char *name)
{
	for (int i = 0; c->opts && c->opts[i].name; i++)
		if (strcmp(c->opts[i].name, name) == 0)
			return i;
	/* A handler asked for an option its table row does not define. */
	fprintf(stderr, "cow %s: internal error: no option --%s in the table\n", c->name, name);
	abort();
}

bool cli_flag(const struct cli_args *a, const char *name)
{
	return a->set[opt_index(a->cmd, name)];
}

const char *cli_str(const struct cli_args *a, const char *name, const char *dflt)
{
	int i = opt_index(a->cmd, name);
	return a->set[i] ? a->str[i] : dflt;
}

uint64_t cli_num(const struct cli_args *a, const char *name, uint64_t dflt)
{
	int i = opt_index(a->cmd, name);
	return a->set[i] ? a->num[i] : dflt;
}

/* The number of words in @c's name: 1 for "get", 2 for "vol create". */
static int name_words(const struct cli_cmd *c)
{
	return strchr(c->name, ' ') ? 2 : 1;
}

/* Whether @c is command @word (with @sub as its second word for two-word names). */
static bool matches(const struct cli_cmd *c, const char *word, const char *sub)
{
	size_t n = strlen(word);
	if (strncmp(c->name, word, n) != 0)
		return false;
	if (c->name[n] == 0)
		return true;
	return c->name[n] == ' ' && sub && strcmp(c->name + n + 1, sub) == 0;
}

/* Whether @word is the first word of some two-word command ("vol"). */
static bool is_group(const char *word)
{
	size_t n = strlen(word);
	for (const struct cli_cmd *c = cli_commands; c->name; c++)
		if (strncmp(c->name, word, n) == 0 && c->name[n] == ' ')
			return true;
	return false;
}

/* "create, write, read or resize": the subcommands of @word. */
static void list_subs(FILE *f, const char *word)
{
	size_t n = strlen(word);
	int k = 0, total = 0;
	for (const struct cli_cmd *c = cli_commands; c->name; c++)
		if (strncmp(c->name, word, n) == 0 && c->name[n] == ' ')
			total++;
	for (const struct cli_cmd *c = cli_commands; c->name; c++)
		if (strncmp(c->name, word, n) == 0 && c->name[n] == ' ') {
			k++;
			fprintf(f, "%s%s",
				k == 1	     ? ""
				: k == total ? " or "
					     : ", ",
				c->name + n + 1);
		}
}

/* One option as the synopsis shows it: "--json", "-t TYPE", "--limit N". */
static void opt_usage(FILE *f, const struct cli_opt *o)
{
	if (o->letter && o->arg)
		fprintf(f, "-%c %s", o->letter, o->arg);
	else if (o->letter)
		fprintf(f, "-%c", o->letter);
	else if (o->arg)
		fprintf(f, "--%s %s", o->name, o->arg);
	else
		fprintf(f, "--%s", o->name);
}

/* The whole synopsis after "cow": "get [--json] NAME KEY". Never cut. */
static void synopsis(FILE *f, const struct cli_cmd *c)
{
	fputs(c->name, f);
	for (const struct cli_opt *o = c->opts; o && o->name; o++) {
		fputs(" [", f);
		opt_usage(f, o);
		fputc(']', f);
	}
	if (c->args[0])
		fprintf(f, " %s", c->args);
}

void cli_list_commands(FILE *f)
{
	fprintf(f, "usage: cow [-s STORE] COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
	for (const struct cli_cmd *c = cli_commands; c->name; c++) {
		fputs("  cow ", f);
		synopsis(f, c);
		fprintf(f, "\n        %s\n", c->summary);
	}
	fprintf(f, "\nThe store is named by -s STORE or $COW_STORE. Options go anywhere after\n"
		   "the command's name, as --opt VALUE or --opt=VALUE; \"--\" ends them.\n"
		   "Sizes and offsets are whole bytes: 4096, 4K (= 4096), 4kB (= 4000), 16G.\n"
		   "Keys are 1-1024 bytes, written as scan prints them: \\t, \\n, \\\\ and \\xHH\n"
		   "stand for a tab, a newline, a backslash and any byte.\n"
		   "Exit codes:\n"
		   "  0  ok (fsck, scrub: no damage)\n"
		   "  1  not found: key, object, process, or the store file\n"
		   "  2  usage: bad arguments, a refused number, an invalid name\n"
		   "  3  failed, nothing changed: permission, I/O, space, busy, exists,\n"
		   "     a bad stream, not a cowkit store (fsck, scrub: could not run)\n"
		   "  4  the store is damaged: corrupt, cut short, no commit verifies\n"
		   "`cow help COMMAND` says more about one command.\n");
}

static void opt_help(FILE *f, const struct cli_opt *o)
{
	char head[80];
	int n = 0;
	if (o->letter)
		n = snprintf(head, sizeof(head), "-%c, ", o->letter);
	snprintf(head + n, sizeof(head) - (size_t)n, "--%s%s%s", o->name, o->arg ? " " : "",
		 o->arg ? o->arg : "");
	if (strlen(head) <= 20)
		fprintf(f, "  %-20s %s\n", head, o->help);
	else
		fprintf(f, "  %s\n  %-20s %s\n", head, "", o->help);
}

static void command_help(FILE *f, const struct cli_cmd *c)
{
	fputs("usage: cow ", f);
	synopsis(f, c);
	fprintf(f, "\n\n%s\n", c->summary);
	if (c->opts && c->opts[0].name) {
		fprintf(f, "\noptions:\n");
		for (const struct cli_opt *o = c->opts; o->name; o++)
			opt_help(f, o);
	}
	if (c->help)
		fprintf(f, "\n%s", c->help);
}

/* Write @s for troff: "-" as "\-", "\" as "\e", a leading "." or "'" guarded. */
static void roff(FILE *f, const char *s, bool line_start)
{
	for (; *s; s++) {
		if (line_start && (*s == '.' || *s == '\''))
			fputs("\\&", f);
		line_start = *s == '\n';
		if (*s == '-')
			fputs("\\-", f);
		else if (*s == '\\')
			fputs("\\e", f);
		else
			fputc(*s, f);
	}
}

static void roff_opt(FILE *f, const struct cli_opt *o)
{
	if (o->letter) {
		fprintf(f, "\\fB\\-%c\\fR", o->letter);
		if (o->arg) {
			fputs(" \\fI", f);
			roff(f, o->arg, false);
			fputs("\\fR", f);
		}
		fputs(", ", f);
	}
	fputs("\\fB\\-\\-", f);
	roff(f, o->name, false);
	fputs("\\fR", f);
	if (o->arg) {
		fputs(" \\fI", f);
		roff(f, o->arg, false);
		fputs("\\fR", f);
	}
}

/* The man page's SYNOPSIS and COMMANDS sections, each between marker comments. */
static void man(FILE *f)
{
	fprintf(f, ".\\\" BEGIN synopsis: generated by `cow help --man`; do not edit\n"
		   ".SH SYNOPSIS\n");
	fprintf(f, ".B cow\n[\\fB\\-s\\fR \\fISTORE\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] "
		   "[\\fIARGS\\fR]\n.br\n.B cow help\n[\\fB\\-\\-man\\fR] [\\fICOMMAND\\fR]\n"
		   ".br\n.B cow \\-\\-version\n.PP\n");
	for (const struct cli_cmd *c = cli_commands; c->name; c++) {
		fputs(".B cow\n", f);
		char *line;
		size_t len;
		FILE *m = open_memstream(&line, &len);
		if (!m)
			return;
		synopsis(m, c);
		fclose(m);
		roff(f, line, true);
		free(line);
		fputs(c[1].name ? "\n.br\n" : "\n", f);
	}
	fprintf(f, ".\\\" END synopsis\n");
	fprintf(f, ".\\\" BEGIN commands: generated by `cow help --man`; do not edit\n"
		   ".SH COMMANDS\n");
	for (const struct cli_cmd *c = cli_commands; c->name; c++) {
		fputs(".TP\n\\fB", f);
		roff(f, c->name, false);
		fputs("\\fR", f);
		if (c->args[0]) {
			fputs(" \\fI", f);
			roff(f, c->args, false);
			fputs("\\fR", f);
		}
		fputc('\n', f);
		roff(f, c->summary, true);
		fputc('\n', f);
		if ((c->opts && c->opts[0].name) || c->help)
			fputs(".RS\n", f);
		for (const struct cli_opt *o = c->opts; o && o->name; o++) {
			fputs(".TP\n", f);
			roff_opt(f, o);
			fputc('\n', f);
			roff(f, o->help, true);
			fputc('\n', f);
		}
		if (c->help) {
			fputs(".PP\n.nf\n", f);
			roff(f, c->help, true);
			fputs(".fi\n", f);
		}
		if ((c->opts && c->opts[0].name) || c->help)
			fputs(".RE\n", f);
	}
	fprintf(f, ".\\\" END commands\n");
}

int cli_help(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--man") == 0) {
		if (argc > 2) {
			fprintf(stderr, "cow help: --man takes no command\n");
			return EXIT_USAGE;
		}
		man(stdout);
		return EXIT_OK;
	}
	if (argc < 2) {
		cli_list_commands(stdout);
		return EXIT_OK;
	}
	if (argc > 3 || (argv[1][0] == '-' && strcmp(argv[1], "--") != 0)) {
		fprintf(stderr, "cow help: expected: cow help [--man] [COMMAND]\n");
		return EXIT_USAGE;
	}
	const char *word = argv[1], *sub = argc > 2 ? argv[2] : NULL;
	int shown = 0;
	for (const struct cli_cmd *c = cli_commands; c->name; c++) {
		bool whole = matches(c, word, sub);
		bool group = !sub && strncmp(c->name, word, strlen(word)) == 0 &&
			     c->name[strlen(word)] == ' ';
		if (!whole && !group)
			continue;
		if (shown++)
			fputs("\n", stdout);
		command_help(stdout, c);
	}
	if (!shown) {
		fprintf(stderr, "cow: no command '%s%s%s'; `cow help` lists them\n", word,
			sub ? " " : "", sub ? sub : "");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Parse option @o's argument @s, given as @what ("-t", "--type"), into @a's slot @i. */
static bool parse_value(const struct cli_cmd *c, const struct cli_opt *o, const char *what,
			const char *s, struct cli_args *a, int i)
{
	uint64_t max = o->max ? o->max : UINT64_MAX;
	a->str[i] = s;
	switch (o->kind) {
	case CLI_FLAG:
	case CLI_STRING:
		return true;
	case CLI_BYTES:
		return cli_arg_num(c->name, what, s, CLI_NUM_BYTES, o->min, max, &a->num[i]);
	case CLI_COUNT:
		return cli_arg_num(c->name, what, s, CLI_NUM_COUNT, o->min, max, &a->num[i]);
	case CLI_FIXED:
		return cli_arg_fixed(c->name, what, s, o->decimals, o->min, max, o->choices,
				     &a->num[i]);
	case CLI_CHOICE: {
		size_t n = strlen(s);
		for (const char *w = o->choices; *w;) {
			size_t len = strcspn(w, "|");
			if (n && len == n && strncmp(w, s, n) == 0)
				return true;
			w += len + (w[len] == '|');
		}
		cli_usage(c->name, "%s takes %s, not '%s'", what, o->choices, s);
		return false;
	}
	}
	return false;
}

/* Exec @c's program with @argv (the command's words first), next to us or on PATH. */
static int run_external(const struct cli_cmd *c, int argc, char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char **args = calloc((size_t)argc + 2, sizeof(*args));
	if (!args)
		return cli_fail(COW_ENOMEM, "%s", c->name);
	args[0] = (char *)c->program;
	memcpy(args + 1, argv, (size_t)argc * sizeof(*args));
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			slash[1] = 0;
			snprintf(path, sizeof(path), "%s%s", self, c->program);
			execv(path, args);
		}
	}
	execvp(c->program, args);
	fprintf(stderr,
		"cow %s: cannot run %s (%s); it is installed beside cow and builds with it\n",
		c->name, c->program, strerror(errno));
	free(args);
	return EXIT_FAIL;
}

int cli_dispatch(const char *prog, int argc, char **argv)
{
	const char *word = argv[0], *sub = argc > 1 ? argv[1] : NULL;
	const struct cli_cmd *c = NULL;
	for (const struct cli_cmd *k = cli_commands; k->name && !c; k++)
		if (matches(k, word, name_words(k) == 2 ? sub : NULL))
			c = k;
	if (!c && is_group(word)) {
		fprintf(stderr, "cow %s: %s%s%s; which one: ", word, sub ? "no subcommand '" : "",
			sub ? sub : "needs a subcommand", sub ? "'" : "");
		list_subs(stderr, word);
		fprintf(stderr, "?\n(see `cow help %s`)\n", word);
		return EXIT_USAGE;
	}
	if (!c) {
		fprintf(stderr, "cow: no command '%s'; `cow help` lists them\n", word);
		return EXIT_USAGE;
	}
	int skip = name_words(c) - 1; /* getopt takes argv[0] as the program's name */
	int n = argc - skip;
	char **v = argv + skip;

	struct option longopts[CLI_MAXOPT + 2];
	char shortopts[2 * CLI_MAXOPT + 2];
	size_t sp = 0;
	shortopts[sp++] = ':'; /* report a missing argument as ':'; no '+': permute */
	int nopts = 0;
	for (const struct cli_opt *o = c->opts; o && o->name; o++, nopts++) {
		assert(nopts < CLI_MAXOPT);
		longopts[nopts] = (struct option){
			o->name, o->kind == CLI_FLAG ? no_argument : required_argument, NULL,
			1000 + nopts};
		if (o->letter) {
			shortopts[sp++] = o->letter;
			if (o->kind != CLI_FLAG)
				shortopts[sp++] = ':';
		}
	}
	longopts[nopts] = (struct option){"help", no_argument, NULL, 999};
	longopts[nopts + 1] = (struct option){NULL, 0, NULL, 0};
	shortopts[sp] = 0;

	/*
	 * No option is a digit, so "-1" is an argument, not an option (a
	 * refused number, said so by the command): hide such words from
	 * getopt behind placeholders and put them back afterwards. getopt
	 * permutes pointers, so a placeholder's address says which word it was.
	 */
	char **orig = calloc((size_t)n + 1, sizeof(*orig));
	char *hidden = calloc((size_t)n + 1, 2);
	if (!orig || !hidden) {
		free(orig);
		free(hidden);
		return cli_fail(COW_ENOMEM, "%s", c->name);
	}
	for (int i = 0; i < n; i++) {
		orig[i] = v[i];
		if (strcmp(v[i], "--") == 0)
			break;
		if (i > 0 && v[i][0] == '-' && v[i][1] >= '0' && v[i][1] <= '9') {
			hidden[2 * i] = 'x';
			v[i] = &hidden[2 * i];
		}
	}
#define UNHIDE(p) ((p) >= hidden && (p) < hidden + 2 * n ? orig[((p)-hidden) / 2] : (p))

	struct cli_args a;
	memset(&a, 0, sizeof(a));
	a.cmd = c;
	opterr = 0;
	optind = 0; /* glibc: start over, forgetting any earlier scan */
	int ch, ex = -1, li;
	while (ex < 0 && (li = -1, ch = getopt_long(n, v, shortopts, longopts, &li)) != -1) {
		int i = -1;
		char what[64];
		if (ch == 999) {
			command_help(stdout, c);
			ex = EXIT_OK;
			break;
		} else if (ch >= 1000) {
			i = ch - 1000;
			snprintf(what, sizeof(what), "--%s", c->opts[i].name);
		} else if (ch == '?' || ch == ':') {
			const char *bad = v[optind - 1];
			char letter[3] = {'-', (char)optopt, 0};
			if (optopt && strncmp(bad, "--", 2) != 0)
				bad = letter;
			ex = cli_usage(c->name,
				       ch == ':' ? "option '%s' needs an argument"
						 : "unknown option '%s'",
				       bad);
			break;
		} else {
			for (int k = 0; k < nopts; k++)
				if (c->opts[k].letter == ch)
					i = k;
			snprintf(what, sizeof(what), "-%c", ch);
		}
		assert(i >= 0);
		a.set[i] = true;
		if (optarg && !parse_value(c, &c->opts[i], what, UNHIDE(optarg), &a, i))
			ex = EXIT_USAGE;
	}
	for (int i = 0; i < n; i++)
		v[i] = UNHIDE(v[i]);
#undef UNHIDE
	free(orig);
	free(hidden);
	if (ex >= 0)
		return ex;
	a.argc = n - optind;
	a.argv = v + optind;
	if (a.argc < c->min_args || (c->max_args >= 0 && a.argc > c->max_args)) {
		char *line;
		size_t len;
		FILE *m = open_memstream(&line, &len);
		if (!m)
			return EXIT_FAIL;
		synopsis(m, c);
		fclose(m);
		ex = cli_usage(c->name, "%s; expected: cow %s",
			       a.argc < c->min_args ? "too few arguments" : "too many arguments",
			       line);
		free(line);
		return ex;
	}
	if (c->run)
		return c->run(&a);
	if (c->program && strcmp(prog, c->program) != 0)
		return run_external(c, argc, argv);
	fprintf(stderr, "%s: '%s' is not part of this program; run `cow %s`\n", prog, c->name,
		c->name);
	return EXIT_USAGE;
}
