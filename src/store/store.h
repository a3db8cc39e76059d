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
};

struct cow__lock {
	int fd;          /* the lock file, shared by forked children */
	int wfd;         /* descriptor for the writer lock, this process's own */
	pid_t wfd_pid;   /* process that opened wfd */
	uint8_t *map;    /* LK_SIZE bytes, shared */
	uint64_t start_time; /* this process's start time (reader slots) */
	pid_t start_pid;
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

/* Reader slots. */
int cow__lock_reader_enter(struct cow__lock *lk, struct cow__meta *m, int *slot);
void cow__lock_reader_leave(struct cow__lock *lk, int slot);
/* Generations of live readers, sorted; stale slots are cleared. *n on return. */
int cow__lock_readers(struct cow__lock *lk, uint64_t **gens, size_t *n, size_t *cap);

/* ---- handles ---- */

struct cow_store {
	char *path;
	unsigned flags;
	struct cow__bs *bs;
	struct cow__lock lk;
	pthread_mutex_t wmutex; /* one write transaction per process at a time */
	uint64_t *readers;      /* scratch for the reader scan (writer only) */
	size_t nreaders, cap_readers;
	uint64_t next_id;       /* writer: next object id */
};

struct cow_map {
	cow_txn *txn;
	struct cow_map *next;
	char name[COW_NAME_MAX + 1];
	struct cow__tree tree;
	uint64_t id;
	uint64_t created;
	uint64_t clean_mods; /* tree.mods when opened: changed since? */
	bool dropped;
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
	struct cow_map *maps;
	struct cow_cursor *cursors;
};

/* Catalog records (FORMAT.md section 5). */
#define CAT_REC 56
enum { OBJ_MAP = 1, OBJ_VOLUME = 2 };
struct cow__obj {
	int type;
	uint64_t id;
	struct cow__bptr root;
	uint64_t count;
	uint64_t created;
};
int cow__obj_decode(const uint8_t *v, size_t len, struct cow__obj *o);
void cow__obj_encode(const struct cow__obj *o, uint8_t *v);

/*
 * Recovery: does superblock @sb verify (every block born after sb->synced)?
 * 0, COW_ECORRUPT, or another error.
 */
int cow__store_verify_sb(struct cow__bs *bs, const struct cow__sb *sb);

/*
 * Debug checker: every tree verifies, and the space map agrees with a walk
 * of everything the newest commit reaches: no block leaked, none used twice,
 * none both reachable and free. Takes the writer lock.
 */
int cow__store_check(cow_store *s);

#endif
