/*
 * cowkit store: a crash-proof, copy-on-write key-value store in one file.
 *
 * A store holds named objects (maps now; volumes later) in copy-on-write
 * B+trees. Changes happen in transactions: one writer at a time (across
 * threads and processes), any number of readers, each reading one consistent
 * generation without locks while the writer commits. A durable commit costs
 * one flush. docs/FORMAT.md specifies the file and the commit protocol.
 *
 * Calling sequence:
 *
 *	cow_store *s;
 *	cow_store_open("db.cow", &(cow_store_options){.flags = COW_STORE_CREATE}, &s);
 *	cow_txn *t;
 *	cow_txn_begin(s, 0, &t);
 *	cow_map *m;
 *	cow_map_open(t, "users", &m);          // after cow_map_create(t, "users")
 *	cow_map_put(m, "k", 1, "v", 1);
 *	cow_txn_commit(t);                     // durable when it returns 0
 *	cow_store_close(s);
 *
 * Threading: a cow_store may be shared by any number of threads. A cow_txn,
 * and the maps and cursors opened in it, belong to one thread at a time.
 *
 *	call                       may run concurrently with
 *	cow_store_open             anything, in any thread or process; never
 *	                           waits for a writer (only creating a new
 *	                           store takes the writer lock, briefly)
 *	cow_txn_begin(RDONLY)      anything, in any thread or process; never
 *	                           waits for a writer
 *	cow_txn_begin(write)       anything; it waits while another write txn
 *	                           is open in this or another process, through
 *	                           whatever path (links, bind mounts) it opened
 *	cow_txn_commit/abort       anything (each txn by its own thread)
 *	cow_store_stat             anything; never waits for a writer
 *	cow_store_close            nothing of this handle: every txn must be
 *	                           ended first
 *
 * Processes coordinate through locks on the data file itself, which the
 * kernel releases when a process dies (docs/FORMAT.md section 8): no lock
 * file, no pids, so readers in other PID namespaces or under other uids are
 * seen, and a reader needs only read access to the data file.
 *
 * Forked children may keep using a store opened before fork(): their
 * transactions lock through a descriptor of their own. Until a child first
 * uses the store (or closes it, or execs: the descriptors are close-on-exec)
 * it holds the parent's descriptor too, so if the parent dies inside a
 * transaction, that transaction's locks last until the child lets go. A transaction must
 * not cross fork(): in the child, every call on one begun before it returns
 * COW_EINVAL and leaves the parent's locks alone.
 *
 * Misuse that is cheap to catch returns an error instead of crashing or
 * hanging: a second commit or abort of a transaction, or a map, volume or
 * cursor used after its transaction ended (COW_EINVAL, detected while the
 * handle has not been reused: the last COW_TXN_QUARANTINE ended transactions
 * of a store are kept); a second write transaction begun by the thread that
 * holds one (COW_EDEADLK); cow_store_close with transactions open (the
 * handle is left open and a message logged). Other misuse (a handle used
 * after its store was closed, two threads in one transaction) is undefined.
 */
#ifndef COW_STORE_H
#define COW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cow/visibility.h"
#include "cow/errors.h"
#include "cow/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cow_store cow_store;
typedef struct cow_txn cow_txn;
typedef struct cow_map cow_map;
typedef struct cow_vol cow_vol;
typedef struct cow_cursor cow_cursor;


/* Flags for cow_store_options.flags. */
enum {
	COW_STORE_CREATE = 1u << 0, /* create the store if it does not exist */
	COW_STORE_EXCL = 1u << 1,   /* with CREATE: fail with COW_EEXIST if it exists */
	COW_STORE_NOSYNC = 1u << 2, /* commits don't flush; see cow_store_sync() */
	COW_STORE_RDONLY = 1u << 3, /* read transactions only */
};

typedef struct cow_store_options {
	unsigned flags;
} cow_store_options;

/* Limits. */
#define COW_KEY_MAX 1024u          /* bytes in a key (at least 1) */
#define COW_VALUE_MAX 0xffffffffu  /* bytes in a value */
#define COW_NAME_MAX 255u          /* bytes in an object name */

