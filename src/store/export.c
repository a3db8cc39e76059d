/*
 * Volumes to and from plain files. Export walks the block map in order and
 * writes runs of blocks; when the store file and the target share a file
 * system with reflinks (btrfs, XFS), a run of blocks that is contiguous in
 * both files is cloned with FICLONERANGE instead of copied. Every block is
 * verified against its checksum first, so a clone never carries damage.
 * Holes stay holes. Import copies (zero blocks become holes).
 */
#include <errno.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store.h"

struct run {
	uint64_t block;  /* first volume block */
	uint64_t addr;   /* first store block */
	uint64_t n;      /* blocks */
};

struct exporter {
	struct cow__bs *bs;
	int fd;
	uint64_t size;
	bool reflink; /* still worth trying */
	cow_export_stats *st;
	cow_progress_fn progress;
	void *pctx;
};

static int write_all(int fd, const void *p, size_t len, uint64_t off)
{
	const char *c = p;
	while (len) {
		ssize_t n = pwrite(fd, c, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : COW_EIO;
		c += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int flush_run(struct exporter *e, const struct run *r)
{
	if (!r->n)
		return 0;
	uint64_t off = r->block << COW_BLOCK_SHIFT;
	uint64_t len = r->n << COW_BLOCK_SHIFT;
	if (off + len > e->size) /* the volume's last, short block: copy it */
		len = e->size - off;
	uint64_t whole = len & ~(uint64_t)(COW_BLOCK_SIZE - 1);
	if (e->reflink && whole) {
		struct file_clone_range fcr = {.src_fd = cow__bs_io(e->bs)->fd,
					       .src_offset = r->addr << COW_BLOCK_SHIFT,
					       .src_length = whole,
					       .dest_offset = off};
		if (ioctl(e->fd, FICLONERANGE, &fcr) == 0) {
			e->st->cloned_bytes += whole;
			off += whole;
			len -= whole;
		} else if (errno == EOPNOTSUPP || errno == EXDEV || errno == EINVAL ||
			   errno == ENOTTY || errno == EPERM || errno == EBADF) {
			e->reflink = false; /* another file system, or none with reflinks */
		} else {
			return -errno;
		}
	}
	if (e->progress)
		e->progress(e->pctx, off + len, e->size);
	if (!len)
		return 0;
	const uint8_t *data = cow__bs_mapped(e->bs, r->addr + ((off - (r->block << COW_BLOCK_SHIFT)) >> COW_BLOCK_SHIFT));
	int rc = write_all(e->fd, data, (size_t)len, off);
	if (rc == 0)
		e->st->copied_bytes += len;
	return rc;
}

int cow_vol_export(cow_txn *t, const char *name, int fd, cow_export_stats *st,
		   cow_progress_fn progress, void *progress_ctx)
{
	cow_export_stats dummy;
	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	if (!t || fd < 0)
		return COW_EINVAL;
	cow_vol *v;
	int rc = cow_vol_open(t, name, &v);
	if (rc)
		return rc;
	struct cow__bs *bs = t->tx.bs;
	uint64_t size = cow_vol_size(v);
	rc = cow__bs_stage_flush(bs); /* values written in this transaction: in the file */
	if (rc == 0 && ftruncate(fd, 0) != 0)
		rc = -errno;
	if (rc == 0 && ftruncate(fd, (off_t)size) != 0) /* holes everywhere, then the data */
		rc = -errno;
	if (rc)
		return rc;
	struct exporter e = {bs, fd, size, true, st, progress, progress_ctx};
	struct run r = {0, 0, 0};
	struct cow__bmap bm;
	cow__vol_bmap(v, &bm);
	struct cow__cursor c;
	cow__cursor_init(&c, bm.tx, bm.t);
	struct cow__vcell vc;
	uint64_t floor = 0;
	for (rc = cow__bmap_seek(&bm, &c, 0);
	     rc == 0 && (rc = cow__bmap_cell(&bm, &c, floor, &vc)) == 0;
	     rc = cow__cursor_next(&c)) {
		floor = vc.key + vc.r.n;
		for (uint32_t i = 0; i < vc.r.n && rc == 0; i++) {
			uint64_t b = vc.key + i, addr = vc.r.ext.addr + vc.r.first + i;
			if (b << COW_BLOCK_SHIFT >= size)
				break;
			const uint8_t *d;
			/* verified before it is cloned */
			rc = cow__bmap_block(&t->tx, &vc.r, i, &d);
			if (rc)
				break;
			if (r.n && b == r.block + r.n && addr == r.addr + r.n) {
				r.n++;
			} else {
				rc = flush_run(&e, &r);
				r = (struct run){b, addr, 1};
			}
		}
		if (rc)
			break;
	}
	if (rc == COW_ENOTFOUND)
		rc = 0;
	if (rc == 0)
		rc = flush_run(&e, &r);
	if (rc == 0 && progress)
		progress(progress_ctx, size, size);
	st->bytes = size;
	st->hole_bytes = size - st->cloned_bytes - st->copied_bytes;
	return rc;
}

int cow_vol_import(cow_txn *t, const char *name, int fd, uint64_t *bytes,
		   cow_progress_fn progress, void *progress_ctx)
{
	if (!t || fd < 0)
		return COW_EINVAL;
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		return -errno;
	int rc = cow_vol_create(t, name, (uint64_t)end);
	cow_vol *v;
	if (rc == 0)
		rc = cow_vol_open(t, name, &v);
	if (rc)
		return rc;
	size_t cap = 1u << 20;
	uint8_t *buf = cow__malloc(cap);
	if (!buf)
		return COW_ENOMEM;
	uint64_t off = 0;
	while (rc == 0 && off < (uint64_t)end) {
		ssize_t n = pread(fd, buf, cap, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : COW_EIO; /* the file shrank under us */
			break;
		}
		rc = cow_vol_pwrite(v, buf, (size_t)n, off);
		off += (uint64_t)n;
		if (progress)
			progress(progress_ctx, off, (uint64_t)end);
	}
	cow__free(buf);
	if (rc == 0 && bytes)
		*bytes = off;
	return cow__txn_poison(t, rc); /* the volume exists, half-filled */
}
