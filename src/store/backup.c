/*
 * Hot backup (FORMAT.md section 9): a copy of the whole store at one
 * generation, taken in a read transaction, so it needs no writer lock and
 * writers go on committing. The pin keeps every block the generation
 * reaches, its space chains included, from reuse until the copy is done.
 *
 * The copy keeps every block at its own address. Every block reachable from
 * the pinned superblock (the catalog, every object's tree and value
 * extents, the refs tree, the space map's base and log chains) is read,
 * verified against the pointer it was reached by, and written at the same
 * offset of a sparse file; everything else stays a hole. Because pointers
 * do not change, nothing is rewritten: shared subtrees are copied once (100
 * clones of a volume cost one copy), the space map still describes the
 * copy exactly, and the superblock is the source's, with `synced` raised to
 * its generation since the copy is flushed before it gets its name.
 *
 * The copy is written under a temporary name beside DEST, flushed, and
 * renamed into place without replacing anything, then the directory is
 * flushed: DEST is either absent or a complete store, whenever the process
 * dies. A kill leaves the temporary file behind (DEST.tmp-XXXXXX), never a
 * half store under DEST's name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store.h"

/* A run of consecutive blocks is written with one pwrite, up to this many. */
#define RUN_MAX 2048u

/* Progress is reported every this many blocks. */
#define PROGRESS_STEP 1024u

struct backup {
	struct cow__bs *bs;
	struct cow__tx tx; /* the read transaction's, reading with COW_READ_VERIFY */
	int fd;
	uint64_t nblocks;
	uint64_t *seen; /* one bit per block: copied already */
	uint64_t run_addr,
		run_len; /* blocks waiting to be written (same addresses in both files) */
	uint64_t done, total, reported;
	cow_progress_fn progress;
	void *progress_ctx;
};

static int write_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return COW_EIO;
		p += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

/*
 * Write the pending run straight from the mapping: a block's address is the
 * same in both files, so a run is contiguous in both.
 */
static int run_flush(struct backup *b)
{
	if (!b->run_len)
		return 0;
	int rc = write_all(b->fd, cow__bs_mapped(b->bs, b->run_addr),
			   (size_t)(b->run_len << COW_BLOCK_SHIFT), b->run_addr << COW_BLOCK_SHIFT);
	b->done += b->run_len;
	b->run_len = 0;
	if (rc == 0 && b->progress && b->done - b->reported >= PROGRESS_STEP) {
		b->reported = b->done;
		b->progress(b->progress_ctx, b->done, b->total > b->done ? b->total : b->done);
	}
	return rc;
}

/* Blocks @addr .. @addr + @n - 1 were verified: copy them. */
static int copy(struct backup *b, uint64_t addr, uint64_t n)
{
	if (b->run_len && addr == b->run_addr + b->run_len && b->run_len + n <= RUN_MAX) {
		b->run_len += n;
		return 0;
	}
	int rc = run_flush(b);
	b->run_addr = addr;
	b->run_len = n;
	return rc;
}

/*
 * 1 when @addr was seen already (a shared subtree or extent, copied once),
 * 0 after marking @n blocks from it, COW_ECORRUPT for a range outside the
 * store.
 */
static int see(struct backup *b, uint64_t addr, uint64_t n)
{
	if (addr < 2 || n == 0 || addr + n > b->nblocks || addr + n < addr)
		return COW_CORRUPT(addr, "pointer beyond the store");
	if (b->seen[addr >> 6] & (1ull << (addr & 63)))
		return 1;
	for (uint64_t a = addr; a < addr + n; a++)
		b->seen[a >> 6] |= 1ull << (a & 63);
	return 0;
}

/*
 * Each pointer of a walk. A value extent was read and verified by the walk
 * before it is offered (read_extents), so it is copied now; a node is
 * copied in on_post, after the walk has read and verified it.
 */
