/*
 * `cow share [--children] [--json] [--maps] [--watch SECONDS] PID...`:
 * what a process family shares after fork(), from the public share API.
 *
 * Text output is for people (one block per process, a line per mapping
 * kind); --json is for scripts, its schema is documented in docs/share.md
 * and checked by tests/unit/share_json_check.py. --watch repeats the
 * measurement and reports how fast each process un-shares memory.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cow/share.h"

#define PAGE 4096.0

struct opts {
	int *pids;
	size_t npids;
	unsigned flags;
	bool json, maps;
	double watch; /* seconds between rounds; 0 = once */
	long count;   /* rounds with --watch; 0 = until the family is gone */
};

static const char *sz(char *buf, size_t len, double bytes)
{
	return cli_size(buf, len, bytes);
}

static void json_figs(struct json *j, const cow_share_figs *f, int frames)
{
	json_object(j);
	json_ku64(j, "rss", f->rss);
	json_ku64(j, "pss", f->pss);
	json_ku64(j, "shared", f->shared);
	json_ku64(j, "private_clean", f->private_clean);
	json_ku64(j, "private_dirty", f->private_dirty);
	json_ku64(j, "swap", f->swap);
	const char *names[] = {"pages", "pages_all", "pages_some", "pages_none"};
	uint64_t v[] = {f->pages, f->pages_all, f->pages_some, f->pages_none};
	for (int i = 0; i < 4; i++) {
		json_key(j, names[i]);
		if (frames)
			json_u64(j, v[i]);
		else
			json_null(j);
	}
	json_end(j);
}

/* Un-share rates against the previous round; NAN-free: 0 when unknown. */
struct rate {
	int pid;
	double dirty_per_s, none_per_s;
	bool known;
};

static void print_json(const cow_share_report *r, const struct opts *o, double t,
		       const struct rate *rates)
{
	int frames = cow_share_report_frames(r);
	struct json jw, *j = &jw;
	json_init_lines(j, stdout); /* --watch: one document per line */
	json_object(j);
	json_ku64(j, "version", 1);
	json_ku64(j, "page_size", 4096);
	json_kbool(j, "frames", frames);
	json_kstr(j, "note", cow_share_report_note(r));
	json_ku64(j, "elapsed_ns", cow_share_report_elapsed_ns(r));
	json_ku64(j, "skipped", cow_share_report_skipped(r));
	if (o->watch > 0) {
		json_key(j, "t");
		json_double(j, t, 3);
	}
	json_key(j, "processes");
	json_array(j);
	for (size_t i = 0; i < cow_share_report_count(r); i++) {
		const cow_share_proc *p = cow_share_report_proc(r, i);
		json_object(j);
		json_key(j, "pid");
		json_i64(j, p->pid);
		json_key(j, "ppid");
		json_i64(j, p->ppid);
		json_kstr(j, "comm", p->comm);
		json_key(j, "total");
		json_figs(j, &p->total, frames);
		json_key(j, "kinds");
		json_object(j);
		for (int k = 0; k < COW_SHARE_NKINDS; k++) {
			json_key(j, cow_share_kind_name(k));
			json_figs(j, &p->kind[k], frames);
		}
		json_end(j);
		if (o->watch > 0) {
			bool known = rates && rates[i].known;
			json_key(j, "unshare_bytes_per_s");
			if (known)
				json_double(j, rates[i].dirty_per_s, 0);
			else
				json_null(j);
			json_key(j, "unshare_pages_per_s");
			if (known && frames)
				json_double(j, rates[i].none_per_s, 1);
			else
				json_null(j);
		}
		if (o->maps) {
			json_key(j, "maps");
			json_array(j);
			for (size_t m = 0; m < p->nmaps; m++) {
				const cow_share_map *mp = &p->maps[m];
				char hex[24];
				json_object(j);
				snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)mp->start);
				json_kstr(j, "start", hex);
				snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)mp->end);
				json_kstr(j, "end", hex);
				json_kstr(j, "perms", mp->perms);
				json_kstr(j, "kind", cow_share_kind_name(mp->kind));
				json_kstr(j, "name", mp->name);
				json_key(j, "figs");
				json_figs(j, &mp->figs, frames);
				json_end(j);
			}
			json_end(j);
		}
		json_end(j);
	}
	json_end(j);
	json_end(j);
	fflush(stdout);
}

static void text_line(const char *label, const cow_share_figs *f, int frames)
{
	char a[32], b[32], c[32], d[32];
	printf("  %-8s %10s %10s %10s %10s", label, sz(a, sizeof(a), (double)f->rss),
	       sz(b, sizeof(b), (double)f->shared), sz(c, sizeof(c), (double)f->private_clean),
	       sz(d, sizeof(d), (double)f->private_dirty));
	if (frames)
		printf(" %10s %10s %10s", sz(a, sizeof(a), (double)f->pages_all * PAGE),
		       sz(b, sizeof(b), (double)f->pages_some * PAGE),
		       sz(c, sizeof(c), (double)f->pages_none * PAGE));
	printf("\n");
}

