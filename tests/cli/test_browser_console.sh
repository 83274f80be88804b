# test_browser_console.sh - HQ's console in headless Chromium (Debian's
# chromium, chromium-driver and python3-selenium) against a real HQ on
# loopback: tests/browser/console.py drives the page; this script sets
# the scene and checks what the browser cannot see (the audit log, and
# what the laptops receive).  HQ runs under a clock seam (HQ_CLOCK_FILE,
# lib.sh) that the browser test moves a day on, so a stuck queue ages
# without a sleep.  Screenshots go to $FS_BUILD_DIR/screenshots/console-*.png.
set -e
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/web.sh"
PY=/usr/bin/python3
for p in chromium chromedriver "$PY"; do
	command -v "$p" > /dev/null || fail "$p is needed (scripts/deps.sh installs it)"
done
export PYTHONDONTWRITEBYTECODE=1 # nothing written into the source tree
"$PY" -c 'import selenium' 2> /dev/null || fail "python3-selenium is needed (scripts/deps.sh)"
[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'stop_hq'

hq_conf
expect_exit 0 hq init
export HQ_CLOCK_FILE="$T/hqclock"
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

# A conflict in Tutin: two laptops change one household's size at once.
TH=01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f1
printf 'id,full_name,municipality,status,household_size,consent\n%s\n' \
	"$TH,Kolašinac Edin,Tutin,idp,4,yes" > "$T/tutin.csv"
dev_enrol tutin2 "Tim Tutin 2" Tutin Tutin
expect_exit 0 dev tutin import beneficiaries "$T/tutin.csv"
expect_exit 0 dev tutin2 import beneficiaries "$T/tutin.csv"
expect_exit 0 dev tutin beneficiary edit "$TH" household_size=5
expect_exit 0 dev tutin2 beneficiary edit "$TH" household_size=6
expect_exit 0 dev tutin sync
expect_exit 0 dev tutin2 sync
expect_exit 0 hq conflicts --json
must_contain "$OUT" "$TH"

# A quarantined change in Tutin: a laptop whose own form allows a status
# HQ's does not.
returnee_laptop "Tim Tutin 3" Tutin
expect_exit 0 novi beneficiary add "full_name=Hodžić Amra" municipality=Tutin status=returnee \
	household_size=2 consent=yes
QH=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 novi sync
must_contain "$OUT" "1 quarantined at HQ"

# A stuck queue in Sjenica: a laptop whose store was copied to another,
# which sent first.  HQ refuses the original's next set every time; the
# laptop says so in its reports, with its changes still waiting.
dev_enrol sjenica2 "Tim Sjenica 2" Sjenica Sjenica
cp -a "$T/sjenica2" "$T/sjenica2-copy"
expect_exit 0 dev sjenica2-copy beneficiary add "full_name=Бошковић Мирјана" municipality=Sjenica \
	status=refugee household_size=3 consent=yes
SH=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 dev sjenica2-copy visit add "beneficiary_id=$SH" "visit_date=$(date +%F)" \
	visit_type=needs_assessment
expect_exit 0 dev sjenica2-copy sync
expect_exit 0 dev sjenica2 beneficiary add "full_name=Ђурић Вера" municipality=Sjenica \
	status=idp household_size=1 consent=yes
expect_exit 2 dev sjenica2 sync
must_contain "$ERR" "conflicting_duplicate"
# Tutin's laptop imports a list holding that Sjenica household: HQ keeps
# its writes in quarantine, Sjenica's business, not Tutin's viewer's.
printf 'id,full_name,municipality,status,household_size,consent\n%s\n' \
	"$SH,Бошковић Мирјана,Sjenica,refugee,3,yes" > "$T/stray.csv"
expect_exit 0 dev tutin import beneficiaries "$T/stray.csv"
expect_exit 0 dev tutin sync
must_contain "$OUT" "quarantined at HQ"

SHOTS="${FS_BUILD_DIR:-$T}/screenshots"
mkdir -p "$SHOTS"
export FS_CONSOLE_URL="$URL" FS_PROFILE="$T/profile" FS_SHOTS="$SHOTS" \
	FS_TEST_TIMEOUT_SCALE="$SCALE" FS_ADMIN_PASSWORD="$ADMIN_PW" FS_VIEWER_PASSWORD="$VIEWER_PW" \
	FS_HQ_CLOCK="$HQ_CLOCK_FILE" FS_CONFLICT_RECORD="$TH" FS_QUARANTINED_RECORD="$QH" \
	FS_SJENICA_RECORD="$SH"
"$PY" "$FS_SOURCE_DIR/tests/browser/console.py" || fail "the browser test failed"

# The conflict was resolved in the page: both Tutin laptops receive the
# value kept (Tim Tutin's 5, which had lost to the later 6).
for d in tutin tutin2; do
	expect_exit 0 dev "$d" sync
	expect_exit 0 dev "$d" beneficiary show "$TH" --json
	must_contain "$OUT" '"household_size":5'
done
expect_exit 0 hq audit list --event resolved --json
must_contain "$OUT" '\"user\":\"ana.admin\"'
# The quarantined status was released in the page: HQ merged it and the
# laptop keeps it.
expect_exit 0 hq export beneficiaries --format jsonl
printf '%s\n' "$OUT" | grep "$QH" | grep -q '"status":"returnee"' || fail "the released status did not merge"
expect_exit 0 hq audit list --event released --json
must_contain "$OUT" 'a status the programme added'

# The failed logins and the pause are audited, by account, no password.
expect_exit 0 hq audit list --event login_failed --json
[ "$(printf '%s\n' "$OUT" | grep -c ana.admin)" -ge 5 ] || fail "the failed logins were not audited"
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
