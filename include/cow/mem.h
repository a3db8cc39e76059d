/*
 * cowkit live memory: forkless snapshots, incremental checkpoints and lazy
 * restore of a running program's memory.
 *
 * A *region* is page-aligned anonymous private memory: memory the program
 * already uses (cow_mem_region_register) or memory cowkit maps for it
 * (cow_mem_region_alloc, optionally THP-backed, or cow_mem_region_alloc_at
 * an exact address). Three things can be done with a region:
 *
 *   snapshot    an image of the region at one instant, streamed into a
 *               sink while the program keeps running and writing
 *               (cow_mem_snapshot_start / _wait); several regions at one
 *               instant with one buffer (cow_mem_snapshot_start_many); a
 *               full buffer blocks, grows or aborts (opts.stall); with
 *               COW_MEM_SNAP_VIEW the instant stays readable while the
 *               snapshot runs (cow_mem_snapshot_read);
 *   checkpoint  the pages written since the previous checkpoint, delivered
 *               to a sink (cow_mem_track_start / cow_mem_checkpoint);
 *   restore     fill a region from a source, eagerly or lazily (pages on
 *               first touch, a prefetcher streams the rest).
 *
 * A *sink* receives pages: (offset in the region, bytes). It is an opaque
 * handle made from a file descriptor, a caller's buffer, callbacks, or a
 * store volume (cow_mem_sink_volume: each image a version of the volume).
 *
 * Backends (cow_mem_probe() says which one each operation uses here and why):
 *
 *   COW_MEM_UFFD_THREAD userfaultfd without SIGBUS: a write to a page not
 *                     yet copied (by the program or by a system call such as
 *                     read(2) into the region) waits in the kernel while a
 *                     cowkit thread (the snapshot's copier, the restore's
 *                     prefetcher, a tracking thread) copies the page and
 *                     lifts the protection. Works for every program: no
 *                     signal handler, system calls succeed. COW_MEM_AUTO
 *                     picks it where the process may make a userfaultfd that
 *                     sees kernel-mode faults (CAP_SYS_PTRACE,
 *                     vm.unprivileged_userfaultfd=1 or /dev/userfaultfd).
 *   COW_MEM_UFFD      userfaultfd write-protect with UFFD_FEATURE_SIGBUS: a
 *                     write to a page not yet copied raises SIGBUS in the
 *                     writing thread, whose handler copies the page and lifts
 *                     the protection of that one page. No handler thread, so
 *                     no cross-vCPU wake-up per fault. By name only: see
 *                     "In-thread backends" below.
 *   COW_MEM_UFFD_ASYNC userfaultfd WP_ASYNC + PAGEMAP_SCAN (dirty tracking
 *                     only): the kernel resolves write faults itself and
 *                     PAGEMAP_SCAN collects and re-arms the written pages.
 *   COW_MEM_MPROTECT  mprotect(PROT_READ) + a SIGSEGV handler, the fallback
 *                     where userfaultfd is missing or not permitted.
 *   COW_MEM_FORK      fork(); the child streams the image (snapshots only).
 *
 * Signals. The in-thread backends install process-wide SIGBUS and SIGSEGV
 * handlers on first use and keep them. A fault outside cowkit's regions is
 * passed to the handler that was installed before (or, if that was SIG_DFL or
 * SIG_IGN, the default action runs: the program dies as it would have). A
 * program that installs its own SIGSEGV/SIGBUS handler afterwards must chain
 * to the previous one for cowkit to work.
 *
 * In-thread backends (COW_MEM_UFFD, COW_MEM_MPROTECT), faster per fault,
 * are never chosen by COW_MEM_AUTO, because two things break them:
 *   - a thread that blocks SIGBUS (uffd) or SIGSEGV (mprotect) would be
 *     killed by its first trapped write. The calls read every thread's
 *     blocked mask when they start and refuse with COW_EOPNOTSUPP before
 *     anything is armed (cow_mem_probe_info.sig_blocked_tid names such a
 *     thread); a thread created later with the signal blocked is not seen;
 *   - a system call that writes into the region (read(2) into it) fails
 *     with EFAULT while the region is protected: the kernel cannot deliver
 *     such a fault to a signal handler. Asking for these backends by name
 *     is promising that no system call writes into the region meanwhile.
 *
 * Mapping changes (MADV_DONTNEED, MADV_FREE, munmap, mremap) while a
 * snapshot runs never yield a wrong image: the userfaultfd backends see
 * them as events, mprotect notices pages that lost their data, and the
 * snapshot fails with COW_MEM_ECHANGED unless every page they touched was
 * already copied (the fork backend is not affected). During tracking the
 * discarded pages go into the next checkpoint; during a lazy restore they
 * read as zeros, as the program asked.
 *
 * Not supported (the calls say COW_EOPNOTSUPP or document the effect):
 *   - file-backed or shared mappings, hugetlbfs, and mappings that are not
 *     readable and writable;
 *   - mprotect of the region, or fork of a child that writes it, while a
 *     snapshot, tracking or lazy restore is active.
 *
 * Threading (per region):
 *
 *   call                              | may run concurrently with
 *   ----------------------------------+-----------------------------------
 *   writes by the program's threads   | everything, except during the
 *                                     | "quiescent" calls below
 *   cow_mem_snapshot_prepare[_many]   | writes by any thread
 *   cow_mem_snapshot_instant (quiescent)| nothing else touching the region
 *   cow_mem_snapshot_start (quiescent)| nothing else touching the region
 *   cow_mem_snapshot_read[_addr]      | writes by any thread, other reads
 *                                     | (not with or after _wait)
 *   cow_mem_snapshot_wait             | writes by any thread
 *   cow_mem_track_start   (quiescent) | nothing else touching the region
 *   cow_mem_checkpoint    (quiescent) | nothing else touching the region
 *   cow_mem_restore*      (quiescent) | reads/writes once it returns (lazy)
 *
 * "Quiescent" means no thread may write the region during the call: the call
 * defines the instant of the image. Different regions are independent,
 * except that a snapshot of several regions (cow_mem_snapshot_prepare_many)
 * makes its instant quiescent for all of them.
 */
