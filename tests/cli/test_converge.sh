# test_converge.sh - convergence of two-way sync (issue 12): three devices
# in two scopes edit offline, move households between the scopes and
# sync, in a random order, while an administrator resolves conflicts
# (keeping a, b or a new value) and releases or rejects quarantined
# changes (issue 16); afterwards each device holds exactly HQ's view of
# its scope: the same households, visits and field values, and the same
# conflicts.  FS_CONVERGE_SEED repeats a run; FS_CONVERGE_ROUNDS sets its
# length.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
SEED=${FS_CONVERGE_SEED:-$RANDOM}
ROUNDS=${FS_CONVERGE_ROUNDS:-60}
echo "seed $SEED, $ROUNDS rounds (FS_CONVERGE_SEED=$SEED to repeat)" >&2
at_exit 'stop_hq'

hq_conf
printf '[server]\npull_batch = 7\n' >> "$T/hq.conf"
expect_exit 0 hq init
start_hq

dev_enrol sj "Tim Sjenica" Sjenica Sjenica
dev_enrol tu "Tim Tutin" Tutin Tutin
dev_enrol ju "Tim Jug" Tutin "Sjenica, Tutin"

# The shared caseload list: each team imports the households of its
# scope, with the same ids.
python3 - "$T" <<'PY'
import sys
names = ["Ружичић Ђорђе", "Šćepanović Žaklina", "Petrović Ana", "Јовановић Јован",
         "Ilić Marija", "Стојановић Милица", "Đurđević Luka", "Милошевић Стефан"]
rows = {"sj": [], "tu": [], "ju": []}
for i, n in enumerate(names):
    muni = "Sjenica" if i % 2 == 0 else "Tutin"
    row = "0193a1b2-c3d4-7abc-8def-%012d,%s,%s,refugee,%d,yes" % (i + 1, n, muni, i % 5 + 1)
    rows["sj" if muni == "Sjenica" else "tu"].append(row)
    rows["ju"].append(row)
for d, rs in rows.items():
    with open("%s/%s.csv" % (sys.argv[1], d), "w", encoding="utf-8") as f:
        f.write("id,full_name,municipality,status,household_size,consent\n")
        f.write("\n".join(rs) + "\n")
PY
for d in sj tu ju; do expect_exit 0 dev "$d" import beneficiaries "$T/$d.csv"; done

