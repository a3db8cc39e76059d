# The cow tool, driven as a user would.
add_test(NAME cli_store COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_store.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_store PROPERTIES LABELS unit TIMEOUT 120 SKIP_RETURN_CODE 77)

# The main job in its quick form: every step must succeed.
add_test(NAME tour_quick COMMAND sh -c
	"d=$(mktemp -d) && \"$1\" tour --quick --dir \"$d\"; rc=$?; rm -rf \"$d\"; exit $rc" sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(tour_quick PROPERTIES LABELS unit TIMEOUT 600)

add_test(NAME cli_reflink COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_reflink.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_reflink PROPERTIES LABELS unit TIMEOUT 300 SKIP_RETURN_CODE 77)

add_test(NAME cli_errors COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_errors.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_errors PROPERTIES LABELS unit TIMEOUT 120)

# The number parser behind every numeric argument, linked alone.
cow_test(unit_cli_num SOURCES unit/test_cli_num.c ${PROJECT_SOURCE_DIR}/tools/cow/num.c
	LABELS unit TIMEOUT 30)
target_include_directories(unit_cli_num PRIVATE ${PROJECT_SOURCE_DIR}/tools/cow)

# Damaged stores are exit 4 and "damaged"; files that never were stores exit 3.
add_test(NAME cli_damaged COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_damaged.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_damaged PROPERTIES LABELS unit TIMEOUT 120)

# As nobody: read commands work on a store they may only read, and create nothing.
add_test(NAME cli_readonly COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_readonly.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_readonly PROPERTIES LABELS unit TIMEOUT 120 SKIP_RETURN_CODE 77)

add_test(NAME cli_pipes COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_pipes.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_pipes PROPERTIES LABELS unit TIMEOUT 300)
add_test(NAME cli_space_repair COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_space_repair.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_space_repair PROPERTIES LABELS unit TIMEOUT 120)

# A real full disk: a loop-mounted ext4 with 1 KiB blocks (skips unless root
# may mount loop devices).
add_test(NAME cli_full_ext4 COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_full_ext4.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_full_ext4 PROPERTIES LABELS "unit;crash" TIMEOUT 300
	SKIP_RETURN_CODE 77)

# Options in every position, --opt=value, "--" and unknown options, for every command.
add_test(NAME cli_options COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_options.py
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_options PROPERTIES LABELS unit TIMEOUT 300)

# docs/cow.1's SYNOPSIS and COMMANDS are what `cow help --man` prints (`make man`).
add_test(NAME cli_man_current COMMAND python3 ${PROJECT_SOURCE_DIR}/scripts/man.py --check
	$<TARGET_FILE:cow_tool> ${PROJECT_SOURCE_DIR}/docs/cow.1)
set_tests_properties(cli_man_current PROPERTIES LABELS unit TIMEOUT 30)

# The JSON writer behind every --json output, linked alone.
cow_test(unit_cli_json SOURCES unit/test_cli_json.c ${PROJECT_SOURCE_DIR}/tools/cow/json.c
	LABELS unit TIMEOUT 30 LIBS m)
target_include_directories(unit_cli_json PRIVATE ${PROJECT_SOURCE_DIR}/tools/cow)

# Every --json output decodes with Python's json module, UTF-8 and binary cases included.
add_test(NAME cli_json COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_json.py
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_json PROPERTIES LABELS unit TIMEOUT 300)

add_test(NAME cli_backup COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_backup.sh
	$<TARGET_FILE:cow_tool>)
set_tests_properties(cli_backup PROPERTIES LABELS unit TIMEOUT 120)