/*
 * cow_store_open - open (or create) the store at @path.
 *
 * @path: the data file (the store is this one file).
 * @opts: flags; NULL means none (open an existing store, durable commits).
 * @out:  receives the handle, to be closed with cow_store_close().
 *
 * Opening recovers from any crash: it picks the newest commit whose tree
 * blocks all verify (docs/FORMAT.md section 7; a damaged space map does not
 * count: the writer rebuilds it), takes no lock (except to create a store)
 * and, with RDONLY, needs only read access and creates nothing. A commit
 * that a killed writer completed in the page cache is seen at once.
 * Errors: COW_ENOENT (no store and no CREATE), COW_EEXIST (CREATE|EXCL and
 * it exists), COW_EFORMAT (not a cowkit store, or a newer format),
 * COW_ECORRUPT (a store, but no commit verifies, both superblocks are
 * damaged, or the file is shorter than the newest commit needs; a tail
 * shorter than a block is ignored), COW_ENOMEM, COW_EAGAIN (the superblocks
 * kept changing under a busy writer: try again), and -errno from the file
 * system (COW_EACCES, COW_EIO, ...).
 */
COW_API int cow_store_open(const char *path, const cow_store_options *opts, cow_store **out);

/*
 * cow_store_close - close the handle and free it. NULL is allowed. Every
 * transaction of this handle must have been committed or aborted (if one is
 * open, the handle is left open and a message logged). Commits made in
 * NOSYNC mode are flushed first.
 */
COW_API void cow_store_close(cow_store *s);

/*
 * cow_store_sync - flush every commit made so far (for NOSYNC stores).
 * Errors: -errno from fdatasync (the commits stay in the page cache).
 */
COW_API int cow_store_sync(cow_store *s);

typedef struct cow_store_stats {
	uint64_t gen;          /* newest committed generation */
	uint64_t file_bytes;   /* size of the data file */
	uint64_t used_bytes;   /* blocks in use by live trees and space maps */
	uint64_t pending_bytes; /* freed blocks that some reader may still see */
	uint64_t free_bytes;   /* blocks ready for reuse (within file_bytes) */
	uint64_t readers;      /* generations pinned by read transactions, all processes */
	uint64_t disk_bytes;   /* space the data file takes on disk (holes excluded) */
	uint64_t reclaimable_bytes; /* of which free blocks cow_store_trim can give back */
} cow_store_stats;

/*
 * cow_store_stat - figures about the store: the newest commit's, read from
 * its superblock, so it takes no lock and never waits for a writer (space
 * figures are 0 in a store whose last commit was made by a build that did
 * not record them). Errors: COW_ECORRUPT, -errno from the file system.
 */
COW_API int cow_store_stat(cow_store *s, cow_store_stats *st);

/*
 * cow_store_trim - give the space of free blocks inside the file back to the
 * file system (FALLOC_FL_PUNCH_HOLE), so the file takes what its live and
 * pending blocks need. Commits do this themselves, for runs of 64 KiB and
 * more, once the file takes 64 MiB (and an eighth of its size) more on disk
 * than its blocks need; and a commit cuts a free
 * tail of the file off when it is at least 1 MiB and a sixteenth of the
 * store (docs/FORMAT.md section 7, "Giving space back"). Takes the writer
 * lock briefly (waits for a running write transaction). @bytes (may be
 * NULL): the space the file system gave back. Errors: COW_EREADONLY, COW_EOPNOTSUPP (the file
 * system has no holes), -errno.
 */
COW_API int cow_store_trim(cow_store *s, uint64_t *bytes);

