/*
 * Stores and transactions: open with recovery, the writer's begin/commit/
 * abort, read transactions pinned to a generation, and the debug checker.
 *
 * Recovery happens only when a process opens a store that no other process
 * has open (it can take byte 1 of the lock file exclusively): it picks the
 * newest superblock that verifies and resets the lock file from it. Other
 * openers trust the lock file, which the writer keeps current.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store.h"

/* ---- catalog records ---- */

int cow__obj_decode(const uint8_t *v, size_t len, struct cow__obj *o)
{
	if (len < CAT_FIXED || (v[0] != OBJ_MAP && v[0] != OBJ_VOLUME))
		return COW_CORRUPT(0, "bad catalog record");
	size_t olen = cow__le16(v + 2);
	if (olen > COW_FULLNAME_MAX || len != CAT_FIXED + olen)
		return COW_CORRUPT(0, "bad catalog record length");
	o->type = v[0];
	o->flags = v[1];
	o->id = cow__le64(v + 8);
	cow__bptr_load(&o->root, v + 16);
	o->count = cow__le64(v + 40);
	o->created = cow__le64(v + 48);
	o->shared_gen = cow__le64(v + 56);
	o->blocks = cow__le64(v + 64);
	memcpy(o->guid, v + 72, 16);
	memcpy(o->origin, v + CAT_FIXED, olen);
	o->origin[olen] = 0;
	return 0;
}

size_t cow__obj_encode(const struct cow__obj *o, uint8_t *v)
{
	size_t olen = strlen(o->origin);
	memset(v, 0, CAT_FIXED);
	v[0] = (uint8_t)o->type;
	v[1] = (uint8_t)o->flags;
	cow__put16(v + 2, (uint16_t)olen);
	cow__put64(v + 8, o->id);
	cow__bptr_store(v + 16, &o->root);
	cow__put64(v + 40, o->count);
	cow__put64(v + 48, o->created);
	cow__put64(v + 56, o->shared_gen);
	cow__put64(v + 64, o->blocks);
	memcpy(v + 72, o->guid, 16);
	memcpy(v + CAT_FIXED, o->origin, olen);
	return CAT_FIXED + olen;
}

/* ---- recovery ---- */

struct vctx {
	struct cow__tx *tx;
	uint64_t min_birth;
};

static int verify_obj(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	(void)key, (void)klen;
	struct vctx *v = ctx;
	struct cow__obj o = {0};
	int rc = cow__obj_decode(val, vlen, &o);
	if (rc)
		return rc;
	struct cow__tree t = {.root = o.root, .count = o.count};
	struct cow__walk w = {.min_birth = v->min_birth};
	return cow__btree_walk(v->tx, &t, &w);
}

int cow__store_verify_sb(struct cow__bs *bs, const struct cow__sb *sb)
{
	int rc = cow__bs_map_ensure(bs, sb->nblocks);
	if (rc)
		return rc;
	struct cow__tx *tx = cow__calloc(1, sizeof(*tx));
	if (!tx)
		return COW_ENOMEM;
	*tx = (struct cow__tx){
		.bs = bs, .gen = sb->gen, .nblocks = sb->nblocks, .read_flags = COW_READ_VERIFY};
	struct vctx v = {tx, sb->synced};
	struct cow__tree cat = {.root = sb->catalog}, refs = {.root = sb->refs};
	struct cow__walk w = {.min_birth = sb->synced, .val = verify_obj, .ctx = &v};
	rc = cow__btree_walk(tx, &cat, &w);
	struct cow__walk wr = {.min_birth = sb->synced};
	if (rc == 0)
		rc = cow__btree_walk(tx, &refs, &wr);
	/* Not the space chains: a damaged one is rebuilt by the writer (repair.c). */
	cow__free(tx);
	return rc;
}

/*
 * Choose the superblock to open at: newest first, the first whose new blocks
 * all verify. With @load, also load the space map from it (rebuilt from
 * the trees if its chains are damaged) and make the state durable.
 */