static int on_pre(void *ctx, const struct cow__bptr *p, uint64_t nblk, bool node, int depth)
{
	(void)depth;
	struct backup *b = ctx;
	int rc = see(b, p->addr, nblk);
	if (rc)
		return rc < 0 ? rc : 0; /* seen: shared, copied with its subtree */
	if (!node)
		return copy(b, p->addr, nblk);
	return 1;
}

static int on_post(void *ctx, const struct cow__bptr *p, int depth)
{
	(void)depth;
	return copy(ctx, p->addr, 1);
}

/* A catalog record: walk the object's tree. */
static int on_object(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	(void)key, (void)klen;
	struct backup *b = ctx;
	struct cow__obj o = {0};
	int rc = cow__obj_decode(val, vlen, &o);
	if (rc)
		return rc;
	struct cow__visit v = {.read_extents = true, .pre = on_pre, .post = on_post, .ctx = b};
	return cow__btree_visit(&b->tx, &o.root, &v);
}

/* A block of the space chains, read and verified by the scrub. */
static int on_chain(void *ctx, uint64_t addr, int rc)
{
	struct backup *b = ctx;
	if (rc == COW_ECORRUPT)
		return COW_CORRUPT(addr, "space-map block does not verify (cow fsck --repair "
					 "rebuilds the map)");
	if (rc)
		return rc;
	rc = see(b, addr, 1);
	if (rc)
		return rc < 0 ? rc : 0;
	return copy(b, addr, 1);
}

/*
 * The superblock of the generation @t reads, from whichever slot still
 * holds it, decoded into @sb. COW_EAGAIN when both slots were rewritten
 * since @t began (two commits): begin again.
 */
static int find_sb(cow_txn *t, struct cow__sb *sb)
{
	struct cow__bs *bs = t->s->bs;
	for (int i = 0; i < 2; i++) {
		uint64_t fields[2];
		if (cow__bs_slot_load(bs, i, sb, fields) != 1)
			continue;
		if (sb->gen != t->tx.gen || sb->nblocks != t->tx.nblocks ||
		    memcmp(&sb->catalog, &t->catalog.root, sizeof(sb->catalog)) != 0 ||
		    memcmp(&sb->refs, &t->refs.root, sizeof(sb->refs)) != 0)
			continue;
		return 0; /* decoded whole: its checksum matched */
	}
	return COW_EAGAIN;
}

/* Flush the directory that holds @path, so a new name in it is durable. */
static int sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? cow__malloc((size_t)(slash - path) + 2) : NULL;
	if (slash && !dir)
		return COW_ENOMEM;
	if (dir) {
		size_t n = slash == path ? 1 : (size_t)(slash - path);
		memcpy(dir, path, n);
		dir[n] = 0;
	}
	int rc = 0;
	int fd = open(dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	cow__free(dir);
	return rc;
}

/* Give the finished copy @tmp the name @dest, unless @dest exists. */
static int publish(const char *tmp, const char *dest)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* A file system without RENAME_NOREPLACE: link(2) refuses an existing name too. */
	if (link(tmp, dest) != 0)
		return -errno;
	(void)unlink(tmp);
	return 0;
}

