# test_agent_report.sh - the agent tells HQ how its laptop is
# (agent/report.h, POST /v1/status): after a sync that delivered
# everything, HQ shows nothing waiting and the agent's version; with
# nothing to send, the agent keeps in touch every [sync] report_minutes
# (here a few seconds), so HQ sees a quiet laptop, not a lost one; a
# bad report_minutes is refused with its reason.
set -e
. "$(dirname "$0")/lib.sh"
[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'kill_agent; stop_hq'

hq_conf
hq_and_enrolled_store "Tim Sjenica" Sjenica
agent_conf 'report_minutes = never'
expect_exit 2 fa status
must_contain "$ERR" "[sync] report_minutes must be a number of minutes from 1 s to 10080"
agent_conf 'report_minutes = 0.05'
start_agent --passphrase-file "$PASS"
add_person "Стојановић Милица" Sjenica > /dev/null
wait_hq_count beneficiaries 1 > /dev/null

# facts: this device's row of devices --json, as one line of JSON.
facts() {
	hq devices --json | python3 -c '
import json, sys
d = json.load(sys.stdin)[0]
print(json.dumps({k: d[k] for k in ("pending_changes", "oldest_unsent_age_s", "last_error",
                                    "agent_version", "reported_at", "free_disk_bytes")}))'
}
delivered() { contains "$(facts)" '"pending_changes": 0, "oldest_unsent_age_s": null, "last_error": null'; }
wait_for 60 "HQ never heard that everything was delivered: $(facts)" delivered
F1=$(facts)
must_not_contain "$F1" '"agent_version": null'
must_not_contain "$F1" '"free_disk_bytes": null'
# Nothing more is written: reports keep coming, each a contact.
R1=$(printf '%s' "$F1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["reported_at"])')
newer() {
	[ "$(facts | python3 -c 'import json,sys; print(json.load(sys.stdin)["reported_at"])')" != "$R1" ]
}
wait_for 120 "the quiet agent did not report again" newer
# Its pulls are in HQ's audit log too: it kept in touch, not just reported.
expect_exit 0 hq audit list --event pull --json
must_contain "$OUT" '"event":"pull"'
echo "ok"
