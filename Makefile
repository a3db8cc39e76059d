# Thin front end over CMake. Everything real lives in CMakeLists.txt.
#
#   make            build (release with debug info) into ./build
#   make run        build, then `cow tour` on a store in a temporary folder
#   make test       build, then run every test except the `long` tier
#   make bench      build, then run the benchmarks (CSV + PNG in bench/results)
#   make man        rewrite docs/cow.1's SYNOPSIS and COMMANDS from the command table
#   make install    install library, headers, cow.pc, cow and its man page (PREFIX=/usr/local)
#
# Knobs: BUILD=dir  SANITIZE=address,undefined|thread  TEST_ARGS='-L unit'
#        TOUR_ARGS='--quick'  PREFIX=/usr/local

BUILD    ?= build
PREFIX   ?= /usr/local
SANITIZE ?=
TYPE     ?= RelWithDebInfo
MAKEFLAGS += --no-print-directory
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
TEST_ARGS ?=
TOUR_ARGS ?=

.PHONY: all deps configure build run test test-long bench install man clean format

all: build

deps:
	@sh scripts/deps.sh build test

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) -DCOW_SANITIZE=$(SANITIZE) \
		-DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
		$(BUILD)/tools/cow/cow tour --dir "$$dir" $(TOUR_ARGS)

test: build
	@cd $(BUILD) && ctest -LE long -j $(JOBS) --output-on-failure $(TEST_ARGS)

test-long: build
	@cd $(BUILD) && ctest -L long --output-on-failure $(TEST_ARGS)

bench:
	@sh scripts/deps.sh bench
	@$(MAKE) build
	@sh bench/run.sh $(BUILD)

man: build
	@python3 scripts/man.py $(BUILD)/tools/cow/cow docs/cow.1

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	@rm -rf $(BUILD)
