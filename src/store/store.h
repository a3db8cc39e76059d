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

/* ---- lock file (FORMAT.md section 8) ---- */

#define LK_SIZE 65536u
#define LK_HDR 4096u
#define LK_SLOT 32u
#define LK_NSLOTS ((LK_SIZE - LK_HDR) / LK_SLOT)

struct cow__meta {
	uint64_t gen;
	uint64_t nblocks;
	struct cow__bptr catalog;
	struct cow__bptr refs;
};

struct cow__lock {
	int fd;          /* the lock file, shared by forked children */
	int wfd;         /* descriptor for the writer lock, this process's own */
	pid_t wfd_pid;   /* process that opened wfd */
	uint8_t *map;    /* LK_SIZE bytes, shared */
	uint64_t start_time; /* this process's start time (reader slots) */
	pid_t start_pid;
	uint32_t checked_pid[LK_NSLOTS]; /* writer: slot owners whose start time */
	uint64_t checked_at[LK_NSLOTS];  /* was last compared, and when */
};

int cow__lock_open(const char *path, struct cow__lock *lk, bool *alone);
void cow__lock_close(struct cow__lock *lk);
/* Writer lock: byte 0 of the lock file (and the in-process mutex, by the caller). */
int cow__lock_writer(struct cow__lock *lk, bool wait);
void cow__lock_writer_release(struct cow__lock *lk);
/* Let other processes open the store (after recovery). */
int cow__lock_shared(struct cow__lock *lk);

void cow__lock_publish(struct cow__lock *lk, const struct cow__meta *m);
void cow__lock_read_meta(struct cow__lock *lk, struct cow__meta *m);
void cow__lock_reset(struct cow__lock *lk, const struct cow__meta *m);
/*
 * The generation a writer is committing (set before its first write, cleared
 * once published or failed): nonzero at the next writer's begin means the
 * last writer died mid-commit, maybe after its flush.
 */
void cow__lock_set_inflight(struct cow__lock *lk, uint64_t gen);
uint64_t cow__lock_inflight(struct cow__lock *lk);

/*
 * Reader slots. @local (may be NULL) fills @m with this process's view of the
 * newest commit; it is used when it matches the lock file's generation.
 */
int cow__lock_reader_enter(struct cow__lock *lk, void (*local)(void *ctx, struct cow__meta *m),
			   void *ctx, struct cow__meta *m, int *slot);
void cow__lock_reader_leave(struct cow__lock *lk, int slot);
/* Generations of live readers, sorted; stale slots are cleared. *n on return. */
int cow__lock_readers(struct cow__lock *lk, uint64_t **gens, size_t *n, size_t *cap);

/* ---- handles ---- */

struct cow_store {
	char *path;
	unsigned flags;
	struct cow__bs *bs;
	struct cow__lock lk;
	/*
	 * One write transaction per process at a time. A flag under a mutex
	 * rather than the mutex itself: a transaction may end in another
	 * thread than the one that began it.
	 */
	pthread_mutex_t wmutex;
	pthread_cond_t wcond;
	bool wbusy;
	uint64_t *readers;      /* scratch for the reader scan (writer only) */
	size_t nreaders, cap_readers;
	uint64_t next_id;       /* writer: next object id */
	/*
	 * The newest commit as this process knows it (a struct cow__meta),
	 * published by the writer with RCU, so beginning a read transaction
	 * takes no lock and retries no seqlock.
	 */
	cow_rcu *root;
};

/* Catalog records (FORMAT.md section 5). */
enum { OBJ_MAP = 1, OBJ_VOLUME = 2 };
enum { OBJF_SNAPSHOT = 1 };
#define CAT_FIXED 88
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
	uint8_t guid[16]; /* identity of this version, kept by send/recv */
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
	struct cow__obj rec;   /* as in the catalog, root/count/blocks kept in tree */
	struct cow__tree tree;
	uint64_t clean_mods;   /* tree.mods when last written to the catalog */
	bool dropped;
	bool readonly;         /* a snapshot, or a read transaction */
};

struct cow_cursor {
	struct cow__cursor c;
	cow_map *map;
	struct cow_cursor *next;
};

struct cow_txn {
	cow_store *s;
	bool write;
	int err;  /* write txn: first hard error; only abort is allowed then */
	int slot; /* read txn: reader slot */
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
int cow__txn_fail(cow_txn *t, int rc);
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
 * none both reachable and free. Takes the writer lock.
 */
int cow__store_check(cow_store *s);

#endif