#ifndef COW_MEM_H
#define COW_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/errors.h"
#include "cow/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mechanisms; see the header comment. COW_MEM_AUTO lets cowkit choose. */
typedef enum cow_mem_backend {
	COW_MEM_AUTO = 0,
	COW_MEM_UFFD = 1,
	COW_MEM_UFFD_ASYNC = 2,
	COW_MEM_MPROTECT = 3,
	COW_MEM_FORK = 4,
	COW_MEM_EAGER = 5, /* restore only: read everything before returning */
	COW_MEM_UFFD_THREAD = 6,
} cow_mem_backend;

/*
 * The region's mapping changed (MADV_DONTNEED/MADV_FREE, munmap, mremap)
 * over pages not yet copied: the image is abandoned. Also returned by
 * cow_mem_snapshot_wait for a snapshot that was prepared but never armed.
 */
#define COW_MEM_ECHANGED  (-ECANCELED)
#define COW_MEM_ECANCELED (-ECANCELED)

/* cow_mem_backend_name - "uffd", "uffd-thread", "uffd-async", "mprotect", "fork", "eager", "auto".
 */
COW_API const char *cow_mem_backend_name(cow_mem_backend b);

/*
 * cow_mem_backend_parse - the backend a name of cow_mem_backend_name stands
 * for, into *@out. Errors: COW_EINVAL (any other string, or NULL).
 */
COW_API int cow_mem_backend_parse(const char *name, cow_mem_backend *out);

/*
 * What this kernel and process allow, and the backend each operation uses.
 * Filled by cow_mem_probe(); a plain value, no resources.
 */
typedef struct cow_mem_probe_info {
	int uffd_error;	      /* 0 if a userfaultfd could be created, else -errno */
	const char *uffd_via; /* "syscall", "syscall (user-mode only)", "/dev/userfaultfd", or "" */
	uint64_t uffd_features;	  /* UFFDIO_API feature bits the kernel offers */
	bool wp;		  /* UFFD_FEATURE_PAGEFAULT_FLAG_WP: write-protect */
	bool wp_async;		  /* UFFD_FEATURE_WP_ASYNC */
	bool wp_unpopulated;	  /* UFFD_FEATURE_WP_UNPOPULATED */
	bool sigbus;		  /* UFFD_FEATURE_SIGBUS */
	bool pagemap_scan;	  /* PAGEMAP_SCAN ioctl on /proc/self/pagemap */
	char thp[16];		  /* THP mode: "always", "madvise", "never" or "absent" */
	cow_mem_backend snapshot; /* what COW_MEM_AUTO picks for snapshots */
	cow_mem_backend track;	  /* ... for dirty tracking (COW_MEM_AUTO: none) */
	cow_mem_backend restore;  /* ... for lazy restore */
	char snapshot_why[160];	  /* one sentence each: why that backend */
	char track_why[160];
	char restore_why[160];
	bool uffd_kernel;    /* a userfaultfd that sees system calls' faults can be made */
	int sig_blocked_tid; /* a thread blocking SIGBUS or SIGSEGV now, or 0 */
} cow_mem_probe_info;

