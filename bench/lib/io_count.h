/*
 * The counters of the io_count LD_PRELOAD shim (io_count.c): bytes and
 * calls of successful write-family calls on regular files under
 * IO_COUNT_DIR, since the process started. Safe from any thread.
 *
 * A benchmark must not link the shim; it looks the functions up with
 * dlsym(RTLD_DEFAULT, "io_count_bytes") and reports no figure when they
 * are absent (the shim was not preloaded).
 */
#ifndef COW_BENCH_IO_COUNT_H
#define COW_BENCH_IO_COUNT_H

#include <stdint.h>

uint64_t io_count_bytes(void);
uint64_t io_count_calls(void);

#endif
