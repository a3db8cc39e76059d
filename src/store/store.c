/*
 * Stores and transactions: open with recovery, the writer's begin/commit/
 * abort, read transactions pinned to a generation, and the debug checker.
 *
 * The superblock slots are the one truth about the newest commit, for every
 * process: there is no lock file to agree with them. Opening picks the newest
 * slot whose blocks verify; later slots are trusted as they appear, since
 * only a writer holding the writer lock writes them, after all their blocks.
 * Readers pin their generation with a lock the kernel drops when they die
 * (lock.c); the writer reuses no block a pinned generation can see.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store.h"

_Static_assert(COW_KEY_MAX == COW_BTREE_KEY_MAX, "the node format bounds keys");
_Static_assert(COW_VALUE_MAX == COW_BTREE_VALUE_MAX, "the node format bounds values");

/* ---- catalog records ---- */

int cow__obj_decode(const uint8_t *v, size_t len, struct cow__obj *o)
{
	if (len < CAT_FIXED || (v[0] != OBJ_MAP && v[0] != OBJ_VOLUME && v[0] != OBJ_FS))
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

/* A new store: format, then commit generation 1 with an empty catalog. Writer lock held. */
static int create_store(cow_store *s)
{
	struct cow__bs *bs = s->bs;
	uint8_t uuid[16];
	fill_uuid(uuid);
	int rc = cow__bs_format(bs, uuid);
	if (rc)
		return rc;
	rc = cow__bs_begin(bs, 1, NULL, 0);
	if (rc)
		return rc;
	struct cow__sb sb = {.next_id = 1};
	bool nosync = cow__bs_set_nosync(bs, false); /* the first commit is always durable */
	rc = cow__bs_commit(bs, &sb);
	cow__bs_set_nosync(bs, nosync);
	return rc;
}

/*
 * The in-process writer slot: false (busy) only with @nowait. A thread that
 * asks again while its own write transaction is open would wait forever:
 * COW_EDEADLK instead.
 */
static int writer_acquire(cow_store *s, bool nowait)
{
	int rc = 0;
	pthread_mutex_lock(&s->wmutex);
	if (s->wbusy && s->wepoch != cow__fork_epoch())
		s->wbusy = false; /* the writer is the parent's, in the parent */
	if (s->wbusy && pthread_equal(s->wowner, pthread_self())) {
		rc = COW_EDEADLK;
		goto out;
	}
	while (s->wbusy && !nowait)
		pthread_cond_wait(&s->wcond, &s->wmutex);
	if (s->wbusy) {
		rc = COW_ELOCKED;
		goto out;
	}
	s->wbusy = true;
	s->wowner = pthread_self();
	s->wepoch = cow__fork_epoch();
out:
	pthread_mutex_unlock(&s->wmutex);
	return rc;
}

static void writer_release(cow_store *s)
{
	pthread_mutex_lock(&s->wmutex);
	s->wbusy = false;
	pthread_cond_signal(&s->wcond);
	pthread_mutex_unlock(&s->wmutex);
}

/* ---- the newest commit, from the superblock slots ---- */

static void meta_of(const struct cow__sb *sb, struct cow__meta *m)
{
	*m = (struct cow__meta){.gen = sb->gen,
				.nblocks = sb->nblocks,
				.catalog = sb->catalog,
				.refs = sb->refs,
				.used_blocks = sb->used_blocks,
				.pending_blocks = sb->pending_blocks};
}

/* RCU read side: what this process knows. */
static void known_get(cow_store *s, struct cow__known *k)
{
	cow_rcu_read_lock();
	memcpy(k, cow_rcu_deref(s->root), sizeof(*k));
	cow_rcu_read_unlock();
}

static void known_set(cow_store *s, const struct cow__known *k)
{
	void *copy;
	if (cow_rcu_update_begin(s->root, &copy) != 0)
		return; /* the old version stays: readers then refresh from the slots */
	memcpy(copy, k, sizeof(*k));
	if (cow_rcu_update_commit(s->root, copy, 0) != 0)
		cow__log("could not publish generation %llu to local readers",
			 (unsigned long long)k->m.gen);
}

/* Do the slots still hold what @k was chosen from? */
static bool slots_unchanged(cow_store *s, const struct cow__known *k)
{
	for (int i = 0; i < 2; i++) {
		uint64_t raw[2];
		cow__bs_slot_peek(s->bs, i, raw);
		if (raw[0] != k->raw[i][0] || raw[1] != k->raw[i][1])
			return false;
	}
	return true;
}

/* One look at both slots. */
struct slots {
	struct cow__sb sb[2];
	bool valid[2];
	bool torn[2]; /* the superblock magic, a wrong checksum */
	uint64_t raw[2][2];
	int newest; /* index of the newest valid slot */
};

/*
 * Decode both slots from the mapping. A slot with the magic and a wrong
 * checksum may be half-written by a live writer at this instant: it is read
 * again a while, unless it looked exactly so before (damage, or a writer
 * that died mid-write). Slots this process rejected at open stay rejected
 * while unchanged. s->known_mu held.
 */
static int look(cow_store *s, struct slots *v)
{
	int format_err = 0;
	for (int i = 0; i < 2; i++) {
		int rc;
		for (int tries = 0;; tries++) {
			rc = cow__bs_slot_load(s->bs, i, &v->sb[i], v->raw[i]);
			if (rc != -1)
				break;
			if (v->raw[i][0] == s->torn[i].gen && v->raw[i][1] == s->torn[i].csum)
				break;
			if (tries == 1000) {
				s->torn[i].gen = v->raw[i][0];
				s->torn[i].csum = v->raw[i][1];
				break;
			}
			sched_yield();
		}
		v->torn[i] =
			rc == -1 && memcmp(cow__bs_mapped(s->bs, (uint64_t)i), "COWKITSB", 8) == 0;
		v->valid[i] = rc == 1 && !(v->raw[i][0] == s->rejected[i].gen &&
					   v->raw[i][1] == s->rejected[i].csum);
		if (rc == COW_EFORMAT)
			format_err = rc;
	}
	if (v->valid[0] && v->valid[1]) {
		const struct cow__sb *a = &v->sb[0], *b = &v->sb[1];
		/* Of two with one generation, the one marked clean. */
		v->newest = a->gen != b->gen ? b->gen > a->gen : b->synced > a->synced;
	} else if (v->valid[0] || v->valid[1]) {
		v->newest = v->valid[0] ? 0 : 1;
	} else if (format_err) {
		return format_err;
	} else {
		/* No slot ever was a superblock: not a store, rather than a damaged one. */
		for (int i = 0; i < 2; i++)
			if (memcmp(cow__bs_mapped(s->bs, (uint64_t)i), "COWKITSB", 8) == 0)
				return COW_CORRUPT(0, "no superblock slot is valid");
		return COW_EFORMAT;
	}
	return 0;
}

/* Would @a and @b choose the same commit for the same reasons? */
static bool same_look(const struct slots *a, const struct slots *b)
{
	return memcmp(a->raw, b->raw, sizeof(a->raw)) == 0 && a->valid[0] == b->valid[0] &&
	       a->valid[1] == b->valid[1];
}

/*
 * The newest commit, pinned for a read transaction, learnt from the slots
 * (the slow path of reader_begin). After the pin the slots are read again
 * and must tell the same: then any writer that lists pins from now on sees
 * the pin, and one that listed them before builds a generation that frees
 * nothing this one sees (FORMAT.md section 8). A choice made while a slot
 * was torn is not remembered: the slot is probably being written.
 */
static int refresh_pinned(cow_store *s, uint64_t epoch, struct cow__known *k)
{
	pthread_mutex_lock(&s->known_mu);
	int rc;
	for (;;) {
		struct slots a, b;
		rc = look(s, &a);
		if (rc)
			break;
		uint64_t gen = a.sb[a.newest].gen;
		rc = cow__locks_pin(&s->lk, gen);
		if (rc)
			break;
		rc = look(s, &b);
		if (rc == 0 && same_look(&a, &b)) {
			meta_of(&a.sb[a.newest], &k->m);
			memcpy(k->raw, a.raw, sizeof(k->raw));
			if (!a.torn[0] && !a.torn[1])
				known_set(s, k);
			break;
		}
		cow__locks_unpin(&s->lk, gen, epoch);
		if (rc)
			break;
	}
	pthread_mutex_unlock(&s->known_mu);
	return rc;
}

/* Learn the newest commit from the slots, without a pin (stat, close, after a commit). */
static int refresh(cow_store *s, struct cow__known *k)
{
	pthread_mutex_lock(&s->known_mu);
	struct slots a;
	int rc = look(s, &a);
	if (rc == 0) {
		meta_of(&a.sb[a.newest], &k->m);
		memcpy(k->raw, a.raw, sizeof(k->raw));
		if (!a.torn[0] && !a.torn[1])
			known_set(s, k);
	}
	pthread_mutex_unlock(&s->known_mu);
	return rc;
}

/*
 * At open: the newest slot whose new blocks all verify (FORMAT.md section
 * 7). Every slot written after this is a live writer's (or a killed one's,
 * complete in the page cache), so it is trusted without a walk; a slot that
 * fails here was torn by a power loss and stays rejected until a writer
 * overwrites it. Each candidate is pinned while it is walked.
 */
static int choose_at_open(cow_store *s, struct cow__known *k)
{
	uint64_t epoch = cow__fork_epoch();
	int rc = COW_EAGAIN;
	pthread_mutex_lock(&s->known_mu);
	for (int round = 0; round < 64; round++) {
		struct slots a, b;
		rc = look(s, &a);
		if (rc)
			break;
		int i = a.newest;
		rc = cow__locks_pin(&s->lk, a.sb[i].gen);
		if (rc)
			break;
		rc = look(s, &b);
		if (rc == 0 && same_look(&a, &b))
			rc = cow__store_verify_sb(s->bs, &a.sb[i]);
		else if (rc == 0)
			rc = COW_EAGAIN; /* changed: look again */
		if (rc == 0 || rc == COW_ECORRUPT) {
			struct slots c;
			if (look(s, &c) != 0 || !same_look(&a, &c))
				rc = COW_EAGAIN;
		}
		cow__locks_unpin(&s->lk, a.sb[i].gen, epoch);
		if (rc == 0) {
			meta_of(&a.sb[i], &k->m);
			memcpy(k->raw, a.raw, sizeof(k->raw));
			break;
		}
		if (rc == COW_ECORRUPT) {
			cow__log("generation %llu does not verify; falling back",
				 (unsigned long long)a.sb[i].gen);
			s->rejected[i].gen = a.raw[i][0];
			s->rejected[i].csum = a.raw[i][1];
			rc = COW_EAGAIN; /* the other slot, if valid, in the next round */
		} else if (rc != COW_EAGAIN) {
			break;
		}
	}
	pthread_mutex_unlock(&s->known_mu);
	return rc;
}

/* Both slots zero: a file whose first commit never completed. */
static bool never_committed(struct cow__bs *bs, uint64_t size)
{
	uint8_t buf[2 * COW_BLOCK_SIZE];
	struct cow__io *io = cow__bs_io(bs);
	if (io->ops->pread(io, buf, sizeof(buf), 0) != 0)
		return false;
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i])
			return false;
	/*
	 * A first commit writes a handful of blocks. A bigger file with both
	 * slots gone is a damaged store, never to be formatted over.
	 */
	return size <= 16 * COW_BLOCK_SIZE;
}

