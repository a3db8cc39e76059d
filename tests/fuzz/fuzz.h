/*
 * The fuzz targets' entry points, shared by the libFuzzer build and the
 * plain replayer (replay.c). Each returns 0; a failure aborts.
 */
#ifndef COW_TEST_FUZZ_H
#define COW_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