static int cmp_dirty(const void *x, const void *y)
{
	const cow_share_map *a = *(const cow_share_map *const *)x;
	const cow_share_map *b = *(const cow_share_map *const *)y;
	return (a->figs.private_dirty < b->figs.private_dirty) -
	       (a->figs.private_dirty > b->figs.private_dirty);
}

static void print_maps(const cow_share_proc *p, int frames)
{
	const cow_share_map **v = calloc(p->nmaps ? p->nmaps : 1, sizeof(*v));
	if (!v)
		return;
	size_t n = 0;
	for (size_t i = 0; i < p->nmaps; i++)
		if (p->maps[i].figs.rss)
			v[n++] = &p->maps[i];
	qsort(v, n, sizeof(*v), cmp_dirty);
	for (size_t i = 0; i < n && i < 8; i++) {
		char label[48];
		snprintf(label, sizeof(label), "%llx", (unsigned long long)v[i]->start);
		text_line(label, &v[i]->figs, frames);
		printf("%12s%s %s %s\n", "", v[i]->perms, cow_share_kind_name(v[i]->kind),
		       v[i]->name[0] ? v[i]->name : "(anonymous)");
	}
	free(v);
}

static void print_text(const cow_share_report *r, const struct opts *o)
{
	int frames = cow_share_report_frames(r);
	size_t n = cow_share_report_count(r);
	printf("%zu process%s, %s (%.1f ms)\n", n, n == 1 ? "" : "es",
	       frames ? "pages matched by physical frame across the set" : cow_share_report_note(r),
	       (double)cow_share_report_elapsed_ns(r) / 1e6);
	if (cow_share_report_skipped(r))
		printf("%zu process(es) exited or denied access during the scan and are left out\n",
		       cow_share_report_skipped(r));
	printf("\n  %-8s %10s %10s %10s %10s", "kind", "resident", "shared", "priv.clean",
	       "priv.dirty");
	if (frames)
		printf(" %10s %10s %10s", "by all", "by some", "by none");
	printf("\n");
	for (size_t i = 0; i < n; i++) {
		const cow_share_proc *p = cow_share_report_proc(r, i);
		printf("pid %d (%s), parent %d\n", p->pid, p->comm, p->ppid);
		text_line("total", &p->total, frames);
		for (int k = 0; k < COW_SHARE_NKINDS; k++)
			if (p->kind[k].rss || p->kind[k].swap)
				text_line(cow_share_kind_name(k), &p->kind[k], frames);
		if (o->maps)
			print_maps(p, frames);
	}
	if (frames)
		printf("\nby all/some/none: resident pages whose physical frame every measured "
		       "process,\n"
		       "some of them (2 or more), or only this one maps. shared: mapped by any "
		       "other\n"
		       "process on the machine (smaps).\n");
}