/* Is the file a new store to create (1), a store (0), or an error? Writer lock held to create. */
static int classify(cow_store *s)
{
	uint64_t size;
	struct cow__io *io = cow__bs_io(s->bs);
	int rc = io->ops->size(io, &size);
	if (rc)
		return rc;
	if (size == 0 || never_committed(s->bs, size))
		return 1;
	if (size < 2 * COW_BLOCK_SIZE) {
		uint8_t magic[8];
		rc = io->ops->pread(io, magic, sizeof(magic), 0);
		if (rc)
			return rc;
		return memcmp(magic, "COWKITSB", 8) == 0 ? COW_CORRUPT(0, "truncated store")
							 : COW_EFORMAT;
	}
	return 0;
}

int cow_store_open(const char *path, const cow_store_options *opts, cow_store **out)
{
	unsigned flags = opts ? opts->flags : 0;
	if (!path || !out)
		return COW_EINVAL;
	bool rdonly = flags & COW_STORE_RDONLY;
	cow_store *s = cow__calloc(1, sizeof(*s));
	if (!s)
		return COW_ENOMEM;
	s->lk.fd = -1;
	s->flags = flags;
	pthread_mutex_init(&s->wmutex, NULL);
	pthread_cond_init(&s->wcond, NULL);
	pthread_mutex_init(&s->known_mu, NULL);
	pthread_mutex_init(&s->qmutex, NULL);
	int rc = COW_ENOMEM;
	s->path = cow__strdup(path);
	if (!s->path)
		goto fail;
	if ((flags & COW_STORE_EXCL) && (flags & COW_STORE_CREATE) && access(path, F_OK) == 0) {
		rc = COW_EEXIST;
		goto fail;
	}
	rc = cow__bs_open(path, (flags & COW_STORE_CREATE) && !rdonly, rdonly,
			  flags & COW_STORE_NOSYNC, &s->bs);
	if (rc)
		goto fail;
	cow__bs_set_walker(s->bs, cow__store_space_walk, NULL);
	rc = cow__locks_open(&s->lk, s->path, cow__bs_io(s->bs)->fd, rdonly);
	if (rc)
		goto fail;
	rc = classify(s);
	if (rc == 1) {
		if (!(flags & COW_STORE_CREATE) || rdonly) {
			rc = COW_EFORMAT;
			goto fail;
		}
		/* Creating: look again under the writer lock, another process may be at it. */
		rc = cow__locks_writer(&s->lk, true);
		if (rc)
			goto fail;
		rc = classify(s);
		if (rc == 1)
			rc = create_store(s);
		cow__locks_writer_release(&s->lk);
	}
	if (rc)
		goto fail;
	rc = cow__bs_map_ensure(s->bs, 2);
	if (rc)
		goto fail;
	struct cow__known k;
	rc = choose_at_open(s, &k);
	if (rc)
		goto fail;
	static const cow_rcu_ops root_ops = {.size = sizeof(struct cow__known)};
	rc = cow_rcu_create(&root_ops, &k, &s->root);
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	cow_store_close(s);
	return rc;
}

