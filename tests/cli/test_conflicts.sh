# test_conflicts.sh - `fieldsync-hq conflicts` names the teams, not only
# device ids, and says which team's edit was kept: the later one, even
# when it reaches HQ first.  Then an administrator resolves the conflict
# (`resolve`): the value chosen reaches both devices, an edit made after
# it still wins, and the audit log says who chose what, never the value.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'stop_hq'

hq_conf
expect_exit 0 hq init
start_hq

# dev NAME ARGS...: fieldsync on that team's own store.
dev() {
	local d=$1
	shift
	"$FIELDSYNC" --data-dir "$T/$d" --passphrase-file "$PASS" "$@"
}
printf 'id,full_name,municipality,status,household_size,consent\n%s\n' \
	"01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f7,Stanković Vesna,Preševo,refugee,4,yes" > "$T/caseload.csv"
for d in kikinda tutin; do
	expect_exit 0 dev "$d" init --kdf interactive
	case $d in
	kikinda) team="Tim Kikinda" ;;
	*) team="Тим Тутин" ;;
	esac
	# Both teams cover Preševo, where the shared household lives.
	TOKEN=$(hq enroll-token --team "$team" --municipality "$d" --scope "$d, Preševo" | tail -n 1)
	expect_exit 0 dev "$d" enroll "http://127.0.0.1:$PORT" "$TOKEN"
	expect_exit 0 dev "$d" import beneficiaries "$T/caseload.csv"
done
id=01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f7
# Kikinda edits first, Tutin later; the later edit reaches HQ first.
expect_exit 0 dev kikinda beneficiary edit "$id" household_size=5
expect_exit 0 dev tutin beneficiary edit "$id" household_size=6
expect_exit 0 dev tutin sync
expect_exit 0 dev kikinda sync

expect_exit 0 hq conflicts
must_contain "$OUT" "record $id, field household_size"
must_contain "$OUT" "Tim Kikinda (device "
must_contain "$OUT" "Тим Тутин (device "
must_contain "$OUT" "set 5 at "
must_contain "$OUT" "set 6 at "
must_contain "$OUT" "kept: 6 from Тим Тутин, the later edit"
must_not_contain "$OUT" "Stanković"
expect_exit 0 hq conflicts --json
python3 - "$OUT" <<'PY' || fail "conflicts --json: $OUT"
import json, sys
rows = [r for r in json.loads(sys.argv[1]) if r["field"] == "household_size"]
assert len(rows) == 1, rows
r = rows[0]
assert {r["team_a"], r["team_b"]} == {"Tim Kikinda", "Тим Тутин"}, r
won = "a" if r["winner"] == r["device_a"] else "b"
assert r["team_" + won] == "Тим Тутин" and r["value_" + won] == 6, r
PY
expect_exit 0 hq export beneficiaries --format jsonl
must_contain "$OUT" '"household_size":6'
# Kikinda registered the household first: its team sees Tutin's edit.
expect_exit 0 hq review
must_contain "$OUT" "record $id (beneficiaries), field household_size changed by Тим Тутин (device "
must_contain "$OUT" "registered by Tim Kikinda; kept"
must_not_contain "$OUT" "Stanković"

