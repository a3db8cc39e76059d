/*
 * store: the public cow_store/cow_txn/cow_map API over the block and btree
 * layers: the lock file (writer lock, newest root, reader table), recovery at
 * open, transactions, the catalog of named objects, maps.
 */
#ifndef COW_STORE_INT_H
#define COW_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "block/block.h"
#include "btree/btree.h"
#include "cow/rcu.h"
#include "cow/store.h"

/* ---- locks on the data file (FORMAT.md section 8) ---- */

/* The newest commit, as a reader or writer needs it. */
struct cow__meta {
	uint64_t gen;
	uint64_t nblocks;
	struct cow__bptr catalog;
	struct cow__bptr refs;
	uint64_t used_blocks, pending_blocks; /* space figures at that commit */
};

/* Reader pins lock byte COW_PIN_BASE + gen of the data file; the writer lock is byte 0. */
#define COW_PIN_BASE (1ull << 62)

struct cow__pin {
	uint64_t gen;
	uint64_t count; /* read transactions of this process on gen */
};

struct cow__locks {
	int fd;		  /* this process's own description: writer lock, pins */
	int probe_fd;	  /* the io descriptor: never locks, so GETLK sees every lock */
	const char *path; /* for reopening after fork() */
	bool rdonly;
	uint64_t epoch;	    /* fork epoch fd belongs to */
	pthread_mutex_t mu; /* fd, pins */
	struct cow__pin *pins;
	size_t npins, cap;
};

/*
 * Counts forks: a child sees a new value (descriptors it shares are the
 * parent's). Counted from the first cow__locks_open of the process on.
 */
extern _Atomic uint64_t cow__fork_epoch_v;
static inline uint64_t cow__fork_epoch(void)
{
	return __atomic_load_n((const uint64_t *)&cow__fork_epoch_v, __ATOMIC_RELAXED);
}
int cow__locks_open(struct cow__locks *lk, const char *path, int probe_fd, bool rdonly);
void cow__locks_close(struct cow__locks *lk);
/* The writer lock (byte 0): COW_ELOCKED if busy and !@wait; COW_EREADONLY. */
int cow__locks_writer(struct cow__locks *lk, bool wait);
void cow__locks_writer_release(struct cow__locks *lk);
/*
 * Pin generation @gen for a read transaction of this process; unpin with the
 * fork epoch the pin was taken in (a pin from before fork() is the parent's).
 */
int cow__locks_pin(struct cow__locks *lk, uint64_t gen);
void cow__locks_unpin(struct cow__locks *lk, uint64_t gen, uint64_t epoch);
/* Every pinned generation of every process, sorted; *n on return. */
int cow__locks_pinned(struct cow__locks *lk, uint64_t **gens, size_t *n, size_t *cap);

/*
 * What a process knows of the superblock slots: the commit it reads (m, the
 * newest valid slot) and the raw generation and checksum fields of both
 * slots when it was chosen. While the slots still hold those fields, m is
 * still the newest commit (published to this process's readers with RCU).
 */
struct cow__known {
	struct cow__meta m;
	uint64_t raw[2][2];
};

/* Ended transactions kept (not freed) to catch a second commit or abort. */
#define COW_TXN_QUARANTINE 16

/* ---- handles ---- */

struct cow_store {
	char *path;
	unsigned flags;
	struct cow__bs *bs;
	struct cow__locks lk;
	/*
	 * One write transaction per process at a time. A flag under a mutex
	 * rather than the mutex itself: a transaction may end in another
	 * thread than the one that began it.
	 */
	pthread_mutex_t wmutex;
	pthread_cond_t wcond;
	bool wbusy;
	pthread_t wowner;  /* thread that began the write txn (wbusy) */
	uint64_t wepoch;   /* fork epoch of that thread's process */
	uint64_t *readers; /* scratch for the pin scan (writer only) */
	size_t nreaders, cap_readers;
	uint64_t next_id; /* writer: next object id */
	/*
	 * The newest commit as this process knows it (a struct cow__known),
	 * published with RCU, so beginning a read transaction takes no lock
	 * while the slots do not change.
	 */
	cow_rcu *root;
	pthread_mutex_t known_mu; /* refreshing root; rejected */
	struct {
		uint64_t gen,
			csum;	/* a slot found not to verify at open: skipped while unchanged */
	} rejected[2], torn[2]; /* and a slot found torn, not waited for again */
	_Atomic long ntxn;	/* transactions not yet ended */
	pthread_mutex_t qmutex; /* quarantine */
	struct cow_txn *quarantine[COW_TXN_QUARANTINE];
	unsigned qnext;
};

