/*
 * Fuzz target: open an arbitrary file as a store and read all of it.
 *
 * The input is the data file. Each input is tried twice:
 *
 *   raw:   the bytes as given. Almost every mutation breaks a checksum, so
 *          this mostly exercises superblock decoding and recovery.
 *   fixed: the same bytes, padded to whole blocks, after the checksums of
 *          every block pointer reachable from the superblocks (the catalog,
 *          every object's tree through the root in its catalog record, value
 *          extents, the refs tree, space-map chains) and of the superblocks
 *          themselves are recomputed, children before parents. This lets
 *          mutations of node headers, cells, catalog records, reference
 *          counts and space maps reach the code behind the checksum: a
 *          crafted file must not crash the store either.
 *
 * For each image, the store is opened read-only and read-write (never
 * created). When it opens, everything is read: the catalog list, every map
 * (cursors both ways, a get of every key seen, a seek) and every volume,
 * then the white-box checker cow__store_check and one small write
 * transaction that creates a map and changes an existing map and volume
 * (copying nodes shared with snapshots through the refs tree). Every call must
 * succeed or fail with an error the API documents for damaged input; nothing
 * may crash, hang, leak, or return a code outside that set (abort()).
 *
 * The work per input is bounded: inputs are cut at FUZZ_MAX_BLOCKS blocks,
 * at most FUZZ_MAX_MAPS maps and FUZZ_MAX_STEPS cursor steps per map.
 *
 * Built two ways (tests/fuzz.cmake): with libFuzzer (COW_FUZZ=ON, clang), and
 * always as a plain program (replay.c) that runs the checked-in corpus.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "store/store.h"

#define FUZZ_MAX_BLOCKS 256u /* 1 MiB */
#define FUZZ_MAX_MAPS	64
#define FUZZ_MAX_STEPS	4096
#define FUZZ_MAX_DEPTH	40
#define FUZZ_MAX_VBLKS	512

static char dir[256], path[300], lockpath[320];
static bool verbose; /* $COW_FUZZ_VERBOSE: say what each image gave */
static bool strict;  /* all maps in one read transaction ($COW_FUZZ_LENIENT: one each) */
static long nmaps_seen, nkeys_seen;
/*
 * A key a cursor returned that a get did not find. Only a tree whose keys
 * are out of order does that, which checksums cannot rule out in a crafted
 * file (the fixed image); the white-box checker must then call it corrupt.
 */
static bool inconsistent;

static void fuzz_fail(const char *what, int rc)
{
	fprintf(stderr, "fuzz_open: %s returned %d (%s: %s)\n", what, rc, cow_errname(rc),
		cow_strerror(rc));
	abort();
}

/* Damaged input may only ever be reported as such. */
static void expect(const char *what, int rc, int ok1, int ok2)
{
	if (rc == 0 || rc == ok1 || rc == ok2)
		return;
	fuzz_fail(what, rc);
}

static void cleanup(void)
{
	if (!dir[0])
		return;
	unlink(path);
	unlink(lockpath);
	rmdir(dir);
}

static int setup(void)
{
	if (dir[0])
		return 0;
	verbose = getenv("COW_FUZZ_VERBOSE") != NULL;
	strict = getenv("COW_FUZZ_LENIENT") == NULL;
	const char *env = getenv("COW_FUZZ_LOG");
	if (!env || !*env)
		setenv("COW_LOG", "off", 1); /* corruption reports would flood the fuzzer */
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/cowfuzz.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		perror("fuzz_open: mkdtemp");
		dir[0] = 0;
		return -1;
	}
	snprintf(path, sizeof(path), "%s/store", dir);
	snprintf(lockpath, sizeof(lockpath), "%s/store.lock", dir);
	atexit(cleanup);
	return 0;
}

static void write_file(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror("fuzz_open: open");
		abort();
	}
	while (size > 0) {
		ssize_t n = write(fd, data, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror("fuzz_open: write");
			abort();
		}
		data += n;
		size -= (size_t)n;
	}
	close(fd);
}

