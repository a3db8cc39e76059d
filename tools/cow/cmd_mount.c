/*
 * cow fs create, cow mount, cow umount: a file-system object (cow/fs.h)
 * served through FUSE's low-level API (libfuse3), so the kernel asks by
 * inode number and no path is ever built (docs/fs.md).
 *
 * One write transaction at a time holds the changes, begun at the first
 * change after a commit: a commit happens when fsync, fdatasync or
 * fsyncdir asks (and returns only once durable), and otherwise once the
 * oldest change is --commit milliseconds old or 64 MiB have been written.
 * The store is free for other writers (a `cow snapshot` from the shell)
 * between commits.
 *
 * Readers do not wait for the writer. A read of an inode the open write
 * transaction has not changed (the set of changed inodes is kept beside it
 * and emptied by each commit) is served from the newest commit, in a read
 * transaction of its own, without the mutex that orders the changes: it
 * waits neither for a change nor for a commit, nor for another writer of
 * the store. Only a read of an inode changed since the last commit goes
 * through the write transaction, in turn with the changes.
 *
 * Snapshots of the tree appear read-only under DIR/.snapshots/NAME: FUSE
 * inode numbers carry the version in their top 16 bits (0: the live tree,
 * N: the N-th snapshot looked up, 0xffff: the .snapshots directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cow/fs.h"

int cmd_fs_create(const struct cli_args *a)
{
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin(a->cmd->name, true, &s, &t);
	if (ex)
		return ex;
	mode_t um = umask(0);
	umask(um);
	cow_fs_attr root = {
		.mode = 0777 & ~um, .uid = (uint32_t)getuid(), .gid = (uint32_t)getgid()};
	return cli_end(s, t, cow_fs_create(t, a->argv[0], &root), "fs create", a->argv[0]);
}

/*
 * The byte of the data file a writable mount of fs @name locks (an
 * open-file-description lock, far above the bytes the store locks,
 * docs/FORMAT.md section 8), held by the daemon until it has made its last
 * commit and closed the store.
 */
static struct flock mount_lock(const char *name, short type)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return (struct flock){.l_type = type,
			      .l_whence = SEEK_SET,
			      .l_start = (off_t)((UINT64_C(1) << 61) + (h >> 24)),
			      .l_len = 1};
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * Split STORE:NAME at the last ':' that has a regular file on its left
 * (names may hold ':', and so may paths): @store and @name get the parts.
 */
static bool split_target(const char *arg, char *store, size_t scap, char *name, size_t ncap)
{
	for (size_t i = strlen(arg); i-- > 0;) {
		if (arg[i] != ':' || i >= scap)
			continue;
		memcpy(store, arg, i);
		store[i] = 0;
		if (is_file(store)) {
			if (!arg[i + 1] || strlen(arg + i + 1) >= ncap)
				return false;
			snprintf(name, ncap, "%s", arg + i + 1);
			return true;
		}
	}
	return false;
}

/* Undo mountinfo's octal escapes (\040 and the like) in place. */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

/*
 * The source ("STORE:NAME", as cow mount names it) of the writable cow
 * mount at @mp, if it is one.
 */
static bool mount_source(const char *mp, char *src, size_t cap)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char *line = NULL;
	size_t len = 0;
	bool found = false;
	while (!found && getline(&line, &len, f) > 0) {
		/* id parent dev root MOUNTPOINT options ... - FSTYPE SOURCE options */
		char *dash = strstr(line, " - "), *save = NULL;
		if (!dash)
			continue;
		*dash = 0;
		char *tok = strtok_r(line, " ", &save);
		for (int i = 0; tok && i < 4; i++)
			tok = strtok_r(NULL, " ", &save);
		char *mopts = tok ? strtok_r(NULL, " ", &save) : NULL;
		if (!mopts)
			continue;
		unescape(tok);
		/* A read-only mount holds no lock: nothing to wait for. */
		if (strcmp(tok, mp) != 0 || strncmp(mopts, "ro", 2) == 0)
			continue;
		/* The source may hold spaces (FUSE's is shown as given): up to the last one. */
		char *type = dash + 3, *source = strchr(type, ' '), *opts;
		if (!source || !(opts = strrchr(source + 1, ' ')))
			continue;
		*source++ = 0;
		*opts = 0;
		if (strcmp(type, "fuse.cow") == 0) {
			unescape(source);
			found = strlen(source) < cap;
			if (found)
				snprintf(src, cap, "%s", source);
		}
	}
	free(line);
	fclose(f);
	return found;
}

/*
 * Wait until no process holds fs @name's mount lock in @store: the daemon
 * has made its last commit and let go. False if it still holds it after
 * @secs seconds.
 */
