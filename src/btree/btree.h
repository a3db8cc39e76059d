/*
 * btree: the one copy-on-write B+tree (FORMAT.md section 4). Path copying,
 * no sibling or parent pointers: a change copies the nodes from the root to
 * the leaf it touches (each at most once per transaction), and a tree's old
 * root keeps describing the old version. Trees serve the catalog, maps and
 * (later) volume block maps.
 *
 * A tree is a root pointer plus an entry count; it is read and written in the
 * context of a transaction (struct cow__tx). Values returned point into the
 * mapping or into dirty buffers and live as long as store.h says.
 */
#ifndef COW_BTREE_H
#define COW_BTREE_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "cow/base.h"

/* Limits of the node format (the store's public COW_KEY_MAX and COW_VALUE_MAX). */
#define COW_BTREE_KEY_MAX   1024u
#define COW_BTREE_VALUE_MAX 0xffffffffu

struct cow__tree;
struct cow__refdelta;

struct cow__tx {
	struct cow__bs *bs;
	uint64_t gen;     /* generation read (or being written) */
	uint64_t nblocks; /* valid block addresses are below this */
	bool write;
	struct cow__tree *refs; /* the reference-count tree */
	struct cow__refdelta *rd; /* write txn: count changes not yet in refs */
	unsigned read_flags;    /* COW_READ_VERIFY: fsck, never trust the cache */
	uint64_t nodes_read;    /* statistics: nodes fetched */
};

/*
 * A tree. Blocks are reference counted lazily (Rodeh 2008): a block's count
 * is the number of pointers to it (cells of nodes, or catalog records for
 * roots; one node may point twice at one value extent, a reflink); counts of 1 are implicit, larger ones live in the refs
 * tree. Copying a shared node increments its children and decrements itself;
 * dropping a reference frees the block only when the count reaches zero. A
 * node born after @shared_gen cannot be shared (nothing took a reference to
 * this tree since), so the common case needs no lookup.
 */
struct cow__tree {
	struct cow__bptr root; /* addr 0: empty tree */
	uint64_t count;
	uint64_t mods;       /* bumped by every change; cursors re-seek when it moves */
	uint64_t shared_gen; /* nodes born at or before may be shared */
	int64_t blocks;      /* blocks this tree references (nodes + value extents) */
};

#define COW_CELL_MAX 1300u /* largest cell; 3 always fit in a node */
#define COW_BTREE_MAXDEPTH 32

/* Fetch and check the node *p points to (checksum, header, cell bounds). */
int cow__node_get(struct cow__tx *tx, const struct cow__bptr *p, const uint8_t **out);

int cow__btree_get(struct cow__tx *tx, const struct cow__tree *t, const void *key, size_t klen,
		   cow_buf *val);
int cow__btree_put(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen,
		   const void *val, size_t vlen);
int cow__btree_del(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen);

/*
 * A run (FORMAT.md section 4): @n consecutive blocks starting @first blocks
 * into the physical extent @ext (@ext_blocks blocks at ext.addr, written
 * together in generation ext.birth; ext.csum is 0), with one XXH3-64 per
 * block of the run at @csums (n little-endian u64). The cell counts as one
 * pointer to the extent: its reference count is kept at ext.addr, and at
 * zero all @ext_blocks blocks are freed. Seen by generic code (cursor_get,
 * diff) a run's value is its descriptor: COW_RUN_HDR + 8 * n bytes.
 */
#define COW_RUN_HDR 32 /* extent pointer, u16 ext_blocks, u16 first, u32 0 */
#define COW_RUN_MAX 64 /* blocks in a physical extent, and so in a run */
struct cow__run {
	struct cow__bptr ext;
	uint32_t ext_blocks, first, n;
	const uint8_t *csums;
};
/* Does the run lie inside its extent, and the extent within the limits of one? */
static inline bool cow__run_ok(const struct cow__run *r)
{
	return r->ext.addr && r->n && r->ext_blocks <= COW_RUN_MAX &&
	       r->first + r->n <= r->ext_blocks;
}
/* Decode a run's descriptor (a value cursor_get or diff gave); COW_ECORRUPT if malformed. */
int cow__run_decode(const cow_buf *desc, struct cow__run *r);
/* The pointer to block @i of the run, for cow__bs_read (4096 bytes). */
static inline struct cow__bptr cow__run_block(const struct cow__run *r, uint32_t i)
{
	struct cow__bptr p = {r->ext.addr + r->first + i, r->ext.birth, cow__le64(r->csums + 8 * i)};
	return p;
}
/*
 * Put @key -> the run *@r. With @add_ref the extent gains a parent (a slice
 * of an extent another cell holds, or a reflink); without, the cell is the
 * extent's first pointer (an extent just written with cow__bs_write_new).
 * @csums may point into a node: they are copied before anything changes.
 */
