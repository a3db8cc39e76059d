/*
 * Internal to btree: the node layout of FORMAT.md section 4 and the small
 * accessors the tree code uses. A node is one 4096-byte block: a 32-byte
 * header, sorted 2-byte slots growing up, cells packed from the end down.
 */
#ifndef COW_BTREE_NODE_H
#define COW_BTREE_NODE_H

#include "base/base.h"
#include "btree/btree.h"

#define N_MAGIC 0x4e574f43u
#define N_LEAF 1
#define N_BRANCH 2
#define N_HDR 32
#define N_SPACE (COW_BLOCK_SIZE - N_HDR) /* bytes for slots and cells */
#define N_UNDER (N_SPACE / 4)             /* below this a node wants a merge */

#define V_INLINE 0
#define V_EXTENT 1
#define V_RUN 2 /* a run of blocks in a physical extent, a checksum each (FORMAT.md 4) */

static inline int n_kind(const uint8_t *n)
{
	return n[4];
}
static inline int n_level(const uint8_t *n)
{
	return n[5];
}
static inline unsigned n_count(const uint8_t *n)
{
	return cow__le16(n + 6);
}
static inline unsigned n_top(const uint8_t *n)
{
	return cow__le16(n + 24);
}
static inline unsigned n_used(const uint8_t *n)
{
	return cow__le16(n + 26);
}
static inline const uint8_t *n_cell(const uint8_t *n, unsigned i)
{
	return n + cow__le16(n + N_HDR + 2 * i);
}
/* Free bytes if the node were compacted. */
static inline unsigned n_free(const uint8_t *n)
{
	return N_SPACE - 2 * n_count(n) - n_used(n);
}

/* Leaf cell: u16 klen, u8 vkind, u8 0, u32 vlen, key, value | bptr */
static inline size_t leaf_klen(const uint8_t *c)
{
	return cow__le16(c);
}
static inline int leaf_vkind(const uint8_t *c)
{
	return c[2];
}
static inline size_t leaf_vlen(const uint8_t *c)
{
	return cow__le32(c + 4);
}
static inline const uint8_t *leaf_key(const uint8_t *c)
{
	return c + 8;
}
static inline const uint8_t *leaf_val(const uint8_t *c)
{
	return c + 8 + leaf_klen(c);
}
static inline size_t leaf_size(const uint8_t *c)
{
	switch (leaf_vkind(c)) {
	case V_EXTENT:
		return 8 + leaf_klen(c) + COW_BPTR_SIZE;
	case V_RUN:
		return 8 + leaf_klen(c) + COW_RUN_HDR + 8 * (leaf_vlen(c) >> COW_BLOCK_SHIFT);
	default:
		return 8 + leaf_klen(c) + leaf_vlen(c);
	}
}

/*
 * A run cell's value: the physical extent's pointer (its csum field zero),
 * u16 ext_blocks, u16 first, u32 0, then one XXH3-64 per block of the run.
 */
static inline void leaf_run(const uint8_t *c, struct cow__run *r)
{
	const uint8_t *v = leaf_val(c);
	cow__bptr_load(&r->ext, v);
	r->ext_blocks = cow__le16(v + COW_BPTR_SIZE);
	r->first = cow__le16(v + COW_BPTR_SIZE + 2);
	r->n = (uint32_t)(leaf_vlen(c) >> COW_BLOCK_SHIFT);
	r->csums = v + COW_RUN_HDR;
}

/* Branch cell: u16 klen, bptr child, key */
static inline size_t br_klen(const uint8_t *c)
{
	return cow__le16(c);
}
static inline const uint8_t *br_key(const uint8_t *c)
{
	return c + 2 + COW_BPTR_SIZE;
}
static inline void br_child(const uint8_t *c, struct cow__bptr *p)
{
	cow__bptr_load(p, c + 2);
}
static inline size_t br_size(const uint8_t *c)
{
	return 2 + COW_BPTR_SIZE + br_klen(c);
}

static inline size_t cell_size(const uint8_t *n, const uint8_t *c)
{
	return n_kind(n) == N_LEAF ? leaf_size(c) : br_size(c);
}
static inline const uint8_t *cell_key(const uint8_t *n, const uint8_t *c, size_t *klen)
{
	if (n_kind(n) == N_LEAF) {
		*klen = leaf_klen(c);
		return leaf_key(c);
	}
	*klen = br_klen(c);
	return br_key(c);
}

/* Keys compare as unsigned bytes: the first eight as one big-endian word, inline. */
static inline int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int r = 0;
	if (n >= 8) {
		uint64_t x = cow__be64(a), y = cow__be64(b);
		if (x != y)
			return x < y ? -1 : 1;
		r = memcmp((const uint8_t *)a + 8, (const uint8_t *)b + 8, n - 8);
	} else {
		r = memcmp(a, b, n);
	}
	if (r)
		return r;
	return alen < blen ? -1 : alen > blen;
}

#endif