static bool wait_released(const char *store, const char *name, int secs)
{
	int fd = open(store, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* gone or unreadable: nothing to wait for that we can see */
	bool free_ = false;
	for (int i = 0; i < secs * 100 && !free_; i++) {
		struct flock fl = mount_lock(name, F_WRLCK);
		free_ = fcntl(fd, F_OFD_GETLK, &fl) != 0 || fl.l_type == F_UNLCK;
		if (!free_)
			usleep(10000);
	}
	close(fd);
	return free_;
}

/*
 * Unmount, then wait for the daemon: it commits what the kernel handed it
 * before the unmount, so when cow umount returns the fs's last changes are
 * committed and the store is free, as after a umount of a disk file system.
 */
int cmd_umount(const struct cli_args *a)
{
	const char *dir = a->argv[0];
	char mp[PATH_MAX], src[2 * PATH_MAX], store[PATH_MAX], name[2 * COW_NAME_MAX + 2];
	bool ours = realpath(dir, mp) && mount_source(mp, src, sizeof(src)) &&
		    split_target(src, store, sizeof(store), name, sizeof(name));
	pid_t pid = fork();
	if (pid < 0)
		return cli_fail(-errno, "umount %s", dir);
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", dir, (char *)NULL);
		execlp("umount", "umount", dir, (char *)NULL);
		fprintf(stderr, "cow: umount %s: neither fusermount3 nor umount ran: %s\n", dir,
			strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return EXIT_FAIL;
	if (ours && !wait_released(store, name, 600)) {
		fprintf(stderr,
			"cow: umount %s: unmounted, but the daemon still holds '%s' after 10 "
			"minutes; its last commit is not done\n",
			dir, name);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

#ifndef COW_HAVE_FUSE

int cmd_mount(const struct cli_args *a)
{
	(void)a;
	fprintf(stderr, "cow: mount: this cow was built without libfuse3 (Debian: libfuse3-dev)\n");
	return EXIT_FAIL;
}

#else

#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

#define VSHIFT	  48
#define INO_MASK  ((UINT64_C(1) << VSHIFT) - 1)
#define SNAPDIR	  ((UINT64_C(0xffff) << VSHIFT) | 1)
#define MAXSNAPS  0xfffe
#define TIMEOUT	  1.0		       /* seconds the kernel may cache names and attributes */
#define BATCH_MAX (UINT64_C(64) << 20) /* bytes written that make a commit due */

struct snapv {
	char name[COW_NAME_MAX + 1];
};

struct opened {
	uint64_t ino;
	unsigned count;
	bool orphan; /* unlinked while open: freed at the last release */
};

static struct {
	cow_store *s;
	char name[2 * COW_NAME_MAX + 2]; /* NAME or NAME@SNAP */
	bool ro;			 /* a snapshot, or -o ro */
	unsigned interval_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	cow_txn *wt; /* the open write transaction, or NULL */
	cow_fs *wf;
	uint64_t dirty_ns;  /* when its first change was made */
	uint64_t txn_bytes; /* data it wrote, about: not yet in a commit's figures */
	bool due;	    /* commit now: BATCH_MAX bytes written */
	bool failed;	    /* a commit failed: read-only from then on */
	/*
	 * The generation of the live tree's root as our commits left it (at
	 * mount: as found), the one being committed (or 0), and whether
	 * anyone else changed the tree or changes were lost. keep_cache()
	 * reads them without M.mu: a reader never waits for the writer.
	 */
	_Atomic uint64_t own_gen, pending_gen;
	_Atomic bool foreign;
	bool stop;
	struct opened *open;
	size_t nopen, capopen;
	struct timespec start;
} M = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

#define LOCK()	 pthread_mutex_lock(&M.mu)
#define UNLOCK() pthread_mutex_unlock(&M.mu)

/*
 * What readers look at without M.mu: the inodes of the live tree changed
 * since the last commit, and the snapshots' names. D.mu is held only to
 * look or to change these, never across a tree operation.
 */
static struct {
	pthread_mutex_t mu;
	uint64_t *set; /* open addressing, 0 an empty slot (inode 0 is never one) */
	size_t cap, n;
	bool all; /* more than the set holds: every live inode counts as changed */
	struct snapv *snaps;
	size_t nsnaps;
} D = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define DIRTY_MAX (1u << 16) /* inodes tracked one by one before D.all */

static size_t dirty_slot(uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 20) & (D.cap - 1);
}

/* Inode @ino of the live tree is about to change (under M.mu, before the change). */
static void touch(uint64_t ino)
{
	pthread_mutex_lock(&D.mu);
	if (!D.all && D.n + 1 > D.cap / 2) {
		size_t cap = D.cap ? 2 * D.cap : 64;
		uint64_t *set = cap <= 2 * DIRTY_MAX ? calloc(cap, sizeof(*set)) : NULL;
		if (!set) {
			D.all = true; /* readers take the lock until the next commit */
		} else {
			uint64_t *old = D.set;
			size_t ocap = D.cap;
			D.set = set;
			D.cap = cap;
			for (size_t i = 0; i < ocap; i++)
				if (old[i]) {
					size_t j = dirty_slot(old[i]);
					while (D.set[j])
						j = (j + 1) & (D.cap - 1);
					D.set[j] = old[i];
				}
			free(old);
		}
	}
	if (!D.all) {
		size_t j = dirty_slot(ino);
		while (D.set[j] && D.set[j] != ino)
			j = (j + 1) & (D.cap - 1);
		if (!D.set[j]) {
			D.set[j] = ino;
			D.n++;
		}
	}
	pthread_mutex_unlock(&D.mu);
}

static bool is_changed(uint64_t ino)
{
	pthread_mutex_lock(&D.mu);
	bool yes = D.all;
	if (!yes && D.n) {
		size_t j = dirty_slot(ino);
		while (D.set[j] && D.set[j] != ino)
			j = (j + 1) & (D.cap - 1);
		yes = D.set[j] == ino;
	}
	pthread_mutex_unlock(&D.mu);
	return yes;
}

/* The changes are committed (or lost): the newest commit is the truth for all. */
static void settled(void)
{
	pthread_mutex_lock(&D.mu);
	if (D.cap > 1024) { /* a big transaction's table would stay big */
		free(D.set);
		D.set = NULL;
		D.cap = 0;
	} else if (D.set) {
		memset(D.set, 0, D.cap * sizeof(*D.set));
	}
	D.n = 0;
	D.all = false;
	pthread_mutex_unlock(&D.mu);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void logmsg(const char *what, int rc)
{
	fprintf(stderr, "cow mount: %s: %s\n", what, cow_strerror(rc));
}

/* A cowkit code as the errno FUSE replies with. */
static int err_of(int rc)
{
	if (rc == 0)
		return 0;
	if (rc < 0 && rc > -1000) /* -errno; cowkit's own codes are below -1000 */
		return -rc;
	switch (rc) {
	case COW_ENOTFOUND:
		return ENOENT;
	case COW_EREADONLY:
		return EROFS;
	case COW_ETOOBIG:
		return EFBIG;
	case COW_ETYPE:
		return EINVAL;
	default:
		return EIO;
	}
}

/* ---- transactions (under M.mu) ---- */

/* Commit the open write transaction; durable when it returns 0. */
static int commit(void)
{
	if (!M.wt)
		return 0;
	/* The root this commit leaves: new if the tree changed, as it was if not. */
	cow_obj_stats st;
	uint64_t gen = cow_obj_stat(M.wt, M.name, 0, &st) == 0 ? st.changed : 0;
	M.pending_gen = gen;
	int rc = cow_txn_commit(M.wt);
	if (rc == 0 && gen)
		M.own_gen = gen;
	else
		M.foreign = true; /* the kernel may cache what is lost, or we cannot tell */
	M.pending_gen = 0;
	M.wt = NULL;
	M.wf = NULL;
	M.txn_bytes = 0;
	M.due = false;
	settled();
	if (rc) {
		logmsg("commit failed; changes since the last commit are lost, read-only from now "
		       "on",
		       rc);
		M.failed = true;
	}
	return rc;
}

/* The live tree for a change: the write transaction, begun if needed. */
static int live_write(cow_fs **f)
{
	if (M.ro || M.failed)
		return EROFS;
	if (!M.wt) {
		int rc = cow_txn_begin(M.s, 0, &M.wt);
		if (rc == 0 && (rc = cow_fs_open(M.wt, M.name, &M.wf))) {
			cow_txn_abort(M.wt);
			M.wt = NULL;
		}
		if (rc)
			return err_of(rc);
		cow_obj_stats st;
		if (cow_obj_stat(M.wt, M.name, 0, &st) != 0 || st.changed != M.own_gen)
			M.foreign = true; /* another process changed it since our last commit */
		M.dirty_ns = now_ns();
		pthread_cond_signal(&M.cv);
	}
	*f = M.wf;
	return 0;
}

/* The live tree for a change, and @ino's number there; snapshots are EROFS. */
static int tree_of(fuse_ino_t ino, cow_fs **f, uint64_t *real)
{
	*real = ino & INO_MASK;
	return (ino >> VSHIFT) ? EROFS : live_write(f);
}

/* ---- reads ---- */

/* A tree to read in: a transaction of the request's own, or the write one. */
struct rd {
	cow_txn *t;  /* ours, or NULL */
	bool locked; /* M.mu held: reading in the write transaction */
};

/* Version @v's tree (0 the live one) in a read transaction on the newest commit. */
static int open_own(uint64_t v, struct rd *r, cow_fs **f)
{
	char name[sizeof(M.name) + COW_NAME_MAX + 2];
	if (v == 0) {
		snprintf(name, sizeof(name), "%s", M.name);
	} else {
		pthread_mutex_lock(&D.mu);
		bool known = v <= D.nsnaps;
		if (known)
			snprintf(name, sizeof(name), "%s@%s", M.name, D.snaps[v - 1].name);
		pthread_mutex_unlock(&D.mu);
		if (!known)
			return ENOENT;
	}
	int rc = cow_txn_begin(M.s, COW_TXN_RDONLY, &r->t);
	if (rc)
		return err_of(rc);
	if ((rc = cow_fs_open(r->t, name, f))) {
		cow_txn_abort(r->t);
		r->t = NULL;
		return v && (rc == COW_ENOTFOUND || rc == COW_ETYPE) ? ESTALE : err_of(rc);
	}
	return 0;
}

/*
 * The tree to read FUSE inode @ino in, and its number there: the newest
 * commit's, unless the open write transaction has changed it (then in
 * that, under M.mu; @changed: take it as changed). Checked before the read
 * transaction begins, so that a commit that settled @ino is in what it
 * sees. read_done() ends it.
 */
static int read_tree(fuse_ino_t ino, bool changed, struct rd *r, cow_fs **f, uint64_t *real)
{
	*r = (struct rd){0};
	*real = ino & INO_MASK;
	uint64_t v = ino >> VSHIFT;
	if (v == 0 && (changed || is_changed(*real))) {
		LOCK();
		if (M.wt) {
			r->locked = true;
			*f = M.wf;
			return 0;
		}
		UNLOCK(); /* committed meanwhile */
	}
	return open_own(v, r, f);
}

static void read_done(struct rd *r)
{
	if (r->locked)
		UNLOCK();
	else if (r->t)
		cow_txn_abort(r->t);
	*r = (struct rd){0};
}

/* A failed change may have left the transaction half done: it cannot commit. */
static int changed(int rc)
{
	if (rc == COW_ETXNERR) {
		cow_txn_abort(M.wt);
		M.wt = NULL;
		M.wf = NULL;
		M.txn_bytes = 0;
		M.failed = true;
		M.foreign = true;
		settled();
		logmsg("a change failed half-way; changes since the last commit are lost", rc);
	}
	return rc;
}

/*
 * Is there room for a change that adds about @bytes? A change that fails
 * half-way for want of space spoils the whole open transaction (its
 * changes since the last commit are lost), so changes that add data are
 * refused with ENOSPC unless the store has twice that plus a margin
 * free where it can write: free blocks its file already holds on disk
 * (those of the last commit, less what the open transaction wrote since),
 * or else the file system under it, with room for the next growth of the
 * file (an eighth of it, at most 1 GiB, reserved at once). Changes that
 * only remove (unlink, truncate, punch) are never refused: they are how a
 * full file system is emptied, and the margin is theirs.
 */
static int room(uint64_t bytes)
{
	struct statvfs sv;
	const char *path = cli_store_path();
	cow_store_stats st;
	if (!path || statvfs(path, &sv) != 0 || cow_store_stat(M.s, &st) != 0)
		return 0;
	/* The margin: 1/64 of the file system, between 1 and 32 MiB; the commit's nodes. */
	uint64_t size = (uint64_t)sv.f_blocks * sv.f_frsize, margin = size / 64;
	margin = margin < (UINT64_C(1) << 20) ? UINT64_C(1) << 20 : margin;
	margin = margin > (UINT64_C(32) << 20) ? UINT64_C(32) << 20 : margin;
	uint64_t want = 2 * bytes + M.txn_bytes / 16 + margin;
	uint64_t held = st.disk_bytes > st.used_bytes + st.pending_bytes
				? st.disk_bytes - st.used_bytes - st.pending_bytes
				: 0;
	held = held < st.free_bytes ? held : st.free_bytes;
	held = held > M.txn_bytes ? held - M.txn_bytes : 0;
	if (held >= want)
		return 0;
	uint64_t step =
		st.file_bytes / 8 < (UINT64_C(1) << 30) ? st.file_bytes / 8 : UINT64_C(1) << 30;
	return (uint64_t)sv.f_bavail * sv.f_frsize < want + step ? ENOSPC : 0;
}

/* ---- open files (the table under D.mu) ---- */

static struct opened *find_open(uint64_t ino)
{
	for (size_t i = 0; i < M.nopen; i++)
		if (M.open[i].ino == ino)
			return &M.open[i];
	return NULL;
}

static int open_ref(uint64_t ino)
{
	int rc = 0;
	pthread_mutex_lock(&D.mu);
	struct opened *o = find_open(ino);
	if (!o && M.nopen == M.capopen) {
		size_t cap = M.capopen ? 2 * M.capopen : 64;
		struct opened *n = realloc(M.open, cap * sizeof(*n));
		if (n) {
			M.open = n;
			M.capopen = cap;
		} else {
			rc = ENOMEM;
		}
	}
	if (rc == 0 && !o) {
		o = &M.open[M.nopen++];
		*o = (struct opened){ino, 0, false};
	}
	if (rc == 0)
		o->count++;
	pthread_mutex_unlock(&D.mu);
	return rc;
}

/* The last link of @ino went (under M.mu): free it now, or at its last release. */
static void orphaned(cow_fs *f, uint64_t ino)
{
	pthread_mutex_lock(&D.mu);
	struct opened *o = find_open(ino);
	if (o)
		o->orphan = true;
	pthread_mutex_unlock(&D.mu);
	if (!o) {
		touch(ino);
		changed(cow_fs_forget(f, ino));
	}
}

/* A release of @ino: at the last one, an orphan is freed (a change: under M.mu). */
static void open_unref(uint64_t ino)
{
	pthread_mutex_lock(&D.mu);
	struct opened *o = find_open(ino);
	bool orphan = false;
	if (o && --o->count == 0) {
		orphan = o->orphan;
		*o = M.open[--M.nopen];
	}
	pthread_mutex_unlock(&D.mu);
	if (!orphan)
		return;
	cow_fs *f;
	LOCK();
	if (live_write(&f) == 0) {
		touch(ino);
		changed(cow_fs_forget(f, ino));
	}
	UNLOCK();
}

/* ---- replies ---- */

static void to_stat(const cow_fs_attr *a, uint64_t version, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)((version << VSHIFT) | a->ino);
	st->st_mode = a->mode;
	st->st_nlink = (nlink_t)a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = (dev_t)a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)(a->blocks * 8);
	st->st_atim = (struct timespec){a->atime.sec, a->atime.nsec};
	st->st_mtim = (struct timespec){a->mtime.sec, a->mtime.nsec};
	st->st_ctim = (struct timespec){a->ctime.sec, a->ctime.nsec};
}

static void snapdir_stat(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = SNAPDIR;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_blksize = 4096;
	st->st_mtim = st->st_ctim = st->st_atim = M.start;
}

static void reply_entry(fuse_req_t req, const cow_fs_attr *a, uint64_t version)
{
	struct fuse_entry_param e = {.ino = (version << VSHIFT) | a->ino,
				     .attr_timeout = TIMEOUT,
				     .entry_timeout = TIMEOUT};
	to_stat(a, version, &e.attr);
	fuse_reply_entry(req, &e);
}

/* Reply @rc (a cowkit code or -errno; 0 is the caller's to reply) and unlock. */
static void fail(fuse_req_t req, int err)
{
	UNLOCK();
	fuse_reply_err(req, err);
}

/*
 * The start of a change to @ino: lock, find the live tree, and mark @ino
 * changed. On failure the request is answered and the lock let go: false.
 */
static bool enter(fuse_req_t req, fuse_ino_t ino, cow_fs **f, uint64_t *real)
{
	LOCK();
	int rc = tree_of(ino, f, real);
	if (rc)
		fail(req, rc); /* .snapshots and the snapshots in it are EROFS for a change */
	else
		touch(*real);
	return rc == 0;
}

/* ---- snapshots ---- */

/* Snapshot @snap's version if it has one (under D.mu). */
static bool find_snap(const char *snap, size_t n, uint64_t *v)
{
	for (size_t i = 0; i < D.nsnaps; i++)
		if (strlen(D.snaps[i].name) == n && memcmp(D.snaps[i].name, snap, n) == 0) {
			*v = i + 1;
			return true;
		}
	return false;
}

/* The version number of snapshot @snap of the mounted fs (given at its first lookup). */
static int snap_version(const char *snap, size_t n, uint64_t *v)
{
	if (n == 0 || n > COW_NAME_MAX || memchr(snap, '@', n) || memchr(snap, '/', n))
		return ENOENT;
	pthread_mutex_lock(&D.mu);
	bool known = find_snap(snap, n, v);
	pthread_mutex_unlock(&D.mu);
	if (known)
		return 0;
	char full[sizeof(M.name) + COW_NAME_MAX + 2];
	snprintf(full, sizeof(full), "%s@%.*s", M.name, (int)n, snap);
	cow_txn *t;
	cow_fs *f;
	int rc = cow_txn_begin(M.s, COW_TXN_RDONLY, &t);
	if (rc)
		return err_of(rc);
	rc = cow_fs_open(t, full, &f);
	cow_txn_abort(t);
	if (rc)
		return rc == COW_ENOTFOUND || rc == COW_EINVAL || rc == COW_ETYPE ? ENOENT
										  : err_of(rc);
	pthread_mutex_lock(&D.mu);
	if (!find_snap(snap, n, v)) { /* not given one meanwhile */
		struct snapv *ns =
			D.nsnaps < MAXSNAPS ? realloc(D.snaps, (D.nsnaps + 1) * sizeof(*ns)) : NULL;
		if (!ns) {
			rc = D.nsnaps < MAXSNAPS ? ENOMEM : EMFILE;
		} else {
			D.snaps = ns;
			memset(&D.snaps[D.nsnaps], 0, sizeof(*ns));
			memcpy(D.snaps[D.nsnaps].name, snap, n);
			*v = ++D.nsnaps;
		}
	}
	pthread_mutex_unlock(&D.mu);
	return rc;
}

/* ---- operations ---- */

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	conn->time_gran = 1;
	if (conn->capable & FUSE_CAP_WRITEBACK_CACHE)
		conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
}

static void op_destroy(void *ud)
{
	(void)ud;
	LOCK();
	commit();
	M.stop = true;
	pthread_cond_broadcast(&M.cv);
	UNLOCK();
}

static bool live_root_snapdir(fuse_ino_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && !strchr(M.name, '@') && strcmp(name, ".snapshots") == 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = {.attr_timeout = TIMEOUT, .entry_timeout = TIMEOUT};
	if (live_root_snapdir(parent, name)) {
		e.ino = SNAPDIR;
		snapdir_stat(&e.attr);
		fuse_reply_entry(req, &e);
		return;
	}
	cow_fs_attr a;
	uint64_t v = 0, real;
	cow_fs *f;
	struct rd r;
	int rc;
	if (parent == SNAPDIR) {
		if ((rc = snap_version(name, strlen(name), &v)) == 0 &&
		    (rc = read_tree((v << VSHIFT) | COW_FS_ROOT, false, &r, &f, &real)) == 0) {
			rc = err_of(cow_fs_getattr(f, real, &a));
			read_done(&r);
		}
	} else {
		v = parent >> VSHIFT;
		for (int pass = 0; pass < 2; pass++) {
			if ((rc = read_tree(parent, pass == 1, &r, &f, &real)))
				break;
			rc = err_of(cow_fs_lookup(f, real, name, strlen(name), &a));
			/* A settled directory may name a changed inode: ask where it changed. */
			bool again = rc == 0 && !r.locked && v == 0 && is_changed(a.ino);
			read_done(&r);
			if (!again)
				break;
		}
	}
	if (rc)
		fuse_reply_err(req, rc);
	else
		reply_entry(req, &a, v);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct stat st;
	if (ino == SNAPDIR) {
		snapdir_stat(&st);
		fuse_reply_attr(req, &st, TIMEOUT);
		return;
	}
	cow_fs *f;
	uint64_t real;
	cow_fs_attr a;
	struct rd r;
	int rc = read_tree(ino, false, &r, &f, &real);
	if (rc == 0) {
		rc = err_of(cow_fs_getattr(f, real, &a));
		read_done(&r);
	}
	if (rc) {
		fuse_reply_err(req, rc);
		return;
	}
	to_stat(&a, ino >> VSHIFT, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static cow_fs_time ts_of(const struct timespec *t)
{
	return (cow_fs_time){t->tv_sec, (uint32_t)t->tv_nsec};
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)fi;
	cow_fs *f;
	uint64_t real;
	if (!enter(req, ino, &f, &real))
		return;
	int rc;
	cow_fs_attr in = {.mode = attr->st_mode,
			  .uid = attr->st_uid,
			  .gid = attr->st_gid,
			  .size = (uint64_t)attr->st_size,
			  .atime = ts_of(&attr->st_atim),
			  .mtime = ts_of(&attr->st_mtim),
			  .ctime = ts_of(&attr->st_ctim)};
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	unsigned mask = 0;
	if (to_set & FUSE_SET_ATTR_MODE)
		mask |= COW_FS_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		mask |= COW_FS_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		mask |= COW_FS_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0)
			return fail(req, EINVAL);
		mask |= COW_FS_SET_SIZE;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		mask |= COW_FS_SET_ATIME;
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			in.atime = ts_of(&now);
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		mask |= COW_FS_SET_MTIME;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			in.mtime = ts_of(&now);
	}
	if (to_set & FUSE_SET_ATTR_CTIME)
		mask |= COW_FS_SET_CTIME;
	cow_fs_attr a;
	if ((rc = changed(cow_fs_setattr(f, real, &in, mask, &a))))
		return fail(req, err_of(rc));
	UNLOCK();
	struct stat st;
	to_stat(&a, 0, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	cow_fs *f;
	uint64_t real;
	char buf[COW_FS_LINK_MAX + 1];
	size_t len = 0;
	struct rd r;
	int rc = read_tree(ino, false, &r, &f, &real);
	if (rc == 0) {
		rc = err_of(cow_fs_readlink(f, real, buf, COW_FS_LINK_MAX, &len));
		read_done(&r);
	}
	if (rc) {
		fuse_reply_err(req, rc);
		return;
	}
	buf[len] = 0;
	fuse_reply_readlink(req, buf);
}

/* mknod, mkdir, symlink and link: a new name, replied as an entry. */
static void make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		 const char *target, fuse_ino_t linked, struct fuse_file_info *fi)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	LOCK();
	cow_fs *f;
	uint64_t real;
	int rc = tree_of(parent, &f, &real);
	if (rc || (rc = room(4096)))
		return fail(req, rc);
	touch(real);
	if (linked && !(linked >> VSHIFT))
		touch(linked & INO_MASK);
	cow_fs_attr a;
	size_t n = strlen(name);
	if (live_root_snapdir(parent, name))
		rc = -EEXIST;
	else if (target)
		rc = cow_fs_symlink(f, real, name, n, target, strlen(target), c->uid, c->gid, &a);
	else if (linked)
		rc = (linked >> VSHIFT) ? -EXDEV
					: cow_fs_link(f, linked & INO_MASK, real, name, n, &a);
	else
		rc = cow_fs_mknod(
			f, real, name, n,
			&(cow_fs_attr){.mode = mode, .uid = c->uid, .gid = c->gid, .rdev = rdev},
			&a);
	if ((rc = changed(rc)))
		return fail(req, err_of(rc));
	touch(a.ino); /* new: not in the newest commit */
	if (fi && (rc = open_ref(a.ino)))
		return fail(req, rc);
	UNLOCK();
	struct fuse_entry_param e = {
		.ino = a.ino, .attr_timeout = TIMEOUT, .entry_timeout = TIMEOUT};
	to_stat(&a, 0, &e.attr);
	if (fi)
		fuse_reply_create(req, &e, fi);
	else
		fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make(req, parent, name, mode, rdev, NULL, 0, NULL);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, 0, NULL);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	make(req, parent, name, 0, 0, target, 0, NULL);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	make(req, parent, name, 0, 0, NULL, ino, NULL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	make(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, 0, fi);
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int rmdir)
{
	LOCK();
	cow_fs *f;
	uint64_t real;
	int rc = tree_of(parent, &f, &real);
	if (rc)
		return fail(req, rc);
	if (live_root_snapdir(parent, name))
		return fail(req, EPERM);
	cow_fs_attr a;
	uint64_t ino = 0;
	if (cow_fs_lookup(f, real, name, strlen(name), &a) == 0)
		touch(ino = a.ino);
	touch(real);
	int orphan = 0;
	if ((rc = changed(cow_fs_unlink(f, real, name, strlen(name), rmdir, &orphan))))
		return fail(req, err_of(rc));
	if (orphan)
		orphaned(f, ino);
	UNLOCK();
	fuse_reply_err(req, 0);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 1);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	LOCK();
	cow_fs *f;
	uint64_t real, nreal;
	int rc = tree_of(parent, &f, &real);
	if (rc || (rc = tree_of(newparent, &f, &nreal)))
		return fail(req, rc);
	if (live_root_snapdir(parent, name) || live_root_snapdir(newparent, newname))
		return fail(req, EPERM);
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return fail(req, EINVAL);
	unsigned fl = (flags & RENAME_NOREPLACE ? COW_FS_RENAME_NOREPLACE : 0) |
		      (flags & RENAME_EXCHANGE ? COW_FS_RENAME_EXCHANGE : 0);
	/* Both directories, the inode moved (its parent) and the one it replaces. */
	cow_fs_attr a;
	if (cow_fs_lookup(f, real, name, strlen(name), &a) == 0)
		touch(a.ino);
	if (cow_fs_lookup(f, nreal, newname, strlen(newname), &a) == 0)
		touch(a.ino);
	touch(real);
	touch(nreal);
	uint64_t orphan = 0;
	if ((rc = changed(cow_fs_rename(f, real, name, strlen(name), nreal, newname,
					strlen(newname), fl, &orphan))))
		return fail(req, err_of(rc));
	if (orphan)
		orphaned(f, orphan);
	UNLOCK();
	fuse_reply_err(req, 0);
}

