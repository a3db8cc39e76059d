/*
 * What the running write transaction writes, and its end: the dirty blocks
 * (nodes, changed in memory until commit), the value stage (values, final
 * when put, written through at once in large sequential writes), and the
 * commit that writes them out: blocks in address order (coalesced into
 * large vectored writes), the superblock into the slot that does not hold
 * the durable generation, one flush. FORMAT.md section 7 is the protocol
 * and its proof.
 *
 * What must stay true:
 *
 *  1. A dirty buffer exists exactly for each extent allocated with one in
 *     this transaction and not freed since; it is keyed by its first block.
 *  2. The stage holds consecutive blocks starting at stage_addr, all
 *     allocated in this transaction; it is written out before any of them
 *     is read and before the superblock.
 *  3. The slot written is never the one holding generation D (the newest
 *     durable one), so a crash at any point leaves D's slot intact.
 *  4. After a failed commit nothing of its generation may become visible:
 *     the slot it may have written is spoiled (or, without sync, given back
 *     to the newest commit), and the in-memory space map is reloaded.
 */
#include <assert.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/base.h"
#include "block/bs.h"

/* ---- dirty blocks ---- */

/* A dirty extent: the value of bs->dirty, keyed by its first block. */
struct dirty {
	uint64_t nblk; /* blocks */
	uint8_t *buf;  /* nblk * 4096 bytes */
};

void cow__dirty_init(struct cow__bs *bs)
{
	cow__u64map_init(&bs->dirty, sizeof(struct dirty));
}

int cow__dirty_add(struct cow__bs *bs, uint64_t addr, uint64_t nblk, uint8_t **buf)
{
	uint8_t *b = cow__calloc(nblk, COW_BLOCK_SIZE);
	if (!b)
		return COW_ENOMEM;
	void *v;
	int rc = cow__u64map_put(&bs->dirty, addr, &v);
	if (rc < 0) {
		cow__free(b);
		return rc;
	}
	struct dirty *d = v;
	assert(rc == 0); /* freshly allocated blocks are never dirty already */
	if (rc == 1)
		cow__free(d->buf);
	*d = (struct dirty){nblk, b};
	*buf = b;
	return 0;
}

uint8_t *cow__bs_dirty(struct cow__bs *bs, uint64_t addr)
{
	const struct dirty *d = cow__u64map_get(&bs->dirty, addr);
	return d ? d->buf : NULL;
}

size_t cow__bs_ndirty(const struct cow__bs *bs)
{
	return cow__u64map_count(&bs->dirty);
}

void cow__dirty_drop(struct cow__bs *bs, uint64_t addr)
{
	struct dirty *d = cow__u64map_get(&bs->dirty, addr);
	if (!d)
		return;
	cow__free(d->buf);
	cow__u64map_del(&bs->dirty, addr);
}

void cow__dirty_clear(struct cow__bs *bs)
{
	size_t pos = 0;
	uint64_t addr;
	void *v;
	while (cow__u64map_next(&bs->dirty, &pos, &addr, &v))
		cow__free(((struct dirty *)v)->buf);
	/* A big transaction's table would make every later commit scan it. */
	if (bs->dirty.cap > 1024)
		cow__u64map_release(&bs->dirty);
	else
		cow__u64map_clear(&bs->dirty);
}

/* ---- the value stage ---- */

int cow__bs_stage_flush(struct cow__bs *bs)
{
	if (!bs->stage_len)
		return 0;
	size_t len = bs->stage_len;
	bs->stage_len = 0;
	return cow__io_pwrite(bs->io, bs->stage, len, bs->stage_addr << COW_BLOCK_SHIFT);
}

/* A value at least this big goes to the file from the caller's buffer: no copy into the stage. */
#define STAGE_DIRECT (64u << 10)

