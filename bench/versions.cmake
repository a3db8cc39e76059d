# bench/versions: snapshot, clone, overwrite-after-clone, sequential write and
# destroy costs of cowkit volumes, against btrfs/XFS reflinks and a qcow2
# overlay. Run by bench/versions.sh.
add_executable(bench_versions ${CMAKE_CURRENT_SOURCE_DIR}/versions_bench.c)
set_target_properties(bench_versions PROPERTIES OUTPUT_NAME versions_bench)
target_link_libraries(bench_versions PRIVATE cow_static)
