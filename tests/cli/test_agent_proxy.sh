# test_agent_proxy.sh - the agent honours https_proxy: with HQ on HTTPS
# (self-signed, pinned from the token) and only an HTTP CONNECT proxy
# (tests/tools/faultproxy.c --connect) in between, enrolment and pushes
# go through the proxy's tunnels, the proxy down means HQ unreachable
# although HQ is up, and with faults in the tunnels (cut, reset, stall,
# slice, through the TLS handshake and the requests) every change still
# reaches HQ exactly once.  The proxy refuses any other target.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
command -v openssl > /dev/null || fail "openssl is needed to make test certificates"
proxy_setup
at_exit 'kill_agent; kill_proxy; stop_hq'

# ask_proxy REQUEST: send REQUEST (a request head) to the proxy, print
# its status line.
ask_proxy() {
	local line
	exec 3<> "/dev/tcp/127.0.0.1/$PXPORT" || fail "cannot reach the proxy"
	printf '%s\r\n\r\n' "$1" >&3
	IFS= read -r -t 5 line <&3 || true
	exec 3>&-
	printf '%s\n' "${line%$'\r'}"
}

csv() {
	awk -v n="$2" -v first="$3" 'BEGIN {
		print "full_name,municipality,status,household_size,consent"
		split("Petrović Marija|Јовановић Јован|Ružičić Đorđe|Шћепановић Жаклина", names, "|")
		for (i = first; i < first + n; i++)
			printf "\"%s %d\",Tutin,idp,%d,yes\n", names[i % 4 + 1], i, i % 7 + 1
	}' > "$1"
}

now_ms() { date +%s%3N; }
status_json() { fa status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# tunnels LOG: connections the proxy tunnelled to HQ.
tunnels() { grep -c " connect 127\.0\.0\.1:$PORT\$" "$1" || true; }
# harmed LOG: tunnels a fault struck.
harmed() { awk -v t="127.0.0.1:$PORT" '$10 == "yes" && $12 == t' "$1" | wc -l; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=fieldsync test HQ" -addext "subjectAltName=IP:127.0.0.1" \
	-keyout "$T/hq.key" -out "$T/hq.crt" > /dev/null 2>&1 || fail "openssl req failed"
chmod 600 "$T/hq.key"
cat > "$T/hq.conf" <<EOF
[server]
tls_cert = $T/hq.crt
tls_key = $T/hq.key
[store]
data_dir = $T/hq
[forms]
dir = $FORMS
EOF

T0=$(now_ms)
init_store
expect_exit 0 hq init
start_hq
URL="https://127.0.0.1:$PORT"
start_proxy "$T/proxy-pass.log" pass --connect

# The proxy tunnels to HQ and nowhere else.
must_contain "$(ask_proxy "CONNECT 127.0.0.1:1 HTTP/1.1")" "HTTP/1.1 403"
must_contain "$(ask_proxy "GET $URL/ HTTP/1.1")" "HTTP/1.1 405"
grep -q "refused 127.0.0.1:1\$" "$T/proxy-pass.log" || fail "the proxy did not log the refusal"

# Only the agent gets the proxy, and nothing may bypass it.
unset no_proxy NO_PROXY all_proxy ALL_PROXY HTTPS_PROXY
agent_conf "connect_timeout = 2" "stall_timeout = 2" "max_changes = 20"
export https_proxy="http://127.0.0.1:$PXPORT"
start_agent --passphrase-file "$PASS"
unset https_proxy

# ---- enrolment through the tunnel ---------------------------------------------
TOKEN=$(hq enroll-token --team "Tim Tutin" --municipality Tutin | tail -n 1)
printf '%s\n' "$TOKEN" > "$T/token"
enroll_agent "$URL"
must_contain "$OUT" "TLS key pinned"
[ "$(tunnels "$T/proxy-pass.log")" -ge 1 ] || fail "the enrolment did not go through the proxy"
expect_exit 0 fa beneficiary add "full_name=Ружичић Ђорђе" municipality=Tutin status=idp \
	household_size=4 consent=yes
ms=$(wait_hq_count beneficiaries 1)
echo "enrolled and first record merged through the CONNECT proxy: ${ms} ms" >&2
[ "$(tunnels "$T/proxy-pass.log")" -ge 2 ] || fail "the push did not go through the proxy"

# ---- the proxy down: HQ is up but unreachable -----------------------------------
stop_proxy
csv "$T/batch.csv" 100 1
expect_exit 0 fa import beneficiaries "$T/batch.csv"
unreachable() { fa status --json | grep -q '"last_error":"HQ unreachable'; }
wait_for 60 "status never said HQ is unreachable" unreachable
expect_exit 0 fa status
must_contain "$OUT" "last error  HQ unreachable"
[ "$(hq_count beneficiaries)" -eq 1 ] || fail "records reached HQ with the proxy down"

# ---- faults in the tunnels --------------------------------------------------------
# Faults strike within the first 3000 bytes each way: the TLS handshake
# and the first requests and receipts.
MIXED="$T/proxy-mixed.log"
start_proxy "$MIXED" mixed --connect --max-bytes 3000 --slice-bytes 2048 --stall-ms 3000
NB=101
wait_hq_count beneficiaries "$NB" > /dev/null
round=0
while [ "$(harmed "$MIXED")" -lt 3 ]; do
	[ "$round" -lt 60 ] ||
		fail "only $(harmed "$MIXED") tunnels were harmed in $round rounds: $(cat "$MIXED")"
	round=$((round + 1))
	csv "$T/batch.csv" 20 $((1000 + round * 20))
	expect_exit 0 fa import beneficiaries "$T/batch.csv"
	NB=$((NB + 20))
	wait_hq_count beneficiaries "$NB" > /dev/null
done
all_acked() { [ "$(status_json pending_changes)" = 0 ]; }
until_ok 60 all_acked || fail "changes still unacknowledged: $(fa status)"
stop_proxy
echo "$(tunnels "$MIXED") tunnels, $(harmed "$MIXED") harmed: $(awk '$10 == "yes" { printf "%s ", $4 }' "$MIXED")" >&2
[ "$(tunnels "$MIXED")" -eq "$(wc -l < "$MIXED")" ] || fail "the agent asked the proxy for something else: $(grep -v " connect 127.0.0.1:$PORT\$" "$MIXED")"

expect_exit 0 fa log --json --limit 10000
must_contain "$OUT" '"result":"accepted"'
printf '%s\n' "$OUT" | grep -vq '"result":"accepted"' || fail "the sync log shows no failed attempt"
stop_agent
same_once beneficiary beneficiaries
[ "$(local_ids beneficiary | wc -l)" -eq "$NB" ] || fail "the device has $(local_ids beneficiary | wc -l) beneficiaries, expected $NB"
for word in Ружичић Petrović Јовановић Ružičić Шћепановић; do
	must_not_contain "$(cat "$T/agent.log")" "$word"
done
echo "ok: pushes through an https_proxy with faults, exactly once ($(($(now_ms) - T0)) ms)"
