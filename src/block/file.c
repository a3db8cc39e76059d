/*
 * The data file, its read-only mapping and the superblock ring (FORMAT.md
 * sections 1-3), and every read of a block.
 *
 * The mapping reserves a large span of address space once (PROT_NONE, no
 * memory committed) and maps the file into its prefix as the file grows, so
 * there is no map size to configure and pointers handed to readers never move.
 * If a store outgrows the reservation, a bigger one is made and the old one
 * stays mapped until close, so existing pointers stay valid.
 *
 * What must stay true:
 *
 *  1. map_blocks only grows, and every block below it is mapped: readers in
 *     any thread use the mapping without a lock.
 *  2. A tag in the verified-block cache never needs invalidating: a block
 *     is rewritten only after it was freed, and then its pointer carries
 *     another checksum.
 *  3. A superblock slot is decoded from one copy of its bytes, since another
 *     process may be writing it while it is read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/base.h"
#include "block/bs.h"

uint64_t cow__csum(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

/* ---- superblocks ---- */

static const char sb_magic[8] = {'C', 'O', 'W', 'K', 'I', 'T', 'S', 'B'};

/*
 * A value no earlier write of a slot had: a commit that rebuilds exactly
 * the superblock a power loss tore (same generation, same roots) must still
 * differ from it, or a process that rejected the torn slot would reject
 * the good one too (FORMAT.md section 3).
 */
