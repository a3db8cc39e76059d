/*
 * share/procfs: what /proc says about a process: its parent, its name, its
 * descendants, and its mappings with the kernel's per-mapping figures
 * (/proc/PID/smaps).
 *
 * Every read is of a file the kernel generates on the fly, so a process may
 * vanish between two reads: ENOENT or an empty smaps (a zombie) both mean
 * "gone" and become COW_ESRCH; nothing here treats them as corruption.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "share/share.h"

int cow__share_slurp(const char *path, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 16384, n = 0;
	char *b = cow__malloc(cap);
	int rc = 0;
	if (!b) {
		rc = COW_ENOMEM;
		goto out;
	}
	for (;;) {
		if (cap - n < 4096) {
			char *nb = cow__realloc(b, cap * 2);
			if (!nb) {
				rc = COW_ENOMEM;
				goto out;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t got = read(fd, b + n, cap - n - 1);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	b[n] = 0;
	*buf = b;
	*len = n;
	b = NULL;
out:
	cow__free(b);
	close(fd);
	return rc;
}

int cow__share_proc_errno(int rc)
{
	if (rc == -ENOENT || rc == -ESRCH)
		return COW_ESRCH;
	return rc;
}

int cow__share_stat(int pid, int *ppid, char *comm, size_t commlen, bool *zombie)
{
	char path[64], *buf = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int rc = cow__share_proc_errno(cow__share_slurp(path, &buf, &len));
	if (rc)
		return rc;
	/* "pid (comm) S ppid ...": comm may itself hold ") ", so take the last ')'. */
	char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren || close_paren[1] != ' ') {
		rc = COW_ESRCH;
		goto out;
	}
	if (comm && commlen) {
		size_t cl = (size_t)(close_paren - open_paren - 1);
		if (cl >= commlen)
			cl = commlen - 1;
		memcpy(comm, open_paren + 1, cl);
		comm[cl] = 0;
	}
	char state = close_paren[2];
	if (zombie)
		*zombie = state == 'Z' || state == 'X';
	if (ppid)
		*ppid = atoi(close_paren + 4);
out:
	cow__free(buf);
	return rc;
}

struct pp {
	int pid, ppid;
};

static int cmp_ppid(const void *a, const void *b)
{
	const struct pp *x = a, *y = b;
	if (x->ppid != y->ppid)
		return x->ppid < y->ppid ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

static bool listed(const int *pids, size_t n, int pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

int cow__share_descendants(int **pids, size_t *n, size_t *cap)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	struct pp *all = NULL;
	size_t nall = 0, capall = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		int pid = atoi(de->d_name), ppid;
		rc = cow__share_stat(pid, &ppid, NULL, 0, NULL);
		if (rc == COW_ESRCH || rc == COW_EACCES || rc == COW_EPERM) {
			rc = 0; /* gone since readdir, or hidden: not a descendant we can see */
			continue;
		}
		if (rc)
			goto out;
		if ((rc = cow__grow((void **)&all, &capall, nall + 1, sizeof(*all))))
			goto out;
		all[nall++] = (struct pp){pid, ppid};
	}
	qsort(all, nall, sizeof(*all), cmp_ppid);
	/* Breadth-first: children of entry i are appended behind the list's end. */
	for (size_t i = 0; i < *n; i++) {
		int parent = (*pids)[i];
		/* Binary search for the first entry with ppid == parent. */
		size_t lo = 0, hi = nall;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (all[mid].ppid < parent)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t j = lo; j < nall && all[j].ppid == parent; j++) {
			if (listed(*pids, *n, all[j].pid))
				continue;
			if ((rc = cow__grow((void **)pids, cap, *n + 1, sizeof(**pids))))
				goto out;
			(*pids)[(*n)++] = all[j].pid;
		}
	}
out:
	cow__free(all);
	closedir(d);
	return rc;
}

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int cow__share_classify(const char *name, const char *perms)
{
	if (strcmp(name, "[heap]") == 0)
		return COW_SHARE_HEAP;
	if (strcmp(name, "[stack]") == 0)
		return COW_SHARE_STACK;
	if (starts(name, "/dev/shm/") || starts(name, "/memfd:") || starts(name, "/SYSV") ||
	    starts(name, "[anon_shmem") || starts(name, "/dev/zero"))
		return COW_SHARE_SHMEM;
	bool shared = perms[3] == 's';
	if (name[0] == 0 || starts(name, "[anon:"))
		return shared ? COW_SHARE_SHMEM : COW_SHARE_ANON;
	if (name[0] == '/')
		return COW_SHARE_FILE;
	return COW_SHARE_OTHER;
}

