/*
 * cowkit: copy-on-write for C programs and the people who run them.
 *
 * This umbrella header includes every face of the library:
 *   cow/errors.h  error codes and cow_strerror()
 *   cow/store.h   the crash-proof store (maps, volumes, snapshots, clones)
 *   cow/mem.h     live memory: forkless snapshots, checkpoints, lazy restore
 *   cow/share.h   what a process family shares after fork()
 *   cow/rcu.h     RCU-published copy-on-write objects
 *   cow/fs.h      file systems kept in a store (`cow mount` serves them)
 *
 * and declares the process-wide settings below.
 */
#ifndef COW_COW_H
#define COW_COW_H

#include <stddef.h>

#include "cow/visibility.h"
#include "cow/errors.h"
#include "cow/base.h"
#include "cow/store.h"
#include "cow/mem.h"
#include "cow/share.h"
#include "cow/rcu.h"
#include "cow/fs.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif
