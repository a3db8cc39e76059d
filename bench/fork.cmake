# bench/fork: fork() latency as resident memory grows, against vfork+exec and
# posix_spawn; and the copy-on-write fault cost per page. Run by bench/fork.sh.
add_executable(bench_fork_lat ${CMAKE_CURRENT_SOURCE_DIR}/fork_lat.c)
set_target_properties(bench_fork_lat PROPERTIES OUTPUT_NAME fork_lat)
target_compile_definitions(bench_fork_lat PRIVATE _GNU_SOURCE=1)
target_link_libraries(bench_fork_lat PRIVATE cow_bench_util)

add_executable(bench_cow_fault ${CMAKE_CURRENT_SOURCE_DIR}/cow_fault.c)
set_target_properties(bench_cow_fault PROPERTIES OUTPUT_NAME cow_fault)
target_compile_definitions(bench_cow_fault PRIVATE _GNU_SOURCE=1)
target_link_libraries(bench_cow_fault PRIVATE cow_static cow_bench_util)
