/* The log hook: messages reach the caller's sink with their level, never stderr. */
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "cow/cow.h"

static int errors, warnings;
static char last[512];

static void sink(void *ctx, int level, const char *msg)
{
	CHECK_EQ(ctx, (void *)&errors);
	if (level == COW_LOG_ERROR)
		errors++;
	else if (level == COW_LOG_WARN)
		warnings++;
	snprintf(last, sizeof(last), "%s", msg);
}

int main(void)
{
	/* Whatever cowkit might print goes to a file that must stay empty. */
	const char *errpath = check_path("stderr");
	CHECK(freopen(errpath, "w", stderr) != NULL);
	cow_set_log(sink, &errors);
	/* A store that is damaged: an error, with the block named. */
	const char *path = check_path("log.cow");
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	char block[8192] = "COWKITSB"; /* a superblock magic, and nothing valid */
	CHECK_EQ(fwrite(block, 1, sizeof(block), f), sizeof(block));
	fclose(f);
	cow_store *s;
	CHECK_RC(cow_store_open(path, NULL, &s), COW_ECORRUPT);
	CHECK_GE(errors, 1);
	CHECK(strstr(last, "superblock") != NULL);
	/* Misuse: a warning. */
	CHECK_OK(cow_store_open(check_path("ok.cow"), &(cow_store_options){COW_STORE_CREATE}, &s));
	cow_txn *t;
	CHECK_OK(cow_txn_begin(s, COW_TXN_RDONLY, &t));
	cow_txn_abort(t);
	int w = warnings;
	cow_txn_abort(t);
	CHECK_EQ(warnings, w + 1);
	CHECK(strstr(last, "ended") != NULL);
	cow_store_close(s);
	fflush(stderr);
	struct stat st;
	CHECK_EQ(stat(errpath, &st), 0);
	CHECK_EQ(st.st_size, 0);
	cow_set_log(NULL, NULL);
	return 0;
}
