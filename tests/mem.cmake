# --- mem: live memory (probe, regions, snapshots, checkpoints, restore) ---
cow_test(unit_mem_probe SOURCES unit/test_mem_probe.c LABELS unit)
cow_test(mem_snapshot_uffd SOURCES unit/test_mem_snapshot.c LABELS unit concurrent ARGS uffd)
cow_test(mem_snapshot_uffd_thp SOURCES unit/test_mem_snapshot.c LABELS unit concurrent
	ARGS uffd thp)
cow_test(mem_snapshot_mprotect SOURCES unit/test_mem_snapshot.c LABELS unit concurrent
	ARGS mprotect)
cow_test(mem_snapshot_fork SOURCES unit/test_mem_snapshot.c LABELS unit ARGS fork)
cow_test(mem_track_auto SOURCES unit/test_mem_track.c LABELS unit ARGS auto)
cow_test(mem_track_uffd SOURCES unit/test_mem_track.c LABELS unit ARGS uffd)
cow_test(mem_track_mprotect SOURCES unit/test_mem_track.c LABELS unit ARGS mprotect)
cow_test(mem_restore SOURCES unit/test_mem_restore.c LABELS unit concurrent)
