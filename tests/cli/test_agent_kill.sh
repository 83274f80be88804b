# test_agent_kill.sh - the agent killed with kill -9 at random moments
# while it pushes, at least 50 times, and HQ killed and restarted in the
# middle of ingesting: every change reaches HQ exactly once, and the
# store passes `fieldsync check` after every kill.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
KILLS=${FS_AGENT_KILLS:-50}
trap 'kill_agent; stop_hq; rm -rf "$T"' EXIT

hq_conf

# csv N FIRST: N synthetic beneficiaries, numbered from FIRST.
csv() {
	awk -v n="$1" -v first="$2" 'BEGIN {
		print "full_name,municipality,status,household_size,consent"
		split("Petrović Marija|Јовановић Јован|Ružičić Đorđe|Шћепановић Жаклина", names, "|")
		for (i = first; i < first + n; i++)
			printf "\"%s %d\",Bujanovac,refugee,%d,yes\n", names[i % 4 + 1], i, i % 7 + 1
	}' > "$T/batch.csv"
}

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
sets_sent() { fs status --json | json_field change_sets_sent; }

hq_and_enrolled_store "Tim Bujanovac" Bujanovac
agent_conf "max_changes = 3"

# ---- kill -9 the agent while it pushes ------------------------------------
# Each round adds 60 records directly (the agent is dead), starts the
# agent, which unlocks and pushes at once, and kills it after a random
# 0-300 ms: before the unlock, while packing, with a set in flight, or
# between a receipt and the next set.
total=0
mid_push=0
for round in $(seq "$KILLS"); do
	csv 60 $((round * 100))
	expect_exit 0 fs import beneficiaries "$T/batch.csv"
	total=$((total + 60))
	acked0=$(sets_sent)
	start_agent --passphrase-file "$PASS"
	sleep "$(printf '0.%03d' $((RANDOM % 300)))"
	kill_agent
	# Mid-push: some sets of this round acknowledged, some not yet.
	[ "$(sets_sent)" -gt "$acked0" ] && [ "$(fs status --json | json_field change_sets_pending)" -gt 0 ] &&
		mid_push=$((mid_push + 1))
	if [ $((round % 10)) -eq 0 ]; then
		expect_exit 0 fs check
	fi
done
echo "killed the agent with kill -9 $KILLS times; $mid_push kills left sets half sent" >&2
[ "$mid_push" -gt 0 ] || fail "no kill landed while change sets were being sent"
expect_exit 0 fs check

# Started once more, it finishes on its own.
start_agent --passphrase-file "$PASS"
wait_hq_count beneficiaries "$total" 120 > /dev/null
same_once beneficiary beneficiaries
expect_exit 0 fa status --json
must_contain "$OUT" '"pending_changes":0'

# ---- HQ killed and restarted mid-ingest --------------------------------------
csv 1500 100000
expect_exit 0 fa import beneficiaries "$T/batch.csv"
total=$((total + 1500))
restarts=0
for r in 1 2 3 4 5; do
	sleep "$(printf '0.%03d' $((RANDOM % 500 + 100)))"
	kill -9 "$HQPID"
	wait "$HQPID" 2> /dev/null || true
	HQPID=
	restarts=$((restarts + 1))
	sleep 0.2
	start_hq "$PORT"
done
echo "HQ killed with kill -9 and restarted $restarts times during ingest" >&2
wait_hq_count beneficiaries "$total" 180 > /dev/null
same_once beneficiary beneficiaries
expect_exit 0 fa log --json
must_contain "$OUT" '"result":"unreachable"'
stop_agent
expect_exit 0 fs check
echo "ok: kill -9 of agent and HQ"
