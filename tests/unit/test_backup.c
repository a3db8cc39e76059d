/*
 * Hot backup (cow_store_backup): the copy is a store at one generation with
 * every object, snapshot and clone and their sharing (compacted on request); it is taken while a
 * writer in another process commits; damage fails it and leaves nothing;
 * a kill at any moment leaves DEST absent or complete; the source is not
 * changed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"

#define VOL_SIZE (4u << 20) /* 1024 blocks */
#define NCLONES	 100

static uint64_t seed;

static cow_store *open_store(const char *path, unsigned flags)
{
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){flags}, &s));
	return s;
}

static void fill(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = check_rand(&seed);
		memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
	}
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Temporary files of a backup to @dest left in its directory. */
static int leftovers(const char *dest)
{
	const char *base = strrchr(dest, '/') + 1;
	char dir[512];
	snprintf(dir, sizeof(dir), "%.*s", (int)(base - dest), dest);
	DIR *d = opendir(dir);
	CHECK(d);
	int n = 0;
	char prefix[300];
	snprintf(prefix, sizeof(prefix), "%s.tmp-", base);
	for (struct dirent *e; (e = readdir(d));)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			char p[1024];
			snprintf(p, sizeof(p), "%s%s", dir, e->d_name);
			CHECK_EQ(unlink(p), 0);
			n++;
		}
	closedir(d);
	return n;
}

/* ---- comparing two stores, object by object ---- */

struct names {
	char name[NCLONES + 32][2 * COW_NAME_MAX + 2];
	char type[NCLONES + 32][8];
	uint64_t count[NCLONES + 32];
	int n;
};

static int add_name(void *ctx, const char *name, const char *type, uint64_t count)
{
	struct names *l = ctx;
	CHECK_LT(l->n, NCLONES + 32);
	snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
	snprintf(l->type[l->n], sizeof(l->type[0]), "%s", type);
	l->count[l->n++] = count;
	return 0;
}

static void same_map(cow_txn *ta, cow_txn *tb, const char *name)
{
	cow_map *a, *b;
	CHECK_OK(cow_map_open(ta, name, &a));
	CHECK_OK(cow_map_open(tb, name, &b));
	CHECK_EQ(cow_map_count(a), cow_map_count(b));
	cow_cursor *ca, *cb;
	CHECK_OK(cow_cursor_open(a, &ca));
	CHECK_OK(cow_cursor_open(b, &cb));
	int ra = cow_cursor_first(ca), rb = cow_cursor_first(cb);
	for (; ra == 0 && rb == 0; ra = cow_cursor_next(ca), rb = cow_cursor_next(cb)) {
		cow_buf ka, va, kb, vb;
		CHECK_OK(cow_cursor_get(ca, &ka, &va));
		CHECK_OK(cow_cursor_get(cb, &kb, &vb));
		CHECK_EQ(ka.len, kb.len);
		CHECK_MEMEQ(ka.data, kb.data, ka.len);
		CHECK_EQ(va.len, vb.len);
		CHECK_MEMEQ(va.data, vb.data, va.len);
	}
	CHECK_RC(ra, COW_ENOTFOUND);
	CHECK_RC(rb, COW_ENOTFOUND);
}

static void same_vol(cow_txn *ta, cow_txn *tb, const char *name)
{
	cow_vol *a, *b;
	CHECK_OK(cow_vol_open(ta, name, &a));
	CHECK_OK(cow_vol_open(tb, name, &b));
	uint64_t size = cow_vol_size(a);
	CHECK_EQ(size, cow_vol_size(b));
	static uint8_t ba[1 << 20], bb[1 << 20];
	for (uint64_t off = 0; off < size; off += sizeof(ba)) {
		size_t n = size - off < sizeof(ba) ? (size_t)(size - off) : sizeof(ba);
		CHECK_OK(cow_vol_pread(a, ba, n, off));
		CHECK_OK(cow_vol_pread(b, bb, n, off));
		if (memcmp(ba, bb, n) != 0)
			CHECK_MEMEQ(ba, bb, n);
	}
}

