# Thin wrapper around CMake. Every target that needs system packages
# installs the missing ones first (scripts/deps.sh says what it runs).

BUILD      ?= build
ASAN_BUILD ?= build-asan
PKG_BUILD  ?= build-pkg
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX     ?= /usr/local
CTEST_ARGS ?= --output-on-failure

.PHONY: all deps configure demo test test-normal test-asan bench install package clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@sh scripts/deps.sh

configure:
	@test -f $(BUILD)/CMakeCache.txt || \
		cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX)

demo: deps all
	@sh scripts/demo.sh $(BUILD)

test: deps test-normal test-asan test-fuzz

test-normal: all
	cd $(BUILD) && ctest $(CTEST_ARGS) -j $(JOBS)

test-asan:
	@test -f $(ASAN_BUILD)/CMakeCache.txt || \
		cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFS_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest $(CTEST_ARGS) -j $(JOBS)

# libFuzzer targets (clang, ASan and UBSan) in their own build.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60

$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFS_FUZZ=ON

# A bounded number of runs per target over its seed corpus.
test-fuzz: $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	cd $(FUZZ_BUILD) && ctest $(CTEST_ARGS) -j $(JOBS) -L fuzz

# Each target for FUZZ_SECONDS; prints executions and crashes.
fuzz: deps $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Every benchmark against a baseline measured in the same run, then one
# table (scripts/bench.sh); nothing is asserted.
bench: deps all
	@bash scripts/bench.sh $(BUILD)

install: all
	cmake --install $(BUILD)

# fieldsync_<version>_<arch>.deb and fieldsync-hq_<version>_<arch>.deb in
# $(PKG_BUILD)/, built for the /usr prefix (docs/DEPLOY.md).
package: deps
	cmake -S . -B $(PKG_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
		-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON
	cmake --build $(PKG_BUILD) -j $(JOBS) --target fieldsync fieldsync-hq
	cd $(PKG_BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
