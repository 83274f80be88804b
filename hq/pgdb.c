/* pgdb.c - see pgdb.h.  Sections: the schema; connecting; the schema's
 * version and creation. */
#include "hq/pgdb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keyfile.h"
#include "crypto/secmem.h"

/* ---- the schema ---------------------------------------------------------- */

/* HQ's schema at version PGDB_SCHEMA_VERSION: the tables of hq/hqdb.c,
 * hq/audit.h, hq/scope.h, hq/downsync.h and hq/formpub.h with
 * PostgreSQL's types (BIGINT for SQLite's INTEGER, BYTEA for BLOB), and
 * their append-only rules as triggers.  Text compares byte by byte
 * (COLLATE "C"), as in SQLite, whatever the database's locale: ids sort
 * and match the same on both, so exports come out in the same order.  A change to one backend's
 * schema is a change to both, and to the version. */
/* Version 6: the console's accounts (hq/users.h) and the devices'
 * health reports (hq/health.h), as SQLite's. */
#define USERS_PG_SQL                                                                               \
	"CREATE TABLE users("                                                                      \
	"  name TEXT COLLATE \"C\" PRIMARY KEY,"                                                   \
	"  role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),"                                \
	"  municipalities TEXT NOT NULL,"                                                          \
	"  pwhash TEXT NOT NULL,"                                                                  \
	"  created_at BIGINT NOT NULL,"                                                            \
	"  changed_at BIGINT NOT NULL);"                                                           \
	"CREATE TABLE login_failures("                                                             \
	"  key TEXT COLLATE \"C\" PRIMARY KEY,"                                                    \
	"  failures BIGINT NOT NULL,"                                                              \
	"  first_at BIGINT NOT NULL,"                                                              \
	"  paused_until BIGINT NOT NULL DEFAULT 0);"                                               \
	"ALTER TABLE devices ADD COLUMN health TEXT;"                                              \
	"ALTER TABLE devices ADD COLUMN health_at BIGINT;"

/* Version 7: conflicts resolved by an administrator (ingest_resolve),
 * as SQLite's, append-only. */
#define RESOLUTIONS_PG_SQL                                                                         \
	"CREATE TABLE resolutions("                                                                \
	"  conflict_id BIGINT PRIMARY KEY REFERENCES conflicts(id),"                               \
	"  settled_by BIGINT NOT NULL,"                                                            \
	"  choice TEXT COLLATE \"C\" NOT NULL CHECK (choice IN ('a', 'b', 'new')),"                \
	"  hlc BIGINT NOT NULL,"                                                                   \
	"  resolved_by TEXT COLLATE \"C\" NOT NULL,"                                               \
	"  resolved_at BIGINT NOT NULL);"                                                          \
	"CREATE TRIGGER resolutions_append_only BEFORE UPDATE OR DELETE ON resolutions FOR EACH "  \
	"ROW EXECUTE FUNCTION fieldsync_append_only('resolutions');"

/* Version 8: attached files (hq/upload.h), as SQLite's. */
#define FILES_PG_SQL                                                                               \
	"CREATE TABLE files("                                                                      \
	"  sha256 TEXT COLLATE \"C\" PRIMARY KEY,"                                                 \
	"  size BIGINT NOT NULL,"                                                                  \
	"  device TEXT COLLATE \"C\" NOT NULL,"                                                    \
	"  received_at BIGINT NOT NULL);"                                                          \
	"CREATE TABLE uploads("                                                                    \
	"  device TEXT COLLATE \"C\" NOT NULL,"                                                    \
	"  sha256 TEXT COLLATE \"C\" NOT NULL,"                                                    \
	"  size BIGINT NOT NULL,"                                                                  \
	"  chunk_size BIGINT NOT NULL,"                                                            \
	"  started_at BIGINT NOT NULL,"                                                            \
	"  PRIMARY KEY (device, sha256));"

