/*
 * Private to the block layer: its state, struct cow__bs, and what its
 * files share; included only by the .c files of src/block. Other layers
 * see block.h alone, where the struct is opaque.
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

#include <pthread.h>

#include "block/block.h"

/*
 * Blocks already verified against a pointer, one tag per slot (address and
 * checksum mixed), shared by every thread of the process. A block is
 * rewritten only after it was freed, and then its pointer carries another
 * checksum, so a tag never needs invalidating.
 */
#define COW_VCACHE_BITS 16

struct cow__bs {
	struct cow__io *io;
	bool rdonly;
	bool nosync;

	/* The read-only mapping: reserved address space, mapped up to map_blocks. */
	pthread_mutex_t map_lock;
	uint8_t *map;	       /* read and written with __atomic builtins */
	uint64_t map_reserved; /* blocks of address space reserved at map */
	uint64_t map_blocks;   /* likewise */
	uint64_t *vtags;   /* (__atomic builtins) the verified-block cache (1 << COW_VCACHE_BITS) */
	void *old_maps[8]; /* outgrown reservations, unmapped at close */
	uint64_t old_sizes[8];
	int nold;

	/* ---- writer state below: valid when `loaded` ---- */
	bool loaded;
	struct cow__sb sb;    /* newest committed superblock */
	int sb_slot;	      /* its slot */
	uint64_t durable;     /* D: newest durable generation */
	int durable_slot;     /* the slot that holds D */
	uint64_t file_blocks; /* file size in blocks */
	uint64_t nblocks;     /* address space in use (>= sb.nblocks while writing) */

	uint64_t *bits; /* allocation bitmap, one bit per block < nblocks */
	size_t bits_words;
	uint64_t used; /* bits set */
	uint64_t hint; /* where the next allocation search starts */

	struct cow__pend *pending; /* not yet released, in `freed` order */
	size_t npending, cap_pending;
	struct cow__pend *stuck; /* eligible but seen by an old reader */
	size_t nstuck, cap_stuck;
	uint64_t *stuck_readers; /* the reader set stuck was last checked against */
	uint64_t stuck_durable;	 /* and the D */
	size_t nstuck_readers, cap_stuck_readers;

	struct cow__ev *carry; /* releases not yet logged by a commit */
	size_t ncarry, cap_carry;
	struct cow__ev *events; /* this transaction's events */
	size_t nevents, cap_events;

	struct cow__chainblk *chain; /* base + log blocks reachable from sb */
	size_t nchain, cap_chain;
	uint64_t base_blocks;
	bool need_base; /* rebuilt from the trees: the next commit writes a new base */
	uint64_t released; /* blocks released since free runs were last looked at */
	bool trim_looked;  /* this process's commits have looked at the free space */

	/* How to walk the trees when the space map must be rebuilt (the store's). */
	int (*walk)(void *ctx, struct cow__bs *bs, const struct cow__sb *sb);
	void *walk_ctx;

	/* Dirty blocks of the running transaction: first block -> {blocks, buffer}. */
	struct cow__u64map dirty;
	uint64_t txn_gen; /* generation being written; 0 when no write txn */

	/*
	 * Value extents are written through at once (they are final when put),
	 * gathered here into large sequential writes instead of dirty buffers.
	 */
	uint8_t *stage;
	size_t stage_cap, stage_len;
	uint64_t stage_addr; /* first block in the stage */
};

/* Pointer to block @addr in the mapping (cow__bs_mapped, inline for the read path). */
static inline const uint8_t *bs_mapped(const struct cow__bs *bs, uint64_t addr)
{
	return __atomic_load_n(&bs->map, __ATOMIC_ACQUIRE) + (addr << COW_BLOCK_SHIFT);
}

/* One space-map event of a transaction (FORMAT.md section 6). */
enum { COW_EV_ALLOC = 1, COW_EV_FREE = 2, COW_EV_RELEASE = 3 };
struct cow__ev {
	uint64_t op, start, len, birth;
};

/* ---- file.c ---- */


/* ---- space.c ---- */

/* Grow the bitmap to cover @nblocks blocks (new bits clear). */
int cow__bits_ensure(struct cow__bs *bs, uint64_t nblocks);

/* Set or clear bits; `used` counts only bits that actually change. */
void cow__bits_set(struct cow__bs *bs, uint64_t start, uint64_t len, bool on);

static inline bool cow__bit_test(const struct cow__bs *bs, uint64_t b)
{
	return (bs->bits[b >> 6] >> (b & 63)) & 1;
}

/* One past the last block in use or pending (at least 2). */
uint64_t cow__bits_end(const struct cow__bs *bs);

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
