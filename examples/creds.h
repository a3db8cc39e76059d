/*
 * creds.h: process credentials published with RCU, the way Linux does it
 * (prepare_creds / commit_creds): many threads check permissions against
 * the current credentials without locks while an updater replaces them with
 * a changed copy. A reader sees the whole old set or the whole new set,
 * never a mix.
 *
 * Shared by examples/creds.c, its test and the `cow tour` step, and written
 * against the public API only. Every field of a version is derived from its
 * serial number, so a reader can tell a torn read (fields from two versions)
 * from a consistent one.
 */
#ifndef COW_EXAMPLE_CREDS_H
#define COW_EXAMPLE_CREDS_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "cow/rcu.h"

#define CREDS_MAX_GROUPS 16

struct creds {
	uint32_t uid, gid;   /* real */
	uint32_t euid, egid; /* effective: what permission checks use */
	uint32_t ngroups;    /* supplementary groups in use */
	uint32_t groups[CREDS_MAX_GROUPS];
	uint64_t cap_permitted; /* capability bit sets */
	uint64_t cap_effective;
	uint64_t serial; /* which version this is */
};

/* Typed wrappers: struct creds_ref, creds_ref_deref(), creds_ref_update_begin()... */
COW_RCU_DEFINE(creds_ref, struct creds)

/* Fill every field of @c from @serial, writing them one at a time. */
static inline void creds_fill(struct creds *c, uint64_t serial)
{
	uint32_t s = (uint32_t)serial;
	c->uid = 1000 + s % 60000;
	c->gid = 2000 + (s * 7) % 60000;
	c->euid = (s & 1) ? 0 : c->uid; /* odd versions run privileged */
	c->egid = c->gid;
	c->ngroups = 1 + s % CREDS_MAX_GROUPS;
	for (uint32_t i = 0; i < CREDS_MAX_GROUPS; i++)
		c->groups[i] = i < c->ngroups ? 3000 + s + i : 0;
	c->cap_permitted = serial * 0x9E3779B97F4A7C15ull;
	c->cap_effective = c->cap_permitted & 0x00FF00FF00FF00FFull;
	c->serial = serial;
}

/* True if every field agrees with c->serial: a consistent version. */
static inline bool creds_consistent(const struct creds *c)
{
	struct creds w;
	creds_fill(&w, c->serial);
	bool ok = c->uid == w.uid && c->gid == w.gid && c->euid == w.euid && c->egid == w.egid &&
		  c->ngroups == w.ngroups && c->cap_permitted == w.cap_permitted &&
		  c->cap_effective == w.cap_effective;
	for (uint32_t i = 0; i < CREDS_MAX_GROUPS; i++)
		ok = ok && c->groups[i] == w.groups[i];
	return ok;
}

/* A permission check in the style of generic_permission(): may @c read a file? */
static inline bool creds_may_read(const struct creds *c, uint32_t file_uid, uint32_t file_gid,
				  unsigned mode)
{
	if (c->euid == 0 || (c->cap_effective & 1)) /* CAP_DAC_OVERRIDE-like */
		return true;
	if (c->euid == file_uid)
		return mode & 0400;
	bool in_group = c->egid == file_gid;
	for (uint32_t i = 0; i < c->ngroups && !in_group; i++)
		in_group = c->groups[i] == file_gid;
	return in_group ? (mode & 0040) : (mode & 0004);
}

/* ---- the stress run: N readers, one updater --------------------------- */

struct creds_run {
	/* in */
	int readers;	     /* reader threads */
	uint64_t reads_each; /* reads per reader */
	/* out */
	uint64_t reads, torn, allowed; /* allowed: permission checks that said yes */
	uint64_t changes;	       /* times a reader saw a newer version than before */
	uint64_t updates;	       /* versions published */
	double seconds;		       /* wall time of the reads */
	int rc;			       /* 0 or the first cowkit error */
};

/* One per reader thread; 64-byte aligned so readers share no cache line. */
struct creds_reader {
	alignas(64) struct creds_ref *ref;
	uint64_t n, torn, allowed, changes;
};

static void *creds_reader_main(void *arg)
{
	struct creds_reader *rd = (struct creds_reader *)arg;
	uint64_t last = 0;
	for (uint64_t i = 0; i < rd->n; i++) {
		cow_rcu_read_lock();
		const struct creds *c = creds_ref_deref(rd->ref);
		if (!creds_consistent(c))
			rd->torn++;
		if (creds_may_read(c, 1000 + (uint32_t)i % 64, 3001, 0640))
			rd->allowed++;
		if (c->serial != last) {
			rd->changes += last != 0;
			last = c->serial;
		}
		cow_rcu_read_unlock();
	}
	return NULL;
}

static inline double creds_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Run @run->readers threads doing @run->reads_each reads each while this
 * thread publishes new credentials as fast as it can (prepare, change every
 * field, commit), until the readers finish. Fills the out fields.
 */
static inline void creds_stress(struct creds_run *run)
{
	enum { MAX_READERS = 64 };
	struct creds init;
	struct creds_ref ref;
	cow_rcu_ops ops = {sizeof(struct creds), NULL, NULL, NULL};
	creds_fill(&init, 1);
	run->rc = creds_ref_create(&ref, &ops, &init);
	if (run->rc != 0)
		return;
	int n = run->readers < 1 ? 1 : run->readers > MAX_READERS ? MAX_READERS : run->readers;
	struct creds_reader rd[MAX_READERS];
	pthread_t tid[MAX_READERS];
	int started = 0;
	double t0 = creds_now();
	for (int i = 0; i < n; i++) {
		rd[i] = (struct creds_reader){&ref, run->reads_each, 0, 0, 0};
		if (pthread_create(&tid[i], NULL, creds_reader_main, &rd[i]) != 0) {
			run->rc = COW_EAGAIN;
			break;
		}
		started++;
	}
	/* The updater: change credentials until every reader is done. */
	uint64_t serial = 1, updates = 0;
	int live = started;
	bool joined[MAX_READERS] = {false};
	while (live > 0) {
		struct creds *c;
		int rc = creds_ref_update_begin(&ref, &c);
		if (rc != 0) {
			run->rc = rc;
			break;
		}
		creds_fill(c, ++serial);
		creds_ref_update_commit(&ref, c, 0);
		updates++;
		if (updates % 64 == 0) {
			for (int i = 0; i < started; i++) {
				if (!joined[i] && pthread_tryjoin_np(tid[i], NULL) == 0) {
					joined[i] = true;
					live--;
				}
			}
		}
	}
	for (int i = 0; i < started; i++)
		if (!joined[i])
			pthread_join(tid[i], NULL);
	run->seconds = creds_now() - t0;
	run->reads = run->torn = run->allowed = run->changes = 0;
	for (int i = 0; i < started; i++) {
		run->reads += rd[i].n;
		run->torn += rd[i].torn;
		run->allowed += rd[i].allowed;
		run->changes += rd[i].changes;
	}
	run->updates = updates;
	creds_ref_destroy(&ref);
}

#endif