static uint64_t sb_nonce(void)
{
	static _Atomic uint64_t count;
	struct timespec rt, mono;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	uint64_t in[4] = {(uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec,
			  (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec,
			  (uint64_t)getpid(), atomic_fetch_add(&count, 1)};
	return XXH3_64bits(in, sizeof(in));
}

void cow__sb_encode(const struct cow__sb *sb, uint8_t *b)
{
	memset(b, 0, COW_BLOCK_SIZE);
	memcpy(b, sb_magic, 8);
	cow__put32(b + 8, COW_FORMAT_VERSION);
	cow__put32(b + 12, COW_BLOCK_SIZE);
	cow__put64(b + 16, sb->gen);
	cow__put64(b + 24, sb->synced);
	cow__put64(b + 32, sb->nblocks);
	cow__bptr_store(b + 40, &sb->catalog);
	cow__bptr_store(b + 64, &sb->space_base);
	cow__bptr_store(b + 88, &sb->space_log);
	cow__put64(b + 112, sb->log_blocks);
	memcpy(b + 120, sb->uuid, 16);
	cow__put64(b + 136, sb->next_id);
	cow__bptr_store(b + 144, &sb->refs);
	cow__put64(b + 168, sb->used_blocks);
	cow__put64(b + 176, sb->pending_blocks);
	cow__put32(b + 184, sb->tail_count);
	for (uint32_t i = 0; i < sb->tail_count && i < COW_SB_TAIL_MAX; i++) {
		uint8_t *r = b + COW_SB_TAIL_OFF + 40 * i;
		const struct cow__sprec *e = &sb->tail[i];
		cow__put64(r, e->gen);
		r[8] = (uint8_t)e->op;
		cow__put64(r + 16, e->start);
		cow__put64(r + 24, e->len);
		cow__put64(r + 32, e->birth);
	}
	cow__put64(b + COW_SB_NONCE_OFF, sb_nonce());
	cow__put64(b + 4088, cow__csum(b, 4088));
}

/* 1 valid, 0 not a superblock at all, COW_EFORMAT other version, -1 damaged. */
static int sb_decode(const uint8_t *b, struct cow__sb *sb)
{
	if (memcmp(b, sb_magic, 8) != 0)
		return 0;
	if (cow__le64(b + 4088) != cow__csum(b, 4088))
		return -1;
	uint32_t version = cow__le32(b + 8);
	if (version < 1 || version > COW_FORMAT_VERSION || cow__le32(b + 12) != COW_BLOCK_SIZE)
		return COW_EFORMAT;
	sb->gen = cow__le64(b + 16);
	sb->synced = cow__le64(b + 24);
	sb->nblocks = cow__le64(b + 32);
	cow__bptr_load(&sb->catalog, b + 40);
	cow__bptr_load(&sb->space_base, b + 64);
	cow__bptr_load(&sb->space_log, b + 88);
	sb->log_blocks = cow__le64(b + 112);
	memcpy(sb->uuid, b + 120, 16);
	sb->next_id = cow__le64(b + 136);
	cow__bptr_load(&sb->refs, b + 144);
	sb->used_blocks = cow__le64(b + 168);
	sb->pending_blocks = cow__le64(b + 176);
	sb->tail_count = version == 1 ? 0 : cow__le32(b + 184);
	if (sb->nblocks < 2 || sb->synced > sb->gen || sb->tail_count > COW_SB_TAIL_MAX)
		return -1;
	for (uint32_t i = 0; i < sb->tail_count; i++) { /* checked when replayed */
		const uint8_t *r = b + COW_SB_TAIL_OFF + 40 * i;
		sb->tail[i] = (struct cow__sprec){cow__le64(r), r[8], cow__le64(r + 16),
						  cow__le64(r + 24), cow__le64(r + 32)};
	}
	return 1;
}

int cow__bs_read_slots(struct cow__bs *bs, struct cow__sb sb[2], bool valid[2])
{
	uint8_t buf[COW_BLOCK_SIZE];
	int format_err = 0, damaged = 0;
	for (int i = 0; i < 2; i++) {
		int rc = bs->io->ops->pread(bs->io, buf, COW_BLOCK_SIZE,
					    (uint64_t)i * COW_BLOCK_SIZE);
		if (rc)
			return rc;
		rc = sb_decode(buf, &sb[i]);
		valid[i] = rc == 1;
		if (rc == COW_EFORMAT)
			format_err = rc;
		damaged += rc == -1;
	}
	if (!valid[0] && !valid[1] && format_err)
		return format_err;
	/* A store's superblocks, both damaged: not "not a store". */
	if (!valid[0] && !valid[1] && damaged)
		return COW_CORRUPT(0, "both superblocks are damaged");
	return 0;
}

const uint8_t *cow__bs_mapped(struct cow__bs *bs, uint64_t addr)
{
	return bs_mapped(bs, addr);
}

void cow__bs_slot_peek(struct cow__bs *bs, int i, uint64_t raw[2])
{
	const uint64_t *b = (const uint64_t *)(const void *)bs_mapped(bs, (uint64_t)i);
	raw[0] = __atomic_load_n(&b[16 / 8], __ATOMIC_ACQUIRE);
	raw[1] = __atomic_load_n(&b[4088 / 8], __ATOMIC_ACQUIRE);
}

int cow__bs_slot_load(struct cow__bs *bs, int i, struct cow__sb *sb, uint64_t raw[2])
{
	uint64_t buf[COW_BLOCK_SIZE / 8];
	const uint64_t *b = (const uint64_t *)(const void *)bs_mapped(bs, (uint64_t)i);
	for (size_t k = 0; k < COW_ARRAY_SIZE(buf);
	     k++) /* word by word: the slot may be changing */
		buf[k] = __atomic_load_n(&b[k], __ATOMIC_RELAXED);
	raw[0] = buf[16 / 8];
	raw[1] = buf[4088 / 8];
	return sb_decode((const uint8_t *)buf, sb);
}

/* ---- the mapping ---- */

static int reserve(uint64_t min_blocks, uint8_t **base, uint64_t *blocks)
{
	/* Try a generous span first; sanitizer runtimes may refuse the largest. */
	for (int shift = 44; shift >= 30; shift--) {
		uint64_t bytes = 1ull << shift;
		if ((bytes >> COW_BLOCK_SHIFT) < min_blocks)
			break;
		void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			       -1, 0);
		if (p != MAP_FAILED) {
			*base = p;
			*blocks = bytes >> COW_BLOCK_SHIFT;
			return 0;
		}
	}
	return COW_ENOMEM;
}

int cow__bs_map_ensure(struct cow__bs *bs, uint64_t nblocks)
{
	if (nblocks <= __atomic_load_n(&bs->map_blocks, __ATOMIC_ACQUIRE))
		return 0;
	int rc = 0;
	pthread_mutex_lock(&bs->map_lock);
	uint64_t have = bs->map_blocks;
	if (nblocks <= have)
		goto out;
	uint64_t size;
	rc = bs->io->ops->size(bs->io, &size);
	if (rc)
		goto out;
	uint64_t want = size >> COW_BLOCK_SHIFT;
	if (want < nblocks) {
		rc = COW_CORRUPT(nblocks, "store refers past the end of its file");
		goto out;
	}
	if (want > bs->map_reserved) {
		/* Outgrown: a new, larger reservation; the old one stays until close. */
		if (bs->nold == (int)COW_ARRAY_SIZE(bs->old_maps)) {
			rc = COW_ENOMEM;
			goto out;
		}
		uint8_t *nbase;
		uint64_t nres;
		rc = reserve(want * 2, &nbase, &nres);
		if (rc)
			goto out;
		if (mmap(nbase, want << COW_BLOCK_SHIFT, PROT_READ, MAP_SHARED | MAP_FIXED,
			 bs->io->fd, 0) == MAP_FAILED) {
			rc = -errno;
			munmap(nbase, nres << COW_BLOCK_SHIFT);
			goto out;
		}
		bs->old_maps[bs->nold] = bs->map;
		bs->old_sizes[bs->nold++] = bs->map_reserved << COW_BLOCK_SHIFT;
		bs->map_reserved = nres;
		__atomic_store_n(&bs->map, nbase, __ATOMIC_RELEASE);
	} else if (mmap(bs->map + (have << COW_BLOCK_SHIFT), (want - have) << COW_BLOCK_SHIFT,
			PROT_READ, MAP_SHARED | MAP_FIXED, bs->io->fd,
			(off_t)(have << COW_BLOCK_SHIFT)) == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	__atomic_store_n(&bs->map_blocks, want, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&bs->map_lock);
	return rc;
}

/* ---- open / close ---- */

int cow__bs_open(const char *path, bool create, bool rdonly, bool nosync, struct cow__bs **out)
{
	struct cow__bs *bs = cow__calloc(1, sizeof(*bs));
	if (!bs)
		return COW_ENOMEM;
	pthread_mutex_init(&bs->map_lock, NULL);
	cow__dirty_init(bs);
	bs->vtags = cow__calloc(1u << COW_VCACHE_BITS, sizeof(uint64_t));
	if (!bs->vtags) {
		cow__free(bs);
		return COW_ENOMEM;
	}
	bs->rdonly = rdonly;
	bs->nosync = nosync;
	int flags = rdonly ? O_RDONLY : O_RDWR | (create ? O_CREAT : 0);
	int rc = cow__io_open_file(path, flags, 0644, &bs->io);
	if (rc)
		goto fail;
	uint64_t size;
	rc = bs->io->ops->size(bs->io, &size);
	if (rc)
		goto fail;
	/*
	 * A tail that is not a whole block (growth that failed part-way, as
	 * fallocate on a full file system with small blocks does) holds nothing:
	 * every use of the size rounds it down to whole blocks, and growth
	 * allocates from wherever the file ends (FORMAT.md section 1).
	 */
	uint8_t *base;
	uint64_t res;
	rc = reserve(size >> COW_BLOCK_SHIFT, &base, &res);
	if (rc)
		goto fail;
	bs->map = base;
	bs->map_reserved = res;
	if (size) {
		rc = cow__bs_map_ensure(bs, size >> COW_BLOCK_SHIFT);
		if (rc)
			goto fail;
	}
	*out = bs;
	return 0;
fail:
	cow__bs_close(bs);
	return rc;
}

void cow__bs_close(struct cow__bs *bs)
{
	if (!bs)
		return;
	if (bs->map)
		munmap(bs->map, bs->map_reserved << COW_BLOCK_SHIFT);
	for (int i = 0; i < bs->nold; i++)
		munmap(bs->old_maps[i], bs->old_sizes[i]);
	if (bs->io)
		bs->io->ops->close(bs->io);
	cow__space_release(bs);
	pthread_mutex_destroy(&bs->map_lock);
	cow__free((void *)bs->vtags);
	cow__free(bs->stage);
	cow__free(bs);
}

/* ---- reads ---- */

static inline uint64_t vtag(const struct cow__bptr *p)
{
	return ((p->addr * 0x9E3779B97F4A7C15ull) ^ p->csum) | 1;
}

int cow__bs_read(struct cow__bs *bs, unsigned flags, uint64_t nblocks, const struct cow__bptr *p,
		 size_t len, const uint8_t **out, bool *fresh)
{
	uint64_t nblk = (len + COW_BLOCK_SIZE - 1) >> COW_BLOCK_SHIFT;
	if (fresh)
		*fresh = false;
	if (nblocks == 0) /* the writer: its own, growing address space */
		nblocks = bs->nblocks;
	if (p->addr < 2 || nblk == 0 || p->addr + nblk > nblocks || p->addr + nblk < p->addr)
		return COW_CORRUPT(p->addr, "block pointer out of range");
	if ((flags & COW_READ_WRITER) && p->birth == bs->txn_gen) {
		uint8_t *buf = cow__bs_dirty(bs, p->addr);
		if (buf) {
			*out = buf;
			return 0;
		}
		int rc = cow__bs_stage_flush(bs); /* a value written through: in the file */
		if (rc)
			return rc;
	}
	int rc = cow__bs_map_ensure(bs, p->addr + nblk);
	if (rc)
		return rc;
	const uint8_t *b = bs_mapped(bs, p->addr);
	uint64_t tag = vtag(p) ^ (flags & COW_READ_NODE ? 1ull << 63 : 0); /* kind of block */
	uint64_t *slot = &bs->vtags[p->addr & ((1u << COW_VCACHE_BITS) - 1)];
	if (!(flags & COW_READ_VERIFY) && __atomic_load_n(slot, __ATOMIC_RELAXED) == tag) {
		*out = b;
		return 0;
	}
	if (cow__csum(b, len) != p->csum)
		return COW_CORRUPT(p->addr, "checksum mismatch");
	__atomic_store_n(slot, tag, __ATOMIC_RELAXED);
	if (fresh)
		*fresh = true;
	*out = b;
	return 0;
}

/* ---- what other layers may read of the state (block.h) ---- */

struct cow__io *cow__bs_io(const struct cow__bs *bs)
{
	return bs->io;
}

bool cow__bs_rdonly(const struct cow__bs *bs)
{
	return bs->rdonly;
}

bool cow__bs_nosync(const struct cow__bs *bs)
{
	return bs->nosync;
}

bool cow__bs_set_nosync(struct cow__bs *bs, bool nosync)
{
	bool was = bs->nosync;
	bs->nosync = nosync;
	return was;
}

bool cow__bs_loaded(const struct cow__bs *bs)
{
	return bs->loaded;
}

const struct cow__sb *cow__bs_sb(const struct cow__bs *bs)
{
	return &bs->sb;
}

int cow__bs_sb_slot(const struct cow__bs *bs)
{
	return bs->sb_slot;
}

void cow__bs_mark_durable(struct cow__bs *bs)
{
	if (!bs->loaded)
		return;
	bs->durable = bs->sb.gen;
	bs->durable_slot = bs->sb_slot;
}

uint64_t cow__bs_nblocks(const struct cow__bs *bs)
{
	return bs->nblocks;
}