static int recover(struct cow__bs *bs, bool load, struct cow__sb *out, int *out_slot)
{
	struct cow__sb sb[2];
	bool valid[2];
	int rc = cow__bs_read_slots(bs, sb, valid);
	if (rc)
		return rc;
	int order[2] = {0, 1};
	if (valid[0] && valid[1] && sb[1].gen > sb[0].gen)
		order[0] = 1, order[1] = 0;
	int last = COW_EFORMAT;
	for (int k = 0; k < 2; k++) {
		int i = order[k];
		if (!valid[i])
			continue;
		rc = cow__store_verify_sb(bs, &sb[i]);
		if (rc == 0 && load && (rc = cow__bs_load(bs, &sb[i], i)) == COW_ECORRUPT) {
			/*
			 * The trees verify, but the space map neither loads nor can be
			 * rebuilt (old damage to a tree): open for reading; every write
			 * transaction will fail with COW_ECORRUPT. An older slot would
			 * hide acknowledged commits, and reaches the same old blocks.
			 */
			cow__log("generation %llu: no space map for the writer; writes will fail",
				 (unsigned long long)sb[i].gen);
			rc = 0;
		}
		if (rc == 0) {
			*out = sb[i];
			*out_slot = i;
			return 0;
		}
		if (rc != COW_ECORRUPT)
			return rc;
		cow__log("generation %llu does not verify; falling back",
			 (unsigned long long)sb[i].gen);
		last = COW_ECORRUPT;
	}
	return last;
}

void cow__guid(uint8_t guid[16])
{
	static _Atomic uint64_t counter;
	if (getrandom(guid, 16, GRND_NONBLOCK) == 16)
		return;
	uint64_t a = cow__now_ns(), b = ((uint64_t)getpid() << 32) ^ ++counter;
	memcpy(guid, &a, 8);
	memcpy(guid + 8, &b, 8);
}

static void fill_uuid(uint8_t uuid[16])
{
	if (getrandom(uuid, 16, 0) == 16)
		return;
	uint64_t a = cow__now_ns(), b = (uint64_t)getpid();
	memcpy(uuid, &a, 8);
	memcpy(uuid + 8, &b, 8);
}

/* A new store: format, then commit generation 1 with an empty catalog. */
static int create_store(cow_store *s, struct cow__sb *out)
{
	struct cow__bs *bs = s->bs;
	int rc = cow__bs_format(bs);
	if (rc)
		return rc;
	fill_uuid(bs->sb.uuid);
	rc = cow__bs_begin(bs, 1, NULL, 0);
	if (rc)
		return rc;
	struct cow__sb sb = {.next_id = 1};
	bool nosync = bs->nosync;
	bs->nosync = false; /* the first commit is always durable */
	rc = cow__bs_commit(bs, &sb);
	bs->nosync = nosync;
	if (rc)
		return rc;
	*out = sb;
	return 0;
}

/* The in-process writer slot: false (busy) only with @nowait. */
static bool writer_acquire(cow_store *s, bool nowait)
{
	pthread_mutex_lock(&s->wmutex);
	while (s->wbusy && !nowait)
		pthread_cond_wait(&s->wcond, &s->wmutex);
	bool got = !s->wbusy;
	s->wbusy = true;
	pthread_mutex_unlock(&s->wmutex);
	return got;
}

static void writer_release(cow_store *s)
{
	pthread_mutex_lock(&s->wmutex);
	s->wbusy = false;
	pthread_cond_signal(&s->wcond);
	pthread_mutex_unlock(&s->wmutex);
}

/* Publish @m to this process's readers (RCU) and, with @shared, to every process. */
static void publish(cow_store *s, const struct cow__meta *m, bool shared)
{
	if (shared)
		cow__lock_publish(&s->lk, m);
	void *copy;
	if (s->root && cow_rcu_update_begin(s->root, &copy) == 0) {
		memcpy(copy, m, sizeof(*m));
		if (cow_rcu_update_commit(s->root, copy, 0) != 0)
			cow__log("could not publish generation %llu to local readers",
				 (unsigned long long)m->gen);
	}
}

