#!/bin/sh
# fuzz.sh BUILD SECONDS - run every libFuzzer target for SECONDS each over
# a scratch copy of its corpus, and print one line per target: runs,
# executions per second, new corpus entries and crashes.  Crash inputs
# are left in BUILD/tests/fuzz/crashes/<target>/.  `make fuzz` runs it.
set -u
BUILD=$1
SECONDS_EACH=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$BUILD"/tests/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	work="$BUILD/tests/fuzz/corpus/$name"
	crashes="$BUILD/tests/fuzz/crashes/$name"
	mkdir -p "$work" "$crashes"
	log="$BUILD/tests/fuzz/$name.log"
	"$bin" -max_total_time="$SECONDS_EACH" -max_len=65536 -artifact_prefix="$crashes/" \
		"$work" "$ROOT/tests/fuzz/corpus/$name" > "$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
	eps=$(grep -o 'exec/s: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	found=$(ls "$crashes" | wc -l)
	printf '%-20s runs %10s  exec/s %7s  corpus %5s  crashes %s\n' "$name" "${runs:-?}" \
		"${eps:-?}" "$(ls "$work" | wc -l)" "$found"
	[ "$rc" -eq 0 ] && [ "$found" -eq 0 ] || status=1
done
exit "$status"