/*
 * cow_mem_probe - find out what live-memory mechanisms work here.
 *
 * @out: filled on success. Never fails for lack of a feature: missing
 * features are reported in @out and the fallback is named with a reason.
 * Environment: COW_MEM_BACKEND=uffd|mprotect|fork forces the snapshot
 * backend, and "mprotect" also forces the dirty-tracking fallback (for
 * testing fallbacks on a capable kernel); the probe reports the forced choice.
 * COW_MEM_MASK_FEATURES=0xN hides userfaultfd feature bits (UFFD_FEATURE_*)
 * from cowkit, to exercise the fallbacks of older kernels; read once.
 *
 * Returns 0, or COW_EINVAL if @out is NULL. Any thread.
 */
COW_API int cow_mem_probe(cow_mem_probe_info *out);

/* ---- regions ---- */

typedef struct cow_mem_region cow_mem_region;

/* Flags for cow_mem_region_alloc. */
#define COW_MEM_THP 0x1u /* back the region with transparent huge pages (madvise) */

/*
 * cow_mem_region_alloc - map a fresh anonymous private region for the caller.
 *
 * @size: bytes, rounded up to the page size (to 2 MiB with COW_MEM_THP, and
 *        the mapping is 2 MiB-aligned so the kernel can use huge pages).
 * @flags: 0 or COW_MEM_THP.
 * @out: the new region; free with cow_mem_region_destroy, which unmaps it.
 *
 * The memory reads as zeros and is not populated. Returns 0, COW_EINVAL
 * (size 0, unknown flag, NULL out), COW_ENOMEM. Any thread.
 */
COW_API int cow_mem_region_alloc(size_t size, unsigned flags, cow_mem_region **out);

/*
 * cow_mem_region_alloc_at - map a fresh region at exactly @addr, for a
 * restore at the address an image was taken from (a pointer-rich heap whose
 * pointers are absolute: see cow_mem_restore_start).
 *
 * @addr: page-aligned (2 MiB-aligned with COW_MEM_THP).
 * @size, @flags, @out: as cow_mem_region_alloc; @size is rounded up the same
 *        way, and the whole rounded range must be free.
 *
 * Never replaces an existing mapping (MAP_FIXED_NOREPLACE). Returns 0,
 * COW_EEXIST (part of the range is mapped already; also on kernels before
 * 4.17, which ignore the flag: they return another address, which is
 * unmapped again), COW_EINVAL (NULL, unaligned, size 0 or past the end of
 * the address space, unknown flag), COW_ENOMEM, -errno. Any thread.
 */
COW_API int cow_mem_region_alloc_at(void *addr, size_t size, unsigned flags, cow_mem_region **out);

/*
 * cow_mem_region_register - adopt memory the program already uses.
 *
 * @addr, @size: page-aligned, covered entirely by anonymous private
 *        read-write mappings (malloc'd arenas of large size, mmap'd memory).
 * @out: the handle; cow_mem_region_destroy releases the handle only, never
 *        the memory, which stays the caller's.
 *
 * Returns 0, COW_EINVAL (unaligned, empty, NULL), COW_EOPNOTSUPP (part of the
 * range is unmapped, file-backed, shared or not read-write), COW_ENOMEM.
 */
COW_API int cow_mem_region_register(void *addr, size_t size, cow_mem_region **out);

/*
 * cow_mem_region_destroy - release a region handle. Accepts NULL.
 *
 * Stops dirty tracking if on. Must not be called while a snapshot of the
 * region is in flight (wait for it first). Unmaps the memory only if cowkit
 * allocated it.
 */
COW_API void cow_mem_region_destroy(cow_mem_region *r);

/* Address and size of a region. Valid for the handle's lifetime. */
COW_API void *cow_mem_region_addr(const cow_mem_region *r);
COW_API size_t cow_mem_region_size(const cow_mem_region *r);

