# test_conflicts.sh - `fieldsync-hq conflicts` names the teams, not only
# device ids, and says which team's edit was kept: the later one, even
# when it reaches HQ first.
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
echo "ok: conflicts name the teams and the edit kept"
