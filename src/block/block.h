/*
 * block: the store's blocks. It owns the data file, the read-only shared
 * mapping that serves every read, the superblock ring, the space map (which
 * blocks are free, which are pending until no reader can see them), the
 * dirty blocks of the running write transaction, and the commit that writes
 * them out with one flush. It knows nothing of trees; docs/FORMAT.md sections
 * 2, 3, 6 and 7 are its specification. Its state (struct cow__bs) is
 * private to src/block: other layers reach it only through these calls.
 *
 * Concurrency: the mapping (cow__bs_map_*, cow__bs_read on committed blocks)
 * may be used by any thread. Everything else is the writer's: the caller
 * holds the store's writer lock.
 */
#ifndef COW_BLOCK_H
#define COW_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "io/io.h"

#define COW_BLOCK_SIZE 4096u
#define COW_BLOCK_SHIFT 12

struct cow__bptr {
	uint64_t addr; /* 0 = null */
	uint64_t birth;
	uint64_t csum;
};
#define COW_BPTR_SIZE 24

static inline void cow__bptr_load(struct cow__bptr *p, const void *src)
{
	memcpy(p, src, COW_BPTR_SIZE);
}
static inline void cow__bptr_store(void *dst, const struct cow__bptr *p)
{
	memcpy(dst, p, COW_BPTR_SIZE);
}

uint64_t cow__csum(const void *p, size_t len);

/* Space-map blocks (FORMAT.md section 6): header, and records per block. */
#define COW_SPACE_MAGIC 0x53574f43u
enum { /* kinds */
	COW_SPACE_BITMAP = 1,
	COW_SPACE_PENDING = 2,
	COW_SPACE_LOG = 3,  /* format 1: one generation per block */
	COW_SPACE_LOG2 = 4, /* a generation per record */
};
#define COW_SPACE_HDR	   56
#define COW_BITMAP_BITS	   ((COW_BLOCK_SIZE - COW_SPACE_HDR - 8) * 8)  /* 32256 */
#define COW_PEND_PER_BLOCK ((COW_BLOCK_SIZE - COW_SPACE_HDR) / 32)     /* 126 */
#define COW_EV_PER_BLOCK   ((COW_BLOCK_SIZE - COW_SPACE_HDR - 8) / 32) /* 125 */
#define COW_EV2_PER_BLOCK  ((COW_BLOCK_SIZE - COW_SPACE_HDR) / 40)	/* 101 */

/* The superblock's format version; versions 1 and 2 are read, and written as 3. */
#define COW_FORMAT_VERSION 3

/*
 * A space-map record (FORMAT.md section 6): of a log block of kind 4, or of
 * the superblock's tail. @op is COW_EV_ALLOC, _FREE or _RELEASE.
 */
struct cow__sprec {
	uint64_t gen, op, start, len, birth;
};
#define COW_SB_TAIL_OFF 192u
#define COW_SB_TAIL_MAX ((4088u - COW_SB_TAIL_OFF) / 40u) /* 97 */
#define COW_SB_NONCE_OFF 4072u /* 8 bytes after the tail's 97 records */

/* A decoded superblock. */
struct cow__sb {
	uint64_t gen;
	uint64_t synced;
	uint64_t nblocks;
	struct cow__bptr catalog;
	struct cow__bptr refs; /* reference counts >= 2 */
	struct cow__bptr space_base;
	struct cow__bptr space_log;
	uint64_t log_blocks;
	uint8_t uuid[16];
	uint64_t next_id;
	uint64_t used_blocks;    /* space figures at commit (cow_store_stat): in use or pending */
	uint64_t pending_blocks; /* of which pending */
	/* The space map's newest records, kept in the superblock instead of a log block. */
	uint32_t tail_count;
	struct cow__sprec tail[COW_SB_TAIL_MAX];
};

/* A pending extent: born at @birth, unreachable since @freed. */
struct cow__pend {
	uint64_t start, len, birth, freed;
};

/* A block of the space chains (base and log) that the current superblock reaches. */
struct cow__chainblk {
	uint64_t addr, birth;
};

/*
 * The block layer's state: opaque outside src/block (its definition is in
 * block/bs.h). Other layers use the calls below.
 */
struct cow__bs;

/*
 * Open the data file. @create makes a new store when the file is empty or
 * missing. Returns COW_EFORMAT for a file that is not a store. Does not load
 * the writer state (see cow__bs_load).
 */
int cow__bs_open(const char *path, bool create, bool rdonly, bool nosync, struct cow__bs **out);
void cow__bs_close(struct cow__bs *bs);

/*
 * Read both superblock slots. @valid[i] says whether slot i checks out;
 * @sb[i] is its content then.
 */
/* Encode @sb into the 4096 bytes of a superblock slot, checksum included. */
void cow__sb_encode(const struct cow__sb *sb, uint8_t *b);

int cow__bs_read_slots(struct cow__bs *bs, struct cow__sb sb[2], bool valid[2]);

/*
 * The raw generation and checksum fields of slot @i as the mapping shows
 * them now (racy: another process may be writing the slot). Any thread.
 */