/*
 * May the kernel keep a live file's cached pages when it is opened again
 * (FOPEN_KEEP_CACHE)? Yes while only the daemon has changed the live tree
 * since the mount: each change it makes comes through the kernel (writes,
 * truncates, punches, copy_file_range), which keeps its cache right; a
 * `cow snapshot` or a commit to another object leaves the tree's root as
 * it was. Once another process has changed the tree (a rollback or recv
 * behind the mount, a compaction that moved it) or changes were lost,
 * never again: each open drops the file's pages, as a FUSE open without
 * the flag always does. Snapshots' inodes never keep theirs (a
 * snapshot's number may be a new one's after a destroy). Without M.mu, so
 * that opens do not wait for the writer; a commit of ours racing with the
 * look is known by pending_gen.
 */
static bool keep_cache(void)
{
	if (M.foreign)
		return false;
	cow_txn *t;
	cow_obj_stats st;
	if (cow_txn_begin(M.s, COW_TXN_RDONLY, &t) != 0)
		return false;
	int rc = cow_obj_stat(t, M.name, 0, &st);
	cow_txn_abort(t);
	if (rc || (st.changed != M.own_gen && st.changed != M.pending_gen))
		M.foreign = true;
	return !M.foreign;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if ((ino >> VSHIFT) && ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!(ino >> VSHIFT) && (fi->flags & O_TRUNC)) {
		/* libfuse asks the kernel for atomic O_TRUNC: the truncation is ours. */
		cow_fs *f;
		uint64_t real;
		if (!enter(req, ino, &f, &real))
			return;
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		int rc = changed(cow_fs_setattr(f, real, &(cow_fs_attr){.mtime = ts_of(&now)},
						COW_FS_SET_SIZE | COW_FS_SET_MTIME, NULL));
		if (rc)
			return fail(req, err_of(rc));
		UNLOCK();
	}
	int rc = (ino >> VSHIFT) ? 0 : open_ref(ino);
	if (rc == 0 && !(ino >> VSHIFT))
		fi->keep_cache = keep_cache();
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	if (!(ino >> VSHIFT))
		open_unref(ino);
	fuse_reply_err(req, 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	cow_fs *f;
	uint64_t real;
	size_t got = 0;
	struct rd r;
	int rc = read_tree(ino, false, &r, &f, &real);
	if (rc == 0) {
		rc = err_of(cow_fs_read(f, real, buf, size, (uint64_t)off, &got));
		read_done(&r);
	}
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)fi;
	cow_fs *f;
	uint64_t real;
	if (!enter(req, ino, &f, &real))
		return;
	int rc;
	if ((rc = room(size)))
		return fail(req, rc);
	if ((rc = changed(cow_fs_write(f, real, buf, size, (uint64_t)off))))
		return fail(req, err_of(rc));
	M.txn_bytes += size;
	if (M.txn_bytes >= BATCH_MAX && !M.due) {
		M.due = true; /* bounds the transaction's dirty nodes in memory */
		pthread_cond_signal(&M.cv);
	}
	UNLOCK();
	fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino, (void)datasync, (void)fi;
	LOCK();
	int rc = commit();
	UNLOCK();
	fuse_reply_err(req, rc ? err_of(rc) : 0);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	size_t group_at;     /* where the entries sharing the last hash began */
	uint64_t group_hash; /* that hash */
	uint64_t version;
	bool full;
};

