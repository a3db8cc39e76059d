/*
 * closures.h: a tiny closure runtime, to show where copy-on-write is the
 * wrong tool.
 *
 * A closure is code plus an environment holding the variables it captured.
 * make_counter() returns two closures over one variable n: inc(d) adds d to
 * n, get() returns n. Both must see the same n.
 *
 *  - CAPTURE_COW: the environment is shared copy-on-write, like a forked
 *    page. The first write through inc un-shares it, so inc and get now
 *    hold two different n's: get() still returns 0. Copy-on-write keeps
 *    *values* apart, but here the sharing itself is the meaning.
 *  - CAPTURE_BOX: the environment holds a pointer to a box (one heap cell,
 *    reference counted); the environment may still be copied, but every
 *    copy points at the same box, so get() sees every inc(). This is what
 *    Lua's upvalues, Python's cells and Swift's boxes do for captured
 *    mutable variables.
 *
 * Plain C, no cowkit calls: the lesson is about semantics, not the library.
 */
#ifndef COW_EXAMPLE_CLOSURES_H
#define COW_EXAMPLE_CLOSURES_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum capture_mode { CAPTURE_COW, CAPTURE_BOX };

struct box {
	int refs;
	long value;
};

union slot {
	long value;	 /* CAPTURE_COW: the variable itself */
	struct box *box; /* CAPTURE_BOX: where the variable lives */
};

struct env {
	int refs; /* closures sharing this environment */
	enum capture_mode mode;
	size_t n;
	union slot slots[];
};

struct closure {
	long (*code)(struct closure *self, long arg);
	struct env *env;
};

static inline struct env *env_new(enum capture_mode mode, size_t n)
{
	struct env *e = (struct env *)calloc(1, sizeof(*e) + n * sizeof(union slot));
	if (!e)
		return NULL;
	e->refs = 1;
	e->mode = mode;
	e->n = n;
	return e;
}

static inline void env_drop(struct env *e)
{
	if (!e || --e->refs > 0)
		return;
	if (e->mode == CAPTURE_BOX)
		for (size_t i = 0; i < e->n; i++)
			if (e->slots[i].box && --e->slots[i].box->refs == 0)
				free(e->slots[i].box);
	free(e);
}

/* Read captured variable @i. */
static inline long env_get(const struct closure *c, size_t i)
{
	const struct env *e = c->env;
	return e->mode == CAPTURE_BOX ? e->slots[i].box->value : e->slots[i].value;
}

/*
 * Write captured variable @i. Copy-on-write: a shared environment is copied
 * first, so the write lands in this closure's private copy. Boxed: the box
 * is written in place, wherever the environment lives. Returns false on ENOMEM.
 */
static inline bool env_set(struct closure *c, size_t i, long v)
{
	struct env *e = c->env;
	if (e->mode == CAPTURE_BOX) {
		e->slots[i].box->value = v;
		return true;
	}
	if (e->refs > 1) { /* shared: copy before the write */
		struct env *copy = env_new(e->mode, e->n);
		if (!copy)
			return false;
		memcpy(copy->slots, e->slots, e->n * sizeof(union slot));
		e->refs--;
		c->env = e = copy;
	}
	e->slots[i].value = v;
	return true;
}

static inline long counter_inc(struct closure *self, long d)
{
	long n = env_get(self, 0) + d;
	return env_set(self, 0, n) ? n : -1;
}

static inline long counter_get(struct closure *self, long unused)
{
	(void)unused;
	return env_get(self, 0);
}

/* Two closures over one variable n = 0: *inc and *get. false on ENOMEM. */
static inline bool make_counter(enum capture_mode mode, struct closure *inc, struct closure *get)
{
	struct env *e = env_new(mode, 1);
	if (!e)
		return false;
	if (mode == CAPTURE_BOX) {
		e->slots[0].box = (struct box *)calloc(1, sizeof(struct box));
		if (!e->slots[0].box) {
			free(e);
			return false;
		}
		e->slots[0].box->refs = 1;
	}
	e->refs = 2; /* both closures capture it */
	*inc = (struct closure){counter_inc, e};
	*get = (struct closure){counter_get, e};
	return true;
}

/* Call inc(1) @times times, then return get(); -1 on ENOMEM. */
static inline long counter_demo(enum capture_mode mode, int times)
{
	struct closure inc, get;
	if (!make_counter(mode, &inc, &get))
		return -1;
	for (int i = 0; i < times; i++)
		inc.code(&inc, 1);
	long seen = get.code(&get, 0);
	env_drop(inc.env);
	env_drop(get.env);
	return seen;
}

#endif