void cow__bs_slot_peek(struct cow__bs *bs, int i, uint64_t raw[2]);

/*
 * Decode slot @i from the mapping: 1 valid (@sb filled, @raw its fields),
 * 0 empty (zeros), -1 damaged or torn, COW_EFORMAT another version. Any
 * thread; the mapping must cover blocks 0 and 1.
 */
int cow__bs_slot_load(struct cow__bs *bs, int i, struct cow__sb *sb, uint64_t raw[2]);

/*
 * Make the writer state current for superblock @sb (in slot @slot): load the
 * space map base, replay the log, flush the file so @sb is durable. Called at
 * the first write transaction and whenever another process committed since.
 */
int cow__bs_load(struct cow__bs *bs, const struct cow__sb *sb, int slot);

/*
 * Scrub @sb's space chains (base, then log): read every block and verify it
 * against its pointer and its header, whatever the verified-block cache
 * says. @fn(ctx, addr, rc) hears of each block, rc 0 when it checks out or
 * COW_ECORRUPT; a damaged block ends its chain, since its `next` cannot be
 * trusted. A nonzero return from @fn stops the scrub. Any thread (reads
 * only); the chains of a generation a read transaction is pinned at stay
 * readable until it ends. Returns @fn's nonzero return, an error that is not
 * corruption (reported to @fn first), or 0.
 */
int cow__bs_scrub_space(struct cow__bs *bs, const struct cow__sb *sb,
			int (*fn)(void *ctx, uint64_t addr, int rc), void *ctx);

/*
 * ---- rebuilding the space map (FORMAT.md section 6, "Rebuild") ----
 *
 * The block layer cannot read trees, so the store lends it a walker:
 * @walk(ctx, bs, sb) must call cow__bs_mark for every block reachable from
 * @sb's trees (catalog, objects, refs tree) and return 0, or an error. Set
 * once, right after cow__bs_open. With a walker set, cow__bs_load rebuilds
 * the map (cow__bs_rebuild) when the chains fail to load with COW_ECORRUPT;
 * without one it returns that error.
 */
void cow__bs_set_walker(struct cow__bs *bs,
			int (*walk)(void *ctx, struct cow__bs *bs, const struct cow__sb *sb),
			void *ctx);

/*
 * For the walker: blocks @addr .. @addr + @nblk - 1 are reachable. Returns 1
 * when @addr was marked already (a shared subtree: the walker need not
 * descend again), 0 when newly marked, COW_ECORRUPT for a range outside the
 * store.
 */
int cow__bs_mark(struct cow__bs *bs, uint64_t addr, uint64_t nblk);

/*
 * Make the writer state for @sb (in @slot) from a walk of its trees instead
 * of its space chains: reachable blocks are in use; every other block below
 * sb->nblocks (the old chains among them) is pending with birth 1 and freed
 * = the generation of the write transaction that rebuilds (sb->gen + 1 when
 * none is running), so a reader pinned at any older generation, whose roots
 * the writer does not know, keeps what it sees. The next commit writes a
 * fresh base. Called in a running write transaction (that has made no
 * change yet) it rebuilds for that transaction. Logs that it happened.
 */
int cow__bs_rebuild(struct cow__bs *bs, const struct cow__sb *sb, int slot);

/*
 * Initialize a brand-new store's writer state (before its first commit),
 * for a store named @uuid.
 */
int cow__bs_format(struct cow__bs *bs, const uint8_t uuid[16]);

/* Make sure the mapping covers @nblocks blocks. Any thread. */
int cow__bs_map_ensure(struct cow__bs *bs, uint64_t nblocks);

/* Pointer to block @addr in the mapping (which must cover it). Any thread. */
const uint8_t *cow__bs_mapped(struct cow__bs *bs, uint64_t addr);

/*
 * Read what @p points to: @len bytes (4096 for a node; a value's length for
 * an extent). In a write transaction a block born in it comes from its dirty
 * buffer; anything else comes from the mapping and is verified against
 * p->csum, unless the verified-block cache knows it (COW_READ_VERIFY: always
 * verify). @nblocks bounds valid addresses (the reader's generation; 0 for
 * the writer's own). *@fresh (may be NULL) says whether the bytes were
 * verified just now. Returns COW_ECORRUPT on mismatch.
 */
enum {
	COW_READ_VERIFY = 1, /* always verify, never trust the cache (recovery, fsck) */
	COW_READ_WRITER = 2, /* the writer: blocks born in its transaction are its own */
	COW_READ_NODE = 4,   /* a tree node: cached apart from other kinds of block (extents) */
};
int cow__bs_read(struct cow__bs *bs, unsigned flags, uint64_t nblocks, const struct cow__bptr *p,
		 size_t len, const uint8_t **out, bool *fresh);

/* ---- write transaction (writer lock held) ---- */

/*
 * Begin writing generation @gen. @readers: the generations registered
 * readers are pinned at, sorted ascending. Releases pending extents no reader
 * can see.
 */
int cow__bs_begin(struct cow__bs *bs, uint64_t gen, const uint64_t *readers, size_t nreaders);