static const char schema_sql[] =
	"CREATE TABLE schema_info(version INTEGER NOT NULL);"
	"CREATE TABLE devices("
	"  id TEXT COLLATE \"C\" PRIMARY KEY,"
	"  sign_pk BYTEA NOT NULL,"
	"  box_pk BYTEA NOT NULL,"
	"  team TEXT COLLATE \"C\" NOT NULL,"
	"  municipality TEXT COLLATE \"C\" NOT NULL,"
	"  enrolled_at BIGINT NOT NULL,"
	"  last_seen BIGINT,"
	"  last_seq BIGINT NOT NULL DEFAULT 0,"
	"  last_hash TEXT COLLATE \"C\","
	"  state TEXT COLLATE \"C\" NOT NULL DEFAULT 'active' CHECK (state IN ('active', "
	"'revoked')),"
	"  revoked_reason TEXT COLLATE \"C\","
	"  unbound_ok BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE tokens("
	"  secret_hash TEXT COLLATE \"C\" PRIMARY KEY,"
	"  team TEXT COLLATE \"C\" NOT NULL,"
	"  municipality TEXT COLLATE \"C\" NOT NULL,"
	"  expires_at BIGINT NOT NULL,"
	"  used_at BIGINT,"
	"  device TEXT COLLATE \"C\","
	"  scope TEXT COLLATE \"C\");"
	"CREATE TABLE changesets("
	"  device TEXT COLLATE \"C\" NOT NULL REFERENCES devices(id),"
	"  seq BIGINT NOT NULL,"
	"  hash TEXT COLLATE \"C\" NOT NULL,"
	"  body BYTEA NOT NULL,"
	"  receipt BYTEA NOT NULL,"
	"  received_at BIGINT NOT NULL,"
	"  PRIMARY KEY (device, seq));"
	"CREATE TABLE records("
	"  id TEXT COLLATE \"C\" PRIMARY KEY,"
	"  collection TEXT COLLATE \"C\" NOT NULL,"
	"  created_at BIGINT NOT NULL,"
	"  updated_hlc BIGINT NOT NULL,"
	"  updated_device TEXT COLLATE \"C\" NOT NULL,"
	"  deleted BIGINT NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),"
	"  merged_at BIGINT NOT NULL DEFAULT 0,"
	"  scope_key TEXT COLLATE \"C\","
	"  scope_parent TEXT COLLATE \"C\");"
	"CREATE INDEX records_by_collection ON records(collection, deleted, id);"
	"CREATE TABLE fields("
	"  record_id TEXT COLLATE \"C\" NOT NULL REFERENCES records(id),"
	"  field TEXT COLLATE \"C\" NOT NULL,"
	"  value TEXT COLLATE \"C\" NOT NULL,"
	"  hlc BIGINT NOT NULL,"
	"  device TEXT COLLATE \"C\" NOT NULL,"
	"  rev BIGINT NOT NULL DEFAULT 0,"
	"  scope_key TEXT COLLATE \"C\","
	"  PRIMARY KEY (record_id, field));"
	"CREATE TABLE field_writes("
	"  record_id TEXT COLLATE \"C\" NOT NULL REFERENCES records(id),"
	"  field TEXT COLLATE \"C\" NOT NULL,"
	"  device TEXT COLLATE \"C\" NOT NULL,"
	"  value TEXT COLLATE \"C\" NOT NULL,"
	"  hlc BIGINT NOT NULL,"
	"  base_value TEXT COLLATE \"C\","
	"  PRIMARY KEY (record_id, field, device, hlc));"
	"CREATE TABLE conflicts("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  record_id TEXT COLLATE \"C\" NOT NULL REFERENCES records(id),"
	"  field TEXT COLLATE \"C\" NOT NULL,"
	"  value_a TEXT COLLATE \"C\" NOT NULL, device_a TEXT COLLATE \"C\" NOT NULL, hlc_a BIGINT "
	"NOT NULL,"
	"  value_b TEXT COLLATE \"C\" NOT NULL, device_b TEXT COLLATE \"C\" NOT NULL, hlc_b BIGINT "
	"NOT NULL,"
	"  winner TEXT COLLATE \"C\" NOT NULL,"
	"  detected_at BIGINT NOT NULL,"
	"  rev BIGINT NOT NULL DEFAULT 0,"
	"  UNIQUE (record_id, field, device_a, hlc_a, device_b, hlc_b));"
	"CREATE TABLE quarantine("
	"  device TEXT COLLATE \"C\" NOT NULL,"
	"  seq BIGINT NOT NULL,"
	"  idx BIGINT NOT NULL,"
	"  record_id TEXT COLLATE \"C\" NOT NULL,"
	"  field TEXT COLLATE \"C\" NOT NULL,"
	"  reason TEXT COLLATE \"C\" NOT NULL,"
	"  PRIMARY KEY (device, seq, idx),"
	"  FOREIGN KEY (device, seq) REFERENCES changesets(device, seq) DEFERRABLE INITIALLY "
	"DEFERRED);"
	"CREATE TABLE events("
	"  id BIGINT PRIMARY KEY,"
	"  at BIGINT NOT NULL,"
	"  type TEXT COLLATE \"C\" NOT NULL,"
	"  device TEXT COLLATE \"C\","
	"  detail TEXT COLLATE \"C\","
	"  leaf BYTEA);"
	"CREATE TABLE checkpoints("
	"  size BIGINT PRIMARY KEY,"
	"  at BIGINT NOT NULL,"
	"  note TEXT COLLATE \"C\" NOT NULL);"
	"CREATE TABLE audit_nodes("
	"  level BIGINT NOT NULL,"
	"  idx BIGINT NOT NULL,"
	"  hash BYTEA NOT NULL,"
	"  PRIMARY KEY (level, idx));"
	"CREATE TABLE device_scopes("
	"  device TEXT COLLATE \"C\" NOT NULL REFERENCES devices(id),"
	"  key TEXT COLLATE \"C\" NOT NULL,"
	"  name TEXT COLLATE \"C\" NOT NULL,"
	"  PRIMARY KEY (device, key));"
	"CREATE INDEX fields_by_scope ON fields(scope_key, rev);"
	"CREATE INDEX fields_by_rev ON fields(rev);"
	"CREATE INDEX records_by_parent ON records(scope_parent);"
	"CREATE INDEX records_by_scope ON records(collection, scope_key);"
	"CREATE INDEX conflicts_by_rev ON conflicts(rev);"
	"CREATE INDEX conflicts_by_record ON conflicts(record_id);"
	"CREATE TABLE counters(name TEXT COLLATE \"C\" PRIMARY KEY, value BIGINT NOT NULL);"
	"INSERT INTO counters VALUES ('rev', 0);"
	"CREATE TABLE scope_fields(collection TEXT COLLATE \"C\" PRIMARY KEY, field TEXT COLLATE "
	"\"C\" NOT NULL);"
	"CREATE TABLE scope_moves("
	"  rev BIGINT PRIMARY KEY,"
	"  record_id TEXT COLLATE \"C\" NOT NULL,"
	"  from_key TEXT COLLATE \"C\" NOT NULL,"
	"  held_from BIGINT NOT NULL);"
	"CREATE INDEX scope_moves_by_key ON scope_moves(from_key, rev);"
	"CREATE TABLE down_state("
	"  device TEXT COLLATE \"C\" PRIMARY KEY REFERENCES devices(id),"
	"  seq BIGINT NOT NULL,"
	"  hash BYTEA NOT NULL,"
	"  prev_hash BYTEA NOT NULL,"
	"  body BYTEA NOT NULL,"
	"  conflict_cursor BIGINT NOT NULL,"
	"  scope TEXT COLLATE \"C\" NOT NULL,"
	"  issued_at BIGINT NOT NULL,"
	"  form_cursor BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE down_cursors("
	"  device TEXT COLLATE \"C\" NOT NULL REFERENCES devices(id),"
	"  key TEXT COLLATE \"C\" NOT NULL,"
	"  rev BIGINT NOT NULL,"
	"  moved BIGINT NOT NULL,"
	"  PRIMARY KEY (device, key));"
	"CREATE TABLE form_versions("
	"  collection TEXT COLLATE \"C\" NOT NULL,"
	"  version BIGINT NOT NULL CHECK (version >= 1),"
	"  definition TEXT COLLATE \"C\" NOT NULL,"
	"  rev BIGINT NOT NULL UNIQUE,"
	"  published_at BIGINT NOT NULL,"
	"  PRIMARY KEY (collection, version));"
	/* The append-only rules.  The audit log's numbering is checked here
	 * too; appends are serialised by the writer (one at a time). */
	"CREATE FUNCTION fieldsync_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
	"BEGIN RAISE EXCEPTION '% are append-only', TG_ARGV[0]; END $$;"
	"CREATE FUNCTION fieldsync_events_in_order() RETURNS trigger LANGUAGE plpgsql AS $$"
	"BEGIN IF NEW.id IS DISTINCT FROM (SELECT coalesce(max(id), 0) + 1 FROM events) THEN "
	"RAISE EXCEPTION 'events are numbered in order'; END IF; RETURN NEW; END $$;"
	"CREATE TRIGGER events_in_order BEFORE INSERT ON events FOR EACH ROW "
	"EXECUTE FUNCTION fieldsync_events_in_order();"
	"CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events FOR EACH ROW "
	"EXECUTE FUNCTION fieldsync_append_only('events');"
	"CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints FOR EACH "
	"ROW EXECUTE FUNCTION fieldsync_append_only('checkpoints');"
	"CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes FOR EACH "
	"ROW EXECUTE FUNCTION fieldsync_append_only('audit nodes');"
	"CREATE TRIGGER form_versions_append_only BEFORE UPDATE OR DELETE ON form_versions FOR "
	"EACH ROW EXECUTE FUNCTION fieldsync_append_only('published forms');" USERS_PG_SQL
		RESOLUTIONS_PG_SQL FILES_PG_SQL;