/* RCU read side: this process's newest commit. */
static void local_meta(void *ctx, struct cow__meta *m)
{
	cow_store *s = ctx;
	cow_rcu_read_lock();
	memcpy(m, cow_rcu_deref(s->root), sizeof(*m));
	cow_rcu_read_unlock();
}

/* A file whose first commit never completed: both slots still zero. */
static bool never_committed(struct cow__bs *bs)
{
	uint8_t buf[2 * COW_BLOCK_SIZE];
	if (bs->io->ops->pread(bs->io, buf, sizeof(buf), 0) != 0)
		return false;
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i])
			return false;
	return true;
}

int cow_store_open(const char *path, const cow_store_options *opts, cow_store **out)
{
	unsigned flags = opts ? opts->flags : 0;
	if (!path || !out)
		return COW_EINVAL;
	cow_store *s = cow__calloc(1, sizeof(*s));
	if (!s)
		return COW_ENOMEM;
	s->lk.fd = s->lk.wfd = -1;
	s->flags = flags;
	pthread_mutex_init(&s->wmutex, NULL);
	pthread_cond_init(&s->wcond, NULL);
	int rc = COW_ENOMEM;
	s->path = cow__strdup(path);
	if (!s->path)
		goto fail;
	if ((flags & COW_STORE_EXCL) && (flags & COW_STORE_CREATE) && access(path, F_OK) == 0) {
		rc = COW_EEXIST;
		goto fail;
	}
	rc = cow__bs_open(path, flags & COW_STORE_CREATE, flags & COW_STORE_RDONLY,
			  flags & COW_STORE_NOSYNC, &s->bs);
	if (rc)
		goto fail;
	cow__bs_set_walker(s->bs, cow__store_space_walk, NULL);
	bool alone;
	rc = cow__lock_open(path, &s->lk, &alone);
	if (rc)
		goto fail;
	if (alone) {
		struct cow__sb sb;
		int slot;
		uint64_t size;
		rc = s->bs->io->ops->size(s->bs->io, &size);
		if (rc)
			goto unlock;
		if (size == 0 || never_committed(s->bs)) {
			if (!(flags & COW_STORE_CREATE) || (flags & COW_STORE_RDONLY)) {
				rc = COW_EFORMAT;
				goto unlock;
			}
			rc = create_store(s, &sb);
		} else {
			rc = recover(s->bs, !(flags & COW_STORE_RDONLY), &sb, &slot);
		}
		if (rc)
			goto unlock;
		struct cow__meta m = {sb.gen, sb.nblocks, sb.catalog, sb.refs};
		cow__lock_reset(&s->lk, &m);
	}
	rc = cow__lock_shared(&s->lk);
	if (rc)
		goto fail;
	struct cow__meta m;
	cow__lock_read_meta(&s->lk, &m);
	static const cow_rcu_ops root_ops = {.size = sizeof(struct cow__meta)};
	rc = cow_rcu_create(&root_ops, &m, &s->root);
	if (rc)
		goto fail;
	*out = s;
	return 0;
unlock:
	cow__lock_writer_release(&s->lk);
fail:
	cow_store_close(s);
	return rc;
}

void cow_store_close(cow_store *s)
{
	if (!s)
		return;
	if (s->bs && !s->bs->rdonly && s->lk.map) {
		/*
		 * Mark the newest commit clean, so reopening need not verify its
		 * blocks (and later damage to them is reported, not taken for a
		 * torn commit). Only if nobody committed after us.
		 */
		writer_acquire(s, false);
		if (s->bs->loaded && cow__lock_writer(&s->lk, false) == 0) {
			struct cow__meta m;
			cow__lock_read_meta(&s->lk, &m);
			if (m.gen == s->bs->sb.gen)
				cow__bs_mark_clean(s->bs);
			cow__lock_writer_release(&s->lk);
		} else if (s->bs->nosync) {
			s->bs->io->ops->sync(s->bs->io);
		}
		writer_release(s);
	}
	cow__lock_close(&s->lk);
	cow_rcu_destroy(s->root);
	cow__bs_close(s->bs);
	pthread_mutex_destroy(&s->wmutex);
	pthread_cond_destroy(&s->wcond);
	cow__free(s->readers);
	cow__free(s->path);
	cow__free(s);
}