static int add_entry(void *ctx, const cow_fs_dirent *e)
{
	struct dirbuf *d = ctx;
	if (e->hash != d->group_hash || d->used == 0) {
		d->group_at = d->used;
		d->group_hash = e->hash;
	}
	char name[COW_FS_NAME_MAX + 1];
	memcpy(name, e->name, e->nlen);
	name[e->nlen] = 0;
	struct stat st = {.st_ino = (ino_t)((d->version << VSHIFT) | e->ino),
			  .st_mode = (mode_t)e->type};
	size_t need = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, &st,
					(off_t)e->next);
	if (need > d->size - d->used) {
		/* Names that share a cookie go out together, or not at all. */
		if (d->group_at > 0 && e->hash == d->group_hash)
			d->used = d->group_at;
		d->full = true;
		return 1;
	}
	d->used += need;
	return 0;
}

/* .snapshots lists the fs's snapshots in name order; the cookie counts them (from 3). */
struct snaplist {
	struct dirbuf *d;
	uint64_t skip, index;
};

static int add_snapshot(void *ctx, const char *name, const char *type, uint64_t count)
{
	(void)type, (void)count;
	struct snaplist *l = ctx;
	struct dirbuf *d = l->d;
	size_t n = strlen(M.name);
	if (strncmp(name, M.name, n) != 0 || name[n] != '@' || ++l->index <= l->skip)
		return 0;
	/* Not its inode number (known once looked up), but never 0, which readdir(3) hides. */
	struct stat st = {.st_ino = (ino_t)(SNAPDIR + l->index), .st_mode = S_IFDIR};
	size_t need = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name + n + 1,
					&st, (off_t)(l->index + 2));
	if (need > d->size - d->used)
		return 1;
	d->used += need;
	return 0;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	struct dirbuf d = {.req = req, .size = size};
	d.buf = malloc(size ? size : 1);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = 0;
	if (ino == SNAPDIR) {
		struct stat st = {.st_ino = SNAPDIR, .st_mode = S_IFDIR};
		if (off == 0)
			d.used += fuse_add_direntry(req, d.buf, size, ".", &st, 1);
		st.st_ino = FUSE_ROOT_ID;
		if (off <= 1 && d.used < size)
			d.used +=
				fuse_add_direntry(req, d.buf + d.used, size - d.used, "..", &st, 2);
		struct snaplist l = {&d, off > 2 ? (uint64_t)off - 2 : 0, 0};
		cow_txn *t;
		if ((rc = cow_txn_begin(M.s, COW_TXN_RDONLY, &t)) == 0) {
			rc = cow_store_list(t, add_snapshot, &l);
			cow_txn_abort(t);
		}
		rc = rc > 0 ? 0 : rc ? err_of(rc) : 0;
	} else {
		/* .snapshots is never listed (as ZFS's .zfs by default): `cd` into it. */
		cow_fs *f;
		uint64_t real;
		struct rd r;
		d.version = ino >> VSHIFT;
		if ((rc = read_tree(ino, false, &r, &f, &real)) == 0) {
			rc = err_of(cow_fs_readdir(f, real, (uint64_t)off, add_entry, &d));
			read_done(&r);
		}
	}
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs sv;
	cow_store_stats st;
	int rc = cow_store_stat(M.s, &st);
	cow_fs *f;
	uint64_t inodes = 0, real;
	struct rd r;
	if (rc == 0 && read_tree(FUSE_ROOT_ID, false, &r, &f, &real) == 0) {
		cow_fs_stats fs;
		if (cow_fs_stat(f, &fs) == 0)
			inodes = fs.inodes;
		read_done(&r);
	}
	const char *path = cli_store_path();
	if (rc || !path || statvfs(path, &sv) != 0) {
		fuse_reply_err(req, rc ? err_of(rc) : errno);
		return;
	}
	/* The store grows into its file system: its free blocks, and the file system's. */
	uint64_t host_free = (uint64_t)sv.f_bavail * sv.f_frsize / 4096;
	uint64_t free_blocks = host_free + st.free_bytes / 4096;
	struct statvfs out = {.f_bsize = 4096,
			      .f_frsize = 4096,
			      .f_blocks = (st.used_bytes + st.pending_bytes) / 4096 + free_blocks,
			      .f_bfree = free_blocks,
			      .f_bavail = free_blocks,
			      .f_files = inodes + ((uint64_t)1 << 32),
			      .f_ffree = (uint64_t)1 << 32,
			      .f_favail = (uint64_t)1 << 32,
			      .f_namemax = COW_FS_NAME_MAX};
	fuse_reply_statfs(req, &out);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	cow_fs *f;
	uint64_t real;
	if (!enter(req, ino, &f, &real))
		return;
	int rc;
	if ((rc = room(size)))
		return fail(req, rc);
	if ((rc = changed(cow_fs_setxattr(f, real, name, value, size, flags))))
		return fail(req, err_of(rc));
	UNLOCK();
	fuse_reply_err(req, 0);
}

