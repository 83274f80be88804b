# test_load.sh - HQ under load: 200 simulated devices enrol and push at once
# to a real fieldsync-hq on loopback (bench/bench_load.c), with a small
# [server] max_inflight and more worker threads than that, so HQ must
# refuse some requests.  Asserts: at least one 503, every 503 with a
# Retry-After, no other error, every change pushed at HQ exactly once
# (bench_load reads HQ's database back), HQ exits cleanly, and HQ's peak
# RSS stays under a generous bound.  Counts and memory only: no wall-clock
# time is asserted.
#
# FS_LOAD_DEVICES, FS_LOAD_SETS, FS_LOAD_VISITS, FS_LOAD_MAX_INFLIGHT and
# FS_LOAD_RSS_MB override the sizes; the ASan+UBSan build, several times
# slower and with inflated memory, pushes smaller sets against a higher
# bound, still from 200 devices.
set -e
. "$(dirname "$0")/lib.sh"

: "${FS_BUILD_DIR:?FS_BUILD_DIR must point to the build directory}"
BENCH="$FS_BUILD_DIR/bench/bench_load"
[ -x "$BENCH" ] || fail "bench_load not built: $BENCH"
[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"

if grep -q '^FS_SANITIZE:BOOL=ON' "$FS_BUILD_DIR/CMakeCache.txt" 2> /dev/null; then
	visits=1 rss_mb=1024
else
	visits=2 rss_mb=128
fi
DEVICES=${FS_LOAD_DEVICES:-200}
SETS=${FS_LOAD_SETS:-2}
VISITS=${FS_LOAD_VISITS:-$visits}
MAX_INFLIGHT=${FS_LOAD_MAX_INFLIGHT:-4}
RSS_MB=${FS_LOAD_RSS_MB:-$rss_mb}
BASELINE=20

# Worker threads above max_inflight: on loopback a request is handled in
# one go by one thread, so only then can more be in progress than allowed.
THREADS=$((2 * MAX_INFLIGHT > 256 ? 256 : 2 * MAX_INFLIGHT))
set +e
TMPDIR="$T" "$BENCH" --devices "$DEVICES" --sets "$SETS" --visits "$VISITS" \
	--max-inflight "$MAX_INFLIGHT" --threads "$THREADS" \
	--baseline-sets "$BASELINE" --hq-bin "$HQ_BIN" --forms-dir "$FORMS" \
	> "$T/load.out" 2> "$T/load.err"
rc=$?
set -e
cat "$T/load.out"
[ "$rc" -eq 0 ] || fail "bench_load exited $rc: $(tail -25 "$T/load.err")"

SUMMARY=$(grep '^summary: ' "$T/load.out") || fail "no summary line: $(cat "$T/load.out")"
# get KEY: the value of KEY=... on the summary line.
get() {
	local v
	v=$(printf '%s\n' "$SUMMARY" | tr ' ' '\n' | sed -n "s/^$1=//p")
	[ -n "$v" ] || fail "no $1 in: $SUMMARY"
	printf '%s\n' "$v"
}
# equal KEY WANT
equal() { [ "$(get "$1")" -eq "$2" ] || fail "$1 is $(get "$1"), expected $2: $SUMMARY"; }

# Overload happened, and was answered as PROTOCOL.md says.
n503=$(($(get 503) + $(get 503_enrol)))
[ "$n503" -ge 1 ] || fail "no 503 with $DEVICES devices and max_inflight $MAX_INFLIGHT: $SUMMARY"
equal 503_without_retry_after 0
equal errors 0
equal hq_exit_ok 1

# Every change at HQ exactly once, and the check really counted them all
# (11 changes a visit).
equal sets $((DEVICES * SETS + BASELINE))
equal expected $(((DEVICES * SETS + BASELINE) * VISITS * 11))
equal changes $(((DEVICES * SETS + BASELINE) * VISITS * 11))
equal lost 0
equal duplicated 0
equal extra 0
equal sets_wrong 0
equal quarantined 0

# Memory: sampled, and under the bound in both rounds.
for k in rss_start_kb rss_peak1_kb rss_peak2_kb; do
	v=$(get $k)
	[ "$v" -gt 0 ] || fail "$k not measured: $SUMMARY"
	[ "$v" -lt $((RSS_MB * 1024)) ] || fail "HQ's $k is $v kB, over $RSS_MB MiB: $SUMMARY"
done

# The rows a table builder collects: five tab-separated fields each.
rows=$(grep -c '^row	' "$T/load.out" || true)
[ "$rows" -ge 10 ] || fail "expected 10 result rows, got $rows"
bad=$(awk -F '\t' '/^row\t/ && NF != 5' "$T/load.out")
[ -z "$bad" ] || fail "malformed row: $bad"
echo "ok: $n503 answers 503 with Retry-After, nothing lost or duplicated"