int cow_store_sync(cow_store *s)
{
	if (!s)
		return COW_EINVAL;
	int rc = s->bs->io->ops->sync(s->bs->io);
	if (rc)
		return rc;
	/* Record durability for this process's writer state. */
	writer_acquire(s, false);
	if (s->bs->loaded) {
		s->bs->durable = s->bs->sb.gen;
		s->bs->durable_slot = s->bs->sb_slot;
	}
	writer_release(s);
	return 0;
}

/* ---- transactions ---- */


/*
 * Bring this process's writer state to the newest commit (maybe another
 * process's). A writer killed between its flush and publishing the commit
 * leaves a complete, durable generation newer than the lock file says (and
 * its in-flight mark set): it is adopted (and published) here, so no
 * generation number is ever used for two different commits. Without the mark
 * the slots are read only when another process committed last.
 */
static int writer_sync_state(cow_store *s, struct cow__meta *m)
{
	struct cow__bs *bs = s->bs;
	bool orphan = cow__lock_inflight(&s->lk) != 0;
	if (!orphan && bs->loaded && bs->sb.gen == m->gen)
		return 0; /* the common case: this process made the newest commit */
	struct cow__sb sb[2];
	bool valid[2];
	int rc = cow__bs_read_slots(bs, sb, valid);
	if (rc)
		return rc;
	cow__lock_set_inflight(&s->lk, 0);
	for (int i = 0; orphan && i < 2; i++) {
		if (!valid[i] || sb[i].gen <= m->gen || cow__store_verify_sb(bs, &sb[i]) != 0)
			continue;
		if (cow__bs_load(bs, &sb[i], i) != 0)
			continue; /* not complete after all: the commit below overwrites it */
		*m = (struct cow__meta){sb[i].gen, sb[i].nblocks, sb[i].catalog, sb[i].refs};
		publish(s, m, true);
		return 0;
	}
	if (bs->loaded && bs->sb.gen == m->gen)
		return 0;
	for (int i = 0; i < 2; i++)
		if (valid[i] && sb[i].gen == m->gen)
			return cow__bs_load(bs, &sb[i], i);
	return COW_CORRUPT(0, "the newest commit's superblock is missing");
}

