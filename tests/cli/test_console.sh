# test_console.sh - HQ's console (hq/console.h) with curl: its own
# listener, loopback only without TLS; logging in with an account,
# wrong passwords refused and then paused (429, Retry-After), each
# attempt audited, never a password; the session cookie's attributes and
# the CSRF token on every change; Host and Origin checked; the headers
# of every answer; a viewer sees only its municipalities' devices; a
# device never seen is red.
set -e
. "$(dirname "$0")/lib.sh"
[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'stop_hq'

. "$(dirname "$0")/web.sh"

hq_conf
expect_exit 0 hq init
cp "$T/hq.conf" "$T/base.conf"

# Not on another address without TLS: HQ says so and serves the devices.
printf '[console]\nlisten = 0.0.0.0:0\n' >> "$T/hq.conf"
start_hq
wait_for 30 "no word about the console" in_file "$T/hq.log" "serving devices without the console"
must_contain "$(cat "$T/hq.log")" "plain HTTP is allowed only on a loopback address"
stop_hq
cp "$T/base.conf" "$T/hq.conf"
printf 'metrics-token-%s\n' "$$" > "$T/metrics-token"
chmod 600 "$T/metrics-token"
printf '[console]\nlogin_tries = 3\nlogin_pause_minutes = 1\nmetrics_token_file = %s\n' \
	"$T/metrics-token" >> "$T/hq.conf"
start_hq
wait_for 30 "the console did not start" in_file "$T/hq.log" "console on http://127.0.0.1:"
URL=$(sed -n 's|.*console on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$T/hq.log" | tail -n 1)
CPORT=${URL##*:}
CPORT=${CPORT%/}

# Accounts, and devices in two municipalities.
printf 'konj-baterija-spajalica\n' > "$T/pw"
chmod 600 "$T/pw"
expect_exit 0 hq user add ana.admin --role admin --password-file "$T/pw"
expect_exit 0 hq user add tutin.viewer --role viewer --municipality Tutin --password-file "$T/pw"
dev_enrol sjenica "Tim Sjenica" Sjenica Sjenica
dev_enrol tutin "Tim Tutin" Tutin Tutin
expect_exit 0 dev tutin beneficiary add "full_name=Hodžić Amra" municipality=Tutin status=idp \
	household_size=2 consent=yes
expect_exit 0 dev tutin sync

# The page, with every header, before any session.
req GET /
expect_code 200 "the page"
must_contain "$BODY" "fieldsync HQ"
must_contain "$(header Cache-Control)" "no-store"
must_contain "$(header Content-Security-Policy)" "default-src 'none'"
must_contain "$(header X-Frame-Options)" "DENY"
req GET /api/devices
expect_code 401 "devices without a session"
req GET /api/session
must_contain "$BODY" '"session":false'

# Host and Origin against DNS rebinding and other sites.
req GET / -H "Host: evil.example:$CPORT"
expect_code 403 "a foreign Host"
req POST /api/login -H "Origin: http://evil.example" -H 'Content-Type: application/json' \
	--data-binary '{"name":"ana.admin","password":"konj-baterija-spajalica"}'
expect_code 403 "a foreign Origin"
req POST /api/login -H 'Content-Type: application/json' \
	--data-binary '{"name":"ana.admin","password":"konj-baterija-spajalica"}'
expect_code 403 "a login without an Origin"

# Wrong passwords: refused, then paused even for the right one.
for i in 1 2 3; do
	post /api/login '{"name":"ana.admin","password":"pogrešna-lozinka"}'
	expect_code 401 "wrong password $i"
	must_contain "$BODY" '"error":"wrong_login"'
done
post /api/login '{"name":"ana.admin","password":"konj-baterija-spajalica"}'
expect_code 429 "a login while paused"
must_contain "$BODY" '"error":"paused"'
[ -n "$(header Retry-After)" ] || fail "no Retry-After on a paused login"
expect_exit 0 hq audit list --event login_failed --json
[ "$(printf '%s\n' "$OUT" | grep -c ana.admin)" -eq 3 ] || fail "not every failed login was audited"
expect_exit 0 hq audit list --event login_paused --json
must_contain "$OUT" "ana.admin"
! grep -rqaF "pogrešna-lozinka" "$T/hq.log" || fail "a password is in HQ's log"
expect_exit 0 hq audit list --json
must_not_contain "$OUT" "pogrešna-lozinka"
must_not_contain "$OUT" "konj-baterija"
# An administrator ends the pause with a new password.
printf 'nova-lozinka-za-anu\n' > "$T/pw2"
chmod 600 "$T/pw2"
expect_exit 0 hq user passwd ana.admin --password-file "$T/pw2"

# The admin logs in: the cookie's attributes, and every device.
post /api/login '{"name":"ana.admin","password":"nova-lozinka-za-anu"}'
expect_code 200 "the admin's login"
must_contain "$(header Set-Cookie)" "HttpOnly"
must_contain "$(header Set-Cookie)" "SameSite=Strict"
ADMIN=$(cookie_of fieldsync_console)
CSRF=$(printf '%s' "$BODY" | sed 's/.*"csrf":"\([^"]*\)".*/\1/')
req GET /api/devices -H "Cookie: $ADMIN"
expect_code 200 "the admin's devices"
must_contain "$BODY" '"team":"Tim Sjenica"'
must_contain "$BODY" '"team":"Tim Tutin"'
# Tutin's laptop has synced (a pull is contact); Sjenica's has not been
# seen since it enrolled.
must_contain "$BODY" '"team":"Tim Tutin","municipality":"Tutin","last_seen":"'
printf '%s' "$BODY" | python3 -c '
import json, sys
d = {x["team"]: x for x in json.load(sys.stdin)["devices"]}
assert d["Tim Tutin"]["red"] is False, d
assert d["Tim Sjenica"]["red"] is True and d["Tim Sjenica"]["why"] == "never seen", d
# The agent told HQ how it is at the end of its sync (sync/status.h).
t = d["Tim Tutin"]
assert t["pending_changes"] == 0 and t["oldest_unsent_age_s"] is None, t
assert t["last_error"] is None, t
assert t["agent_version"] and t["free_disk_bytes"] > 0 and t["reported_at"], t
assert "beneficiaries" in t["form_version"], t
assert d["Tim Sjenica"]["agent_version"] is None, d
' || fail "the devices are not flagged or described as they should be: $BODY"
expect_exit 0 hq audit list --event login --json
must_contain "$OUT" "ana.admin"

# /metrics for Prometheus, behind its own token; no name, no value.
req GET /metrics
expect_code 401 "metrics without the token"
req GET /metrics -H "Authorization: Bearer metrics-token-0"
expect_code 401 "metrics with a wrong token"
req GET /metrics -H "Authorization: Bearer $(cat "$T/metrics-token")"
expect_code 200 "metrics"
must_contain "$BODY" 'fieldsync_changesets_total{outcome="accepted"} 1'
must_contain "$BODY" 'fieldsync_ingest_seconds_count 1'
must_contain "$BODY" 'fieldsync_http_responses_total{status="200"}'
must_contain "$BODY" 'fieldsync_devices_red 1'
must_contain "$BODY" 'fieldsync_audit_entries '
must_not_contain "$BODY" "Hodžić"

# The audit log, for administrators: the newest first, filtered, and
# checked whole on demand (an action, so audited).
req GET "/api/audit?event=login_failed" -H "Cookie: $ADMIN"
expect_code 200 "the audit log"
must_contain "$BODY" '"event":"login_failed"'
must_not_contain "$BODY" '"event":"login"'
post /api/audit/verify '{}' -H "Cookie: $ADMIN"
expect_code 403 "verifying without the CSRF token"
post /api/audit/verify '{}' -H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 200 "verifying the log"
must_contain "$BODY" '"ok":true'
expect_exit 0 hq audit list --event console --json
must_contain "$OUT" 'audit verify'

# Actions, for administrators, each audited with who did it: a token
# that enrols, and a revocation that HQ then holds to.
post /api/tokens '{"team":"Tim Raška","municipality":"Raška"}' -H "Cookie: $ADMIN"
expect_code 403 "a token without the CSRF token"
post /api/tokens '{"team":"Tim Raška"}' -H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 400 "a token without a municipality"
post /api/tokens '{"team":"Tim Raška","municipality":"Raška"}' -H "Cookie: $ADMIN" \
	-H "X-CSRF-Token: $CSRF"
expect_code 200 "a token"
NEWTOKEN=$(printf '%s' "$BODY" | sed 's/.*"token":"\([^"]*\)".*/\1/')
expect_exit 0 dev raska init --kdf interactive
expect_exit 0 dev raska enroll "http://127.0.0.1:$PORT" "$NEWTOKEN"
TUTIN=$(hq devices --json | python3 -c '
import json, sys
print([d["id"] for d in json.load(sys.stdin) if d["team"] == "Tim Tutin"][0])')
post /api/devices/revoke "{\"device\":\"$TUTIN\",\"reason\":\"reported lost\"}" \
	-H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 200 "revoking a device"
post /api/devices/revoke "{\"device\":\"$TUTIN\"}" -H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 404 "revoking it again"
expect_exit 2 dev tutin sync
must_contain "$ERR" "revoked"
expect_exit 0 hq audit list --event console --json
must_contain "$OUT" '\"action\":\"revoke\"'
must_contain "$OUT" '\"action\":\"enrolment token\"'
must_not_contain "$OUT" "$NEWTOKEN"
! grep -qF "$NEWTOKEN" "$T/hq.log" || fail "the token is in HQ's log"

# The viewer for Tutin sees Tutin's devices only.
post /api/login '{"name":"tutin.viewer","password":"konj-baterija-spajalica"}'
expect_code 200 "the viewer's login"
VIEWER=$(cookie_of fieldsync_console)
req GET /api/devices -H "Cookie: $VIEWER"
expect_code 200 "the viewer's devices"
must_contain "$BODY" '"team":"Tim Tutin"'
must_not_contain "$BODY" "Sjenica"
req GET /api/audit -H "Cookie: $VIEWER"
expect_code 403 "the audit log for a viewer"
VCSRF=$(curl -s -H "Cookie: $VIEWER" "${URL}api/session" | sed 's/.*"csrf":"\([^"]*\)".*/\1/')
post /api/tokens '{"team":"Tim X","municipality":"Tutin"}' -H "Cookie: $VIEWER" \
	-H "X-CSRF-Token: $VCSRF"
expect_code 403 "a token from a viewer"
req GET /api/session -H "Cookie: $VIEWER"
must_contain "$BODY" '"role":"viewer"'
must_contain "$BODY" '"municipalities":["Tutin"]'

# A change of state needs the session's token.
post /api/logout '{}' -H "Cookie: $ADMIN"
expect_code 403 "logout without the CSRF token"
post /api/logout '{}' -H "Cookie: $ADMIN" -H "X-CSRF-Token: $CSRF"
expect_code 200 "logout"
must_contain "$(header Set-Cookie)" "Max-Age=0"
req GET /api/devices -H "Cookie: $ADMIN"
expect_code 401 "the old session after logout"

# Only on loopback.
if command -v ss > /dev/null; then
	ss -ltnH "sport = :$CPORT" | grep -q "127.0.0.1:$CPORT" ||
		fail "the console does not listen on 127.0.0.1:$CPORT"
fi
echo "ok"
