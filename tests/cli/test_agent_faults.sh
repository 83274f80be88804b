# test_agent_faults.sh - the agent pushing to the real fieldsync-hq
# through faultproxy (tests/tools/faultproxy.c), which cuts, resets,
# stalls and slices connections: with no command typed, every change
# reaches HQ exactly once (each record once in HQ's merged view, each
# change set accepted once, in sequence, with every change), the sync
# log shows failed and successful attempts, and every kind of fault
# really happened.  Then a link that stalls forever: the agent keeps
# answering, the attempt fails after the stall timeout, and once the
# link is back everything arrives.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
proxy_setup
at_exit 'kill_agent; kill_proxy; stop_hq'

# fired LOG FAULT: connections in LOG on which FAULT happened.
fired() { awk -v f="$2" '$4 == f && $10 == "yes"' "$1" | wc -l; }

# tally LOG: "pass 5, cut-up 3, ..." (faults that happened).
tally() {
	awk '$4 == "pass" { n["pass"]++ } $10 == "yes" { n[$4]++ }
	END {
		split("pass cut-up cut-down stall reset slice", f, " ")
		for (i = 1; i <= 6; i++)
			printf "%s%s %d", (i > 1 ? ", " : ""), f[i], n[f[i]]
	}' "$1"
}

# csv FILE N FIRST: N synthetic beneficiaries numbered from FIRST.
csv() {
	awk -v n="$2" -v first="$3" 'BEGIN {
		print "full_name,municipality,status,household_size,consent"
		split("Petrović Marija|Јовановић Јован|Ružičić Đorđe|Шћепановић Жаклина|" \
		      "Đurđević Ljiljana|Стојановић Милица", names, "|")
		for (i = first; i < first + n; i++)
			printf "\"%s %d\",Preševo,refugee,%d,yes\n", names[i % 6 + 1], i, i % 7 + 1
	}' > "$1"
}

# visit N: one visit through the agent.
visit() {
	expect_exit 0 fa visit add "beneficiary_id=$ID1" "visit_date=2026-11-$(printf %02d $(($1 % 28 + 1)))" \
		visit_type=needs_assessment "notes=posjeta $1; посета"
}

now_ms() { date +%s%3N; }

