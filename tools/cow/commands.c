/*
 * The command table: every command of cow, its positional arguments, its
 * options (name, letter, kind of argument, help) and its handler. The
 * parser, `cow help` and the man page's SYNOPSIS and COMMANDS sections
 * (`cow help --man`, checked against docs/cow.1 by a test) all read this
 * one table. Add a command here and in the cmd_*.c file named for it.
 *
 * cow-tour compiles this file too (COW_TOUR_PROGRAM): the tour and the
 * memory demonstrations have their handlers there, and cow execs it for them.
 */
#include <limits.h>
#include <stddef.h>

#include "cli.h"

#ifdef COW_TOUR_PROGRAM
#define IN_COW(fn)  NULL
#define IN_TOUR(fn) fn
#else
#define IN_COW(fn)  fn
#define IN_TOUR(fn) NULL
#endif

static const struct cli_opt json_only[] = {
	{"json", 0, CLI_FLAG, NULL, "machine-readable output (JSON)"},
	{NULL},
};

static const struct cli_opt fsck_opts[] = {
	{"repair", 0, CLI_FLAG, NULL, "first rebuild the space map from the trees and commit it"},
	{"json", 0, CLI_FLAG, NULL, "machine-readable output (JSON)"},
	{NULL},
};

static const struct cli_opt compact_opts[] = {
	{"step", 0, CLI_BYTES, "SIZE", "move at most SIZE per commit (default 4M)", 4096},
	{"json", 0, CLI_FLAG, NULL, "machine-readable output (JSON)"},
	{NULL},
};

static const struct cli_opt backup_opts[] = {
	{"compact", 0, CLI_FLAG, NULL, "then compact the copy: a dense file, not a sparse one"},
	{"json", 0, CLI_FLAG, NULL, "machine-readable output (JSON)"},
	{NULL},
};

static const struct cli_opt serve_opts[] = {
	{"socket", 0, CLI_STRING, "PATH", "listen on a Unix socket at PATH"},
	{"port", 0, CLI_COUNT, "N", "listen on 127.0.0.1 port N", 1, 65535},
	{"readonly", 'r', CLI_FLAG, NULL, "refuse writes"},
	{"cache", 0, CLI_BYTES, "SIZE", "writes cached between flushes (default 16M)", 4096,
	 UINT64_C(1) << 34},
	{"verbose", 'v', CLI_FLAG, NULL, "nbdkit's debug messages"},
	{NULL},
};

static const struct cli_opt mount_opts[] = {
	{"options", 'o', CLI_STRING, "OPTS",
	 "mount options: ro, allow_other, ... (comma-separated)"},
	{"foreground", 'f', CLI_FLAG, NULL, "stay in the foreground (else a daemon)"},
	{"commit", 0, CLI_COUNT, "MS", "commit changes at most MS old (default 1000)", 1, 3600000},
	{NULL},
};

static const struct cli_opt scan_opts[] = {
	{"prefix", 0, CLI_STRING, "P", "only keys that start with P"},
	{"from", 0, CLI_STRING, "KEY", "start at KEY (inclusive)"},
	{"to", 0, CLI_STRING, "KEY", "stop after KEY (inclusive)"},
	{"reverse", 0, CLI_FLAG, NULL, "in descending key order"},
	{"keys-only", 0, CLI_FLAG, NULL, "print keys, not values"},
	{"limit", 0, CLI_COUNT, "N", "at most N entries"},
	{"json", 0, CLI_FLAG, NULL, "machine-readable output (JSON)"},
	{NULL},
};

static const struct cli_opt list_opts[] = {
	{"type", 't', CLI_CHOICE, "TYPE", "only maps, volumes or snapshots", 0, 0, 0,
	 "map|volume|snapshot"},
	{"json", 0, CLI_FLAG, NULL, "machine-readable output (JSON)"},
	{NULL},
};

static const struct cli_opt diff_opts[] = {
	{"keys-only", 0, CLI_FLAG, NULL, "maps: print the changed keys, not their values"},
	{"json", 0, CLI_FLAG, NULL, "machine-readable output (JSON)"},
	{NULL},
};

