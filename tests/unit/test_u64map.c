/*
 * The u64 map (src/base/u64map.c) against a model: random puts, gets,
 * deletes, iterations and clears over small key pools (long probe runs that
 * wrap around the table, so backward-shift deletion is exercised at every
 * position) and a large one (growth), with key 0 and UINT64_MAX among the
 * keys and values of several sizes; then allocation failures, which must
 * leave the map unchanged.
 */
#include "base/base.h"
#include "check.h"

#define MAXV 24

struct model {
	size_t nkeys;
	uint64_t *keys;
	bool *present;
	uint8_t (*val)[MAXV];
};

static void fill(uint8_t *v, size_t vsize, uint64_t *s)
{
	for (size_t i = 0; i < vsize; i++)
		v[i] = (uint8_t)check_rand(s);
}

/* Every key the model holds is found with its value; nothing else is. */
static void verify(const struct cow__u64map *m, const struct model *md, size_t vsize)
{
	size_t held = 0;
	for (size_t i = 0; i < md->nkeys; i++) {
		uint8_t *v = cow__u64map_get(m, md->keys[i]);
		if (md->present[i]) {
			held++;
			CHECK(v != NULL);
			CHECK_MEMEQ(v, md->val[i], vsize);
		} else {
			CHECK(v == NULL);
		}
	}
	CHECK_EQ(cow__u64map_count(m), held);
	/* Iteration: each held key once (a sum of mixed keys catches repeats), at its value. */
	uint64_t want = 0, got = 0;
	for (size_t i = 0; i < md->nkeys; i++)
		if (md->present[i])
			want += (md->keys[i] ^ 0x5bd1e995u) * 0x9E3779B97F4A7C15ull;
	size_t pos = 0, seen = 0;
	uint64_t k;
	void *v;
	while (cow__u64map_next(m, &pos, &k, &v)) {
		CHECK(cow__u64map_get(m, k) == v);
		got += (k ^ 0x5bd1e995u) * 0x9E3779B97F4A7C15ull;
		seen++;
	}
	CHECK_EQ(seen, held);
	CHECK(got == want);
	CHECK(!cow__u64map_next(m, &pos, &k, &v)); /* stays at the end */
}

static void run(size_t nkeys, size_t vsize, long ops, uint64_t *s)
{
	struct model md = {nkeys, calloc(nkeys, 8), calloc(nkeys, 1), calloc(nkeys, MAXV)};
	CHECK(md.keys && md.present && md.val);
	for (size_t i = 0; i < nkeys; i++) { /* distinct keys; 0 and UINT64_MAX among them */
		uint64_t k = i == 0   ? 0
			     : i == 1 ? UINT64_MAX
			     : i % 3  ? check_rand(s)
				      : (uint64_t)i << 20;
		for (size_t j = 0; j < i && nkeys <= 1000; j++)
			if (md.keys[j] == k) {
				k = check_rand(s);
				j = (size_t)-1; /* look again from the start */
			}
		md.keys[i] = k;
	}
	struct cow__u64map m;
	cow__u64map_init(&m, vsize);
	verify(&m, &md, vsize);
	for (long op = 0; op < ops; op++) {
		size_t i = (size_t)(check_rand(s) % nkeys);
		unsigned r = (unsigned)(check_rand(s) % 1000);
		if (r < 500) {
			void *v;
			int rc = cow__u64map_put(&m, md.keys[i], &v);
			CHECK_EQ(rc, md.present[i] ? 1 : 0);
			if (!md.present[i]) {
				static const uint8_t zeros[MAXV];
				CHECK_MEMEQ(v, zeros, vsize);
			}
			fill(md.val[i], vsize, s);
			memcpy(v, md.val[i], vsize);
			md.present[i] = true;
		} else if (r < 900) {
			CHECK_EQ(cow__u64map_del(&m, md.keys[i]), md.present[i]);
			md.present[i] = false;
		} else if (r < 995) {
			uint8_t *v = cow__u64map_get(&m, md.keys[i]);
			CHECK_EQ(v != NULL, md.present[i]);
		} else if (r < 998) {
			cow__u64map_clear(&m);
			memset(md.present, 0, nkeys);
		} else {
			cow__u64map_release(&m);
			memset(md.present, 0, nkeys);
		}
		if (nkeys <= 64 || op % 4096 == 0)
			verify(&m, &md, vsize);
		CHECK(m.cap == 0 || m.n * 2 <= m.cap);
	}
	verify(&m, &md, vsize);
	cow__u64map_release(&m);
	CHECK_EQ(cow__u64map_count(&m), 0);
	CHECK(cow__u64map_get(&m, md.keys[0]) == NULL);
	free(md.keys);
	free(md.present);
	free(md.val);
}