/* ---- sinks: where images and checkpoints go ---- */

typedef struct cow_mem_sink cow_mem_sink;

/* Kinds of data a sink receives (cow_mem_sink_ops.begin). */
typedef enum cow_mem_image_kind {
	COW_MEM_IMAGE_FULL = 1,	 /* every page of the region follows */
	COW_MEM_IMAGE_DELTA = 2, /* only pages written since the previous checkpoint */
} cow_mem_image_kind;

/*
 * Callbacks for a custom sink. All are called from one thread at a time
 * (a cowkit copier thread or the caller's thread), never from a signal
 * handler. @data points into the region or into cowkit's buffer and is
 * valid only during the call.
 *
 * A callback must not wait for a thread that writes the region: during a
 * live snapshot such a thread may itself be waiting for the copier.
 *
 * begin: a new image of @size bytes starts (may be NULL).
 * write: @len bytes at region offset @off; page-aligned; each page at most
 *        once per image, in no particular order. Return 0 or a negative code
 *        to abort the image (the code is returned by the waiting call).
 * end:   the image is complete (@status 0) or abandoned (@status < 0). May
 *        be NULL. For a delta, "complete" means the sink now holds the new
 *        version.
 */
typedef struct cow_mem_sink_ops {
	int (*begin)(void *ctx, cow_mem_image_kind kind, uint64_t size);
	int (*write)(void *ctx, uint64_t off, const void *data, size_t len);
	int (*end)(void *ctx, int status);
} cow_mem_sink_ops;

/*
 * cow_mem_sink_fd - a sink that pwrite()s each page at @base + offset of @fd.
 * The fd stays the caller's (not closed). With the fork backend the child
 * writes to it directly. Returns 0, COW_EINVAL, COW_ENOMEM.
 */
COW_API int cow_mem_sink_fd(int fd, uint64_t base, cow_mem_sink **out);

/*
 * cow_mem_sink_buffer - a sink that copies pages into @buf at their offset.
 * @len must be at least the region size; the buffer stays the caller's and
 * must outlive the sink. Returns 0, COW_EINVAL, COW_ENOMEM.
 */
COW_API int cow_mem_sink_buffer(void *buf, size_t len, cow_mem_sink **out);

/*
 * cow_mem_sink_callbacks - a sink calling @ops with @ctx. @ops is copied.
 * Returns 0, COW_EINVAL (NULL ops or ops->write), COW_ENOMEM.
 */
COW_API int cow_mem_sink_callbacks(const cow_mem_sink_ops *ops, void *ctx, cow_mem_sink **out);

/*
 * cow_mem_sink_volume - a sink that makes every image a version of volume
 * @name in store @s: begin opens a write transaction (creating the volume,
 * or resizing it to the region), pages become volume writes (all-zero pages
 * stay holes), and a complete image commits with a snapshot
 * "@name@ckptN" (N = 1, 2, ... after the newest existing one). A delta image
 * only rewrites the pages it carries, so each checkpoint is a full version
 * sharing every unchanged block with the previous one: any of them restores
 * alone (cow_mem_restore_volume), and they can be destroyed in any order.
 * @s must stay open while the sink lives. Returns 0, COW_EINVAL, COW_ENOMEM.
 */
typedef struct cow_store cow_store;
COW_API int cow_mem_sink_volume(cow_store *s, const char *name, cow_mem_sink **out);

/*
 * cow_mem_sink_volume_last - the snapshot the last complete image became
 * ("NAME@ckptN"), or "" before any. Static storage inside the sink: valid
 * until the next image or cow_mem_sink_destroy.
 */
COW_API const char *cow_mem_sink_volume_last(const cow_mem_sink *sink);

/* cow_mem_sink_destroy - free a sink (not the fd/buffer behind it). Accepts NULL. */
COW_API void cow_mem_sink_destroy(cow_mem_sink *s);

/* ---- forkless snapshots ---- */

typedef struct cow_mem_snap cow_mem_snap;

/*
 * What a live snapshot does when a trapped write finds its buffer full
 * (cow_mem_snap_opts.stall). The fork backend has no buffer: it ignores
 * the policy (its extra memory is whatever the writes un-share).
 */