/* ---- connecting ---------------------------------------------------------- */

void pgdb_describe(const PGconn *db, char *out, size_t cap)
{
	const char *host = PQhost(db), *port = PQport(db), *name = PQdb(db), *user = PQuser(db);

	snprintf(out, cap, "host=%s port=%s dbname=%s user=%s", host && *host ? host : "(default)",
		 port && *port ? port : "(default)", name && *name ? name : "(default)",
		 user && *user ? user : "(default)");
}

void pgdb_reason(const char *msg, char *out, size_t cap)
{
	const char *p = msg ? msg : "", *f = strstr(p, "FATAL:");
	size_t n = 0;

	if (f)
		p = f + 6;
	while (*p == ' ')
		p++;
	for (; *p && n + 1 < cap; p++)
		out[n++] = *p == '\n' ? ' ' : *p;
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

/* The password: the file, else the credential, else none (libpq's own
 * ways, or no password).  *ret secure memory or NULL. */
static int password(const struct pgdb_config *cfg, char **ret, struct fs_error *err)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];
	size_t len;

	*ret = NULL;
	if (cfg->password_file)
		return keyfile_read_passphrase(cfg->password_file, ret, &len, err);
	if (creds && *creds) {
		snprintf(path, sizeof(path), "%s/%s", creds, PGDB_CREDENTIAL);
		if (access(path, F_OK) == 0)
			return keyfile_read_passphrase(path, ret, &len, err);
	}
	return 0;
}