int cow__btree_put_run(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen,
		       const struct cow__run *r, bool add_ref);

/*
 * Remove the run cell at @key and hand its reference to the caller: *@r
 * describes it, its checksums copied to @csums (8 * COW_RUN_MAX bytes). The
 * caller gives the reference to a new cell (cow__btree_put_run without
 * @add_ref, for the same extent) or drops it (cow__ref_drop). COW_EINVAL if
 * the cell is not a run.
 */
int cow__btree_take_run(struct cow__tx *tx, struct cow__tree *t, const void *key, size_t klen,
			struct cow__run *r, uint8_t *csums);
/* Is this tree's pointer the only one to *@p (count 1)? A lookup only when it may be shared. */
int cow__btree_sole(struct cow__tx *tx, const struct cow__tree *t, const struct cow__bptr *p,
		    bool *sole);

/* Compute the checksums of every node this transaction wrote; t->root becomes final. */
int cow__btree_finalize(struct cow__tx *tx, struct cow__tree *t);

/*
 * Drop the tree's reference to its root: blocks no other tree shares are
 * freed, the walk stops at every shared node (cost follows what is freed).
 */
int cow__btree_destroy(struct cow__tx *tx, struct cow__tree *t);

/*
 * Count the blocks only this tree references (what destroying it would
 * free), without changing anything. Cost follows that number.
 */
int cow__btree_exclusive(struct cow__tx *tx, const struct cow__tree *t, uint64_t *blocks);

/* Reference counts (write transactions). */
uint64_t cow__ref_get(struct cow__tx *tx, uint64_t addr, int *err);
int cow__ref_inc(struct cow__tx *tx, uint64_t addr);
/* Drop one reference to @p (@nblk blocks): decrement, or free at zero. */
int cow__ref_drop(struct cow__tx *tx, const struct cow__bptr *p, uint64_t nblk, bool maybe_shared);
/* Block @to replaces @from (compaction): it takes over @from's count. */
int cow__ref_move(struct cow__tx *tx, uint64_t from, uint64_t to);
/* Write the transaction's count changes into the refs tree (at commit), or forget them. */
int cow__refs_apply(struct cow__tx *tx);
void cow__refs_discard(struct cow__tx *tx);

/*
 * Diff two trees in key order, skipping subtrees they share by pointer.
 * @fn gets each key present in only one tree (a or b NULL) or in both with
 * different values.
 */
int cow__btree_diff(struct cow__tx *tx, const struct cow__tree *a, const struct cow__tree *b,
		    int (*fn)(void *ctx, const cow_buf *key, const cow_buf *va, const cow_buf *vb),
		    void *ctx);

/*
 * Visit every block of the tree born after @min_birth (0: all), verifying
 * each: @blk(ctx, addr, nblk, birth) per node and value extent, and, for the
 * inline values of the leaves visited, @val(ctx, key, klen, val, vlen). Either
 * callback may be NULL; a nonzero return stops the walk and is returned.
 */
struct cow__walk {
	uint64_t min_birth;
	int (*blk)(void *ctx, uint64_t addr, uint64_t nblk, uint64_t birth);
	int (*val)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
	void *ctx;
};
int cow__btree_walk(struct cow__tx *tx, const struct cow__tree *t, const struct cow__walk *w);

/*
 * White-box check of the whole tree: checksums, headers, key order within
 * and across nodes, separator bounds, levels, births (a child is never newer
 * than its parent), the entry count. Returns 0 or COW_ECORRUPT (logged).
 */
int cow__btree_verify(struct cow__tx *tx, const struct cow__tree *t);

/*
 * fsck's checker: every problem a reader would refuse (checksums, headers,
 * cell bounds) and every invariant the writer keeps (levels, key order
 * within each node and against the separators above it, value kinds, extent
 * lengths against value lengths, births, and with @count_known the entry
 * count), reported one by one through @ck->problem, which gets the block,
 * the first key of the subtree or the key of the cell concerned (may be
 * NULL), and static text. A damaged node's subtree is skipped; the rest is
 * still checked. Blocks whose bit 0 is set in @ck->seen are skipped (shared
 * with a tree already checked) and are set as they are checked, so one @seen
 * serves every tree of a store. *@problems gets the number found. Returns 0,
 * a callback's nonzero return, or an error that stopped the check (COW_EIO,
 * COW_ENOMEM: not damage).
 */
