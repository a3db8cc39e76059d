/*
 * The store's own readers pass the seed's refcount test: readers forked
 * after open scan a whole map (zero-copy through the shared read-only
 * mapping) and un-share almost nothing: their private dirty memory grows by
 * far less than the data they read, because the read path writes to no
 * shared page (only a reader slot in the shared lock file, and a small cache
 * of verified blocks).
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cow/share.h"
#include "cow/store.h"

#define NKEYS 200000

int main(void)
{
	cow_store *s;
	CHECK_OK(cow_store_open(check_path("share.cow"), &(cow_store_options){COW_STORE_CREATE}, &s));
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_map_open(t, "m", &m));
	char k[32], v[100];
	memset(v, 'v', sizeof(v));
	for (int i = 0; i < NKEYS; i++) {
		snprintf(k, sizeof(k), "key%010d", i);
		CHECK_OK(cow_map_put(m, k, strlen(k), v, sizeof(v)));
	}
	CHECK_OK(cow_txn_commit(t));
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));

	/* The parent reads everything once, so its pages are the ones to share. */
	uint64_t sum = 0;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	cow_cursor *c;
	CHECK_OK(cow_cursor_open(m, &c));
	for (int rc = cow_cursor_first(c); rc == 0; rc = cow_cursor_next(c)) {
		cow_buf kb, vb;
		CHECK_OK(cow_cursor_get(c, &kb, &vb));
		sum += vb.len;
	}
	cow_txn_abort(t);

	enum { N = 2 };
	pid_t pid[N];
	int ready[2], go[2];
	CHECK_EQ(pipe(ready), 0);
	CHECK_EQ(pipe(go), 0);
	for (int r = 0; r < N; r++) {
		pid[r] = fork();
		if (pid[r] == 0) {
			cow_txn *rt;
			cow_map *rm;
			uint64_t mine = 0;
			for (int pass = 0; pass < 2; pass++) { /* a scan, then random gets */
				if (cow_txn_begin(s, COW_TXN_RDONLY, &rt) || cow_map_open(rt, "m", &rm))
					_exit(2);
				cow_cursor *rc_;
				if (cow_cursor_open(rm, &rc_))
					_exit(3);
				for (int rc = cow_cursor_first(rc_); rc == 0; rc = cow_cursor_next(rc_)) {
					cow_buf kb, vb;
					if (cow_cursor_get(rc_, &kb, &vb))
						_exit(4);
					mine += vb.len;
				}
				for (int i = 0; i < 20000; i++) {
					snprintf(k, sizeof(k), "key%010d", (i * 7919) % NKEYS);
					cow_buf vb;
					if (cow_map_get(rm, k, strlen(k), &vb))
						_exit(5);
				}
				cow_txn_abort(rt);
			}
			if (mine != 2 * sum)
				_exit(6);
			char ch = 'r';
			if (write(ready[1], &ch, 1) != 1)
				_exit(7);
			if (read(go[0], &ch, 1) != 1)
				_exit(8);
			_exit(0);
		}
	}
	uint64_t dirty[N];
	for (int r = 0; r < N; r++) {
		char ch;
		CHECK_EQ(read(ready[0], &ch, 1), 1);
	}
	for (int r = 0; r < N; r++) {
		int rc = cow_share_private_dirty(pid[r], &dirty[r]);
		if (rc)
			SKIP("cannot read /proc/%d/smaps: %s", (int)pid[r], cow_strerror(rc));
	}
	for (int r = 0; r < N; r++)
		CHECK_EQ(write(go[1], "g", 1), 1);
	for (int r = 0; r < N; r++) {
		int status;
		CHECK_EQ(waitpid(pid[r], &status, 0), pid[r]);
		CHECK(WIFEXITED(status));
		CHECK_EQ(WEXITSTATUS(status), 0);
	}
	printf("map of %.1f MiB (file %.1f MiB) scanned twice and read at random by %d forked "
	       "readers: private dirty %.2f and %.2f MiB\n",
	       st.used_bytes / 1048576.0, st.file_bytes / 1048576.0, N, dirty[0] / 1048576.0,
	       dirty[1] / 1048576.0);
	for (int r = 0; r < N; r++)
		CHECK_LT(dirty[r], st.used_bytes / 8); /* almost nothing of what it read */
	cow_store_close(s);
	return 0;
}