/* The keywords and values of conninfo, with password added; refuses a
 * connection string that already holds one. */
static int parse(const char *conninfo, const char *pass, const char ***keys, const char ***vals,
		 PQconninfoOption **opts, struct fs_error *err)
{
	char *perr = NULL;
	size_t n = 0, k = 0;

	if (!(*opts = PQconninfoParse(conninfo, &perr))) {
		/* libpq's message names the syntax error, not a value. */
		char why[256];

		pgdb_reason(perr, why, sizeof(why));
		PQfreemem(perr);
		return fs_error_set(err, -FS_EUSAGE,
				    "[store] postgresql: not a connection string "
				    "(%s)",
				    why);
	}
	for (PQconninfoOption *o = *opts; o->keyword; o++) {
		if (o->val && !strcmp(o->keyword, "password"))
			return fs_error_set(err, -FS_EUSAGE,
					    "[store] postgresql: the connection "
					    "string holds a password; put it in [store] "
					    "postgresql_password_file or the credential %s",
					    PGDB_CREDENTIAL);
		n++;
	}
	*keys = calloc(n + 4, sizeof(**keys));
	*vals = calloc(n + 4, sizeof(**vals));
	if (!*keys || !*vals)
		return fs_error_set(err, -ENOMEM, "out of memory");
	for (PQconninfoOption *o = *opts; o->keyword; o++)
		if (o->val && strcmp(o->keyword, "application_name")) {
			(*keys)[k] = o->keyword;
			(*vals)[k++] = o->val;
		}
	(*keys)[k] = "application_name";
	(*vals)[k++] = PGDB_APPLICATION;
	if (pass) {
		(*keys)[k] = "password";
		(*vals)[k++] = pass;
	}
	return 0;
}

