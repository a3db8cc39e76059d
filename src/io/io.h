/*
 * io: the store's window onto its file. Every byte the block layer writes,
 * every flush and every size change goes through struct cow__io, so tests can
 * slide a fault-injecting shim underneath (tests/lib/faultio.c) without the
 * block layer knowing. Reads of committed blocks bypass it through a shared
 * read-only mapping of the same file descriptor; a shim therefore lets writes
 * reach the file and keeps what it needs to undo them at a simulated crash.
 */
#ifndef COW_IO_H
#define COW_IO_H

#include <stdint.h>
#include <sys/uio.h>

struct cow__io;

struct cow__io_ops {
	/* Write all of iov at @off or fail with -errno (a short write is -EIO). */
	int (*pwritev)(struct cow__io *io, const struct iovec *iov, int iovcnt, uint64_t off);
	/* Read exactly @len bytes at @off (zeros past end of file), or -errno. */
	int (*pread)(struct cow__io *io, void *buf, size_t len, uint64_t off);
	/* Make every completed write durable (fdatasync), or -errno. */
	int (*sync)(struct cow__io *io);
	/* Grow the file to @size bytes (never shrinks), or -errno. */
	int (*grow)(struct cow__io *io, uint64_t size);
	/* Size of the file in bytes, or -errno. */
	int (*size)(struct cow__io *io, uint64_t *size);
	/* Release the io (closes the descriptor). */
	void (*close)(struct cow__io *io);
	/* Cut the file to @size bytes (never grows it), or -errno. NULL: not offered. */
	int (*shrink)(struct cow__io *io, uint64_t size);
	/* Give the space of [@off, @off+@len) back (it reads as zeros), or -errno. NULL: not offered. */
	int (*punch)(struct cow__io *io, uint64_t off, uint64_t len);
};

struct cow__io {
	const struct cow__io_ops *ops;
	int fd; /* the file, for the read-only mapping */
};

/*
 * Open @path with open(2) @flags/@mode as a plain file io. When O_CREAT
 * creates the file, its directory is fsynced before this returns, so the
 * new file's name is as durable as what is later synced into it.
 */
int cow__io_open_file(const char *path, int flags, int mode, struct cow__io **out);

/*
 * A hook for tests: when set, cow__io_open_file wraps every file it opens
 * through it (the shim decides what to do with the plain io it is given).
 */
extern int (*cow__io_wrap)(struct cow__io *inner, struct cow__io **out);

static inline int cow__io_pwrite(struct cow__io *io, const void *buf, size_t len, uint64_t off)
{
	struct iovec v = {(void *)buf, len};
	return io->ops->pwritev(io, &v, 1, off);
}

#endif
