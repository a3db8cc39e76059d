# rcu: RCU-published copy-on-write objects.
#
# Tests labelled concurrent also run under ThreadSanitizer in CI. liburcu is
# not instrumented, so TSan sees nothing inside it and needs no suppression;
# what it cannot see is the ordering a grace period gives, which
# src/rcu/rcu.c states with __tsan_release/__tsan_acquire (docs/rcu.md).
# Nothing is suppressed.

cow_test(unit_rcu SOURCES unit/test_rcu.c LABELS unit)
cow_test(unit_rcu_cxx SOURCES unit/test_rcu_cxx.cpp LABELS unit)
cow_test(concurrent_rcu_stress SOURCES unit/test_rcu_stress.c LABELS concurrent TIMEOUT 300)

