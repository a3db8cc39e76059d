/* The plain file io: pwritev/pread/fdatasync on one descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "io/io.h"

int (*cow__io_wrap)(struct cow__io *inner, struct cow__io **out);

static int file_pwritev(struct cow__io *io, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct iovec local[64];
	if (iovcnt > 64)
		return -EINVAL;
	memcpy(local, iov, (size_t)iovcnt * sizeof(*iov));
	struct iovec *v = local;
	while (iovcnt > 0) {
		ssize_t n = pwritev(io->fd, v, iovcnt, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		off += (uint64_t)n;
		while (iovcnt > 0 && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int file_pread(struct cow__io *io, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = pread(io->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_sync(struct cow__io *io)
{
	return fdatasync(io->fd) == 0 ? 0 : -errno;
}

static int file_size(struct cow__io *io, uint64_t *size)
{
	struct stat st;
	if (fstat(io->fd, &st) != 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int file_grow(struct cow__io *io, uint64_t size)
{
	uint64_t cur;
	int rc = file_size(io, &cur);
	if (rc)
		return rc;
	if (size <= cur)
		return 0;
	/* Reserve the space so a later write into the mapping's range cannot hit ENOSPC. */
	int err = posix_fallocate(io->fd, (off_t)cur, (off_t)(size - cur));
	if (err == EOPNOTSUPP || err == EINVAL)
		return ftruncate(io->fd, (off_t)size) == 0 ? 0 : -errno;
	return -err;
}

static int file_shrink(struct cow__io *io, uint64_t size)
{
	uint64_t cur;
	int rc = file_size(io, &cur);
	if (rc || size >= cur)
		return rc;
	return ftruncate(io->fd, (off_t)size) == 0 ? 0 : -errno;
}

static int file_punch(struct cow__io *io, uint64_t off, uint64_t len)
{
	if (fallocate(io->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	return errno == EOPNOTSUPP ? 0 : -errno; /* a file system without holes keeps the space */
}

static void file_close(struct cow__io *io)
{
	close(io->fd);
	cow__free(io);
}

static const struct cow__io_ops file_ops = {
	.pwritev = file_pwritev,
	.pread = file_pread,
	.sync = file_sync,
	.grow = file_grow,
	.size = file_size,
	.close = file_close,
	.shrink = file_shrink,
	.punch = file_punch,
};

/* Make the entry of a file just created at @path durable: fsync its directory. */
static int sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	if (!slash) {
		snprintf(dir, sizeof(dir), ".");
	} else if ((size_t)(slash - path) >= sizeof(dir)) {
		return COW_ENAMETOOLONG;
	} else {
		size_t len = slash == path ? 1 : (size_t)(slash - path);
		memcpy(dir, path, len);
		dir[len] = 0;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : -errno; /* EINVAL: cannot sync dirs */
	close(fd);
	return rc;
}

/*
 * open(2), telling whether O_CREAT created the file (then its directory is
 * synced, so a crash cannot lose a store whose first commit was acknowledged).
 */
static int open_file(const char *path, int flags, int mode)
{
	if (!(flags & O_CREAT) || (flags & O_EXCL))
		return open(path, flags | O_CLOEXEC, mode);
	for (int tries = 0;; tries++) {
		int fd = open(path, flags | O_EXCL | O_CLOEXEC, mode);
		if (fd >= 0) {
			int rc = sync_dir(path);
			if (rc) {
				close(fd);
				errno = -rc;
				return -1;
			}
			return fd;
		}
		if (errno != EEXIST)
			return -1;
		fd = open(path, (flags & ~O_CREAT) | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT || tries == 3)
			return fd; /* (ENOENT: removed in between; try creating again) */
	}
}

int cow__io_open_file(const char *path, int flags, int mode, struct cow__io **out)
{
	struct cow__io *io = cow__malloc(sizeof(*io));
	if (!io)
		return COW_ENOMEM;
	int fd = open_file(path, flags, mode);
	if (fd < 0) {
		int rc = -errno;
		cow__free(io);
		return rc;
	}
	io->ops = &file_ops;
	io->fd = fd;
	if (cow__io_wrap) {
		int rc = cow__io_wrap(io, out);
		if (rc)
			file_close(io);
		return rc;
	}
	*out = io;
	return 0;
}
