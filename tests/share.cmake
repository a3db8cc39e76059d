# --- share: what a process family shares after fork() ---
cow_test(unit_share_family SOURCES unit/test_share_family.c LABELS unit TIMEOUT 60)
cow_test(unit_share_errors SOURCES unit/test_share_errors.c LABELS unit TIMEOUT 60)
cow_test(unit_share_fallback SOURCES unit/test_share_fallback.c LABELS unit TIMEOUT 60)
cow_test(unit_share_cli SOURCES unit/test_share_cli.c LABELS unit TIMEOUT 120
	ARGS $<TARGET_FILE:cow_tool> ${CMAKE_CURRENT_SOURCE_DIR}/unit/share_json_check.py)