/* ---- checksum fix-up (FORMAT.md sections 2-6, read independently of src/) ---- */

/* A catalog record's fixed part (FORMAT.md section 5); the origin name follows. */
#define CATALOG_RECORD 88
_Static_assert(CATALOG_RECORD == CAT_FIXED, "FORMAT.md section 5 and store.h disagree");

struct img {
	uint8_t *b;
	uint64_t nblocks;
	uint8_t *seen;
};

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v; /* little-endian hosts only, as the store itself */
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint8_t *blk(struct img *im, uint64_t a)
{
	return im->b + a * COW_BLOCK_SIZE;
}

static void fix_node(struct img *im, uint64_t a, int depth, bool catalog);

/* Fix what pointer @p (24 bytes) reaches, then its checksum over @len bytes. */
static void fix_ptr(struct img *im, uint8_t *p, size_t len, int depth, bool catalog, bool node)
{
	uint64_t a = get64(p), nblk = (len + COW_BLOCK_SIZE - 1) / COW_BLOCK_SIZE;
	if (a < 2 || len == 0 || a >= im->nblocks || nblk > im->nblocks - a)
		return;
	if (node)
		fix_node(im, a, depth, catalog);
	put64(p + 16, cow__csum(blk(im, a), len));
}

static void fix_node(struct img *im, uint64_t a, int depth, bool catalog)
{
	if (depth > FUZZ_MAX_DEPTH || im->seen[a])
		return;
	im->seen[a] = 1;
	uint8_t *n = blk(im, a);
	if (n[0] != 'C' || n[1] != 'O' || n[2] != 'W' || n[3] != 'N')
		return;
	unsigned cnt = get16(n + 6);
	if (cnt > (COW_BLOCK_SIZE - 32) / 2)
		cnt = (COW_BLOCK_SIZE - 32) / 2;
	for (unsigned i = 0; i < cnt; i++) {
		unsigned off = get16(n + 32 + 2 * i);
		if (off < 32 || off + 8 > COW_BLOCK_SIZE)
			continue;
		uint8_t *c = n + off;
		if (n[4] == 2) { /* branch: u16 klen, child, key */
			if (off + 2 + COW_BPTR_SIZE <= COW_BLOCK_SIZE)
				fix_ptr(im, c + 2, COW_BLOCK_SIZE, depth + 1, catalog, true);
			continue;
		}
		size_t klen = get16(c), vlen = get32(c + 4);
		size_t voff = off + 8 + klen;
		if (c[2] == 1 && voff + COW_BPTR_SIZE <= COW_BLOCK_SIZE) /* extent */
			fix_ptr(im, n + voff, vlen, 0, false, false);
		else if (c[2] == 0 && catalog && vlen >= CATALOG_RECORD &&
			 voff + CATALOG_RECORD <= COW_BLOCK_SIZE) /* the object's root */
			fix_ptr(im, n + voff + 16, COW_BLOCK_SIZE, 0, false, true);
	}
}

static void fix_space(struct img *im, uint8_t *p, int depth)
{
	uint64_t a = get64(p);
	if (a < 2 || a >= im->nblocks)
		return;
	uint8_t *s = blk(im, a);
	if (depth <= FUZZ_MAX_DEPTH && !im->seen[a] && memcmp(s, "COWS", 4) == 0) {
		im->seen[a] = 1;
		fix_space(im, s + 24, depth + 1);
	}
	put64(p + 16, cow__csum(s, COW_BLOCK_SIZE));
}

static void fix_image(uint8_t *b, uint64_t nblocks)
{
	struct img im = {b, nblocks, calloc(nblocks, 1)};
	if (!im.seen)
		abort();
	for (uint64_t slot = 0; slot < 2 && slot < nblocks; slot++) {
		uint8_t *sb = blk(&im, slot);
		if (memcmp(sb, "COWKITSB", 8) != 0)
			continue;
		fix_ptr(&im, sb + 40, COW_BLOCK_SIZE, 0, true, true);	/* catalog */
		fix_ptr(&im, sb + 144, COW_BLOCK_SIZE, 0, false, true); /* refs tree */
		fix_space(&im, sb + 64, 0);
		fix_space(&im, sb + 88, 0);
		put64(sb + 4088, cow__csum(sb, 4088));
	}
	free(im.seen);
}