static void txn_free(cow_txn *t);

void cow_store_close(cow_store *s)
{
	if (!s)
		return;
	long open = atomic_load(&s->ntxn);
	if (open > 0) {
		/* Freeing it would leave those transactions dangling; waiting could deadlock. */
		cow__log("cow_store_close: %ld transaction(s) still open; the handle is left open",
			 open);
		return;
	}
	if (s->bs && !cow__bs_rdonly(s->bs) && cow__bs_loaded(s->bs) &&
	    writer_acquire(s, false) == 0) {
		/*
		 * Mark the newest commit clean, so reopening need not verify its
		 * blocks (and later damage to them is reported, not taken for a
		 * torn commit). Only if nobody committed after us.
		 */
		struct cow__known k;
		if (cow__locks_writer(&s->lk, false) == 0) {
			if (refresh(s, &k) == 0 && k.m.gen == cow__bs_sb(s->bs)->gen)
				cow__bs_mark_clean(s->bs);
			cow__locks_writer_release(&s->lk);
		} else if (cow__bs_nosync(s->bs)) {
			struct cow__io *io = cow__bs_io(s->bs);
			io->ops->sync(io);
		}
		writer_release(s);
	}
	for (unsigned i = 0; i < COW_TXN_QUARANTINE; i++)
		if (s->quarantine[i])
			txn_free(s->quarantine[i]);
	if (s->lk.fd >= 0 || s->lk.pins)
		cow__locks_close(&s->lk);
	cow_rcu_destroy(s->root);
	cow__bs_close(s->bs);
	pthread_mutex_destroy(&s->wmutex);
	pthread_cond_destroy(&s->wcond);
	pthread_mutex_destroy(&s->known_mu);
	pthread_mutex_destroy(&s->qmutex);
	cow__free(s->readers);
	cow__free(s->path);
	cow__free(s);
}

