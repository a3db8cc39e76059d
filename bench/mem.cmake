# Live-memory benchmark: forkless snapshot vs fork(), checkpoints, restore.
add_executable(mem_bench ${CMAKE_CURRENT_SOURCE_DIR}/mem_bench.c)
target_compile_definitions(mem_bench PRIVATE _GNU_SOURCE=1)
target_link_libraries(mem_bench PRIVATE cow_static)
