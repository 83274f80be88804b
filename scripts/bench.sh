#!/bin/bash
# bench.sh BUILD - `make bench`: run every benchmark, each of which measures
# its own baseline in the same run, then print one table of all of them
# with the machine they ran on.  A benchmark prints its figures as it goes
# and one `row<TAB>what<TAB>measured<TAB>baseline<TAB>ratio` line per
# figure; this script collects the rows.  Nothing here is a pass/fail
# check: speed is measured, never asserted.
set -eu -o pipefail
BUILD=$(cd "${1:?usage: bench.sh BUILD}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOG="$BUILD/bench.log"
: > "$LOG"

run() {
	echo "== $*" | tee -a "$LOG"
	if ! "$@" 2>&1 | tee -a "$LOG" | { grep -v "^row	" || true; }; then
		echo "bench.sh: $1 failed; see $LOG" >&2
		exit 1
	fi
}

run "$BUILD/bench/bench_store"
run "$BUILD/bench/bench_aead"
run "$BUILD/bench/bench_caseload"
run "$BUILD/bench/bench_form"
run "$BUILD/bench/bench_programme"
run "$BUILD/bench/bench_ingest"
run "$BUILD/bench/bench_codec"
run "$BUILD/bench/bench_audit"
run "$BUILD/bench/bench_load" --hq-bin "$BUILD/fieldsync-hq"
run bash "$ROOT/scripts/bench_agent.sh" "$BUILD"
run bash "$ROOT/scripts/bench_pull.sh" "$BUILD"
run bash "$ROOT/scripts/bench_pg_load.sh" "$BUILD"
run bash "$ROOT/scripts/bench_upload.sh" "$BUILD"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
sqlite=$(sqlite3 --version 2> /dev/null | cut -d' ' -f1 || echo "?")
echo
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) vCPU ($cpu), $mem RAM, $(uname -sr);"
echo "SQLite $sqlite, libsodium $(pkg-config --modversion libsodium), libcurl $(pkg-config --modversion libcurl), libmicrohttpd $(pkg-config --modversion libmicrohttpd), zstd $(pkg-config --modversion libzstd)."
echo
echo "| benchmark | measured | baseline (same run) | ratio |"
echo "|---|---|---|---|"
grep "^row	" "$LOG" | awk -F '\t' '{ printf "| %s | %s | %s | %s |\n", $2, $3, $4, $5 }'
