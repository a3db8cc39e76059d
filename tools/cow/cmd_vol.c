/*
 * Volume commands: vol create/write/read/resize, import, export. Each write
 * command is one transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cow/store.h"

/* cli_end, but a write or read past the end says the volume's size and the fix. */
static int vol_end(cow_store *s, cow_txn *t, int rc, const char *what, const char *name, bool write)
{
	cow_obj_stats st;
	if (rc != COW_ERANGE || cow_obj_stat(t, name, 0, &st) != 0)
		return cli_end(s, t, rc, what, name);
	cow_txn_abort(t);
	cow_store_close(s);
	char size[32];
	fprintf(stderr, "cow: %s: %s '%s': out of range: the volume is %s (%llu bytes)%s%s%s\n",
		cli_store_path(), what, name, cli_size(size, sizeof(size), (double)st.size),
		(unsigned long long)st.size, write ? "; `cow vol resize " : "", write ? name : "",
		write ? " SIZE` makes it larger" : "");
	return EXIT_FAIL;
}

static int vol_size(const struct cli_args *a, bool create)
{
	const char *name = a->argv[0];
	uint64_t size;
	if (!cli_arg_bytes(a->cmd->name, "SIZE", a->argv[1], &size))
		return EXIT_USAGE;
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin(a->cmd->name, true, &s, &t);
	if (ex)
		return ex;
	int rc;
	if (create) {
		rc = cow_vol_create(t, name, size);
	} else {
		cow_vol *v;
		rc = cow_vol_open(t, name, &v);
		if (rc == 0)
			rc = cow_vol_resize(v, size);
	}
	return cli_end(s, t, rc, create ? "create volume" : "resize volume", name);
}

int cmd_vol_create(const struct cli_args *a)
{
	return vol_size(a, true);
}

int cmd_vol_resize(const struct cli_args *a)
{
	return vol_size(a, false);
}

int cmd_vol_write(const struct cli_args *a)
{
	const char *name = a->argv[0];
	uint64_t off;
	if (!cli_arg_bytes(a->cmd->name, "OFFSET", a->argv[1], &off))
		return EXIT_USAGE;
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin(a->cmd->name, true, &s, &t);
	if (ex)
		return ex;
	cow_vol *v;
	int rc = cow_vol_open(t, name, &v);
	static char buf[1 << 20];
	size_t n;
	uint64_t total = 0;
	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		if (n > UINT64_MAX - off - total) { /* past 2^64: no volume is that big */
			rc = COW_ERANGE;
			break;
		}
		rc = cow_vol_pwrite(v, buf, n, off + total);
		total += n;
	}
	if (rc == 0 && ferror(stdin))
		rc = COW_EIO;
	ex = vol_end(s, t, rc, "write to volume", name, true);
	if (ex == EXIT_OK)
		fprintf(stderr, "wrote %llu bytes at %llu\n", (unsigned long long)total,
			(unsigned long long)off);
	return ex;
}

int cmd_vol_read(const struct cli_args *a)
{
	const char *name = a->argv[0];
	uint64_t off, len;
	if (!cli_arg_bytes(a->cmd->name, "OFFSET", a->argv[1], &off) ||
	    !cli_arg_bytes(a->cmd->name, "LENGTH", a->argv[2], &len))
		return EXIT_USAGE;
	if (len > UINT64_MAX - off)
		return cli_usage(a->cmd->name, "OFFSET %llu + LENGTH %llu is past 2^64-1",
				 (unsigned long long)off, (unsigned long long)len);
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin(a->cmd->name, false, &s, &t);
	if (ex)
		return ex;
	cow_vol *v;
	int rc = cow_vol_open(t, name, &v);
	static char buf[1 << 20];
	while (rc == 0 && len > 0) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		rc = cow_vol_pread(v, buf, n, off);
		if (rc == 0 && fwrite(buf, 1, n, stdout) != n)
			rc = COW_EIO;
		off += n;
		len -= n;
	}
	return vol_end(s, t, rc, "read from volume", name, false);
}

int cmd_import(const struct cli_args *a)
{
	int fd = open(a->argv[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail(-errno, "cannot open %s", a->argv[0]);
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("import", true, &s, &t);
	if (ex) {
		close(fd);
		return ex;
	}
	uint64_t bytes = 0;
	struct cli_progress pr;
	cli_progress_begin(&pr, "importing", true);
	int rc = cow_vol_import(t, a->argv[1], fd, &bytes, cli_progress, &pr);
	cli_progress_end(&pr);
	close(fd);
	ex = cli_end(s, t, rc, "import into volume", a->argv[1]);
	if (ex == EXIT_OK) {
		char b[32];
		if (cli_flag(a, "json")) {
			struct json j;
			json_init(&j, stdout);
			json_object(&j);
			json_kstr(&j, "file", a->argv[0]);
			json_kstr(&j, "name", a->argv[1]);
			json_ku64(&j, "bytes", bytes);
			json_end(&j);
		} else {
			printf("imported %s from %s into volume %s\n",
			       cli_size(b, sizeof(b), (double)bytes), a->argv[0], a->argv[1]);
		}
	}
	return ex;
}

int cmd_export(const struct cli_args *a)
{
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("export", false, &s, &t);
	if (ex)
		return ex;
	int fd = open(a->argv[1], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		ex = cli_fail(-errno, "cannot create %s", a->argv[1]);
		cow_txn_abort(t);
		cow_store_close(s);
		return ex;
	}
	cow_export_stats st;
	struct cli_progress pr;
	cli_progress_begin(&pr, "exporting", true);
	int rc = cow_vol_export(t, a->argv[0], fd, &st, cli_progress, &pr);
	cli_progress_end(&pr);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	cow_txn_abort(t);
	cow_store_close(s);
	if (rc)
		return cli_fail(rc, "%s: export of '%s' to %s", cli_store_path(), a->argv[0],
				a->argv[1]);
	char c1[32], c2[32], c3[32];
	if (cli_flag(a, "json")) {
		struct json j;
		json_init(&j, stdout);
		json_object(&j);
		json_kstr(&j, "name", a->argv[0]);
		json_kstr(&j, "file", a->argv[1]);
		json_ku64(&j, "cloned_bytes", st.cloned_bytes);
		json_ku64(&j, "copied_bytes", st.copied_bytes);
		json_ku64(&j, "hole_bytes", st.hole_bytes);
		json_end(&j);
		return EXIT_OK;
	}
	printf("exported %s to %s: %s cloned (reflink), %s copied, %s left as holes%s\n",
	       a->argv[0], a->argv[1], cli_size(c1, sizeof(c1), (double)st.cloned_bytes),
	       cli_size(c2, sizeof(c2), (double)st.copied_bytes),
	       cli_size(c3, sizeof(c3), (double)st.hole_bytes),
	       st.cloned_bytes ? "" : " (no reflinks between these files: copied)");
	return EXIT_OK;
}