static const struct cli_opt destroy_opts[] = {
	{"recursive", 'r', CLI_FLAG, NULL, "also destroy the object's snapshots"},
	{NULL},
};

static const struct cli_opt send_opts[] = {
	{"incremental", 'i', CLI_STRING, "NAME@BASE", "send only the change since snapshot BASE"},
	{NULL},
};

static const struct cli_opt share_opts[] = {
	{"children", 0, CLI_FLAG, NULL, "add every descendant of the given PIDs"},
	{"json", 0, CLI_FLAG, NULL, "machine-readable output (schema in docs/share.md)"},
	{"maps", 0, CLI_FLAG, NULL, "also list the mappings with the most private dirty memory"},
	{"smaps-only", 0, CLI_FLAG, NULL, "do not match frames even when permitted"},
	{"watch", 0, CLI_FIXED, "SECONDS", "measure every SECONDS and print un-share rates", 1,
	 86400ull * 1000000000, 9, "seconds, more than 0 and at most 86400"},
	{"count", 0, CLI_COUNT, "N", "with --watch: stop after N rounds", 1, LONG_MAX},
	{NULL},
};

static const struct cli_opt mem_snapshot_opts[] = {
	{"size", 0, CLI_BYTES, "SIZE", "region size (default 256M)", 1u << 20},
	{"thp", 0, CLI_FLAG, NULL, "back the region with transparent huge pages"},
	{"buffer", 0, CLI_BYTES, "SIZE", "snapshot copy buffer (default 64M)", 4096},
	{"backend", 0, CLI_CHOICE, "B",
	 "snapshot with this backend only (default: the best here, then fork)", 0, 0, 0,
	 "auto|uffd-thread|uffd|uffd-async|mprotect|fork"},
	{"no-verify", 0, CLI_FLAG, NULL, "do not keep a reference copy to compare the image with"},
	{"json", 0, CLI_FLAG, NULL, "machine-readable output (JSON)"},
	{NULL},
};

static const struct cli_opt mem_checkpoint_opts[] = {
	{"size", 0, CLI_BYTES, "SIZE", "region size (default 1G)", 1u << 20},
	{"dirty", 0, CLI_FIXED, "PERCENT", "pages written between the checkpoints (default 1)", 0,
	 100000000, 6, "a percentage from 0 to 100"},
	{"backend", 0, CLI_CHOICE, "B", "dirty tracking backend (default auto)", 0, 0, 0,
	 "auto|uffd-thread|uffd|uffd-async|mprotect"},
	{NULL},
};

static const struct cli_opt mem_restore_opts[] = {
	{"size", 0, CLI_BYTES, "SIZE", "image size (default 1G)", 1u << 20},
	{NULL},
};

static const struct cli_opt tour_opts[] = {
	{"quick", 0, CLI_FLAG, NULL, "small sizes: seconds, not minutes"},
	{"size", 0, CLI_BYTES, "SIZE", "working set of the data-heavy steps (default 256M)",
	 1u << 20},
	{"dir", 0, CLI_STRING, "DIR", "scratch folder (default: a new one, removed afterwards)"},
	{"step", 0, CLI_COUNT, "N", "run only step N", 1, LONG_MAX},
	{NULL},
};

static const char sizes_help[] =
	"SIZE, OFFSET and LENGTH are whole numbers of bytes in decimal, optionally\n"
	"followed by K, M, G, T, P or E (powers of 1024; KiB, MiB, ... say the same)\n"
	"or kB, MB, GB, TB, PB, EB (powers of 1000). 4K is 4096, 4kB is 4000.\n"
	"No fractions, exponents, signs or hex; at most 2^64-1.\n";