/* Progress of long work: @done of @total units (bytes, blocks); called now and then. */
typedef void (*cow_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct cow_compact_stats {
	uint64_t file_before, file_after; /* the file's size in bytes */
	uint64_t moved_bytes;		  /* live blocks copied lower in the file */
	uint64_t commits;		  /* write transactions it committed */
	uint64_t waiting_bytes; /* freed, but a pinned reader still sees them: given back after it */
} cow_compact_stats;

/*
 * cow_store_compact - move live blocks toward the start of the file, so
 * that the file can shrink to about what its live blocks need (the free
 * blocks left are fewer than a thirty-second of them, plus 1 MiB).
 *
 * Works in steps, each a write transaction of its own that moves at most
 * @step_bytes (0: 4 MiB) of blocks lying past the aim into the lowest free
 * blocks and commits; the commits that follow cut the file's free tail
 * (docs/FORMAT.md section 7, "Compaction"). Every object, snapshot and
 * clone keeps its contents and its sharing: a block shared by 100 clones is
 * moved once. Each step verifies every block it moves.
 *
 * Concurrency: between steps the writer lock is free, so writers in this
 * and other processes commit meanwhile (each step waits for a running write
 * transaction, as cow_txn_begin does); once others commit between its steps,
 * it rests twice as long as a step took, so it holds the lock at most a
 * third of the time; readers keep reading their
 * generations, and what they see is not reused until they end, so a reader
 * open across the call holds the file's size up (reported in
 * @st->waiting_bytes). Must not be called with a write transaction of this
 * thread open (COW_EDEADLK).
 *
 * Crash safety: every step is an ordinary commit. A crash or kill at any
 * point leaves the store at its last committed step, whole; running the
 * call again goes on. Extra space while it runs: one step.
 *
 * @st (may be NULL) gets the figures; @progress (may be NULL) hears of the
 * bytes moved of an estimate. Errors: COW_EINVAL, COW_EREADONLY,
 * COW_EDEADLK, COW_ECORRUPT (a block failed its checksum: that step is
 * undone, nothing lost), COW_ENOSPC, COW_ENOMEM, COW_EIO.
 */
COW_API int cow_store_compact(cow_store *s, uint64_t step_bytes, cow_compact_stats *st,
			      cow_progress_fn progress, void *progress_ctx);

/* Flags for cow_txn_begin(). */
enum {
	COW_TXN_RDONLY = 1u << 0, /* a read transaction: lock-free, never blocks the writer */
	COW_TXN_NOWAIT = 1u << 1, /* write txn: fail with COW_ELOCKED instead of waiting */
};

/*
 * cow_txn_begin - start a transaction.
 *
 * A read transaction sees the newest committed generation and keeps seeing it
 * until it ends, whatever the writer commits meanwhile. A write transaction
 * sees its own changes; nobody else sees them before commit.
 *
 * Errors: COW_ELOCKED (NOWAIT and another writer is active), COW_EREADONLY
 * (write txn on an RDONLY store), COW_EDEADLK (this thread already holds
 * the write txn), COW_EBUSY (write txn: a reader still holds a generation
 * whose commit failed; retry when it ends), COW_ENOMEM, COW_EIO.
 */
COW_API int cow_txn_begin(cow_store *s, unsigned flags, cow_txn **out);

/*
 * cow_txn_reset - a read transaction lets go of its generation (so the
 * writer may reuse what only it saw) but stays allocated, for
 * cow_txn_renew; like LMDB's mdb_txn_reset. Maps, volumes and cursors
 * opened in it become stale: every call on them fails with COW_EINVAL, as
 * does every call on @t but renew and abort. Not for write transactions
 * (logged and ignored).
 */
COW_API void cow_txn_reset(cow_txn *t);

/*
 * cow_txn_renew - a reset read transaction takes the newest generation, as a
 * fresh cow_txn_begin(RDONLY) would, without allocating. Open objects again
 * after it. Errors: COW_EINVAL (not a reset read transaction), and those of
 * cow_txn_begin.
 */
COW_API int cow_txn_renew(cow_txn *t);

/*
 * cow_txn_commit - make the transaction's changes visible (and durable,
 * unless NOSYNC), then free @t. For a read transaction it just ends it.
 *
 * On error nothing of the transaction is committed, @t is freed, and the
 * store stays usable: COW_ENOSPC, COW_EIO (the store is left at the previous
 * commit), COW_ETXNERR (an earlier call in the transaction failed), COW_ENOMEM.
 */
COW_API int cow_txn_commit(cow_txn *t);

/* cow_txn_abort - discard the transaction and free @t. NULL is allowed. */
COW_API void cow_txn_abort(cow_txn *t);

/* cow_txn_gen - the generation the transaction reads (write txn: the one it will commit). */
COW_API uint64_t cow_txn_gen(const cow_txn *t);

/*
 * cow_map_create - create an empty map called @name (1..COW_NAME_MAX bytes,
 * no '@' or '/'). Errors: COW_EEXIST, COW_EINVAL (bad name), COW_EREADONLY.
 */
COW_API int cow_map_create(cow_txn *t, const char *name);

/*
 * cow_map_drop - delete the map @name and every entry in it: the same as
 * cow_destroy(t, name, 0) for a map. Errors: as cow_destroy(), and COW_ETYPE.
 */
COW_API int cow_map_drop(cow_txn *t, const char *name);

/*
 * cow_map_open - a handle to the map @name within @t ("NAME@SNAP" opens a
 * snapshot, read-only). The handle belongs to the transaction and is freed
 * when it ends; don't free it yourself. Errors: COW_ENOTFOUND, COW_ETYPE (a
 * volume by that name), COW_EINVAL (bad name), COW_ENOMEM.
 */
COW_API int cow_map_open(cow_txn *t, const char *name, cow_map **out);

/*
 * cow_map_get - look up @key.
 *
 * @val receives a pointer into the store's read-only mapping (or into the
 * transaction's own pages for data it wrote): it is valid until the
 * transaction ends, or in a write transaction until the next change to this
 * store; never write through it.
 *
 * Errors: COW_ENOTFOUND, COW_ECORRUPT (a block on the path failed its
 * checksum; the store logs which), COW_EINVAL (empty or too long key).
 */
COW_API int cow_map_get(cow_map *m, const void *key, size_t klen, cow_buf *val);

/*
 * cow_map_put - insert or replace @key's value. The bytes are copied.
 * Errors: COW_EREADONLY, COW_EINVAL (klen 0 or > COW_KEY_MAX), COW_ETOOBIG,
 * COW_ENOSPC, COW_ENOMEM, COW_ECORRUPT. After an error other than EINVAL or
 * EREADONLY the transaction can only be aborted (COW_ETXNERR).
 */
COW_API int cow_map_put(cow_map *m, const void *key, size_t klen, const void *val, size_t vlen);

/*
 * cow_map_del - remove @key. Errors: COW_ENOTFOUND, then as cow_map_put().
 */
COW_API int cow_map_del(cow_map *m, const void *key, size_t klen);

/* cow_map_count - number of entries in the map, as of this transaction. */
COW_API uint64_t cow_map_count(const cow_map *m);

/*
 * Cursors walk a map in key order, both ways. A cursor belongs to the
 * map's transaction and is freed with cow_cursor_close() (or when the
 * transaction ends). If the map is changed through the transaction while a
 * cursor is open, the cursor's next move re-finds its place by key.
 *
 * Positioning calls return 0, COW_ENOTFOUND when there is no such entry
 * (the cursor is then unpositioned), or COW_ECORRUPT.
 */
COW_API int cow_cursor_open(cow_map *m, cow_cursor **out);
COW_API void cow_cursor_close(cow_cursor *c);
COW_API int cow_cursor_first(cow_cursor *c);
COW_API int cow_cursor_last(cow_cursor *c);
/* The first entry whose key is >= @key. */
COW_API int cow_cursor_seek(cow_cursor *c, const void *key, size_t klen);
COW_API int cow_cursor_next(cow_cursor *c);
COW_API int cow_cursor_prev(cow_cursor *c);
/* The current entry; pointers valid as for cow_map_get(). COW_ENOTFOUND if unpositioned. */
COW_API int cow_cursor_get(cow_cursor *c, cow_buf *key, cow_buf *val);

/* ---- volumes: sparse byte arrays (up to 2^60 bytes) ---- */

/*
 * cow_vol_create - create volume @name of @size bytes, all zeros, taking no
 * space until written. Errors: COW_EEXIST, COW_EINVAL (bad name or size),
 * COW_EREADONLY.
 */
COW_API int cow_vol_create(cow_txn *t, const char *name, uint64_t size);

/*
 * cow_vol_open - a handle to volume @name ("NAME@SNAP": a read-only
 * snapshot), owned by the transaction as for cow_map_open().
 * Errors: COW_ENOTFOUND, COW_ETYPE, COW_EINVAL, COW_ENOMEM.
 */
COW_API int cow_vol_open(cow_txn *t, const char *name, cow_vol **out);

/* cow_vol_size - the volume's size in bytes, as of this transaction. */
COW_API uint64_t cow_vol_size(const cow_vol *v);

/*
 * cow_vol_pread - read @len bytes at @off into @buf (copied). Holes read as
 * zeros. Errors: COW_ERANGE (past the end), COW_ECORRUPT.
 */
COW_API int cow_vol_pread(cow_vol *v, void *buf, size_t len, uint64_t off);

/*
 * cow_vol_pwrite - write @len bytes at @off. Only the 4 KiB blocks touched
 * are rewritten (partial blocks read-modify-write); a block written with all
 * zeros becomes a hole. Errors: COW_ERANGE (past the end: resize first),
 * COW_EREADONLY, COW_ENOSPC, COW_ENOMEM, COW_ECORRUPT.
 */
COW_API int cow_vol_pwrite(cow_vol *v, const void *buf, size_t len, uint64_t off);

/* cow_vol_punch - make [off, off+len) read as zeros, freeing whole blocks. */
COW_API int cow_vol_punch(cow_vol *v, uint64_t off, uint64_t len);

/* cow_vol_resize - grow (with zeros) or shrink (dropping data past the end). */
COW_API int cow_vol_resize(cow_vol *v, uint64_t size);

/*
 * cow_vol_extents - call @fn(@ctx, off, len) for each run of written blocks
 * (data, as opposed to holes, which read as zeros) that meets [@off, @off +
 * @len), in offset order. Adjacent written blocks make one run; each run is
 * clipped to the range (so the first may start inside a block and the last
 * may end inside one, or at the volume's end). Everything in the range that
 * no run covers is a hole. The cost follows the number of written blocks in
 * the range, not its length, so a sparse 16 GiB volume is cheap to map.
 * Changes made earlier in a write transaction are seen. A nonzero return
 * from @fn stops the walk and is returned.
 * Errors: COW_ERANGE (past the end), COW_ECORRUPT, and @fn's.
 */
COW_API int cow_vol_extents(cow_vol *v, uint64_t off, uint64_t len,
			    int (*fn)(void *ctx, uint64_t off, uint64_t len), void *ctx);

/* ---- volumes to and from files ---- */


typedef struct cow_export_stats {
	uint64_t bytes;        /* the volume's size */
	uint64_t cloned_bytes; /* shared with the store by reflink (FICLONERANGE), not copied */
	uint64_t copied_bytes; /* written */
	uint64_t hole_bytes;   /* left as holes */
} cow_export_stats;

/*
 * cow_vol_export - write volume (or snapshot) @name into the file open on
 * @fd, which is truncated to the volume's size: holes stay holes (@progress,
 * which may be NULL, hears of the bytes done). Every
 * block is verified first. Where the store file and @fd are on one file
 * system with reflinks (btrfs, XFS), runs of blocks are cloned
 * (FICLONERANGE) instead of copied; @st says how many bytes went which way.
 * Errors: COW_ENOTFOUND, COW_ETYPE, COW_ECORRUPT, -errno from the file.
 */
COW_API int cow_vol_export(cow_txn *t, const char *name, int fd, cow_export_stats *st,
			   cow_progress_fn progress, void *progress_ctx);

/*
 * cow_vol_import - create volume @name holding the contents of the file open
 * on @fd (its whole size), in write transaction @t; all-zero blocks become
 * holes. *@bytes (may be NULL) gets the bytes read; @progress (may be NULL)
 * hears of them as they go. Errors: COW_EEXIST,
 * COW_EINVAL, COW_ENOSPC, -errno from the file.
 */
COW_API int cow_vol_import(cow_txn *t, const char *name, int fd, uint64_t *bytes,
			   cow_progress_fn progress, void *progress_ctx);

/* ---- versions ---- */

/*
 * cow_snapshot - a read-only version "NAME@SNAP" of object NAME as it is now
 * in @t (including the transaction's own changes), or with "@SNAP" a
 * snapshot of every object at once. O(1) per object: the snapshot shares the
 * object's whole tree. Errors: COW_ENOTFOUND, COW_EEXIST, COW_EINVAL,
 * COW_EREADONLY.
 */
COW_API int cow_snapshot(cow_txn *t, const char *snapshot);

/*
 * cow_clone - a new writable object @newname from snapshot @snapshot, in O(1).
 * The clone remembers its origin; the origin cannot be destroyed while the
 * clone exists (see cow_promote). Errors: COW_ENOTFOUND, COW_EEXIST,
 * COW_EINVAL (not a snapshot name).
 */
COW_API int cow_clone(cow_txn *t, const char *snapshot, const char *newname);

/*
 * cow_rollback - make object NAME equal to its snapshot NAME@SNAP again. Its
 * other snapshots are kept. Errors: COW_ENOTFOUND, COW_EINVAL.
 */
COW_API int cow_rollback(cow_txn *t, const char *snapshot);

enum { COW_DESTROY_RECURSIVE = 1u << 0 /* an object's snapshots too */ };

/*
 * cow_destroy - destroy object NAME or snapshot NAME@SNAP. Only the blocks
 * no other version shares are freed; the cost follows them. Refused with
 * COW_EBUSY while a clone depends on the snapshot (or, for an object, while
 * it has snapshots and RECURSIVE is not given). Errors: COW_ENOTFOUND,
 * COW_EBUSY, COW_EREADONLY.
 */
COW_API int cow_destroy(cow_txn *t, const char *name, unsigned flags);

/*
 * cow_promote - make clone @name independent of its origin (like zfs
 * promote): the origin's snapshots up to the clone's origin snapshot move to
 * the clone, and the old origin becomes a clone of it, so it can then be
 * destroyed. Errors: COW_EINVAL (not a clone), COW_EEXIST (a snapshot name
 * would collide), COW_ENOTFOUND.
 */
COW_API int cow_promote(cow_txn *t, const char *name);

/*
 * cow_rename - rename object @from to @to, or snapshot NAME@A to NAME@B (or
 * "@B" for short), or with "@A" -> "@B" that snapshot of every object that
 * has one (all or nothing), as zfs rename does: an object's snapshots move with it,
 * a snapshot stays under its object, and clones keep their origin (their
 * record follows the new name). Handles open in @t follow the name. O(number
 * of snapshots and clones involved). Errors: COW_ENOTFOUND, COW_EEXIST (@to
 * is taken, or one of the moved snapshots' new names is), COW_EINVAL (a bad
 * name, an object renamed to a snapshot name or the reverse, a snapshot
 * moved to another object), COW_EREADONLY.
 */
COW_API int cow_rename(cow_txn *t, const char *from, const char *to);

typedef struct cow_obj_stats {
	const char *type;    /* "map", "volume" or "fs" (static) */
	int snapshot;        /* 1 for NAME@SNAP */
	uint64_t entries;    /* maps: entries */
	uint64_t size;       /* volumes: size in bytes */
	uint64_t referenced; /* bytes of blocks this version references */
	/*
	 * Bytes only it references: what destroying it frees. An extent part
	 * of which was overwritten after a snapshot stays whole while a slice
	 * of it is in use, so this may exceed @referenced by such parts.
	 */
	uint64_t exclusive;
	uint64_t created;    /* generation */
	char origin[512];    /* a clone's origin snapshot, or "" */
	/*
	 * The generation that wrote its tree's root: it changes with every
	 * commit that changes the object, and a rollback gives it the
	 * snapshot's, while a snapshot or clone of it leaves it be.
	 */
	uint64_t changed;
} cow_obj_stats;

enum { COW_STAT_EXCLUSIVE = 1u << 0 /* compute exclusive (walks what it owns) */ };

/*
 * cow_obj_stat - figures for object or snapshot @name, as of @t.
 * Errors: COW_ENOTFOUND, COW_EINVAL, COW_ECORRUPT.
 */
COW_API int cow_obj_stat(cow_txn *t, const char *name, unsigned flags, cow_obj_stats *st);

enum { COW_DIFF_ADDED = 1, COW_DIFF_REMOVED = 2, COW_DIFF_CHANGED = 3 };

typedef struct cow_diff_entry {
	int kind;           /* COW_DIFF_* */
	cow_buf key;        /* maps */
	cow_buf old_value;  /* maps: the value in @from (REMOVED, CHANGED) */
	cow_buf new_value;  /* maps: the value in @to (ADDED, CHANGED) */
	uint64_t offset;    /* volumes, fs file data: a changed byte range (kind CHANGED) */
	uint64_t length;
} cow_diff_entry;

/*
 * cow_diff - what changed from version @from to version @to of one object
 * (each "NAME@SNAP" or the live "NAME"), in key or offset order. Shared
 * subtrees are skipped by pointer: the cost follows the size of the change.
 * Volume ranges are whole 4 KiB blocks. In an fs tree a file's changed
 * blocks come as such a range too, its @key the data key of the range's
 * first block (inode, 2, block), no values. Pointers in @e live as
 * cow_map_get's.
 * A nonzero return from @fn stops the walk and is returned.
 * Errors: COW_ENOTFOUND, COW_ETYPE (different types), COW_ECORRUPT.
 */
COW_API int cow_diff(cow_txn *t, const char *from, const char *to,
		     int (*fn)(void *ctx, const cow_diff_entry *e), void *ctx);

/* ---- send / recv (docs/STREAM.md) ---- */

/*
 * cow_send - write snapshot @snapshot ("NAME@SNAP") as a stream through
 * @write, which must take all @len bytes and return 0 (or a negative code,
 * which stops the send and is returned). With @base ("NAME@BASE", an older
 * snapshot of the same object) the stream is incremental, built from
 * cow_diff: its size and cost follow the change. Any transaction.
 * Errors: COW_ENOTFOUND, COW_EINVAL (not snapshots of one object), COW_ETOOBIG
 * (a value over 1 GiB), COW_ECORRUPT, and @write's errors.
 */
COW_API int cow_send(cow_txn *t, const char *snapshot, const char *base,
		     int (*write)(void *ctx, const void *buf, size_t len), void *ctx);

/*
 * cow_recv - apply a stream read through @read (which returns the number of
 * bytes it put in @buf, 1..len, 0 at end of input, or a negative code) to
 * object @name in write transaction @t. A full stream creates @name; an
 * incremental one updates it. Either way NAME@SNAP is created with the
 * sender's identity, and its name is copied to @snapshot_out (may be NULL).
 *
 * One call takes exactly one stream, and the input must end with it: after
 * the END record @read is called once more and must return 0. Bytes after
 * END (garbage, or a second stream as in `cat full inc | cow recv`) are
 * refused with COW_ESTREAM and nothing of the first stream is applied;
 * receive concatenated streams with one call each.
 *
 * On any error nothing must be committed: abort @t (it is marked failed for
 * every error found after the stream's header was read, so a commit fails
 * with COW_ETXNERR). Errors: COW_ESTREAM (the stream is malformed,
 * truncated, fails its checksum, or has bytes after END; the library logs
 * what is wrong and at which byte, as "recv: stream: truncated record at
 * byte N"; never COW_ECORRUPT, which is about the store), COW_EMISMATCH
 * (the base is missing or another version), COW_EBUSY (NAME changed since
 * the base), COW_EEXIST (NAME, or NAME@SNAP, exists already),
 * COW_EREADONLY, COW_ENOSPC and the store's own errors (COW_ECORRUPT only
 * for damage in the receiving store), and @read's errors.
 */
COW_API int cow_recv(cow_txn *t, const char *name, int (*read)(void *ctx, void *buf, size_t len),
		     void *ctx, char *snapshot_out, size_t snapshot_len);

/* ---- checking ---- */

typedef struct cow_fsck_problem {
	const char *object; /* "NAME", "NAME@SNAP", or "(catalog)", "(space map)", ... */
	uint64_t block;     /* the damaged block, or 0 */
	cow_buf key;        /* maps: the first key of the damaged subtree, if known */
	uint64_t offset;    /* volumes: the byte offset of the damaged range, if known */
	int has_offset;
	const char *what;   /* what is wrong, in words */
} cow_fsck_problem;

/* Problems a report keeps (cow_fsck_report.found); the rest are only counted. */
#define COW_FSCK_KEEP 16

/* A problem as kept in a report: copies, valid as long as the report. */
typedef struct cow_fsck_finding {
	char object[2 * COW_NAME_MAX + 2]; /* as cow_fsck_problem.object */
	uint64_t block;
	uint8_t key[64];   /* the key's first bytes (maps) */
	size_t key_len;    /* bytes in @key */
	int key_truncated; /* 1 when the key was longer than @key */
	uint64_t offset;   /* volumes */
	int has_offset;
	const char *what;  /* static text */
} cow_fsck_finding;

typedef struct cow_fsck_report {
	uint64_t objects;  /* objects and snapshots visited */
	uint64_t blocks;   /* distinct blocks verified */
	uint64_t problems; /* problems found, all of them */
	uint64_t kept;     /* entries of @found in use: min(problems, COW_FSCK_KEEP) */
	cow_fsck_finding found[COW_FSCK_KEEP]; /* the first problems, in the order found */
} cow_fsck_report;

enum {
	COW_FSCK_SCRUB = 1u << 0, /* the trees only: no space-map or count check */
};

/*
 * cow_store_fsck - verify the store: every block's checksum (each shared
 * block once; the space map's blocks too, reported as object "(space map)")
 * and every tree's structure, as strictly as any reader would
 * (headers, levels, key order within each node and against its separators,
 * value kinds, extent lengths against value lengths, entry counts); then,
 * unless SCRUB and only when every tree is sound, every reference count and
 * the space map against a walk of all trees.
 *
 * Every problem found is reported, not just the first: damage to one block
 * skips what lies under it and the walk goes on around it. Each problem is
 * passed to @fn (may be NULL; a nonzero return stops the calls, not the
 * count) with the object and the key or offset it affects; the pointers in
 * @p live until @fn returns. @report (may be NULL) is always filled, even
 * when the check cannot start (all zeros then): the figures, and the first
 * COW_FSCK_KEEP problems copied into report->found.
 *
 * Returns 0 when clean, COW_ECORRUPT when problems were found, or another
 * error when the check could not run or finish (COW_ENOMEM, COW_EIO, ...;
 * the report then holds what was found before). Takes no lock and needs
 * only read access: it checks the newest generation in a read transaction
 * while writers in other processes go on (this process's writers wait).
 * @progress (may be NULL) hears of blocks verified against the store's blocks.
 */
COW_API int cow_store_fsck(cow_store *s, unsigned flags,
			   int (*fn)(void *ctx, const cow_fsck_problem *p), void *ctx,
			   cow_fsck_report *report, cow_progress_fn progress, void *progress_ctx);

/*
 * cow_store_repair - rebuild the space map (which blocks are free) from a
 * walk of every tree, and commit a generation that records it afresh. Use
 * it when cow_store_fsck reports damage to "(space map)": the trees do not
 * depend on the space map, so nothing is lost; readers never need it, and a
 * writer that finds it damaged rebuilds it by itself, so this only makes
 * the repair durable now. Blocks no tree reaches stay reserved until every
 * read transaction that began before the repair has ended. Damage to a tree
 * is not repaired. Takes the writer lock (waits for it, as cow_txn_begin
 * does). Returns 0, COW_EREADONLY (a read-only store), COW_ECORRUPT (a tree
 * is damaged: nothing is changed), COW_ENOSPC, COW_ENOMEM, COW_EIO, or
 * another error of cow_txn_begin and cow_txn_commit. Any thread; concurrent
 * calls take turns, as write transactions do.
 */
COW_API int cow_store_repair(cow_store *s);

/* Flags for cow_store_backup(). */
enum {
	COW_BACKUP_COMPACT = 1u << 0, /* then compact the copy: a dense file, not a sparse one */
};

/*
 * cow_store_backup - write a consistent copy of the whole store, as of one
 * generation, to a new file @dest.
 *
 * The copy is a store: every object, snapshot and clone of the newest
 * generation when the call began, with the same names, contents and
 * sharing. Every block that generation reaches is copied once to the same
 * address in @dest, which is a sparse file (unreachable blocks stay holes),
 * so a store with 100 clones of a volume backs up to about one copy of it
 * (docs/FORMAT.md section 9). Every block is verified against its checksum
 * as it is read; damage fails the backup with COW_ECORRUPT and the damaged
 * block is logged (cow_set_log). The copy keeps the store's UUID and the
 * objects' GUIDs, so incremental streams sent from the source apply to it.
 *
 * The copy is written under a temporary name beside @dest ("@dest.tmp-"
 * and six characters), flushed, then renamed to @dest without replacing
 * anything and the directory flushed: when the call returns 0, @dest is a
 * complete, durable store; on any error, or if the process dies, there is
 * no @dest (a killed backup may leave the temporary file, which can be
 * deleted). @progress (may be NULL) hears of the blocks copied.
 *
 * Concurrency: runs in a read transaction (COW_TXN_RDONLY), so it takes no
 * lock, needs only read access to the store, and writers in this and other
 * processes go on committing; the pinned generation's blocks are not reused
 * until the backup ends, so the store may grow meanwhile by what writers
 * change. Any thread; the source is not modified.
 *
 * With COW_BACKUP_COMPACT the copy is compacted before it gets its name
 * (cow_store_compact on it): its live blocks move down and its file is
 * about the size of the live data, sharing kept; its generation is then a
 * few commits past the source's, with the same contents.
 *
 * Errors: COW_EINVAL (NULL, empty @dest, unknown @flags), COW_EEXIST (@dest exists, or was created meanwhile),
 * COW_ECORRUPT, COW_EAGAIN (commits kept overwriting the superblock being
 * copied: try again), COW_ENOMEM, those of cow_txn_begin, and -errno from
 * the file system (COW_ENOSPC, COW_EACCES, COW_EIO, ...).
 */
COW_API int cow_store_backup(cow_store *s, const char *dest, unsigned flags,
			     cow_progress_fn progress, void *progress_ctx);

/*
 * cow_store_list - call @fn for every object and snapshot in the catalog, in
 * name order (an object's snapshots follow it), as of @t. @type is "map",
 * "volume" or "fs"; @count is entries for maps and file systems (their
 * records), bytes for volumes. A nonzero return
 * from @fn stops the walk and is returned.
 */
COW_API int cow_store_list(cow_txn *t,
			   int (*fn)(void *ctx, const char *name, const char *type, uint64_t count),
			   void *ctx);

#ifdef __cplusplus
}
#endif

#endif
