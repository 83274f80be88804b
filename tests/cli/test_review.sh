# test_review.sh - reviewing quarantined changes in HQ's console
# (ingest_review): a change HQ kept but did not merge is released, and
# merges as the in-order merge would have, then flows down to the
# device; another is rejected with a reason and HQ's value stays; each
# is audited with who and why, never the value; viewers and bad
# requests are refused.  Then conflicts (ingest_resolve): a viewer sees
# its municipality's only and may not resolve; an administrator keeps
# one value, which reaches both laptops.
set -e
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/web.sh"
[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'stop_hq'

hq_conf
printf 'metrics-token-%s\n' "$$" > "$T/metrics-token"
chmod 600 "$T/metrics-token"
printf '[console]\nmetrics_token_file = %s\n' "$T/metrics-token" >> "$T/hq.conf"
console_up

# A laptop whose own forms allow a status HQ's do not: HQ keeps its
# households' status changes in quarantine.
returnee_laptop "Tim Novi" Tutin
expect_exit 0 novi beneficiary add "full_name=Hodžić Amra" municipality=Tutin status=returnee \
	household_size=2 consent=yes
A=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 novi beneficiary add "full_name=Муратовић Енес" municipality=Tutin \
	status=returnee household_size=4 consent=yes
B=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 novi sync
must_contain "$OUT" "2 quarantined at HQ"

post /api/login '{"name":"tutin.viewer","password":"konj-baterija-spajalica"}'
VIEWER=$(cookie_of fieldsync_console)
VCSRF=$(json_field csrf)
post /api/login '{"name":"ana.admin","password":"konj-baterija-spajalica"}'
ADMIN=$(cookie_of fieldsync_console)
CSRF=$(json_field csrf)

# Both see the quarantine of Tutin's device, with the reason, no value.
req GET /api/quarantine -H "Cookie: $VIEWER"
expect_code 200 "the quarantine for a viewer"
must_contain "$BODY" '"field":"status"'
must_contain "$BODY" '"team":"Tim Novi"'
must_not_contain "$BODY" "returnee"
req GET /api/quarantine -H "Cookie: $ADMIN"
printf '%s' "$BODY" > "$T/q.json"
row() { # row RECORD: "device seq index" of RECORD's quarantined status
	python3 -c '
import json, sys
for c in json.load(open(sys.argv[1]))["changes"]:
    if c["record"] == sys.argv[2]:
        print(c["device"], c["seq"], c["index"])' "$T/q.json" "$1"
}
read -r DEV SEQ IDXA <<< "$(row "$A")"
read -r _ SEQB IDXB <<< "$(row "$B")"
[ -n "$IDXA" ] && [ -n "$IDXB" ] || fail "the quarantine does not list both changes: $(cat "$T/q.json")"

# A viewer may not act; a bad request says why; a change not there is 404.
post /api/quarantine/release "{\"device\":\"$DEV\",\"seq\":$SEQ,\"index\":$IDXA,\"reason\":\"x\"}" \
	-H "Cookie: $VIEWER" -H "X-CSRF-Token: $VCSRF"
expect_code 403 "a release by a viewer"
post /api/quarantine/release "{\"device\":\"$DEV\",\"seq\":$SEQ,\"index\":$IDXA}" \
	-H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 400 "a release without a reason"
post /api/quarantine/release "{\"device\":\"$DEV\",\"seq\":$SEQ,\"index\":999,\"reason\":\"x\"}" \
	-H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 404 "a release of a change not in quarantine"

# Released: HQ merges it, and the device gets it back.
post /api/quarantine/release \
	"{\"device\":\"$DEV\",\"seq\":$SEQ,\"index\":$IDXA,\"reason\":\"returnee is a new status\"}" \
	-H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 200 "a release"
# Rejected: HQ's value (none) stays.
post /api/quarantine/reject \
	"{\"device\":\"$DEV\",\"seq\":$SEQB,\"index\":$IDXB,\"reason\":\"entered by mistake\"}" \
	-H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 200 "a rejection"
post /api/quarantine/reject \
	"{\"device\":\"$DEV\",\"seq\":$SEQB,\"index\":$IDXB,\"reason\":\"again\"}" \
	-H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 404 "a second word on the same change"
expect_exit 0 hq quarantine --json
[ "$OUT" = "[]" ] || fail "the quarantine is not empty: $OUT"
hq export beneficiaries --format jsonl > "$T/b.jsonl"
grep "$A" "$T/b.jsonl" | grep -q '"status":"returnee"' || fail "the released status did not merge"
grep "$B" "$T/b.jsonl" > "$T/b.line" || fail "household B did not reach HQ"
! grep -q '"status":"returnee"' "$T/b.line" || fail "the rejected status merged"
expect_exit 0 novi sync
expect_exit 0 novi beneficiary show "$A" --json
must_contain "$OUT" '"status":"returnee"'
# (B's refused status stays on the device: HQ holds no value of that
# field to send back.  A known limit of two-way sync, not of review.)
expect_exit 0 hq audit list --event released --json
must_contain "$OUT" '\"user\":\"ana.admin\"'
must_contain "$OUT" 'returnee is a new status'
expect_exit 0 hq audit list --event rejected --json
must_contain "$OUT" 'entered by mistake'

# ---- conflicts ------------------------------------------------------------
# Two laptops in Tutin and two in Sjenica each hold one household from
# the same list, and edit its size at the same time.
printf 'id,full_name,municipality,status,household_size,consent\n%s\n%s\n' \
	"01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f1,Kolašinac Edin,Tutin,idp,4,yes" \
	"01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f2,Бошковић Мирјана,Sjenica,refugee,3,yes" \
	> "$T/caseload.csv"
TH=01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f1
SH=01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f2
dev_enrol t2 "Tim Tutin 2" Tutin Tutin
dev_enrol s1 "Tim Sjenica" Sjenica Sjenica
dev_enrol s2 "Tim Sjenica 2" Sjenica Sjenica
grep -v Sjenica "$T/caseload.csv" > "$T/tutin.csv"
(head -n 1 "$T/caseload.csv" && grep Sjenica "$T/caseload.csv") > "$T/sjenica.csv"
expect_exit 0 novi import beneficiaries "$T/tutin.csv"
expect_exit 0 dev t2 import beneficiaries "$T/tutin.csv"
expect_exit 0 dev s1 import beneficiaries "$T/sjenica.csv"
expect_exit 0 dev s2 import beneficiaries "$T/sjenica.csv"
expect_exit 0 novi beneficiary edit "$TH" household_size=5
expect_exit 0 dev t2 beneficiary edit "$TH" household_size=6
expect_exit 0 dev s1 beneficiary edit "$SH" household_size=1
expect_exit 0 dev s2 beneficiary edit "$SH" household_size=2
for d in t2 s1 s2; do expect_exit 0 dev "$d" sync; done
expect_exit 0 novi sync

# A Tutin laptop that imported Sjenica's list: HQ keeps its writes to
# Sjenica's household in quarantine.  They are Sjenica's business: the
# Tutin viewer does not see them, though a Tutin laptop sent them.
expect_exit 0 dev t2 import beneficiaries "$T/sjenica.csv"
expect_exit 0 dev t2 sync
must_contain "$OUT" "quarantined at HQ"
req GET /api/quarantine -H "Cookie: $ADMIN"
must_contain "$BODY" "$SH"
req GET /api/quarantine -H "Cookie: $VIEWER"
expect_code 200 "the quarantine for a viewer"
must_not_contain "$BODY" "$SH"

# open_conflicts N: /metrics counts N conflicts nobody resolved.
open_conflicts() {
	req GET /metrics -H "Authorization: Bearer $(cat "$T/metrics-token")"
	expect_code 200 "metrics"
	must_contain "$BODY" "fieldsync_conflicts $1"
}
open_conflicts 2
req GET /api/conflicts -H "Cookie: $VIEWER"
expect_code 200 "the conflicts for a viewer"
must_contain "$BODY" "$TH"
must_not_contain "$BODY" "$SH"
req GET /api/conflicts -H "Cookie: $ADMIN"
expect_code 200 "the conflicts for an admin"
must_contain "$BODY" "$SH"
printf '%s' "$BODY" > "$T/c.json"
CID=$(python3 -c '
import json, sys
c = [c for c in json.load(open(sys.argv[1]))["conflicts"] if c["record"] == sys.argv[2]]
assert len(c) == 1 and c[0]["resolved"] is None, c
# Keep the value that lost: the earlier edit, Tim Novi (5).
assert {c[0]["value_a"], c[0]["value_b"]} == {5, 6}, c
print(c[0]["id"], "a" if c[0]["value_a"] == 5 else "b")' "$T/c.json" "$TH")
read -r CID KEEP <<< "$CID"

post /api/conflicts/resolve "{\"id\":$CID,\"keep\":\"$KEEP\"}" \
	-H "Cookie: $VIEWER" -H "X-CSRF-Token: $VCSRF"
expect_code 403 "a resolution by a viewer"
post /api/conflicts/resolve "{\"id\":$CID,\"keep\":\"$KEEP\"}" -H "Cookie: $ADMIN"
expect_code 403 "a resolution without the CSRF token"
must_contain "$BODY" '"error":"csrf"'
post /api/conflicts/resolve "{\"id\":$CID,\"keep\":\"c\"}" -H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 400 "a resolution keeping c"
post /api/conflicts/resolve "{\"id\":$CID,\"keep\":\"a\",\"value\":\"7\"}" \
	-H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 400 "a resolution with both a side and a value"
post /api/conflicts/resolve "{\"id\":$CID,\"value\":\"mnogo\"}" \
	-H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 422 "a value that is not a number of people"
must_contain "$BODY" "household_size"
must_not_contain "$BODY" "mnogo"
post /api/conflicts/resolve '{"id":987654,"keep":"a"}' -H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 404 "a conflict that is not there"
post /api/conflicts/resolve "{\"id\":$CID.5,\"keep\":\"a\"}" -H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 400 "a conflict number that is not whole"
post /api/conflicts/resolve "{\"id\":$CID,\"keep\":\"$KEEP\"}" \
	-H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 200 "a resolution"
post /api/conflicts/resolve "{\"id\":$CID,\"value\":\"7\"}" \
	-H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 409 "a second resolution"
open_conflicts 1
req GET /api/conflicts -H "Cookie: $VIEWER"
printf '%s' "$BODY" > "$T/c.json"
python3 -c '
import json, sys
c = [c for c in json.load(open(sys.argv[1]))["conflicts"] if c["record"] == sys.argv[2]][0]
assert c["resolved"]["by"] == "ana.admin" and c["resolved"]["choice"] == sys.argv[3], c' \
	"$T/c.json" "$TH" "$KEEP" || fail "the viewer does not see the resolution: $(cat "$T/c.json")"
# Both Tutin laptops receive the value kept; Sjenica's conflict is open.
expect_exit 0 novi sync
expect_exit 0 dev t2 sync
expect_exit 0 novi beneficiary show "$TH" --json
must_contain "$OUT" '"household_size":5'
expect_exit 0 dev t2 beneficiary show "$TH" --json
must_contain "$OUT" '"household_size":5'
expect_exit 0 hq audit list --event resolved --json
must_contain "$OUT" '\"user\":\"ana.admin\"'
must_contain "$OUT" "\\\"conflict\\\":\\\"$CID\\\""
expect_exit 0 hq audit verify
echo "ok"
