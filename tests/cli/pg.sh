# pg.sh - a real PostgreSQL server for a test (sourced after lib.sh).
#
# pg_start makes a cluster with Debian's initdb in $T/pg, as an
# unprivileged user (nobody, when the test runs as root: PostgreSQL
# refuses root), and starts it with pg_ctl on a loopback port and a
# socket in $T/pg.  It creates the role hq with a password (in
# $T/pg.pass, mode 0600) and the database fieldsync it owns, and sets
# PG_CONNINFO (no password in it).  Logins over TCP need the password
# (scram-sha-256).  fsync is off: the tests kill HQ, never the server,
# and the cores are shared.  pg_stop stops it; lib.sh calls it when the test ends.
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1)
PG_DIR="$T/pg"
PG_PORT=
PG_CONNINFO=
PG_PASSFILE="$T/pg.pass"

# pg_as CMD...: CMD as the cluster's owner.
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		"$@"
	fi
}

# pg_psql SQL: run SQL as the cluster's superuser, over the socket.
pg_psql() { pg_as "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U pgadmin -d postgres -c "$1"; }

# pg_run: start the cluster in $PG_DIR on $PG_PORT (again, after pg_kill).
pg_run() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t $((60 * SCALE)) -l "$PG_DIR/server.log" \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_DIR -c fsync=off" \
		start > /dev/null 2>&1
}

# pg_kill: the server goes away at once, as in a crash (connections cut,
# transactions in flight lost); pg_run brings it back on the same port.
pg_kill() { pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop > /dev/null 2>&1; }

pg_start() {
	local try
	[ -x "$PG_BIN/initdb" ] || fail "PostgreSQL's server is not installed (scripts/deps.sh installs postgresql-15)"
	command -v setpriv > /dev/null || fail "setpriv (util-linux) is needed"
	mkdir -p "$PG_DIR"
	if [ "$(id -u)" -eq 0 ]; then
		chmod 755 "$T"
		chown nobody:nogroup "$PG_DIR"
	fi
	pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U pgadmin --auth-local=trust \
		--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 > "$T/initdb.log" 2>&1 ||
		fail "initdb failed: $(cat "$T/initdb.log")"
	for try in 1 2 3 4 5; do
		PG_PORT=$((20000 + RANDOM % 40000))
		pg_run && break
		PG_PORT=
	done
	[ -n "$PG_PORT" ] || fail "PostgreSQL did not start: $(cat "$PG_DIR/server.log" 2> /dev/null)"
	printf 'hq-lozinka-%s-%s\n' "$$" "$RANDOM" > "$PG_PASSFILE"
	chmod 600 "$PG_PASSFILE"
	pg_psql "CREATE ROLE hq LOGIN PASSWORD '$(head -n 1 "$PG_PASSFILE")'" || fail "create role"
	pg_psql "CREATE DATABASE fieldsync OWNER hq" || fail "create database"
	PG_CONNINFO="host=127.0.0.1 port=$PG_PORT dbname=fieldsync user=hq connect_timeout=10"
}

pg_stop() {
	local pid
	[ -n "$PG_PORT" ] || return 0
	pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2> /dev/null || true)
	# A server that does not stop when asked is made to: it must not
	# outlive the test whose directory holds it.
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop > /dev/null 2>&1 ||
		{ [ -n "$pid" ] && kill -QUIT "$pid" 2> /dev/null; } || true
	PG_PORT=
}

# hq_conf_pg: HQ's config for PostgreSQL (keys still in $T/hq).
hq_conf_pg() {
	printf '[store]\ndata_dir = %s/hq\nbackend = postgresql\npostgresql = %s\npostgresql_password_file = %s\n[forms]\ndir = %s\n[console]\nlisten = 127.0.0.1:0\n' \
		"$T" "$PG_CONNINFO" "$PG_PASSFILE" "$FORMS" > "$T/hq.conf"
}
