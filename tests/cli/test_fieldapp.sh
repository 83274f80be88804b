# test_fieldapp.sh - the field app's server (agent/fieldapp.h), with
# curl: loopback only; the same headers on every answer; Host and Origin
# checked against DNS rebinding and other sites; unlocking with the
# passphrase (wrong ones refused and paused, never logged); a session
# cookie and its CSRF token on every change; "lock now"; and a store the
# app unlocked locking again when the app is unused, however often the
# page polls the sync state.
set -e
. "$(dirname "$0")/lib.sh"
at_exit 'kill_agent'

. "$(dirname "$0")/web.sh"

# ---- configuration: loopback only ---------------------------------------
for bad in 0.0.0.0:8750 192.0.2.10:8750 '[::]:8750' '[2001:db8::1]:8750'; do
	agent_conf '[web]' "listen = $bad"
	expect_exit 2 fa agent
	must_contain "$ERR" "[web] listen $bad: the field app listens on a loopback address only"
done
agent_conf '[web]' 'listen = localhost:8750'
expect_exit 2 fa agent
must_contain "$ERR" "not a numeric IP address"
agent_conf '[web]' 'idle_lock_minutes = soon'
expect_exit 2 fa agent
must_contain "$ERR" "idle_lock_minutes must be a number of minutes"
agent_conf '[web]' 'enabled = maybe'
expect_exit 2 fa agent
must_contain "$ERR" "[web] enabled must be yes or no"

# Turned off, nothing is served.
agent_conf '[web]' 'enabled = no'
init_store
start_agent
wait_log "field app off"
! in_file "$T/agent.log" "field app on" || fail "the app was served with enabled = no"
stop_agent

