/*
 * Private to the block layer: what its files share, included only by the
 * .c files of src/block. Other layers see block.h alone.
 *
 *   file.c      the data file, its read-only mapping, the superblock slots,
 *               block reads and the verified-block cache
 *   space.c     the space map in memory: bitmap, pending and stuck extents,
 *               allocation and frees, releases at begin, undo at abort
 *   spacemap.c  the space map on disk: base and log chains; load, rebuild,
 *               format, the record a commit writes, scrub
 *   commit.c    the running transaction's writes (dirty blocks, the value
 *               stage) and its end: commit, abort, mark clean
 */
#ifndef COW_BLOCK_BS_H
#define COW_BLOCK_BS_H

#include "block/block.h"

/* One space-map event of a transaction (FORMAT.md section 6). */
enum { COW_EV_ALLOC = 1, COW_EV_FREE = 2, COW_EV_RELEASE = 3 };
struct cow__ev {
	uint64_t op, start, len, birth;
};

/* ---- file.c ---- */

void cow__sb_encode(const struct cow__sb *sb, uint8_t *b);

/* ---- space.c ---- */

/* Grow the bitmap to cover @nblocks blocks (new bits clear). */
int cow__bits_ensure(struct cow__bs *bs, uint64_t nblocks);

/* Set or clear bits; `used` counts only bits that actually change. */
void cow__bits_set(struct cow__bs *bs, uint64_t start, uint64_t len, bool on);

static inline bool cow__bit_test(const struct cow__bs *bs, uint64_t b)
{
	return (bs->bits[b >> 6] >> (b & 63)) & 1;
}

/* The first free block in [from, to), or UINT64_MAX. */
uint64_t cow__bits_next_free(const struct cow__bs *bs, uint64_t from, uint64_t to);

/* Append @p to a list of pending extents. */
int cow__pend_push(struct cow__pend **arr, size_t *n, size_t *cap, struct cow__pend p);

/*
 * cow__bs_alloc with @buf NULL allocates no dirty buffer: the blocks are
 * written through the value stage (commit.c).
 */

/* Undo the running transaction's events, newest first (for abort). */
void cow__space_undo(struct cow__bs *bs);

/* Free every allocation of the space map and dirty table; not loaded after. */
void cow__space_release(struct cow__bs *bs);

/* ---- spacemap.c ---- */

/* Write the transaction's space record (log or new base); updates @sb's space fields. */
int cow__space_persist(struct cow__bs *bs, struct cow__sb *sb);

/* After a successful commit: forget the transaction's events. */
void cow__space_committed(struct cow__bs *bs);

/* ---- commit.c: the dirty table ---- */

void cow__dirty_init(struct cow__bs *bs);
int cow__dirty_add(struct cow__bs *bs, uint64_t addr, uint64_t nblk, uint8_t **buf);
void cow__dirty_drop(struct cow__bs *bs, uint64_t addr);
void cow__dirty_clear(struct cow__bs *bs);

#endif
