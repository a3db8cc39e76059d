/*
 * Sinks: where images and checkpoints go. One small vtable behind an opaque
 * handle, so a store volume can become one more constructor without callers
 * of cow_mem_snapshot or cow_mem_checkpoint changing.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mem/mem.h"

struct cow_mem_sink {
	cow_mem_sink_ops ops;
	void *ctx;
	int fd; /* fd sinks: lets a forked child write directly */
	uint64_t base;
	char *buf; /* buffer sinks */
	size_t len;
	bool owns_ctx; /* free ctx with the sink (cowkit's own callback sinks) */
};

static int fd_write(void *ctx, uint64_t off, const void *data, size_t len)
{
	cow_mem_sink *s = ctx;
	const char *p = data;
	while (len) {
		ssize_t n = pwrite(s->fd, p, len, (off_t)(s->base + off));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return COW_EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int buf_write(void *ctx, uint64_t off, const void *data, size_t len)
{
	cow_mem_sink *s = ctx;
	if (off > s->len || len > s->len - off)
		return COW_ERANGE;
	memcpy(s->buf + off, data, len);
	return 0;
}

static int buf_begin(void *ctx, cow_mem_image_kind kind, uint64_t size)
{
	cow_mem_sink *s = ctx;
	(void)kind;
	return size > s->len ? COW_ERANGE : 0;
}

static int make(cow_mem_sink **out, cow_mem_sink *tmpl)
{
	if (!out)
		return COW_EINVAL;
	cow_mem_sink *s = cow__malloc(sizeof(*s));
	if (!s) {
		*out = NULL;
		return COW_ENOMEM;
	}
	*s = *tmpl;
	if (!s->ctx)
		s->ctx = s;
	*out = s;
	return 0;
}

int cow_mem_sink_fd(int fd, uint64_t base, cow_mem_sink **out)
{
	if (fd < 0)
		return COW_EINVAL;
	cow_mem_sink t = {.ops = {.write = fd_write}, .fd = fd, .base = base};
	return make(out, &t);
}

int cow_mem_sink_buffer(void *buf, size_t len, cow_mem_sink **out)
{
	if (!buf)
		return COW_EINVAL;
	cow_mem_sink t = {
		.ops = {.begin = buf_begin, .write = buf_write}, .fd = -1, .buf = buf, .len = len};
	return make(out, &t);
}

int cow_mem_sink_callbacks(const cow_mem_sink_ops *ops, void *ctx, cow_mem_sink **out)
{
	if (!ops || !ops->write)
		return COW_EINVAL;
	cow_mem_sink t = {.ops = *ops, .ctx = ctx, .fd = -1};
	int rc = make(out, &t);
	if (rc == 0 && !ctx)
		(*out)->ctx = NULL; /* the caller's NULL stays NULL */
	return rc;
}

int cow__sink_callbacks_owned(const cow_mem_sink_ops *ops, void *ctx, cow_mem_sink **out)
{
	int rc = cow_mem_sink_callbacks(ops, ctx, out);
	if (rc == 0)
		(*out)->owns_ctx = true;
	return rc;
}

void *cow__sink_ctx(const cow_mem_sink *s)
{
	return s && s->owns_ctx ? s->ctx : NULL;
}

void cow_mem_sink_destroy(cow_mem_sink *s)
{
	if (s && s->owns_ctx)
		cow__free(s->ctx);
	cow__free(s);
}

int cow__sink_begin(cow_mem_sink *s, cow_mem_image_kind kind, uint64_t size)
{
	return s->ops.begin ? s->ops.begin(s->ctx, kind, size) : 0;
}

int cow__sink_write(cow_mem_sink *s, uint64_t off, const void *data, size_t len)
{
	return s->ops.write(s->ctx, off, data, len);
}

int cow__sink_writev(cow_mem_sink *s, uint64_t off, const struct iovec *iov, int n)
{
	if (s->ops.write != fd_write || n == 1) {
		for (int i = 0; i < n; i++) {
			int rc = s->ops.write(s->ctx, off, iov[i].iov_base, iov[i].iov_len);
			if (rc)
				return rc;
			off += iov[i].iov_len;
		}
		return 0;
	}
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	ssize_t w;
	do {
		w = pwritev(s->fd, iov, n, (off_t)(s->base + off));
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	if ((size_t)w == total)
		return 0;
	/* Short write: finish buffer by buffer from where it stopped. */
	size_t done = (size_t)w;
	for (int i = 0; i < n; i++) {
		size_t len = iov[i].iov_len;
		if (done >= len) {
			done -= len;
			off += len;
			continue;
		}
		int rc = fd_write(s, off + done, (const char *)iov[i].iov_base + done, len - done);
		if (rc)
			return rc;
		off += len;
		done = 0;
	}
	return 0;
}

int cow__sink_end(cow_mem_sink *s, int status)
{
	return s->ops.end ? s->ops.end(s->ctx, status) : 0;
}

int cow__sink_fd(const cow_mem_sink *s, uint64_t *base)
{
	*base = s->base;
	return s->fd;
}