# ids DEV: the households a device holds now.
ids() { dev "$1" beneficiary list --json | python3 -c '
import json, sys
for l in sys.stdin:
    print(json.loads(l)["id"])'; }

# The random walk: edits, visits and moves on random devices, and syncs
# in random order, all from one seed.
python3 - "$SEED" "$ROUNDS" > "$T/plan" <<'PY'
import random, sys
rnd = random.Random(int(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    d = rnd.choice(["sj", "tu", "ju"])
    op = rnd.choice(["size", "size", "status", "visit", "sync", "sync", "move", "resolve",
                     "review"])
    print(d, op, rnd.randint(0, 10**6), rnd.randint(1, 9))
PY
while read -r d op pick n; do
	mapfile -t mine < <(ids "$d")
	[ "${#mine[@]}" -gt 0 ] || op=sync
	id=${mine[$((pick % (${#mine[@]} > 0 ? ${#mine[@]} : 1)))]:-}
	case $op in
	size) expect_exit 0 dev "$d" beneficiary edit "$id" household_size="$n" ;;
	status) expect_exit 0 dev "$d" beneficiary edit "$id" \
		status="$( [ $((n % 2)) -eq 0 ] && echo idp || echo refugee)" ;;
	visit) expect_exit 0 dev "$d" visit add "beneficiary_id=$id" visit_date=2026-11-0$n \
		visit_type=needs_assessment ;;
	move)
		# Only Jug covers both municipalities; the others may not move
		# a household out of their scope (HQ would refuse it).
		if [ "$d" = ju ]; then
			expect_exit 0 dev ju beneficiary edit "$id" \
				municipality="$( [ $((n % 2)) -eq 0 ] && echo Sjenica || echo Тутин)"
		fi ;;
	sync) expect_exit 0 dev "$d" sync ;;
	resolve)
		# An administrator settles an open conflict: keep a, keep b, or
		# enter a value of the field's type.
		hq conflicts --json > "$T/open.json"
		# Python's answer to a file first, so that its failure fails
		# the test (set -e); an empty answer is nothing to act on.
		python3 - "$T/open.json" "$pick" "$n" > "$T/pick" <<'PY'
import json, sys
c = [c for c in json.load(open(sys.argv[1], encoding="utf-8")) if c["resolved"] is None and not c["superseded"]]
pick, n = int(sys.argv[2]), int(sys.argv[3])
if c:
    c = c[pick % len(c)]
    new = {"household_size": str(n), "status": "idp" if n % 2 else "refugee",
           "municipality": "Sjenica" if n % 2 else "Tutin"}.get(c["field"])
    print(c["id"], "--value=" + new if n % 3 == 2 and new else "--keep=" + "ab"[n % 2])
PY
		read -r cid how < "$T/pick" || true # nothing open: nothing read
		[ -z "${cid:-}" ] || expect_exit 0 hq resolve "$cid" "$how" ;;
	review)
		# ... or releases or rejects a change HQ kept in quarantine.
		hq quarantine --json > "$T/q.json"
		python3 - "$T/q.json" "$pick" > "$T/pick" <<'PY'
import json, sys
q = json.load(open(sys.argv[1], encoding="utf-8"))
if q:
    q = q[int(sys.argv[2]) % len(q)]
    print(q["device"], q["seq"], q["index"])
PY
		read -r qd qs qi < "$T/pick" || true # nothing in quarantine
		if [ -n "${qd:-}" ]; then
			verb=$( [ $((n % 2)) -eq 0 ] && echo release || echo reject)
			expect_exit 0 hq "$verb" "$qd" "$qs" "$qi" --reason "convergence test"
		fi ;;
	esac
	cid='' qd=''
done < "$T/plan"
# Every run ends with each review action at least once when there is
# something to act on: the walk may not have drawn them.
for d in sj tu ju; do expect_exit 0 dev "$d" sync; done
hq conflicts --json > "$T/open.json"
cid=$(python3 -c '
import json, sys
c = [c for c in json.load(open(sys.argv[1], encoding="utf-8")) if c["resolved"] is None and not c["superseded"]]
print(c[-1]["id"] if c else "")' "$T/open.json")
[ -z "$cid" ] || expect_exit 0 hq resolve "$cid" --keep a
hq quarantine --json > "$T/q.json"
python3 -c '
import json, sys
q = json.load(open(sys.argv[1], encoding="utf-8"))
print(*(q[0]["device"], q[0]["seq"], q[0]["index"]) if q else "")' "$T/q.json" > "$T/pick"
read -r qd qs qi < "$T/pick" || true
[ -z "${qd:-}" ] || expect_exit 0 hq release "$qd" "$qs" "$qi" --reason "convergence test"

# Everyone sends, then everyone receives.
for d in sj tu ju; do expect_exit 0 dev "$d" sync; done
for d in sj tu ju; do expect_exit 0 dev "$d" pull; done
for d in sj tu ju; do expect_exit 0 dev "$d" check; done

hq export beneficiaries --format jsonl > "$T/hq-b.jsonl"
hq export visits --format jsonl > "$T/hq-v.jsonl"
hq conflicts --json > "$T/hq-c.json"
for d in sj tu ju; do
	dev "$d" beneficiary list --json > "$T/$d-b.jsonl"
	dev "$d" visit list --json > "$T/$d-v.jsonl"
	dev "$d" conflicts --json > "$T/$d-c.jsonl"
done
python3 - "$T" <<'PY' || fail "a device does not hold HQ's view of its scope (seed $SEED)"
import json, sys, unicodedata
t = sys.argv[1]
def fold(s):
    # Only what the names above need: Tutin and Тутин are one.
    return {"тутин": "tutin"}.get(s.strip().lower(), s.strip().lower())
scopes = {"sj": {"sjenica"}, "tu": {"tutin"}, "ju": {"sjenica", "tutin"}}
B = ("full_name", "municipality", "status", "household_size", "consent")
V = ("beneficiary_id", "visit_date", "visit_type", "notes")
hq_b = {o["id"]: o for o in map(json.loads, open(t + "/hq-b.jsonl", encoding="utf-8"))}
hq_v = {o["id"]: o for o in map(json.loads, open(t + "/hq-v.jsonl", encoding="utf-8"))}
hq_c = json.load(open(t + "/hq-c.json", encoding="utf-8"))
bad = []
for d, sc in scopes.items():
    want_b = {i: {k: o.get(k) for k in B} for i, o in hq_b.items() if fold(o["municipality"]) in sc}
    want_v = {i: {k: o.get(k) for k in V} for i, o in hq_v.items() if o["beneficiary_id"] in want_b}
    got_b = {}
    for o in map(json.loads, open("%s/%s-b.jsonl" % (t, d), encoding="utf-8")):
        got_b[o["id"]] = {k: o["fields"].get(k) for k in B}
    got_v = {}
    for o in map(json.loads, open("%s/%s-v.jsonl" % (t, d), encoding="utf-8")):
        got_v[o["id"]] = {k: o["fields"].get(k) for k in V}
    if got_b != want_b:
        bad.append("%s: households differ: %d at HQ in scope, %d on the device, %d values differ"
                   % (d, len(want_b), len(got_b),
                      sum(1 for i in set(want_b) & set(got_b) if want_b[i] != got_b[i])))
    if got_v != want_v:
        bad.append("%s: visits differ: %d at HQ in scope, %d on the device" % (d, len(want_v), len(got_v)))
    key = lambda c: (c["record"], c["field"], c["device_a"], c["hlc_a"], c["device_b"], c["hlc_b"])
    want_c = {key(c) for c in hq_c if c["record"] in want_b or c["record"] in want_v}
    got_c = {key(json.loads(l)) for l in open("%s/%s-c.jsonl" % (t, d), encoding="utf-8") if l.strip()}
    if got_c != want_c:
        bad.append("%s: conflicts differ: %d at HQ in scope, %d on the device" % (d, len(want_c), len(got_c)))
    print("%s: %d households, %d visits, %d conflicts, as HQ" % (d, len(got_b), len(got_v), len(got_c)),
          file=sys.stderr)
if bad:
    sys.exit("\n".join(bad))
PY
expect_exit 0 hq audit list --json
echo "resolved $(printf '%s\n' "$OUT" | grep -c '"event":"resolved"'), released $(printf '%s\n' "$OUT" | grep -c '"event":"released"'), rejected $(printf '%s\n' "$OUT" | grep -c '"event":"rejected"')" >&2
echo "ok: three devices in two scopes converge to HQ's view (seed $SEED)"
