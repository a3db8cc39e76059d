/*
 * Processes: readers forked after open, each pinned to its own generation
 * while the writer keeps committing; a writer in a child process; one writer
 * at a time across processes; stale readers of killed processes are cleared.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"

#define NKEYS 2000

static void write_gen(cow_store *s, int round)
{
	cow_txn *t;
	cow_map *m;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_open(t, "m", &m));
	for (int i = 0; i < NKEYS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%05d", i);
		CHECK_OK(cow_map_put(m, k, strlen(k), &round, sizeof(round)));
	}
	CHECK_OK(cow_txn_commit(t));
}

/* Every key holds @round. */
static int check_round(cow_map *m, int round)
{
	for (int i = 0; i < NKEYS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%05d", i);
		cow_buf v;
		if (cow_map_get(m, k, strlen(k), &v) != 0 || v.len != sizeof(int))
			return 1;
		int got;
		memcpy(&got, v.data, sizeof(got));
		if (got != round)
			return 2;
	}
	return 0;
}

static void read_exact(int fd, void *buf, size_t n)
{
	CHECK_EQ(read(fd, buf, n), (ssize_t)n);
}

int main(void)
{
	const char *path = check_path("mproc.cow");
	cow_store *s;
	CHECK_OK(cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, 0, &t));
	CHECK_OK(cow_map_create(t, "m"));
	CHECK_OK(cow_txn_commit(t));

	/* Readers forked after open, each pinned at a different round. */
	enum { NREADERS = 4 };
	pid_t pids[NREADERS];
	int ready[2], go[NREADERS][2];
	CHECK_EQ(pipe(ready), 0);
	for (int r = 0; r < NREADERS; r++) {
		write_gen(s, r);
		CHECK_EQ(pipe(go[r]), 0);
		pids[r] = fork();
		CHECK(pids[r] >= 0);
		if (pids[r] == 0) {
			close(ready[0]);
			close(go[r][1]);
			cow_txn *rt;
			cow_map *m;
			int rc = cow_txn_begin(s, COW_TXN_RDONLY, &rt);
			if (rc == 0)
				rc = cow_map_open(rt, "m", &m);
			if (rc) {
				fprintf(stderr, "reader %d: %s\n", r, cow_errname(rc));
				_exit(10);
			}
			rc = check_round(m, r);
			char c = 'r';
			if (write(ready[1], &c, 1) != 1)
				_exit(11);
			read_exact(go[r][0], &c, 1); /* the writer commits meanwhile */
			if (rc == 0)
				rc = check_round(m, r); /* still exactly our generation */
			cow_txn_abort(rt);
			_exit(rc);
		}
		close(go[r][0]);
		char c; /* the reader holds round r before the writer moves on */
		read_exact(ready[0], &c, 1);
	}
	/* The writer never waits for readers: 50 commits while all of them hold on. */
	for (int round = 100; round < 150; round++)
		write_gen(s, round);
	cow_store_stats st;
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_EQ(st.readers, NREADERS);
	for (int r = 0; r < NREADERS; r++) {
		CHECK_EQ(write(go[r][1], "g", 1), 1);
		int status;
		CHECK_EQ(waitpid(pids[r], &status, 0), pids[r]);
		CHECK(WIFEXITED(status));
		CHECK_EQ(WEXITSTATUS(status), 0);
	}

	/* Readers in other processes begin and end while the writer commits. */
	pid_t busy[2];
	for (int r = 0; r < 2; r++) {
		busy[r] = fork();
		if (busy[r] == 0) {
			for (int i = 0; i < 400; i++) {
				cow_txn *rt;
				cow_map *m;
				int rc = cow_txn_begin(s, COW_TXN_RDONLY, &rt);
				if (rc == 0)
					rc = cow_map_open(rt, "m", &m);
				if (rc) {
					fprintf(stderr, "busy reader: %s\n", cow_errname(rc));
					_exit(30);
				}
				cow_buf v;
				rc = cow_map_get(m, "k00000", 6, &v);
				int round = -1;
				if (rc == 0)
					memcpy(&round, v.data, sizeof(round));
				if (rc || check_round(m, round) != 0) {
					fprintf(stderr, "busy reader: inconsistent generation\n");
					_exit(31);
				}
				cow_txn_abort(rt);
			}
			_exit(0);
		}
	}
	for (int round = 200; round < 300; round++)
		write_gen(s, round);
	for (int r = 0; r < 2; r++) {
		int st2;
		CHECK_EQ(waitpid(busy[r], &st2, 0), busy[r]);
		CHECK(WIFEXITED(st2));
		CHECK_EQ(WEXITSTATUS(st2), 0);
	}

	/* A writer in a child process; the parent then sees its commit. */
	pid_t w = fork();
	if (w == 0) {
		cow_store *cs;
		if (cow_store_open(path, NULL, &cs))
			_exit(20);
		write_gen(cs, 500);
		cow_store_close(cs);
		_exit(0);
	}
	int status;
	CHECK_EQ(waitpid(w, &status, 0), w);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	cow_map *m;
	CHECK_OK(cow_map_open(t, "m", &m));
	CHECK_EQ(check_round(m, 500), 0);
	cow_txn_abort(t);
	write_gen(s, 501); /* the parent's writer state follows the child's commit */
	CHECK_OK(cow__store_check(s));

	/* One writer at a time, across processes. */
	CHECK_OK(cow_txn_begin(s, 0, &t));
	w = fork();
	if (w == 0) {
		cow_txn *ct;
		int rc = cow_txn_begin(s, COW_TXN_NOWAIT, &ct);
		_exit(rc == COW_ELOCKED ? 0 : 1);
	}
	CHECK_EQ(waitpid(w, &status, 0), w);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cow_txn_abort(t);

	/* A reader killed while pinned: its slot is cleared, its blocks reused. */
	int pinned[2];
	CHECK_EQ(pipe(pinned), 0);
	pid_t k = fork();
	if (k == 0) {
		cow_txn *rt;
		close(pinned[0]);
		int rc = cow_txn_begin(s, COW_TXN_RDONLY, &rt);
		if (rc) {
			fprintf(stderr, "pinned reader: %s\n", cow_errname(rc));
			_exit(1);
		}
		char c = 'p';
		if (write(pinned[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pinned[1]);
	char c;
	read_exact(pinned[0], &c, 1);
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_EQ(st.readers, 1);
	kill(k, SIGKILL);
	CHECK_EQ(waitpid(k, &status, 0), k);
	CHECK_OK(cow_store_stat(s, &st));
	CHECK_EQ(st.readers, 0);
	uint64_t before = st.file_bytes;
	for (int round = 600; round < 700; round++)
		write_gen(s, round);
	CHECK_OK(cow_store_stat(s, &st));
	/* 100 rewrites of every key reuse space instead of growing the file. */
	CHECK_LE(st.file_bytes, before + (4u << 20));
	CHECK_OK(cow__store_check(s));
	cow_store_close(s);
	return 0;
}
