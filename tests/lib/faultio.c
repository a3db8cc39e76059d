/* See faultio.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "check.h"
#include "faultio.h"
#include "io/io.h"

#define SECTOR 512

struct wrec {
	uint64_t off;
	size_t len;
	uint8_t *data;
};

struct pre { /* a sector's content at the last sync */
	uint64_t sector;
	uint8_t data[SECTOR];
};

struct fio {
	struct cow__io io;
	struct cow__io *inner;
	struct wrec *w;
	size_t nw, capw;
	struct pre *pre;
	size_t npre, cappre;
	struct cow__u64map set; /* the sectors in pre[] */
};

static struct faultio_cfg cfg;
static long ops;
static long grows;
static bool crashed;
static bool installed;

/*
 * Is @sector's pre-image known? If not, remember that it will be. The set
 * allocates through the library's hook: no test fails allocations while
 * the shim is installed.
 */
static int has_pre(struct fio *f, uint64_t sector)
{
	void *v;
	int rc = cow__u64map_put(&f->set, sector, &v);
	CHECK_GE(rc, 0);
	return rc;
}

static void forget(struct fio *f)
{
	for (size_t i = 0; i < f->nw; i++)
		free(f->w[i].data);
	f->nw = 0;
	f->npre = 0;
	cow__u64map_clear(&f->set);
}

/* Rewrite the file to one state a power loss could leave. */
static void power_loss(struct fio *f)
{
	uint64_t s = cfg.seed | 1;
	int keep = cfg.keep_percent ? cfg.keep_percent : 50;
	int tear = cfg.tear_percent ? cfg.tear_percent : 25;
	/* Start from the synced content of every touched sector... */
	for (size_t i = 0; i < f->npre; i++)
		f->inner->ops->pwritev(f->inner, &(struct iovec){f->pre[i].data, SECTOR}, 1,
				       f->pre[i].sector * SECTOR);
	/* ...then apply each write whole, torn, or not at all, in issue order. */
	for (size_t i = 0; i < f->nw; i++) {
		struct wrec *w = &f->w[i];
		int r = (int)(check_rand(&s) % 100);
		if (r >= keep + tear)
			continue;
		for (size_t o = 0; o < w->len; o += SECTOR) {
			if (r >= keep && check_rand(&s) % 2)
				continue; /* a torn write loses some sectors */
			size_t n = w->len - o < SECTOR ? w->len - o : SECTOR;
			f->inner->ops->pwritev(f->inner, &(struct iovec){w->data + o, n}, 1,
					       w->off + o);
		}
	}
	forget(f);
	crashed = true;
}

/* Count an operation; returns -errno to fail it, 1 for a crash, 0 to go on. */
static int tick(struct fio *f)
{
	if (crashed)
		return -EIO;
	ops++;
	if (cfg.crash_at && ops == cfg.crash_at) {
		power_loss(f);
		return -EIO;
	}
	if (cfg.fail_at && (ops == cfg.fail_at || (cfg.persistent && ops > cfg.fail_at)))
		return -(cfg.fail_errno ? cfg.fail_errno : EIO);
	return 0;
}

