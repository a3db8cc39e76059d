/*
 * cowkit file systems: a POSIX tree kept in one copy-on-write B+tree of a
 * store (object type "fs"; docs/FORMAT.md section 10, docs/fs.md).
 *
 * An fs is an object like a map or a volume: cow_snapshot, cow_clone,
 * cow_rollback, cow_destroy, cow_rename, cow_diff, cow_send/cow_recv and
 * cow backup work on it whole, in O(1) for snapshots and clones. The calls
 * below work inside a transaction on inode numbers, the way a kernel (or
 * FUSE's low-level API, which `cow mount` serves it through) asks: no
 * paths, so no path-length limit.
 *
 *	cow_fs_create(t, "home", &(cow_fs_attr){.mode = 0755, .uid = 0, .gid = 0});
 *	cow_fs *f;
 *	cow_fs_open(t, "home", &f);
 *	cow_fs_attr a;
 *	cow_fs_mknod(f, COW_FS_ROOT, "notes", 5, &(cow_fs_attr){.mode = S_IFREG | 0644}, &a);
 *	cow_fs_write(f, a.ino, "hello\n", 6, 0);
 *	cow_txn_commit(t);
 *
 * Errors are file-system errors as -errno (-ENOENT, -ENOTDIR, -EISDIR,
 * -ENOTEMPTY, -EEXIST, -EINVAL, -ENAMETOOLONG, -EMLINK, -EFBIG, -ENODATA,
 * -ERANGE), besides the store's own (COW_ECORRUPT, COW_ENOSPC, COW_ENOMEM,
 * COW_EREADONLY for a snapshot or a read transaction, COW_ETXNERR).
 * Permissions are not checked here: that is the caller's part (`cow mount`
 * lets the kernel check them against each caller's credentials).
 *
 * A cow_fs belongs to its transaction and to one thread at a time, like a
 * cow_map.
 */
#ifndef COW_FS_H
#define COW_FS_H

#include <stddef.h>
#include <stdint.h>

#include "cow/store.h"
#include "cow/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cow_fs cow_fs;

#define COW_FS_ROOT	 1u	      /* the root directory's inode number */
#define COW_FS_NAME_MAX	 255u	      /* bytes in one name (any but '/' and NUL) */
#define COW_FS_LINK_MAX	 4095u	      /* bytes in a symlink's target */
#define COW_FS_SIZE_MAX	 (1ull << 52) /* bytes in a file (4 KiB blocks, 2^40 of them) */
#define COW_FS_NLINK_MAX 65000u	      /* hard links to one inode */

typedef struct cow_fs_time {
	int64_t sec;
	uint32_t nsec;
} cow_fs_time;

typedef struct cow_fs_attr {
	uint64_t ino;
	uint32_t mode; /* type and permission bits, as st_mode */
	uint32_t uid, gid;
	uint64_t nlink;
	uint64_t size;	 /* bytes (a symlink: its target's length) */
	uint64_t blocks; /* 4 KiB data blocks held */
	uint64_t rdev;
	uint64_t generation; /* changes when an inode number is used again (never, today) */
	cow_fs_time atime, mtime, ctime, btime;
} cow_fs_attr;

/*
 * cow_fs_create - a new fs @name with an empty root directory whose mode
 * (permission bits; the type is forced to a directory), uid and gid come
 * from @root (NULL: 0755, owned by 0:0). Returns 0, COW_EEXIST, COW_EINVAL
 * (a bad name), COW_EREADONLY, or a store error.
 */
COW_API int cow_fs_create(cow_txn *t, const char *name, const cow_fs_attr *root);

/*
 * cow_fs_open - open fs @name (or a snapshot "NAME@SNAP", read-only) in @t.
 * The handle lives until the transaction ends. Returns 0, COW_ENOTFOUND,
 * COW_ETYPE (another kind of object), COW_ECORRUPT (no fs record).
 */
COW_API int cow_fs_open(cow_txn *t, const char *name, cow_fs **out);

/* cow_fs_getattr - @ino's attributes. -ENOENT if it does not exist. */
COW_API int cow_fs_getattr(cow_fs *f, uint64_t ino, cow_fs_attr *a);

/* cow_fs_lookup - the inode @name names in directory @dir. -ENOENT, -ENOTDIR. */
COW_API int cow_fs_lookup(cow_fs *f, uint64_t dir, const char *name, size_t nlen, cow_fs_attr *a);