int cow_store_sync(cow_store *s)
{
	if (!s)
		return COW_EINVAL;
	struct cow__io *io = cow__bs_io(s->bs);
	int rc = io->ops->sync(io);
	if (rc)
		return rc;
	/* Record durability for this process's writer state. */
	if (writer_acquire(s, false) != 0)
		return 0; /* this thread's own write txn is open: it knows its state */
	cow__bs_mark_durable(s->bs);
	writer_release(s);
	return 0;
}

/* ---- transactions ---- */

int cow__txn_check_slow(const cow_txn *t, bool write)
{
	if (!t)
		return COW_EINVAL;
	if (t->ended) {
		cow__log("a transaction was used after it ended");
		return COW_EINVAL;
	}
	if (t->epoch != cow__fork_epoch()) {
		cow__log("a transaction was used in a child process after fork()");
		return COW_EINVAL;
	}
	if (t->reset) {
		cow__log("a reset read transaction was used before cow_txn_renew");
		return COW_EINVAL;
	}
	if (write && !t->write)
		return COW_EREADONLY;
	return t->err ? COW_ETXNERR : 0;
}

int cow__txn_poison(cow_txn *t, int rc)
{
	if (rc && t->write && !t->err)
		t->err = rc, t->blocked = true;
	return rc;
}

/*
 * Bring this process's writer state to the newest commit, which may be
 * another process's, or a complete commit whose writer was killed before it
 * returned: loading it flushes the file, so it is durable from here on and no
 * generation number is ever used for two different commits.
 */
