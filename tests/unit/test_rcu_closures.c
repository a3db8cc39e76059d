/*
 * The closures example (examples/closures.h): two closures over one mutable
 * variable. Captured into a copy-on-write environment, the first write
 * un-shares it and the closures disagree (the wrong answer, on purpose);
 * boxed, they agree.
 */
#include "../../examples/closures.h"
#include "check.h"

int main(void)
{
	/* The demo: inc() three times, then get(). */
	CHECK_EQ(counter_demo(CAPTURE_COW, 3), 0); /* wrong: inc wrote its own copy */
	CHECK_EQ(counter_demo(CAPTURE_BOX, 3), 3); /* right */
	CHECK_EQ(counter_demo(CAPTURE_COW, 0), 0); /* COW is fine while nobody writes */

	/* Step by step: after the first write the COW environments differ. */
	struct closure inc, get;
	CHECK(make_counter(CAPTURE_COW, &inc, &get));
	CHECK(inc.env == get.env);
	CHECK_EQ(inc.code(&inc, 5), 5);
	CHECK(inc.env != get.env); /* un-shared by the write */
	CHECK_EQ(get.env->refs, 1);
	CHECK_EQ(get.code(&get, 0), 0);
	CHECK_EQ(inc.code(&inc, 1), 6); /* later writes stay in inc's copy */
	env_drop(inc.env);
	env_drop(get.env);

	/* Boxed: the environment is never copied; the box is the one n. */
	CHECK(make_counter(CAPTURE_BOX, &inc, &get));
	CHECK_EQ(inc.code(&inc, 5), 5);
	CHECK(inc.env == get.env);
	CHECK_EQ(get.code(&get, 0), 5);
	CHECK_EQ(inc.env->slots[0].box->refs, 1);
	env_drop(inc.env);
	env_drop(get.env);
	printf("closures: copy-on-write gives 0 (wrong), boxed gives 3 (right)\n");
	return 0;
}
