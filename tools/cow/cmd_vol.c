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

static int cmd_vol(int argc, char **argv)
{
	if (argc < 3)
		return cli_usage("vol", "expected: cow vol create|write|read|resize NAME ...");
	const char *sub = argv[1], *name = argv[2];
	cow_store *s;
	cow_txn *t;
	int ex, rc;
	uint64_t a = 0, b = 0;
	if (strcmp(sub, "create") == 0 || strcmp(sub, "resize") == 0) {
		if (argc != 4)
			return cli_usage("vol", "expected: cow vol %s NAME SIZE", sub);
		if (!cli_arg_bytes("vol", "SIZE", argv[3], &a))
			return EXIT_USAGE;
		if ((ex = cli_begin("vol", true, &s, &t)))
			return ex;
		if (sub[0] == 'c') {
			rc = cow_vol_create(t, name, a);
		} else {
			cow_vol *v;
			rc = cow_vol_open(t, name, &v);
			if (rc == 0)
				rc = cow_vol_resize(v, a);
		}
		return cli_end(s, t, rc, sub[0] == 'c' ? "create volume" : "resize volume", name);
	}
	if (strcmp(sub, "write") == 0) {
		if (argc != 4)
			return cli_usage("vol", "expected: cow vol write NAME OFFSET < DATA");
		if (!cli_arg_bytes("vol", "OFFSET", argv[3], &a))
			return EXIT_USAGE;
		if ((ex = cli_begin("vol", true, &s, &t)))
			return ex;
		cow_vol *v;
		rc = cow_vol_open(t, name, &v);
		static char buf[1 << 20];
		size_t n;
		uint64_t total = 0;
		while (rc == 0 && (n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
			if (n > UINT64_MAX - a - total) { /* past 2^64: no volume is that big */
				rc = COW_ERANGE;
				break;
			}
			rc = cow_vol_pwrite(v, buf, n, a + total);
			total += n;
		}
		if (rc == 0 && ferror(stdin))
			rc = COW_EIO;
		ex = cli_end(s, t, rc, "write to volume", name);
		if (ex == EXIT_OK)
			fprintf(stderr, "wrote %llu bytes at %llu\n", (unsigned long long)total,
				(unsigned long long)a);
		return ex;
	}
	if (strcmp(sub, "read") == 0) {
		if (argc != 5)
			return cli_usage("vol", "expected: cow vol read NAME OFFSET LENGTH > DATA");
		if (!cli_arg_bytes("vol", "OFFSET", argv[3], &a) ||
		    !cli_arg_bytes("vol", "LENGTH", argv[4], &b))
			return EXIT_USAGE;
		if (b > UINT64_MAX - a)
			return cli_usage("vol", "OFFSET %llu + LENGTH %llu is past 2^64-1",
					 (unsigned long long)a, (unsigned long long)b);
		if ((ex = cli_begin("vol", false, &s, &t)))
			return ex;
		cow_vol *v;
		rc = cow_vol_open(t, name, &v);
		static char buf[1 << 20];
		while (rc == 0 && b > 0) {
			size_t n = b < sizeof(buf) ? (size_t)b : sizeof(buf);
			rc = cow_vol_pread(v, buf, n, a);
			if (rc == 0 && fwrite(buf, 1, n, stdout) != n)
				rc = COW_EIO;
			a += n;
			b -= n;
		}
		return cli_end(s, t, rc, "read from volume", name);
	}
	return cli_usage("vol", "unknown subcommand '%s'", sub);
}

static int cmd_import(int argc, char **argv)
{
	if (argc != 3)
		return cli_usage("import", "expected: cow import FILE NAME");
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail(-errno, "cannot open %s", argv[1]);
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
	int rc = cow_vol_import(t, argv[2], fd, &bytes, cli_progress, &pr);
	cli_progress_end(&pr);
	close(fd);
	ex = cli_end(s, t, rc, "import into volume", argv[2]);
	if (ex == EXIT_OK) {
		char b[32];
		printf("imported %s from %s into volume %s\n", cli_size(b, sizeof(b), (double)bytes),
		       argv[1], argv[2]);
	}
	return ex;
}

static int cmd_export(int argc, char **argv)
{
	if (argc != 3)
		return cli_usage("export", "expected: cow export NAME FILE");
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("export", false, &s, &t);
	if (ex)
		return ex;
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		ex = cli_fail(-errno, "cannot create %s", argv[2]);
		cow_txn_abort(t);
		cow_store_close(s);
		return ex;
	}
	cow_export_stats st;
	struct cli_progress pr;
	cli_progress_begin(&pr, "exporting", true);
	int rc = cow_vol_export(t, argv[1], fd, &st, cli_progress, &pr);
	cli_progress_end(&pr);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	cow_txn_abort(t);
	cow_store_close(s);
	if (rc)
		return cli_fail(rc, "%s: export of '%s' to %s", cli_store_path(), argv[1], argv[2]);
	char a[32], b[32], c[32], d[32];
	printf("exported %s to %s: %s cloned (reflink), %s copied, %s left as holes%s\n", argv[1],
	       argv[2], cli_size(a, sizeof(a), (double)st.cloned_bytes),
	       cli_size(b, sizeof(b), (double)st.copied_bytes),
	       cli_size(c, sizeof(c), (double)st.hole_bytes),
	       st.cloned_bytes ? "" : " (no reflinks between these files: copied)");
	(void)d;
	return EXIT_OK;
}

const struct cli_cmd cli_vol_cmds[] = {
	{"vol", cmd_vol, "create|write|read|resize NAME ...", "sparse volumes",
	 "  cow vol create NAME SIZE         a new volume of SIZE bytes (64M, 16T, ...)\n"
	 "  cow vol write NAME OFFSET < DATA write stdin at OFFSET, in one transaction\n"
	 "  cow vol read NAME OFFSET LENGTH  write LENGTH bytes to stdout (holes are zeros)\n"
	 "  cow vol resize NAME SIZE         grow with zeros or shrink\n"
	 "\n"
	 "SIZE, OFFSET and LENGTH are whole numbers of bytes in decimal, optionally\n"
	 "followed by K, M, G, T, P or E (powers of 1024; KiB, MiB, ... say the same)\n"
	 "or kB, MB, GB, TB, PB, EB (powers of 1000). 4K is 4096, 4kB is 4000.\n"
	 "No fractions, exponents, signs or hex; at most 2^64-1.\n"},
	{"import", cmd_import, "FILE NAME", "a new volume holding a file's bytes (zeros stay holes)",
	 NULL},
	{"export", cmd_export, "NAME FILE",
	 "write a volume or snapshot to a file; reflinks (btrfs, XFS) instead of copies where possible",
	 NULL},
	{NULL, NULL, NULL, NULL, NULL},
};
