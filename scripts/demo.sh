#!/bin/sh
# demo.sh BUILD_DIR - record and list visits in an encrypted store, and
# show that nothing readable reaches the disk.  Run by `make demo`.
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FS="$ROOT/$BUILD/fieldsync"
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

say "Done.  Files: store in $DATA, passphrase in $DEMO/passphrase (demo only)."
echo "Nothing is left running.  Remove the demo with: rm -rf $DEMO"