typedef enum cow_mem_stall {
	/* The writer waits until the copier has handed buffered pages to the
	   sink: extra memory stays within opts.buffer, writers slow to the
	   sink's pace. The default. */
	COW_MEM_STALL_BLOCK = 0,
	/* The buffer grows, by its initial size at a time, up to
	   opts.buffer_max; past that, writers wait as with BLOCK. Extra memory
	   stays within opts.buffer_max. */
	COW_MEM_STALL_GROW = 1,
	/* The snapshot fails: cow_mem_snapshot_wait returns COW_EFULL, the
	   sink gets end(COW_EFULL), no writer waits for the buffer, and the
	   regions are unprotected as soon as the copier sees the failure (a
	   trapped writer lifts its own page at once). Never reported as
	   success. For a program that would rather lose this snapshot than
	   slow down. */
	COW_MEM_STALL_ABORT = 2,
} cow_mem_stall;

typedef struct cow_mem_snap_opts {
	cow_mem_backend backend; /* COW_MEM_AUTO (default), _UFFD_THREAD, _UFFD, _MPROTECT, _FORK */
	size_t buffer;		 /* bytes for pages copied ahead of writes; 0 = 64 MiB */
	unsigned threads;	 /* threads write-protecting at the instant; 0 = online CPUs */
	unsigned fault_pages;	 /* pages a trapped write copies: its aligned block, a power
				    of two up to 64 (rounded down); 0 = 4. More pages per
				    trap: fewer traps for scattered writers, each one longer */
	/*
	 * Fields below were added later; zero means the old behaviour. Source
	 * compatible (designated initializers zero them); a caller built
	 * against the older header must be rebuilt, since the struct carries
	 * no size.
	 */
	cow_mem_stall stall; /* when the buffer is full: COW_MEM_STALL_BLOCK (default) */
	size_t buffer_max;   /* COW_MEM_STALL_GROW: the most the buffer may grow to;
				0 = 4 x buffer; less than buffer: no growth */
	unsigned flags;	     /* 0 or COW_MEM_SNAP_VIEW */
} cow_mem_snap_opts;

/*
 * opts.flags: keep the instant readable (cow_mem_snapshot_read) until
 * cow_mem_snapshot_wait. Pages stay write-protected after they are
 * streamed, and each page's first write after the instant copies its
 * pre-image into a buffer slot that is kept until the wait; so the view
 * costs what fork's copy-on-write costs (one page per page written, held
 * until the end) plus a trap per first write, and that memory counts
 * against the buffer: under COW_MEM_STALL_BLOCK a writer that finds it
 * full waits until cow_mem_snapshot_wait ends the view (call it from a
 * thread that does not write the regions); GROW grows up to buffer_max;
 * ABORT fails the snapshot with COW_EFULL. Bookkeeping besides: 4 bytes
 * per page and 1 per buffer slot. stats.faults counts these traps too. In-
 * thread and handler-thread backends only: with COW_MEM_FORK (asked for,
 * or what COW_MEM_AUTO picks here) the prepare returns COW_EOPNOTSUPP.
 */
#define COW_MEM_SNAP_VIEW 0x1u

typedef struct cow_mem_snap_stats {
	cow_mem_backend backend;  /* the one that ran */
	uint64_t prepare_ns;	  /* from prepare to the instant (buffer, threads, registration) */
	uint64_t pause_ns;	  /* time inside cow_mem_snapshot_instant: write-protect or
				     fork(); what writers see can be longer (a thread must be
				     scheduled again), see bench/mem_bench.c "gap" */
	uint64_t total_ns;	  /* start to image complete */
	uint64_t pages;		  /* pages delivered to the sink */
	uint64_t faults;	  /* writes trapped before their page was copied */
	uint64_t fault_median_ns; /* median time spent in a fault (sampled), 0 if none */
	uint64_t stalls;	  /* faults that waited for buffer space */
	uint64_t retraps;	  /* traps on pages already copied (protection not yet lifted) */
	uint64_t waits;		  /* traps that waited for the copier to finish copying a page */
	uint64_t extra_peak;	  /* peak extra bytes: buffer slots in use plus the copier's
				     stage (in-thread backends, <= opts.buffer, or
				     <= opts.buffer_max with COW_MEM_STALL_GROW), or the
				     fork child's Private_Dirty at exit (fork) */
	/* Added later, like the last opts fields: rebuild callers of older headers. */
	uint64_t grows;		  /* times the buffer grew (COW_MEM_STALL_GROW) */
	uint64_t buffer_bytes;	  /* the buffer at the end, stage included (0: fork) */
} cow_mem_snap_stats;

