#!/bin/sh
# demo.sh BUILD_DIR - a field team records visits offline in an encrypted
# store, enrols with HQ and syncs; HQ exports the merged records.  Shows
# that nothing readable reaches the field laptop's disk.  Everything runs
# on loopback and is stopped at the end.  Run by `make demo`.
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FS="$ROOT/$BUILD/fieldsync"
HQ="$ROOT/$BUILD/fieldsync-hq"
DEMO="$ROOT/demo-data"
DATA="$DEMO/store"

say() { printf '\n==> %s\n' "$*"; }

rm -rf "$DEMO"
mkdir -p "$DEMO"
chmod 700 "$DEMO"
printf 'demo-lozinka-Sremska-Mitrovica\n' > "$DEMO/passphrase"
chmod 600 "$DEMO/passphrase"
: > "$DEMO/agent.conf"
export FIELDSYNC_CONFIG="$DEMO/agent.conf"
run() { "$FS" --data-dir "$DATA" --forms-dir "$ROOT/conf/forms" --passphrase-file "$DEMO/passphrase" "$@"; }
: > "$DEMO/hq.conf"
export FIELDSYNC_HQ_CONFIG="$DEMO/hq.conf"
hq() { "$HQ" --data-dir "$DEMO/hq" --forms-dir "$ROOT/conf/forms" "$@"; }
HQ_PID=""
stop_hq() { [ -n "$HQ_PID" ] && kill "$HQ_PID" 2> /dev/null && wait "$HQ_PID" 2> /dev/null; HQ_PID=""; }
trap stop_hq EXIT INT TERM

say "A field laptop in Sremska Mitrovica creates its encrypted store and device identity"
run init --kdf interactive

say "The team records two households (synthetic names, Latin and Cyrillic)"
b1=$(run beneficiary add "full_name=Ružičić Đorđe" "municipality=Sremska Mitrovica" \
	status=idp household_size=5 vulnerabilities=elderly,disability phone=+381641234567 consent=yes | tail -n 1)
b2=$(run beneficiary add "full_name=Ружичић Јелена" "municipality=Сремска Митровица" \
	status=refugee household_size=3 consent=yes | tail -n 1)
echo "beneficiary $b1"
echo "beneficiary $b2"

say "They record visits to both"
run visit add "beneficiary_id=$b1" visit_date=2026-11-20 visit_type=prefab_installation \
	"notes=Montaža montažne kuće, faza 2" gps=44.9761,19.6122 next_visit=2026-12-04 | tail -n 1
run visit add "beneficiary_id=$b2" visit_date=2026-11-21 visit_type=legal_assistance \
	"notes=Помоћ око личних докумената" | tail -n 1

say "A form rule catches a mistake and names the field (never the value)"
run beneficiary add "full_name=Test Osoba" municipality=Vranje household_size=0 consent=yes || true

say "Beneficiaries on this laptop"
run beneficiary list
say "Visits, as JSON Lines"
run visit list --json

say "Store status: changes waiting for the next sync"
run status

say "Every page authenticates and every record matches its outbox"
run check

say "Nothing readable on disk: grep for the names and the SQLite header in $DATA"
for word in "Ružičić" "Ружичић" "SQLite format 3"; do
	if grep -r -a -q -F "$word" "$DATA"; then
		echo "FOUND '$word' in the clear" >&2
		exit 1
	fi
	echo "  '$word': not found"
done
printf '  sqlite3 shell: '
sqlite3 "$DATA/store.db" "SELECT count(*) FROM records" 2>&1 || true

say "Headquarters creates its keys and starts its sync server on loopback"
hq init
# The binary itself, not the hq() wrapper, so that $! is the server.
"$HQ" --data-dir "$DEMO/hq" --forms-dir "$ROOT/conf/forms" serve --listen 127.0.0.1:0 \
	2> "$DEMO/hq.log" &
HQ_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$DEMO/hq.log" 2> /dev/null && break; sleep 0.1; done
URL="http://$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$DEMO/hq.log" | head -n 1)"
echo "HQ at $URL"

say "An administrator issues a one-time enrolment token; the team enrols"
TOKEN=$(hq enroll-token --team "Sremska Mitrovica 1" --municipality "Sremska Mitrovica" | tail -n 1)
printf '%s\n' "$TOKEN" | run enroll "$URL" -

say "Connectivity is back: the team syncs; each change set is signed, sealed and acknowledged"
run sync
run status

say "Syncing again sends nothing: delivery is exactly once in effect"
run sync

say "HQ's merged view, exported as CSV (UTF-8, opens in LibreOffice)"
hq export beneficiaries --format csv
hq export visits --format jsonl
say "Enrolled devices"
hq devices

stop_hq
say "Done.  Field store in $DATA, HQ in $DEMO/hq, passphrase in $DEMO/passphrase (demo only)."
echo "Nothing is left running.  Remove the demo with: rm -rf $DEMO"