/* Catalog records (FORMAT.md section 5). */
enum { OBJ_MAP = 1, OBJ_VOLUME = 2, OBJ_FS = 3 };
/* The tag of an fs tree's file data keys: (u64be ino, 2, u64be block), FORMAT.md 10. */
#define COW__FS_T_DATA 2
/* A tree of keys whose count is its entries (maps and file systems), not a block map. */
static inline bool cow__obj_keyed(int type)
{
	return type == OBJ_MAP || type == OBJ_FS;
}
static inline const char *cow__obj_type_name(int type)
{
	return type == OBJ_MAP ? "map" : type == OBJ_FS ? "fs" : "volume";
}
enum { OBJF_SNAPSHOT = 1 };
#define CAT_FIXED	 88
#define COW_FULLNAME_MAX (2 * COW_NAME_MAX + 1) /* NAME@SNAP */
struct cow__obj {
	int type;
	unsigned flags;
	uint64_t id;
	struct cow__bptr root;
	uint64_t count; /* entries (maps) or size in bytes (volumes) */
	uint64_t created;
	uint64_t shared_gen;
	uint64_t blocks;
	uint8_t guid[16];		   /* identity of this version, kept by send/recv */
	char origin[COW_FULLNAME_MAX + 1]; /* a clone's origin snapshot, or "" */
};
void cow__guid(uint8_t guid[16]);
int cow__obj_decode(const uint8_t *v, size_t len, struct cow__obj *o);
/* Encode into @v (CAT_FIXED + COW_FULLNAME_MAX bytes); returns the length. */
size_t cow__obj_encode(const struct cow__obj *o, uint8_t *v);

/*
 * An open object (map or volume, live or snapshot) in a transaction. The
 * public cow_map and cow_vol are this struct; it lives until the txn ends.
 */
struct cow_map {
	cow_txn *txn;
	struct cow_map *next;
	char name[COW_FULLNAME_MAX + 1];
	struct cow__obj rec; /* as in the catalog, root/count/blocks kept in tree */
	struct cow__tree tree;
	uint64_t clean_mods; /* tree.mods when last written to the catalog */
	bool dropped;
	bool readonly;    /* a snapshot, or a read transaction */
	uint32_t renewal; /* txn->renewals when opened: stale after a reset */
};

struct cow_cursor {
	struct cow__cursor c;
	cow_map *map;
	struct cow_cursor *next;
};

struct cow_txn {
	cow_store *s;
	bool write;
	bool ended;	/* committed or aborted: kept in quarantine, every call fails */
	bool blocked; /* ended, reset or err: the fast check fails, the slow one says why */
	int err;	/* write txn: first hard error; only abort is allowed then */
	uint64_t epoch; /* fork epoch at begin: a transaction must not cross fork() */
	uint64_t pin;	/* read txn: the generation pinned, or 0 */
	bool reset;     /* read txn: let go of its generation until renewed */
	uint32_t renewals; /* resets so far: handles opened before one are stale */
	struct cow__tx tx;
	struct cow__tree catalog;
	struct cow__tree refs;
	struct cow_map *maps;
	struct cow_cursor *cursors;
};

/* Shared by the object files (map.c, volume.c, version.c). */
int cow__name_check(const char *name, bool snapshot_ok, size_t *len);
int cow__catalog_get(cow_txn *t, const char *name, struct cow__obj *o);
int cow__catalog_put(cow_txn *t, const char *name, const struct cow__obj *o);
/*
 * A mutation of @t failed part-way (@rc != 0): the transaction may hold half
 * of it, so only abort is allowed from now on (COW_ETXNERR). Called exactly
 * where state changes fail, never for a refusal made before changing
 * anything. Returns @rc.
 */