static int writer_sync_state(cow_store *s, struct cow__meta *m)
{
	struct cow__bs *bs = s->bs;
	struct slots v;
	pthread_mutex_lock(&s->known_mu);
	int rc = look(s, &v);
	pthread_mutex_unlock(&s->known_mu);
	if (rc)
		return rc;
	/*
	 * Nobody else writes slots while we hold the writer lock, so a torn one
	 * is what a writer killed mid-write (or damage) left: never valid, and
	 * cleared so that readers stop waiting for it to complete.
	 */
	for (int i = 0; i < 2; i++)
		if (v.torn[i]) {
			uint8_t zero[COW_BLOCK_SIZE] = {0};
			cow__log("superblock slot %d is damaged; clearing it", i);
			rc = cow__io_pwrite(cow__bs_io(bs), zero, sizeof(zero),
					    (uint64_t)i * COW_BLOCK_SIZE);
			if (rc)
				return rc;
		}
	int i = v.newest;
	if (!cow__bs_loaded(bs) || cow__bs_sb_slot(bs) != i || cow__bs_sb(bs)->gen != v.sb[i].gen) {
		rc = cow__bs_load(bs, &v.sb[i], i);
		if (rc)
			return rc;
	}
	meta_of(&v.sb[i], m);
	return 0;
}

static int reader_begin(cow_store *s, cow_txn *t)
{
	struct cow__known k;
	known_get(s, &k);
	int rc = 0;
	bool fast = slots_unchanged(s, &k);
	if (fast) {
		rc = cow__locks_pin(&s->lk, k.m.gen);
		if (rc)
			return rc;
		/* Still the newest after the pin: see refresh_pinned for why that is enough. */
		fast = slots_unchanged(s, &k);
		if (!fast)
			cow__locks_unpin(&s->lk, k.m.gen, t->epoch);
	}
	if (!fast) {
		rc = refresh_pinned(s, t->epoch, &k);
		if (rc)
			return rc;
	}
	t->pin = k.m.gen;
	rc = cow__bs_map_ensure(s->bs, k.m.nblocks);
	if (rc)
		return rc;
	t->tx = (struct cow__tx){.bs = s->bs, .gen = k.m.gen, .nblocks = k.m.nblocks};
	t->catalog.root = k.m.catalog; /* the catalog's count is not tracked */
	t->refs.root = k.m.refs;
	t->tx.refs = &t->refs;
	return 0;
}

static int writer_begin(cow_store *s, cow_txn *t, bool nowait)
{
	int rc = writer_acquire(s, nowait);
	if (rc)
		return rc;
	rc = cow__locks_writer(&s->lk, !nowait);
	if (rc)
		goto unlock_mutex;
	struct cow__meta m;
	rc = writer_sync_state(s, &m);
	if (rc)
		goto unlock;
	rc = cow__locks_pinned(&s->lk, &s->readers, &s->nreaders, &s->cap_readers);
	if (rc)
		goto unlock;
	if (s->nreaders && s->readers[s->nreaders - 1] > m.gen) {
		/* Readers of a commit that failed after its superblock was seen. */
		cow__log("a reader holds generation %llu, which failed to commit; retry when it "
			 "ends",
			 (unsigned long long)s->readers[s->nreaders - 1]);
		rc = COW_EBUSY;
		goto unlock;
	}
	rc = cow__bs_begin(s->bs, m.gen + 1, s->readers, s->nreaders);
	if (rc) {
		cow__bs_abort(s->bs);
		goto unlock;
	}
	s->next_id = cow__bs_sb(s->bs)->next_id;
	t->tx = (struct cow__tx){.bs = s->bs,
				 .gen = m.gen + 1,
				 .nblocks = 0,
				 .write = true,
				 .read_flags = COW_READ_WRITER};
	t->catalog.root = m.catalog;
	t->refs.root = m.refs;
	t->tx.refs = &t->refs;
	return 0;
unlock:
	cow__locks_writer_release(&s->lk);
unlock_mutex:
	writer_release(s);
	return rc;
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
	t->epoch = cow__fork_epoch();
	int rc = write ? writer_begin(s, t, flags & COW_TXN_NOWAIT) : reader_begin(s, t);
	if (rc) {
		if (t->pin)
			cow__locks_unpin(&s->lk, t->pin, t->epoch);
		cow__free(t);
		return rc;
	}
	atomic_fetch_add(&s->ntxn, 1);
	*out = t;
	return 0;
}

uint64_t cow_txn_gen(const cow_txn *t)
{
	return t ? t->tx.gen : 0;
}

