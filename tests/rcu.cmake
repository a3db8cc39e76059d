# rcu: RCU-published copy-on-write objects, and the two examples of the seed
# (credentials; closures, where copy-on-write is the wrong tool).
#
# Tests labelled concurrent also run under ThreadSanitizer in CI. liburcu is
# not instrumented, so TSan sees nothing inside it and needs no suppression;
# what it cannot see is the ordering a grace period gives, which
# src/rcu/rcu.c states with __tsan_release/__tsan_acquire (docs/rcu.md).
# Nothing is suppressed.

cow_test(unit_rcu SOURCES unit/test_rcu.c LABELS unit)
cow_test(unit_rcu_cxx SOURCES unit/test_rcu_cxx.cpp LABELS unit)
cow_test(unit_rcu_closures SOURCES unit/test_rcu_closures.c LABELS unit)
cow_test(concurrent_rcu_stress SOURCES unit/test_rcu_stress.c LABELS concurrent TIMEOUT 300)
cow_test(concurrent_rcu_creds SOURCES unit/test_rcu_creds.c LABELS concurrent TIMEOUT 300)

# The example programs themselves, as a user would run them.
add_test(NAME example_creds COMMAND example_creds 2 500000)
add_test(NAME example_closures COMMAND example_closures)
set_tests_properties(example_creds PROPERTIES LABELS concurrent TIMEOUT 300)
set_tests_properties(example_closures PROPERTIES LABELS unit TIMEOUT 30)

# Soak: 2 x 25 M reads (ctest -L long).
add_test(NAME long_rcu_stress COMMAND concurrent_rcu_stress 25000000)
set_tests_properties(long_rcu_stress PROPERTIES LABELS long TIMEOUT 1800)
