# --- kv: examples/kv driven by redis-cli and redis-benchmark (Debian redis-tools) ---
# The scripts skip with 77 and say why when a client or userfaultfd is missing.
function(kv_test name script)
	cmake_parse_arguments(T "" "TIMEOUT" "LABELS;ARGS" ${ARGN})
	if(NOT T_TIMEOUT)
		set(T_TIMEOUT 120)
	endif()
	if(script MATCHES "\\.py$")
		set(run python3)
	else()
		set(run sh)
	endif()
	add_test(NAME ${name} COMMAND ${run} ${CMAKE_CURRENT_SOURCE_DIR}/kv/${script}
		$<TARGET_FILE:example_kv> ${T_ARGS})
	set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
		SKIP_RETURN_CODE 77)
endfunction()

kv_test(kv_cli test_kv_cli.sh LABELS unit kv)
kv_test(kv_malformed test_kv_malformed.py LABELS unit kv)
# BGSAVE while redis-benchmark and an overwrite of every key run, then restart.
kv_test(kv_bgsave test_kv_bgsave.sh LABELS unit kv concurrent TIMEOUT 300)
kv_test(kv_bgsave_uffd_thread test_kv_bgsave.sh LABELS unit kv concurrent TIMEOUT 300
	ARGS uffd-thread)
kv_test(kv_bgsave_fork test_kv_bgsave.sh LABELS unit kv TIMEOUT 300 ARGS fork)
# Restart: lazy restore serving at once, writes and BGSAVE during it, eager, damaged images.
kv_test(kv_restart test_kv_restart.sh LABELS unit kv TIMEOUT 300)
