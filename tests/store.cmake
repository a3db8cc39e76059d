# Store engine: block layer, B+tree, transactions, maps.
cow_test(unit_store SOURCES unit/test_store.c LABELS unit TIMEOUT 120)
cow_test(model_store SOURCES model/test_model_store.c LABELS model TIMEOUT 600
	ARGS 100000)
cow_test(model_store_long SOURCES model/test_model_store.c LABELS model long TIMEOUT 3600
	ARGS 3000000)
cow_test(crash_store SOURCES crash/test_crash_store.c lib/faultio.c LABELS crash TIMEOUT 600
	ARGS 400)
cow_test(crash_store_long SOURCES crash/test_crash_store.c lib/faultio.c LABELS crash long
	TIMEOUT 3600 ARGS 5000)
cow_test(unit_store_faults SOURCES unit/test_store_faults.c lib/faultio.c LABELS unit crash
	TIMEOUT 300)
cow_test(unit_store_mproc SOURCES unit/test_store_mproc.c LABELS unit concurrent TIMEOUT 120)
cow_test(unit_store_threads SOURCES unit/test_store_threads.c LABELS unit concurrent TIMEOUT 300)
cow_test(unit_versions SOURCES unit/test_versions.c LABELS unit TIMEOUT 300)
cow_test(model_versions SOURCES model/test_model_versions.c LABELS model TIMEOUT 600 ARGS 3000)
cow_test(model_versions_long SOURCES model/test_model_versions.c LABELS model long TIMEOUT 3600
	ARGS 100000)
cow_test(model_volumes SOURCES model/test_model_volumes.c LABELS model TIMEOUT 600 ARGS 2000)
cow_test(model_volumes_long SOURCES model/test_model_volumes.c LABELS model long TIMEOUT 3600
	ARGS 60000)
cow_test(unit_vol_runs SOURCES unit/test_vol_runs.c LABELS unit TIMEOUT 60)
cow_test(unit_stream SOURCES unit/test_stream.c LABELS unit TIMEOUT 300)
cow_test(unit_fsck SOURCES unit/test_fsck.c LABELS unit crash TIMEOUT 120)
# The child processes commit, which starts cowkit's RCU reclaimer thread in a
# child of a multi-threaded parent: supported by cowkit (fork handlers), not by
# ThreadSanitizer's runtime unless told so.
set_tests_properties(unit_store_mproc PROPERTIES ENVIRONMENT "TSAN_OPTIONS=die_after_fork=0")
cow_test(crash_versions SOURCES crash/test_crash_versions.c lib/faultio.c LABELS crash TIMEOUT 600
	ARGS 200)
cow_test(crash_versions_long SOURCES crash/test_crash_versions.c lib/faultio.c LABELS crash long
	TIMEOUT 3600 ARGS 4000)
cow_test(unit_store_trust SOURCES unit/test_store_trust.c LABELS unit concurrent TIMEOUT 120)
set_tests_properties(unit_store_trust PROPERTIES ENVIRONMENT "TSAN_OPTIONS=die_after_fork=0")
add_test(NAME unit_store_pidns COMMAND unit_store_trust pidns)
add_test(NAME unit_store_otheruid COMMAND unit_store_trust otheruid)
set_tests_properties(unit_store_pidns unit_store_otheruid PROPERTIES LABELS "unit;concurrent"
	TIMEOUT 120 SKIP_RETURN_CODE 77 ENVIRONMENT "TSAN_OPTIONS=die_after_fork=0")
cow_test(unit_log SOURCES unit/test_log.c LABELS unit)
# The space map is not a single point of failure: damage each of its blocks.
cow_test(unit_space_repair SOURCES unit/test_space_repair.c LABELS unit crash TIMEOUT 300)
# Full disks: growth that fails part-way (odd-sized files), truncated stores.
cow_test(unit_full_disk SOURCES unit/test_full_disk.c lib/faultio.c LABELS unit crash TIMEOUT 300)
# docs/FORMAT.md's tables and constants, checked against the code.
cow_test(unit_format_doc SOURCES unit/test_format_doc.c LABELS unit
	ARGS ${PROJECT_SOURCE_DIR}/docs/FORMAT.md)
