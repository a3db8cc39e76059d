/* The smallest cowkit program: print the library version and an error message. */
#include <stdio.h>

#include <cow/cow.h>

int main(void)
{
	printf("cowkit %s\n", cow_version());
	printf("COW_ECORRUPT means: %s\n", cow_strerror(COW_ECORRUPT));
	return 0;
}
