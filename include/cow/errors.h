/*
 * cowkit error codes.
 *
 * Every fallible cowkit call returns an int: 0 on success or a negative code.
 * System errors are passed through as -errno, so COW_ENOSPC == -ENOSPC and a
 * caller may compare against either. cowkit's own conditions live in a band
 * below -1000 that no errno value reaches. Codes and messages come from the
 * one list below; cow_strerror() and cow_errname() read it.
 *
 * Two codes mean "not there", for a reason: COW_ENOENT is the file system's
 * (the store file or a file to import is missing), COW_ENOTFOUND the
 * store's (a key, an object, a snapshot). The first is about the machine,
 * the second about the data, and scripts often treat them differently.
 */
#ifndef COW_ERRORS_H
#define COW_ERRORS_H

#include <errno.h>

#include "cow/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * X(NAME, VALUE, MESSAGE). System codes first (the ones cowkit returns on
 * purpose; any other -errno may still pass through), then cowkit's own band.
 */
#define COW_ERROR_MAP(X)                                                                           \
	X(EPERM, -EPERM, "operation not permitted")                                                \
	X(ENOENT, -ENOENT, "no such file or directory")                                            \
	X(ESRCH, -ESRCH, "no such process")                                                        \
	X(EINTR, -EINTR, "interrupted system call")                                                \
	X(EIO, -EIO, "input/output error")                                                         \
	X(EBADF, -EBADF, "bad file descriptor")                                                    \
	X(EAGAIN, -EAGAIN, "resource temporarily unavailable")                                     \
	X(EEXIST, -EEXIST, "already exists")                                                       \
	X(EBUSY, -EBUSY, "in use: other objects or handles depend on it")                          \
	X(EDEADLK, -EDEADLK, "this thread already holds the write transaction")                    \
	X(ENOMEM, -ENOMEM, "out of memory")                                                        \
	X(EACCES, -EACCES, "permission denied")                                                    \
	X(EFAULT, -EFAULT, "bad address")                                                          \
	X(EINVAL, -EINVAL, "invalid argument")                                                     \
	X(EMFILE, -EMFILE, "too many open files")                                                  \
	X(EFBIG, -EFBIG, "file too large")                                                         \
	X(ENOSPC, -ENOSPC, "no space left on device")                                              \
	X(EROFS, -EROFS, "read-only file system")                                                  \
	X(ERANGE, -ERANGE, "result out of range")                                                  \
	X(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                                            \
	X(ENOSYS, -ENOSYS, "function not implemented by this kernel")                              \
	X(EOPNOTSUPP, -EOPNOTSUPP, "operation not supported")                                      \
	X(ECANCELED, -ECANCELED,                                                                   \
	  "canceled: a live-memory image was abandoned (memory changed, or never taken)")          \
	X(ECORRUPT, -1001, "store data is corrupt (checksum or structure mismatch)")               \
	X(EFORMAT, -1002, "not a cowkit store, or a format version this build cannot read")        \
	X(ENOTFOUND, -1003, "not found")                                                           \
	X(EREADONLY, -1006, "read-only: a snapshot or a read transaction")                         \
	X(ETXNERR, -1007, "transaction failed earlier; it can only be aborted")                    \
	X(ETOOBIG, -1008, "key or value too large")                                                \
	X(ETYPE, -1009, "object is of another type")                                               \
	X(EMISMATCH, -1010, "stream does not match the store (base missing or different)")         \
	X(ELOCKED, -1011, "another writer holds the store")                                        \
	X(EINTERNAL, -1012, "internal invariant violated (a cowkit bug)")                          \
	X(ESTREAM, -1013, "malformed or truncated stream (or bytes after its END)")                \
	X(EFULL, -1014, "buffer full: the operation was abandoned, as its policy asked")

enum cow_error {
	COW_OK = 0,
#define COW__ERROR_ENUM(name, value, msg) COW_##name = (value),
	COW_ERROR_MAP(COW__ERROR_ENUM)
#undef COW__ERROR_ENUM
};

/*
 * cow_strerror - a message for an error code.
 *
 * Accepts 0, any COW_E* code and any -errno. Never returns NULL. The string is
 * static and must not be freed. Safe to call from any thread.
 */
COW_API const char *cow_strerror(int code);

/*
 * cow_errname - the symbolic name of a code ("COW_ECORRUPT", "COW_ENOSPC").
 *
 * Returns "COW_OK" for 0 and "COW_EUNKNOWN" for codes not in the list. Static
 * string; any thread.
 */
COW_API const char *cow_errname(int code);

#ifdef __cplusplus
}
#endif

#endif