int cow__bs_write_new(struct cow__bs *bs, uint64_t n, const void *data, size_t len, uint64_t *addr)
{
	int rc = cow__bs_alloc(bs, n, addr, NULL); /* no dirty buffer */
	if (rc)
		return rc;
	size_t bytes = (size_t)n << COW_BLOCK_SHIFT;
	if (!bs->stage) {
		bs->stage = cow__malloc(1u << 20);
		bs->stage_cap = bs->stage ? 1u << 20 : 0;
	}
	bool next = bs->stage_len && *addr == bs->stage_addr + (bs->stage_len >> COW_BLOCK_SHIFT);
	static const uint8_t zeros[COW_BLOCK_SIZE];
	if (bytes >= STAGE_DIRECT || bytes > bs->stage_cap) {
		/* Large: straight to the file, behind what is staged when it follows it. */
		struct iovec v[3];
		int nv = 0;
		uint64_t at = *addr << COW_BLOCK_SHIFT;
		if (next) {
			v[nv++] = (struct iovec){bs->stage, bs->stage_len};
			at = bs->stage_addr << COW_BLOCK_SHIFT;
		} else {
			rc = cow__bs_stage_flush(bs);
		}
		v[nv++] = (struct iovec){(void *)data, len};
		if (bytes > len)
			v[nv++] = (struct iovec){(void *)zeros, bytes - len};
		if (rc == 0)
			rc = bs->io->ops->pwritev(bs->io, v, nv, at);
		if (rc == 0)
			bs->stage_len = 0;
	} else {
		/* Not adjacent to what is staged, or no room: write the stage out first. */
		if (bs->stage_len && (!next || bs->stage_len + bytes > bs->stage_cap))
			rc = cow__bs_stage_flush(bs);
		if (rc == 0) {
			if (!bs->stage_len)
				bs->stage_addr = *addr;
			memcpy(bs->stage + bs->stage_len, data, len);
			memset(bs->stage + bs->stage_len + len, 0, bytes - len);
			bs->stage_len += bytes;
		}
	}
	if (rc) /* give the blocks back: born now, so free at once */
		cow__bs_free(bs, *addr, n, bs->txn_gen);
	return rc;
}

/* ---- commit ---- */

/* An entry of the list write_dirty sorts. */
struct dirty_ext {
	uint64_t addr, nblk;
	uint8_t *buf;
};

static int cmp_dirty(const void *a, const void *b)
{
	uint64_t x = ((const struct dirty_ext *)a)->addr, y = ((const struct dirty_ext *)b)->addr;
	return x < y ? -1 : x > y;
}

/* Write every dirty block, coalescing neighbours into vectored writes. */
static int write_dirty(struct cow__bs *bs)
{
	struct dirty_ext *list = cow__malloc((cow__u64map_count(&bs->dirty) + 1) * sizeof(*list));
	if (!list)
		return COW_ENOMEM;
	size_t n = 0, pos = 0;
	uint64_t addr;
	void *v;
	while (cow__u64map_next(&bs->dirty, &pos, &addr, &v)) {
		const struct dirty *d = v;
		list[n++] = (struct dirty_ext){addr, d->nblk, d->buf};
	}
	qsort(list, n, sizeof(*list), cmp_dirty);
	int rc = 0;
	struct iovec iov[64];
	for (size_t i = 0; i < n && rc == 0;) {
		int cnt = 0;
		uint64_t start = list[i].addr, next = start;
		while (i < n && cnt < 64 && list[i].addr == next) {
			iov[cnt].iov_base = list[i].buf;
			iov[cnt].iov_len = list[i].nblk * COW_BLOCK_SIZE;
			next += list[i].nblk;
			cnt++;
			i++;
		}
		rc = bs->io->ops->pwritev(bs->io, iov, cnt, start * COW_BLOCK_SIZE);
	}
	cow__free(list);
	return rc;
}

/*
 * Space given back to the file system (FORMAT.md section 7, "Giving space
 * back"). A free tail of the address space is dropped from the commit's
 * nblocks when it is at least COW_TAIL_MIN blocks and a sixteenth of the
 * store; the file is then cut, after the commit is durable, to what the
 * larger of the two slots reaches. Free runs inside the file are punched out
 * by cow__bs_trim, and by a commit once the file takes COW_AUTO_TRIM blocks
 * more on disk than its blocks in use need, and that is an eighth of it.
 */
#define COW_TAIL_MIN  256u   /* 1 MiB */
#define COW_AUTO_TRIM 16384u /* 64 MiB */
#define COW_AUTO_RUN  16u    /* runs shorter than 64 KiB are left to cow trim */

static bool worth_cutting(const struct cow__bs *bs, uint64_t end)
{
	return bs->nblocks - end >= COW_TAIL_MIN && (bs->nblocks - end) * 16 >= bs->nblocks;
}

static bool in_chain(const struct cow__bs *bs, uint64_t b)
{
	for (size_t i = 0; i < bs->nchain; i++)
		if (bs->chain[i].addr == b)
			return true;
	return false;
}

/* @end, or lower if the last blocks in use are the space map's chain. */
static uint64_t end_below_chain(const struct cow__bs *bs, uint64_t end)
{
	if (end <= 2 || !in_chain(bs, end - 1))
		return end; /* the common case: one look */
	uint64_t b = end;
	while (b > 2 && (!cow__bit_test(bs, b - 1) || in_chain(bs, b - 1)))
		b--;
	return b;
}

static void cut_tail(struct cow__bs *bs)
{
	if (!bs->io->ops->shrink)
		return;
	uint64_t keep = bs->sb.nblocks;
	struct cow__sb other;
	uint64_t raw[2];
	if (cow__bs_slot_load(bs, !bs->sb_slot, &other, raw) == 1)
		keep = COW_MAX(keep, other.nblocks); /* open may still choose it */
	if (bs->file_blocks < keep + COW_TAIL_MIN)
		return;
	int rc = bs->io->ops->shrink(bs->io, keep << COW_BLOCK_SHIFT);
	if (rc) {
		cow__log("could not give back the free tail of the store: %s", cow_strerror(rc));
		return;
	}
	bs->file_blocks = keep;
}

int cow__bs_trim(struct cow__bs *bs, uint64_t min_run, uint64_t *punched)
{
	*punched = 0;
	if (!bs->io->ops->punch)
		return COW_EOPNOTSUPP;
	uint64_t end = COW_MIN(bs->nblocks, bs->file_blocks);
	for (uint64_t b = cow__bits_next_free(bs, 2, end); b < end;) {
		uint64_t e = b;
		while (e < end && !cow__bit_test(bs, e))
			e++;
		if (e - b >= min_run) {
			int rc = bs->io->ops->punch(bs->io, b << COW_BLOCK_SHIFT,
						    (e - b) << COW_BLOCK_SHIFT);
			if (rc)
				return rc;
			*punched += e - b;
		}
		b = e < end ? cow__bits_next_free(bs, e, end) : end;
	}
	bs->released = 0;
	return 0;
}

/*
 * Punch out free runs once the file takes COW_AUTO_TRIM blocks more on disk
 * than its blocks in use need, and that is an eighth of it. Looked at by a
 * process's first commit (so a store used by short-lived commands gets it
 * too) and again whenever COW_AUTO_TRIM blocks were released since.
 */
static void auto_trim(struct cow__bs *bs)
{
	if (bs->trim_looked && bs->released < COW_AUTO_TRIM)
		return;
	bs->trim_looked = true;
	bs->released = 0;
	struct stat st;
	if (fstat(bs->io->fd, &st) != 0)
		return;
	uint64_t disk = (uint64_t)st.st_blocks / (COW_BLOCK_SIZE / 512);
	if (disk < bs->used + COW_AUTO_TRIM || (disk - bs->used) * 8 < bs->file_blocks)
		return;
	uint64_t punched;
	int rc = cow__bs_trim(bs, COW_AUTO_RUN, &punched);
	if (rc && rc != COW_EOPNOTSUPP)
		cow__log("could not punch out free space: %s", cow_strerror(rc));
}