const struct cli_cmd cli_commands[] = {
	{"init", "[STORE]", 0, 1, NULL, IN_COW(cmd_init), "create a new, empty store"},
	{"stat", "", 0, 0, json_only, IN_COW(cmd_stat),
	 "generation, file size, used/pending/free space, readers, what trim would give back"},
	{"trim", "", 0, 0, json_only, IN_COW(cmd_trim),
	 "give the space of free blocks inside the file back to the file system",
	 "Commits do it themselves for runs of 64 KiB and more once the file takes\n"
	 "64 MiB (and an eighth of it) more on disk than its blocks need,\n"
	 "and cut a free tail of the file off when it is 1 MiB and a sixteenth of the store.\n"},
	{"compact", "", 0, 0, compact_opts, IN_COW(cmd_compact),
	 "move live blocks down so the file shrinks to about what they need (online)",
	 "Works in steps of at most --step bytes, each its own commit, so writers in\n"
	 "other processes commit between them and readers keep their generations;\n"
	 "objects, snapshots and clones keep their sharing. A kill or power loss\n"
	 "loses nothing: run it again to go on. Space a reader still sees is given\n"
	 "back only after it ends (\"waiting\" in the output).\n"},
	{"map create", "NAME", 1, 1, NULL, IN_COW(cmd_map_create), "create an empty map"},
	{"map drop", "NAME", 1, 1, NULL, IN_COW(cmd_map_drop), "delete a map and its entries"},
	{"put", "NAME KEY VALUE", 3, 3, NULL, IN_COW(cmd_put),
	 "set KEY to VALUE in map NAME ('-' reads VALUE from stdin)"},
	{"get", "NAME KEY", 2, 2, json_only, IN_COW(cmd_get),
	 "print KEY's value (exit 1 if missing)"},
	{"del", "NAME KEY", 2, 2, NULL, IN_COW(cmd_del), "delete KEY (exit 1 if missing)"},
	{"scan", "NAME", 1, 1, scan_opts, IN_COW(cmd_scan),
	 "print KEY<TAB>VALUE lines in key order",
	 "Keys and values are escaped: \\t, \\n, \\\\, and \\xHH for control bytes and\n"
	 "bytes that are not UTF-8; KEY arguments (get, put, del, --from, ...) take\n"
	 "the same form, so any key scan prints can be named.\n"},
	{"load", "NAME < FILE", 1, 1, NULL, IN_COW(cmd_load),
	 "load KEY<TAB>VALUE lines in one transaction",
	 "The format is scan's; all lines go in one transaction, or none do.\n"},
	{"vol create", "NAME SIZE", 2, 2, NULL, IN_COW(cmd_vol_create),
	 "a new sparse volume of SIZE bytes (64M, 16T, ...)", sizes_help},
	{"vol write", "NAME OFFSET < DATA", 2, 2, NULL, IN_COW(cmd_vol_write),
	 "write stdin at OFFSET, in one transaction"},
	{"vol read", "NAME OFFSET LENGTH > DATA", 3, 3, NULL, IN_COW(cmd_vol_read),
	 "write LENGTH bytes to stdout (holes are zeros)"},
	{"vol resize", "NAME SIZE", 2, 2, NULL, IN_COW(cmd_vol_resize),
	 "grow a volume with zeros or shrink it"},
	{"import", "FILE NAME", 2, 2, json_only, IN_COW(cmd_import),
	 "a new volume holding a file's bytes (zeros stay holes)"},
	{"export", "NAME FILE", 2, 2, json_only, IN_COW(cmd_export),
	 "write a volume or snapshot to a file; reflinks (btrfs, XFS) instead of copies where "
	 "possible"},
	{"snapshot", "NAME@SNAP | @SNAP", 1, 1, NULL, IN_COW(cmd_snapshot),
	 "a read-only version of one object, or of every object at once (O(1))"},
	{"clone", "NAME@SNAP NEWNAME", 2, 2, NULL, IN_COW(cmd_clone),
	 "a writable copy of a snapshot (O(1))"},
	{"list", "", 0, 0, list_opts, IN_COW(cmd_list),
	 "objects and snapshots: size, referenced, exclusive, created, origin",
	 "REFER counts every block the version references; EXCL only those no other\n"
	 "version shares, i.e. what destroying it would free. CREATED is the\n"
	 "generation that made it.\n"},
	{"diff", "NAME@A NAME@B", 2, 2, diff_opts, IN_COW(cmd_diff),
	 "what changed between two versions (+/-/M lines; volumes: offset, length)",
	 "Either side may be NAME alone for the live object. For a file system the\n"
	 "lines are paths: + added, - removed (a rename is both), M changed.\n"},
	{"rollback", "NAME@SNAP", 1, 1, NULL, IN_COW(cmd_rollback),
	 "make NAME equal to its snapshot again"},
	{"destroy", "NAME[@SNAP]", 1, 1, destroy_opts, IN_COW(cmd_destroy),
	 "destroy an object (-r: with its snapshots) or a snapshot"},
	{"rename", "FROM TO", 2, 2, NULL, IN_COW(cmd_rename),
	 "rename an object (with its snapshots) or a snapshot, as zfs rename does",
	 "NAME NEW moves NAME and its snapshots; NAME@A NAME@B (or @B) renames a\n"
	 "snapshot within its object; @A @B renames snapshot A of every object.\n"
	 "Clones keep their origin under its new name.\n"},
	{"promote", "CLONE", 1, 1, NULL, IN_COW(cmd_promote),
	 "swap a clone and its origin, like zfs promote"},
	{"du", "[NAME]", 0, 1, json_only, IN_COW(cmd_du),
	 "referenced vs exclusive bytes, and the store's totals"},
	{"send", "NAME@SNAP > FILE", 1, 1, send_opts, IN_COW(cmd_send),
	 "write a snapshot (or the change since BASE) as a stream",
	 "The format is docs/STREAM.md.\n"},
	{"recv", "NAME < FILE", 1, 1, NULL, IN_COW(cmd_recv),
	 "apply a stream: all of it, in one transaction, or nothing"},
	{"serve", "VOLUME", 1, 1, serve_opts, IN_COW(cmd_serve),
	 "serve a volume, snapshot or clone over NBD (nbdkit) until interrupted",
	 "Runs nbdkit with nbdkit-cow-plugin in the foreground and prints the URI\n"
	 "(nbd+unix:///?socket=PATH, or nbd://127.0.0.1:N with --port) once it\n"
	 "listens. Without --socket or --port the socket is in a new folder under\n"
	 "/tmp. A snapshot (NAME@SNAP) is served read-only. SIGINT or SIGTERM stop\n"
	 "nbdkit cleanly. Writes between flushes are cached (--cache, default 16M)\n"
	 "and committed at each flush or FUA write: a flushed write is durable.\n"
	 "Use it from QEMU as -drive file=nbd+unix:///?socket=PATH,format=raw.\n"
	 "$COW_NBDKIT_PLUGIN names the plugin, $COW_NBDKIT the nbdkit binary.\n"},
	{"fs create", "NAME", 1, 1, NULL, IN_COW(cmd_fs_create),
	 "a new, empty file system, owned by you (mount it with cow mount)"},
	{"mount", "[STORE:]NAME[@SNAP] DIR", 2, 2, mount_opts, IN_COW(cmd_mount),
	 "mount a file system (FUSE); a snapshot read-only",
	 "Serves the fs through libfuse3 until `cow umount DIR`. The store is -s\n"
	 "STORE, or STORE:NAME names both, or STORE alone when it holds one fs.\n"
	 "Changes are committed when fsync or fdatasync asks (durable when it\n"
	 "returns) and otherwise once they are --commit milliseconds old or 64 MiB\n"
	 "were written: a crash loses at most that, never tears the tree. DIR/.snapshots/SNAP "
	 "shows each snapshot\n"
	 "read-only; copy_file_range (cp --reflink, and cp itself on coreutils 9)\n"
	 "shares blocks instead of copying them. Permissions are checked by the\n"
	 "kernel against each caller (default_permissions).\n"},
	{"umount", "DIR", 1, 1, NULL, IN_COW(cmd_umount),
	 "unmount what cow mount mounted (fusermount3 -u), then wait for its last commit",
	 "Returns once the daemon has committed the changes it was handed and let go\n"
	 "of the fs, so a new cow mount of it succeeds at once.\n"},
	{"fsck", "[STORE]", 0, 1, fsck_opts, IN_COW(cmd_fsck),
	 "verify checksums, structure, reference counts and free space",
	 "--repair first rebuilds the space map from the trees and commits it (it fixes\n"
	 "\"(space map)\" damage; damage to a tree is only reported).\n"
	 "Exit status: 0 clean, 4 damage found (each problem on a DAMAGE line),\n"
	 "3 the check could not run.\n"},
	{"scrub", "[STORE]", 0, 1, json_only, IN_COW(cmd_scrub),
	 "verify every block's checksum (read-only, online)"},
	{"backup", "DEST", 1, 1, backup_opts, IN_COW(cmd_backup),
	 "a consistent copy of the whole store, while writers go on (online)",
	 "Copies the newest generation: every object, snapshot and clone, each\n"
	 "block once at its own address in a sparse file, so clones stay shared\n"
	 "and the copy is about the size of the live data. Every block is\n"
	 "verified as it is read; damage fails the backup (exit 4) and leaves no\n"
	 "DEST. DEST must not exist; it appears only when complete and flushed\n"
	 "(a killed backup may leave DEST.tmp-XXXXXX, which can be deleted). The\n"
	 "copy is a store: open it, or `cow fsck` it. Needs only read access.\n"
	 "--compact then compacts the copy (as `cow compact`) before it gets its\n"
	 "name: a dense file about the size of the live data.\n"},
	{"share", "PID...", 1, -1, share_opts, IN_COW(cmd_share),
	 "what a process family shares after fork(), and what un-shared it",
	 "For each process (and with --children every descendant): resident memory,\n"
	 "shared with other processes, private clean and private dirty (what copy-on-\n"
	 "write copied), in total and per mapping kind (heap, stack, anon, file,\n"
	 "shmem, other). As root, pages are matched by physical frame across the\n"
	 "measured processes: shared by all of them, by some, or by none; without\n"
	 "that privilege the figures come from smaps only and the output says so.\n"
	 "--watch reports how fast each process un-shares memory (MiB/s of new\n"
	 "private dirty) until --count rounds, Ctrl-C or the family is gone.\n"
	 "\n"
	 "Exit codes: 0 ok, 1 a named process does not exist, 2 usage, 3 not\n"
	 "permitted or failed.\n"},
	{"mem probe", "", 0, 0, json_only, IN_COW(cmd_mem_probe),
	 "which live-memory backends this kernel allows, and why",
	 "userfaultfd (and how it was opened), write-protect, WP_ASYNC,\n"
	 "WP_UNPOPULATED, SIGBUS mode, PAGEMAP_SCAN, THP; the backend each\n"
	 "operation uses here, and why. COW_MEM_BACKEND=uffd|mprotect|fork forces one.\n"},
	{"mem snapshot", "", 0, 0, mem_snapshot_opts, IN_TOUR(cmd_mem_snapshot),
	 "demonstrate a forkless snapshot of a region being written",
	 "A writer thread writes random pages of a region while a forkless\n"
	 "snapshot streams it into a file; reports the pause, extra memory, the\n"
	 "writer's throughput against no snapshot, the trapped-write median, and\n"
	 "whether the image equals the region at the instant. Without --backend,\n"
	 "the same run is repeated with fork() for comparison. Runs in cow-tour.\n",
	 "cow-tour"},
	{"mem checkpoint", "", 0, 0, mem_checkpoint_opts, IN_TOUR(cmd_mem_checkpoint),
	 "demonstrate a full vs an incremental checkpoint",
	 "A full checkpoint, then one after writing --dirty percent of the pages.\n"
	 "Runs in cow-tour.\n",
	 "cow-tour"},
	{"mem restore", "", 0, 0, mem_restore_opts, IN_TOUR(cmd_mem_restore),
	 "demonstrate eager vs lazy restore of an image",
	 "Time until usable, first touch, time until every page is present.\n"
	 "Runs in cow-tour.\n",
	 "cow-tour"},
	{"tour", "", 0, 0, tour_opts, IN_TOUR(cmd_tour),
	 "walk through every copy-on-write system cowkit covers, measuring each",
	 "Runs each step on a store in DIR. Runs in cow-tour.\n", "cow-tour"},
	{NULL},
};