/*
 * cow_mem_snapshot_prepare - get ready to take an image of @r, without
 * taking it: claims the region, begins the sink, maps and faults in the
 * buffer, registers the region with userfaultfd and starts the copier.
 * Writers may keep writing during this call and until the instant.
 *
 * Same parameters, errors and guarantees on failure as
 * cow_mem_snapshot_start. Finish with cow_mem_snapshot_instant, then
 * cow_mem_snapshot_wait; a prepared snapshot that is never armed is
 * released by cow_mem_snapshot_wait (which returns COW_MEM_ECANCELED).
 */
COW_API int cow_mem_snapshot_prepare(cow_mem_region *r, cow_mem_sink *sink,
				     const cow_mem_snap_opts *opts, cow_mem_snap **out);

/*
 * cow_mem_snapshot_prepare_many - prepare one image of @n regions at one
 * instant: @rs[i] goes to @sinks[i] (a FULL image of that region, offsets
 * in that region). One snapshot: one buffer (opts.buffer is shared by all
 * regions), one copier thread, one pause (cow_mem_snapshot_instant protects
 * every region, or forks once), one cow_mem_snapshot_wait, whose stats
 * count every region (pages is the sum). The image is consistent across
 * regions: each holds its content at the same instant.
 *
 * @rs: @n >= 1 distinct, non-overlapping regions, in any order. No limit
 *      on @n besides memory (and the kernel's vm.max_map_count, since the
 *      protection may split mappings).
 * @sinks: @n distinct sinks; each stays alive until the wait returns.
 *
 * If any region cannot be claimed (COW_EBUSY) or any sink's begin fails,
 * nothing is armed: the regions already claimed are released and the
 * sinks already begun get end(error). Errors: as cow_mem_snapshot_prepare,
 * plus COW_EINVAL for @n == 0, a NULL entry, a region given twice or
 * overlapping another, or a sink given twice. A sink error or a mapping
 * change in any region fails the whole snapshot (every sink gets
 * end(error)).
 */
COW_API int cow_mem_snapshot_prepare_many(cow_mem_region **rs, size_t n, cow_mem_sink **sinks,
					  const cow_mem_snap_opts *opts, cow_mem_snap **out);

/* cow_mem_snapshot_start_many - prepare_many + instant, as cow_mem_snapshot_start. */
COW_API int cow_mem_snapshot_start_many(cow_mem_region **rs, size_t n, cow_mem_sink **sinks,
					const cow_mem_snap_opts *opts, cow_mem_snap **out);

/*
 * cow_mem_snapshot_instant - the instant of a prepared snapshot: protect
 * the region (or fork). Quiescent: no thread may write the region during
 * the call; this is the whole pause. Returns 0, COW_EINVAL (NULL, or called
 * twice), -errno (protection or fork failed), COW_MEM_ECHANGED. On failure
 * nothing stays protected; cow_mem_snapshot_wait still frees @s and
 * returns the same code.
 */
COW_API int cow_mem_snapshot_instant(cow_mem_snap *s);

/*
 * cow_mem_snapshot_start - prepare and take the image of @r at this instant.
 *
 * @r: the region; no thread may write it during this call (the pause).
 *     The pause is the write-protection of the whole region (userfaultfd,
 *     split over opts.threads threads; mprotect) or fork() itself. Setup
 *     before the pause (buffer, copier thread) is not part of it.
 * @sink: receives the image (a FULL image: every page exactly once); must
 *        stay alive until cow_mem_snapshot_wait returns.
 * @opts: NULL for defaults.
 * @out: the in-flight snapshot; finish it with cow_mem_snapshot_wait.
 *
 * Returns after the region is protected (in-thread backends) or forked
 * (fork backend); the program may then write freely: a write to a page not
 * yet copied waits until that page is copied (into the buffer when the
 * writer gets there first). When the buffer is full, opts.stall decides:
 * writers wait for the copier to drain it (extra memory stays within
 * opts.buffer), the buffer grows, or the snapshot fails (cow_mem_stall).
 *
 * Returns 0, COW_EINVAL, COW_EBUSY (a snapshot or tracking is active on @r),
 * COW_ENOMEM, COW_EOPNOTSUPP (the backend asked for cannot run here, or a
 * thread blocks the signal an in-thread backend needs), COW_EPERM
 * (COW_MEM_UFFD_THREAD asked for, but this process may only make
 * user-mode-only userfaultfds), -errno from the kernel. On failure nothing is protected and
 * the sink got at most begin and end(error), no data. Any thread, for
 * distinct regions concurrently.
 *
 * Memory besides the buffer: one byte of state per page of the region
 * (256 KiB per GiB), and the buffer is faulted in during setup so trapped
 * writers do not pay first-touch faults.
 */