/* ---- reading everything ---- */

struct names {
	char name[FUZZ_MAX_MAPS][COW_FULLNAME_MAX + 1];
	bool volume[FUZZ_MAX_MAPS];
	int n;
};

static int list_one(void *ctx, const char *name, const char *type, uint64_t count)
{
	(void)count;
	struct names *nm = ctx;
	if (!name || !type)
		abort();
	if (nm->n == FUZZ_MAX_MAPS)
		return 1;
	nm->volume[nm->n] = strcmp(type, "volume") == 0;
	if (nm->volume[nm->n] || strcmp(type, "map") == 0)
		snprintf(nm->name[nm->n++], COW_FULLNAME_MAX + 1, "%s", name);
	return 0;
}

struct key {
	uint8_t k[COW_KEY_MAX];
	size_t len;
};

/* Cursor results: 0, ENOTFOUND at either end, or ECORRUPT. */
static int scan(cow_map *m, bool forward, struct key *keys, int *nkeys)
{
	cow_cursor *c;
	int rc = cow_cursor_open(m, &c);
	expect("cow_cursor_open", rc, COW_ENOMEM, 0);
	if (rc)
		return rc;
	rc = forward ? cow_cursor_first(c) : cow_cursor_last(c);
	for (int steps = 0; rc == 0 && steps < FUZZ_MAX_STEPS; steps++) {
		cow_buf k, v;
		rc = cow_cursor_get(c, &k, &v);
		expect("cow_cursor_get", rc, COW_ECORRUPT, 0);
		if (rc)
			break;
		if (k.len > COW_KEY_MAX || !k.data || (v.len && !v.data))
			fuzz_fail("cow_cursor_get (entry out of range)", 0);
		if (k.len == 0)
			inconsistent = true; /* keys have 1..COW_KEY_MAX bytes */
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < v.len; i += 512) /* touch the value: it must be mapped */
			sink ^= ((const uint8_t *)v.data)[i];
		(void)sink;
		if (keys && *nkeys < FUZZ_MAX_STEPS) {
			memcpy(keys[*nkeys].k, k.data, k.len);
			keys[(*nkeys)++].len = k.len;
		}
		rc = forward ? cow_cursor_next(c) : cow_cursor_prev(c);
	}
	expect(forward ? "cow_cursor_next" : "cow_cursor_prev", rc, COW_ENOTFOUND, COW_ECORRUPT);
	if (*nkeys > 0 && keys) {
		rc = cow_cursor_seek(c, keys[*nkeys / 2].k, keys[*nkeys / 2].len);
		expect("cow_cursor_seek", rc, COW_ENOTFOUND, COW_ECORRUPT);
	}
	cow_cursor_close(c);
	return 0;
}

static struct key keys[FUZZ_MAX_STEPS];

static bool bad_name(const char *name)
{
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == '@' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return true;
	return !*name;
}

static void read_map(cow_txn *t, const char *name)
{
	cow_map *m;
	int rc = cow_map_open(t, name, &m);
	expect("cow_map_open", rc, COW_ECORRUPT, COW_ENOTFOUND);
	if (rc == COW_EINVAL && bad_name(name))
		return; /* a crafted catalog may hold names the API refuses */
	if (rc)
		return;
	(void)cow_map_count(m);
	int nkeys = 0;
	scan(m, true, keys, &nkeys);
	nmaps_seen++;
	nkeys_seen += nkeys;
	int nback = 0;
	scan(m, false, NULL, &nback);
	for (int j = 0; j < nkeys; j++) {
		if (keys[j].len == 0)
			continue; /* flagged by scan(); the API refuses empty keys */
		cow_buf v;
		rc = cow_map_get(m, keys[j].k, keys[j].len, &v);
		expect("cow_map_get", rc, COW_ECORRUPT, COW_ENOTFOUND);
		if (rc == COW_ENOTFOUND)
			inconsistent = true;
	}
	cow_buf v;
	rc = cow_map_get(m, "\xff\xff", 2, &v);
	expect("cow_map_get(absent)", rc, COW_ECORRUPT, COW_ENOTFOUND);
}

