# test_hq.sh - fieldsync-hq from the command line, with the real curl
# binary as a second HTTP client: health, 413, 400, 401, --help, tokens.
set -eu
. "$(dirname "$0")/lib.sh"

HQ="${FS_BUILD_DIR:?}/fieldsync-hq"
HQCONF="$T/hq.conf"
HQDATA="$T/hq"
: > "$HQCONF"
hq() { "$HQ" -c "$HQCONF" --data-dir "$HQDATA" --forms-dir "$FORMS" "$@"; }
command -v curl > /dev/null || fail "curl is needed (scripts/deps.sh installs it)"

# --help works everywhere and exits 0.
for cmd in init serve enroll-token devices revoke export conflicts; do
	expect_exit 0 hq "$cmd" --help
	must_contain "$OUT" "Usage: fieldsync-hq $cmd"
done
expect_exit 0 "$HQ" --help
expect_exit 1 hq no-such-command
expect_exit 1 hq export beneficiaries --format xml
# A usage error names the program and command, and where help is
# (sync/clierr.h, shared with fieldsync's).
expect_exit 1 hq serve --no-such-option
must_contain "$ERR" "fieldsync-hq serve: bad option"
must_contain "$ERR" "Try 'fieldsync-hq serve --help'."

# A strict config: an unknown key names its line.
printf '[server]\nthreads = 2\nlisten_port = 1\n' > "$T/bad.conf"
expect_exit 2 "$HQ" -c "$T/bad.conf" --data-dir "$HQDATA" devices
must_contain "$ERR" "line 3"
printf '[server]\nlisten = 0.0.0.0:0\n' > "$T/open.conf"

expect_exit 0 hq init
expect_exit 2 hq init
[ "$(stat -c %a "$HQDATA/hq.key")" = 600 ] || fail "hq.key is not mode 0600"

# Tokens: FS1- on the last line, and a different one each time.
expect_exit 0 hq enroll-token --team "Tim Sjenica" --municipality Sjenica --expires 2h
TOK1=$(printf '%s\n' "$OUT" | tail -n 1)
case "$TOK1" in FS1-*) ;; *) fail "no FS1- token on the last line: $OUT" ;; esac
expect_exit 0 hq enroll-token --team "Tim Tutin" --municipality Tutin
TOK2=$(printf '%s\n' "$OUT" | tail -n 1)
[ "$TOK1" != "$TOK2" ] || fail "two tokens are equal"
expect_exit 1 hq enroll-token --team "Tim Tutin"
expect_exit 1 hq enroll-token --team T --municipality M --expires soon

# Plain HTTP on a non-loopback address is refused.
expect_exit 1 "$HQ" -c "$T/open.conf" --data-dir "$HQDATA" --forms-dir "$FORMS" serve

# Serve on a free port and wait for the "listening" line.
# Started directly (not through the hq function), so $! is the server.
"$HQ" -c "$HQCONF" --data-dir "$HQDATA" --forms-dir "$FORMS" serve --listen 127.0.0.1:0 \
	2> "$T/serve.log" &
PID=$!
at_exit 'kill $PID 2>/dev/null'
serve_up() { in_file "$1" '^listening on ' || ! kill -0 $PID 2> /dev/null; }
until_ok 30 serve_up "$T/serve.log"
kill -0 $PID 2> /dev/null || fail "serve exited: $(cat "$T/serve.log")"
PORT=$(port_of "$T/serve.log")
[ -n "$PORT" ] || fail "serve did not report its port"
URL="http://127.0.0.1:$PORT"

# status BODYFILE: status code of the last request; body in BODYFILE.
req() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }

[ "$(req "$URL/v1/health")" = 200 ] || fail "health"
must_contain "$(cat "$T/body")" '"status":"ok"'

head -c 1100000 /dev/zero > "$T/big"
[ "$(req -X POST --data-binary @"$T/big" -H 'Content-Type: application/vnd.fieldsync.changeset' \
	"$URL/v1/changesets")" = 413 ] || fail "1.1 MB body not refused with 413"
must_contain "$(cat "$T/body")" '"error":"too_large"'