/* Every failing allocation leaves the map as it was, and it still works. */
static void alloc_failures(void)
{
	struct cow__u64map m;
	cow__u64map_init(&m, 8);
	void *v;
	check_alloc_fail_at(1, 0);
	CHECK_EQ(cow__u64map_put(&m, 7, &v), COW_ENOMEM);
	check_alloc_fail_at(1, 0);
	CHECK_EQ(cow__u64map_put(&m, 0, &v), COW_ENOMEM);
	check_alloc_fail_at(0, 0);
	CHECK_EQ(cow__u64map_count(&m), 0);
	CHECK(m.cap == 0);
	for (uint64_t k = 0; k < 1000; k++) {
		CHECK_EQ(cow__u64map_put(&m, k, &v), 0);
		memcpy(v, &k, 8);
	}
	/* The next growth fails: the keys and values are all still there. */
	size_t cap = m.cap;
	uint64_t k = 1000;
	check_alloc_fail_at(1, 1);
	int rc;
	while ((rc = cow__u64map_put(&m, k, &v)) == 0) {
		memcpy(v, &k, 8);
		k++;
	}
	check_alloc_fail_at(0, 0);
	cow_set_allocator(NULL);
	CHECK_EQ(rc, COW_ENOMEM);
	CHECK_EQ(m.cap, cap);
	CHECK_EQ(cow__u64map_count(&m), k);
	CHECK(cow__u64map_get(&m, k) == NULL);
	for (uint64_t j = 0; j < k; j++) {
		uint64_t *got = cow__u64map_get(&m, j);
		CHECK(got != NULL);
		CHECK_EQ(*got, j);
	}
	CHECK_EQ(cow__u64map_reserve(&m, SIZE_MAX), COW_ENOMEM);
	CHECK_EQ(m.cap, cap);
	CHECK_EQ(cow__u64map_put(&m, k, &v), 0);
	cow__u64map_release(&m);
}

/* reserve: puts up to the reserved count allocate nothing. */
static void reserve(void)
{
	struct cow__u64map m;
	cow__u64map_init(&m, 0);
	CHECK_OK(cow__u64map_reserve(&m, 5000));
	check_alloc_fail_at(1, 1);
	for (uint64_t k = 0; k < 5000; k++) {
		void *v;
		CHECK_EQ(cow__u64map_put(&m, k * 4096, &v), 0);
	}
	CHECK_EQ(check_alloc_count(), 0);
	check_alloc_fail_at(0, 0);
	cow_set_allocator(NULL);
	CHECK_EQ(cow__u64map_count(&m), 5000);
	cow__u64map_release(&m);
}

int main(void)
{
	uint64_t s = check_seed() | 1;
	static const size_t vsizes[] = {0, 8, 16, 20};
	for (size_t i = 0; i < COW_ARRAY_SIZE(vsizes); i++) {
		run(5, vsizes[i], 20000, &s);
		run(24, vsizes[i], 200000, &s);
		run(200, vsizes[i], 200000, &s);
		run(20000, vsizes[i], 400000, &s);
	}
	alloc_failures();
	reserve();
	printf("u64map: ok\n");
	return 0;
}