# ---- serving ---------------------------------------------------------------
# app_start [KEY=VALUE...]: the agent with the app on a port the kernel
# picks and [web] keys; sets URL and PORT.
app_start() {
	agent_conf '[web]' 'listen = 127.0.0.1:0' "$@"
	start_agent
	wait_log "field app on http://127.0.0.1:"
	URL=$(sed -n 's|.*field app on \(http://127\.0\.0\.1:[0-9]*/\) .*|\1|p' "$T/agent.log" |
		tail -n 1)
	PORT=${URL##*:}
	PORT=${PORT%/}
	[ -n "$PORT" ] || fail "no port in: $(grep 'field app' "$T/agent.log")"
}
# The default idle time (15 minutes) while the requests are checked.
app_start

# Bound to loopback only: the kernel's socket table has it on 127.0.0.1,
# and on no wildcard address.
hexport=$(printf '%04X' "$PORT")
grep -q " 0100007F:$hexport 00000000:0000 0A " /proc/net/tcp ||
	fail "no listener on 127.0.0.1:$PORT in /proc/net/tcp"
! grep -q " 00000000:$hexport 00000000:0000 0A " /proc/net/tcp ||
	fail "the app listens on 0.0.0.0:$PORT"
! grep -qi ":$hexport 0\{32\}:0000 0A " /proc/net/tcp6 2> /dev/null ||
	fail "the app listens on [::]:$PORT"

# The page, with the headers every answer carries.
req GET /
expect_code 200 "the page"
must_contain "$BODY" '<script src="/app.js" defer></script>'
for h in 'Cache-Control: no-store' 'X-Frame-Options: DENY' 'X-Content-Type-Options: nosniff' \
	'Referrer-Policy: no-referrer'; do
	[ "$(header "${h%%:*}")" = "$h" ] || fail "the page lacks '$h': $(cat "$T/headers")"
done
csp=$(header Content-Security-Policy)
must_contain "$csp" "default-src 'none'"
must_contain "$csp" "script-src 'self'"
must_contain "$csp" "frame-ancestors 'none'"
must_not_contain "$csp" "unsafe-inline"
must_not_contain "$csp" "unsafe-eval"
# No inline script or handler in any page file: the CSP would block it.
for f in "$FS_SOURCE_DIR"/share/fieldsync/web/*.html; do
	! grep -Eq '<script>|<script [^>]*>[^<]|[[:space:]]on[a-z]+=' "$f" || fail "inline script in $f"
	! grep -Eq 'https?://' "$f" || fail "an outside address in $f"
done
req GET /app.js
expect_code 200 "app.js"
[ "$(header Content-Type)" = "Content-Type: text/javascript; charset=utf-8" ] ||
	fail "app.js as $(header Content-Type)"
for bad in /../agent.conf /..%2fagent.conf /.hidden.js /nothing.js /app.exe /api/nothing; do
	req GET "$bad"
	expect_code 404 "GET $bad"
done

# DNS rebinding: another name for this address is refused, as is this
# address on another port; localhost is the same machine.
req GET / -H "Host: attacker.example:$PORT"
expect_code 403 "a foreign Host"
req GET /api/session -H "Host: 127.0.0.1:$((PORT == 65535 ? 1 : PORT + 1))"
expect_code 403 "another port in Host"
req GET / -H "Host: localhost:$PORT"
expect_code 200 "localhost in Host"
in_file "$T/agent.log" "refused a request naming another host" || fail "refusal not logged"

# Locked, with no session.
req GET /api/session
expect_code 200 "the session state"
must_contain "$BODY" '"locked":true'
must_contain "$BODY" '"session":false'
must_not_contain "$BODY" '"csrf"'
req GET /api/state
expect_code 401 "the sync state without a session"

# Unlocking: from another site, or without an Origin, it is refused
# before the passphrase is looked at.
PASSPHRASE=$(head -n 1 "$PASS")
req POST /api/unlock -H 'Origin: http://attacker.example' --data-binary "{\"passphrase\":\"$PASSPHRASE\"}"
expect_code 403 "an unlock from another origin"
req POST /api/unlock --data-binary "{\"passphrase\":\"$PASSPHRASE\"}"
expect_code 403 "an unlock with no Origin"
post /api/unlock '{"passphrase":"pogrešna-Лозинка"}'
expect_code 401 "a wrong passphrase"
must_contain "$BODY" '"error":"wrong_passphrase"'
post /api/unlock '{"pass":1}'
expect_code 400 "an unlock without a passphrase"
post /api/unlock "{\"passphrase\":\"$(head -c 70000 /dev/zero | tr '\0' x)\"}"
expect_code 413 "an unlock larger than any page sends"
expect_exit 0 fa status --json
must_contain "$OUT" '"locked":true'

post /api/unlock "{\"passphrase\":\"$PASSPHRASE\"}"
expect_code 200 "the right passphrase"
cookie=$(header Set-Cookie)
must_contain "$cookie" "fieldsync_app="
must_contain "$cookie" "HttpOnly"
must_contain "$cookie" "SameSite=Strict"
must_contain "$cookie" "Path=/"
SESSION=$(printf '%s' "$cookie" | sed 's/^Set-Cookie: \(fieldsync_app=[^;]*\);.*/\1/')
CSRF=$(printf '%s' "$BODY" | sed -n 's/.*"csrf":"\([^"]*\)".*/\1/p')
[ "${#CSRF}" -eq 43 ] || fail "no CSRF token in: $BODY"
wait_log "field app: store unlocked"
expect_exit 0 fa status --json
must_contain "$OUT" '"locked":false'

req GET /api/session -H "Cookie: $SESSION"
must_contain "$BODY" '"session":true'
must_contain "$BODY" "\"csrf\":\"$CSRF\""
req GET /api/state -H "Cookie: $SESSION"
expect_code 200 "the sync state"
must_contain "$BODY" '"pending_changes":0'
must_contain "$BODY" '"enrolled":false'

# The caseload: a POST with the token, so no name is ever in a URL.
expect_exit 0 fa beneficiary add "full_name=Ђорђевић Драгана" municipality=Vranje status=idp \
	household_size=2 consent=yes
post /api/caseload '{"q":"djordjevic"}' -H "Cookie: $SESSION"
expect_code 403 "a search without the CSRF token"
post /api/caseload '{"q":"djordjevic"}' -H "Cookie: $SESSION" -H "X-CSRF-Token: $CSRF"
expect_code 200 "a search"
must_contain "$BODY" '"total":1'
must_contain "$BODY" 'Ђорђевић Драгана'
must_contain "$(header Cache-Control)" "no-store"
post /api/caseload '{"visited_from":"yesterday"}' -H "Cookie: $SESSION" -H "X-CSRF-Token: $CSRF"
expect_code 400 "a search with a bad date"
req GET /api/caseload -H "Cookie: $SESSION"
expect_code 404 "a search by GET"
post /api/household '{"id":"not-an-id"}' -H "Cookie: $SESSION" -H "X-CSRF-Token: $CSRF"
expect_code 400 "a household by a bad id"
post /api/household '{"id":"0193a1b2-c3d4-7abc-8def-0123456789ab"}' -H "Cookie: $SESSION" \
	-H "X-CSRF-Token: $CSRF"
expect_code 404 "an unknown household"
req GET /api/forms -H "Cookie: $SESSION"
expect_code 200 "the forms"
must_contain "$BODY" '"beneficiaries":{'

# Drafts: bad input is refused with a reason, and nothing is queued.
A=(-H "Cookie: $SESSION" -H "X-CSRF-Token: $CSRF")
post /api/draft/save '{"collection":"secrets","fields":{}}' "${A[@]}"
expect_code 400 "a draft of a collection the app does not record"
post /api/draft/save '{"collection":"visits","fields":{"nickname":"x"}}' "${A[@]}"
expect_code 422 "a draft with a field the form lacks"
post /api/draft/save '{"collection":"visits","fields":[]}' "${A[@]}"
expect_code 422 "a draft whose fields are not an object"
post /api/draft/save \
	'{"id":"0193a1b2-c3d4-7abc-8def-0123456789ab","collection":"visits","fields":{}}' "${A[@]}"
expect_code 404 "a draft id the agent never gave"
post /api/draft/open '{"id":"not-an-id"}' "${A[@]}"
expect_code 400 "a draft by a bad id"
post /api/draft/save '{"collection":"beneficiaries","fields":{"full_name":"Петровић Марко"}}' \
	"${A[@]}"
expect_code 200 "a new draft"
must_contain "$BODY" '"valid":false'
must_contain "$BODY" '"municipality":{"relevant":true,"required":true,"error":{"rule":"required"'
DRAFT=$(printf '%s' "$BODY" | sed 's/^{"id":"\([0-9a-f-]*\)".*/\1/')
post /api/draft/finalise "{\"id\":\"$DRAFT\"}" "${A[@]}"
expect_code 422 "finishing an incomplete draft"
must_contain "$BODY" "field 'municipality': required"
must_not_contain "$BODY" "Марко"
expect_exit 0 fa status --json
must_contain "$OUT" '"pending_changes":0'
# A file for a draft: refused without the session, without its token
# (before the body is kept), without the draft and field, for a field
# that is no attachment, and for bytes that are no photo.
printf '%%PDF-1.7\nscan\n' > "$T/scan.pdf"
file_post() { req POST /api/attach -H "Origin: ${URL%/}" -H 'Content-Type: application/octet-stream' --data-binary "@$T/scan.pdf" "$@"; }
file_post
expect_code 401 "a file without a session"
file_post -H "Cookie: $SESSION" -H "X-Fieldsync-Draft: $DRAFT" -H "X-Fieldsync-Field: photo"
expect_code 403 "a file without the CSRF token"
file_post "${A[@]}"
expect_code 400 "a file without its draft and field"
file_post "${A[@]}" -H "X-Fieldsync-Draft: $DRAFT" -H "X-Fieldsync-Field: full_name"
expect_code 422 "a file for a text field"
must_contain "$BODY" "not an attachment"
post /api/draft/save '{"collection":"visits","fields":{}}' "${A[@]}"
VDRAFT=$(printf '%s' "$BODY" | sed 's/^{"id":"\([0-9a-f-]*\)".*/\1/')
file_post "${A[@]}" -H "X-Fieldsync-Draft: $VDRAFT" -H "X-Fieldsync-Field: photo"
expect_code 422 "a PDF for the visit's photo (JPEG or PNG)"
must_contain "$BODY" "a file of a type it does not take"
post /api/draft/discard "{\"id\":\"$VDRAFT\"}" "${A[@]}"
expect_code 200 "discarding the visit's draft"
# Each save is a write to the encrypted store and a report on every
# field; its round trip on loopback, for the log (never asserted).
for i in $(seq 1 40); do
	curl -s -o /dev/null -w '%{time_total}\n' -X POST -H "Origin: ${URL%/}" \
		-H 'Content-Type: application/json' "${A[@]}" --data-binary \
		"{\"id\":\"$DRAFT\",\"collection\":\"beneficiaries\",\"fields\":{\"full_name\":\"Петровић Марко $i\",\"municipality\":\"Vranje\"}}" \
		"${URL}api/draft/save"
done | sort -n | sed -n '20p' | awk '{ printf "draft save round trip, median of 40: %.1f ms\n", $1 * 1000 }'
post /api/draft/discard "{\"id\":\"$DRAFT\"}" "${A[@]}"
expect_code 200 "discarding the draft"
post /api/drafts '{}' "${A[@]}"
must_contain "$BODY" '"drafts":[]'

# A change of state needs the session, its token and the Origin.
post /api/sync '{}'
expect_code 401 "sync without a session"
post /api/sync '{}' -H "Cookie: $SESSION"
expect_code 403 "sync without the CSRF token"
must_contain "$BODY" '"error":"csrf"'
# The token with its last character changed.
case $CSRF in *A) WRONG=${CSRF%?}B ;; *) WRONG=${CSRF%?}A ;; esac
post /api/sync '{}' -H "Cookie: $SESSION" -H "X-CSRF-Token: $WRONG"
expect_code 403 "sync with a wrong CSRF token"
req POST /api/sync -H "Cookie: $SESSION" -H "X-CSRF-Token: $CSRF"
expect_code 403 "sync without an Origin"
post /api/sync '{}' -H "Cookie: $SESSION" -H "X-CSRF-Token: $CSRF"
expect_code 202 "sync now"

