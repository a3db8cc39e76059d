# rcu benchmarks: read-side throughput against a rwlock and a mutex, and the
# liburcu flavour comparison behind cowkit's choice of urcu-bp.
pkg_check_modules(URCU_MEMB REQUIRED IMPORTED_TARGET liburcu-memb)

add_executable(bench_rcu_read rcu_read.c)
set_target_properties(bench_rcu_read PROPERTIES OUTPUT_NAME rcu_read)
target_compile_definitions(bench_rcu_read PRIVATE _GNU_SOURCE=1)
target_link_libraries(bench_rcu_read PRIVATE cow_static)

add_executable(bench_rcu_flavours rcu_flavours.c)
set_target_properties(bench_rcu_flavours PROPERTIES OUTPUT_NAME rcu_flavours)
target_compile_definitions(bench_rcu_flavours PRIVATE _GNU_SOURCE=1)
target_link_libraries(bench_rcu_flavours PRIVATE cow_static PkgConfig::URCU_MEMB)

add_executable(bench_rcu_fork rcu_fork.c)
set_target_properties(bench_rcu_fork PROPERTIES OUTPUT_NAME rcu_fork)
target_compile_definitions(bench_rcu_fork PRIVATE _GNU_SOURCE=1)
target_link_libraries(bench_rcu_fork PRIVATE cow_static)