# ---- resolving it -------------------------------------------------------
size_on() { # size_on DEVICE: household_size as that device holds it
	dev "$1" beneficiary show "$id" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["fields"]["household_size"])'
}
expect_exit 0 hq conflicts --json
CID=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print([r["id"] for r in json.load(sys.stdin) if r["field"] == "household_size"][0])')
LOSER=$(printf '%s' "$OUT" | python3 -c 'import json,sys; r=[r for r in json.load(sys.stdin) if r["field"] == "household_size"][0]; print("a" if r["winner"] == r["device_b"] else "b")')
# The laptops were told of the conflict with their pull.
expect_exit 0 dev kikinda sync
expect_exit 0 dev kikinda conflicts
must_contain "$OUT" "kept: 6, the later edit"
expect_exit 1 hq resolve "$CID"
must_contain "$ERR" "--keep a"
expect_exit 1 hq resolve "$CID" --keep c
expect_exit 2 hq resolve 987654 --keep a
must_contain "$ERR" "no conflict 987654"
# A new value is read by the field's type, and refused when it is not one.
expect_exit 2 hq resolve "$CID" --value "četiri"
must_contain "$ERR" "household_size"
must_not_contain "$ERR" "četiri"
# ... also from a file, which no process list shows.
printf 'pet\n' > "$T/value"
expect_exit 2 hq resolve "$CID" --value-file "$T/value"
must_contain "$ERR" "household_size"
must_not_contain "$ERR" "pet"
expect_exit 1 hq resolve "$CID" --value-file "$T/value" --keep a
# Keep the edit that lost: the earlier one, Kikinda's 5.
expect_exit 0 hq resolve "$CID" --keep "$LOSER"
must_contain "$OUT" "resolved conflict $CID"
expect_exit 2 hq resolve "$CID" --keep a
must_contain "$ERR" "already resolved"
expect_exit 0 hq export beneficiaries --format jsonl
must_contain "$OUT" '"household_size":5'
expect_exit 0 hq conflicts
must_contain "$OUT" "resolved by shell:"
expect_exit 0 hq conflicts --json
python3 - "$OUT" "$LOSER" "$CID" <<'PY' || fail "conflicts --json after resolve: $OUT"
import json, sys
r = [r for r in json.loads(sys.argv[1]) if r["field"] == "household_size"][0]
res = r["resolved"]
assert res and res["choice"] == sys.argv[2] and res["conflict"] == int(sys.argv[3]), r
assert res["by"].startswith("shell:"), r
PY
# Both devices receive the outcome, the winner's team included.
for d in tutin kikinda; do
	expect_exit 0 dev "$d" sync
	[ "$(size_on "$d")" = 5 ] || fail "$d holds household_size $(size_on "$d") after the resolution"
done
# ... and that the decision settled it.
expect_exit 0 dev kikinda conflicts
must_contain "$OUT" "settled since: a later write holds the field"
must_not_contain "$OUT" "kept: 6"
expect_exit 0 dev kikinda conflicts --json
must_contain "$OUT" '"superseded":true'
# The value is HQ's write, not either team's.
expect_exit 0 hq devices --json
DEVS=$OUT
expect_exit 0 dev tutin beneficiary show "$id" --json
python3 - "$OUT" "$DEVS" <<'PY' || fail "the resolved value is not HQ's write: $OUT"
import json, sys
by = json.loads(sys.argv[1])["updated_by"]
assert by and by not in [d["id"] for d in json.loads(sys.argv[2])], by
PY
# The audit entry names the conflict, the choice and who; not the value.
expect_exit 0 hq audit list --event resolved --json
python3 - "$OUT" "$CID" "$LOSER" <<'PY' || fail "the resolved entry: $OUT"
import json, sys
e = json.loads(json.loads(sys.argv[1])["detail"])
assert e["conflict"] == sys.argv[2] and e["choice"] == sys.argv[3], e
assert e["field"] == "household_size" and e["user"].startswith("shell:"), e
assert set(e) == {"conflict", "record", "field", "choice", "user"}, e
PY
# An edit made after the resolution wins over it, as in-order merging gives.
expect_exit 0 dev tutin beneficiary edit "$id" household_size=7
expect_exit 0 dev tutin sync
expect_exit 0 dev kikinda sync
expect_exit 0 hq export beneficiaries --format jsonl
must_contain "$OUT" '"household_size":7'
[ "$(size_on kikinda)" = 7 ] || fail "kikinda holds household_size $(size_on kikinda) after the later edit"
# A conflict that a later edit already settled: no choice between its
# two values may undo that edit.
expect_exit 0 dev kikinda beneficiary edit "$id" status=idp
expect_exit 0 dev tutin beneficiary edit "$id" status=asylum_seeker
expect_exit 0 dev kikinda sync
expect_exit 0 dev tutin sync
expect_exit 0 dev kikinda sync
expect_exit 0 dev kikinda beneficiary edit "$id" status=host_community
expect_exit 0 dev kikinda sync
expect_exit 0 hq conflicts --json
SID=$(printf '%s' "$OUT" | python3 -c '
import json, sys
c = [c for c in json.load(sys.stdin) if c["field"] == "status"]
assert len(c) == 1 and c[0]["superseded"] and c[0]["resolved"] is None, c
print(c[0]["id"])') || fail "the status conflict is not shown superseded: $OUT"
expect_exit 2 hq resolve "$SID" --keep a
must_contain "$ERR" "the field was changed after it"
expect_exit 0 hq export beneficiaries --format jsonl
must_contain "$OUT" '"status":"host_community"'
expect_exit 0 hq audit verify
echo "ok: conflicts name the teams and the edit kept; a resolution reaches the devices"