int cow__bs_commit(struct cow__bs *bs, struct cow__sb *sb)
{
	uint8_t sbuf[COW_BLOCK_SIZE];
	int slot = bs->durable_slot == 0 ? 1 : 0;
	bool wrote_sb = false;

	sb->gen = bs->txn_gen;
	sb->synced = bs->durable;
	memcpy(sb->uuid, bs->sb.uuid, sizeof(sb->uuid));
	uint64_t end = cow__bits_end(bs);
	if (worth_cutting(bs, end)) {
		/* Blocks >= nblocks are free by definition; a new base describes the rest. */
		bs->nblocks = end;
		bs->need_base = true;
	} else if (worth_cutting(bs, end_below_chain(bs, end))) {
		/*
		 * Only the space map's own chain holds the tail (it grows where the
		 * last big write ended): a new base elsewhere frees it, and a later
		 * commit cuts the tail.
		 */
		bs->need_base = true;
	}
	int rc = cow__space_persist(bs, sb);
	if (rc)
		goto fail;
	sb->nblocks = bs->nblocks;
	uint64_t used, pending, free_blocks;
	cow__bs_space(bs, &used, &pending, &free_blocks);
	sb->used_blocks = used + pending;
	sb->pending_blocks = pending;
	rc = cow__bs_stage_flush(bs);
	if (rc == 0)
		rc = write_dirty(bs);
	if (rc)
		goto fail;
	cow__sb_encode(sb, sbuf);
	wrote_sb = true;
	rc = cow__io_pwrite(bs->io, sbuf, COW_BLOCK_SIZE, (uint64_t)slot * COW_BLOCK_SIZE);
	if (rc)
		goto fail;
	if (!bs->nosync) {
		rc = bs->io->ops->sync(bs->io);
		if (rc)
			goto fail;
	}
	bs->sb = *sb;
	bs->sb_slot = slot;
	if (!bs->nosync) {
		bs->durable = sb->gen;
		bs->durable_slot = slot;
	}
	cow__space_committed(bs);
	cow__dirty_clear(bs);
	bs->txn_gen = 0;
	cut_tail(bs);
	auto_trim(bs);
	return 0;
fail:
	bs->stage_len = 0;
	/*
	 * Nothing of this generation may become visible later: spoil the slot we
	 * may have written (best effort; if this write fails too, a reopen still
	 * rejects the slot unless every block of the generation reached the disk).
	 */
	if (wrote_sb) {
		/* No-sync stores may have their newest commit in this slot: put it back. */
		if (slot == bs->sb_slot && bs->sb.gen)
			cow__sb_encode(&bs->sb, sbuf);
		else
			memset(sbuf, 0, sizeof(sbuf));
		cow__io_pwrite(bs->io, sbuf, COW_BLOCK_SIZE, (uint64_t)slot * COW_BLOCK_SIZE);
	}
	cow__dirty_clear(bs);
	bs->txn_gen = 0;
	/* The in-memory space map may be half-updated: rebuild it from disk. */
	struct cow__sb cur = bs->sb;
	int cur_slot = bs->sb_slot;
	if (cur.gen == 0 || cow__bs_load(bs, &cur, cur_slot) != 0)
		cow__space_release(bs); /* reloaded at the next write transaction */
	return rc;
}

void cow__bs_abort(struct cow__bs *bs)
{
	cow__space_undo(bs);
	bs->stage_len = 0; /* staged values were for free blocks: drop them */
	cow__dirty_clear(bs);
	bs->txn_gen = 0;
}

void cow__bs_mark_clean(struct cow__bs *bs)
{
	if (!bs->loaded || bs->txn_gen || bs->sb.gen == 0 || bs->sb.synced == bs->sb.gen)
		return;
	if (bs->io->ops->sync(bs->io) != 0)
		return;
	bs->durable = bs->sb.gen;
	bs->durable_slot = bs->sb_slot;
	/* The same generation again, now claiming its own blocks durable. */
	struct cow__sb sb = bs->sb;
	sb.synced = sb.gen;
	uint8_t buf[COW_BLOCK_SIZE];
	cow__sb_encode(&sb, buf);
	int slot = bs->sb_slot == 0 ? 1 : 0;
	if (cow__io_pwrite(bs->io, buf, COW_BLOCK_SIZE, (uint64_t)slot * COW_BLOCK_SIZE) != 0 ||
	    bs->io->ops->sync(bs->io) != 0)
		return;
	bs->sb = sb;
	bs->sb_slot = bs->durable_slot = slot;
}