int pgdb_connect(const struct pgdb_config *cfg, PGconn **ret, struct fs_error *err)
{
	const char **keys = NULL, **vals = NULL;
	PQconninfoOption *opts = NULL;
	char *pass = NULL, conn[512], why[512], sql[96];
	PGconn *db = NULL;
	PGresult *res = NULL;
	int r;

	if (!cfg->conninfo || !*cfg->conninfo)
		return fs_error_set(err, -FS_EUSAGE,
				    "[store] backend = postgresql needs [store] "
				    "postgresql, a connection string");
	if ((r = password(cfg, &pass, err)) < 0 ||
	    (r = parse(cfg->conninfo, pass, &keys, &vals, &opts, err)) < 0)
		goto out;
	db = PQconnectdbParams(keys, vals, 0);
	if (pass)
		secmem_free(pass);
	pass = NULL;
	if (!db) {
		r = fs_error_set(err, -ENOMEM, "connect to PostgreSQL: out of memory");
		goto out;
	}
	pgdb_describe(db, conn, sizeof(conn));
	if (PQstatus(db) != CONNECTION_OK) {
		const char *m = PQerrorMessage(db);

		pgdb_reason(m, why, sizeof(why));
		r = strstr(m, "authentication failed") || strstr(m, "no password supplied") ||
				    strstr(m, "no pg_hba.conf entry")
			    ? -EACCES
		    : strstr(m, "does not exist") && strstr(m, "database") ? -ENOENT
		    : strstr(m, "could not connect") || strstr(m, "Connection refused") ||
				    strstr(m, "could not translate") || strstr(m, "timeout expired")
			    ? -EHOSTUNREACH
			    : -FS_ESTORE;
		r = fs_error_set(err, r, "connect to PostgreSQL %s: %s", conn, why);
		goto out;
	}
	snprintf(sql, sizeof(sql), "SET statement_timeout = %u",
		 cfg->statement_timeout_ms ? cfg->statement_timeout_ms
					   : PGDB_DEFAULT_STATEMENT_TIMEOUT_MS);
	res = PQexec(db, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgdb_reason(PQerrorMessage(db), why, sizeof(why));
		r = fs_error_set(err, -FS_ESTORE, "PostgreSQL %s: set the statement timeout: %s",
				 conn, why);
		goto out;
	}
	*ret = db;
	db = NULL;
out:
	PQclear(res);
	if (pass)
		secmem_free(pass);
	free(keys);
	free(vals);
	PQconninfoFree(opts);
	pgdb_close(db);
	return r;
}

PGconn *pgdb_close(PGconn *db)
{
	if (db)
		PQfinish(db);
	return NULL;
}

/* ---- the schema's version and creation ------------------------------------ */

static int failed(PGconn *db, const char *what, struct fs_error *err)
{
	char conn[512], why[512];

	pgdb_describe(db, conn, sizeof(conn));
	pgdb_reason(PQerrorMessage(db), why, sizeof(why));
	return fs_error_set(err, -FS_ESTORE, "PostgreSQL %s: %s: %s", conn, what, why);
}

