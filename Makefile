# Thin wrapper around CMake. Every target that needs system packages
# installs the missing ones first (scripts/deps.sh says what it runs).

BUILD      ?= build
ASAN_BUILD ?= build-asan
PKG_BUILD  ?= build-pkg
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX     ?= /usr/local
CTEST_ARGS ?= --output-on-failure

.PHONY: all deps configure demo test format format-check test-shape test-normal test-asan test-builds test-release \
	test-distro bench install package clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@sh scripts/deps.sh

configure:
	@test -f $(BUILD)/CMakeCache.txt || \
		cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX)

# Quiet: a line per set-up phase (the output in $(BUILD)/setup.log), then
# the story.
demo:
	@sh scripts/setup.sh $(BUILD) $(PREFIX)
	@sh scripts/demo.sh $(BUILD)

test: deps format-check test-shape test-normal test-builds test-asan test-fuzz

# The C sources as .clang-format says, checked by make test (and so CI);
# make format rewrites them.  One clang-format, the one Debian 12 ships:
# another version formats a few lines otherwise.
CLANG_FORMAT ?= clang-format-14
C_SOURCES = $(shell find agent bench crypto hq sync tests web -name '*.[ch]' | sort)
format:
	$(CLANG_FORMAT) -i $(C_SOURCES)
format-check:
	@$(CLANG_FORMAT) --dry-run --Werror $(C_SOURCES) || \
		{ echo "make format-check: run 'make format' and commit the result" >&2; exit 1; }

# No two modules include each other (issue 14); prints the largest files
# and functions too.
test-shape:
	python3 scripts/code_shape.py --check

# make test turns warnings into errors in every build it makes (a plain
# `make` leaves FS_WERROR as configured, OFF unless asked).
test-normal: configure
	cmake -S . -B $(BUILD) -DFS_WERROR=ON > /dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest $(CTEST_ARGS) -j $(JOBS)

# The builds users and distributions make, warnings as errors, each with
# its unit tests (the command-line tests run in the build above): Release,
# whose optimiser warns where RelWithDebInfo does not, and Debian's own
# flags from dpkg-buildflags with all hardening on.
RELEASE_BUILD ?= build-release
DISTRO_BUILD  ?= build-distro
DEB_FLAGS      = DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get
DISTRO_CMAKE   = -DCMAKE_C_FLAGS="$$($(DEB_FLAGS) CFLAGS) $$($(DEB_FLAGS) CPPFLAGS)" \
		 -DCMAKE_EXE_LINKER_FLAGS="$$($(DEB_FLAGS) LDFLAGS)"

test-builds: test-release test-distro

test-release:
	cmake -S . -B $(RELEASE_BUILD) -DCMAKE_BUILD_TYPE=Release -DFS_WERROR=ON > /dev/null
	cmake --build $(RELEASE_BUILD) -j $(JOBS)
	cd $(RELEASE_BUILD) && ctest $(CTEST_ARGS) -j $(JOBS) -E '^cli_'

test-distro:
	cmake -S . -B $(DISTRO_BUILD) -DCMAKE_BUILD_TYPE=None -DFS_WERROR=ON $(DISTRO_CMAKE) > /dev/null
	cmake --build $(DISTRO_BUILD) -j $(JOBS)
	cd $(DISTRO_BUILD) && ctest $(CTEST_ARGS) -j $(JOBS) -E '^cli_'

test-asan:
	@test -f $(ASAN_BUILD)/CMakeCache.txt || \
		cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFS_SANITIZE=ON
	cmake -S . -B $(ASAN_BUILD) -DFS_WERROR=ON > /dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest $(CTEST_ARGS) -j $(JOBS)

# libFuzzer targets (clang, ASan and UBSan) in their own build.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60

$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFS_FUZZ=ON -DFS_WERROR=ON

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
# $(PKG_BUILD)/, built for the /usr prefix (docs/DEPLOY.md) with Debian's
# hardening flags (_FORTIFY_SOURCE=2, -fstack-protector-strong, full RELRO).
package: deps
	cmake -S . -B $(PKG_BUILD) -DCMAKE_BUILD_TYPE=None -DCMAKE_INSTALL_PREFIX=/usr \
		-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON $(DISTRO_CMAKE)
	cmake --build $(PKG_BUILD) -j $(JOBS) --target fieldsync fieldsync-hq
	cd $(PKG_BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(RELEASE_BUILD) $(DISTRO_BUILD) $(PKG_BUILD)
