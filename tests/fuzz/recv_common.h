/*
 * Shared by the recv fuzz target and its corpus maker: the receiving store's
 * base snapshots carry this fixed identity, so incremental streams in the
 * corpus (made with the same identity patched in) apply.
 */
#ifndef COW_TEST_RECV_COMMON_H
#define COW_TEST_RECV_COMMON_H

#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "store/store.h"

static const uint8_t recv_base_guid[16] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
					   0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11};

/* Fill @t with map "m" and volume "v" and snapshot them as NAME@base with the fixed id. */
static inline int recv_make_base(cow_txn *t)
{
	cow_map *m;
	cow_vol *v;
	int rc = cow_map_create(t, "m");
	if (rc == 0)
		rc = cow_map_open(t, "m", &m);
	for (int i = 0; rc == 0 && i < 300; i++) {
		char k[16], val[40];
		snprintf(k, sizeof(k), "k%04d", i);
		int n = snprintf(val, sizeof(val), "value-%d", i * 7);
		rc = cow_map_put(m, k, strlen(k), val, (size_t)n);
	}
	if (rc == 0)
		rc = cow_vol_create(t, "v", 256 * 1024 + 100);
	if (rc == 0)
		rc = cow_vol_open(t, "v", &v);
	for (int b = 0; rc == 0 && b < 64; b += 3) {
		char blk[4096];
		memset(blk, 'a' + b % 26, sizeof(blk));
		rc = cow_vol_pwrite(v, blk, sizeof(blk), (uint64_t)b * 4096);
	}
	if (rc == 0)
		rc = cow_snapshot(t, "@base");
	const char *names[2] = {"m@base", "v@base"};
	for (int i = 0; rc == 0 && i < 2; i++) {
		struct cow__obj o = {0};
		rc = cow__catalog_get(t, names[i], &o);
		if (rc == 0) {
			memcpy(o.guid, recv_base_guid, 16);
			rc = cow__catalog_put(t, names[i], &o);
		}
	}
	return rc;
}

#endif
