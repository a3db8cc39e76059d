/*
 * send and recv. Streams go through stdout/stdin so they can cross pipes and
 * ssh; progress goes to stderr when it is a terminal.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cow/store.h"

struct io {
	int fd;
	uint64_t bytes;
	bool progress;
	double last;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress(struct io *io, const char *verb, bool done)
{
	if (!io->progress)
		return;
	double t = now_s();
	if (!done && t - io->last < 0.2)
		return;
	io->last = t;
	char b[32];
	fprintf(stderr, "\r%s %s%s", verb, cli_size(b, sizeof(b), (double)io->bytes),
		done ? "\n" : "   ");
}

static int write_fd(void *ctx, const void *buf, size_t len)
{
	struct io *io = ctx;
	const char *p = buf;
	while (len) {
		ssize_t n = write(io->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : COW_EIO;
		p += n;
		len -= (size_t)n;
		io->bytes += (uint64_t)n;
	}
	progress(io, "sent", false);
	return 0;
}

static int read_fd(void *ctx, void *buf, size_t len)
{
	struct io *io = ctx;
	for (;;) {
		ssize_t n = read(io->fd, buf, len > (1u << 20) ? (1u << 20) : len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		io->bytes += (uint64_t)n;
		progress(io, "received", false);
		return (int)n;
	}
}

int cmd_send(const struct cli_args *a)
{
	const char *base = cli_str(a, "incremental", NULL), *snap = a->argv[0];
	if (!strchr(snap, '@'))
		return cli_usage("send",
				 "'%s' is not a snapshot: send needs NAME@SNAP (`cow snapshot "
				 "%s@SNAP` makes one)",
				 snap, snap);
	if (base && !strchr(base, '@'))
		return cli_usage("send", "-i needs NAME@BASE, a snapshot, not '%s'", base);
	if (isatty(STDOUT_FILENO))
		return cli_usage("send", "refusing to write a stream to a terminal; redirect it");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("send", false, &s, &t);
	if (ex)
		return ex;
	struct io io = {.fd = STDOUT_FILENO, .progress = isatty(STDERR_FILENO)};
	int rc = cow_send(t, snap, base, write_fd, &io);
	progress(&io, "sent", true);
	cow_txn_abort(t);
	cow_store_close(s);
	if (rc)
		return cli_fail(rc, "%s: send %s%s%s", cli_store_path(), base ? base : "",
				base ? " .. " : "", snap);
	return EXIT_OK;
}

int cmd_recv(const struct cli_args *a)
{
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("recv", true, &s, &t);
	if (ex)
		return ex;
	struct io io = {.fd = STDIN_FILENO, .progress = isatty(STDERR_FILENO)};
	char snap[600];
	int rc = cow_recv(t, a->argv[0], read_fd, &io, snap, sizeof(snap));
	progress(&io, "received", true);
	if (rc == 0)
		rc = cow_txn_commit(t);
	else
		cow_txn_abort(t);
	cow_store_close(s);
	if (rc == COW_EFORMAT) {
		/* About the stream, not the store, whatever cow_strerror() says. */
		fprintf(stderr,
			"cow: %s: recv into '%s': the stream is malformed or truncated; "
			"the store is unchanged\n",
			cli_store_path(), a->argv[0]);
		return EXIT_FAIL;
	}
	if (rc) {
		const char *hint = "";
		if (rc == COW_EMISMATCH)
			hint = " (the base snapshot is missing or differs)";
		else if (rc == COW_EBUSY)
			hint = " (changed since the base: roll back first)";
		return cli_fail(rc, "%s: recv into '%s'%s; the store is unchanged",
				cli_store_path(), a->argv[0], hint);
	}
	printf("received %s\n", snap);
	return EXIT_OK;
}
