# test_two_way.sh - two-way sync from the command line (issue 12): a team
# pulls the households of its scope, records a visit to another team's
# household offline, and nothing unsent is lost or reordered by a pull;
# a household that moves out of a scope leaves that device.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'kill_agent; stop_hq'

hq_conf
expect_exit 0 hq init
start_hq

# value NAME ID FIELD: a field of a record on that team's device.
value() {
	dev "$1" beneficiary show "$2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fields"]["'"$3"'"])'
}
dev_enrol sjenica "Tim Sjenica" Sjenica Sjenica
dev_enrol tutin "Tim Tutin" Tutin "Tutin, Sjenica"

expect_exit 0 dev sjenica pull --help
must_contain "$OUT" "Usage: fieldsync pull"
expect_exit 1 dev sjenica pull extra

# Sjenica registers a household and sends it.
expect_exit 0 dev sjenica beneficiary add "full_name=Ружичић Ђорђе" municipality=Sjenica \
	status=idp household_size=4 consent=yes
H=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 dev sjenica sync
must_contain "$OUT" "sent 1 change sets"

# Tutin has never seen it: a visit to it is refused...
expect_exit 2 dev tutin visit add "beneficiary_id=$H" visit_date=2026-12-01 \
	visit_type=needs_assessment
# ... until one pull.
expect_exit 0 dev tutin pull
must_contain "$OUT" "received 1 down-sets (5 changes), 0 records left the scope"
must_not_contain "$OUT$ERR" "Ружичић"
expect_exit 0 dev tutin beneficiary list
must_contain "$OUT" "Ружичић Ђорђе"

# HQ goes away; Tutin records a visit offline, and sends it once HQ is back.
stop_hq
expect_exit 0 dev tutin visit add "beneficiary_id=$H" visit_date=2026-12-01 \
	visit_type=needs_assessment "notes=Kuća oštećena"
V=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 4 dev tutin sync
start_hq "$PORT"
expect_exit 0 dev tutin sync
must_contain "$OUT" "sent 1 change sets (4 changes), 0 quarantined at HQ"
hq export visits --format jsonl > "$T/visits"
grep -q "$V" "$T/visits" || fail "Tutin's visit to Sjenica's household did not reach HQ"

# Sjenica, whose scope the household is in, receives Tutin's visit.
expect_exit 0 dev sjenica pull
must_contain "$OUT" "(4 changes)"
expect_exit 0 dev sjenica visit show "$V"
must_contain "$OUT" "Kuća oštećena"

# An unsent local edit survives a pull of an older edit, and wins at HQ.
expect_exit 0 dev tutin beneficiary edit "$H" household_size=9
expect_exit 0 dev tutin sync
expect_exit 0 dev sjenica beneficiary edit "$H" household_size=7
expect_exit 0 dev sjenica pull
[ "$(value sjenica "$H" household_size)" = 7 ] || fail "a pull overwrote an unsent later edit"
expect_exit 0 dev sjenica status --json
must_contain "$OUT" '"pending_changes":1'
expect_exit 0 dev sjenica sync
hq export beneficiaries --format jsonl > "$T/ben"
grep -q '"household_size":7' "$T/ben" || fail "the later edit did not win at HQ"
# ... and a later edit from HQ replaces an older unsent one, which is
# still sent (HQ keeps the later).
expect_exit 0 dev tutin pull
[ "$(value tutin "$H" household_size)" = 7 ] || fail "Tutin did not take HQ's later value"
expect_exit 0 dev sjenica beneficiary edit "$H" household_size=5
expect_exit 0 dev tutin beneficiary edit "$H" household_size=6
expect_exit 0 dev tutin sync
expect_exit 0 dev sjenica pull
[ "$(value sjenica "$H" household_size)" = 6 ] || fail "a pull did not take HQ's later value"
# Who last changed it: Tutin's device, though Sjenica created it.
TUTIN_ID=$(dev tutin status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["device"])')
expect_exit 0 dev sjenica beneficiary show "$H"
must_contain "$OUT" "updated_by       $TUTIN_ID"
must_not_contain "$(dev sjenica beneficiary show "$H" | grep author)" "$TUTIN_ID"
expect_exit 0 dev sjenica status --json
must_contain "$OUT" '"pending_changes":1'
expect_exit 0 dev sjenica sync
must_contain "$OUT" "sent 1 change sets (1 changes)"
hq export beneficiaries --format jsonl > "$T/ben"
grep -q '"household_size":6' "$T/ben" || fail "the earlier unsent edit won at HQ"
expect_exit 0 dev sjenica check

# Both teams import the same caseload list and edit one household
# offline: HQ records the conflict, and both devices learn which edit won.
S=01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f7
printf 'id,full_name,municipality,status,household_size,consent\n%s,Stanković Vesna,Sjenica,refugee,4,yes\n' \
	"$S" > "$T/caseload.csv"
