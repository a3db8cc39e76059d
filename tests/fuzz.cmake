# Fuzzing: libFuzzer targets (COW_FUZZ=ON, clang) and, always, plain replayers
# that run the checked-in corpora under ctest with any compiler.
#
#   cmake -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCOW_FUZZ=ON
#   bench/fuzz.sh MINUTES        (builds that in build-fuzz and runs every target)
#
# A target is tests/fuzz/fuzz_<name>.c defining LLVMFuzzerTestOneInput, with
# its corpus in tests/fuzz/corpus/<name>/; add its name to COW_FUZZ_TARGETS.
option(COW_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
set(COW_FUZZ_TARGETS open recv)

add_executable(make_corpus fuzz/make_corpus.c)
target_link_libraries(make_corpus PRIVATE cow_static)
add_executable(make_streams fuzz/make_streams.c)
target_include_directories(make_streams PRIVATE ${PROJECT_SOURCE_DIR}/src lib)
target_compile_definitions(make_streams PRIVATE _GNU_SOURCE=1)
target_link_libraries(make_streams PRIVATE cow_static)

foreach(t ${COW_FUZZ_TARGETS})
	cow_test(fuzz_${t}_replay SOURCES fuzz/fuzz_${t}.c fuzz/replay.c LABELS fuzz TIMEOUT 300
		ARGS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${t})
	target_include_directories(fuzz_${t}_replay PRIVATE fuzz)
endforeach()

# Seeds made now, by this build, must pass too (the format may have moved on).
add_test(NAME fuzz_open_seeds COMMAND sh -c
	"rm -rf seeds && \"$1\" seeds >/dev/null && \"$2\" seeds >/dev/null" sh
	$<TARGET_FILE:make_corpus> $<TARGET_FILE:fuzz_open_replay>)
set_tests_properties(fuzz_open_seeds PROPERTIES LABELS fuzz TIMEOUT 300
	WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
add_test(NAME fuzz_recv_seeds COMMAND sh -c
	"rm -rf streams && mkdir streams && \"$1\" streams >/dev/null && \"$2\" streams >/dev/null" sh
	$<TARGET_FILE:make_streams> $<TARGET_FILE:fuzz_recv_replay>)
set_tests_properties(fuzz_recv_seeds PROPERTIES LABELS fuzz TIMEOUT 300
	WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

if(COW_FUZZ)
	if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
		message(FATAL_ERROR "COW_FUZZ=ON needs clang (-DCMAKE_C_COMPILER=clang)")
	endif()
	# The library again, instrumented for coverage and sanitizers, for the
	# fuzz targets only: the rest of the build stays as configured.
	set(fuzz_flags -fsanitize=address,undefined -fno-sanitize-recover=all
		-fno-omit-frame-pointer -g)
	add_library(cow_fuzzlib STATIC ${COW_SOURCES})
	target_include_directories(cow_fuzzlib PUBLIC ${PROJECT_SOURCE_DIR}/include
		${PROJECT_SOURCE_DIR}/src)
	target_compile_definitions(cow_fuzzlib PRIVATE COW_BUILDING=1 _GNU_SOURCE=1)
	target_compile_options(cow_fuzzlib PRIVATE -fsanitize=fuzzer-no-link ${fuzz_flags}
		-include ${PROJECT_SOURCE_DIR}/src/compat/banned.h)
	target_link_libraries(cow_fuzzlib PUBLIC PkgConfig::URCU PkgConfig::XXHASH
		Threads::Threads ${CMAKE_DL_LIBS})
	foreach(t ${COW_FUZZ_TARGETS})
		add_executable(fuzz_${t} fuzz/fuzz_${t}.c)
		target_include_directories(fuzz_${t} PRIVATE fuzz lib)
		target_compile_definitions(fuzz_${t} PRIVATE _GNU_SOURCE=1)
		target_compile_options(fuzz_${t} PRIVATE -fsanitize=fuzzer ${fuzz_flags})
		target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer ${fuzz_flags})
		target_link_libraries(fuzz_${t} PRIVATE cow_fuzzlib)
	endforeach()
endif()

# Damage: flip bits, bytes and whole blocks of a closed store, then read it all.
cow_test(crash_bitflip SOURCES crash/test_bitflip.c LABELS crash TIMEOUT 300 ARGS 300)
cow_test(crash_bitflip_long SOURCES crash/test_bitflip.c LABELS crash long TIMEOUT 3600
	ARGS 20000)
