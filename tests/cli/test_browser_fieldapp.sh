# test_browser_fieldapp.sh - the field app in headless Chromium (Debian's
# chromium, chromium-driver and python3-selenium), against a real agent
# and a real HQ on loopback: tests/browser/fieldapp.py drives the page;
# this script sets the scene and checks what the browser cannot see.
# Screenshots go to $FS_BUILD_DIR/screenshots/fieldapp-*.png.
set -e
. "$(dirname "$0")/lib.sh"
# Debian's Python, whose packages include python3-selenium (another
# python3 may come first in PATH).
PY=/usr/bin/python3
for p in chromium chromedriver "$PY"; do
	command -v "$p" > /dev/null || fail "$p is needed (scripts/deps.sh installs it)"
done
export PYTHONDONTWRITEBYTECODE=1 # nothing written into the source tree
"$PY" -c 'import selenium' 2> /dev/null || fail "python3-selenium is needed (scripts/deps.sh)"
at_exit 'kill_agent; stop_hq'

# An enrolled laptop with a household waiting to be sent, and HQ down;
# the agent starts locked (no secret in its configuration).
hq_conf
hq_and_enrolled_store "Tim Vranje" Vranje
NAME="Ђорђевић Драгана"
add_person "$NAME" Vranje > /dev/null
ANA=$(add_person "Jovanović Ana" Vranje)
expect_exit 0 fs visit add "beneficiary_id=$ANA" visit_date=2026-11-20 visit_type=needs_assessment \
	"notes=Krov prokišnjava; потребна поправка"
expect_exit 0 fs sync
# Another team's laptop, covering Vranje too, visits Ana; this laptop
# hears of it (and of that team's name) only at its next sync.
dev_enrol presevo "Tim Preševo" Preševo Vranje
expect_exit 0 dev presevo sync
expect_exit 0 dev presevo visit add "beneficiary_id=$ANA" visit_date=2026-11-22 \
	visit_type=legal_assistance "notes=Dokumenta predata"
expect_exit 0 dev presevo sync
add_person "Petrović Marko" Vranje > /dev/null
HQ_PORT=$PORT
stop_hq
agent_conf '[web]' 'listen = 127.0.0.1:0'
start_agent
wait_log "field app on http://127.0.0.1:"
URL=$(sed -n 's|.*field app on \(http://127\.0\.0\.1:[0-9]*/\) .*|\1|p' "$T/agent.log" | tail -n 1)

# A camera's photo, 3000 x 2000 with EXIF holding a marker, and a web
# page named as a photo.
[ -x "${FS_MKJPEG:-}" ] || fail "FS_MKJPEG must name the mkjpeg tool (tests/CMakeLists.txt)"
MARKER=FIELDSYNC-APP-PHOTO-MARKER-5d1e
"$FS_MKJPEG" "$T/site.jpg" 3000 2000 --exif "$MARKER GPS 42.55N 21.90E" || fail "mkjpeg"
printf '<html>%s</html>\n' "$MARKER" > "$T/lie.jpg"

SHOTS="${FS_BUILD_DIR:-$T}/screenshots"
mkdir -p "$SHOTS"
# The browser's profile is kept in $T, to be searched afterwards.  The
# script starts HQ again itself (on its old port) when the page has
# shown the problem, and stops it at the end.
export FS_APP_URL="$URL" FS_APP_PASSPHRASE_FILE="$PASS" FS_PROFILE="$T/profile" \
	FS_PHOTO="$T/site.jpg" FS_LIE_PHOTO="$T/lie.jpg" \
	FS_SHOTS="$SHOTS" FS_TEST_TIMEOUT_SCALE="$SCALE" FS_HQ_BIN="$HQ_BIN" \
	FS_HQ_CONF="$T/hq.conf" FS_HQ_PORT="$HQ_PORT" FS_HQ_LOG="$T/hq.log"
"$PY" "$FS_SOURCE_DIR/tests/browser/fieldapp.py" || fail "the browser test failed"

# The households, and the visit recorded in the page, reached HQ
# through "Sync now"; the draft's crash and its refused answers left
# nothing behind.
[ "$(hq_count beneficiaries)" -eq 3 ] || fail "HQ has $(hq_count beneficiaries) households, expected 3"
[ "$(hq_count visits)" -eq 3 ] || fail "HQ has $(hq_count visits) visits, expected 3"
hq export visits --format jsonl > "$T/visits.jsonl" || fail "hq export visits failed"
grep -q '"construction_stage":"roof"' "$T/visits.jsonl" || fail "the visit's stage of works did not reach HQ"
grep -q '"person_name":"Јована Петровић"' "$T/visits.jsonl" || fail "the people present did not reach HQ"
! grep -q '"next_visit":"2026-11-01"' "$T/visits.jsonl" || fail "a refused answer reached HQ"
# The photo reached HQ after the visit: scaled to the shipped form's
# 2048 px (libjpeg's 5/8 of 3000 x 2000), without the camera's EXIF.
PHOTO=$(python3 -c '
import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    p = json.loads(l).get("photo")
    if p: print(p["sha256"])' "$T/visits.jsonl")
[ -n "$PHOTO" ] || fail "no visit at HQ names a photo"
start_hq "$HQ_PORT"
until_ok 120 sh -c "'$HQ_BIN' -c '$T/hq.conf' attachment list | grep -q '^$PHOTO '" ||
	fail "the photo did not reach HQ"
hq attachment get "$PHOTO" > "$T/at-hq.jpg" || fail "attachment get failed"
! grep -qaF "$MARKER" "$T/at-hq.jpg" || fail "the photo at HQ holds the camera's EXIF"
python3 - "$T/at-hq.jpg" << 'PY' || fail "the photo at HQ is not 1875 x 1250"
import sys
d = open(sys.argv[1], "rb").read()
i = 2
while i < len(d):
    m, n = d[i + 1], int.from_bytes(d[i + 2:i + 4], "big")
    if m in (0xC0, 0xC1, 0xC2):
        w, h = int.from_bytes(d[i + 7:i + 9], "big"), int.from_bytes(d[i + 5:i + 7], "big")
        assert (w, h) == (1875, 1250), (w, h)
        break
    i += 2 + n
else:
    raise SystemExit(1)
PY
stop_hq

# Nothing personal stayed in the browser: not a name (in either
# script), not what was typed to find one, not a visit's notes, not the
# passphrase.
LATIN="Đorđević Dragana"
for secret in "$NAME" "$LATIN" "Jovanović Ana" "djordjevic" "Јованов" "Krov prokišnjava" \
	"Јована Петровић" "Prozori zamenjeni" "$MARKER" \
	"$(head -n 1 "$PASS")"; do
	! grep -rqaF "$secret" "$T/profile" || fail "the browser profile holds personal data or the passphrase"
done
echo "ok"
