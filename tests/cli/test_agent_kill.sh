# test_agent_kill.sh - the agent killed with kill -9 at random moments
# while it pushes, at least 50 times, and HQ killed and restarted in the
# middle of ingesting: every change reaches HQ exactly once, and the
# store passes `fieldsync check` after every kill.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
KILLS=${FS_AGENT_KILLS:-50}
# HQ may be stopped (SIGSTOP) when a check fails: let it take the SIGTERM.
at_exit '[ -z "$HQPID" ] || kill -CONT "$HQPID" 2> /dev/null; kill_agent; stop_hq'

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
# Each round adds 20 records (34 sets) directly (the agent is dead) and starts the
# agent, which unlocks and pushes at once.  Odd rounds kill it after a
# random 0-300 ms: before the unlock, while packing, with a set in flight
# or between a receipt and the next set.  Even rounds make the kill land
# mid-push whatever the machine's speed: HQ is stopped (SIGSTOP) before
# the agent starts, then let run in slices until the agent reports a set
# of this round acknowledged; HQ stopped again, the agent still has sets
# to send and one in flight, and is killed there.
# agent_json KEY: a number from the agent's own status (-1 until it has
# unlocked the store and can say).
agent_json() {
	fa status --json 2> /dev/null | python3 -c '
import json, sys
try:
    print(int(json.load(sys.stdin).get(sys.argv[1], -1)))
except ValueError:
    print(-1)' "$1"
}
agent_acked_since() { [ "$(agent_json change_sets_sent)" -gt "$1" ]; }
# hq_signal SIG: stop or continue HQ, which must still be there.
hq_signal() { kill "-$1" "$HQPID" 2> /dev/null || fail "HQ ($HQPID) is gone: $(tail -5 "$T/hq.log")"; }
total=0
mid_push=0
stopped_rounds=0
for round in $(seq "$KILLS"); do
	csv 20 $((round * 100))
	expect_exit 0 fs import beneficiaries "$T/batch.csv"
	total=$((total + 20))
	acked0=$(sets_sent)
	if [ $((round % 2)) -eq 1 ]; then
		start_agent --passphrase-file "$PASS"
		sleep "$(printf '0.%03d' $((RANDOM % 300)))"
		kill_agent
	else
		stopped_rounds=$((stopped_rounds + 1))
		hq_signal STOP
		start_agent --passphrase-file "$PASS"
		# Slices grow until HQ gets something done, so this ends on any
		# machine; it stops at the first acknowledgement of the round.
		slice=0
		until agent_acked_since "$acked0"; do
			kill -0 "$APID" 2> /dev/null || fail "the agent died: $(tail -5 "$T/agent.log")"
			hq_signal CONT
			[ "$slice" -eq 0 ] || sleep "$(printf '0.%03d' "$slice")"
			hq_signal STOP
			[ "$slice" -ge 200 ] || slice=$((slice + 1))
		done
		left=$(agent_json pending_changes)
		kill_agent
		hq_signal CONT
		[ "$left" -gt 0 ] && mid_push=$((mid_push + 1))
	fi
	if [ $((round % 10)) -eq 0 ]; then
		expect_exit 0 fs check
	fi
done
echo "killed the agent with kill -9 $KILLS times; $mid_push of $stopped_rounds stopped-HQ kills left sets half sent" >&2
[ "$mid_push" -gt 0 ] || fail "no kill landed while change sets were being sent"
expect_exit 0 fs check

# Started once more, it finishes on its own.
start_agent --passphrase-file "$PASS"
wait_hq_count beneficiaries "$total" 300 > /dev/null
same_once beneficiary beneficiaries
nothing_pending() { [ "$(agent_json pending_changes)" -eq 0 ]; }
wait_for 120 "the device still has changes pending: $(fa status)" nothing_pending

# ---- HQ killed and restarted mid-ingest --------------------------------------
csv 600 100000
# What HQ had before the import (the agent has nothing to send now).
seen=$(hq_count beneficiaries)
expect_exit 0 fa import beneficiaries "$T/batch.csv"
total=$((total + 600))
restarts=0
mid_ingest=0
# Each kill waits until HQ has merged more since it came back, so every
# one lands during the ingest rather than before or after it.
hq_grew() { [ "$(hq_count beneficiaries)" -gt "$seen" ]; }
for r in 1 2 3 4 5; do
	wait_for 120 "HQ merged nothing after restart $restarts" hq_grew
	kill -9 "$HQPID"
	wait "$HQPID" 2> /dev/null || true
	HQPID=
	restarts=$((restarts + 1))
	seen=$(hq_count beneficiaries)
	[ "$seen" -ge "$total" ] || mid_ingest=$((mid_ingest + 1))
	start_hq "$PORT"
	[ "$seen" -lt "$total" ] || break
done
[ "$mid_ingest" -gt 0 ] || fail "no kill of HQ landed before the ingest ended"
echo "HQ killed with kill -9 and restarted $restarts times, $mid_ingest during the ingest" >&2
wait_hq_count beneficiaries "$total" 300 > /dev/null
same_once beneficiary beneficiaries
expect_exit 0 fa log --json
must_contain "$OUT" '"result":"unreachable"'
stop_agent
expect_exit 0 fs check
echo "ok: kill -9 of agent and HQ"