/*
 * Every object and snapshot of @a's newest generation reads back the same
 * from @b, which is at the same generation unless @any_gen.
 */
static void same_stores(cow_store *a, cow_store *b, bool any_gen)
{
	static struct names la, lb;
	la.n = lb.n = 0;
	cow_txn *ta, *tb;
	CHECK_OK(cow_txn_begin(a, COW_TXN_RDONLY, &ta));
	CHECK_OK(cow_txn_begin(b, COW_TXN_RDONLY, &tb));
	if (!any_gen)
		CHECK_EQ(cow_txn_gen(ta), cow_txn_gen(tb));
	CHECK_OK(cow_store_list(ta, add_name, &la));
	CHECK_OK(cow_store_list(tb, add_name, &lb));
	CHECK_EQ(la.n, lb.n);
	for (int i = 0; i < la.n; i++) {
		CHECK_STREQ(la.name[i], lb.name[i]);
		CHECK_STREQ(la.type[i], lb.type[i]);
		CHECK_EQ(la.count[i], lb.count[i]);
		cow_obj_stats sa, sb;
		CHECK_OK(cow_obj_stat(ta, la.name[i], 0, &sa));
		CHECK_OK(cow_obj_stat(tb, la.name[i], 0, &sb));
		CHECK_STREQ(sa.origin, sb.origin);
		CHECK_EQ(sa.referenced, sb.referenced);
		if (strcmp(la.type[i], "map") == 0)
			same_map(ta, tb, la.name[i]);
		else
			same_vol(ta, tb, la.name[i]);
	}
	cow_txn_abort(ta);
	cow_txn_abort(tb);
}

static void check_copy(const char *path)
{
	cow_store *d = open_store(path, COW_STORE_RDONLY);
	CHECK_OK(cow__store_check(d));
	cow_fsck_report r;
	CHECK_OK(cow_store_fsck(d, 0, NULL, NULL, &r, NULL, NULL));
	CHECK_EQ(r.problems, 0);
	cow_store_close(d);
}

/* ---- a store with maps, volumes, snapshots and 100 clones ---- */

static uint64_t progress_calls, progress_done;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	CHECK_LE(done, total);
	progress_calls++;
	progress_done = done;
}

