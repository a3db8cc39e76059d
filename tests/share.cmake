# --- share: what a process family shares after fork() ---
cow_test(unit_share_family SOURCES unit/test_share_family.c LABELS unit TIMEOUT 60)
cow_test(unit_share_errors SOURCES unit/test_share_errors.c LABELS unit TIMEOUT 60)
cow_test(unit_share_fallback SOURCES unit/test_share_fallback.c LABELS unit TIMEOUT 60)
cow_test(unit_share_cli SOURCES unit/test_share_cli.c LABELS unit TIMEOUT 120
	ARGS $<TARGET_FILE:cow_tool> ${CMAKE_CURRENT_SOURCE_DIR}/unit/share_json_check.py)
# The C-objects experiment asserts its own claims at a small size.
add_test(NAME example_share_objects
	COMMAND $<TARGET_FILE:example_share_objects> --objects 200000 --check)
set_tests_properties(example_share_objects PROPERTIES LABELS unit TIMEOUT 120)
# The CPython experiment (examples/share_python.py) measured with the real
# `cow share`, asserting what gc.freeze() and gc.disable() do and do not save.
find_program(COW_PYTHON3 python3)
if(COW_PYTHON3)
	add_test(NAME example_share_python COMMAND ${COW_PYTHON3}
		${PROJECT_SOURCE_DIR}/examples/share_python.py --cow $<TARGET_FILE:cow_tool>
		--items 60000 --check)
	set_tests_properties(example_share_python PROPERTIES LABELS unit TIMEOUT 120)
endif()
cow_test(unit_share_alloc SOURCES unit/test_share_alloc.c LABELS unit TIMEOUT 120)
cow_test(unit_share_store SOURCES unit/test_share_store.c LABELS unit TIMEOUT 120)
