# Volumes as disks: the block map the NBD plugin reports, then the plugin
# driven by real clients (nbdkit, libnbd-bin, qemu-utils). Scripts skip with
# exit 77 and say why when a client or the plugin is missing.
cow_test(unit_vol_extents SOURCES unit/test_vol_extents.c LABELS unit TIMEOUT 30)

if(TARGET nbdkit_cow_plugin)
	set(cow_plugin $<TARGET_FILE:nbdkit_cow_plugin>)
else()
	set(cow_plugin "") # the scripts skip and say why
endif()
# nbd_test(NAME SCRIPT LABELS.. [TIMEOUT s] [ARGS ..])
function(nbd_test name script)
	cmake_parse_arguments(T "" "TIMEOUT" "LABELS;ARGS" ${ARGN})
	if(NOT T_TIMEOUT)
		set(T_TIMEOUT 120)
	endif()
	add_test(NAME ${name} COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/nbd/${script}
		$<TARGET_FILE:cow_tool> ${cow_plugin} ${T_ARGS})
	set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
		SKIP_RETURN_CODE 77 ENVIRONMENT "COW_SANITIZE=${COW_SANITIZE}")
endfunction()

# qemu-img convert/compare/map, nbdinfo --map, nbdcopy both ways, resize.
nbd_test(nbd_convert test_nbd_convert.sh LABELS unit)
# qemu-io -P patterns at random (unaligned) offsets, across restarts of `cow serve`.
nbd_test(nbd_qemu_io test_nbd_qemu_io.sh LABELS unit ARGS 2)
nbd_test(nbd_qemu_io_long test_nbd_qemu_io.sh LABELS unit long TIMEOUT 600 ARGS 12)
# Snapshots while qemu-io writes equal the disk as of a flush; serve a snapshot and a clone.
nbd_test(nbd_snapshot test_nbd_snapshot.sh LABELS unit)
# kill -9 nbdkit mid-stream: every acknowledged flush survives, fsck clean.
nbd_test(nbd_crash test_nbd_crash.sh LABELS crash ARGS 3)
nbd_test(nbd_crash_long test_nbd_crash.sh LABELS crash long TIMEOUT 1200 ARGS 40)