int cow_txn_begin(cow_store *s, unsigned flags, cow_txn **out)
{
	if (!s || !out)
		return COW_EINVAL;
	bool write = !(flags & COW_TXN_RDONLY);
	if (write && (s->flags & COW_STORE_RDONLY))
		return COW_EREADONLY;
	cow_txn *t = cow__calloc(1, sizeof(*t));
	if (!t)
		return COW_ENOMEM;
	t->s = s;
	t->write = write;
	t->slot = -1;
	struct cow__meta m;
	int rc;
	if (!write) {
		rc = cow__lock_reader_enter(&s->lk, s->root ? local_meta : NULL, s, &m, &t->slot);
		if (rc)
			goto fail;
		rc = cow__bs_map_ensure(s->bs, m.nblocks);
		if (rc)
			goto fail;
		t->tx = (struct cow__tx){.bs = s->bs, .gen = m.gen, .nblocks = m.nblocks};
		t->catalog.root = m.catalog; /* the catalog's count is not tracked */
		t->refs.root = m.refs;
		t->tx.refs = &t->refs;
		*out = t;
		return 0;
	}

	if (!writer_acquire(s, flags & COW_TXN_NOWAIT)) {
		rc = COW_ELOCKED;
		goto fail;
	}
	rc = cow__lock_writer(&s->lk, !(flags & COW_TXN_NOWAIT));
	if (rc)
		goto unlock_mutex;
	cow__lock_read_meta(&s->lk, &m);
	rc = writer_sync_state(s, &m);
	if (rc)
		goto unlock;
	rc = cow__lock_readers(&s->lk, &s->readers, &s->nreaders, &s->cap_readers);
	if (rc)
		goto unlock;
	rc = cow__bs_begin(s->bs, m.gen + 1, s->readers, s->nreaders);
	if (rc) {
		cow__bs_abort(s->bs);
		goto unlock;
	}
	s->next_id = s->bs->sb.next_id;
	t->tx = (struct cow__tx){.bs = s->bs,
				 .gen = m.gen + 1,
				 .nblocks = 0,
				 .write = true,
				 .read_flags = COW_READ_WRITER};
	t->catalog.root = m.catalog;
	t->refs.root = m.refs;
	t->tx.refs = &t->refs;
	*out = t;
	return 0;
unlock:
	cow__lock_writer_release(&s->lk);
unlock_mutex:
	writer_release(s);
fail:
	if (t->slot >= 0)
		cow__lock_reader_leave(&s->lk, t->slot);
	cow__free(t);
	return rc;
}

uint64_t cow_txn_gen(const cow_txn *t)
{
	return t ? t->tx.gen : 0;
}

static void txn_free(cow_txn *t)
{
	cow__refs_discard(&t->tx);
	while (t->maps) {
		cow_map *m = t->maps;
		t->maps = m->next;
		cow__free(m);
	}
	while (t->cursors) {
		struct cow_cursor *c = t->cursors;
		t->cursors = c->next;
		cow__free(c);
	}
	cow__free(t);
}

static void writer_end(cow_txn *t)
{
	cow__lock_writer_release(&t->s->lk);
	writer_release(t->s);
}

void cow_txn_abort(cow_txn *t)
{
	if (!t)
		return;
	if (t->write) {
		cow__bs_abort(t->s->bs);
		writer_end(t);
	} else if (t->slot >= 0) {
		cow__lock_reader_leave(&t->s->lk, t->slot);
	}
	txn_free(t);
}

/* Write back every changed object's tree into the catalog, then finalize. */
static int flush_objects(cow_txn *t)
{
	for (cow_map *m = t->maps; m; m = m->next) {
		int rc = cow__obj_flush(m);
		if (rc)
			return rc;
	}
	int rc = cow__refs_apply(&t->tx);
	if (rc == 0)
		rc = cow__btree_finalize(&t->tx, &t->catalog);
	if (rc == 0)
		rc = cow__btree_finalize(&t->tx, &t->refs);
	return rc;
}

int cow_txn_commit(cow_txn *t)
{
	if (!t)
		return COW_EINVAL;
	if (!t->write) {
		cow_txn_abort(t);
		return 0;
	}
	cow_store *s = t->s;
	int rc = t->err ? COW_ETXNERR : flush_objects(t);
	if (rc) {
		cow_txn_abort(t);
		return rc;
	}
	struct cow__sb sb = {.catalog = t->catalog.root, .refs = t->refs.root, .next_id = s->next_id};
	cow__lock_set_inflight(&s->lk, t->tx.gen);
	rc = cow__bs_commit(s->bs, &sb);
	if (rc == 0) {
		struct cow__meta m = {sb.gen, sb.nblocks, sb.catalog, sb.refs};
		publish(s, &m, true);
	}
	cow__lock_set_inflight(&s->lk, 0);
	writer_end(t);
	txn_free(t);
	return rc;
}

