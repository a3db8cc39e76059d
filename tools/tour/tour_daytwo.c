/*
 * Tour step: day two. A store that has lived a while: a volume with 100
 * clones is backed up online (the copy keeps the sharing, so it costs one
 * volume, not 100), then most of the data is destroyed and the file gives
 * the space back to the file system, by commits and by `cow trim`; a tail
 * that live blocks still hold goes once `cow compact` moves them down.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cow/store.h"
#include "tour.h"

static void file_figures(const char *path, char *size, char *disk, size_t n)
{
	struct stat st;
	if (stat(path, &st) != 0)
		memset(&st, 0, sizeof(st));
	cli_size(size, n, (double)st.st_size);
	cli_size(disk, n, (double)st.st_blocks * 512);
}

/* A volume @name of @size bytes, every byte written (not zeros). */
static int make_volume(cow_store *s, const char *name, uint64_t size, char *buf)
{
	cow_txn *x = NULL;
	cow_vol *v;
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_vol_create(x, name, size));
	TRY(cow_vol_open(x, name, &v));
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		for (size_t i = 0; i < (1u << 20); i += 8)
			memcpy(buf + i, &(uint64_t){off + i + 1 + (uint64_t)name[0]}, 8);
		TRY(cow_vol_pwrite(v, buf, 1 << 20, off));
	}
	return cow_txn_commit(x);
fail:
	cow_txn_abort(x);
	return 1;
}

int tour_daytwo(struct tour *t)
{
	char path[512], dest[512], a[32], b[32], c[32], d[32];
	snprintf(path, sizeof(path), "%s/daytwo.cow", t->dir);
	snprintf(dest, sizeof(dest), "%s/daytwo-backup.cow", t->dir);
	uint64_t size = t->quick ? 32u << 20 : t->size / 4;
	cow_store *s = NULL;
	cow_txn *x = NULL;
	char *buf = malloc(1 << 20);
	if (!buf)
		return 1;
	TRY(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	TRY(make_volume(s, "disk", size, buf));
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_snapshot(x, "disk@golden"));
	for (int i = 0; i < 100; i++) {
		char name[32];
		snprintf(name, sizeof(name), "vm%03d", i);
		TRY(cow_clone(x, "disk@golden", name));
	}
	TRY(cow_txn_commit(x));
	x = NULL;

	/* An online backup: a read transaction, writers could go on. */
	double t0 = tour_now_ms();
	TRY(cow_store_backup(s, dest, 0, NULL, NULL));
	double ms = tour_now_ms() - t0;
	file_figures(dest, a, b, sizeof(a));
	tour_say("backup of a %s volume and its 100 clones (%s as seen by users): %.0f ms, %s on "
		 "disk (the sharing is kept)",
		 cli_size(c, sizeof(c), (double)size), cli_size(d, sizeof(d), 101.0 * size), ms, b);

	/* Days later: most of it is gone, and the space goes back. */
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "old%d", i);
		TRY(make_volume(s, name, size, buf));
	}
	file_figures(path, a, b, sizeof(a));
	tour_say("with three more volumes: file %s, %s on disk", a, b);
	TRY(cow_txn_begin(s, 0, &x));
	TRY(cow_rename(x, "disk", "base")); /* with its snapshot; clones follow */
	TRY(cow_destroy(x, "old0", 0));
	TRY(cow_destroy(x, "old1", 0));
	TRY(cow_destroy(x, "old2", 0));
	TRY(cow_txn_commit(x));
	x = NULL;
	for (int i = 0; i < 3; i++) { /* the next commits release, punch and cut the free tail */
		char name[16];
		snprintf(name, sizeof(name), "notes%d", i);
		TRY(cow_txn_begin(s, 0, &x));
		TRY(cow_map_create(x, name));
		TRY(cow_txn_commit(x));
		x = NULL;
	}
	file_figures(path, a, b, sizeof(a));
	tour_say("after destroying them and three small commits: file %s, %s on disk", a, b);
	tour_say("(the file keeps its length while live blocks written last sit at its end; "
		 "the freed space in between is given back as holes)");
	uint64_t given;
	TRY(cow_store_trim(s, &given));
	tour_say("cow trim gave back %s more (free runs inside the file)",
		 cli_size(c, sizeof(c), (double)given));
	cow_compact_stats cs;
	double c0 = tour_now_ms();
	TRY(cow_store_compact(s, 0, &cs, NULL, NULL));
	double cms = tour_now_ms() - c0;
	file_figures(path, a, b, sizeof(a));
	tour_say("cow compact moved %s down in %llu commits (%.0f ms, online: writers commit "
		 "between its steps): file %s, %s on disk; clones still shared",
		 cli_size(c, sizeof(c), (double)cs.moved_bytes), (unsigned long long)cs.commits, cms,
		 a, b);
	cow_store_close(s);
	free(buf);
	return 0;
fail:
	cow_txn_abort(x);
	cow_store_close(s);
	free(buf);
	return 1;
}