static int f_pwritev(struct cow__io *io, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct fio *f = (struct fio *)io;
	int rc = tick(f);
	if (rc)
		return rc;
	size_t len = 0;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	/* Pre-images of sectors first touched since the last sync. */
	for (uint64_t sec = off / SECTOR; sec * SECTOR < off + len; sec++) {
		if (has_pre(f, sec))
			continue;
		if (f->npre == f->cappre) {
			f->cappre = f->cappre ? f->cappre * 2 : 256;
			f->pre = realloc(f->pre, f->cappre * sizeof(*f->pre));
		}
		struct pre *p = &f->pre[f->npre++];
		p->sector = sec;
		f->inner->ops->pread(f->inner, p->data, SECTOR, sec * SECTOR);
	}
	if (f->nw == f->capw) {
		f->capw = f->capw ? f->capw * 2 : 64;
		f->w = realloc(f->w, f->capw * sizeof(*f->w));
	}
	struct wrec *w = &f->w[f->nw++];
	w->off = off;
	w->len = len;
	w->data = malloc(len ? len : 1);
	size_t at = 0;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(w->data + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	return f->inner->ops->pwritev(f->inner, iov, iovcnt, off);
}

static int f_pread(struct cow__io *io, void *buf, size_t len, uint64_t off)
{
	struct fio *f = (struct fio *)io;
	if (crashed)
		return -EIO;
	return f->inner->ops->pread(f->inner, buf, len, off);
}

static int f_sync(struct cow__io *io)
{
	struct fio *f = (struct fio *)io;
	int rc = tick(f);
	if (rc)
		return rc;
	rc = f->inner->ops->sync(f->inner);
	if (rc == 0)
		forget(f);
	return rc;
}

static int f_grow(struct cow__io *io, uint64_t size)
{
	struct fio *f = (struct fio *)io;
	int rc = tick(f);
	if (rc)
		return rc;
	grows++;
	if (cfg.fail_grow_at &&
	    (grows == cfg.fail_grow_at || (cfg.persistent && grows > cfg.fail_grow_at))) {
		uint64_t cur;
		rc = f->inner->ops->size(f->inner, &cur);
		if (rc == 0 && cfg.grow_partial && size > cur) {
			/* Part of the way, ending 1, 2 or 3 KiB into a block. */
			uint64_t part = ((cur + (size - cur) / 2) & ~4095ull) +
					1024 * (uint64_t)(1 + grows % 3);
			if (part <= cur || part >= size)
				part = cur + 1024 < size ? cur + 1024 : cur;
			if (part > cur)
				f->inner->ops->grow(f->inner, part);
		}
		return -(cfg.fail_errno ? cfg.fail_errno : ENOSPC);
	}
	return f->inner->ops->grow(f->inner, size);
}

static int f_size(struct cow__io *io, uint64_t *size)
{
	struct fio *f = (struct fio *)io;
	return f->inner->ops->size(f->inner, size);
}

/* Metadata changes of free space: they pass through; a crash may or may not keep them. */
static int f_shrink(struct cow__io *io, uint64_t size)
{
	struct fio *f = (struct fio *)io;
	int rc = tick(f);
	return rc ? rc : f->inner->ops->shrink(f->inner, size);
}

static int f_punch(struct cow__io *io, uint64_t off, uint64_t len)
{
	struct fio *f = (struct fio *)io;
	int rc = tick(f);
	return rc ? rc : f->inner->ops->punch(f->inner, off, len);
}

static void f_close(struct cow__io *io)
{
	struct fio *f = (struct fio *)io;
	forget(f);
	free(f->w);
	free(f->pre);
	cow__u64map_release(&f->set);
	f->inner->ops->close(f->inner);
	free(f);
}

static const struct cow__io_ops fops = {
	.pwritev = f_pwritev,
	.pread = f_pread,
	.sync = f_sync,
	.grow = f_grow,
	.size = f_size,
	.close = f_close,
	.shrink = f_shrink,
	.punch = f_punch,
};

static int wrap(struct cow__io *inner, struct cow__io **out)
{
	struct fio *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->io.ops = &fops;
	f->io.fd = inner->fd;
	f->inner = inner;
	cow__u64map_init(&f->set, 0);
	*out = &f->io;
	return 0;
}

void faultio_install(const struct faultio_cfg *c)
{
	cfg = *c;
	ops = 0;
	grows = 0;
	crashed = false;
	installed = true;
	cow__io_wrap = wrap;
}

void faultio_uninstall(void)
{
	cow__io_wrap = NULL;
	installed = false;
}

long faultio_ops(void)
{
	return ops;
}

bool faultio_crashed(void)
{
	return crashed;
}