COW_API int cow_mem_snapshot_start(cow_mem_region *r, cow_mem_sink *sink,
				   const cow_mem_snap_opts *opts, cow_mem_snap **out);

/*
 * cow_mem_snapshot_wait - wait until the image is complete, then free @s.
 *
 * @stats: filled if not NULL (also on failure, as far as known).
 * Returns 0, or the first error: a sink write's code, -errno of the fork
 * child or of I/O, COW_MEM_ECHANGED (the mapping changed under pages not
 * yet copied), COW_EFULL (the buffer was full under COW_MEM_STALL_ABORT).
 * The region is unprotected on return either way.
 * Call once, from any thread.
 */
COW_API int cow_mem_snapshot_wait(cow_mem_snap *s, cow_mem_snap_stats *stats);

/*
 * cow_mem_snapshot_read - copy @len bytes at offset @off of the snapshot's
 * (first) region, as they were at the instant, into @dst, while the
 * snapshot runs and the program keeps writing: for a serializer that
 * follows pointers instead of receiving raw pages.
 *
 * Needs opts.flags COW_MEM_SNAP_VIEW. Guarantee: between the return of
 * cow_mem_snapshot_instant (or _start) and the call of cow_mem_snapshot_wait,
 * every byte copied equals the byte at that address at the instant,
 * whatever the program wrote since, and equals the byte the sink receives.
 * A read never waits for a writer or for the buffer: it copies from the
 * region where the page has not been written since the instant (the page
 * is still protected, and the read checks it stayed so), else from the
 * kept pre-image. @dst must not lie in a snapshotted region.
 *
 * For several regions, @off is in rs[0]; cow_mem_snapshot_read_addr takes
 * an address in any of them. A range must lie inside one region.
 *
 * Discards: if the program discards (MADV_DONTNEED, MADV_FREE) or unmaps a
 * page it has not written since the instant, that page's pre-image is gone
 * and the snapshot fails with COW_MEM_ECHANGED; a read that raced with the
 * discard may have returned zeros before the failure was known. So what a
 * serializer built from reads is valid exactly when cow_mem_snapshot_wait
 * returns 0, as for the image.
 *
 * Returns 0, COW_EINVAL (NULL, no VIEW flag, before the instant or once
 * cow_mem_snapshot_wait began, range outside the region), or the error
 * that failed the snapshot so far (COW_EFULL, COW_MEM_ECHANGED, a sink's
 * error). Any threads, concurrently with each other and with writers;
 * never concurrently with or after cow_mem_snapshot_wait.
 */
COW_API int cow_mem_snapshot_read(cow_mem_snap *s, size_t off, void *dst, size_t len);

/* cow_mem_snapshot_read_addr - cow_mem_snapshot_read at address @addr of any snapshotted region. */
COW_API int cow_mem_snapshot_read_addr(cow_mem_snap *s, const void *addr, void *dst, size_t len);

/* cow_mem_snapshot - start + wait. */
COW_API int cow_mem_snapshot(cow_mem_region *r, cow_mem_sink *sink, const cow_mem_snap_opts *opts,
			     cow_mem_snap_stats *stats);

/* ---- dirty tracking and incremental checkpoints ---- */

typedef struct cow_mem_ckpt_stats {
	cow_mem_backend backend; /* COW_MEM_UFFD_ASYNC, _UFFD or _MPROTECT */
	uint64_t pages;		 /* pages delivered */
	uint64_t runs;		 /* contiguous runs delivered */
	uint64_t scan_ns;	 /* collecting and re-arming the dirty set */
	uint64_t total_ns;	 /* the whole call */
	bool full;		 /* this checkpoint delivered every page */
} cow_mem_ckpt_stats;