/*
 * cow_fs_mknod - make @name in @dir: a regular file, directory, FIFO,
 * socket or device node, as @in->mode says (S_IFREG when the type bits are
 * 0), owned by @in->uid and @in->gid, with @in->rdev for a device. A
 * directory with the set-group-ID bit passes its group (and, to
 * directories, the bit) on, as Linux does. Times are now. The new inode's
 * attributes go to @out. -EEXIST, -ENOTDIR, -ENAMETOOLONG, -EINVAL (an
 * empty name, '/' or NUL in it, "." or "..", a bad type), -EMLINK (@dir
 * has too many subdirectories).
 */
COW_API int cow_fs_mknod(cow_fs *f, uint64_t dir, const char *name, size_t nlen,
			 const cow_fs_attr *in, cow_fs_attr *out);

/* cow_fs_symlink - a symlink @name in @dir to @target (1..COW_FS_LINK_MAX bytes). */
COW_API int cow_fs_symlink(cow_fs *f, uint64_t dir, const char *name, size_t nlen,
			   const char *target, size_t tlen, uint32_t uid, uint32_t gid,
			   cow_fs_attr *out);

/*
 * cow_fs_readlink - copy a symlink's target into @buf (at most @cap bytes,
 * not terminated); its length to *@len. -EINVAL if @ino is not a symlink.
 */
COW_API int cow_fs_readlink(cow_fs *f, uint64_t ino, char *buf, size_t cap, size_t *len);

/* cow_fs_link - a new name for @ino (not a directory: -EPERM). -EMLINK at COW_FS_NLINK_MAX. */
COW_API int cow_fs_link(cow_fs *f, uint64_t ino, uint64_t dir, const char *name, size_t nlen,
			cow_fs_attr *out);

/*
 * cow_fs_unlink - remove @name from @dir: a non-directory (@rmdir false;
 * -EISDIR for a directory) or an empty directory (@rmdir true; -ENOTDIR,
 * -ENOTEMPTY). When the inode's last link goes, it is kept as an orphan
 * until cow_fs_forget (open files keep their data); *@orphan (may be NULL)
 * says so.
 */
COW_API int cow_fs_unlink(cow_fs *f, uint64_t dir, const char *name, size_t nlen, int rmdir,
			  int *orphan);

/* Flags for cow_fs_rename (the values of renameat2's). */
#define COW_FS_RENAME_NOREPLACE 1u
#define COW_FS_RENAME_EXCHANGE	2u

/*
 * cow_fs_rename - move @name in @dir to @newname in @newdir, replacing what
 * is there as rename(2) does (a directory only by an empty directory, and
 * never into its own subtree: -EINVAL). Flags as renameat2. A replaced
 * inode's last link makes it an orphan (*@orphan, may be NULL: its number,
 * or 0).
 */
COW_API int cow_fs_rename(cow_fs *f, uint64_t dir, const char *name, size_t nlen, uint64_t newdir,
			  const char *newname, size_t newlen, unsigned flags, uint64_t *orphan);

/* What cow_fs_setattr changes. */
#define COW_FS_SET_MODE	 (1u << 0) /* permission bits only; the type stays */
#define COW_FS_SET_UID	 (1u << 1)
#define COW_FS_SET_GID	 (1u << 2)
#define COW_FS_SET_SIZE	 (1u << 3) /* truncate or extend (a hole) */
#define COW_FS_SET_ATIME (1u << 4)
#define COW_FS_SET_MTIME (1u << 5)
#define COW_FS_SET_CTIME (1u << 6) /* otherwise ctime becomes now on any change */

/*
 * cow_fs_setattr - change what @mask names to @in's values; the result to
 * @out (may be NULL). A size change frees the blocks past the new end.
 * -EISDIR (size of a directory), -EINVAL (size of a symlink or special
 * file), -EFBIG (past COW_FS_SIZE_MAX).
 */
COW_API int cow_fs_setattr(cow_fs *f, uint64_t ino, const cow_fs_attr *in, unsigned mask,
			   cow_fs_attr *out);

/*
 * cow_fs_read - read up to @len bytes at @off of regular file @ino; the
 * count (short at the end of the file, 0 past it) to *@got. Holes read as
 * zeros. -EISDIR, -EINVAL (not a regular file).
 */
COW_API int cow_fs_read(cow_fs *f, uint64_t ino, void *buf, size_t len, uint64_t off, size_t *got);

/*
 * cow_fs_write - write @len bytes at @off of regular file @ino, extending
 * it as needed; mtime and ctime become now. Blocks written as all zeros
 * become holes. Only the blocks touched are copied, also in a file that
 * shares blocks with a snapshot, a clone or a reflink. -EFBIG past
 * COW_FS_SIZE_MAX.
 */
COW_API int cow_fs_write(cow_fs *f, uint64_t ino, const void *buf, size_t len, uint64_t off);

/*
 * cow_fs_punch - make [@off, @off + @len) of @ino read as zeros and free
 * its whole blocks (fallocate's PUNCH_HOLE and ZERO_RANGE); the size does
 * not change.
 */