# Lock now: the store locks, and the cookie is worth nothing after.
post /api/lock '{}' -H "Cookie: $SESSION" -H "X-CSRF-Token: $CSRF"
expect_code 200 "lock now"
must_contain "$(header Set-Cookie)" "Max-Age=0"
expect_exit 0 fa status --json
must_contain "$OUT" '"locked":true'
req GET /api/state -H "Cookie: $SESSION"
expect_code 401 "the old session after lock now"

# Unused for 3 s (a fraction of a minute), a store the app unlocked
# locks again; the page's polls of the sync state do not count as use.
stop_agent
app_start 'idle_lock_minutes = 0.05'
post /api/unlock "{\"passphrase\":\"$PASSPHRASE\"}"
expect_code 200 "unlocking again"
SESSION=$(header Set-Cookie | sed 's/^Set-Cookie: \(fieldsync_app=[^;]*\);.*/\1/')
poll_and_locked() {
	curl -s -o /dev/null -H "Cookie: $SESSION" "${URL}api/state"
	in_file "$T/agent.log" "field app: unused for"
}
wait_for 60 "the store did not lock when the app went unused" poll_and_locked
expect_exit 0 fa status --json
must_contain "$OUT" '"locked":true'

# A store unlocked some other way stays unlocked when a session ends;
# the app checks the passphrase against it and changes nothing else.
expect_exit 0 fa --passphrase-file "$PASS" unlock
post /api/unlock '{"passphrase":"pogrešna"}'
expect_code 401 "a wrong passphrase for an open store"
post /api/unlock "{\"passphrase\":\"$PASSPHRASE\"}"
expect_code 200 "the right passphrase for an open store"
SESSION=$(header Set-Cookie | sed 's/^Set-Cookie: \(fieldsync_app=[^;]*\);.*/\1/')
session_over() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $SESSION" "${URL}api/state")" = 401 ]
}
wait_for 60 "the session did not end when unused" session_over
expect_exit 0 fa status --json
must_contain "$OUT" '"locked":false'

# Five wrong passphrases in a row pause unlocking, even the right one.
for i in 1 2 3 4 5; do
	post /api/unlock "{\"passphrase\":\"krivo-$i\"}"
	expect_code 401 "wrong passphrase $i"
done
post /api/unlock "{\"passphrase\":\"$PASSPHRASE\"}"
expect_code 429 "the right passphrase during the pause"
wait_log "5 wrong passphrases in a row"

# No passphrase, right or wrong, reached the log.
for p in "$PASSPHRASE" pogrešna krivo-3 "$CSRF"; do
	! in_file "$T/agent.log" "$p" || fail "the agent's log holds a secret"
done
stop_agent
echo "ok"
