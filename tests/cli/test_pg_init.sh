# test_pg_init.sh - HQ's PostgreSQL backend, its first part (issue 13):
# a real PostgreSQL 15 server started here; `init` makes HQ's schema in
# it, with the same tables and columns as SQLite's and the same
# append-only rules; a second init refuses; and the faults an operator
# meets first (server down, wrong password, missing database, a password
# in the connection string) are errors that name the connection, never
# the password.  A database without HQ's schema says to run init.
set -e
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
command -v sqlite3 > /dev/null || fail "the sqlite3 shell is needed"

pg_start
SECRET=$(head -n 1 "$PG_PASSFILE")
pgq() { pg_as "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U pgadmin -d fieldsync -c "$1"; }

# init makes the keys and the schema.
hq_conf_pg
expect_exit 0 hq init
must_contain "$OUT" "HQ's schema in PostgreSQL host=127.0.0.1 port=$PG_PORT dbname=fieldsync user=hq"
[ -f "$T/hq/hq.key" ] || fail "no HQ key"
[ "$(pgq 'SELECT version FROM schema_info')" = 8 ] || fail "schema version"
[ "$(pgq "SELECT value FROM counters WHERE name = 'rev'")" = 0 ] || fail "counters"
# ... with the tables and columns of SQLite's schema.
printf '[store]\ndata_dir = %s/lite\n' "$T" > "$T/lite.conf"
expect_exit 0 "$HQ_BIN" -c "$T/lite.conf" init
sqlite3 "$T/lite/hq.db" "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
	WHERE m.type = 'table' ORDER BY 1" > "$T/lite.cols"
pgq "SELECT table_name || '.' || column_name FROM information_schema.columns
	WHERE table_schema = 'public' AND table_name != 'schema_info' ORDER BY 1" > "$T/pg.cols"
diff "$T/lite.cols" "$T/pg.cols" > "$T/cols.diff" || fail "the two schemas differ: $(cat "$T/cols.diff")"
[ "$(wc -l < "$T/pg.cols")" -gt 60 ] || fail "too few columns compared"
# The other commands run on it (the HQ tests run on both backends).
expect_exit 0 hq devices
expect_exit 0 hq audit verify
must_contain "$OUT" "audit log ok: 1 entries"
# ... and its append-only rules (this breaks the log's hashes: nothing
# after it verifies the log).
pgq "INSERT INTO events(id, at, type) VALUES (3, 1, 'admin')" > /dev/null || fail "the next event"
! pgq "INSERT INTO events(id, at, type) VALUES (5, 1, 'admin')" 2> "$T/e" || fail "an event out of order was taken"
must_contain "$(cat "$T/e")" "events are numbered in order"
! pgq "UPDATE events SET type = 'x'" 2> "$T/e" || fail "an event was changed"
must_contain "$(cat "$T/e")" "events are append-only"
! pgq "DELETE FROM events" 2> "$T/e" || fail "an event was deleted"

# A second init changes nothing.
expect_exit 2 hq init
must_contain "$ERR" "already holds HQ's schema (version 8)"

# A wrong password: the connection is named, the password never.
printf 'pogresna-lozinka\n' > "$T/wrong.pass"
chmod 600 "$T/wrong.pass"
sed "s|^postgresql_password_file = .*|postgresql_password_file = $T/wrong.pass|" "$T/hq.conf" > "$T/wrong.conf"
expect_exit 4 "$HQ_BIN" -c "$T/wrong.conf" --data-dir "$T/hq2" init
must_contain "$ERR" "connect to PostgreSQL host=127.0.0.1 port=$PG_PORT dbname=fieldsync user=hq"
must_contain "$ERR" "password authentication failed"
must_not_contain "$ERR" "pogresna"
[ ! -e "$T/hq2/hq.key" ] || fail "a key was made though the database refused the login"
# A password file others can read is refused.
chmod 644 "$T/wrong.pass"
expect_exit 3 "$HQ_BIN" -c "$T/wrong.conf" --data-dir "$T/hq2" init
# A missing database.
sed "s|dbname=fieldsync|dbname=nema_baze|" "$T/hq.conf" > "$T/nodb.conf"
expect_exit 4 "$HQ_BIN" -c "$T/nodb.conf" --data-dir "$T/hq2" init
must_contain "$ERR" 'database "nema_baze" does not exist'
# A password in the connection string is refused, and not echoed.
sed "s|user=hq|user=hq password=$SECRET|" "$T/hq.conf" > "$T/inline.conf"
expect_exit 1 "$HQ_BIN" -c "$T/inline.conf" --data-dir "$T/hq2" init
must_contain "$ERR" "holds a password"
must_not_contain "$ERR" "$SECRET"
# The password from a systemd credential.
sed "/^postgresql_password_file/d" "$T/hq.conf" > "$T/cred.conf"
mkdir -m 700 "$T/creds"
cp "$PG_PASSFILE" "$T/creds/fieldsync-hq-postgresql"
expect_exit 2 env CREDENTIALS_DIRECTORY="$T/creds" "$HQ_BIN" -c "$T/cred.conf" init
must_contain "$ERR" "already holds HQ's schema"
# Without it, libpq finds no password.
expect_exit 4 "$HQ_BIN" -c "$T/cred.conf" --data-dir "$T/hq2" init
must_contain "$ERR" "user=hq"
# A bad connection string, and a missing one.
printf '[store]\ndata_dir = %s/hq2\nbackend = postgresql\npostgresql = host=\n' "$T" > "$T/bad.conf"
printf '[store]\ndata_dir = %s/hq2\nbackend = postgresql\n' "$T" > "$T/none.conf"
expect_exit 1 "$HQ_BIN" -c "$T/none.conf" init
must_contain "$ERR" "needs [store] postgresql"
printf '[store]\nbackend = oracle\n' > "$T/oracle.conf"
expect_exit 1 "$HQ_BIN" -c "$T/oracle.conf" init
must_contain "$ERR" "[store] backend must be sqlite or postgresql"

# A database without HQ's schema: the error says to run init.
pg_psql "CREATE DATABASE prazna OWNER hq" || fail "create database"
sed "s|dbname=fieldsync|dbname=prazna|" "$T/hq.conf" > "$T/empty.conf"
expect_exit 4 "$HQ_BIN" -c "$T/empty.conf" devices
must_contain "$ERR" "no HQ schema (run init)"

# The server down: a clear error naming it.
pg_stop
expect_exit 4 "$HQ_BIN" -c "$T/hq.conf" --data-dir "$T/hq2" init
must_contain "$ERR" "connect to PostgreSQL host=127.0.0.1 port="
echo "ok: PostgreSQL init"