static void print_rates(const cow_share_report *r, const struct rate *rates, double t)
{
	int frames = cow_share_report_frames(r);
	printf("t=%.1fs", t);
	for (size_t i = 0; i < cow_share_report_count(r); i++) {
		const cow_share_proc *p = cow_share_report_proc(r, i);
		char a[32];
		printf("  %d: dirty %s", p->pid, sz(a, sizeof(a), (double)p->total.private_dirty));
		if (rates[i].known) {
			printf(" (%+.2f MiB/s", rates[i].dirty_per_s / 1048576.0);
			if (frames)
				printf(", alone %+.2f MiB/s",
				       rates[i].none_per_s * PAGE / 1048576.0);
			printf(")");
		}
	}
	printf("\n");
	fflush(stdout);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Which named PID fails like @rc? Probed one by one after the fact; 0 if none does now. */
static int culprit(int rc, const struct opts *o)
{
	for (size_t i = 0; i < o->npids; i++) {
		uint64_t v;
		int prc = cow_share_private_dirty(o->pids[i], &v);
		bool denied = rc == COW_EACCES || rc == COW_EPERM;
		if (prc == rc || (denied && (prc == COW_EACCES || prc == COW_EPERM)))
			return o->pids[i];
	}
	return 0;
}

static int measure_fail(int rc, const struct opts *o)
{
	int pid = culprit(rc, o);
	char who[48] = "a named process";
	if (pid)
		snprintf(who, sizeof(who), "process %d", pid);
	if (rc == COW_ESRCH) {
		fprintf(stderr, "cow share: %s does not exist (or exited during the scan)\n", who);
		return EXIT_NOTFOUND;
	}
	if (rc == COW_EACCES || rc == COW_EPERM) {
		fprintf(stderr,
			"cow share: not permitted to read the memory maps of %s (it belongs to "
			"another user, or reading it needs CAP_SYS_PTRACE)\n",
			who);
		return EXIT_FAIL;
	}
	return cli_fail(rc, "share");
}

static int watch(struct opts *o)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct rate *prev = NULL, *cur = NULL;
	size_t nprev = 0;
	struct timespec ts0;
	clock_gettime(CLOCK_MONOTONIC, &ts0);
	double tprev = 0;
	int ret = EXIT_OK;
	for (long round = 0; !stop && (o->count == 0 || round < o->count); round++) {
		if (round) {
			struct timespec d = {(time_t)o->watch,
					     (long)((o->watch - (double)(time_t)o->watch) * 1e9)};
			while (nanosleep(&d, &d) != 0 && errno == EINTR && !stop)
				;
			if (stop)
				break;
		}
		cow_share_report *r;
		unsigned flags = o->flags | (round ? COW_SHARE_SKIP_GONE : 0);
		int rc = cow_share_measure(o->pids, o->npids, flags, &r);
		if (rc) {
			ret = round ? EXIT_OK : measure_fail(rc, o);
			break;
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double t = (double)(now.tv_sec - ts0.tv_sec) +
			   (double)(now.tv_nsec - ts0.tv_nsec) / 1e9;
		size_t n = cow_share_report_count(r);
		cur = calloc(n ? n : 1, sizeof(*cur));
		if (!cur) {
			cow_share_report_destroy(r);
			ret = cli_fail(COW_ENOMEM, "share");
			break;
		}
		for (size_t i = 0; i < n; i++) {
			const cow_share_proc *p = cow_share_report_proc(r, i);
			cur[i].pid = p->pid;
			/* Stash the absolute figures; turned into rates below. */
			cur[i].dirty_per_s = (double)p->total.private_dirty;
			cur[i].none_per_s = (double)p->total.pages_none;
		}
		struct rate *show = calloc(n ? n : 1, sizeof(*show));
		for (size_t i = 0; show && i < n; i++) {
			show[i] = cur[i];
			show[i].known = false;
			for (size_t j = 0; j < nprev; j++)
				if (prev[j].pid == cur[i].pid && t > tprev) {
					show[i].dirty_per_s =
						(cur[i].dirty_per_s - prev[j].dirty_per_s) /
						(t - tprev);
					show[i].none_per_s =
						(cur[i].none_per_s - prev[j].none_per_s) /
						(t - tprev);
					show[i].known = true;
				}
		}
		if (o->json)
			print_json(r, o, t, show);
		else if (show)
			print_rates(r, show, t);
		free(show);
		free(prev);
		prev = cur;
		nprev = n;
		tprev = t;
		cow_share_report_destroy(r);
		if (n == 0)
			break; /* the whole family is gone */
	}
	free(prev);
	return ret;
}

int cmd_share(const struct cli_args *a)
{
	struct opts o;
	memset(&o, 0, sizeof(o));
	int ret;
	o.pids = calloc((size_t)a->argc, sizeof(*o.pids));
	if (!o.pids)
		return cli_fail(COW_ENOMEM, "share");
	if (cli_flag(a, "children"))
		o.flags |= COW_SHARE_CHILDREN;
	if (cli_flag(a, "smaps-only"))
		o.flags |= COW_SHARE_SMAPS_ONLY;
	o.json = cli_flag(a, "json");
	o.maps = cli_flag(a, "maps");
	o.watch = (double)cli_num(a, "watch", 0) / 1e9;
	o.count = (long)cli_num(a, "count", 0);
	for (int i = 0; i < a->argc; i++) {
		uint64_t pid;
		if (cli_num_parse(a->argv[i], CLI_NUM_COUNT, INT_MAX, &pid) != CLI_NUM_OK ||
		    pid == 0) {
			ret = cli_usage("share", "'%s' is not a PID", a->argv[i]);
			goto out;
		}
		o.pids[o.npids++] = (int)pid;
	}
	if (o.count && o.watch == 0) {
		ret = cli_usage("share", "--count needs --watch");
		goto out;
	}
	if (o.watch > 0) {
		ret = watch(&o);
		goto out;
	}
	cow_share_report *r;
	int rc = cow_share_measure(o.pids, o.npids, o.flags, &r);
	if (rc) {
		ret = measure_fail(rc, &o);
		goto out;
	}
	if (o.json)
		print_json(r, &o, 0, NULL);
	else
		print_text(r, &o);
	cow_share_report_destroy(r);
	ret = EXIT_OK;
out:
	free(o.pids);
	return ret;
}
