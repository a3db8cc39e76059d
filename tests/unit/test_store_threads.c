/*
 * Threads: reader threads begin read transactions without locks while one
 * writer commits; each read sees one whole generation (every key holds the
 * same round), never a mix, while the file and its mapping keep growing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"
#include "cow/store.h"

#define NKEYS 500
#define ROUNDS 300

static cow_store *s;
static atomic_int done;
static atomic_long reads;

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		cow_txn *t;
		cow_map *m;
		CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
		CHECK_OK(cow_map_open(t, "m", &m));
		int first = -1;
		for (int i = 0; i < NKEYS; i += 7) {
			char k[16];
			snprintf(k, sizeof(k), "k%05d", i);
			cow_buf v;
			CHECK_OK(cow_map_get(m, k, strlen(k), &v));
			int round;
			memcpy(&round, v.data, sizeof(round));
			if (first < 0)
				first = round;
			CHECK_EQ(round, first);
			CHECK_EQ(v.len, 64 + (size_t)(round % 900)); /* grows: the file grows */
		}
		cow_txn_abort(t);
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

int main(void)
{
	CHECK_OK(cow_store_open(check_path("threads.cow"), &(cow_store_options){COW_STORE_CREATE},
				&s));
	static char val[1000];
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_map_open(t, "m", &m));
	int round = 0;
	memcpy(val, &round, sizeof(round));
	for (int i = 0; i < NKEYS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%05d", i);
		CHECK_OK(cow_map_put(m, k, strlen(k), val, 64));
	}
	CHECK_OK(cow_txn_commit(t));

	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, reader, NULL), 0);
	for (round = 1; round <= ROUNDS; round++) {
		CHECK_OK(cow_txn_begin(s, 0, &t));
		CHECK_OK(cow_map_open(t, "m", &m));
		memcpy(val, &round, sizeof(round));
		for (int i = 0; i < NKEYS; i++) {
			char k[16];
			snprintf(k, sizeof(k), "k%05d", i);
			CHECK_OK(cow_map_put(m, k, strlen(k), val, 64 + (size_t)(round % 900)));
		}
		CHECK_OK(cow_txn_commit(t));
	}
	atomic_store(&done, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	printf("%ld consistent reads during %d commits\n", atomic_load(&reads), ROUNDS);
	CHECK_GT(atomic_load(&reads), 0);
	cow_store_close(s);
	return 0;
}
