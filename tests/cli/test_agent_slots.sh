# test_agent_slots.sh - idle connections to the agent's socket lock
# nobody out (issue 19, item 8): a client opens 20 connections and sends
# nothing; the agent keeps at most 4 per user, dropping the longest-idle
# one for a newcomer, so `fieldsync status` is answered at once, and it
# closes each idle connection within its request timeout.  Input slower
# than that timeout still works: the command reads it before connecting.
set -e
. "$(dirname "$0")/lib.sh"
HOG=
at_exit '[ -z "$HOG" ] || kill "$HOG" 2> /dev/null; kill_agent'

init_store
agent_conf
start_agent --passphrase-file "$PASS"

python3 - "$AGENT_SOCK" "$T/hog.status" $((120 * SCALE)) << 'PY' &
import socket, sys, time
path, status, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
socks = []
for _ in range(20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks.append(s)
with open(status, "a") as f:
    f.write("connected 20\n")
for s in socks:
    s.setblocking(False)
closed, start = set(), time.monotonic()
while len(closed) < len(socks) and time.monotonic() - start < limit:
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            if s.recv(1) == b"":
                closed.add(i)
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.2)
with open(status, "a") as f:
    f.write("closed %d\n" % len(closed))
PY
HOG=$!
wait_for 30 "the idle client did not connect" in_file "$T/hog.status" "^connected 20$"
# The agent has taken all 20 (or dropped the older ones) before this
# one connects: a command answered proves the idle ones hold no slot.
expect_exit 0 fa status
must_contain "$OUT" "device"
wait_for 60 "the agent did not close the idle connections: $(cat "$T/hog.status")" \
	in_file "$T/hog.status" "^closed 20$"
wait "$HOG"
HOG=
expect_exit 0 fa status
# Input that takes longer than the agent's request timeout (a token typed
# by hand, a slow pipe) is read before the command connects: it works.
expect_exit 0 sh -c "{ sleep 12; printf '%s' '{\"full_name\":\"Petrović Ana\",\"municipality\":\"Tutin\",\"status\":\"idp\",\"household_size\":2,\"consent\":true}'; } | \"$FIELDSYNC\" beneficiary add --json -"
expect_exit 0 fa beneficiary list --json
must_contain "$OUT" "Petrović Ana"
echo "ok: agent slots"