events_before=$(sqlite3 "$HQDATA/hq.db" "SELECT count(*) FROM events")
printf 'not a change set' > "$T/garbage"
[ "$(req -X POST --data-binary @"$T/garbage" "$URL/v1/changesets")" = 400 ] || fail "garbage"
must_contain "$(cat "$T/body")" '"error":"malformed"'
[ "$(req -X POST --data-binary '{"token":' -H 'Content-Type: application/json' \
	"$URL/v1/enroll")" = 400 ] || fail "broken enrol JSON"

# The pinned vector comes from a device this HQ never enrolled.
if command -v xxd > /dev/null; then
	xxd -r -p "$FS_SOURCE_DIR/tests/vectors/changeset-v1.hex" > "$T/vector.bin"
else
	python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read()))' \
		"$FS_SOURCE_DIR/tests/vectors/changeset-v1.hex" > "$T/vector.bin"
fi
[ "$(req -X POST --data-binary @"$T/vector.bin" "$URL/v1/changesets")" = 401 ] ||
	fail "unknown device not refused"
must_contain "$(cat "$T/body")" '"error":"unknown_device"'
# Pushes from nobody enrolled are refused without a trace in the
# database: otherwise anyone could grow it by sending garbage.
events_before=$(sqlite3 "$HQDATA/hq.db" "SELECT count(*) FROM events")
for _ in $(seq 1 20); do
	req -X POST --data-binary @"$T/garbage" "$URL/v1/changesets" > /dev/null
done
[ "$(sqlite3 "$HQDATA/hq.db" "SELECT count(*) FROM events")" = "$events_before" ] ||
	fail "pushes from unknown devices wrote events"
# Refused enrolments (token guesses) are audited with the peer's address,
# and limited per address: after a burst, 429 with Retry-After, audited
# once per run of refusals.  So the log grows only as fast as the limit.
refused=0 runs=0 last= code=
for _ in $(seq 1 200); do
	code=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' -X POST --data-binary '{}' \
		-H 'Content-Type: application/json' "$URL/v1/enroll")
	case "$code" in
	400) refused=$((refused + 1)) ;;
	429) [ "$last" = 429 ] || runs=$((runs + 1)) ;;
	*) fail "enrolment guess answered $code" ;;
	esac
	last=$code
	[ "$code" != 429 ] || break
done
[ "$code" = 429 ] || fail "200 enrolment guesses from one address were never limited"
grep -qi '^Retry-After: [0-9]' "$T/headers" || fail "429 without Retry-After"
must_contain "$(cat "$T/body")" '"error":"rate_limited"'
[ "$(sqlite3 "$HQDATA/hq.db" "SELECT count(*) FROM events")" = $((events_before + refused + runs)) ] ||
	fail "enrolment refusals: $refused refused and $runs limited runs, but $(($(sqlite3 "$HQDATA/hq.db" \
		"SELECT count(*) FROM events") - events_before)) events"
# Proof requests (anyone may send them) are limited per address too.
for _ in $(seq 1 500); do
	code=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' --data '{"from":0}' \
		-H 'Content-Type: application/json' "$URL/v1/audit/consistency")
	[ "$code" = 200 ] || break
done
[ "$code" = 429 ] || fail "500 proof requests from one address were never limited (last $code)"
grep -qi '^Retry-After: [0-9]' "$T/headers" || fail "429 without Retry-After"
sqlite3 "$HQDATA/hq.db" "SELECT detail FROM events WHERE type = 'enroll_rejected'" > "$T/rejected"
must_contain "$(cat "$T/rejected")" '"peer":"127.0.0.1","error":"malformed"'
must_contain "$(cat "$T/rejected")" '"peer":"127.0.0.1","error":"rate_limited"'

# Nothing was merged; the log names no token.
expect_exit 0 hq export beneficiaries --format csv
[ "$(printf '%s' "$OUT" | head -c 3 | od -An -tx1 | tr -d ' ')" = efbbbf ] || fail "no BOM"
must_contain "$OUT" "id,full_name,municipality"
expect_exit 0 hq devices --json
[ "$OUT" = "[]" ] || fail "devices: $OUT"
must_not_contain "$(cat "$T/serve.log")" "${TOK1#FS1-}"