COW_API int cow_fs_punch(cow_fs *f, uint64_t ino, uint64_t off, uint64_t len);

/*
 * cow_fs_seek - lseek's SEEK_DATA (@hole 0) or SEEK_HOLE (@hole 1) from
 * @off: the result to *@out. -ENXIO when @off is at or past the end, or no
 * data follows it.
 */
COW_API int cow_fs_seek(cow_fs *f, uint64_t ino, uint64_t off, int hole, uint64_t *out);

/*
 * cow_fs_clone_range - make [@doff, @doff + @len) of @dst a copy of
 * [@soff, @soff + @len) of @src (copy_file_range, FICLONERANGE). Whole
 * blocks at the same offset within a block are shared, not copied: each
 * costs one tree entry and one reference count, whatever its size; the
 * unaligned edges are copied. @dst grows if the range ends past it. The two
 * may be the same file if the ranges do not overlap (-EINVAL). *@done gets
 * the bytes done (@len, or less when @src ends first).
 */
COW_API int cow_fs_clone_range(cow_fs *f, uint64_t src, uint64_t soff, uint64_t dst, uint64_t doff,
			       uint64_t len, uint64_t *done);

/*
 * cow_fs_readdir - the entries of @dir from cookie @cookie on (0 for the
 * first; "." and ".." come first), each to @fn with the cookie that resumes
 * after it. A listing resumes where it stopped whatever is added or removed
 * meanwhile. @fn returns 0 to go on, nonzero to stop (cow_fs_readdir then
 * returns 0). -ENOTDIR.
 */
typedef struct cow_fs_dirent {
	const char *name; /* not terminated */
	size_t nlen;
	uint64_t ino;
	uint32_t type; /* the S_IFMT bits of the inode's mode */
	uint64_t next; /* the cookie after this entry */
	uint64_t hash; /* entries with equal hashes share a cookie: deliver them together */
} cow_fs_dirent;
COW_API int cow_fs_readdir(cow_fs *f, uint64_t dir, uint64_t cookie,
			   int (*fn)(void *ctx, const cow_fs_dirent *e), void *ctx);

/*
 * Extended attributes. Names are 1..255 bytes, values up to 65536 bytes.
 * cow_fs_getxattr: the value's length to *@len, and the value into @buf
 * when @cap is not 0 (-ERANGE if it does not fit); -ENODATA when absent.
 * cow_fs_setxattr: @flags 0, XATTR_CREATE (1: -EEXIST if present) or
 * XATTR_REPLACE (2: -ENODATA if absent). cow_fs_listxattr: the names, each
 * NUL-terminated, as listxattr(2) returns them.
 */
COW_API int cow_fs_getxattr(cow_fs *f, uint64_t ino, const char *name, void *buf, size_t cap,
			    size_t *len);
COW_API int cow_fs_setxattr(cow_fs *f, uint64_t ino, const char *name, const void *val, size_t vlen,
			    int flags);
COW_API int cow_fs_removexattr(cow_fs *f, uint64_t ino, const char *name);
COW_API int cow_fs_listxattr(cow_fs *f, uint64_t ino, char *buf, size_t cap, size_t *len);

/*
 * cow_fs_forget - the last user of @ino let go: if it has no links left,
 * free it and its data. Returns 0 also when there was nothing to free.
 */
COW_API int cow_fs_forget(cow_fs *f, uint64_t ino);

/* cow_fs_orphans - free every orphan (what a crash left between unlink and forget). */
COW_API int cow_fs_orphans(cow_fs *f, uint64_t *freed);

typedef struct cow_fs_stats {
	uint64_t inodes;   /* in use, orphans included */
	uint64_t next_ino; /* the number the next inode gets */
} cow_fs_stats;
COW_API int cow_fs_stat(cow_fs *f, cow_fs_stats *st);

/*
 * cow_fs_diff - the paths that differ between two versions of one fs
 * (NAME, NAME@SNAP, or a clone and its origin), in the order of the
 * tree's keys: @fn gets '+' (a name added), '-' (removed) or 'M' (the
 * inode's contents, attributes or entries changed) and the path ("" for
 * the root, names joined by '/', not terminated). A rename is a '-' and a
 * '+'. Subtrees the two versions share are skipped without being read, so
 * the cost follows the change. @fn returns nonzero to stop (returned).
 * Errors: COW_ENOTFOUND, COW_ETYPE (not file systems), COW_ECORRUPT.
 */
COW_API int cow_fs_diff(cow_txn *t, const char *from, const char *to,
			int (*fn)(void *ctx, char kind, const char *path, size_t len), void *ctx);

#ifdef __cplusplus
}
#endif

#endif
