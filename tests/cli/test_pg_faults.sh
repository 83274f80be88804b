# test_pg_faults.sh - HQ on PostgreSQL when PostgreSQL fails (issue 13):
# the server killed in the middle of a long sync (connections cut,
# transactions in flight lost) and while it is down, HQ answers 503
# "unavailable" with Retry-After, stores nothing half-written, and the
# device keeps its sets; once PostgreSQL is back every record arrives
# exactly once and the audit log verifies.  HQ cannot start without it,
# and says why.
set -e
FS_HQ_BACKEND=postgresql
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'stop_hq'

hq_conf
init_store
expect_exit 0 hq init
start_hq
TOKEN=$(hq enroll-token --team "Tim Tutin" --municipality Tutin | tail -n 1)
MUNI=Tutin
expect_exit 0 fs enroll "http://127.0.0.1:$PORT" "$TOKEN"
python3 - "$T/caseload.csv" <<'PY'
import sys
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write("full_name,municipality,status,household_size,consent\n")
    for i in range(600):
        f.write("Đorđević Јелена %d,Tutin,idp,%d,yes\n" % (i, i % 9 + 1))
PY
expect_exit 0 fs import beneficiaries "$T/caseload.csv"
pending() { fs status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending_changes"])'; }
BEFORE=$(pending)
[ "$BEFORE" -eq 3000 ] || fail "expected 3000 pending changes, not $BEFORE"

# PostgreSQL dies once HQ has acknowledged part of a long sync.
"$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --passphrase-file "$PASS" \
	sync --max-changes 20 > "$T/sync.out" 2> "$T/sync.err" &
SP=$!
some_sent() { [ "$(pending)" -lt "$BEFORE" ] || ! kill -0 "$SP" 2> /dev/null; }
until_ok 120 some_sent || fail "the sync sent nothing"
pg_kill
set +e
wait "$SP"
RC=$?
set -e
LEFT=$(pending)
echo "PostgreSQL killed with $LEFT of $BEFORE changes pending; the sync exited $RC" >&2
if [ "$LEFT" -gt 0 ]; then
	[ "$RC" -eq 4 ] || fail "an interrupted sync exited $RC: $(cat "$T/sync.err")"
fi
# While it is down: 503 "unavailable", and the sets stay on the device.
expect_exit 4 fs sync
must_contain "$ERR" "HQ's database is unavailable"
[ "$(pending)" -eq "$LEFT" ] || fail "pending changes moved while HQ's database was down"
grep -q "connect to PostgreSQL host=127.0.0.1" "$T/hq.log" || fail "HQ did not log why: $(cat "$T/hq.log")"
! grep -q "$(head -n 1 "$PG_PASSFILE")" "$T/hq.log" || fail "HQ logged the database password"
# Back: everything arrives once.
pg_run || fail "PostgreSQL did not come back"
expect_exit 0 fs sync
[ "$(pending)" -eq 0 ] || fail "changes still pending after PostgreSQL came back"
same_once beneficiary beneficiaries
expect_exit 0 hq audit verify
must_contain "$OUT" "audit log ok"

# HQ does not start without its database.
stop_hq
pg_kill
expect_exit 4 "$HQ_BIN" -c "$T/hq.conf" serve --listen "127.0.0.1:$PORT"
must_contain "$ERR" "connect to PostgreSQL host=127.0.0.1 port=$PG_PORT dbname=fieldsync_1 user=hq"
pg_run
echo "ok: PostgreSQL failing under HQ"