kill -TERM $PID
wait $PID || fail "serve did not exit 0 on SIGTERM"

# serve_with CONF LOG: HQ on a free loopback port with its own config;
# sets PID and PORT.  stop_serve: SIGTERM, and it must exit 0.
serve_with() {
	"$HQ" -c "$1" --data-dir "$HQDATA" --forms-dir "$FORMS" serve --listen 127.0.0.1:0 2> "$2" &
	PID=$!
	at_exit 'kill $PID 2>/dev/null'
	until_ok 30 serve_up "$2"
	PORT=$(port_of "$2")
	[ -n "$PORT" ] || fail "serve did not report its port: $(cat "$2")"
}
stop_serve() {
	kill -TERM $PID
	wait $PID || fail "serve did not exit 0 on SIGTERM"
}

# Overload: with max_inflight = 1, a request held open (headers sent,
# body unfinished, but far enough to name its device) leaves no room, so
# the next one gets 503 with Retry-After and a JSON body; health still
# answers, as it takes no slot; once the held one ends, HQ answers again.
printf '[server]\nmax_inflight = 1\nthreads = 2\nproof_rate = 1000000\n' > "$T/busy.conf"
serve_with "$T/busy.conf" "$T/busy.log"
exec 3<> "/dev/tcp/127.0.0.1/$PORT"
printf 'POST /v1/changesets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nFSCS\001\001\000\00001234567890abcdef' >&3
# post_is CODE: a proof request answers CODE (body in $T/body).
post_is() {
	code=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data '{"from":0}' "http://127.0.0.1:$PORT/v1/audit/consistency")
	[ "$code" = "$1" ]
}
health_is() {
	code=$(curl -s -o "$T/body" -w '%{http_code}' "http://127.0.0.1:$PORT/v1/health")
	[ "$code" = "$1" ]
}
code=
until_ok 30 post_is 503 || fail "no 503 while a request was in flight (last status $code)"
grep -qi '^Retry-After: [0-9]' "$T/headers" || fail "503 without Retry-After: $(cat "$T/headers")"
must_contain "$(cat "$T/body")" '"error":"overloaded"'
health_is 200 || fail "health answered $code while HQ was busy: it must take no slot"
exec 3>&-
until_ok 30 post_is 200 || fail "HQ did not recover after the held request ended (status $code)"
stop_serve

# Refused enrolments from many addresses together are audited only up to
# 6 x enroll_rate a minute: someone holding many addresses cannot fill
# the append-only log.  40 guesses, each from its own loopback address.
# Addresses share HQ's 1,024 rate buckets by a keyed hash: with a burst
# of 3, four of the 40 would have to meet in one bucket for a guess to
# get 429 (about 1 run in 10,000; with 2, three did in about 1 in 100).
printf '[server]\nenroll_rate = 3\n' > "$T/audit.conf"
serve_with "$T/audit.conf" "$T/audit.log"
before=$(sqlite3 "$HQDATA/hq.db" "SELECT count(*) FROM events WHERE type = 'enroll_rejected'")
for i in $(seq 1 40); do
	code=$(curl -s -o /dev/null -w '%{http_code}' --interface "127.0.4.$i" --data '{}' \
		-H 'Content-Type: application/json' "http://127.0.0.1:$PORT/v1/enroll")
	[ "$code" = 400 ] || fail "guess from 127.0.4.$i answered $code, expected 400"
done
audited=$(($(sqlite3 "$HQDATA/hq.db" "SELECT count(*) FROM events WHERE type = 'enroll_rejected'") - before))
# 18 at once, then one every 3.3 s: far fewer than 40 however slow this is.
[ "$audited" -ge 18 ] && [ "$audited" -lt 40 ] ||
	fail "$audited of 40 refused enrolments audited, expected 18 and a few more"
in_file "$T/audit.log" "the rest are not audited" || fail "HQ did not say it stopped auditing"
stop_serve
echo "ok"