/* A volume: its size, then every block up to FUZZ_MAX_VBLKS (holes included). */
static void read_vol(cow_txn *t, const char *name)
{
	cow_vol *v;
	int rc = cow_vol_open(t, name, &v);
	if (rc == COW_ETYPE)
		return; /* a crafted catalog may list one record and find another */
	expect("cow_vol_open", rc, COW_ECORRUPT, COW_ENOTFOUND);
	if (rc)
		return;
	static uint8_t buf[COW_BLOCK_SIZE];
	uint64_t size = cow_vol_size(v);
	for (uint64_t b = 0; b < FUZZ_MAX_VBLKS && b << COW_BLOCK_SHIFT < size; b++) {
		uint64_t off = b << COW_BLOCK_SHIFT;
		size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		rc = cow_vol_pread(v, buf, n, off);
		expect("cow_vol_pread", rc, COW_ECORRUPT, 0);
	}
}

static void read_obj(cow_txn *t, const struct names *nm, int i)
{
	if (nm->volume[i])
		read_vol(t, nm->name[i]);
	else
		read_map(t, nm->name[i]);
}

/*
 * Every map is read in one transaction: an ECORRUPT from one map must not
 * stop the others ($COW_FUZZ_LENIENT=1 reads each in its own transaction).
 */
static void read_all(cow_store *s)
{
	cow_txn *t;
	int rc = cow_txn_begin(s, COW_TXN_RDONLY, &t);
	expect("cow_txn_begin(RDONLY)", rc, COW_ENOMEM, 0);
	if (rc)
		return;
	static struct names nm;
	nm.n = 0;
	rc = cow_store_list(t, list_one, &nm);
	expect("cow_store_list", rc, COW_ECORRUPT, 1);
	if (strict) { /* names the seeds use, in case a damaged catalog hides them */
		read_map(t, "alpha");
		read_map(t, "beta");
	}
	for (int i = 0; i < nm.n; i++) {
		if (strict) {
			read_obj(t, &nm, i);
			continue;
		}
		cow_txn *mt;
		rc = cow_txn_begin(s, COW_TXN_RDONLY, &mt);
		expect("cow_txn_begin(RDONLY)", rc, COW_ENOMEM, 0);
		if (rc)
			continue;
		read_obj(mt, &nm, i);
		expect("cow_txn_commit(RDONLY)", cow_txn_commit(mt), 0, 0);
	}
	rc = cow_txn_commit(t);
	expect("cow_txn_commit(RDONLY)", rc, 0, 0);
}

