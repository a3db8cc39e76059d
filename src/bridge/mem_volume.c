/*
 * bridge: the one place where two faces meet. Every other layer includes
 * only what lies below it (io -> block -> btree -> store; mem, share and rcu
 * beside store); code that needs two faces lives here and uses each
 * through its own interface.
 *
 * Checkpoints into the store: a sink that turns each image into a version of
 * a store volume (a snapshot sharing unchanged blocks with the previous
 * one), and restore from such a version. Uses only the store's public API
 * and mem's sink interface.
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "cow/store.h"
#include "mem/mem.h"

struct volsink {
	cow_store *s;
	char name[COW_NAME_MAX + 1];
	char last[2 * COW_NAME_MAX + 16];
	cow_txn *t;
	cow_vol *v;
	uint64_t seq; /* the N of the newest NAME@ckptN */
};

struct seqfind {
	const char *prefix;
	size_t plen;
	uint64_t max;
};

static int find_seq(void *ctx, const char *name, const char *type, uint64_t count)
{
	(void)type, (void)count;
	struct seqfind *f = ctx;
	if (strncmp(name, f->prefix, f->plen) == 0) {
		uint64_t n = strtoull(name + f->plen, NULL, 10);
		if (n > f->max)
			f->max = n;
	}
	return 0;
}

static int vs_begin(void *ctx, cow_mem_image_kind kind, uint64_t size)
{
	(void)kind;
	struct volsink *vs = ctx;
	int rc = cow_txn_begin(vs->s, 0, &vs->t);
	if (rc)
		return rc;
	rc = cow_vol_open(vs->t, vs->name, &vs->v);
	if (rc == COW_ENOTFOUND) {
		rc = cow_vol_create(vs->t, vs->name, size);
		if (rc == 0)
			rc = cow_vol_open(vs->t, vs->name, &vs->v);
	} else if (rc == 0 && cow_vol_size(vs->v) != size) {
		rc = cow_vol_resize(vs->v, size);
	}
	if (rc == 0 && vs->seq == 0) { /* continue after the newest checkpoint */
		char prefix[COW_NAME_MAX + 8];
		snprintf(prefix, sizeof(prefix), "%s@ckpt", vs->name);
		struct seqfind f = {prefix, strlen(prefix), 0};
		rc = cow_store_list(vs->t, find_seq, &f);
		vs->seq = f.max;
	}
	if (rc) {
		cow_txn_abort(vs->t);
		vs->t = NULL;
	}
	return rc;
}

static int vs_write(void *ctx, uint64_t off, const void *data, size_t len)
{
	struct volsink *vs = ctx;
	return vs->t ? cow_vol_pwrite(vs->v, data, len, off) : COW_EINVAL;
}

static int vs_end(void *ctx, int status)
{
	struct volsink *vs = ctx;
	if (!vs->t)
		return status ? status : COW_EINVAL;
	int rc = status;
	char snap[sizeof(vs->last)];
	snprintf(snap, sizeof(snap), "%s@ckpt%llu", vs->name, (unsigned long long)(vs->seq + 1));
	if (rc == 0)
		rc = cow_snapshot(vs->t, snap);
	if (rc == 0) {
		rc = cow_txn_commit(vs->t);
		if (rc == 0) {
			vs->seq++;
			memcpy(vs->last, snap, sizeof(snap));
		}
	} else {
		cow_txn_abort(vs->t);
	}
	vs->t = NULL;
	return rc;
}

int cow_mem_sink_volume(cow_store *s, const char *name, cow_mem_sink **out)
{
	if (!s || !name || !out || strlen(name) == 0 || strlen(name) > COW_NAME_MAX ||
	    strchr(name, '@'))
		return COW_EINVAL;
	struct volsink *vs = cow__calloc(1, sizeof(*vs));
	if (!vs)
		return COW_ENOMEM;
	vs->s = s;
	memcpy(vs->name, name, strlen(name) + 1);
	static const cow_mem_sink_ops ops = {vs_begin, vs_write, vs_end};
	int rc = cow__sink_callbacks_owned(&ops, vs, out);
	if (rc)
		cow__free(vs);
	return rc;
}

const char *cow_mem_sink_volume_last(const cow_mem_sink *sink)
{
	const struct volsink *vs = cow__sink_ctx(sink);
	return vs ? vs->last : "";
}

int cow_mem_restore_volume(cow_mem_region *r, cow_store *s, const char *snapshot,
			   cow_mem_backend backend, cow_mem_restore **out)
{
	if (!r || !s || !snapshot || !out)
		return COW_EINVAL;
	cow_txn *t;
	int rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	if (rc)
		return rc;
	cow_vol *v;
	void *buf = NULL;
	size_t len = 0;
	rc = cow_vol_open(t, snapshot, &v);
	if (rc == 0) {
		uint64_t size = cow_vol_size(v);
		len = (size_t)(size < cow_mem_region_size(r) ? size : cow_mem_region_size(r));
		len &= ~(size_t)4095;
		buf = cow__malloc(len ? len : 1);
		rc = buf ? cow_vol_pread(v, buf, len, 0) : COW_ENOMEM;
	}
	cow_txn_abort(t);
	if (rc == 0)
		rc = cow_mem_restore_start(r, buf, len, backend, out);
	if (rc) {
		cow__free(buf);
		return rc;
	}
	cow__restore_own(*out, buf);
	return 0;
}