int cow_store_stat(cow_store *s, cow_store_stats *st)
{
	if (!s || !st)
		return COW_EINVAL;
	memset(st, 0, sizeof(*st));
	struct cow__meta m;
	cow__lock_read_meta(&s->lk, &m);
	st->gen = m.gen;
	uint64_t size;
	int rc = s->bs->io->ops->size(s->bs->io, &size);
	if (rc)
		return rc;
	st->file_bytes = size;
	uint64_t *gens = NULL;
	size_t n = 0, cap = 0;
	rc = cow__lock_readers(&s->lk, &gens, &n, &cap);
	cow__free(gens);
	if (rc)
		return rc;
	st->readers = n;
	if (s->flags & COW_STORE_RDONLY)
		return 0;
	cow_txn *t;
	rc = cow_txn_begin(s, 0, &t);
	if (rc)
		return rc;
	uint64_t used, pending, free_blocks;
	cow__bs_space(s->bs, &used, &pending, &free_blocks);
	st->used_bytes = used * COW_BLOCK_SIZE;
	st->pending_bytes = pending * COW_BLOCK_SIZE;
	st->free_bytes = free_blocks * COW_BLOCK_SIZE;
	cow_txn_abort(t);
	return 0;
}

/* ---- the checker ---- */

/*
 * Every block is counted once per distinct parent that points to it (a node
 * visited the first time, or a catalog record for a root); the counts must
 * equal the stored reference counts, and the space map must agree: reachable
 * blocks in use, pending ones unreachable, nothing else allocated.
 */
struct check {
	struct cow__tx *tx;
	uint32_t *refs;  /* expected reference count per block */
	uint8_t *flags;  /* 1 visited node, 2 pending, 4 extent tail */
	uint64_t nblocks;
};

static int count_ref(struct check *c, uint64_t addr, uint64_t nblk)
{
	if (addr < 2 || addr + nblk > c->nblocks)
		return COW_CORRUPT(addr, "reference beyond the store");
	c->refs[addr]++;
	for (uint64_t b = addr + 1; b < addr + nblk; b++) { /* extent tails: counted by the head */
		c->refs[b] = c->refs[addr];
		c->flags[b] |= 4;
	}
	return 0;
}

static int check_node(struct check *c, const struct cow__bptr *p, int depth);