int cow__txn_poison(cow_txn *t, int rc);
/*
 * Can @t be used (@write: for changes)? COW_EINVAL for NULL, an ended
 * transaction or one begun before fork(); COW_EREADONLY; COW_ETXNERR.
 */
int cow__txn_check_slow(const cow_txn *t, bool write);
static inline int cow__txn_check(const cow_txn *t, bool write)
{
	if (t && !t->blocked && (t->write || !write) && t->epoch == cow__fork_epoch())
		return 0; /* every call on a map or cursor passes here */
	return cow__txn_check_slow(t, write);
}
/*
 * Call @fn(ctx, name, record) for each catalog entry whose name starts with
 * @prefix (NULL: all), in name order; names are NUL-terminated copies.
 */
int cow__catalog_each(cow_txn *t, const char *prefix,
		      int (*fn)(void *ctx, const char *name, const struct cow__obj *o), void *ctx);
/*
 * Block maps (blockmap.c): sparse arrays of 4096-byte blocks kept as runs
 * in a tree (FORMAT.md sections 4 and 10). A run of blocks [b, b + r.n) is
 * the cell at key @pre || be64(b); a format-2 one-block extent reads as a
 * run of one. A volume's map is its whole tree (no prefix); a file's is
 * the cells under (inode, 2) in its fs tree. Runs never overlap and never
 * reach block @limit; a block no run covers is a hole (zeros), and whole
 * blocks of zeros written become holes.
 *
 * Writing first carves the range out of the runs it overlaps: a run cut at
 * either end keeps its pieces, as extents of their own when nothing else
 * points at its extent, as slices of it otherwise. @mapped follows the
 * blocks the map gains and loses (a file's st_blocks). Changes poison
 * nothing: the caller does.
 */
#define COW_BMAP_PRE_MAX 16
struct cow__bmap {
	struct cow__tx *tx;
	struct cow__tree *t;
	uint8_t pre[COW_BMAP_PRE_MAX];
	size_t plen;
	uint64_t limit;
	int64_t mapped;
};
struct cow__vcell {
	uint64_t key; /* the run's first block */
	struct cow__run r;
	bool one; /* a format-2 one-block extent (V_EXTENT), not a run */
	uint8_t csum1[8];
};
void cow__bmap_init(struct cow__bmap *m, struct cow__tx *tx, struct cow__tree *t, const void *pre,
		    size_t plen, uint64_t limit);
/*
 * Is @key (of a tree of object @type) a block map's key? *@plen gets its
 * prefix length. Volumes: every key; fs trees: (inode, 2, block) keys.
 */
bool cow__bmap_key(int type, const void *key, size_t klen, size_t *plen);
/*
 * Position @c at the first run ending after block @b: COW_ENOTFOUND if
 * none. cow__bmap_cell reads the run under @c (COW_ENOTFOUND past the
 * map's keys) and refuses one starting before @floor: entries never
 * overlap. cow__bmap_next: the first run ending after @b, in *@vc.
 */
int cow__bmap_seek(const struct cow__bmap *m, struct cow__cursor *c, uint64_t b);
int cow__bmap_cell(const struct cow__bmap *m, struct cow__cursor *c, uint64_t floor,
		   struct cow__vcell *vc);