/* Copy the generation @t reads into the open, empty file @fd. */
static int copy_generation(cow_txn *t, const struct cow__sb *sb, int fd,
			   cow_progress_fn progress, void *progress_ctx)
{
	struct backup b = {.bs = t->s->bs,
			   .tx = t->tx,
			   .fd = fd,
			   .nblocks = sb->nblocks,
			   .total = sb->used_blocks > sb->pending_blocks
					    ? sb->used_blocks - sb->pending_blocks
					    : sb->nblocks,
			   .progress = progress,
			   .progress_ctx = progress_ctx};
	b.tx.read_flags = COW_READ_VERIFY; /* every block, whatever the cache says */
	b.seen = cow__calloc((size_t)(sb->nblocks + 63) / 64, sizeof(uint64_t));
	if (!b.seen)
		return COW_ENOMEM;
	int rc = 0;
	if (ftruncate(fd, (off_t)(sb->nblocks << COW_BLOCK_SHIFT)) != 0)
		rc = -errno;
	struct cow__visit cat = {
		.read_extents = true, .pre = on_pre, .post = on_post, .val = on_object, .ctx = &b};
	struct cow__visit refs = {.read_extents = true, .pre = on_pre, .post = on_post, .ctx = &b};
	if (rc == 0)
		rc = cow__btree_visit(&b.tx, &sb->catalog, &cat);
	if (rc == 0)
		rc = cow__btree_visit(&b.tx, &sb->refs, &refs);
	if (rc == 0)
		rc = cow__bs_scrub_space(b.bs, sb, on_chain, &b);
	if (rc == 0)
		rc = run_flush(&b);
	if (rc == 0) {
		/*
		 * Slot 0 gets the source's superblock, durable as a whole once
		 * the copy is flushed; slot 1 stays a hole (zeros, an empty slot).
		 */
		struct cow__sb copy = *sb;
		copy.synced = copy.gen; /* every block of it is durable in the copy */
		uint8_t buf[COW_BLOCK_SIZE];
		cow__sb_encode(&copy, buf);
		rc = write_all(fd, buf, COW_BLOCK_SIZE, 0);
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (rc == 0 && progress)
		progress(progress_ctx, b.done, b.done);
	cow__free(b.seen);
	return rc;
}

/*
 * COW_BACKUP_COMPACT: the copy, not yet under its name, is compacted like
 * any store (its live blocks move down and its tail is cut), so its file
 * is about the size of the live data instead of a sparse file as long as
 * the source's. Nobody else can have it open.
 */
static int compact_copy(const char *tmp)
{
	cow_store *c;
	int rc = cow_store_open(tmp, NULL, &c);
	if (rc)
		return rc;
	rc = cow_store_compact(c, 64ull << 20, NULL, NULL, NULL);
	cow_store_close(c);
	return rc;
}

int cow_store_backup(cow_store *s, const char *dest, unsigned flags, cow_progress_fn progress,
		     void *progress_ctx)
{
	if (!s || !dest || !*dest || (flags & ~(unsigned)COW_BACKUP_COMPACT))
		return COW_EINVAL;
	struct stat st;
	if (lstat(dest, &st) == 0)
		return COW_EEXIST;
	if (errno != ENOENT)
		return -errno;

	cow_txn *t;
	int rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	if (rc)
		return rc;
	struct cow__sb sb;
	size_t tlen = strlen(dest) + sizeof(".tmp-XXXXXX");
	char *tmp = cow__malloc(tlen);
	int fd = -1;
	if (!tmp) {
		rc = COW_ENOMEM;
		goto out;
	}
	/* Two commits since the pin overwrote both slots: pin the newest instead. */
	for (int tries = 0; (rc = find_sb(t, &sb)) == COW_EAGAIN && tries < 100; tries++) {
		cow_txn_reset(t);
		if ((rc = cow_txn_renew(t)) != 0)
			goto out;
	}
	if (rc)
		goto out;

	snprintf(tmp, tlen, "%s.tmp-XXXXXX", dest);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(cow__bs_io(s->bs)->fd, &st) == 0)
		(void)fchmod(fd, st.st_mode & 0666);
	rc = copy_generation(t, &sb, fd, progress, progress_ctx);
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	fd = -1;
	if (rc == 0 && (flags & COW_BACKUP_COMPACT))
		rc = compact_copy(tmp);
	if (rc == 0)
		rc = publish(tmp, dest);
	if (rc == 0)
		rc = sync_dir(dest);
	else
		(void)unlink(tmp);
out:
	if (fd >= 0) {
		close(fd);
		(void)unlink(tmp);
	}
	cow__free(tmp);
	cow_txn_abort(t);
	return rc;
}