static int check_children(struct check *c, const uint8_t *n, int depth)
{
	for (unsigned i = 0; i < cow__le16(n + 6); i++) {
		const uint8_t *cell = n + cow__le16(n + 32 + 2 * i);
		struct cow__bptr p;
		int rc;
		if (n[4] == 2) { /* branch */
			cow__bptr_load(&p, cell + 2);
			rc = check_node(c, &p, depth + 1);
		} else if (cell[2] == 1) { /* leaf cell with an extent */
			cow__bptr_load(&p, cell + 8 + cow__le16(cell));
			uint64_t nblk = (cow__le32(cell + 4) + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT;
			rc = count_ref(c, p.addr, nblk);
		} else {
			continue;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int check_node(struct check *c, const struct cow__bptr *p, int depth)
{
	if (depth > COW_BTREE_MAXDEPTH)
		return COW_CORRUPT(p->addr, "tree too deep");
	int rc = count_ref(c, p->addr, 1);
	if (rc || (c->flags[p->addr] & 1))
		return rc; /* a shared node: its children were counted at its first visit */
	c->flags[p->addr] |= 1;
	const uint8_t *n;
	rc = cow__node_get(c->tx, p, &n);
	return rc ? rc : check_children(c, n, depth);
}

static int check_obj(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	(void)key, (void)klen;
	struct check *c = ctx;
	struct cow__obj o = {0};
	int rc = cow__obj_decode(val, vlen, &o);
	if (rc)
		return rc;
	struct cow__tree t = {.root = o.root,
			      .count = o.type == OBJ_MAP ? o.count : UINT64_MAX,
			      .shared_gen = o.shared_gen};
	if (o.type == OBJ_MAP)
		rc = cow__btree_verify(c->tx, &t);
	if (rc == 0 && o.root.addr)
		rc = check_node(c, &o.root, 0);
	return rc;
}

static int mark_tree(void *ctx, uint64_t addr, uint64_t nblk, uint64_t birth)
{
	(void)birth;
	struct check *c = ctx;
	int rc = count_ref(c, addr, nblk);
	if (rc == 0 && c->refs[addr] > 1)
		rc = COW_CORRUPT(addr, "catalog or refs-tree block reachable twice");
	return rc;
}

int cow__store_check(cow_store *s)
{
	cow_txn *t;
	int rc = cow_txn_begin(s, 0, &t);
	if (rc)
		return rc;
	struct cow__bs *bs = s->bs;
	struct check c = {&t->tx, NULL, NULL, bs->nblocks};
	c.refs = cow__calloc(bs->nblocks, sizeof(uint32_t));
	c.flags = cow__calloc(bs->nblocks, 1);
	if (!c.refs || !c.flags) {
		rc = COW_ENOMEM;
		goto out;
	}
	c.refs[0] = c.refs[1] = 1;
	for (size_t i = 0; i < bs->npending + bs->nstuck; i++) {
		const struct cow__pend *p =
			i < bs->npending ? &bs->pending[i] : &bs->stuck[i - bs->npending];
		for (uint64_t b = p->start; b < p->start + p->len && b < bs->nblocks; b++) {
			if (c.flags[b] & 2) {
				rc = COW_CORRUPT(b, "block pending twice");
				goto out;
			}
			c.flags[b] |= 2;
		}
	}
	/* The catalog and refs trees are never shared; objects' trees may be. */
	struct cow__walk w = {.blk = mark_tree, .val = check_obj, .ctx = &c};
	rc = cow__btree_walk(&t->tx, &t->catalog, &w);
	struct cow__walk wr = {.blk = mark_tree, .ctx = &c};
	if (rc == 0)
		rc = cow__btree_walk(&t->tx, &t->refs, &wr);
	for (size_t i = 0; rc == 0 && i < bs->nchain; i++)
		rc = mark_tree(&c, bs->chain[i].addr, 1, bs->chain[i].birth);
	for (uint64_t b = 0; rc == 0 && b < bs->nblocks; b++) {
		bool alloc = cow__bs_allocated(bs, b), pend = c.flags[b] & 2;
		uint32_t want = c.refs[b];
		if (want && !alloc)
			rc = COW_CORRUPT(b, "reachable block is marked free");
		else if (want && pend)
			rc = COW_CORRUPT(b, "reachable block is pending reuse");
		else if (pend && !alloc)
			rc = COW_CORRUPT(b, "pending block is marked free");
		else if (!want && alloc && !pend)
			rc = COW_CORRUPT(b, "block leaked: allocated, unreachable, not pending");
		else if (want >= 1 && b >= 2 && !(c.flags[b] & 4) && (c.flags[b] & 1 || want > 1)) {
			int err = 0;
			uint64_t have = cow__ref_get(&t->tx, b, &err);
			if (err)
				rc = err;
			else if (have != want)
				rc = COW_CORRUPT(b, "reference count differs from the parents found");
		}
	}
	/* Every stored count belongs to a block that really has that many parents. */
	if (rc == 0 && t->refs.root.addr) {
		struct cow__cursor cur;
		cow__cursor_init(&cur, &t->tx, &t->refs);
		for (int r = cow__cursor_first(&cur); rc == 0 && r != COW_ENOTFOUND;
		     r = cow__cursor_next(&cur)) {
			cow_buf k, v;
			rc = r ? r : cow__cursor_get(&cur, &k, &v);
			if (rc)
				break;
			uint64_t addr = cow__be64(k.data), cnt = cow__le64(v.data);
			if (k.len != 8 || v.len != 8 || cnt < 2 || addr >= bs->nblocks ||
			    c.refs[addr] != cnt)
				rc = COW_CORRUPT(addr, "stray reference count");
		}
	}
out:
	cow__free(c.refs);
	cow__free(c.flags);
	cow_txn_abort(t);
	return rc;
}
