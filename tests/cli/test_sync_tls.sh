# test_sync_tls.sh - enrolment and sync over HTTPS with the TLS key pinned
# from the token (self-signed certificate, no CA), then HQ presenting a
# different key: `fieldsync sync` refuses with exit 3 and names the pin.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
command -v openssl > /dev/null || fail "openssl is needed to make test certificates"
at_exit 'stop_hq'

# cert NAME: a self-signed certificate and key for 127.0.0.1.
cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=fieldsync test HQ" -addext "subjectAltName=IP:127.0.0.1" \
		-keyout "$T/$1.key" -out "$T/$1.crt" > /dev/null 2>&1 || fail "openssl req failed"
	chmod 600 "$T/$1.key"
}

# conf NAME: HQ configuration serving the certificate NAME.
conf() {
	cat > "$T/hq.conf" <<EOF
[server]
tls_cert = $T/$1.crt
tls_key = $T/$1.key
[store]
data_dir = $T/hq
[forms]
dir = $FORMS
EOF
}


cert good
cert other
conf good
init_store
expect_exit 0 hq init
start_hq
URL="https://127.0.0.1:$PORT"

TOKEN=$(hq enroll-token --team "Tim Tutin" --municipality Tutin | tail -n 1)
MUNI=Tutin
# A pinned token refuses plain http.
expect_exit 1 fs enroll "http://127.0.0.1:$PORT" "$TOKEN"
must_contain "$ERR" "https"
expect_exit 0 fs enroll "$URL" "$TOKEN"
must_contain "$OUT" "TLS key pinned"
add_person "Ружичић Ђорђе" > /dev/null
expect_exit 0 fs sync
must_contain "$OUT" "sent 1 change sets"
hq export beneficiaries --format jsonl > "$T/export"
grep -q "Ружичић Ђорђе" "$T/export" || fail "record did not reach HQ over HTTPS"

# HQ now presents another key on the same address: nothing is sent.
stop_hq
conf other
start_hq "$PORT"
add_person "Petrović Marija" > /dev/null
expect_exit 3 fs sync
must_contain "$ERR" "pin"
must_not_contain "$ERR" "Petrović"
expect_exit 0 fs status --json
must_contain "$OUT" '"change_sets_pending":1'

# The right key again: the waiting set goes through.
stop_hq
conf good
start_hq "$PORT"
expect_exit 0 fs sync
must_contain "$OUT" "sent 1 change sets"
echo "ok: sync over pinned TLS"