cow_test(unit_rename SOURCES unit/test_rename.c LABELS unit)
# Hot backup: a sparse copy of one generation while writers commit; kills, damage.
cow_test(unit_backup SOURCES unit/test_backup.c LABELS unit crash concurrent TIMEOUT 300)
set_tests_properties(unit_backup PROPERTIES ENVIRONMENT "TSAN_OPTIONS=die_after_fork=0")
# Space given back: the tail cut at commit, punched free runs, power loss during both.
cow_test(unit_trim SOURCES unit/test_trim.c lib/faultio.c LABELS unit crash TIMEOUT 300)
# Online compaction: the file shrinks, sharing and readers kept, a writer between steps, power loss.
cow_test(unit_compact SOURCES unit/test_compact.c lib/faultio.c LABELS unit crash TIMEOUT 300)
# The same binary, only its reader and writer threads: the set TSan runs.
add_test(NAME unit_compact_threads COMMAND unit_compact threads)
set_tests_properties(unit_compact_threads PROPERTIES LABELS "concurrent" TIMEOUT 300)
# A store written by the format 1 build opens, checks clean, and is upgraded by its first commit.
cow_test(unit_format1 SOURCES unit/test_format1.c LABELS unit
	ARGS ${CMAKE_CURRENT_SOURCE_DIR}/data/format1.cow)
# File systems (include/cow/fs.h): names, renames, data against a model, reflinks, snapshots,
# power loss at every I/O of a run of file-system transactions.
cow_test(unit_fs SOURCES unit/test_fs.c lib/faultio.c LABELS unit crash)
cow_test(unit_fs_runs SOURCES unit/test_fs_runs.c LABELS unit TIMEOUT 60)
# A mounted fs (cow mount, FUSE) driven by coreutils, tar, git and rsync.
add_test(NAME fs_tools COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fs/test_fs_tools.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(fs_tools PROPERTIES LABELS unit TIMEOUT 300 SKIP_RETURN_CODE 77)
# Random file operations on a mounted fs and on tmpfs: same results, same trees, across remounts.
add_test(NAME fs_model COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/fs/test_fs_model.py
	$<TARGET_FILE:cow_tool> 1500)
set_tests_properties(fs_model PROPERTIES LABELS "unit;model" TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME fs_model_long COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/fs/test_fs_model.py
	$<TARGET_FILE:cow_tool> 30000)
set_tests_properties(fs_model_long PROPERTIES LABELS "model;long" TIMEOUT 3600 SKIP_RETURN_CODE 77)
# File data as fsx checks it: pwrite, mmap writes and reads, truncate, fallocate, reflinks, seeks.
add_test(NAME fs_fsx COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/fs/test_fs_fsx.py
	$<TARGET_FILE:cow_tool> 3000)
set_tests_properties(fs_fsx PROPERTIES LABELS "unit;model" TIMEOUT 300 SKIP_RETURN_CODE 77)
# POSIX calls as pjdfstest checks them, as root and other users, against tmpfs.
add_test(NAME fs_pjd COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/fs/test_fs_pjd.py
	$<TARGET_FILE:cow_tool>)
set_tests_properties(fs_pjd PROPERTIES LABELS unit TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME fs_posix COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fs/test_fs_posix.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(fs_posix PROPERTIES LABELS unit TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME fs_crash COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fs/test_fs_crash.sh
	$<TARGET_FILE:cow_tool> 4)
set_tests_properties(fs_crash PROPERTIES LABELS crash TIMEOUT 300 SKIP_RETURN_CODE 77)
# Reads answered while the mount's writer waits for another writer of the store.
add_test(NAME fs_readers COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fs/test_fs_readers.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(fs_readers PROPERTIES LABELS "unit;concurrent" TIMEOUT 120 SKIP_RETURN_CODE 77)
# Pages kept across opens, dropped after a rollback behind the mount.
add_test(NAME fs_cache COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fs/test_fs_cache.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(fs_cache PROPERTIES LABELS unit TIMEOUT 60 SKIP_RETURN_CODE 77)
add_test(NAME fs_full COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fs/test_fs_full.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(fs_full PROPERTIES LABELS unit TIMEOUT 120 SKIP_RETURN_CODE 77)
