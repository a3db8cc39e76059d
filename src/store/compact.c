/*
 * Online compaction (FORMAT.md section 7, "Compaction"): move live blocks
 * down so that the commits that follow can cut the file's free tail.
 *
 * Each step is one write transaction. It asks the block layer for the aim
 * (the lowest address whose free blocks below could hold every block at or
 * past it), relocates every tree of the store with one memo (each object's
 * tree, then the catalog, then the refs tree, so that every parent of a
 * moved block is rewritten), and commits. The blocks left behind are
 * pending like any other freed block; the steps after the last move release
 * them and cut the tail, and the cut needs two commits, since the file is
 * cut only to the larger address space of the two superblock slots.
 */
#include <time.h>

#include "base/base.h"
#include "store/store.h"

#define STEP_DEFAULT (4ull << 20)

/*
 * The free blocks left below the aim, for the nodes a step rewrites and the
 * space map's records: a thirty-second of those in use, plus 64 KiB.
 */
static uint64_t slack(uint64_t used)
{
	return used / 32 + 16;
}

struct rec {
	char name[COW_FULLNAME_MAX + 1];
	struct cow__obj o;
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

static int collect(void *ctx, const char *name, const struct cow__obj *o)
{
	struct recs *rs = ctx;
	int rc = cow__grow((void **)&rs->v, &rs->cap, rs->n + 1, sizeof(*rs->v));
	if (rc)
		return rc;
	struct rec *r = &rs->v[rs->n++];
	memcpy(r->name, name, strlen(name) + 1);
	r->o = *o;
	return 0;
}

/* Relocate every tree of the store in write transaction @t. */
static int relocate_all(cow_txn *t, struct cow__reloc *r)
{
	struct recs rs = {0};
	int rc = cow__catalog_each(t, NULL, collect, &rs);
	for (size_t i = 0; rc == 0 && i < rs.n; i++) {
		struct cow__obj *o = &rs.v[i].o;
		struct cow__tree tree = {
			.root = o->root, .count = o->count, .shared_gen = o->shared_gen};
		rc = cow__btree_relocate(&t->tx, &tree, r);
		if (rc || !memcmp(&tree.root, &o->root, sizeof(tree.root)))
			continue;
		rc = cow__btree_finalize(&t->tx, &tree);
		if (rc)
			break;
		o->root = tree.root;
		o->shared_gen = tree.shared_gen;
		rc = cow__catalog_put(t, rs.v[i].name, o);
	}
	cow__free(rs.v);
	if (rc == 0)
		rc = cow__btree_relocate(&t->tx, &t->catalog, r);
	if (rc == 0)
		rc = cow__refs_apply(&t->tx); /* the counts moved, before the refs tree moves */
	if (rc == 0)
		rc = cow__btree_relocate(&t->tx, &t->refs, r);
	return rc;
}

static int file_size(cow_store *s, uint64_t *out)
{
	struct cow__io *io = cow__bs_io(s->bs);
	return io->ops->size(io, out);
}

/*
 * Nothing to move: do commits still give space back? They do when blocks
 * were released since the last one (a reader ended) or the file reaches
 * past the blocks in use by a tail they would cut.
 */
static bool worth_a_commit(cow_store *s, uint64_t pending)
{
	uint64_t size;
	if (cow__bs_sb(s->bs)->pending_blocks != pending)
		return true;
	return file_size(s, &size) == 0 &&
	       (size >> COW_BLOCK_SHIFT) >= cow__bs_used_end(s->bs) + 256;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Between steps the writer lock is free; a writer waiting for it (a thread
 * on the store's condition variable, a process on the lock) needs a moment
 * to take it, or the next step wins again. While others commit between the
 * steps, compaction holds the lock at most a third of the time: it rests
 * twice as long as its last step took.
 */
static void rest(bool others, double step_secs)
{
	double secs = others ? COW_MIN(2 * step_secs, 2.0) : 0.001;
	struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
	nanosleep(&ts, NULL);
}

int cow_store_compact(cow_store *s, uint64_t step_bytes, cow_compact_stats *st,
		      cow_progress_fn progress, void *progress_ctx)
{
	cow_compact_stats local;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (!s)
		return COW_EINVAL;
	uint64_t budget = (step_bytes ? step_bytes : STEP_DEFAULT) >> COW_BLOCK_SHIFT;
	if (!budget)
		return COW_EINVAL;
	int rc = file_size(s, &st->file_before);
	uint64_t total = 0, last_gen = 0;
	unsigned idle = 0;
	while (rc == 0) {
		cow_txn *t;
		double t0 = now();
		rc = cow_txn_begin(s, 0, &t);
		if (rc)
			break;
		bool others = last_gen && t->tx.gen != last_gen + 1; /* someone committed since */
		uint64_t used, pending, free_blocks, above;
		cow__bs_space(s->bs, &used, &pending, &free_blocks);
		uint64_t limit = cow__bs_compact_limit(s->bs, slack(used + pending), &above);
		struct cow__reloc r;
		cow__reloc_init(&r, limit, budget);
		if (above)
			rc = relocate_all(t, &r);
		uint64_t moved = r.moved;
		cow__reloc_release(&r);
		if (rc || (!moved && (!st->commits || idle >= 2) && !worth_a_commit(s, pending))) {
			cow_txn_abort(t);
			break;
		}
		uint64_t gen = t->tx.gen;
		rc = cow_txn_commit(t);
		if (rc)
			break;
		last_gen = gen;
		st->commits++;
		st->moved_bytes += moved << COW_BLOCK_SHIFT;
		if (!total)
			total = above << COW_BLOCK_SHIFT;
		if (progress)
			progress(progress_ctx, st->moved_bytes, COW_MAX(total, st->moved_bytes));
		if (!moved) {
			/*
			 * The moves are done: the next commits release what they
			 * left (once durable: a no-sync store is flushed) and
			 * cut the tail, which a space-map log written at the end
			 * may hold for one more commit (the other slot names it).
			 */
			if (idle++ == 0)
				rc = cow_store_sync(s);
			if (idle == 4)
				break; /* after 2, a step commits only while worth it (above) */
			continue;
		}
		/* Writers may refill the space past the aim as fast as it empties: give up. */
		if (st->moved_bytes > 2 * total + (budget << (COW_BLOCK_SHIFT + 2)))
			break;
		rest(others, now() - t0);
	}
	cow_store_stats ss;
	if (rc == 0)
		rc = cow_store_stat(s, &ss);
	if (rc == 0) {
		st->waiting_bytes = ss.pending_bytes;
		rc = file_size(s, &st->file_after);
	}
	return rc;
}
