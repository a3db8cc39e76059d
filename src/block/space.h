/*
 * Internal to the block layer: the space map (bitmap + pending extents, their
 * base and log on disk) and the dirty-block table. See FORMAT.md section 6.
 */
#ifndef COW_BLOCK_SPACE_H
#define COW_BLOCK_SPACE_H

#include "block/block.h"

#define COW_SPACE_MAGIC 0x53574f43u
#define COW_SPACE_HDR 56
enum { SPACE_BITMAP = 1, SPACE_PENDING = 2, SPACE_LOG = 3 };
#define COW_BITMAP_BITS ((COW_BLOCK_SIZE - COW_SPACE_HDR - 8) * 8) /* 32256 */
#define COW_PEND_PER_BLOCK ((COW_BLOCK_SIZE - COW_SPACE_HDR) / 32) /* 126 */
#define COW_EV_PER_BLOCK ((COW_BLOCK_SIZE - COW_SPACE_HDR - 8) / 32) /* 125 */

void cow__sb_encode(const struct cow__sb *sb, uint8_t *b);

/* Free every allocation of the space map and dirty table. */
void cow__space_release(struct cow__bs *bs);

/* Write the transaction's space record (log or new base); updates @sb's space fields. */
int cow__space_persist(struct cow__bs *bs, struct cow__sb *sb);

/* After a successful commit: forget the transaction's events. */
void cow__space_committed(struct cow__bs *bs);

/* Dirty table. */
void cow__dirty_init(struct cow__bs *bs);
int cow__dirty_add(struct cow__bs *bs, uint64_t addr, uint64_t nblk, uint8_t **buf);
void cow__dirty_drop(struct cow__bs *bs, uint64_t addr);
void cow__dirty_clear(struct cow__bs *bs);

#endif