static void test_shared(void)
{
	const char *src = check_path("src.cow"), *dest = check_path("copy.cow");
	cow_store *s = open_store(src, COW_STORE_CREATE);
	static uint8_t data[VOL_SIZE];
	fill(data, sizeof(data));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "users"));
	cow_map *m;
	CHECK_OK(cow_map_open(t, "users", &m));
	for (int i = 0; i < 2000; i++) {
		char k[32], v[3000];
		int kl = snprintf(k, sizeof(k), "user%05d", i);
		size_t vl = i % 50 == 0 ? sizeof(v) : 20; /* some values in extents */
		memset(v, 'a' + i % 26, vl);
		CHECK_OK(cow_map_put(m, k, (size_t)kl, v, vl));
	}
	CHECK_OK(cow_vol_create(t, "disk", VOL_SIZE));
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, "disk", &v));
	CHECK_OK(cow_vol_pwrite(v, data, sizeof(data), 0));
	CHECK_OK(cow_vol_create(t, "sparse", 1ull << 30));
	CHECK_OK(cow_vol_open(t, "sparse", &v));
	CHECK_OK(cow_vol_pwrite(v, data, 8192, 512u << 20));
	CHECK_OK(cow_txn_commit(t));

	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_snapshot(t, "@base"));
	for (int i = 0; i < NCLONES; i++) {
		char name[32];
		snprintf(name, sizeof(name), "disk-%03d", i);
		CHECK_OK(cow_clone(t, "disk@base", name));
	}
	CHECK_OK(cow_txn_commit(t));
	/* Some clones and the origin diverge a little; a clone gets a snapshot. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	for (int i = 0; i < NCLONES; i += 10) {
		char name[32];
		snprintf(name, sizeof(name), "disk-%03d", i);
		CHECK_OK(cow_vol_open(t, name, &v));
		CHECK_OK(cow_vol_pwrite(v, name, strlen(name), (uint64_t)i * 4096));
	}
	CHECK_OK(cow_snapshot(t, "disk-010@mine"));
	CHECK_OK(cow_map_open(t, "users", &m));
	CHECK_OK(cow_map_del(m, "user00001", 9));
	CHECK_OK(cow_vol_open(t, "disk", &v));
	CHECK_OK(cow_vol_punch(v, 0, 65536));
	CHECK_OK(cow_txn_commit(t));

	cow_store_stats before;
	CHECK_OK(cow_store_stat(s, &before));
	CHECK_OK(cow_store_backup(s, dest, 0, on_progress, NULL));
	CHECK_GT(progress_calls, 0);
	struct stat st, sst;
	CHECK_EQ(stat(dest, &st), 0);
	CHECK_EQ(stat(src, &sst), 0);
	uint64_t on_disk = (uint64_t)st.st_blocks * 512;
	printf("backup: %llu blocks copied; source file %llu bytes, copy %llu bytes apparent, "
	       "%llu on disk (one volume %u)\n",
	       (unsigned long long)progress_done, (unsigned long long)sst.st_size,
	       (unsigned long long)st.st_size, (unsigned long long)on_disk, VOL_SIZE);
	/* 100 clones of a 4 MiB volume: one copy of it, plus a little. */
	CHECK_LT(on_disk, 2ull * VOL_SIZE + (1u << 20));
	CHECK_LE(progress_done * 4096, on_disk + 4096);
	CHECK_EQ(st.st_mode & 0777, sst.st_mode & 0777);
	CHECK_EQ(leftovers(dest), 0);

	check_copy(dest);
	cow_store *d = open_store(dest, COW_STORE_RDONLY);
	same_stores(s, d, false);
	cow_store_close(d);

	/*
	 * A compacted copy: the same contents and sharing, in a file about the
	 * size of the live data (a 1 GiB sparse volume holds 8 KiB).
	 */
	const char *dense = check_path("dense.cow");
	CHECK_OK(cow_store_backup(s, dense, COW_BACKUP_COMPACT, NULL, NULL));
	check_copy(dense);
	d = open_store(dense, COW_STORE_RDONLY);
	same_stores(s, d, true);
	cow_store_stats ds;
	CHECK_OK(cow_store_stat(d, &ds));
	cow_store_close(d);
	struct stat dst;
	CHECK_EQ(stat(dense, &dst), 0);
	printf("compacted backup: file %llu bytes, %llu live\n", (unsigned long long)dst.st_size,
	       (unsigned long long)ds.used_bytes);
	CHECK_LE((uint64_t)dst.st_size, ds.used_bytes + ds.used_bytes / 10 + (1u << 20));
	CHECK_LT(ds.used_bytes, 2ull * VOL_SIZE + (1u << 20));
	CHECK_EQ(leftovers(dense), 0);

	/* The copy is a store a writer can use. */
	d = open_store(dest, 0);
	CHECK_OK(cow_txn_begin(d, 0, &t));
	CHECK_OK(cow_vol_open(t, "disk-050", &v));
	CHECK_OK(cow_vol_pwrite(v, "new", 3, 0));
	CHECK_OK(cow_destroy(t, "disk-099", 0));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow__store_check(d));
	cow_store_close(d);

	/* Refusals: an existing DEST, bad arguments. */
	CHECK_RC(cow_store_backup(s, dest, 0, NULL, NULL), COW_EEXIST);
	CHECK_RC(cow_store_backup(s, src, 0, NULL, NULL), COW_EEXIST);
	const char *other = check_path("other.cow");
	CHECK_RC(cow_store_backup(s, other, 1u << 7, NULL, NULL), COW_EINVAL);
	CHECK_RC(cow_store_backup(s, "", 0, NULL, NULL), COW_EINVAL);
	CHECK_RC(cow_store_backup(NULL, other, 0, NULL, NULL), COW_EINVAL);
	CHECK(!exists(other));
	CHECK_RC(cow_store_backup(s, check_path("nodir/x.cow"), 0, NULL, NULL), COW_ENOENT);

	/* The source is untouched: same generation, clean. */
	cow_store_stats after;
	CHECK_OK(cow_store_stat(s, &after));
	CHECK_EQ(after.gen, before.gen);
	CHECK_OK(cow_store_fsck(s, 0, NULL, NULL, NULL, NULL, NULL));
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
}