int cow__bmap_next(const struct cow__bmap *m, uint64_t b, struct cow__vcell *vc);
/* Read and verify block @i of a run. */
int cow__bmap_block(struct cow__tx *tx, const struct cow__run *r, uint32_t i, const uint8_t **d);
/* Bytes [@off, @off + @len), holes as zeros. */
int cow__bmap_read(const struct cow__bmap *m, void *buf, size_t len, uint64_t off);
/* Write bytes at @off: partial blocks are read, changed and written whole. */
int cow__bmap_write(struct cow__bmap *m, const void *buf, size_t len, uint64_t off);
/* Zero bytes [@off, @off + @len): whole blocks become holes. */
int cow__bmap_zero(struct cow__bmap *m, uint64_t off, uint64_t len);
/* Make blocks [@lo, @hi) holes. */
int cow__bmap_carve(struct cow__bmap *m, uint64_t lo, uint64_t hi);
/*
 * A reflink: blocks [@b, @b + @n) of @m become what blocks [@sb, @sb + @n)
 * of @src are, sharing their extents (slices that each add a reference);
 * nothing is copied, the cost follows the source's runs. @src may be @m's
 * tree under another prefix, or the same map when the ranges do not meet.
 */
int cow__bmap_share(struct cow__bmap *m, uint64_t b, const struct cow__bmap *src, uint64_t sb,
		    uint64_t n);
/*
 * A block map read block by block in increasing order: after
 * cow__vmap_start(@b0), cow__vmap_get gives the pointer of each block
 * b >= @b0 asked for (addr 0: a hole); b must not decrease.
 */
struct cow__vmap {
	const struct cow__bmap *m;
	struct cow__cursor c;
	struct cow__vcell vc;
	uint64_t floor;
	bool have; /* vc is the entry under c; false and at end: no more entries */
};
int cow__vmap_start(struct cow__vmap *v, const struct cow__bmap *m, uint64_t b0);
int cow__vmap_get(struct cow__vmap *v, uint64_t b, struct cow__bptr *p);
/* Blocks a block-map value (as diff gives it) covers: 1 for a one-block extent. */
int cow__bmap_value_blocks(const cow_buf *val, uint64_t *n);
/* A volume's block map; file @ino's in an fs tree (FORMAT.md section 10). */
void cow__vol_bmap(cow_vol *v, struct cow__bmap *m);
void cow__fs_bmap(struct cow__bmap *m, struct cow__tx *tx, struct cow__tree *t, uint64_t ino);

/* A new, empty object @name of @type (count: a volume's size) in write txn @t. */
int cow__obj_create(cow_txn *t, const char *name, int type, uint64_t count);
/* Open @name as @type (0: any) in @t; snapshots and read txns give read-only handles. */
int cow__obj_open(cow_txn *t, const char *name, int type, cow_map **out);
/* The open handle of @name in @t, if any. */
cow_map *cow__obj_find(cow_txn *t, const char *name);
/* Write the handle's tree back into its catalog record now. */
int cow__obj_flush(cow_map *m);

/*
 * Recovery: does superblock @sb verify (every block of its trees born after
 * sb->synced; not the space chains, which readers never need)? 0,
 * COW_ECORRUPT, or another error.
 */
int cow__store_verify_sb(struct cow__bs *bs, const struct cow__sb *sb);

/*
 * ---- the space map's repair (repair.c) ----
 *
 * cow__store_space_walk is the walker the block layer is given at open
 * (cow__bs_set_walker): it marks every block @sb's trees reach. Shared
 * subtrees are walked once; value extents are marked, not read.
 *
 * cow__store_scrub_space scrubs the space chains of the generation read
 * transaction @t is pinned at (cow__bs_scrub_space reports to @fn), if a
 * superblock slot still holds it; 0 with nothing reported otherwise.
 */
int cow__store_space_walk(void *ctx, struct cow__bs *bs, const struct cow__sb *sb);
int cow__store_scrub_space(cow_txn *t, int (*fn)(void *ctx, uint64_t addr, int rc), void *ctx);
/* ---- end of repair.c ---- */

/*
 * Debug checker: every tree verifies, and the space map agrees with a walk
 * of everything the newest commit reaches: no block leaked, none used twice,
 * none both reachable and free. Runs in a read transaction with the space
 * map of its generation loaded (no writer lock, no write access needed);
 * holds off this process's writers meanwhile.
 */
int cow__store_check(cow_store *s);
/* The same, every problem passed to @fn (NULL: logged); nonzero from @fn stops the calls. */
int cow__store_check_all(cow_store *s, int (*fn)(void *ctx, uint64_t block, const char *what),
			 void *ctx);

#endif