static void xattr_reply(fuse_req_t req, int rc, char *buf, size_t size, size_t len)
{
	if (rc)
		fuse_reply_err(req, err_of(rc));
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	cow_fs *f;
	uint64_t real;
	size_t len = 0;
	struct rd r;
	int rc = ino == SNAPDIR ? -ENODATA : -read_tree(ino, false, &r, &f, &real);
	if (rc == 0) {
		rc = cow_fs_getxattr(f, real, name, buf, size, &len);
		read_done(&r);
	}
	xattr_reply(req, rc, buf, size, len);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	cow_fs *f;
	uint64_t real;
	size_t len = 0;
	struct rd r;
	int rc = ino == SNAPDIR ? 0 : -read_tree(ino, false, &r, &f, &real);
	if (rc == 0 && ino != SNAPDIR) {
		rc = cow_fs_listxattr(f, real, buf, size, &len);
		read_done(&r);
	}
	xattr_reply(req, rc, buf, size, len);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	cow_fs *f;
	uint64_t real;
	if (!enter(req, ino, &f, &real))
		return;
	int rc;
	if ((rc = changed(cow_fs_removexattr(f, real, name))))
		return fail(req, err_of(rc));
	UNLOCK();
	fuse_reply_err(req, 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	cow_fs *f;
	uint64_t real;
	cow_fs_attr a;
	if (!enter(req, ino, &f, &real))
		return;
	int rc;
	if ((rc = cow_fs_getattr(f, real, &a)))
		return fail(req, err_of(rc));
	uint64_t end = (uint64_t)off + (uint64_t)len;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		rc = changed(cow_fs_punch(f, real, (uint64_t)off, (uint64_t)len));
	/* Plain allocation reserves nothing (copy-on-write): it only extends the size. */
	if (rc == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && end > a.size)
		rc = changed(cow_fs_setattr(f, real, &(cow_fs_attr){.size = end}, COW_FS_SET_SIZE,
					    NULL));
	if (rc)
		return fail(req, err_of(rc));
	UNLOCK();
	fuse_reply_err(req, 0);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	(void)fi_in, (void)fi_out;
	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((ino_in >> VSHIFT) != (ino_out >> VSHIFT)) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	LOCK();
	cow_fs *f;
	uint64_t rin, rout;
	int rc = tree_of(ino_out, &f, &rout);
	if (rc)
		return fail(req, rc);
	touch(rout);
	rin = ino_in & INO_MASK;
	/*
	 * A reflink adds a slice and a reference count per source run; at worst
	 * (runs of one block) that is per block, about 160 bytes: the room asked.
	 */
	cow_fs_attr sa;
	if (cow_fs_getattr(f, rin, &sa) == 0 && (uint64_t)off_in < sa.size &&
	    (rc = room(((uint64_t)len < sa.size - (uint64_t)off_in ? (uint64_t)len
								   : sa.size - (uint64_t)off_in) /
			       4096 * 256 +
		       8192)))
		return fail(req, rc);
	uint64_t done;
	if ((rc = changed(cow_fs_clone_range(f, rin, (uint64_t)off_in, rout, (uint64_t)off_out, len,
					     &done))))
		return fail(req, err_of(rc));
	UNLOCK();
	fuse_reply_write(req, (size_t)done);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	(void)fi;
	if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	cow_fs *f;
	uint64_t real, at = 0;
	struct rd r;
	int rc = read_tree(ino, false, &r, &f, &real);
	if (rc == 0) {
		rc = err_of(cow_fs_seek(f, real, (uint64_t)off, whence == SEEK_HOLE, &at));
		read_done(&r);
	}
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_lseek(req, (off_t)at);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.readdir = op_readdir,
	.fsyncdir = op_fsync,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.fallocate = op_fallocate,
	.copy_file_range = op_copy_file_range,
	.lseek = op_lseek,
};

/* Commits changes once the oldest is interval_ms old. */
static void *committer(void *arg)
{
	(void)arg;
	LOCK();
	while (!M.stop) {
		uint64_t due = M.dirty_ns + (uint64_t)M.interval_ms * 1000000u;
		if (M.wt && (M.due || now_ns() >= due)) {
			commit();
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t wait = M.wt ? due - now_ns() : 1000000000u;
		ts.tv_sec += (time_t)(wait / 1000000000u);
		ts.tv_nsec += (long)(wait % 1000000000u);
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&M.cv, &M.mu, &ts);
	}
	UNLOCK();
	return NULL;
}

/* Free what a crash left between an unlink and the last close. */
static int recover(void)
{
	cow_txn *t;
	int rc = cow_txn_begin(M.s, 0, &t);
	if (rc)
		return rc;
	cow_fs *f;
	uint64_t freed = 0;
	if ((rc = cow_fs_open(t, M.name, &f)) || (rc = cow_fs_orphans(f, &freed))) {
		cow_txn_abort(t);
		return rc;
	}
	if (freed)
		fprintf(stderr, "cow mount: freed %llu files a crash left unlinked but open\n",
			(unsigned long long)freed);
	return freed ? cow_txn_commit(t) : (cow_txn_abort(t), 0);
}

struct only_fs {
	char name[COW_NAME_MAX + 1];
	unsigned n;
};

static int count_fs(void *ctx, const char *name, const char *type, uint64_t count)
{
	(void)count;
	struct only_fs *o = ctx;
	if (strcmp(type, "fs") == 0 && !strchr(name, '@') && o->n++ == 0)
		snprintf(o->name, sizeof(o->name), "%s", name);
	return 0;
}

/*
 * What to mount: NAME[@SNAP] in the store -s (or $COW_STORE) names; else
 * STORE:NAME[@SNAP], split at the last ':' with a file on its left (names
 * and paths may hold ':' too); else STORE alone, when it holds one fs.
 * The store becomes $COW_STORE; @name gets the fs's name.
 */
static int mount_target(const char *arg, char *name, size_t cap)
{
	if (cli_store_path()) {
		snprintf(name, cap, "%s", arg);
		return strlen(arg) < cap ? 0 : cli_usage("mount", "name too long");
	}
	char store[PATH_MAX];
	if (strlen(arg) >= sizeof(store))
		return cli_usage("mount", "STORE path too long");
	snprintf(store, sizeof(store), "%s", arg);
	if (!is_file(store)) {
		if (!split_target(arg, store, sizeof(store), name, cap))
			return cli_usage("mount",
					 "%s: no store file (that you may read) before a ':' and a "
					 "name after it: give STORE:NAME, -s STORE NAME, or set "
					 "COW_STORE",
					 arg);
		setenv("COW_STORE", store, 1);
		return 0;
	}
	setenv("COW_STORE", store, 1);
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("mount", false, &s, &t);
	if (ex)
		return ex;
	struct only_fs o = {0};
	int rc = cow_store_list(t, count_fs, &o);
	cow_txn_abort(t);
	cow_store_close(s);
	if (rc)
		return cli_fail(rc, "%s: list", store);
	if (o.n != 1) {
		fprintf(stderr, "cow: mount: %s holds %u file systems: name one (STORE:NAME)\n",
			store, o.n);
		return EXIT_USAGE;
	}
	snprintf(name, cap, "%s", o.name);
	return 0;
}

int cmd_mount(const struct cli_args *a)
{
	const char *dir = a->argv[1];
	char name[sizeof(M.name)];
	int ex = mount_target(a->argv[0], name, sizeof(name));
	if (ex)
		return ex;
	const char *path = cli_store_path();
	char real[PATH_MAX];
	if (!realpath(path, real)) /* the daemon works from / */
		return cli_fail(-errno, "%s", path);
	setenv("COW_STORE", real, 1);
	memcpy(M.name, name, strlen(name) + 1);
	M.ro = strchr(name, '@') != NULL;
	M.interval_ms = (unsigned)cli_num(a, "commit", 1000);
	const char *opts = cli_str(a, "options", NULL);
	for (const char *o = opts; o && *o;) { /* "ro" among the comma-separated options */
		size_t n = strcspn(o, ",");
		if (n == 2 && strncmp(o, "ro", 2) == 0)
			M.ro = true;
		o += n + (o[n] == ',');
	}

	/*
	 * One writable mount of an fs at a time, whatever path names the store:
	 * an open-file-description lock on a byte of the data file named for the
	 * fs (far above the bytes the store locks, docs/FORMAT.md section 8),
	 * held as long as this process serves it.
	 */
	int lockfd = -1;
	if (!M.ro) {
		struct flock fl = mount_lock(name, F_WRLCK);
		lockfd = open(real,
			      O_RDWR | O_CLOEXEC); /* a write lock needs a writable description */
		if (lockfd < 0)
			return cli_fail(-errno, "%s", real);
		if (fcntl(lockfd, F_OFD_SETLK, &fl) != 0) {
			int e = errno;
			close(lockfd);
			if (e == EAGAIN || e == EACCES) {
				fprintf(stderr,
					"cow: %s: mount '%s': already mounted writable by another "
					"process\n",
					real, name);
				return EXIT_FAIL;
			}
			return cli_fail(-e, "%s: mount lock", real);
		}
	}

	/* Check the store and the object before mounting anything. */
	ex = cli_open("mount", !M.ro, &M.s);
	if (ex)
		return ex;
	cow_txn *t;
	cow_fs *f;
	int rc = cow_txn_begin(M.s, COW_TXN_RDONLY, &t);
	if (rc == 0) {
		rc = cow_fs_open(t, name, &f);
		cow_txn_abort(t);
	}
	if (rc) {
		cow_store_close(M.s);
		return cli_fail(rc, "%s: mount '%s'", real, name);
	}
	if (!M.ro && (rc = recover())) {
		cow_store_close(M.s);
		return cli_fail(rc, "%s: mount '%s'", real, name);
	}
	clock_gettime(CLOCK_REALTIME, &M.start);

	/*
	 * The mount's source is STORE:NAME, as mount and df show it and as cow
	 * umount reads it back; escaped for libfuse's option parser.
	 */
	char src[PATH_MAX + sizeof(M.name) + 2], esc[2 * sizeof(src)], *e = esc;
	snprintf(src, sizeof(src), "%s:%s", real, name);
	for (const char *p = src; *p; p++) {
		if (*p == ',' || *p == '\\')
			*e++ = '\\';
		*e++ = *p;
	}
	*e = 0;
	char fsname[sizeof(esc) + 4096];
	if (snprintf(fsname, sizeof(fsname), "-ofsname=%s,subtype=cow,default_permissions%s%s%s",
		     esc, M.ro ? ",ro" : "", opts ? "," : "",
		     opts ? opts : "") >= (int)sizeof(fsname)) {
		cow_store_close(M.s);
		return cli_usage("mount", "-o options too long");
	}
	char *argv[] = {(char *)"cow-mount", fsname, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(2, argv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	fuse_opt_free_args(&args);
	if (!se) {
		cow_store_close(M.s);
		fprintf(stderr, "cow: mount: bad mount options '%s'\n", opts ? opts : "");
		return EXIT_USAGE;
	}
	if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, dir) != 0) {
		fuse_session_destroy(se);
		cow_store_close(M.s);
		fprintf(stderr,
			"cow: mount: cannot mount on %s (is /dev/fuse there, and may you "
			"mount? fusermount3 said why above)\n",
			dir);
		return EXIT_FAIL;
	}
	bool fg = cli_flag(a, "foreground");
	if (!fg) {
		/* The store's locks belong to a process: the daemon opens it again. */
		cow_store_close(M.s);
		M.s = NULL;
		if (fuse_daemonize(0) != 0)
			return EXIT_FAIL;
		cow_store_options o = {M.ro ? COW_STORE_RDONLY : 0};
		if ((rc = cow_store_open(real, &o, &M.s))) {
			logmsg("reopening the store", rc);
			fuse_session_unmount(se);
			return EXIT_FAIL;
		}
	}
	/* The kernel's page cache starts empty: what it will cache is this tree. */
	cow_txn *gt;
	cow_obj_stats gst;
	if ((rc = cow_txn_begin(M.s, COW_TXN_RDONLY, &gt)) == 0) {
		if ((rc = cow_obj_stat(gt, M.name, 0, &gst)) == 0)
			M.own_gen = gst.changed;
		cow_txn_abort(gt);
	}
	M.foreign = rc != 0;
	pthread_t th;
	pthread_create(&th, NULL, committer, NULL);
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, 16);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	LOCK();
	commit();
	M.stop = true;
	pthread_cond_broadcast(&M.cv);
	UNLOCK();
	pthread_join(th, NULL);
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	free(D.snaps);
	free(D.set);
	free(M.open);
	cow_store_close(M.s);
	if (lockfd >= 0)
		close(lockfd); /* the next mount may begin */
	return rc == 0 && !M.failed ? EXIT_OK : EXIT_FAIL;
}

#endif