/* ---- a writer in another process commits throughout ---- */

static void writer_child(const char *path, int ready)
{
	cow_store *s = open_store(path, 0);
	for (uint64_t i = 1;; i++) {
		cow_txn *t;
		CHECK_OK(cow_txn_begin(s, 0, &t));
		cow_map *m;
		CHECK_OK(cow_map_open(t, "ctr", &m));
		char k[32];
		int kl = snprintf(k, sizeof(k), "k%08llu", (unsigned long long)i);
		CHECK_OK(cow_map_put(m, "n", 1, &i, sizeof(i)));
		CHECK_OK(cow_map_put(m, k, (size_t)kl, &i, sizeof(i)));
		if (i > 1) { /* churn: the writer frees and reuses blocks */
			kl = snprintf(k, sizeof(k), "k%08llu", (unsigned long long)(i - 1));
			uint64_t twice = 2 * (i - 1);
			CHECK_OK(cow_map_put(m, k, (size_t)kl, &twice, sizeof(twice)));
		}
		CHECK_OK(cow_txn_commit(t));
		if (i == 50 && write(ready, "x", 1) != 1)
			_exit(3);
	}
}

/* The copy holds exactly one generation: the counter agrees with every key. */
static uint64_t check_consistent(const char *path)
{
	check_copy(path);
	cow_store *d = open_store(path, COW_STORE_RDONLY);
	cow_txn *t;
	CHECK_OK(cow_txn_begin(d, COW_TXN_RDONLY, &t));
	cow_map *m;
	CHECK_OK(cow_map_open(t, "ctr", &m));
	cow_buf b;
	CHECK_OK(cow_map_get(m, "n", 1, &b));
	uint64_t n;
	CHECK_EQ(b.len, sizeof(n));
	memcpy(&n, b.data, sizeof(n));
	CHECK_EQ(cow_map_count(m), n + 1);
	for (uint64_t i = 1; i <= n; i++) {
		char k[32];
		int kl = snprintf(k, sizeof(k), "k%08llu", (unsigned long long)i);
		CHECK_OK(cow_map_get(m, k, (size_t)kl, &b));
		uint64_t want = i == n ? i : 2 * i, have;
		memcpy(&have, b.data, sizeof(have));
		CHECK_EQ(have, want);
	}
	cow_txn_abort(t);
	cow_store_close(d);
	return n;
}

static void test_live_writer(void)
{
	const char *src = check_path("live.cow");
	cow_store *s = open_store(src, COW_STORE_CREATE);
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "ctr"));
	/* Bulk, so that a backup takes long enough for commits to land during it. */
	static uint8_t data[VOL_SIZE];
	fill(data, sizeof(data));
	CHECK_OK(cow_vol_create(t, "bulk", sizeof(data)));
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, "bulk", &v));
	CHECK_OK(cow_vol_pwrite(v, data, sizeof(data), 0));
	CHECK_OK(cow_txn_commit(t));
	int p[2];
	CHECK_EQ(pipe(p), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		writer_child(src, p[1]);
		_exit(0);
	}
	close(p[1]);
	char c;
	CHECK_EQ(read(p[0], &c, 1), 1);
	uint64_t last = 0;
	int overlapped = 0;
	for (int i = 0; i < 6; i++) {
		char name[32];
		snprintf(name, sizeof(name), "live-%d.cow", i);
		const char *dest = check_path(name);
		CHECK_OK(cow_store_backup(s, dest, 0, NULL, NULL));
		cow_store_stats now;
		CHECK_OK(cow_store_stat(s, &now));
		uint64_t n = check_consistent(dest);
		CHECK_GE(n, 50);
		CHECK_GE(n, last);
		last = n;
		cow_store *d = open_store(dest, COW_STORE_RDONLY);
		cow_store_stats copied;
		CHECK_OK(cow_store_stat(d, &copied));
		cow_store_close(d);
		overlapped += now.gen > copied.gen; /* the writer committed during the backup */
	}
	CHECK_GT(overlapped, 0);
	CHECK_EQ(kill(pid, SIGKILL), 0);
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status)); /* the writer was still going: it never failed */
	close(p[0]);
	printf("live writer: last backup at counter %llu; %d of 6 backups overlapped commits\n",
	       (unsigned long long)last, overlapped);
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
}