/*
 * cow_mem_track_start - begin tracking writes to @r.
 *
 * @backend: COW_MEM_AUTO, COW_MEM_UFFD_ASYNC, COW_MEM_UFFD or COW_MEM_MPROTECT.
 * Quiescent. The next cow_mem_checkpoint delivers every page (a FULL image);
 * later ones deliver the pages written since the previous one (DELTA).
 * Returns 0, COW_EINVAL, COW_EBUSY (already tracking or a snapshot is in
 * flight), COW_EOPNOTSUPP, COW_ENOMEM, -errno.
 */
COW_API int cow_mem_track_start(cow_mem_region *r, cow_mem_backend backend);

/*
 * cow_mem_checkpoint - deliver the pages written since the previous
 * checkpoint (all pages the first time) to @sink and re-arm tracking.
 *
 * Quiescent: the pages are copied during the call, so the pause is
 * proportional to the number of dirty pages. Returns 0, COW_EINVAL (not
 * tracking), a sink's error (tracking then stays armed and the next
 * checkpoint is FULL again, so nothing is lost), -errno.
 */
COW_API int cow_mem_checkpoint(cow_mem_region *r, cow_mem_sink *sink, cow_mem_ckpt_stats *stats);

/* cow_mem_track_stop - stop tracking; no-op if not tracking. Quiescent. */
COW_API void cow_mem_track_stop(cow_mem_region *r);

/* ---- restore ---- */

typedef struct cow_mem_restore cow_mem_restore;

typedef struct cow_mem_restore_stats {
	cow_mem_backend backend; /* COW_MEM_UFFD (lazy) or COW_MEM_EAGER */
	uint64_t setup_ns;	 /* inside cow_mem_restore_start */
	uint64_t total_ns;	 /* until every page was present */
	uint64_t faults;	 /* first touches served in the touching thread */
	uint64_t first_fault_ns; /* the first of them */
	uint64_t zero_chunks;	 /* chunks left as holes (zero page) */
	uint64_t bytes;		 /* bytes copied in */
} cow_mem_restore_stats;

/*
 * cow_mem_restore_start - fill @r from @src (@len bytes, the image).
 *
 * @r: a region cowkit allocated and nobody has touched yet (lazy restore
 *     needs its pages missing); for COW_MEM_EAGER any region. An image
 *     holding absolute pointers (a heap of linked structures) restores at
 *     the address it was taken from into a region of
 *     cow_mem_region_alloc_at(that address, ...); the image does not carry
 *     the address, the caller keeps it (cow_mem_region_addr at the snapshot).
 * @src: the image, @len bytes, a multiple of 4096 (the rest of the region
 *     reads as zeros); must stay valid and unchanged until cow_mem_restore_wait
 *     returns. A file can be used by mmap'ing it (PROT_READ, MAP_PRIVATE).
 * @backend: COW_MEM_AUTO (lazy where userfaultfd allows, else eager),
 *     COW_MEM_UFFD (lazy) or COW_MEM_EAGER.
 * @out: handle; finish with cow_mem_restore_wait.
 *
 * Lazy: returns at once; a thread touching a missing page gets it (and its
 * 64 KiB neighbourhood) in its own signal handler; a prefetcher thread fills
 * the rest in 2 MiB batches. All-zero chunks stay holes (the zero page).
 * Eager: copies everything before returning.
 *
 * Returns 0, COW_EINVAL (@len > region size, NULL), COW_EBUSY,
 * COW_EOPNOTSUPP (lazy forced but unavailable), COW_ENOMEM, -errno.
 */
COW_API int cow_mem_restore_start(cow_mem_region *r, const void *src, size_t len,
				  cow_mem_backend backend, cow_mem_restore **out);

/*
 * cow_mem_restore_volume - restore @r from version @snapshot ("NAME@ckptN",
 * or any volume) of store @s: the volume is read into a private buffer, then
 * restored as cow_mem_restore_start does (lazily where possible). The buffer
 * is freed by cow_mem_restore_wait. Returns the errors of both, and those of
 * cow_vol_open/cow_vol_pread (COW_ENOTFOUND, COW_ECORRUPT, ...).
 */
COW_API int cow_mem_restore_volume(cow_mem_region *r, cow_store *s, const char *snapshot,
				   cow_mem_backend backend, cow_mem_restore **out);

/*
 * cow_mem_restore_wait - wait until every page is present, then free @h.
 * Returns 0 or -errno. @stats filled if not NULL.
 */
COW_API int cow_mem_restore_wait(cow_mem_restore *h, cow_mem_restore_stats *stats);

#ifdef __cplusplus
}
#endif

#endif