/* A small change on top of whatever was found; errors from damage are fine. */
static void write_some(cow_store *s)
{
	cow_txn *t;
	int rc = cow_txn_begin(s, COW_TXN_NOWAIT, &t);
	expect("cow_txn_begin(write)", rc, COW_ECORRUPT, 0);
	if (rc)
		return;
	rc = cow_map_create(t, "fuzz-new");
	expect("cow_map_create", rc, COW_ECORRUPT, COW_EEXIST);
	cow_map *m;
	if (rc == 0 && cow_map_open(t, "fuzz-new", &m) == 0) {
		rc = cow_map_put(m, "k", 1, "value", 5);
		expect("cow_map_put", rc, COW_ECORRUPT, 0);
	}
	/*
	 * Change the first live map and volume found: their nodes may be shared
	 * with snapshots, so this copies through the reference-count tree.
	 */
	static struct names nm;
	nm.n = 0;
	if (rc == 0) {
		rc = cow_store_list(t, list_one, &nm);
		expect("cow_store_list(write)", rc, COW_ECORRUPT, 1);
		rc = rc == 1 ? 0 : rc; /* the list is full */
	}
	bool did_map = false, did_vol = false;
	for (int i = 0; i < nm.n && rc == 0 && !(did_map && did_vol); i++) {
		if (strchr(nm.name[i], '@') || bad_name(nm.name[i]))
			continue;
		if (!nm.volume[i] && !did_map) {
			did_map = true;
			rc = cow_map_open(t, nm.name[i], &m);
			rc = rc == COW_ETYPE ? COW_ENOTFOUND : rc;
			expect("cow_map_open(write)", rc, COW_ECORRUPT, COW_ENOTFOUND);
			if (rc == 0) {
				rc = cow_map_put(m, "key-00003", 9, "fuzz", 4);
				expect("cow_map_put(existing)", rc, COW_ECORRUPT, 0);
			}
			rc = rc == COW_ENOTFOUND ? 0 : rc;
		} else if (nm.volume[i] && !did_vol) {
			did_vol = true;
			cow_vol *v;
			rc = cow_vol_open(t, nm.name[i], &v);
			rc = rc == COW_ETYPE ? COW_ENOTFOUND : rc; /* as in read_vol() */
			expect("cow_vol_open(write)", rc, COW_ECORRUPT, COW_ENOTFOUND);
			if (rc == 0 && cow_vol_size(v) >= 2 * COW_BLOCK_SIZE) {
				rc = cow_vol_pwrite(v, "fuzz", 4, COW_BLOCK_SIZE + 7);
				expect("cow_vol_pwrite", rc, COW_ECORRUPT, 0);
			}
			rc = rc == COW_ENOTFOUND ? 0 : rc;
		}
	}
	rc = cow_txn_commit(t);
	expect("cow_txn_commit", rc, COW_ECORRUPT, COW_ETXNERR);
	if (rc == 0) {
		rc = cow__store_check(s);
		expect("cow__store_check after a write", rc, COW_ECORRUPT, 0);
	}
}

static void try_open(unsigned flags)
{
	cow_store *s;
	int rc = cow_store_open(path, &(cow_store_options){.flags = flags}, &s);
	expect("cow_store_open", rc, COW_ECORRUPT, COW_EFORMAT);
	if (verbose)
		printf("  open(%s): %s\n", flags & COW_STORE_RDONLY ? "rdonly" : "rdwr",
		       cow_errname(rc));
	if (rc)
		return;
	nmaps_seen = nkeys_seen = 0;
	inconsistent = false;
	read_all(s);
	if (verbose)
		printf("  read %ld maps, %ld keys%s\n", nmaps_seen, nkeys_seen,
		       inconsistent ? ", some not found by get" : "");
	if (!(flags & COW_STORE_RDONLY)) {
		rc = cow__store_check(s);
		expect("cow__store_check", rc, COW_ECORRUPT, 0);
		if (inconsistent && rc == 0)
			fuzz_fail("cow__store_check (passed a tree whose get misses a key)", rc);
		write_some(s);
		read_all(s);
	}
	cow_store_close(s);
}

static void run_image(const uint8_t *data, size_t size)
{
	write_file(data, size);
	try_open(COW_STORE_RDONLY);
	write_file(data, size); /* the read-write open may have changed it */
	try_open(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (setup())
		abort();
	if (size > FUZZ_MAX_BLOCKS * COW_BLOCK_SIZE)
		size = FUZZ_MAX_BLOCKS * COW_BLOCK_SIZE;
	run_image(data, size);

	uint64_t nblocks = (size + COW_BLOCK_SIZE - 1) / COW_BLOCK_SIZE;
	if (nblocks == 0)
		return 0;
	uint8_t *b = calloc(nblocks, COW_BLOCK_SIZE);
	if (!b)
		abort();
	memcpy(b, data, size);
	fix_image(b, nblocks);
	size_t fsize = nblocks * COW_BLOCK_SIZE;
	if (fsize != size || memcmp(b, data, size) != 0)
		run_image(b, fsize);
	free(b);
	return 0;
}