/* ---- damage in the source: COW_ECORRUPT, naming the block, no DEST ---- */

static char logged[4096];

static void on_log(void *ctx, int level, const char *msg)
{
	(void)ctx, (void)level;
	size_t n = strlen(logged);
	snprintf(logged + n, sizeof(logged) - n, "%s\n", msg);
}

static void test_damage(void)
{
	const char *src = check_path("bad.cow"), *dest = check_path("bad-copy.cow");
	cow_store *s = open_store(src, COW_STORE_CREATE);
	static uint8_t data[64 * 4096];
	fill(data, sizeof(data));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_vol_create(t, "v", sizeof(data)));
	cow_vol *v;
	CHECK_OK(cow_vol_open(t, "v", &v));
	CHECK_OK(cow_vol_pwrite(v, data, sizeof(data), 0));
	CHECK_OK(cow_txn_commit(t));
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_vol_open(t, "v", &v));
	uint64_t addr = ((struct cow_map *)(void *)v)->tree.root.addr;
	cow_txn_abort(t);
	cow_store_close(s);
	CHECK_GT(addr, 1);

	/* Flip one bit of the volume's root node. */
	int fd = open(src, O_RDWR);
	CHECK(fd >= 0);
	uint8_t byte;
	CHECK_EQ(pread(fd, &byte, 1, (off_t)(addr * 4096 + 200)), 1);
	byte ^= 0x10;
	CHECK_EQ(pwrite(fd, &byte, 1, (off_t)(addr * 4096 + 200)), 1);
	close(fd);

	s = open_store(src, COW_STORE_RDONLY); /* it opens: the damage is in an old block */
	logged[0] = 0;
	cow_set_log(on_log, NULL);
	CHECK_RC(cow_store_backup(s, dest, 0, NULL, NULL), COW_ECORRUPT);
	cow_set_log(NULL, NULL);
	char want[32];
	snprintf(want, sizeof(want), "%llu", (unsigned long long)addr);
	if (!strstr(logged, want))
		check__fail(__FILE__, __LINE__, "block %s not named in the log: %s", want, logged);
	CHECK(!exists(dest));
	CHECK_EQ(leftovers(dest), 0);
	cow_store_close(s);
}

/* ---- kill -9 at random moments: DEST absent or complete ---- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_kill(void)
{
	const char *src = check_path("src.cow"), *dest = check_path("killed.cow");
	cow_store *s = open_store(src, COW_STORE_RDONLY);
	double t0 = now();
	CHECK_OK(cow_store_backup(s, dest, 0, NULL, NULL));
	double took = now() - t0;
	CHECK_EQ(unlink(dest), 0);
	int absent = 0, complete = 0, temps = 0;
	for (int i = 0; i < 40; i++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			int rc = cow_store_backup(s, dest, 0, NULL, NULL);
			_exit(rc == 0 ? 0 : 1);
		}
		/* Between the start and a little after a whole backup. */
		useconds_t us =
			(useconds_t)((double)(check_rand(&seed) % 1000) / 1000.0 * took * 1.3e6);
		usleep(us);
		kill(pid, SIGKILL);
		int status;
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
		if (exists(dest)) {
			check_copy(dest);
			CHECK_EQ(unlink(dest), 0);
			complete++;
		} else {
			absent++;
		}
		temps += leftovers(dest);
	}
	printf("kill: one backup %.1f ms; %d complete, %d absent, %d temporary files left\n",
	       took * 1e3, complete, absent, temps);
	cow_store_close(s);
}

int main(void)
{
	seed = check_seed();
	check_tmpdir();
	test_shared();
	test_live_writer();
	test_damage();
	test_kill();
	return 0;
}
