# test_revoke.sh - revocation end to end.  HQ revokes a device with a
# reason: `devices` shows it and why, and the audit log has it; the
# device's next push is refused with 403 and audited; its agent says
# "revoked", stops pushing, and, with wipe_on_revoke = yes, destroys its
# store key after saying so.  Data accepted before the revocation stays.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'kill_agent; stop_hq'

hq_conf
hq_and_enrolled_store "Tim Sjenica" Sjenica
agent_conf "[agent]" "wipe_on_revoke = maybe"
expect_exit 2 fa status
must_contain "$ERR" "wipe_on_revoke must be yes or no"
agent_conf "[agent]" "wipe_on_revoke = yes"
start_agent --passphrase-file "$PASS"
add_person "Миловановић Јелена" > /dev/null
wait_hq_count beneficiaries 1 > /dev/null
DEVICE=$(fa status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["device"])')

expect_exit 0 hq revoke "$DEVICE" --reason "laptop reported stolen"
expect_exit 0 hq devices
must_contain "$OUT" "revoked: laptop reported stolen"
expect_exit 0 hq devices --json
must_contain "$OUT" '"revoked_reason":"laptop reported stolen"'
expect_exit 0 hq audit list --event revoke --json
must_contain "$OUT" "laptop reported stolen"

# The next push: 403, audited, the agent stops and shreds its key.
expect_exit 0 fa visit add "beneficiary_id=$(fa beneficiary list | cut -f1 | head -n 1)" \
	visit_date=2026-11-24 visit_type=needs_assessment
wait_log "destroying the store key"
wait_log "store key destroyed"
grep -q "revoked" "$T/agent.log" || fail "the agent did not say revoked"
[ ! -e "$DATA/store.key" ] || fail "store.key still exists after wipe_on_revoke"
expect_exit 0 fa status --json
must_contain "$OUT" '"locked":true'
must_contain "$OUT" '"revoked":true'
expect_exit 4 fa --passphrase-file "$PASS" unlock
must_contain "$ERR" "no store"
expect_exit 0 hq audit list --event push --json
must_contain "$OUT" 'result\":\"rejected' 
must_contain "$OUT" '"status\":403'
must_contain "$OUT" "$DEVICE"
expect_exit 0 hq audit verify
# What HQ accepted before the revocation stays.
[ "$(hq_count beneficiaries)" -eq 1 ] || fail "HQ lost the data accepted before revocation"
expect_exit 0 hq export beneficiaries --format jsonl
must_contain "$OUT" '"device_state":"revoked"'
expect_exit 0 hq export beneficiaries --format csv
must_contain "$OUT" ",revoked"
stop_agent
must_not_contain "$(cat "$T/agent.log")" "Миловановић"
echo "ok: revocation"
