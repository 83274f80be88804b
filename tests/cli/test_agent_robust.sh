# test_agent_robust.sh - the agent under an HQ that accepts connections
# and never answers: commands are still served at once, `lock` and
# SIGTERM abandon the stuck push and answer a waiting `sync`, nothing is
# recorded as a success; a write made without the agent is still pushed; a
# second agent cannot steal the socket.  (A forwarded `enroll` runs on
# the same worker thread as pushes, so it cannot hold up commands either.)
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
HOLE=
at_exit 'kill_agent; stop_hq; [ -z "$HOLE" ] || kill "$HOLE" 2> /dev/null'

hq_conf

# black_hole PORT: accept connections on loopback and never answer.
black_hole() {
	python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
open(sys.argv[2], "w").close()
held = []
while True:
    c, _ = s.accept()
    held.append(c)' "$1" "$T/hole.up" &
	HOLE=$!
	wait_for 30 "the black hole did not listen on port $1" test -e "$T/hole.up"
}

# within SECONDS CMD...: CMD must finish in time (a hang is a failure);
# SECONDS is scaled, and stays well below the push's stall timeout.
within() {
	local limit=$(($1 * SCALE)) rc=0
	shift
	timeout "$limit" "$@" > "$T/out" 2> "$T/err" || rc=$?
	[ "$rc" -ne 124 ] || fail "'$*' hung for more than $limit s"
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	return "$rc"
}

hq_and_enrolled_store "Tim Tutin" Tutin
agent_conf "stall_timeout = 120"
start_agent --passphrase-file "$PASS"

# A second agent must not take over the socket of a running one.
set +e
"$FIELDSYNC" --passphrase-file "$PASS" agent 2> "$T/second.log"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a second agent started on the same socket"
grep -q "another agent is running" "$T/second.log" || fail "no message: $(cat "$T/second.log")"
expect_exit 0 fa status # the first one still answers

# A write made directly (with the passphrase) is pushed by the agent.
add_person "Јовановић Ана" > /dev/null
wait_hq_count beneficiaries 1 > /dev/null

# HQ's port now accepts and never answers.
stop_hq
black_hole "$PORT"
id=$(add_person "Petrović Marko")
pushing() { fa status --json | grep -q '"pushing":true'; }
wait_for 60 "the agent did not start a push" pushing
expect_exit 0 fa status --json
must_contain "$OUT" '"pushing":true'
before=$(printf '%s\n' "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["agent"].get("last_success",""))')
# Commands are served while the push hangs.
within 5 "$FIELDSYNC" beneficiary list || fail "list failed: $ERR"
must_contain "$OUT" "Petrović Marko"
# A `sync` waits for the next attempt; `lock` answers it and abandons the push.
timeout $((30 * SCALE)) "$FIELDSYNC" sync > "$T/sync.out" 2> "$T/sync.err" &
SPID=$!
sleep 0.5
within 10 "$FIELDSYNC" lock || fail "lock failed: $ERR"
rc=0
wait "$SPID" || rc=$?
[ "$rc" -ne 124 ] || fail "a waiting sync was never answered after lock"
[ "$rc" -eq 3 ] || fail "a waiting sync exited $rc after lock: $(cat "$T/sync.err")"
grep -q "locked" "$T/sync.err" || fail "sync was not told the store was locked"
wait_log "push abandoned"
expect_exit 0 fa --passphrase-file "$PASS" unlock
expect_exit 0 fa status --json
after=$(printf '%s\n' "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["agent"].get("last_success",""))')
[ "$before" = "$after" ] || fail "an abandoned push was recorded as a success ($before -> $after)"
expect_exit 0 fa log --json
must_contain "$OUT" '"result":"abandoned"'
must_not_contain "$(cat "$T/agent.log")" "Petrović"

# The unlock scheduled a push, which hangs again.
wait_for 60 "the agent did not push again after unlock" pushing
# SIGTERM with a push hanging: exit 0 promptly.
kill -TERM "$APID"
agent_gone() { ! kill -0 "$APID" 2> /dev/null; }
wait_for 20 "the agent did not stop after SIGTERM with a push hanging" agent_gone
rc=0
wait "$APID" || rc=$?
APID=
[ "$rc" -eq 0 ] || fail "the agent exited $rc on SIGTERM during a hung push"
wait_log "stopped"

# HQ back: everything arrives exactly once.
kill "$HOLE"
wait "$HOLE" 2> /dev/null || true
HOLE=
start_hq "$PORT"
start_agent --passphrase-file "$PASS"
wait_hq_count beneficiaries 2 > /dev/null
same_once beneficiary beneficiaries
stop_agent
echo "ok: agent robust against a hanging HQ"
