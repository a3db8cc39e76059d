/*
 * closures: where copy-on-write is the wrong tool.
 *
 * Two closures capture one mutable variable n. Shared copy-on-write, the
 * first write un-shares the environment and the closures drift apart; boxed,
 * they keep sharing n. See examples/closures.h.
 */
#include <stdio.h>

#include "closures.h"

int main(void)
{
	const int times = 3;
	long cow = counter_demo(CAPTURE_COW, times);
	long box = counter_demo(CAPTURE_BOX, times);
	if (cow < 0 || box < 0) {
		fprintf(stderr, "closures: out of memory\n");
		return 1;
	}
	printf("inc() called %d times, then get():\n", times);
	printf("  copy-on-write environment: get() = %ld  (wrong: inc wrote to its own copy)\n",
	       cow);
	printf("  boxed variable:            get() = %ld  (right: both closures share the box)\n",
	       box);
	return box == times && cow == 0 ? 0 : 1;
}
