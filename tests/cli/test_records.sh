# test_records.sh - record commands: add, list, show, edit, delete, exit codes.
set -e
. "$(dirname "$0")/lib.sh"

init_store
must_contain "$OUT" "created encrypted store"
# A second init refuses and keeps the first store.
expect_exit 2 fs init --kdf interactive
must_contain "$ERR" "already exists"

# Serbian Latin and Cyrillic names round-trip byte for byte.
id1=$(add_person "Ružičić Đorđe")
id2=$(add_person "Ружичић Ђорђе" "Бујановац")
[[ "$id1" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] \
	|| fail "not a UUIDv7: $id1"
expect_exit 0 fs beneficiary show "$id2" --json
must_contain "$OUT" '"full_name":"Ружичић Ђорђе"'
must_contain "$OUT" '"municipality":"Бујановац"'
expect_exit 0 fs beneficiary list --json
[ "$(printf '%s\n' "$OUT" | wc -l)" -eq 2 ] || fail "list --json: expected 2 lines: $OUT"
must_contain "$OUT" "Ružičić Đorđe"
printf '%s\n' "$OUT" | while read -r line; do
	printf '%s' "$line" | python3 -c 'import json,sys; json.load(sys.stdin)' \
		|| fail "list --json line is not JSON: $line"
done

# --json input.
printf '{"full_name":"Šćepanović Žaklina","municipality":"Sjenica","consent":true,"vulnerabilities":["elderly","disability"]}' > "$T/b.json"
expect_exit 0 fs beneficiary add --json "$T/b.json"
id3=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 fs beneficiary show "$id3"
must_contain "$OUT" "Šćepanović Žaklina"
must_contain "$OUT" '["elderly","disability"]'
expect_exit 0 sh -c "printf '%s' '{\"full_name\":\"Stdin Test\",\"municipality\":\"Tutin\",\"consent\":true}' | \"$FIELDSYNC\" --data-dir '$DATA' --forms-dir '$FORMS' --passphrase-file '$PASS' beneficiary add --json -"

# Visits name an existing beneficiary.
expect_exit 0 fs visit add "beneficiary_id=$id1" visit_date=2026-11-20 visit_type=needs_assessment "notes=Kuća oštećena; потребна помоћ"
vid=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 fs visit show "$vid" --json
must_contain "$OUT" "потребна помоћ"
expect_exit 2 fs visit add beneficiary_id=0193a1b2-c3d4-7abc-8def-0123456789ab visit_date=2026-11-20 visit_type=needs_assessment
must_contain "$ERR" "beneficiary_id"

# Validation errors name the field and never echo the value.
expect_exit 2 fs beneficiary add "full_name=Tajno Ime" municipality=Tutin consent=yes household_size=0
must_contain "$ERR" "household_size"
must_not_contain "$ERR" "Tajno"
expect_exit 2 fs beneficiary add "full_name=Tajno Ime" municipality=Tutin consent=no
must_contain "$ERR" "consent"
expect_exit 2 fs beneficiary add municipality=Tutin consent=yes
must_contain "$ERR" "full_name"
expect_exit 2 fs beneficiary add "full_name=X" municipality=Tutin consent=yes status=tourist
must_contain "$ERR" "status"
must_not_contain "$ERR" "tourist"
expect_exit 2 fs beneficiary add "full_name=X" municipality=Tutin consent=yes shoe_size=44
must_contain "$ERR" "shoe_size"
# Whatever a person typed where a name or id was expected is not echoed.
expect_exit 2 fs beneficiary show "Ružičić Đorđe"
must_not_contain "$ERR" "Ružičić"
expect_exit 2 fs beneficiary add "Marko Marković=1" municipality=Tutin consent=yes
must_not_contain "$ERR" "Marković"
expect_exit 1 fs beneficiary "Marko Marković"
must_not_contain "$ERR" "Marković"

# Edit changes one field; FIELD= clears an optional one.
expect_exit 0 fs beneficiary edit "$id1" household_size=5 status=
expect_exit 0 fs beneficiary show "$id1" --json
must_contain "$OUT" '"household_size":5'
must_not_contain "$OUT" '"status"'
expect_exit 2 fs beneficiary edit "$id1" full_name=
must_contain "$ERR" "full_name"

# Delete is a tombstone: gone from list, show says deleted, no edit.
expect_exit 0 fs beneficiary delete "$id2"
expect_exit 0 fs beneficiary list
must_not_contain "$OUT" "$id2"
expect_exit 0 fs beneficiary show "$id2" --json
must_contain "$OUT" '"deleted":true'
expect_exit 2 fs beneficiary edit "$id2" household_size=2
must_contain "$ERR" "deleted"
expect_exit 2 fs beneficiary delete 0193a1b2-c3d4-7abc-8def-0123456789ab

expect_exit 0 fs status --json
must_contain "$OUT" '"records":3'
must_contain "$OUT" '"deleted":1'
expect_exit 0 fs check
must_contain "$OUT" "store ok"

# Usage errors exit 1; --help everywhere exits 0.
expect_exit 1 "$FIELDSYNC"
expect_exit 1 fs frobnicate
# A usage error names the program and command, and where help is
# (sync/clierr.h, shared with fieldsync-hq's).
expect_exit 1 fs visit list --no-such-option
must_contain "$ERR" "fieldsync visit"
must_contain "$ERR" "Try 'fieldsync visit"
expect_exit 1 fs beneficiary add
expect_exit 1 fs beneficiary show
expect_exit 1 fs import visits
for c in "" init keygen passwd "beneficiary" "visit" import status check; do
	expect_exit 0 "$FIELDSYNC" $c --help
	must_contain "$OUT" "Usage: fieldsync"
done
expect_exit 0 "$FIELDSYNC" --version

# init with the key envelope missing must not delete the rest of the
# store: put the envelope back and every record is still there.
mv "$DATA/store.key" "$T/store.key.aside"
expect_exit 2 fs init --kdf interactive
must_contain "$ERR" "already exists"
[ -f "$DATA/store.db" ] && [ -f "$DATA/device.key" ] || fail "init deleted an existing store"
[ ! -e "$DATA/store.key" ] || fail "init wrote a new key over an existing store"
mv "$T/store.key.aside" "$DATA/store.key"
expect_exit 0 fs beneficiary show "$id1" --json

# A config file that names an unknown key is an error with its line.
printf '[store]\ndata_dir = %s\ndata_dri = typo\n' "$DATA" > "$T/bad.conf"
expect_exit 2 "$FIELDSYNC" -c "$T/bad.conf" status
must_contain "$ERR" "line 3"
must_contain "$ERR" "data_dri"
# The config file's keys are used.
printf '[store]\ndata_dir = %s\npassphrase_file = %s\n[forms]\ndir = %s\n' "$DATA" "$PASS" "$FORMS" > "$T/good.conf"
expect_exit 0 "$FIELDSYNC" -c "$T/good.conf" beneficiary list
must_contain "$OUT" "$id1"
expect_exit 4 "$FIELDSYNC" -c "$T/missing.conf" status
echo "records: ok"
