/* Error codes: the list, the bands, messages and names. */
#include <errno.h>
#include <string.h>

#include "check.h"

int main(void)
{
	/* System errors are -errno, cowkit's own sit below -1000. */
	CHECK_EQ(COW_ENOSPC, -ENOSPC);
	CHECK_EQ(COW_EIO, -EIO);
	CHECK_EQ(COW_ENOMEM, -ENOMEM);
	/* Codes named after an errno are that errno, so rc == -EEXIST works. */
	CHECK_EQ(COW_EEXIST, -EEXIST);
	CHECK_EQ(COW_EBUSY, -EBUSY);
	CHECK_EQ(COW_EDEADLK, -EDEADLK);
	CHECK_EQ(COW_ENOENT, -ENOENT);
	/* COW_MEM_ECHANGED is -ECANCELED: it has a name and a message of its own. */
	CHECK_EQ(COW_ECANCELED, -ECANCELED);
	CHECK_STREQ(cow_errname(-ECANCELED), "COW_ECANCELED");
	int own[] = {COW_ECORRUPT, COW_EFORMAT,	  COW_ENOTFOUND, COW_EREADONLY,
		     COW_ETXNERR,  COW_ETOOBIG,	  COW_ETYPE,	 COW_EMISMATCH,
		     COW_ELOCKED,  COW_EINTERNAL, COW_ESTREAM,	 COW_EFULL};
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		CHECK_LT(own[i], -1000);
		for (size_t j = 0; j < i; j++)
			CHECK_NE(own[i], own[j]);
		CHECK(strncmp(cow_errname(own[i]), "COW_E", 5) == 0);
		CHECK(strcmp(cow_strerror(own[i]), "unknown error") != 0);
	}

	CHECK_STREQ(cow_errname(0), "COW_OK");
	CHECK_STREQ(cow_strerror(0), "success");
	CHECK_STREQ(cow_errname(COW_ECORRUPT), "COW_ECORRUPT");
	CHECK_STREQ(cow_errname(COW_ENOSPC), "COW_ENOSPC");
	CHECK_STREQ(cow_strerror(COW_ENOSPC), "no space left on device");
	CHECK(strstr(cow_strerror(COW_ECORRUPT), "corrupt") != NULL);
	/* A bad stream is never called a bad store, nor the other way round. */
	CHECK(strstr(cow_strerror(COW_ESTREAM), "stream") != NULL);
	CHECK(strstr(cow_strerror(COW_ESTREAM), "store") == NULL);

	/* An errno cowkit does not list still gets the system's text. */
	CHECK_STREQ(cow_errname(-EXDEV), "COW_EUNKNOWN");
	CHECK(strcmp(cow_strerror(-EXDEV), "unknown error") != 0);

	/* Nonsense codes never return NULL. */
	CHECK_STREQ(cow_strerror(-999999), "unknown error");
	CHECK_STREQ(cow_strerror(12345), "unknown error");
	CHECK_STREQ(cow_errname(12345), "COW_EUNKNOWN");

	CHECK_STREQ(cow_version(), "0.1.0");
	return 0;
}