struct cow__check {
	uint8_t *seen;	   /* one byte per block below @nblocks */
	uint32_t *entries; /* may be NULL: per block, entries under a checked node + 1 */
	uint64_t nblocks;
	int (*problem)(void *ctx, uint64_t block, const uint8_t *key, size_t klen, const char *what);
	void (*verified)(void *ctx, uint64_t addr, uint64_t nblk); /* may be NULL */
	/* May be NULL: each inline value of a sound leaf (the catalog's records). */
	int (*val)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
		   uint64_t block);
	void *ctx;
};
int cow__btree_check(struct cow__tx *tx, const struct cow__tree *t, bool count_known,
		     const struct cow__check *ck, uint64_t *problems);

/*
 * A walk over a tree's pointers (visit.c). @pre sees each pointer before it
 * is followed: the root, every branch child, every value extent (@nblk its
 * blocks; @node false; verified first with @read_extents); it returns 1 to
 * go down into a node, 0 to skip, or a negative error to stop. NULL goes
 * down everywhere. Pointers with birth <= @min_birth are skipped unseen.
 * @val (may be NULL) gets each inline value of a leaf; @post (may be NULL)
 * runs after a node's children. @bad (may be NULL: stop with COW_ECORRUPT)
 * hears of a node that cannot be read or fails the walk's guards (a child
 * newer than its parent, too deep, met twice); its subtree is skipped.
 * Errors that are not damage (ENOMEM, EIO) always stop the walk.
 */
struct cow__visit {
	uint64_t min_birth;
	bool read_extents;
	int (*pre)(void *ctx, const struct cow__bptr *p, uint64_t nblk, bool node, int depth);
	int (*val)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
	int (*post)(void *ctx, const struct cow__bptr *p, int depth);
	int (*bad)(void *ctx, uint64_t block, const char *what);
	void *ctx;
};
int cow__btree_visit(struct cow__tx *tx, const struct cow__bptr *root, const struct cow__visit *v);

/*
 * Relocation, for compaction (relocate.c; FORMAT.md section 7). Rewrites
 * @t so that blocks at or past @r->limit move to the lowest free blocks,
 * @r->budget blocks at most (their parents are rewritten beyond it, as they
 * must be). Sharing is kept: a moved block keeps its count, and @r->memo
 * (old address -> new pointer) gives every later parent, in any tree, the
 * same copy. So one write transaction must relocate every tree that reaches
 * a moved block: all of them. A moved block is born in the transaction; a
 * tree that changes takes shared_gen = its generation. Its root needs
 * cow__btree_finalize before it is stored. A move that would land at or past
 * the limit is undone and sets @r->full (no room below: stop).
 */
struct cow__reloc {
	uint64_t limit;
	uint64_t budget;
	uint64_t moved;	    /* blocks moved because they lay past the limit */
	uint64_t rewritten; /* nodes rewritten because a child moved */
	bool full;
	struct cow__u64map memo;
};
void cow__reloc_init(struct cow__reloc *r, uint64_t limit, uint64_t budget);
void cow__reloc_release(struct cow__reloc *r);
int cow__btree_relocate(struct cow__tx *tx, struct cow__tree *t, struct cow__reloc *r);

/* Depth of the tree (0 when empty). */
int cow__btree_depth(struct cow__tx *tx, const struct cow__tree *t);

struct cow__cursor {
	struct cow__tx *tx;
	struct cow__tree *tree;
	int depth; /* levels in path; 0 = unpositioned */
	struct {
		const uint8_t *node;
		int idx;
	} path[COW_BTREE_MAXDEPTH];
	uint64_t mods;
	uint8_t key[COW_BTREE_KEY_MAX]; /* copy of the current key, to re-seek */
	size_t klen;
};

void cow__cursor_init(struct cow__cursor *c, struct cow__tx *tx, struct cow__tree *t);
int cow__cursor_first(struct cow__cursor *c);
int cow__cursor_last(struct cow__cursor *c);
int cow__cursor_seek(struct cow__cursor *c, const void *key, size_t klen);
int cow__cursor_next(struct cow__cursor *c);
int cow__cursor_prev(struct cow__cursor *c);
int cow__cursor_get(struct cow__cursor *c, cow_buf *key, cow_buf *val);
/* The extent pointer of the current value (COW_EINVAL if it is inline). Unverified. */
int cow__cursor_extent(struct cow__cursor *c, struct cow__bptr *p, size_t *vlen);

#endif