static void add_figs(cow_share_figs *to, const cow_share_figs *f)
{
	to->rss += f->rss;
	to->pss += f->pss;
	to->shared += f->shared;
	to->private_clean += f->private_clean;
	to->private_dirty += f->private_dirty;
	to->swap += f->swap;
	to->pages += f->pages;
	to->pages_all += f->pages_all;
	to->pages_some += f->pages_some;
	to->pages_none += f->pages_none;
}

void cow__share_sum(cow_share_proc *p)
{
	memset(&p->total, 0, sizeof(p->total));
	memset(p->kind, 0, sizeof(p->kind));
	for (size_t i = 0; i < p->nmaps; i++) {
		const cow_share_map *m = &p->maps[i];
		add_figs(&p->kind[m->kind], &m->figs);
		add_figs(&p->total, &m->figs);
	}
}

/*
 * The figure a "Key:   40 kB" line adds to, or NULL for keys not kept.
 * Shared_Clean and Shared_Dirty both add to shared.
 */
static uint64_t *field(cow_share_figs *f, const char *line, size_t keylen)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{"Rss", offsetof(cow_share_figs, rss)},
		{"Pss", offsetof(cow_share_figs, pss)},
		{"Shared_Clean", offsetof(cow_share_figs, shared)},
		{"Shared_Dirty", offsetof(cow_share_figs, shared)},
		{"Private_Clean", offsetof(cow_share_figs, private_clean)},
		{"Private_Dirty", offsetof(cow_share_figs, private_dirty)},
		{"Swap", offsetof(cow_share_figs, swap)},
	};
	for (size_t i = 0; i < COW_ARRAY_SIZE(keys); i++)
		if (strlen(keys[i].key) == keylen && memcmp(line, keys[i].key, keylen) == 0)
			return (uint64_t *)((char *)f + keys[i].off);
	return NULL;
}

/*
 * A mapping header: "start-end perms offset dev inode [name]". Returns false
 * if the line is not one (then it is a "Key: value" line).
 */
static bool parse_header(char *line, cow_share_map *m, const char **name)
{
	char *end;
	m->start = strtoull(line, &end, 16);
	if (end == line || *end != '-')
		return false;
	line = end + 1;
	m->end = strtoull(line, &end, 16);
	if (end == line || *end != ' ')
		return false;
	line = end + 1;
	if (strlen(line) < 5 || line[4] != ' ')
		return false;
	memcpy(m->perms, line, 4);
	m->perms[4] = 0;
	line += 5;
	/* offset, dev, inode: three fields, then spaces, then the optional name. */
	for (int f = 0; f < 3; f++) {
		while (*line == ' ')
			line++;
		while (*line && *line != ' ')
			line++;
	}
	while (*line == ' ')
		line++;
	*name = line;
	return true;
}

void cow__share_proc_release(cow_share_proc *p)
{
	for (size_t i = 0; i < p->nmaps; i++)
		cow__free((void *)p->maps[i].name);
	cow__free((void *)p->maps);
	p->maps = NULL;
	p->nmaps = 0;
}

int cow__share_read_smaps(cow_share_proc *p)
{
	char path[64], *buf = NULL;
	size_t len, cap = 0;
	cow_share_map *maps = NULL;
	size_t n = 0;
	snprintf(path, sizeof(path), "/proc/%d/smaps", p->pid);
	int rc = cow__share_proc_errno(cow__share_slurp(path, &buf, &len));
	if (rc)
		return rc;
	cow_share_map *cur = NULL;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *colon = strchr(line, ':');
		char *space = strchr(line, ' ');
		if (colon && (!space || colon < space)) {
			if (!cur)
				continue;
			uint64_t *v = field(&cur->figs, line, (size_t)(colon - line));
			if (v)
				*v += strtoull(colon + 1, NULL, 10) * 1024;
			continue;
		}
		cow_share_map m;
		memset(&m, 0, sizeof(m));
		const char *name;
		if (!parse_header(line, &m, &name))
			continue; /* a line this parser does not know: skip it */
		if ((rc = cow__grow((void **)&maps, &cap, n + 1, sizeof(*maps))))
			goto out;
		m.kind = cow__share_classify(name, m.perms);
		m.name = cow__strdup(name);
		if (!m.name) {
			rc = COW_ENOMEM;
			goto out;
		}
		maps[n++] = m;
		cur = &maps[n - 1];
	}
	if (n == 0) {
		/* An empty smaps is a zombie or a kernel thread; only the former is gone. */
		bool zombie = true;
		int src = cow__share_stat(p->pid, NULL, NULL, 0, &zombie);
		if (src || zombie) {
			rc = COW_ESRCH;
			goto out;
		}
	}
	p->maps = maps;
	p->nmaps = n;
	maps = NULL;
	cow__share_sum(p);
out:
	if (maps) {
		cow_share_proc tmp = {.maps = maps, .nmaps = n};
		cow__share_proc_release(&tmp);
	}
	cow__free(buf);
	return rc;
}
