/*
 * The kv heap: everything the server stores, inside one region, addressed
 * by offsets from its base so an image restores at any address.
 *
 * Layout: the header page (struct kv_hdr) at offset 0, then chunks handed
 * out by a bump pointer (hdr->top). A chunk belongs to a size class (16, 24,
 * 32, 48, 64, ... each class 1.5x or 4/3x the previous, up to 2 GiB); a
 * freed chunk goes on its class's free list (its first 8 bytes link to the
 * next) and is handed out again before the bump pointer moves. Chunks carry
 * no header: their owner records the class (struct kv_entry).
 *
 * Invariants:
 *   - every offset reachable from the header is below hdr->top, and memory
 *     at or above top has never been written (it reads as zeros), so an
 *     image of [0, top) rounded up to pages is the whole heap;
 *   - hdr->count is the number of entries reachable from the table;
 *   - hdr->used is the sum of the class sizes of live chunks.
 */
#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "kv.h"

#define MIN_BUCKETS 1024ull

static uint64_t class_size(unsigned c)
{
	return c & 1 ? 24ull << (c - 1) / 2 : 16ull << c / 2;
}

static unsigned class_of(uint64_t n)
{
	if (n <= 16)
		return 0;
	unsigned b = 63 - (unsigned)__builtin_clzll(n - 1); /* 2^b < n <= 2^(b+1) */
	return n <= 3ull << (b - 1) ? (b - 4) * 2 + 1 : (b - 4) * 2 + 2;
}

static uint64_t alloc(struct kv_heap *h, uint64_t n, unsigned *cls)
{
	struct kv_hdr *hdr = h->hdr;
	if (n > KV_MAX_CHUNK)
		return 0;
	unsigned c = class_of(n);
	uint64_t size = class_size(c), off = hdr->free[c];
	if (off) {
		memcpy(&hdr->free[c], h->base + off, sizeof(uint64_t));
	} else {
		if (size > h->limit - hdr->top)
			return 0;
		off = hdr->top;
		hdr->top += size;
	}
	hdr->used += size;
	*cls = c;
	return off;
}

static void release(struct kv_heap *h, uint64_t off, unsigned c)
{
	struct kv_hdr *hdr = h->hdr;
	memcpy(h->base + off, &hdr->free[c], sizeof(uint64_t));
	hdr->free[c] = off;
	hdr->used -= class_size(c);
}

static uint64_t *buckets(struct kv_heap *h)
{
	return (uint64_t *)(h->base + h->hdr->table);
}

static int new_table(struct kv_heap *h, uint64_t n, uint64_t *off)
{
	unsigned c;
	*off = alloc(h, n * sizeof(uint64_t), &c);
	if (!*off)
		return -ENOMEM;
	memset(h->base + *off, 0, n * sizeof(uint64_t));
	return 0;
}

int kv_heap_format(struct kv_heap *h, char *base, uint64_t limit)
{
	if (limit < KV_HDR_SIZE + MIN_BUCKETS * sizeof(uint64_t))
		return -ENOMEM;
	h->base = base;
	h->limit = limit;
	h->hdr = (struct kv_hdr *)base;
	memset(h->hdr, 0, sizeof(*h->hdr));
	memcpy(h->hdr->magic, KV_MAGIC, sizeof(h->hdr->magic));
	h->hdr->version = KV_VERSION;
	h->hdr->top = KV_HDR_SIZE;
	uint64_t t;
	int rc = new_table(h, MIN_BUCKETS, &t);
	if (rc)
		return rc;
	h->hdr->table = t;
	h->hdr->nbuckets = MIN_BUCKETS;
	return 0;
}

int kv_heap_check_hdr(const struct kv_hdr *hdr, uint64_t len, uint64_t limit, const char **why)
{
	if (memcmp(hdr->magic, KV_MAGIC, sizeof(hdr->magic)) != 0) {
		*why = "not a kv image (bad magic)";
		return -EINVAL;
	}
	if (hdr->version != KV_VERSION) {
		*why = "kv image of another version";
		return -EINVAL;
	}
	if (hdr->top < KV_HDR_SIZE || hdr->top > len) {
		*why = "image shorter than its heap (truncated?)";
		return -EINVAL;
	}
	if (len > limit) {
		*why = "image larger than --maxmemory";
		return -EINVAL;
	}
	uint64_t n = hdr->nbuckets;
	if (n < MIN_BUCKETS || (n & (n - 1)) || hdr->table < KV_HDR_SIZE || hdr->table > hdr->top ||
	    n > (hdr->top - hdr->table) / sizeof(uint64_t)) {
		*why = "bad hash table in image header";
		return -EINVAL;
	}
	for (unsigned c = 0; c < KV_CLASSES; c++)
		if (hdr->free[c] && (hdr->free[c] < KV_HDR_SIZE || hdr->free[c] >= hdr->top)) {
			*why = "bad free list in image header";
			return -EINVAL;
		}
	return 0;
}

int kv_heap_adopt(struct kv_heap *h, char *base, uint64_t limit, uint64_t len, const char **why)
{
	int rc = kv_heap_check_hdr((const struct kv_hdr *)base, len, limit, why);
	if (rc)
		return rc;
	h->base = base;
	h->limit = limit;
	h->hdr = (struct kv_hdr *)base;
	return 0;
}