# status_json KEY: a top-level member of `fieldsync status --json`.
status_json() { fa status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# wait_sent [SECONDS]: until the device has every change acknowledged.
all_sent() { [ "$(status_json pending_changes)" = 0 ] && [ "$(status_json change_sets_pending)" = 0 ]; }
wait_sent() {
	until_ok "${1:-60}" all_sent || fail "changes still unacknowledged after $((${1:-60} * SCALE)) s: $(fa status)"
}

hq_conf

T0=$(now_ms)
init_store
expect_exit 0 hq init
start_hq
agent_conf "connect_timeout = 2" "stall_timeout = 2" "max_changes = 20"
start_agent --passphrase-file "$PASS"

# ---- enrol through a passing proxy -----------------------------------------
start_proxy "$T/proxy-enrol.log" pass
URL="http://127.0.0.1:$PXPORT"
TOKEN=$(hq enroll-token --team "Tim Preševo" --municipality Preševo | tail -n 1)
printf '%s\n' "$TOKEN" > "$T/token"
enroll_agent "$URL"
must_contain "$OUT" "enrolled with HQ at $URL"
stop_proxy
grep -q "fault pass" "$T/proxy-enrol.log" || fail "the enrolment did not go through the proxy"

# ---- a few hundred changes through a faulty link, no command typed ----------
# Faults strike within the first 1024 bytes each way, where a set's
# request (about 750 bytes) or its receipt (about 350) is; slicing is
# limited to 2 kB each way, as it moves about 1.5 kB/s.  A 3 s stall is
# usually outlived (libcurl's speed check looks back about 5 s); the
# stall that never ends comes below.
MIXED="$T/proxy-mixed.log"
start_proxy "$MIXED" mixed --max-bytes 1024 --slice-bytes 2048 --stall-ms 3000
expect_exit 0 fa beneficiary add "full_name=Ружичић Ђорђе" municipality=Preševo status=refugee \
	household_size=4 consent=yes
ID1=$(printf '%s\n' "$OUT" | tail -n 1)
csv "$T/batch.csv" 300 1
expect_exit 0 fa import beneficiaries "$T/batch.csv"
must_contain "$OUT" "imported 300 beneficiaries"
for i in 1 2 3 4 5; do visit "$i"; done
NB=301
NV=5
ms=$(wait_hq_count beneficiaries "$NB")
wait_hq_count visits "$NV" > /dev/null
echo "301 beneficiaries (1505 changes, 76 sets) and 5 visits merged at HQ through the faulty link: ${ms} ms" >&2

# More rounds of writes until every kind of fault has struck (the proxy
# deals each fault twice in every 15 connections, but one may pass
# unharmed when the connection carries fewer bytes than its trigger).
round=0
for f in cut-up cut-down stall reset slice; do
	while [ "$(fired "$MIXED" "$f")" -eq 0 ]; do
		[ "$round" -lt 100 ] ||
			fail "after $round more rounds no $f happened: $(tally "$MIXED")"
		round=$((round + 1))
		csv "$T/batch.csv" 20 $((1000 + round * 20))
		expect_exit 0 fa import beneficiaries "$T/batch.csv"
		visit $((NV + 1))
		NB=$((NB + 20))
		NV=$((NV + 1))
		wait_hq_count beneficiaries "$NB" > /dev/null
		wait_hq_count visits "$NV" > /dev/null
	done
done
wait_sent
stop_proxy
echo "faults over $(wc -l < "$MIXED") connections, $round extra rounds: $(tally "$MIXED")" >&2

# ---- a link that stalls forever ---------------------------------------------
# Every connection stalls after its first byte one way or the other:
# nothing goes through and only the agent's stall timeout ends a push.
STALL="$T/proxy-stall.log"
start_proxy "$STALL" stall --stall-forever --max-bytes 1
fa log --json --limit 10000 > "$T/log.before"
visit $((NV + 1))
NV=$((NV + 1))
# A reply that says "pushing" was itself answered during the push: status
# is not queued behind a push (the link stalls forever).
pushing() { fa status --json | grep -q '"pushing":true'; }
wait_for 60 "the agent did not start a push" pushing
expect_exit 0 fa status
must_contain "$OUT" "agent       running, store unlocked"
visit $((NV + 1)) # a field worker's write is not held up either
NV=$((NV + 1))
# The attempt must fail by itself: the link stalls forever, so only the
# stall timeout (2 s) can end it, never sooner than that.
failed_attempt() {
	fa log --json --limit 10000 > "$T/log.after"
	took=$(python3 - "$T/log.before" "$T/log.after" <<'PY'
import json, sys
def rows(path):
    return [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
seen = {(r["id"], r.get("repeats", 1)) for r in rows(sys.argv[1])}
for r in rows(sys.argv[2]):
    if (r["id"], r.get("repeats", 1)) not in seen and r["result"] != "ok":
        print(r["duration_ms"], r["result"])
        break
PY
)
	[ -n "$took" ]
}
took=
until_ok 60 failed_attempt || fail "no failed attempt logged while the link stalled: $(fa log --limit 5)"
read -r took_ms took_result <<< "$took"
[ "$took_result" = unreachable ] || fail "a stalled push was logged as $took_result, expected unreachable"
[ "$took_ms" -ge 1500 ] || fail "a stalled push failed after $took_ms ms; the stall timeout is 2 s"
echo "stalled push gave up after $took_ms ms (stall_timeout = 2)" >&2
[ "$(fired "$STALL" stall)" -ge 1 ] || fail "the proxy stalled nothing: $(cat "$STALL")"
[ "$(status_json change_sets_pending)" -ge 1 ] || fail "nothing left to send after a stalled push"

# The link comes back: what waited goes through, no command typed.
stop_proxy
start_proxy "$T/proxy-pass.log" pass
ms=$(wait_hq_count visits "$NV")
wait_sent
echo "link back to the last visits merged: ${ms} ms" >&2
stop_proxy

# ---- exactly once ------------------------------------------------------------
expect_exit 0 fa log --json --limit 10000
must_contain "$OUT" '"result":"accepted"'
printf '%s\n' "$OUT" | grep '"event":"push"' | grep -vq '"result":"accepted"' ||
	fail "the sync log shows no failed attempt"
printf '%s\n' "$OUT" > "$T/synclog.jsonl"
expect_exit 0 fa check
DEVICE=$(status_json device)
SENT=$(status_json change_sets_sent)
stop_agent
same_once beneficiary beneficiaries
same_once visit visits
[ "$(local_ids beneficiary | wc -l)" -eq "$NB" ] || fail "the device has $(local_ids beneficiary | wc -l) beneficiaries, expected $NB"
[ "$(local_ids visit | wc -l)" -eq "$NV" ] || fail "the device has $(local_ids visit | wc -l) visits, expected $NV"
# Each change set accepted once, in sequence 1..SENT, and HQ merged as
# many changes as were written (one per field: 5 per beneficiary, 4 per
# visit) and as the device had acknowledged.
hq audit list --json > "$T/events.json" || fail "hq audit list failed"
python3 - "$T/events.json" "$T/synclog.jsonl" "$DEVICE" "$SENT" $((NB * 5 + NV * 4)) \
	<<'PY' || fail "HQ's change sets are not the device's, exactly once"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
seqs, hq_changes = [], 0
for e in events:
    d = json.loads(e.get("detail") or "{}")
    if e["event"] == "push" and d.get("result") == "accepted" and e.get("device") == sys.argv[3]:
        seqs.append(d["seq"])
        hq_changes += d["changes"]
rows = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
dev_changes = sum(r["changes"] for r in rows if r["event"] == "push")
sent = int(sys.argv[4])
if sorted(seqs) != list(range(1, sent + 1)):
    sys.exit("HQ accepted sequences %s..., the device sent 1..%d" % (sorted(seqs)[:5], sent))
if hq_changes != dev_changes or hq_changes != int(sys.argv[5]):
    sys.exit("HQ merged %d changes, the device had %d acknowledged, %s were written"
             % (hq_changes, dev_changes, sys.argv[5]))
print("%d change sets, %d changes, each accepted once" % (sent, hq_changes), file=sys.stderr)
PY

for word in Ружичић Petrović Јовановић Ružičić Шћепановић Đurđević Стојановић posjeta посета; do
	must_not_contain "$(cat "$T/agent.log")" "$word"
done
echo "ok: every change through a faulty link exactly once ($(($(now_ms) - T0)) ms)"
