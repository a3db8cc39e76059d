/*
 * Store-wide commands: init, stat, trim, compact, backup.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cow/store.h"

int cmd_init(const struct cli_args *a)
{
	if (a->argc == 1)
		setenv("COW_STORE", a->argv[0], 1);
	const char *path = cli_store_path();
	if (!path)
		return cli_usage("init", "no store: give STORE, -s STORE or set COW_STORE");
	cow_store *s;
	cow_store_options o = {COW_STORE_CREATE | COW_STORE_EXCL};
	int rc = cow_store_open(path, &o, &s);
	if (rc)
		return cli_fail(rc, "%s: cannot create store", path);
	cow_store_close(s);
	printf("created store %s\n", path);
	return EXIT_OK;
}

/* A byte count, or "unknown" when @known is false. */
static const char *figure(char *buf, size_t len, bool known, uint64_t v)
{
	if (!known)
		snprintf(buf, len, "%s", "unknown (old commit)");
	else
		cli_size(buf, len, (double)v);
	return buf;
}

int cmd_stat(const struct cli_args *args)
{
	bool json = cli_flag(args, "json");
	cow_store_stats st;
	bool space;
	int ex = cli_stat("stat", &st, &space);
	if (ex)
		return ex;
	char a[32], b[32], c[32], d[32];
	if (json) {
		struct json j;
		json_init(&j, stdout);
		json_object(&j);
		json_ku64(&j, "generation", st.gen);
		cli_json_space(&j, &st, space);
		json_ku64(&j, "readers", st.readers);
		json_ku64(&j, "disk_bytes", st.disk_bytes);
		json_key(&j, "reclaimable_bytes");
		if (space)
			json_u64(&j, st.reclaimable_bytes);
		else
			json_null(&j);
		json_end(&j);
		return EXIT_OK;
	}
	char e[32], f[32];
	printf("generation  %llu\nfile        %s\nused        %s\npending     %s\nfree        %s\n"
	       "readers     %llu\non disk     %s\nreclaimable %s (cow trim)\n",
	       (unsigned long long)st.gen, cli_size(a, sizeof(a), (double)st.file_bytes),
	       figure(b, sizeof(b), space, st.used_bytes),
	       figure(c, sizeof(c), space, st.pending_bytes),
	       figure(d, sizeof(d), space, st.free_bytes), (unsigned long long)st.readers,
	       cli_size(e, sizeof(e), (double)st.disk_bytes),
	       figure(f, sizeof(f), space, st.reclaimable_bytes));
	return EXIT_OK;
}

int cmd_trim(const struct cli_args *args)
{
	cow_store *s;
	int ex = cli_open("trim", true, &s);
	if (ex)
		return ex;
	uint64_t bytes;
	int rc = cow_store_trim(s, &bytes);
	cow_store_close(s);
	if (rc)
		return cli_fail(rc, "%s: trim", cli_store_path());
	char a[32];
	if (cli_flag(args, "json")) {
		struct json j;
		json_init(&j, stdout);
		json_object(&j);
		json_ku64(&j, "trimmed_bytes", bytes);
		json_end(&j);
	} else {
		printf("trimmed %s: %s given back to the file system\n", cli_store_path(),
		       cli_size(a, sizeof(a), (double)bytes));
	}
	return EXIT_OK;
}

int cmd_compact(const struct cli_args *a)
{
	cow_store *s;
	int ex = cli_open("compact", true, &s);
	if (ex)
		return ex;
	struct cli_progress pr;
	cow_compact_stats st;
	cli_progress_begin(&pr, "compacting", true);
	int rc = cow_store_compact(s, cli_num(a, "step", 0), &st, cli_progress, &pr);
	cli_progress_end(&pr);
	cow_store_close(s);
	if (rc)
		return cli_fail(rc, "%s: compact", cli_store_path());
	if (cli_flag(a, "json")) {
		struct json j;
		json_init(&j, stdout);
		json_object(&j);
		json_ku64(&j, "file_bytes_before", st.file_before);
		json_ku64(&j, "file_bytes_after", st.file_after);
		json_ku64(&j, "moved_bytes", st.moved_bytes);
		json_ku64(&j, "commits", st.commits);
		json_ku64(&j, "waiting_bytes", st.waiting_bytes);
		json_end(&j);
		return EXIT_OK;
	}
	char b[32], f[32], m[32], w[32];
	printf("compacted %s: file %s -> %s, %s moved in %llu commits\n", cli_store_path(),
	       cli_size(b, sizeof(b), (double)st.file_before),
	       cli_size(f, sizeof(f), (double)st.file_after),
	       cli_size(m, sizeof(m), (double)st.moved_bytes), (unsigned long long)st.commits);
	if (st.waiting_bytes)
		printf("waiting     %s a reader still sees: given back after it ends\n",
		       cli_size(w, sizeof(w), (double)st.waiting_bytes));
	return EXIT_OK;
}

/* Progress for the terminal, and the blocks copied for the summary. */
struct backup_progress {
	struct cli_progress pr;
	uint64_t done;
};

static void backup_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct backup_progress *p = ctx;
	p->done = done;
	cli_progress(&p->pr, done, total);
}

int cmd_backup(const struct cli_args *a)
{
	const char *dest = a->argv[0];
	cow_store *s;
	int ex = cli_open("backup", false, &s);
	if (ex)
		return ex;
	struct backup_progress p = {.done = 0};
	cli_progress_begin(&p.pr, "backing up", false);
	int rc = cow_store_backup(s, dest, cli_flag(a, "compact") ? COW_BACKUP_COMPACT : 0,
				  backup_progress, &p);
	cli_progress_end(&p.pr);
	cow_store_close(s);
	if (rc)
		return cli_fail(rc, "%s: backup to %s%s", cli_store_path(), dest,
				rc == COW_EEXIST ? " (it exists; backup never replaces a file)"
						 : "");
	/* What the copy holds, from the copy itself. */
	cow_store_stats st = {0};
	rc = cow_store_open(dest, &(cow_store_options){COW_STORE_RDONLY}, &s);
	if (rc == 0) {
		rc = cow_store_stat(s, &st);
		cow_store_close(s);
	}
	if (rc)
		return cli_fail(rc, "%s: the backup does not open", dest);
	struct stat fst;
	uint64_t on_disk = stat(dest, &fst) == 0 ? (uint64_t)fst.st_blocks * 512 : 0;
	if (cli_flag(a, "json")) {
		struct json j;
		json_init(&j, stdout);
		json_object(&j);
		json_kstr(&j, "dest", dest);
		json_ku64(&j, "generation", st.gen);
		json_ku64(&j, "copied_bytes", p.done * 4096);
		json_ku64(&j, "file_bytes", st.file_bytes);
		json_end(&j);
		return EXIT_OK;
	}
	char c1[32], c2[32], c3[32];
	printf("backed up generation %llu to %s: %s copied; file %s, %s on disk\n",
	       (unsigned long long)st.gen, dest, cli_size(c1, sizeof(c1), (double)p.done * 4096),
	       cli_size(c2, sizeof(c2), (double)st.file_bytes),
	       cli_size(c3, sizeof(c3), (double)on_disk));
	return EXIT_OK;
}