for d in sjenica tutin; do expect_exit 0 dev "$d" import beneficiaries "$T/caseload.csv"; done
expect_exit 0 dev sjenica beneficiary edit "$S" household_size=5
expect_exit 0 dev tutin beneficiary edit "$S" household_size=6
expect_exit 0 dev sjenica sync
expect_exit 0 dev tutin sync
expect_exit 0 dev sjenica pull
expect_exit 0 dev sjenica conflicts
must_contain "$OUT" "record $S, field household_size"
must_contain "$OUT" "(this device) set 5"
must_contain "$OUT" "kept: 6, the later edit"
expect_exit 0 dev tutin conflicts --json
must_contain "$OUT" '"value_b":6'
expect_exit 0 dev sjenica log --json
must_contain "$OUT" '"event":"pull"'
must_not_contain "$OUT" "Stanković"
[ "$(value sjenica "$S" household_size)" = 6 ] || fail "the conflict's winner did not reach Sjenica"
expect_exit 0 dev sjenica status
must_contain "$OUT" "scope       Sjenica"
expect_exit 0 dev tutin status --json
must_contain "$OUT" '"scope":["Sjenica","Tutin"]'

# Tutin moves the household to Tutin: Sjenica's device lets it go, with
# its visit, at the next pull.
expect_exit 0 dev tutin beneficiary edit "$H" municipality=Tutin
expect_exit 0 dev tutin sync
expect_exit 0 dev sjenica pull
must_contain "$OUT" "2 records left the scope"
expect_exit 2 dev sjenica beneficiary show "$H"
expect_exit 2 dev sjenica visit show "$V"
expect_exit 0 dev sjenica check
# The longest scope HQ allows (64 names of up to 200 bytes) is stored and
# compared on the device at every pull, and shown by status.
TU=$(dev tutin status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["device"])')
LONG=$(python3 -c 'print(", ".join(["Градска општина Јужна Трнава број %02d %s" % (i, "ж" * 60) for i in range(62)] + ["Tutin", "Sjenica"]))')
expect_exit 0 hq scope "$TU" --municipality "$LONG"
expect_exit 0 dev tutin pull
expect_exit 0 dev tutin pull
expect_exit 0 dev tutin status
must_contain "$OUT" "број 61"

# HQ's forms flow down (issue 12): HQ adds a field to the visits form.
# Tutin's own forms do not know it; after one pull Tutin records a visit
# with it, and HQ merges it, checked against the version it was made
# under.  A forged form cannot come this way: see test_pull.c.
expect_exit 0 dev tutin forms
must_contain "$OUT" "visits           version 1, from HQ"
expect_exit 0 dev tutin forms --help
must_contain "$OUT" "Usage: fieldsync forms"
expect_exit 1 dev tutin forms extra
mkdir "$T/hqforms"
cp "$FORMS"/*.json "$T/hqforms/"
python3 - "$T/hqforms/visits.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1], encoding="utf-8"))
f["fields"].append({"name": "roof", "type": "choice", "values": ["sound", "leaking"]})
json.dump(f, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)
PY
stop_hq
sed -i "s|^dir = .*|dir = $T/hqforms|" "$T/hq.conf"
start_hq "$PORT"
must_contain "$(cat "$T/hq.log")" "published 1 new form version"
expect_exit 2 dev tutin visit add "beneficiary_id=$H" visit_date=2026-12-02 \
	visit_type=needs_assessment roof=leaking
must_contain "$ERR" "roof"
expect_exit 0 dev tutin pull
must_contain "$OUT" "took 1 form definitions from HQ"
expect_exit 0 dev tutin forms --json
must_contain "$OUT" '{"collection":"visits","version":2,"from":"hq"}'
must_contain "$OUT" '{"collection":"beneficiaries","version":1,"from":"hq"}'
expect_exit 0 dev tutin visit add "beneficiary_id=$H" visit_date=2026-12-02 \
	visit_type=needs_assessment roof=leaking
R=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 dev tutin sync
must_contain "$OUT" "0 quarantined at HQ"
hq export visits --format jsonl > "$T/visits"
grep "$R" "$T/visits" | grep -q '"roof":"leaking"' || fail "the visit made under HQ's form did not merge"
[ "$(hq audit list --event form | wc -l)" -eq 3 ] || fail "expected 3 published form versions"

# A change HQ quarantines does not stay the device's value: a new device
# whose own forms allow a status HQ's do not edits a household before its
# first pull; HQ refuses the edit, and the device ends with HQ's value.
forms_with_status "$T/ownforms" tourist
novi() { "$FIELDSYNC" --data-dir "$T/novi" --forms-dir "$T/ownforms" --passphrase-file "$PASS" "$@"; }
expect_exit 0 novi init --kdf interactive
TOKEN=$(hq enroll-token --team "Tim Novi" --municipality Sjenica | tail -n 1)
expect_exit 0 novi enroll "http://127.0.0.1:$PORT" "$TOKEN"
expect_exit 0 novi import beneficiaries "$T/caseload.csv"
expect_exit 0 novi beneficiary edit "$S" status=tourist
expect_exit 0 novi sync
must_contain "$OUT" "1 quarantined at HQ"
expect_exit 0 novi beneficiary show "$S" --json
must_contain "$OUT" '"status":"refugee"'
expect_exit 0 novi check

# The agent pulls on its own once unlocked: a household Sjenica registers
# reaches Tutin's agent with nothing typed on Tutin's laptop.
expect_exit 0 dev sjenica beneficiary add "full_name=Вуковић Сара" municipality=Sjenica \
	status=refugee household_size=2 consent=yes
N=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 dev sjenica sync
DATA="$T/tutin"
agent_conf
start_agent --passphrase-file "$PASS"
holds_n() { fa beneficiary list --json 2> /dev/null | grep -q "$N"; }
until_ok 60 holds_n || fail "Tutin's agent did not pull Sjenica's new household: $(cat "$T/agent.log")"
stop_agent
echo "ok: two-way sync from the command line"
