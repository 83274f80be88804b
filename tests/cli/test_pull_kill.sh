# test_pull_kill.sh - `fieldsync pull` killed with kill -9 at random
# moments, many times, while unsent local changes wait: the store passes
# `fieldsync check`, no unsent change is lost, and once a pull finishes
# the device holds exactly HQ's view of its scope (issue 12).
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
KILLS=${FS_PULL_KILLS:-60}
at_exit 'stop_hq'

hq_conf
# Small down-sets: a pull is hundreds of sets, so kills land between and
# inside them.
printf '[server]\npull_batch = 2\n' >> "$T/hq.conf"
expect_exit 0 hq init
start_hq

dev_enrol sjenica "Tim Sjenica" Sjenica Sjenica
dev_enrol jug "Tim Jug" Tutin "Tutin, Sjenica"

# Sjenica's caseload reaches HQ: 600 households, 3000 fields.
awk 'BEGIN {
	print "full_name,municipality,status,household_size,consent"
	split("Petrović Marija|Јовановић Јован|Ružičić Đorđe|Шћепановић Жаклина", names, "|")
	for (i = 1; i <= 600; i++)
		printf "\"%s %d\",Sjenica,refugee,%d,yes\n", names[i % 4 + 1], i, i % 7 + 1
}' > "$T/caseload.csv"
expect_exit 0 dev sjenica import beneficiaries "$T/caseload.csv"
expect_exit 0 dev sjenica sync

# Jug records offline: these must survive every kill, unsent.
for n in "Илић Петар" "Ilić Marija" "Стојановић Ана"; do
	expect_exit 0 dev jug beneficiary add "full_name=$n" municipality=Tutin status=idp \
		household_size=2 consent=yes
done
pending() { dev jug status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending_changes"])'; }
[ "$(pending)" -eq 15 ] || fail "expected 15 unsent changes before the pulls"

killed=0
for round in $(seq "$KILLS"); do
	# The binary itself, not through dev(): $! must be the process.
	"$FIELDSYNC" --data-dir "$T/jug" --forms-dir "$FORMS" --passphrase-file "$PASS" pull \
		> "$T/pull.out" 2>&1 &
	pid=$!
	# A random moment: during the key derivation, a down-set in flight,
	# or one being applied (a pause to pick the moment, not a deadline).
	sleep "$(printf '0.%03d' $((RANDOM % 80 + 5)))"
	if ! kill -9 "$pid" 2> /dev/null; then
		# It finished first: it must have finished well.
		wait "$pid" || fail "a pull failed: $(cat "$T/pull.out")"
		break
	fi
	killed=$((killed + 1))
	wait "$pid" 2> /dev/null || true
	if [ $((round % 10)) -eq 0 ]; then
		expect_exit 0 dev jug check
	fi
done
echo "killed $killed pulls with kill -9" >&2
[ "$killed" -gt 1 ] || fail "only $killed pulls were killed"
expect_exit 0 dev jug check
[ "$(pending)" -eq 15 ] || fail "unsent changes were lost or changed by pulls: $(pending) left"
expect_exit 0 dev jug pull
expect_exit 0 dev jug check

# Jug holds exactly HQ's view of Sjenica's caseload, plus its own three.
hq export beneficiaries --format jsonl > "$T/hq.jsonl"
dev jug beneficiary list --json > "$T/jug.jsonl"
python3 - "$T/hq.jsonl" "$T/jug.jsonl" <<'PY' || fail "the device does not hold HQ's view of its scope"
import json, sys
hq = {}
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    hq[o["id"]] = {k: o[k] for k in ("full_name", "municipality", "status", "household_size", "consent")}
dev = {}
for line in open(sys.argv[2], encoding="utf-8"):
    o = json.loads(line)
    dev[o["id"]] = {k: o["fields"].get(k) for k in ("full_name", "municipality", "status", "household_size", "consent")}
mine = {i for i, f in dev.items() if f["municipality"] == "Tutin"}
if len(mine) != 3:
    sys.exit("the device's own 3 households: found %d" % len(mine))
others = {i: f for i, f in dev.items() if i not in mine}
if others != hq:
    missing = set(hq) - set(others)
    extra = set(others) - set(hq)
    sys.exit("missing %d, extra %d, different %d" % (len(missing), len(extra),
             sum(1 for i in set(hq) & set(others) if hq[i] != others[i])))
print("device holds HQ's %d households and its own 3" % len(hq), file=sys.stderr)
PY
# Nothing was fetched twice beyond a set: the chain advanced one by one.
hq audit list --event pull --json > "$T/pulls.json"
python3 - "$T/pulls.json" <<'PY' || fail "down-sets were made twice"
import json, sys
seqs = {}
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    d = json.loads(e["detail"])
    seqs.setdefault(e["device"], []).append(d["seq"])
for dev, s in seqs.items():
    if s != list(range(1, len(s) + 1)):
        sys.exit("device %s: down-sets %s..." % (dev, s[:10]))
PY
# The unsent changes go up after all.
expect_exit 0 dev jug sync
must_contain "$OUT" "sent 1 change sets (15 changes), 0 quarantined at HQ"
echo "ok: pulls killed $killed times, nothing unsent lost, the device equal to HQ's scope"
