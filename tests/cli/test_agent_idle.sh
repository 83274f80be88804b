# test_agent_idle.sh - an idle agent sleeps: over 60 s with nothing to
# send it wakes only for the systemd watchdog, and it speaks sd_notify
# (READY=1, STATUS=, WATCHDOG=1) to a NOTIFY_SOCKET as systemd would
# give it.  Prints the wakeups and the agent's resident memory.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
IDLE=${FS_IDLE_SECONDS:-60}
NPID=
at_exit 'kill_agent; stop_hq; [ -z "$NPID" ] || kill "$NPID" 2> /dev/null'

hq_conf

hq_and_enrolled_store "Tim Bujanovac" Bujanovac
add_person "Стојановић Ана" > /dev/null

# A datagram socket standing in for systemd's notify socket.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        msg = s.recv(4096).decode()
        f.write(msg.replace("\n", " ") + "\n")
        f.flush()' "$T/notify.sock" "$T/notify.log" &
NPID=$!
notify_up() { [ -S "$T/notify.sock" ]; }
wait_for 30 "notify listener did not start" notify_up

agent_conf
# WatchdogSec=30 as systemd would pass it: a ping every 15 s.
NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=30000000 start_agent --passphrase-file "$PASS"
wait_hq_count beneficiaries 1 > /dev/null
# Idle from the moment it says so; the window is measured, not assumed.
wait_for 60 "the agent never said it was idle (STATUS=idle)" \
	in_file "$T/notify.log" '^STATUS=idle; everything sent'

switches() {
	local sum=0 v
	for f in /proc/"$APID"/task/*/status; do
		v=$(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ { s += $2 } END { print s }' "$f" 2> /dev/null || echo 0)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}
before=$(switches)
t0=$(date +%s%3N)
sleep "$IDLE"
after=$(switches)
window=$(($(date +%s%3N) - t0))
wakeups=$((after - before))
# 12 in 60 s: a rate, so a window a loaded machine stretches allows more.
allowed=$(((12 * window + 59999) / 60000))
rss=$(awk '/^VmRSS/ { print $2 " " $3 }' /proc/"$APID"/status)
pings=$(grep -c '^WATCHDOG=1' "$T/notify.log" || true)
echo "idle agent over $window ms: $wakeups wakeups ($pings watchdog pings), RSS $rss" >&2
[ "$wakeups" -le "$allowed" ] || fail "an idle agent woke $wakeups times in $window ms (at most $allowed)"
[ "$pings" -ge 2 ] || fail "only $pings watchdog pings in ${IDLE} s with WatchdogSec=30"
grep -q '^READY=1' "$T/notify.log" || fail "no READY=1: $(cat "$T/notify.log")"
grep -q '^STATUS=idle; everything sent' "$T/notify.log" || fail "no idle STATUS=: $(cat "$T/notify.log")"
stop_agent
grep -q '^STOPPING=1' "$T/notify.log" || fail "no STOPPING=1 on SIGTERM"
echo "ok: idle agent sleeps"
