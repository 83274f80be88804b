# test_slow_clients.sh - strangers cannot shut HQ down with slow uploads
# (issue 19, item 1).  70 connections, each from its own loopback address,
# start a push naming no known device and then send one byte every 2 s.
# While they run: health answers 200 (it takes no request slot), a proof
# request from a stranger gets 503 with Retry-After (the strangers' pool
# is full), and a real, enrolled device still pushes everything (the
# slots reserved for devices).  HQ closes every slow upload once it falls
# below min_upload_rate, and one address holds at most
# per_peer_connections connections.
set -e
. "$(dirname "$0")/lib.sh"

SLOW="$FS_SOURCE_DIR/tests/tools/slowclients.py"
SLOWPID=
at_exit 'kill $SLOWPID 2> /dev/null || true; stop_hq'

hq_conf
printf '[server]\nmax_inflight = 8\nreserved_for_devices = 2\nper_peer_connections = 4\nproof_rate = 1000000\n' \
	>> "$T/hq.conf"
hq_and_enrolled_store "Tim Tutin" Tutin
for name in "Ružičić Đorđe" "Ружичић Ђорђе" "Petrović Ana"; do
	add_person "$name" Tutin > /dev/null
done

# ---- 70 slow strangers ------------------------------------------------------
python3 "$SLOW" "$PORT" 70 "$T/slow.status" $((300 * SCALE)) 2> "$T/slow.err" &
SLOWPID=$!
wait_for 60 "the slow clients did not connect: $(cat "$T/slow.err" 2> /dev/null)" \
	in_file "$T/slow.status" "^connected 70$"

# A stranger's request finds the pool full: 503 with Retry-After.
proof_is() {
	code=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' \
		-H 'Content-Type: application/json' --data '{"from":0}' \
		"http://127.0.0.1:$PORT/v1/audit/consistency")
	[ "$code" = "$1" ]
}
code=
wait_for 60 "the slow uploads never filled the strangers' slots (status $code)" proof_is 503
grep -qi '^Retry-After: [0-9]' "$T/headers" || fail "503 without Retry-After"

# Health takes no slot.
code=$(curl -s -o "$T/body" -w '%{http_code}' "http://127.0.0.1:$PORT/v1/health")
[ "$code" = 200 ] || fail "health answered $code while slow uploads held HQ"

# The enrolled device pushes everything, through the reserved slots.
in_file "$T/slow.status" "^closed 0$" || fail "a slow client was closed too early"
expect_exit 0 fs sync
same_once beneficiary beneficiaries

# ---- the slow uploads are cut off -------------------------------------------
wait_for 120 "HQ did not close the slow uploads: $(tail -n 1 "$T/slow.status")" \
	in_file "$T/slow.status" "^closed 70$"
in_file "$T/hq.log" "upload slower than 1024 bytes/s" || fail "HQ did not say why it closed them"
wait "$SLOWPID" || fail "slowclients.py failed: $(cat "$T/slow.err")"
SLOWPID=
wait_for 30 "HQ's slots were not freed (status $code)" proof_is 200

# ---- one address, at most per_peer_connections connections ------------------
python3 - "$PORT" > "$T/peer.out" << 'PY'
import socket, sys
port = int(sys.argv[1])
socks = []
for i in range(6):
    s = socket.socket()
    s.bind(("127.0.2.1", 0))
    s.connect(("127.0.0.1", port))
    socks.append(s)
answered = 0
for s in socks:
    try:
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"HTTP/1.1 200"):
            answered += 1
    except OSError:
        pass
print("answered %d" % answered)
PY
must_contain "$(cat "$T/peer.out")" "answered 4"
echo "ok: slow clients"
