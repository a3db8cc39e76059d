/*
 * The recv fuzz corpus: full and incremental streams of a map and a volume,
 * made by a real store. Incremental streams get the fixed base identity the
 * fuzz target's store uses (recv_common.h), with their checksum redone.
 *
 *   make_streams DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

#include "memstream.h"
#include "recv_common.h"

static void emit(cow_store *s, const char *dir, const char *file, const char *snap,
		 const char *base)
{
	struct mem m;
	if (mem_send(s, snap, base, &m))
		exit(1);
	if (base) { /* the fixed base identity, and the END checksum over the new bytes */
		memcpy(m.p + 48, recv_base_guid, 16);
		cow__put64(m.p + m.n - 8, XXH3_64bits(m.p, m.n - 16));
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(m.p, 1, m.n, f) != m.n || fclose(f))
		exit(1);
	printf("%s: %zu bytes\n", file, m.n);
	free(m.p);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	char path[512];
	snprintf(path, sizeof(path), "%s/src.cow", argv[1]);
	cow_store *s;
	cow_txn *t;
	cow_map *m;
	cow_vol *v;
	if (cow_store_open(path, &(cow_store_options){COW_STORE_CREATE}, &s) ||
	    cow_txn_begin(s, 0, &t) || recv_make_base(t) || cow_map_open(t, "m", &m) ||
	    cow_map_put(m, "k0001", 5, "changed", 7) || cow_map_del(m, "k0002", 5) ||
	    cow_map_put(m, "zzz", 3, "new", 3) || cow_vol_open(t, "v", &v) ||
	    cow_vol_pwrite(v, "hello", 5, 8192) || cow_vol_punch(v, 0, 4096) ||
	    cow_snapshot(t, "@next") || cow_txn_commit(t))
		return 1;
	emit(s, argv[1], "map-full", "m@base", NULL);
	emit(s, argv[1], "vol-full", "v@base", NULL);
	emit(s, argv[1], "map-incr", "m@next", "m@base");
	emit(s, argv[1], "vol-incr", "v@next", "v@base");
	cow_store_close(s);
	remove(path);
	snprintf(path, sizeof(path), "%s/src.cow.lock", argv[1]);
	remove(path);
	return 0;
}