static uint64_t hash(const void *key, size_t klen)
{
	return XXH3_64bits(key, klen);
}

/* The link that points at the entry for @key (or at the 0 ending its bucket). */
static uint64_t *find_link(struct kv_heap *h, const void *key, size_t klen, uint64_t hv)
{
	uint64_t *link = &buckets(h)[hv & (h->hdr->nbuckets - 1)];
	while (*link) {
		struct kv_entry *e = kv_ptr(h, *link);
		if (e->hash == hv && e->klen == klen && memcmp(e->key, key, klen) == 0)
			break;
		link = &e->next;
	}
	return link;
}

struct kv_entry *kv_find(struct kv_heap *h, const void *key, size_t klen)
{
	uint64_t off = *find_link(h, key, klen, hash(key, klen));
	return off ? kv_ptr(h, off) : NULL;
}

/*
 * Double the table once there are more keys than buckets. All at once
 * (NEEDSWORK: Redis rehashes incrementally; here a growth to 4 M buckets
 * stops the loop for a few hundred ms, and during a snapshot it rewrites
 * every entry's link, so every entry's page is trapped once).
 */
static void grow(struct kv_heap *h)
{
	struct kv_hdr *hdr = h->hdr;
	if (hdr->count <= hdr->nbuckets || hdr->nbuckets >= KV_MAX_CHUNK / sizeof(uint64_t))
		return;
	uint64_t n = hdr->nbuckets * 2, t;
	if (new_table(h, n, &t))
		return; /* out of memory: longer chains, still correct */
	uint64_t *old = buckets(h), *nb = (uint64_t *)(h->base + t);
	for (uint64_t i = 0; i < hdr->nbuckets; i++) {
		uint64_t off = old[i];
		while (off) {
			struct kv_entry *e = kv_ptr(h, off);
			uint64_t next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = off;
			off = next;
		}
	}
	release(h, hdr->table, class_of(hdr->nbuckets * sizeof(uint64_t)));
	hdr->table = t;
	hdr->nbuckets = n;
}

int kv_set(struct kv_heap *h, const void *key, size_t klen, const void *val, size_t vlen,
	   bool *created)
{
	uint64_t hv = hash(key, klen);
	uint64_t *link = find_link(h, key, klen, hv);
	unsigned vc;
	if (*link) {
		struct kv_entry *e = kv_ptr(h, *link);
		*created = false;
		if (class_of(vlen) == e->vclass) {
			/*
			 * Same size, the common overwrite: leave the entry's page
			 * alone, so during a snapshot only the value's page traps.
			 */
			memmove(h->base + e->val, val, vlen);
			if (e->vlen != vlen)
				e->vlen = (uint32_t)vlen;
			return 0;
		}
		uint64_t v = alloc(h, vlen, &vc);
		if (!v)
			return -ENOMEM;
		memcpy(h->base + v, val, vlen);
		release(h, e->val, e->vclass);
		e->val = v;
		e->vlen = (uint32_t)vlen;
		e->vclass = (uint8_t)vc;
		return 0;
	}
	unsigned kc;
	uint64_t eo = alloc(h, sizeof(struct kv_entry) + klen, &kc);
	if (!eo)
		return -ENOMEM;
	uint64_t v = alloc(h, vlen, &vc);
	if (!v) {
		release(h, eo, kc);
		return -ENOMEM;
	}
	/* alloc may not move the table, so @link is still good. */
	struct kv_entry *e = kv_ptr(h, eo);
	e->next = 0;
	e->hash = hv;
	e->val = v;
	e->vlen = (uint32_t)vlen;
	e->klen = (uint32_t)klen;
	e->vclass = (uint8_t)vc;
	e->kclass = (uint8_t)kc;
	memcpy(e->key, key, klen);
	memcpy(h->base + v, val, vlen);
	*link = eo;
	h->hdr->count++;
	*created = true;
	grow(h);
	return 0;
}

int kv_del(struct kv_heap *h, const void *key, size_t klen)
{
	uint64_t *link = find_link(h, key, klen, hash(key, klen));
	if (!*link)
		return 0;
	uint64_t eo = *link;
	struct kv_entry *e = kv_ptr(h, eo);
	*link = e->next;
	release(h, e->val, e->vclass);
	release(h, eo, e->kclass);
	h->hdr->count--;
	return 1;
}

int kv_flush(struct kv_heap *h)
{
	/*
	 * Memory is not given back to the kernel (a discard under a running
	 * snapshot would cancel it); the chunks go back to the free lists.
	 */
	struct kv_hdr *hdr = h->hdr;
	uint64_t *b = buckets(h);
	for (uint64_t i = 0; i < hdr->nbuckets; i++) {
		uint64_t off = b[i];
		while (off) {
			struct kv_entry *e = kv_ptr(h, off);
			uint64_t next = e->next;
			release(h, e->val, e->vclass);
			release(h, off, e->kclass);
			off = next;
		}
		b[i] = 0;
	}
	hdr->count = 0;
	return 0;
}
