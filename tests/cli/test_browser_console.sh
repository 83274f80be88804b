# test_browser_console.sh - HQ's console in headless Chromium (Debian's
# chromium, chromium-driver and python3-selenium) against a real HQ on
# loopback: tests/browser/console.py drives the page; this script sets
# the scene and checks what the browser cannot see (the audit log).
# Screenshots go to $FS_BUILD_DIR/screenshots/console-*.png.
set -e
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
for p in chromium chromedriver "$PY"; do
	command -v "$p" > /dev/null || fail "$p is needed (scripts/deps.sh installs it)"
done
export PYTHONDONTWRITEBYTECODE=1 # nothing written into the source tree
"$PY" -c 'import selenium' 2> /dev/null || fail "python3-selenium is needed (scripts/deps.sh)"
[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'stop_hq'

hq_conf
printf '[console]\nlogin_tries = 3\n' >> "$T/hq.conf"
expect_exit 0 hq init
start_hq
wait_for 30 "the console did not start" in_file "$T/hq.log" "console on http://127.0.0.1:"
URL=$(sed -n 's|.*console on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$T/hq.log" | tail -n 1)
ADMIN_PW="konj-baterija-spajalica"
VIEWER_PW="spajalica-konj-baterija"
printf '%s\n' "$ADMIN_PW" > "$T/pw-admin"
printf '%s\n' "$VIEWER_PW" > "$T/pw-viewer"
chmod 600 "$T/pw-admin" "$T/pw-viewer"
expect_exit 0 hq user add ana.admin --role admin --password-file "$T/pw-admin"
expect_exit 0 hq user add tutin.viewer --role viewer --municipality Tutin \
	--password-file "$T/pw-viewer"
dev_enrol sjenica "Tim Sjenica" Sjenica Sjenica
dev_enrol tutin "Tim Tutin" Tutin Tutin
expect_exit 0 dev tutin sync

SHOTS="${FS_BUILD_DIR:-$T}/screenshots"
mkdir -p "$SHOTS"
export FS_CONSOLE_URL="$URL" FS_PROFILE="$T/profile" FS_SHOTS="$SHOTS" \
	FS_TEST_TIMEOUT_SCALE="$SCALE" FS_ADMIN_PASSWORD="$ADMIN_PW" FS_VIEWER_PASSWORD="$VIEWER_PW"
"$PY" "$FS_SOURCE_DIR/tests/browser/console.py" || fail "the browser test failed"

# The failed logins and the pause are audited, by account, no password.
expect_exit 0 hq audit list --event login_failed --json
[ "$(printf '%s\n' "$OUT" | grep -c ana.admin)" -ge 3 ] || fail "the failed logins were not audited"
expect_exit 0 hq audit list --event login_paused --json
must_contain "$OUT" "ana.admin"
expect_exit 0 hq audit list --json
must_not_contain "$OUT" "pogrešna"
# The revocation made in the page holds: Sjenica's laptop is refused.
expect_exit 2 dev sjenica sync
must_contain "$ERR" "revoked"
expect_exit 0 hq audit list --event revoke --json
must_contain "$OUT" "reported lost"
! grep -rqaF "$ADMIN_PW" "$T/profile" || fail "the browser profile holds a password"
! grep -rqaF "$VIEWER_PW" "$T/profile" || fail "the browser profile holds a password"
echo "ok"