int pgdb_schema_version(PGconn *db, int *ret, struct fs_error *err)
{
	PGresult *res = PQexec(db, "SELECT to_regclass('schema_info') IS NOT NULL");
	int r = 0;

	*ret = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		r = failed(db, "read the schema version", err);
	} else if (!strcmp(PQgetvalue(res, 0, 0), "t")) {
		PQclear(res);
		res = PQexec(db, "SELECT version FROM schema_info");
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
			r = failed(db, "read the schema version", err);
		else
			*ret = atoi(PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return r;
}

int pgdb_create_schema_in(PGconn *db, struct fs_error *err)
{
	char conn[512], sql[64];
	PGresult *res;
	int r, v = 0;

	if ((r = pgdb_schema_version(db, &v, err)) < 0)
		return r;
	if (v) {
		pgdb_describe(db, conn, sizeof(conn));
		return fs_error_set(err, -FS_EEXIST,
				    "PostgreSQL %s already holds HQ's schema "
				    "(version %d)",
				    conn, v);
	}
	res = PQexec(db, schema_sql);
	r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : failed(db, "create HQ's schema", err);
	PQclear(res);
	if (r < 0)
		return r;
	snprintf(sql, sizeof(sql), "INSERT INTO schema_info VALUES (%d)", PGDB_SCHEMA_VERSION);
	res = PQexec(db, sql);
	r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : failed(db, "create HQ's schema", err);
	PQclear(res);
	return r;
}

/* Run sql then set the version to to, in one serialisable transaction
 * that first checks the version is still from: of two HQs upgrading at
 * once, one does it and the other finds it done. */
static int upgrade_step(PGconn *db, int from, int to, const char *sql, struct fs_error *err)
{
	char set[96];
	PGresult *res;
	int r, v = 0;

	res = PQexec(db, "BEGIN ISOLATION LEVEL SERIALIZABLE");
	r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : failed(db, "begin an upgrade", err);
	PQclear(res);
	if (r < 0)
		return r;
	if ((r = pgdb_schema_version(db, &v, err)) == 0 && v == from) {
		snprintf(set, sizeof(set), "UPDATE schema_info SET version = %d", to);
		res = PQexec(db, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			r = failed(db, "upgrade HQ's schema", err);
		PQclear(res);
		if (r == 0) {
			res = PQexec(db, set);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				r = failed(db, "upgrade HQ's schema", err);
			PQclear(res);
		}
	}
	res = PQexec(db, r == 0 ? "COMMIT" : "ROLLBACK");
	if (r == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
		r = failed(db, "upgrade HQ's schema", err);
	PQclear(res);
	return r;
}

int pgdb_upgrade(PGconn *db, int *ret_version, struct fs_error *err)
{
	int r, v = 0, stepped = 0;
	static const char *const steps[] = { USERS_PG_SQL, RESOLUTIONS_PG_SQL, FILES_PG_SQL };

	if ((r = pgdb_schema_version(db, &v, err)) < 0)
		return r;
	/* steps[i] takes version 5 + i to the next; another HQ may have
	 * taken a step already, which upgrade_step finds. */
	for (int i = 0; i < (int)(sizeof(steps) / sizeof(steps[0])); i++) {
		if (v != 5 + i)
			continue;
		if ((r = upgrade_step(db, v, v + 1, steps[i], err)) < 0)
			return r;
		v++;
		stepped = 1;
	}
	/* Another HQ may have taken a step meanwhile, or more than this one
	 * knows: after an upgrade, the version is the database's word. */
	if (stepped && (r = pgdb_schema_version(db, &v, err)) < 0)
		return r;
	*ret_version = v;
	return 0;
}

int pgdb_create_schema(PGconn *db, struct fs_error *err)
{
	PGresult *res;
	int r;

	/* Serialisable: two inits at once, one wins, the other sees its
	 * schema or fails; never a half of each. */
	res = PQexec(db, "BEGIN ISOLATION LEVEL SERIALIZABLE");
	r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : failed(db, "begin", err);
	PQclear(res);
	if (r < 0)
		return r;
	if ((r = pgdb_create_schema_in(db, err)) == 0) {
		res = PQexec(db, "COMMIT");
		r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0
							    : failed(db, "create HQ's schema", err);
		PQclear(res);
		if (r == 0)
			return 0;
	}
	PQclear(PQexec(db, "ROLLBACK"));
	return r;
}
