# test_crash_consistency.sh - the store under crashes and I/O faults:
# tests/tools/crashloop.c runs at least 500 iterations (FS_CRASH_ITERATIONS
# raises it; FS_CRASH_SEED replays one run) of inserts, imports, packs and
# pushes to a real HQ on loopback, each child killed, torn, power-cut or
# given failing writes and syncs below the encryption VFS, and checks the
# store after every one.  Then HQ's own view must agree: the export holds
# every record the device committed once, `fieldsync check` passes, and
# HQ's audit log verifies.
set -e
. "$(dirname "$0")/lib.sh"

: "${FS_CRASHLOOP:?FS_CRASHLOOP must point to the crashloop binary (tests/CMakeLists.txt)}"
[ -x "$FS_CRASHLOOP" ] || fail "crashloop not built: $FS_CRASHLOOP"
[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
ITERATIONS=${FS_CRASH_ITERATIONS:-500}
[ "$ITERATIONS" -ge 500 ] || fail "FS_CRASH_ITERATIONS must be at least 500"
at_exit 'stop_hq'

# A key file, so that each of the loop's hundreds of opens costs no Argon2id.
KEY="$T/store.keyfile"
fk() { "$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --key-file "$KEY" "$@"; }
expect_exit 0 "$FIELDSYNC" keygen "$KEY"
expect_exit 0 fk init
hq_conf
expect_exit 0 hq init
start_hq
# crashloop records households in eight municipalities.
TOKEN=$(hq enroll-token --team "Tim Sjenica" --municipality Sjenica --scope '*' | tail -n 1)
expect_exit 0 fk enroll "http://127.0.0.1:$PORT" "$TOKEN"

mkdir "$T/work"
set -- --data-dir "$DATA" --key-file "$KEY" --forms-dir "$FORMS" --hq-db "$T/hq/hq.db" \
	--work-dir "$T/work" --iterations "$ITERATIONS" --ids-out "$T/committed.ids"
[ -z "${FS_CRASH_SEED:-}" ] || set -- "$@" --seed "$FS_CRASH_SEED"
start=$(date +%s)
set +e
"$FS_CRASHLOOP" "$@" > "$T/loop.out" 2> "$T/loop.err"
rc=$?
set -e
cat "$T/loop.out" "$T/loop.err" >&2
[ "$rc" -eq 0 ] || fail "crashloop exited $rc: $(grep FAILED "$T/loop.err")"
line=$(head -n 1 "$T/loop.out")
n=$(printf '%s\n' "$line" | sed -n 's/^crashloop: \([0-9]*\) iterations (\([0-9]*\) killed, \([0-9]*\) write faults, \([0-9]*\) fsync faults), all checks passed$/\1 \2 \3 \4/p')
[ -n "$n" ] || fail "unexpected crashloop summary: $line"
set -- $n
[ "$1" -ge 500 ] || fail "only $1 iterations"
# Every kind of fault must have happened, or the loop tested less than it says.
[ "$2" -ge 100 ] || fail "only $2 kills in $1 iterations"
[ "$3" -ge 20 ] || fail "only $3 write faults in $1 iterations"
[ "$4" -ge 20 ] || fail "only $4 fsync faults in $1 iterations"
must_contain "$(cat "$T/loop.out")" "power cuts"
echo "crash loop: $line ($(($(date +%s) - start)) s)" >&2

# HQ's own tools agree with what the loop checked in its database.
expect_exit 0 fk check
expect_exit 0 hq audit verify
[ -s "$T/committed.ids" ] || fail "the loop reported no committed records"
for coll in beneficiaries visits; do
	awk -v c="$coll" '$2 == c { print $1 }' "$T/committed.ids" | sort > "$T/want.ids"
	export_ids "$coll" > "$T/hq.ids"
	[ -z "$(uniq -d "$T/hq.ids")" ] || fail "$coll duplicated at HQ"
	missing=$(comm -23 "$T/want.ids" "$T/hq.ids" | head -3)
	[ -z "$missing" ] || fail "committed $coll missing at HQ: $missing"
done
# Nothing the device holds is missing at HQ or extra there.
fk beneficiary list --json | python3 -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line)["id"])' | sort > "$T/local.ids"
export_ids beneficiaries > "$T/hq.ids"
cmp -s "$T/local.ids" "$T/hq.ids" ||
	fail "beneficiaries at HQ differ from the device: $(diff "$T/local.ids" "$T/hq.ids" | head -5)"
echo "ok: crash consistency"
