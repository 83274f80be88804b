# test_users.sh - the console's accounts from the command line
# (`fieldsync-hq user`, hq/users.h): names, roles and municipalities
# checked; passwords from a private file or not at all (no terminal
# here), hashed with Argon2id and never printed; every change audited;
# an upgrade from schema version 5 (SQLite) adds the tables.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"

hq_conf
expect_exit 0 hq init
expect_exit 0 hq user --help
must_contain "$OUT" "Usage: fieldsync-hq user add NAME --role admin|viewer"

SECRET="konj-baterija-spajalica"
printf '%s\n' "$SECRET" > "$T/pw"
chmod 600 "$T/pw"
expect_exit 0 hq user add ana.admin --role admin --password-file "$T/pw"
must_contain "$OUT" "added account ana.admin"
expect_exit 0 hq user add tutin.viewer --role viewer --municipality "Tutin, Бујановац" \
	--password-file "$T/pw"

# Bad input, each with its reason; nothing is added.
expect_exit 1 hq user add marko --role viewer --password-file "$T/pw"
must_contain "$ERR" "a viewer sees only its municipalities: give --municipality"
expect_exit 1 hq user add Marko --role admin --password-file "$T/pw"
must_contain "$ERR" "an account name is 1 to 64 of a-z"
expect_exit 1 hq user add marko --role owner --password-file "$T/pw"
must_contain "$ERR" "add needs --role admin or viewer"
expect_exit 1 hq user add marko --role viewer --municipality "Tutin, *" --password-file "$T/pw"
must_contain "$ERR" "stands alone"
printf 'kratka\n' > "$T/short"
chmod 600 "$T/short"
expect_exit 1 hq user add marko --role admin --password-file "$T/short"
must_contain "$ERR" "a password is 12 to 1024 bytes"
chmod 644 "$T/pw"
expect_exit 3 hq user add marko --role admin --password-file "$T/pw"
chmod 600 "$T/pw"
# No terminal to ask on: a clear error, not a hang.
expect_exit 4 sh -c "\"$HQ_BIN\" -c \"$T/hq.conf\" user add marko --role admin < /dev/null"
must_contain "$ERR" "no terminal to ask for a password: give --password-file"
expect_exit 2 hq user add ana.admin --role admin --password-file "$T/pw"
must_contain "$ERR" "account ana.admin exists already"
expect_exit 1 hq user list extra
expect_exit 1 hq user frobnicate x

expect_exit 0 hq user list
must_contain "$OUT" "ana.admin"
must_contain "$OUT" "tutin.viewer"
must_contain "$OUT" "Бујановац"
must_not_contain "$OUT" "marko"
must_not_contain "$OUT" "argon2"
expect_exit 0 hq user list --json
must_contain "$OUT" '"name":"tutin.viewer","role":"viewer","municipalities":["Tutin","Бујановац"]'

printf 'nova-lozinka-za-anu\n' > "$T/pw2"
chmod 600 "$T/pw2"
expect_exit 0 hq user passwd ana.admin --password-file "$T/pw2"
expect_exit 2 hq user passwd nobody --password-file "$T/pw2"
must_contain "$ERR" "no account nobody"
expect_exit 0 hq user remove tutin.viewer
expect_exit 2 hq user remove tutin.viewer
expect_exit 0 hq user list
must_not_contain "$OUT" "tutin.viewer"

# Audited by name and role; no password in the log or the database file
# (SQLite), hashed or not.
expect_exit 0 hq audit list --event user --json
must_contain "$OUT" '\"action\":\"add\",\"user\":\"ana.admin\",\"role\":\"admin\"'
must_contain "$OUT" '\"action\":\"passwd\",\"user\":\"ana.admin\"'
must_contain "$OUT" '\"action\":\"remove\",\"user\":\"tutin.viewer\"'
must_not_contain "$OUT" "$SECRET"
expect_exit 0 hq audit verify
if [ "${FS_HQ_BACKEND:-sqlite}" = sqlite ]; then
	! grep -rqaF "$SECRET" "$T/hq" || fail "a password is in HQ's data directory"
	! grep -rqaF "nova-lozinka" "$T/hq" || fail "a password is in HQ's data directory"
	# A database of schema version 5 gains the tables of 6 and 7 when
	# opened.
	DB=$(ls "$T"/hq/*.db | head -n 1)
	python3 - "$DB" << 'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("DROP TABLE files; DROP TABLE uploads; DROP TABLE resolutions; DROP TABLE users; DROP TABLE login_failures; "
                 "ALTER TABLE devices DROP COLUMN health; ALTER TABLE devices DROP COLUMN health_at; "
                 "PRAGMA user_version = 5;")
db.close()
EOF
	expect_exit 0 hq user list
	expect_exit 0 hq user add ana.admin --role admin --password-file "$T/pw"
	[ "$(sqlite3 "$DB" "PRAGMA user_version; SELECT count(*) FROM resolutions; SELECT count(*) FROM files;" | tr '\n' ' ')" = "8 0 0 " ] ||
		fail "the upgrade did not reach version 8"
else
	# The same in PostgreSQL: version 5 is upgraded when HQ connects.
	pg_as "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U pgadmin \
		-d "fieldsync_$PG_DBS" -c "DROP TABLE files; DROP TABLE uploads; DROP TABLE resolutions; DROP TABLE users; DROP TABLE login_failures;
		ALTER TABLE devices DROP COLUMN health; ALTER TABLE devices DROP COLUMN health_at;
		UPDATE schema_info SET version = 5;" || fail "downgrade the schema"
	expect_exit 0 hq user list
	must_not_contain "$OUT" "ana.admin"
	expect_exit 0 hq user add ana.admin --role admin --password-file "$T/pw"
	[ "$(pg_as "$PG_BIN/psql" -X -q -A -t -h "$PG_DIR" -p "$PG_PORT" -U pgadmin \
		-d "fieldsync_$PG_DBS" -c "SELECT version FROM schema_info" -c \
		"SELECT count(*) FROM resolutions" -c "SELECT count(*) FROM files" | tr '\n' ' ')" = "8 0 0 " ] ||
		fail "the upgrade did not reach version 8"
fi
echo "ok"
