/*
 * send/recv: a snapshot, or the difference between two snapshots of one
 * object, as a checksummed byte stream (docs/STREAM.md), and its application
 * to another store inside one transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

#include "base/base.h"
#include "store/store.h"

static const char magic[8] = {'C', 'O', 'W', 'S', 'T', 'R', 'M', 0};
#define STREAM_VALUE_MAX (1u << 30)
enum { OP_PUT = 1, OP_DEL = 2, OP_WRITE = 3, OP_PUNCH = 4, OP_END = 5 };

/* ---- send ---- */

struct out {
	int (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
	XXH3_state_t *h;
	uint64_t records;
	uint8_t buf[1 << 16];
	size_t n;
};

static int out_flush(struct out *o)
{
	int rc = o->n ? o->write(o->ctx, o->buf, o->n) : 0;
	o->n = 0;
	return rc;
}

static int out_put(struct out *o, const void *p, size_t len)
{
	XXH3_64bits_update(o->h, p, len);
	while (len) {
		if (o->n == sizeof(o->buf)) {
			int rc = out_flush(o);
			if (rc)
				return rc;
		}
		size_t k = COW_MIN(len, sizeof(o->buf) - o->n);
		memcpy(o->buf + o->n, p, k);
		o->n += k;
		p = (const uint8_t *)p + k;
		len -= k;
	}
	return 0;
}

static int out_u64(struct out *o, uint64_t v)
{
	uint8_t b[8];
	cow__put64(b, v);
	return out_put(o, b, 8);
}

static int out_u32(struct out *o, uint32_t v)
{
	uint8_t b[4];
	cow__put32(b, v);
	return out_put(o, b, 4);
}

static int out_name(struct out *o, const char *name)
{
	uint8_t b[2];
	size_t n = strlen(name);
	cow__put16(b, (uint16_t)n);
	int rc = out_put(o, b, 2);
	return rc ? rc : out_put(o, name, n);
}

static int out_op(struct out *o, uint8_t op)
{
	o->records++;
	return out_put(o, &op, 1);
}

static int send_put(struct out *o, const cow_buf *k, const cow_buf *v)
{
	if (v->len > STREAM_VALUE_MAX)
		return COW_ETOOBIG;
	int rc = out_op(o, OP_PUT);
	if (rc == 0)
		rc = out_u32(o, (uint32_t)k->len);
	if (rc == 0)
		rc = out_u32(o, (uint32_t)v->len);
	if (rc == 0)
		rc = out_put(o, k->data, k->len);
	return rc ? rc : out_put(o, v->data, v->len);
}

static int send_block(struct out *o, cow_vol *v, uint64_t b)
{
	uint8_t data[COW_BLOCK_SIZE];
	uint64_t size = cow_vol_size(v), off = b << COW_BLOCK_SHIFT;
	if (off >= size)
		return 0;
	size_t n = (size_t)COW_MIN((uint64_t)COW_BLOCK_SIZE, size - off);
	memset(data, 0, sizeof(data));
	int rc = cow_vol_pread(v, data, n, off);
	if (rc)
		return rc;
	bool zero = true;
	for (size_t i = 0; i < sizeof(data) && zero; i++)
		zero = data[i] == 0;
	rc = out_op(o, zero ? OP_PUNCH : OP_WRITE);
	if (rc == 0)
		rc = out_u64(o, b);
	return rc ? rc : zero ? out_u64(o, 1) : out_put(o, data, sizeof(data));
}

/* Block @b of a file: a PUT of its data key (@pre, then the block) with @d, or a DEL (NULL). */
static int send_data(struct out *o, const uint8_t *pre, size_t plen, uint64_t b, const uint8_t *d)
{
	uint8_t k[COW_BMAP_PRE_MAX + 8];
	memcpy(k, pre, plen);
	cow__put_be64(k + plen, b);
	cow_buf kb = {k, plen + 8}, vb = {d, COW_BLOCK_SIZE};
	if (d)
		return send_put(o, &kb, &vb);
	int rc = out_op(o, OP_DEL);
	if (rc == 0)
		rc = out_u32(o, (uint32_t)kb.len);
	return rc ? rc : out_put(o, k, kb.len);
}

struct sendctx {
	struct out *o;
	cow_vol *vol;	    /* volumes: the snapshot being sent */
	struct cow__bmap f; /* fs trees: the snapshot's, prefix set per file */
	int type;
};

static int on_change(void *ctx, const cow_diff_entry *e)
{
	struct sendctx *sc = ctx;
	size_t plen;
	uint64_t b = e->offset >> COW_BLOCK_SHIFT, end = (e->offset + e->length) >> COW_BLOCK_SHIFT;
	if (sc->vol) {
		for (int rc; b < end; b++)
			if ((rc = send_block(sc->o, sc->vol, b)))
				return rc;
		return 0;
	}
	if (e->length && cow__bmap_key(sc->type, e->key.data, e->key.len, &plen)) {
		/* A file's changed blocks, read in order through one cursor. */
		memcpy(sc->f.pre, e->key.data, plen);
		sc->f.plen = plen;
		struct cow__vmap v;
		int rc = cow__vmap_start(&v, &sc->f, b);
		for (; rc == 0 && b < end; b++) {
			struct cow__bptr p;
			const uint8_t *d = NULL;
			if ((rc = cow__vmap_get(&v, b, &p)) == 0 && p.addr)
				rc = cow__bs_read(sc->f.tx->bs, sc->f.tx->read_flags,
						  sc->f.tx->nblocks, &p, COW_BLOCK_SIZE, &d, NULL);
			if (rc == 0)
				rc = send_data(sc->o, sc->f.pre, plen, b,
					       d); /* NULL: a hole, DEL */
		}
		return rc;
	}
	if (e->kind != COW_DIFF_REMOVED)
		return send_put(sc->o, &e->key, &e->new_value);
	int rc = out_op(sc->o, OP_DEL);
	if (rc == 0)
		rc = out_u32(sc->o, (uint32_t)e->key.len);
	return rc ? rc : out_put(sc->o, e->key.data, e->key.len);
}

int cow_send(cow_txn *t, const char *snapshot, const char *base,
	     int (*write)(void *ctx, const void *buf, size_t len), void *ctx)
{
	if (!t || !snapshot || !write)
		return COW_EINVAL;
	const char *at = strchr(snapshot, '@');
	struct cow__obj so = {0}, bo = {0};
	int rc = cow__catalog_get(t, snapshot, &so);
	if (rc)
		return rc;
	if (!at || !(so.flags & OBJF_SNAPSHOT))
		return COW_EINVAL;
	if (base) {
		const char *bat = strchr(base, '@');
		if (!bat || (size_t)(bat - base) != (size_t)(at - snapshot) ||
		    memcmp(base, snapshot, (size_t)(at - snapshot)) != 0)
			return COW_EINVAL; /* the base must be a snapshot of the same object */
		if ((rc = cow__catalog_get(t, base, &bo)))
			return rc;
		if (!(bo.flags & OBJF_SNAPSHOT))
			return COW_EINVAL;
	}
	struct out *o = cow__calloc(1, sizeof(*o));
	if (!o)
		return COW_ENOMEM;
	o->write = write;
	o->ctx = ctx;
	o->h = XXH3_createState();
	if (!o->h) {
		cow__free(o);
		return COW_ENOMEM;
	}
	XXH3_64bits_reset(o->h);
	uint8_t hdr[48] = {0};
	memcpy(hdr, magic, 8);
	cow__put32(hdr + 8, 1);
	cow__put32(hdr + 12, base ? 1 : 0);
	hdr[16] = (uint8_t)so.type;
	cow__put64(hdr + 24, so.type == OBJ_VOLUME ? so.count : 0);
	rc = out_put(o, hdr, 32);
	if (rc == 0)
		rc = out_put(o, so.guid, 16);
	if (rc == 0)
		rc = base ? out_put(o, bo.guid, 16) : out_put(o, hdr + 32, 16);
	if (rc == 0)
		rc = out_name(o, at + 1);
	if (rc == 0)
		rc = out_name(o, base ? strchr(base, '@') + 1 : "");

	struct sendctx sc = {o, NULL, {0}, so.type};
	cow_map *m = NULL;
	if (rc == 0 && so.type == OBJ_VOLUME)
		rc = cow_vol_open(t, snapshot, &sc.vol);
	if (rc == 0)
		rc = cow__obj_open(t, snapshot, so.type, &m);
	if (rc == 0)
		cow__bmap_init(&sc.f, &t->tx, &m->tree, NULL, 0, UINT64_MAX);
	if (rc == 0 && base) {
		rc = cow_diff(t, base, snapshot, on_change, &sc);
	} else if (rc == 0) { /* full: every entry (volumes, files: every present block) */
		struct cow__cursor c;
		cow__cursor_init(&c, &t->tx, &m->tree);
		rc = cow__cursor_first(&c);
		while (rc == 0) {
			cow_buf k, v;
			size_t plen;
			rc = cow__cursor_get(&c, &k, &v);
			if (rc)
				break;
			if (sc.vol && k.len != 8) {
				rc = COW_CORRUPT(0, "bad volume block map key");
				break;
			}
			if (cow__bmap_key(so.type, k.data, k.len, &plen)) {
				struct cow__vcell vc;
				memcpy(sc.f.pre, k.data, plen);
				sc.f.plen = plen;
				rc = cow__bmap_cell(&sc.f, &c, 0, &vc);
				for (uint64_t i = 0; rc == 0 && i < vc.r.n; i++) {
					const uint8_t *d;
					if (sc.vol)
						rc = send_block(o, sc.vol, vc.key + i);
					else if ((rc = cow__bmap_block(&t->tx, &vc.r, (uint32_t)i,
								       &d)) == 0)
						rc = send_data(o, sc.f.pre, plen, vc.key + i, d);
				}
			} else {
				rc = send_put(o, &k, &v);
			}
			if (rc == 0)
				rc = cow__cursor_next(&c);
		}
		if (rc == COW_ENOTFOUND)
			rc = 0;
	}
	if (rc == 0) {
		uint64_t records = o->records;
		rc = out_op(o, OP_END);
		uint8_t tail[16];
		cow__put64(tail, records);
		cow__put64(tail + 8, XXH3_64bits_digest(o->h));
		if (rc == 0)
			rc = out_put(o, tail, 16);
		if (rc == 0)
			rc = out_flush(o);
	}
	XXH3_freeState(o->h);
	cow__free(o);
	return rc;
}

/* ---- recv ---- */

/*
 * A stream is input, not store data: what is wrong with it is COW_ESTREAM,
 * logged with the byte offset where it was found, never COW_ECORRUPT or
 * COW_EFORMAT (those describe the store).
 */
struct in {
	int (*read)(void *ctx, void *buf, size_t len);
	void *ctx;
	XXH3_state_t *h;
	bool hash;
	uint64_t pos;	 /* bytes consumed so far */
	uint64_t rec;	 /* offset of the record being read */
	const char *eof; /* what a stream ending here would cut short */
};

static int bad(uint64_t at, const char *what)
{
	cow__log("recv: stream: %s at byte %llu", what, (unsigned long long)at);
	return COW_ESTREAM;
}

/* The input ended inside the header or the record that starts at in->rec. */
static int cut_short(const struct in *in)
{
	cow__log("recv: stream: %s at byte %llu (the input ends at byte %llu)", in->eof,
		 (unsigned long long)in->rec, (unsigned long long)in->pos);
	return COW_ESTREAM;
}

/* Exactly @len bytes, or COW_ESTREAM for a stream that ends early. */
static int in_get(struct in *in, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t want = len;
	while (len) {
		size_t ask = len > (1u << 30) ? (1u << 30) : len;
		int n = in->read(in->ctx, p, ask);
		if (n < 0)
			return n;
		if ((size_t)n > ask)
			return COW_EINVAL; /* the reader broke its contract */
		if (n == 0)
			return cut_short(in);
		p += n;
		len -= (size_t)n;
		in->pos += (uint64_t)n;
	}
	if (in->hash)
		XXH3_64bits_update(in->h, buf, want);
	return 0;
}

/* After END: the input must end too (a second stream is not applied). */
static int in_end(struct in *in)
{
	uint8_t b;
	int n = in->read(in->ctx, &b, 1);
	if (n < 0)
		return n;
	return n == 0 ? 0 : bad(in->pos, "bytes after the END record");
}

static int in_u64(struct in *in, uint64_t *v)
{
	uint8_t b[8];
	int rc = in_get(in, b, 8);
	*v = rc ? 0 : cow__le64(b);
	return rc;
}

static int in_u32(struct in *in, uint32_t *v)
{
	uint8_t b[4];
	int rc = in_get(in, b, 4);
	*v = rc ? 0 : cow__le32(b);
	return rc;
}

static int in_name(struct in *in, char *out, size_t cap)
{
	uint8_t b[2];
	uint64_t at = in->pos;
	int rc = in_get(in, b, 2);
	if (rc)
		return rc;
	size_t n = cow__le16(b);
	if (n >= cap)
		return bad(at, "snapshot name too long");
	rc = in_get(in, out, n);
	out[n] = 0;
	return rc;
}

/* NAME must not have changed since NAME@BASE. */
static int differs(void *ctx, const cow_diff_entry *e)
{
	(void)ctx, (void)e;
	return 1;
}

/* A file's consecutive blocks as the stream gives them, one key each, written as one run. */
struct pending {
	struct cow__bmap m;
	uint64_t ino, b;
	uint32_t n;
	uint8_t data[COW_RUN_MAX * COW_BLOCK_SIZE];
};

static int pend_flush(struct pending *p)
{
	uint32_t n = p->n;
	p->n = 0;
	return n ? cow__bmap_write(&p->m, p->data, (size_t)n << COW_BLOCK_SHIFT,
				   p->b << COW_BLOCK_SHIFT)
		 : 0;
}

/* Block @b of file @ino becomes @data (NULL: a hole). */
static int file_block(cow_txn *t, cow_map *m, struct pending *p, uint64_t ino, uint64_t b,
		      const uint8_t *data)
{
	if (data && p->n && p->ino == ino && b == p->b + p->n && p->n < COW_RUN_MAX) {
		memcpy(p->data + ((size_t)p->n++ << COW_BLOCK_SHIFT), data, COW_BLOCK_SIZE);
		return 0;
	}
	int rc = pend_flush(p);
	cow__fs_bmap(&p->m, &t->tx, &m->tree, ino);
	if (rc || b >= p->m.limit)
		return rc ? rc : COW_ERANGE;
	if (!data)
		return cow__bmap_carve(&p->m, b, b + 1);
	p->ino = ino;
	p->b = b;
	p->n = 1;
	memcpy(p->data, data, COW_BLOCK_SIZE);
	return 0;
}

static int apply(cow_txn *t, struct in *in, int type, cow_map *m)
{
	uint8_t *val = NULL;
	size_t cap = 0;
	int rc = 0;
	uint8_t key[COW_KEY_MAX], block[COW_BLOCK_SIZE];
	struct pending *p = type == OBJ_FS ? cow__malloc(sizeof(*p)) : NULL;
	if (type == OBJ_FS && !p)
		return COW_ENOMEM;
	if (p)
		p->n = 0;
	for (uint64_t records = 0;; records++) {
		uint8_t op;
		in->rec = in->pos;
		in->eof = "stream ends without an END record";
		if ((rc = in_get(in, &op, 1)))
			break;
		in->eof = "truncated record";
		size_t plen;
		if (op == OP_END) {
			uint64_t n, sum;
			in->hash = false; /* the trailer is not covered by its own checksum */
			uint64_t want_sum = XXH3_64bits_digest(in->h);
			if ((rc = in_u64(in, &n)) || (rc = in_u64(in, &sum)))
				break;
			if (n != records)
				rc = bad(in->rec,
					 "END's record count differs from the records sent");
			else if (sum != want_sum)
				rc = bad(in->rec, "checksum mismatch");
			else
				rc = in_end(in);
			break;
		}
		if (op == 0 || op > OP_END) {
			rc = bad(in->rec, "unknown record type");
			break;
		}
		if ((op == OP_PUT || op == OP_DEL) != cow__obj_keyed(type)) {
			rc = bad(in->rec, "record for another object type");
			break;
		}
		if (op == OP_PUT || op == OP_DEL) {
			uint32_t klen, vlen = 0;
			if ((rc = in_u32(in, &klen)) || (op == OP_PUT && (rc = in_u32(in, &vlen))))
				break;
			if (klen == 0 || klen > COW_KEY_MAX || vlen > STREAM_VALUE_MAX) {
				rc = bad(in->rec, "key or value length out of range");
				break;
			}
			if ((rc = in_get(in, key, klen)))
				break;
			bool data = type == OBJ_FS && cow__bmap_key(type, key, klen, &plen);
			if (data && op == OP_PUT && vlen != COW_BLOCK_SIZE) {
				rc = bad(in->rec, "file block of the wrong size");
				break;
			}
			if (!data && p && (rc = pend_flush(p)))
				break;
			if (op == OP_DEL) {
				rc = data ? file_block(t, m, p, cow__be64(key), cow__be64(key + 9),
						       NULL)
					  : cow_map_del(m, key, klen);
			} else {
				/* Grow as the bytes arrive: a lying length cannot make us allocate.
				 */
				size_t got = 0;
				while (rc == 0 && got < vlen) {
					size_t step =
						COW_MIN((size_t)vlen - got, (size_t)(1u << 24));
					if (got + step > cap) {
						rc = cow__grow((void **)&val, &cap, got + step, 1);
						if (rc)
							break;
					}
					rc = in_get(in, val + got, step);
					got += step;
				}
				if (rc == 0 && data)
					rc = file_block(t, m, p, cow__be64(key), cow__be64(key + 9),
							val);
				else if (rc == 0)
					rc = cow_map_put(m, key, klen,
							 vlen ? (const void *)val : "", vlen);
			}
		} else {
			uint64_t b, count = 1;
			if ((rc = in_u64(in, &b)))
				break;
			cow_vol *v = (cow_vol *)(void *)m;
			uint64_t size = cow_vol_size(v);
			if (op == OP_WRITE) {
				if ((rc = in_get(in, block, sizeof(block))))
					break;
			} else if ((rc = in_u64(in, &count))) {
				break;
			}
			if (b > (size >> COW_BLOCK_SHIFT) ||
			    count > (size >> COW_BLOCK_SHIFT) + 1) {
				rc = bad(in->rec, "block range past the volume's end");
				break;
			}
			uint64_t off = b << COW_BLOCK_SHIFT;
			uint64_t len =
				COW_MIN(count << COW_BLOCK_SHIFT, size > off ? size - off : 0);
			if (len == 0) {
				rc = bad(in->rec, "empty block range");
				break;
			}
			rc = op == OP_WRITE ? cow_vol_pwrite(v, block, (size_t)len, off)
					    : cow_vol_punch(v, off, len);
		}
		if (rc == COW_ENOTFOUND || rc == COW_EINVAL || rc == COW_ERANGE)
			rc = bad(in->rec, "record does not fit the object it changes");
		if (rc)
			break;
	}
	if (rc == 0 && p)
		rc = pend_flush(p);
	cow__free(p);
	cow__free(val);
	(void)t;
	return rc;
}

int cow_recv(cow_txn *t, const char *name, int (*read)(void *ctx, void *buf, size_t len), void *ctx,
	     char *snapshot_out, size_t snapshot_len)
{
	size_t len;
	if (!t || !read)
		return COW_EINVAL;
	if (!t->write)
		return COW_EREADONLY;
	int rc = cow__name_check(name, false, &len);
	if (rc)
		return rc;
	struct in in = {read, ctx, XXH3_createState(), true, 0, 0, "truncated header"};
	if (!in.h)
		return COW_ENOMEM;
	XXH3_64bits_reset(in.h);
	uint8_t hdr[64];
	char snap[COW_NAME_MAX + 1], base[COW_NAME_MAX + 1];
	if ((rc = in_get(&in, hdr, 64)))
		goto out;
	if (memcmp(hdr, magic, 8) != 0) {
		rc = bad(0, "not a cowkit stream (bad magic)");
		goto out;
	}
	if (cow__le32(hdr + 8) != 1) {
		rc = bad(8, "stream version this build cannot read");
		goto out;
	}
	if (cow__le32(hdr + 12) > 1 ||
	    (hdr[16] != OBJ_MAP && hdr[16] != OBJ_VOLUME && hdr[16] != OBJ_FS)) {
		rc = bad(12, "bad flags or object type in the header");
		goto out;
	}
	bool incremental = cow__le32(hdr + 12) & 1;
	int type = hdr[16];
	uint64_t size = cow__le64(hdr + 24);
	const uint8_t *guid = hdr + 32, *base_guid = hdr + 48;
	if ((rc = in_name(&in, snap, sizeof(snap))) || (rc = in_name(&in, base, sizeof(base))))
		goto out;
	size_t sl;
	if (cow__name_check(snap, false, &sl) ||
	    (incremental && cow__name_check(base, false, &sl)) || (!incremental && base[0])) {
		rc = bad(64, "bad snapshot name");
		goto out;
	}
	if (type == OBJ_VOLUME && size > (1ull << 60)) {
		rc = bad(24, "volume size out of range");
		goto out;
	}
	char full[COW_FULLNAME_MAX + 2];
	snprintf(full, sizeof(full), "%s@%s", name, snap);
	struct cow__obj o = {0};
	if (cow__catalog_get(t, full, &o) == 0) {
		rc = COW_EEXIST;
		goto out;
	}
	cow_map *m = NULL;
	if (!incremental) {
		rc = type == OBJ_VOLUME ? cow_vol_create(t, name, size)
					: cow__obj_create(t, name, type, 0);
		if (rc == 0)
			rc = cow__obj_open(t, name, type, &m);
	} else {
		char bfull[COW_FULLNAME_MAX + 2];
		snprintf(bfull, sizeof(bfull), "%s@%s", name, base);
		rc = cow__catalog_get(t, bfull, &o);
		if (rc == COW_ENOTFOUND ||
		    (rc == 0 && (memcmp(o.guid, base_guid, 16) != 0 || o.type != type)))
			rc = COW_EMISMATCH;
		if (rc == 0)
			rc = cow__obj_open(t, name, type, &m);
		if (rc == COW_ENOTFOUND || rc == COW_ETYPE)
			rc = COW_EMISMATCH;
		if (rc == 0) {
			rc = cow_diff(t, bfull, name, differs, NULL);
			if (rc == 1)
				rc = COW_EBUSY; /* changed since the base: roll back first */
		}
		if (rc == 0 && type == OBJ_VOLUME)
			rc = cow_vol_resize((cow_vol *)(void *)m, size);
	}
	if (rc)
		goto out;
	rc = apply(t, &in, type, m);
	if (rc == 0)
		rc = cow_snapshot(t, full);
	if (rc == 0) { /* the received snapshot keeps the sender's identity */
		rc = cow__catalog_get(t, full, &o);
		if (rc == 0) {
			memcpy(o.guid, guid, 16);
			rc = cow__catalog_put(t, full, &o);
		}
	}
	if (rc == 0 && snapshot_out && snapshot_len)
		snprintf(snapshot_out, snapshot_len, "%s", full);
out:
	XXH3_freeState(in.h);
	return cow__txn_poison(t, rc);
}