/* Allocate @n consecutive blocks and a zeroed dirty buffer for them. */
int cow__bs_alloc(struct cow__bs *bs, uint64_t n, uint64_t *addr, uint8_t **buf);

/*
 * Allocate @n consecutive blocks and write @len bytes (<= n * 4096) into them
 * now, through the write stage (no dirty buffer). For values: they never
 * change once written. Reads in the transaction find them in the file.
 */
int cow__bs_write_new(struct cow__bs *bs, uint64_t n, const void *data, size_t len,
		      uint64_t *addr);

/* Write out the stage (before reading a staged block, and at commit). */
int cow__bs_stage_flush(struct cow__bs *bs);

/*
 * Free @n blocks at @addr born at @birth. A block born in this transaction is
 * free again at once; an older one becomes pending.
 */
int cow__bs_free(struct cow__bs *bs, uint64_t addr, uint64_t n, uint64_t birth);

/* The dirty buffer of a block born in this transaction, or NULL. */
uint8_t *cow__bs_dirty(struct cow__bs *bs, uint64_t addr);

/*
 * Commit: @sb carries the new catalog root and next_id; this fills in the
 * rest, writes the space record, every dirty block and the superblock, and
 * flushes once (unless nosync). On failure the transaction's effects on the
 * space map are undone (as cow__bs_abort) and the store stays at the previous
 * generation.
 */
int cow__bs_commit(struct cow__bs *bs, struct cow__sb *sb);
void cow__bs_abort(struct cow__bs *bs);

/*
 * Punch out every free run of at least @min_run blocks inside the file
 * (FALLOC_FL_PUNCH_HOLE): free blocks are reached by no superblock open may
 * choose and seen by no pinned reader, so their bytes are never read again.
 * Writer lock held, state loaded. *@punched: blocks punched. COW_EOPNOTSUPP
 * when the io cannot punch.
 */
int cow__bs_trim(struct cow__bs *bs, uint64_t min_run, uint64_t *punched);

/*
 * Flush, then record the newest commit as synced in the other slot, so that
 * opening does not re-verify its blocks. Best effort (at close).
 */
void cow__bs_mark_clean(struct cow__bs *bs);

/* Blocks in use, pending, free below nblocks. */
void cow__bs_space(struct cow__bs *bs, uint64_t *used, uint64_t *pending, uint64_t *free_blocks);

/*
 * Compaction's aim (FORMAT.md section 7): the lowest address such that the
 * free blocks below it could hold every block in use or pending at or past
 * it, with @slack blocks to spare; *@above gets the blocks in use or pending
 * at or past it. nblocks when nothing lies past what the file needs. Writer
 * lock held, state loaded.
 */
uint64_t cow__bs_compact_limit(const struct cow__bs *bs, uint64_t slack, uint64_t *above);

/* One past the last block in use or pending (writer lock held, state loaded). */
uint64_t cow__bs_used_end(const struct cow__bs *bs);

/* For checkers: is block @b allocated (in use or pending)? */
bool cow__bs_allocated(struct cow__bs *bs, uint64_t b);

/*
 * For checkers: the @i-th pending extent (i from 0; the stuck ones count),
 * false past the last. Writer lock held.
 */
bool cow__bs_pending_at(const struct cow__bs *bs, size_t i, struct cow__pend *out);

/*
 * For checkers: the @i-th block of the space chains (base and log) the
 * current superblock reaches, false past the last. Writer lock held.
 */
bool cow__bs_chain_at(const struct cow__bs *bs, size_t i, struct cow__chainblk *out);

/*
 * ---- what other layers may read of the state ----
 *
 * cow__bs_io, cow__bs_rdonly and cow__bs_nosync: any thread (fixed at open,
 * or changed only by the writer). The others are the writer's, like the
 * state they show: the caller holds the store's writer lock, or is the only
 * thread using @bs.
 */

/* The data file (its fd, and its ops for size, pread and sync). */
struct cow__io *cow__bs_io(const struct cow__bs *bs);

/* Opened read-only. */
bool cow__bs_rdonly(const struct cow__bs *bs);

/* Commits skip their flush (COW_STORE_NOSYNC). */
bool cow__bs_nosync(const struct cow__bs *bs);

/* Change whether commits flush; returns the previous setting. */
bool cow__bs_set_nosync(struct cow__bs *bs, bool nosync);

/* Is the writer state loaded (cow__bs_load, cow__bs_rebuild, cow__bs_format)? */
bool cow__bs_loaded(const struct cow__bs *bs);

/* The newest committed superblock the writer state is at, and its slot (when loaded). */
const struct cow__sb *cow__bs_sb(const struct cow__bs *bs);
int cow__bs_sb_slot(const struct cow__bs *bs);

/*
 * The file was flushed after the newest commit (cow_store_sync): that
 * commit is durable, and becomes D. Does nothing when not loaded.
 */
void cow__bs_mark_durable(struct cow__bs *bs);

/* The writer's address space in blocks (>= its superblock's nblocks while writing). */
uint64_t cow__bs_nblocks(const struct cow__bs *bs);

/* How many dirty extents the running transaction holds (for white-box tests). */
size_t cow__bs_ndirty(const struct cow__bs *bs);

#endif
