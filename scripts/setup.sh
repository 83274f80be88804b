#!/bin/sh
# setup.sh BUILD_DIR [PREFIX] - what `make demo` does before its story, quietly: a
# line per phase, everything the tools print in BUILD_DIR/setup.log.  On a
# failure it shows the end of that log and says where the rest is.
set -eu
BUILD=${1:-build}
PREFIX=${2:-/usr/local}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$ROOT/$BUILD"
LOG="$ROOT/$BUILD/setup.log"
: > "$LOG"

# phase WHAT CMD...: run CMD into the log, one line on the terminal.
phase() {
	what=$1
	shift
	start=$(date +%s)
	printf '==> %s ... ' "$what"
	if "$@" >> "$LOG" 2>&1; then
		echo "done ($(($(date +%s) - start)) s)"
	else
		echo "FAILED"
		tail -n 25 "$LOG" >&2
		echo "(the whole log: $LOG)" >&2
		exit 1
	fi
}

cd "$ROOT"
phase "Debian packages (scripts/deps.sh)" sh scripts/deps.sh
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
	phase "configuring the build in $BUILD/" \
		cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="$PREFIX"
fi
phase "compiling fieldsync and fieldsync-hq" \
	cmake --build "$BUILD" -j "$(nproc 2> /dev/null || echo 2)" --target fieldsync fieldsync-hq
echo "    (set-up output in $LOG)"
