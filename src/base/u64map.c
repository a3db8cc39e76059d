/*
 * The library's one hash map: open addressing keyed by uint64_t (base.h).
 *
 * Linear probing over a power-of-two table of entries {key, value}, hashed
 * by the top bits of key * 2^64 / phi (Fibonacci hashing: neighbouring block
 * addresses land far apart). Key 0 marks an empty slot, so the key 0 itself
 * lives in one extra entry after the table. What must stay true:
 *
 *  1. Every key in the table is found by probing forward from its home slot
 *     without crossing an empty slot. Deletion keeps this by moving later
 *     entries of the probe run back into the hole (Knuth's algorithm R), so
 *     there are no tombstones and lookups never slow down with churn.
 *  2. The table is at most half full (keys < cap / 2 + 1), so probe runs
 *     stay short and a probe always ends at an empty slot.
 *  3. A failed allocation leaves the map as it was.
 */
#include "base/base.h"

#define MIN_CAP 16

static inline uint64_t key_at(const uint8_t *e)
{
	uint64_t k;
	memcpy(&k, e, sizeof(k));
	return k;
}

static inline uint8_t *entry(const struct cow__u64map *m, size_t i)
{
	return m->slots + i * m->stride;
}

void cow__u64map_init(struct cow__u64map *m, size_t vsize)
{
	*m = (struct cow__u64map){.vsize = vsize, .stride = 8 + ((vsize + 7) & ~(size_t)7)};
}

void cow__u64map_release(struct cow__u64map *m)
{
	cow__free(m->slots);
	cow__u64map_init(m, m->vsize);
}

void cow__u64map_clear(struct cow__u64map *m)
{
	if (!m->n)
		return;
	for (size_t i = 0; i < m->cap; i++)
		memset(entry(m, i), 0, 8);
	m->has_zero = false;
	m->n = 0;
}

/* The entry holding @key (nonzero), or the empty one where it would go. */
static uint8_t *probe(const struct cow__u64map *m, uint64_t key)
{
	for (size_t i = cow__u64map_home(m, key);; i = (i + 1) & (m->cap - 1)) {
		uint8_t *e = entry(m, i);
		uint64_t k = key_at(e);
		if (k == key || k == 0)
			return e;
	}
}

static int resize(struct cow__u64map *m, size_t ncap)
{
	size_t bytes;
	if (__builtin_mul_overflow(ncap + 1, m->stride, &bytes))
		return COW_ENOMEM;
	uint8_t *ns = cow__calloc(1, bytes);
	if (!ns)
		return COW_ENOMEM;
	struct cow__u64map old = *m;
	m->slots = ns;
	m->cap = ncap;
	m->shift = (unsigned)(64 - __builtin_ctzll((unsigned long long)ncap));
	for (size_t i = 0; i < old.cap; i++) {
		const uint8_t *e = entry(&old, i);
		uint64_t k = key_at(e);
		if (k)
			memcpy(probe(m, k), e, m->stride);
	}
	if (old.has_zero)
		memcpy(entry(m, ncap), entry(&old, old.cap), m->stride);
	cow__free(old.slots);
	return 0;
}

int cow__u64map_reserve(struct cow__u64map *m, size_t n)
{
	if (n <= m->cap / 2 && m->cap)
		return 0;
	size_t ncap = m->cap ? m->cap : MIN_CAP;
	while (ncap / 2 < n) {
		if (ncap > SIZE_MAX / 4)
			return COW_ENOMEM;
		ncap *= 2;
	}
	return ncap == m->cap ? 0 : resize(m, ncap);
}

int cow__u64map_put(struct cow__u64map *m, uint64_t key, void **val)
{
	uint8_t *e = NULL;
	if (key == 0 && m->has_zero) {
		*val = entry(m, m->cap) + 8;
		return 1;
	}
	if (key != 0 && m->cap) {
		e = probe(m, key);
		if (key_at(e) == key) {
			*val = e + 8;
			return 1;
		}
	}
	if (!m->cap || (m->n + 1) * 2 > m->cap) {
		int rc = cow__u64map_reserve(m, m->n + 1);
		if (rc)
			return rc;
		e = NULL;
	}
	if (key == 0) {
		e = entry(m, m->cap);
		m->has_zero = true;
	} else if (!e) {
		e = probe(m, key);
	}
	memcpy(e, &key, sizeof(key));
	memset(e + 8, 0, m->stride - 8);
	m->n++;
	*val = e + 8;
	return 0;
}

bool cow__u64map_del(struct cow__u64map *m, uint64_t key)
{
	if (key == 0) {
		if (!m->has_zero)
			return false;
		m->has_zero = false;
		m->n--;
		return true;
	}
	if (!m->cap)
		return false;
	size_t mask = m->cap - 1, hole = cow__u64map_home(m, key);
	for (;; hole = (hole + 1) & mask) {
		uint64_t k = key_at(entry(m, hole));
		if (k == key)
			break;
		if (k == 0)
			return false;
	}
	/*
	 * Fill the hole from later in the run: an entry whose home is not
	 * cyclically in (hole, j] may move back to the hole, which moves on.
	 */
	for (size_t j = (hole + 1) & mask;; j = (j + 1) & mask) {
		uint64_t k = key_at(entry(m, j));
		if (k == 0)
			break;
		size_t h = cow__u64map_home(m, k);
		bool stays = hole <= j ? hole < h && h <= j : hole < h || h <= j;
		if (!stays) {
			memcpy(entry(m, hole), entry(m, j), m->stride);
			hole = j;
		}
	}
	memset(entry(m, hole), 0, 8);
	m->n--;
	return true;
}

bool cow__u64map_next(const struct cow__u64map *m, size_t *pos, uint64_t *key, void **val)
{
	while (*pos < m->cap) {
		uint8_t *e = entry(m, (*pos)++);
		uint64_t k = key_at(e);
		if (k) {
			*key = k;
			if (val)
				*val = e + 8;
			return true;
		}
	}
	if (*pos == m->cap && m->has_zero) {
		(*pos)++;
		*key = 0;
		if (val)
			*val = entry(m, m->cap) + 8;
		return true;
	}
	return false;
}
