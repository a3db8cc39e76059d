# Store benchmark: cowkit's map store against LMDB on the same data, same run,
# with RocksDB and SQLite beside it for the durable-commit phases.
# Needs liblmdb-dev (scripts/deps.sh bench); without it the bench is skipped so
# that a build without the bench packages still works. RocksDB (librocksdb-dev)
# and SQLite (libsqlite3-dev) are optional: a peer that is missing is built out,
# and the bench prints that it was skipped.
pkg_check_modules(LMDB IMPORTED_TARGET lmdb)
pkg_check_modules(ROCKSDB IMPORTED_TARGET rocksdb)
pkg_check_modules(SQLITE3 IMPORTED_TARGET sqlite3)
if(LMDB_FOUND)
	add_executable(store_bench ${CMAKE_CURRENT_SOURCE_DIR}/store_bench.c)
	target_compile_definitions(store_bench PRIVATE _GNU_SOURCE=1)
	target_link_libraries(store_bench PRIVATE cow_static cow_bench_util PkgConfig::LMDB
		${CMAKE_DL_LIBS})
	if(ROCKSDB_FOUND)
		target_compile_definitions(store_bench PRIVATE HAVE_ROCKSDB=1)
		target_link_libraries(store_bench PRIVATE PkgConfig::ROCKSDB)
	else()
		message(STATUS "rocksdb not found: bench/store_bench runs without it (scripts/deps.sh bench)")
	endif()
	if(SQLITE3_FOUND)
		target_compile_definitions(store_bench PRIVATE HAVE_SQLITE=1)
		target_link_libraries(store_bench PRIVATE PkgConfig::SQLITE3)
	else()
		message(STATUS "sqlite3 not found: bench/store_bench runs without it (scripts/deps.sh bench)")
	endif()
else()
	message(STATUS "lmdb not found: bench/store_bench is not built (scripts/deps.sh bench)")
endif()
# Space: destroy 90% then trim and compact; compaction against mdb_copy -c; a writer meanwhile.
if(LMDB_FOUND)
	add_executable(space_bench ${CMAKE_CURRENT_SOURCE_DIR}/space_bench.c)
	target_compile_definitions(space_bench PRIVATE _GNU_SOURCE=1)
	target_link_libraries(space_bench PRIVATE cow_static cow_bench_util PkgConfig::LMDB Threads::Threads)
endif()
