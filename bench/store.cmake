# Store benchmark: cowkit's map store against LMDB on the same data, same run.
# Needs liblmdb-dev (scripts/deps.sh bench); without it the bench is skipped so
# that a build without the bench packages still works.
pkg_check_modules(LMDB IMPORTED_TARGET lmdb)
if(LMDB_FOUND)
	add_executable(store_bench ${CMAKE_CURRENT_SOURCE_DIR}/store_bench.c)
	target_compile_definitions(store_bench PRIVATE _GNU_SOURCE=1)
	target_link_libraries(store_bench PRIVATE cow_static cow_bench_util PkgConfig::LMDB)
else()
	message(STATUS "lmdb not found: bench/store_bench is not built (scripts/deps.sh bench)")
endif()
# Space: destroy 90% then trim and compact; compaction against mdb_copy -c; a writer meanwhile.
if(LMDB_FOUND)
	add_executable(space_bench ${CMAKE_CURRENT_SOURCE_DIR}/space_bench.c)
	target_compile_definitions(space_bench PRIVATE _GNU_SOURCE=1)
	target_link_libraries(space_bench PRIVATE cow_static cow_bench_util PkgConfig::LMDB Threads::Threads)
endif()