static void txn_free(cow_txn *t)
{
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

/*
 * The end of every transaction: release what it holds and keep its memory in
 * the store's quarantine for a while, so a second commit or abort, or a map
 * used after the end, fails cleanly instead of touching freed memory.
 */
static void txn_end(cow_txn *t)
{
	cow_store *s = t->s;
	cow__refs_discard(&t->tx);
	if (t->write) {
		cow__locks_writer_release(&s->lk);
		writer_release(s);
	} else if (t->pin) {
		cow__locks_unpin(&s->lk, t->pin, t->epoch);
	}
	t->ended = t->blocked = true;
	pthread_mutex_lock(&s->qmutex);
	cow_txn *old = s->quarantine[s->qnext];
	s->quarantine[s->qnext] = t;
	s->qnext = (s->qnext + 1) % COW_TXN_QUARANTINE;
	pthread_mutex_unlock(&s->qmutex);
	atomic_fetch_sub(&s->ntxn, 1);
	if (old)
		txn_free(old);
}

/* Misuse that must not touch the store: an ended txn, or one from before fork(). */
static bool txn_foreign(cow_txn *t)
{
	if (t->ended)
		return true;
	if (t->epoch != cow__fork_epoch()) {
		/* The locks it holds are the parent's: leave them. */
		cow__refs_discard(&t->tx);
		return true;
	}
	return false;
}

void cow_txn_abort(cow_txn *t)
{
	if (!t)
		return;
	if (txn_foreign(t)) {
		cow__txn_check(t, false); /* logs which misuse */
		return;
	}
	if (t->write)
		cow__bs_abort(t->s->bs);
	txn_end(t);
}

void cow_txn_reset(cow_txn *t)
{
	if (!t || txn_foreign(t) || t->write || t->reset) {
		if (t)
			cow__log("cow_txn_reset: not an active read transaction");
		return;
	}
	if (t->pin)
		cow__locks_unpin(&t->s->lk, t->pin, t->epoch);
	t->pin = 0;
	t->reset = t->blocked = true;
	t->renewals++; /* its maps and cursors are stale from now on */
	for (cow_map *m = t->maps; m; m = m->next)
		m->dropped = true; /* and fail in the fast check; the slow one says why */
}

int cow_txn_renew(cow_txn *t)
{
	if (!t || txn_foreign(t) || !t->reset)
		return COW_EINVAL;
	int rc = reader_begin(t->s, t);
	if (rc == 0)
		t->reset = t->blocked = false;
	return rc;
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
	if (txn_foreign(t))
		return cow__txn_check(t, false);
	if (!t->write) {
		txn_end(t);
		return 0;
	}
	cow_store *s = t->s;
	int rc = t->err ? COW_ETXNERR : flush_objects(t);
	if (rc) {
		cow_txn_abort(t);
		return rc;
	}
	struct cow__sb sb = {
		.catalog = t->catalog.root, .refs = t->refs.root, .next_id = s->next_id};
	rc = cow__bs_commit(s->bs, &sb);
	if (rc == 0) {
		struct cow__known k;
		refresh(s, &k); /* this process's readers see it without a slot decode */
	}
	txn_end(t);
	return rc;
}

int cow_store_trim(cow_store *s, uint64_t *bytes)
{
	if (bytes)
		*bytes = 0;
	cow_txn *t;
	int rc = cow_txn_begin(s, 0, &t); /* the writer lock and a loaded space map */
	if (rc)
		return rc;
	/* What the file system gave back, not what was asked: some runs were holes already. */
	struct stat before, after;
	int fd = cow__bs_io(s->bs)->fd;
	uint64_t punched = 0;
	bool measured = fstat(fd, &before) == 0;
	rc = cow__bs_trim(s->bs, 1, &punched);
	cow_txn_abort(t);
	if (bytes && rc == 0 && measured && fstat(fd, &after) == 0)
		*bytes = before.st_blocks > after.st_blocks
				 ? (uint64_t)(before.st_blocks - after.st_blocks) * 512
				 : 0;
	return rc;
}

int cow_store_stat(cow_store *s, cow_store_stats *st)
{
	if (!s || !st)
		return COW_EINVAL;
	memset(st, 0, sizeof(*st));
	struct cow__known k;
	known_get(s, &k);
	if (!slots_unchanged(s, &k)) {
		int rc = refresh(s, &k);
		if (rc)
			return rc;
	}
	st->gen = k.m.gen;
	uint64_t size;
	struct cow__io *io = cow__bs_io(s->bs);
	int rc = io->ops->size(io, &size);
	if (rc)
		return rc;
	st->file_bytes = size;
	uint64_t *gens = NULL;
	size_t n = 0, cap = 0;
	rc = cow__locks_pinned(&s->lk, &gens, &n, &cap);
	cow__free(gens);
	if (rc)
		return rc;
	st->readers = n;
	uint64_t file_blocks = size >> COW_BLOCK_SHIFT;
	uint64_t used = k.m.used_blocks;
	st->used_bytes = (used - k.m.pending_blocks) * COW_BLOCK_SIZE;
	st->pending_bytes = k.m.pending_blocks * COW_BLOCK_SIZE;
	st->free_bytes = file_blocks > used ? (file_blocks - used) * COW_BLOCK_SIZE : 0;
	struct stat fs;
	if (fstat(cow__bs_io(s->bs)->fd, &fs) == 0) {
		st->disk_bytes = (uint64_t)fs.st_blocks * 512;
		uint64_t need = used * COW_BLOCK_SIZE;
		st->reclaimable_bytes = st->disk_bytes > need ? st->disk_bytes - need : 0;
		if (st->reclaimable_bytes > st->free_bytes)
			st->reclaimable_bytes = st->free_bytes; /* blocks past the end are not it */
	}
	return 0;
}

/* ---- the checker ---- */

/*
 * Every block is counted once per distinct parent that points to it (a node
 * visited the first time, or a catalog record for a root); the counts must
 * equal the stored reference counts, and the space map must agree: reachable
 * blocks in use, pending ones unreachable, nothing else allocated. Every
 * problem is reported (to c->fn), not just the first.
 */
struct check {
	struct cow__tx *tx;
	uint32_t *refs; /* expected reference count per block */
	uint8_t *flags; /* 1 visited node, 2 pending, 4 extent tail */
	uint64_t nblocks;
	int (*fn)(void *ctx, uint64_t block, const char *what);
	void *ctx;
	uint64_t problems;
	int stop; /* fn's nonzero return: no more calls */
};

static void problem(struct check *c, uint64_t block, const char *what)
{
	c->problems++;
	if (!c->fn)
		COW_CORRUPT(block, what);
	else if (!c->stop)
		c->stop = c->fn(c->ctx, block, what);
}

/* 1: counted; 0: a bad reference, reported (the caller skips it). */
static int count_ref(struct check *c, uint64_t addr, uint64_t nblk)
{
	if (addr < 2 || addr + nblk > c->nblocks || addr + nblk < addr) {
		problem(c, addr, "reference beyond the store");
		return 0;
	}
	c->refs[addr]++;
	for (uint64_t b = addr + 1; b < addr + nblk; b++) { /* extent tails: counted by the head */
		c->refs[b] = c->refs[addr];
		c->flags[b] |= 4;
	}
	return 1;
}

/*
 * Each pointer the tree walk follows: a child counts one more parent. A node
 * is descended into at its first parent only.
 */
static int on_edge(void *ctx, const struct cow__bptr *p, uint64_t nblk, bool node, int depth)
{
	(void)depth;
	struct check *c = ctx;
	if (!count_ref(c, p->addr, nblk))
		return 0; /* not followed */
	if (!node || (c->flags[p->addr] & 1))
		return 0; /* a value, or a shared node: its children were counted */
	c->flags[p->addr] |= 1;
	return 1;
}

static int on_bad(void *ctx, uint64_t block, const char *what)
{
	problem(ctx, block, what);
	return 0;
}

static int check_obj(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	(void)key, (void)klen;
	struct check *c = ctx;
	struct cow__obj o = {0};
	if (cow__obj_decode(val, vlen, &o) != 0) {
		problem(c, 0, "bad catalog record");
		return 0;
	}
	struct cow__tree t = {.root = o.root,
			      .count = cow__obj_keyed(o.type) ? o.count : UINT64_MAX,
			      .shared_gen = o.shared_gen};
	int rc = 0;
	if (cow__obj_keyed(o.type) && (rc = cow__btree_verify(c->tx, &t)) == COW_ECORRUPT) {
		problem(c, o.root.addr, "map tree does not verify");
		rc = 0;
	}
	struct cow__visit v = {.pre = on_edge, .bad = on_bad, .ctx = c};
	if (rc == 0)
		rc = cow__btree_visit(c->tx, &o.root, &v);
	return rc;
}

static int mark_tree(void *ctx, uint64_t addr, uint64_t nblk, uint64_t birth)
{
	(void)birth;
	struct check *c = ctx;
	if (count_ref(c, addr, nblk) && c->refs[addr] > 1)
		problem(c, addr, "catalog or refs-tree block reachable twice");
	return 0;
}

/*
 * A read transaction, and this process's writer state loaded from its
 * generation's superblock (so the check needs neither the writer lock nor
 * write access; writers in other processes go on meanwhile). In-process
 * writers are held off while the writer state is borrowed.
 */
static int check_begin(cow_store *s, cow_txn **out)
{
	int rc = writer_acquire(s, false);
	if (rc)
		return rc;
	for (int tries = 0; tries < 100; tries++) {
		cow_txn *t;
		rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
		if (rc)
			break;
		struct slots v;
		pthread_mutex_lock(&s->known_mu);
		rc = look(s, &v);
		pthread_mutex_unlock(&s->known_mu);
		int i = -1;
		for (int k = 0; rc == 0 && k < 2; k++)
			if (v.valid[k] && v.sb[k].gen == t->tx.gen)
				i = k;
		if (rc == 0 && i >= 0)
			rc = cow__bs_load(s->bs, &v.sb[i], i);
		if (rc == 0 && i >= 0) {
			*out = t;
			return 0;
		}
		cow_txn_abort(t);
		if (rc)
			break;
		rc = COW_EAGAIN; /* its superblock was overwritten already: a newer one */
	}
	writer_release(s);
	return rc;
}

int cow__store_check_all(cow_store *s, int (*fn)(void *ctx, uint64_t block, const char *what),
			 void *ctx)
{
	cow_txn *t;
	int rc = check_begin(s, &t);
	if (rc)
		return rc;
	struct cow__bs *bs = s->bs;
	uint64_t nblocks = cow__bs_nblocks(bs);
	struct check c = {&t->tx, NULL, NULL, nblocks, fn, ctx, 0, 0};
	c.refs = cow__calloc(nblocks ? nblocks : 1, sizeof(uint32_t));
	c.flags = cow__calloc(nblocks ? nblocks : 1, 1);
	if (!c.refs || !c.flags) {
		rc = COW_ENOMEM;
		goto out;
	}
	c.refs[0] = c.refs[1] = 1;
	struct cow__pend p;
	for (size_t i = 0; cow__bs_pending_at(bs, i, &p); i++) {
		for (uint64_t b = p.start; b < p.start + p.len && b < nblocks; b++) {
			if (c.flags[b] & 2)
				problem(&c, b, "block pending twice");
			c.flags[b] |= 2;
		}
	}
	/* The catalog and refs trees are never shared; objects' trees may be. */
	struct cow__walk w = {.blk = mark_tree, .val = check_obj, .ctx = &c};
	rc = cow__btree_walk(&t->tx, &t->catalog, &w);
	if (rc == COW_ECORRUPT) {
		problem(&c, t->catalog.root.addr, "the catalog does not read back whole");
		rc = 0;
	}
	struct cow__walk wr = {.blk = mark_tree, .ctx = &c};
	if (rc == 0 && (rc = cow__btree_walk(&t->tx, &t->refs, &wr)) == COW_ECORRUPT) {
		problem(&c, t->refs.root.addr, "the refs tree does not read back whole");
		rc = 0;
	}
	struct cow__chainblk cb;
	for (size_t i = 0; rc == 0 && cow__bs_chain_at(bs, i, &cb); i++)
		mark_tree(&c, cb.addr, 1, cb.birth);
	for (uint64_t b = 0; rc == 0 && b < nblocks; b++) {
		bool alloc = cow__bs_allocated(bs, b), pend = c.flags[b] & 2;
		uint32_t want = c.refs[b];
		if (want && !alloc)
			problem(&c, b, "reachable block is marked free");
		else if (want && pend)
			problem(&c, b, "reachable block is pending reuse");
		else if (pend && !alloc)
			problem(&c, b, "pending block is marked free");
		else if (!want && alloc && !pend)
			problem(&c, b, "block leaked: allocated, unreachable, not pending");
		else if (want >= 1 && b >= 2 && !(c.flags[b] & 4) && (c.flags[b] & 1 || want > 1)) {
			int err = 0;
			uint64_t have = cow__ref_get(&t->tx, b, &err);
			if (err && err != COW_ECORRUPT)
				rc = err;
			else if (err || have != want)
				problem(&c, b, "reference count differs from the parents found");
		}
	}
	/* Every stored count belongs to a block that really has that many parents. */
	if (rc == 0 && t->refs.root.addr) {
		struct cow__cursor cur;
		cow__cursor_init(&cur, &t->tx, &t->refs);
		for (int r = cow__cursor_first(&cur); rc == 0 && r != COW_ENOTFOUND;
		     r = cow__cursor_next(&cur)) {
			cow_buf k, v;
			if (r == 0)
				r = cow__cursor_get(&cur, &k, &v);
			if (r == COW_ECORRUPT) {
				problem(&c, 0, "the refs tree does not read back whole");
				break;
			}
			if ((rc = r))
				break;
			uint64_t addr = k.len == 8 ? cow__be64(k.data) : 0;
			uint64_t cnt = v.len == 8 ? cow__le64(v.data) : 0;
			if (k.len != 8 || v.len != 8 || cnt < 2 || addr >= nblocks ||
			    c.refs[addr] != cnt)
				problem(&c, addr, "stray reference count");
		}
	}
	if (rc == 0 && c.problems)
		rc = COW_ECORRUPT;
out:
	cow__free(c.refs);
	cow__free(c.flags);
	cow_txn_abort(t);
	writer_release(s);
	return rc;
}

int cow__store_check(cow_store *s)
{
	return cow__store_check_all(s, NULL, NULL);
}
