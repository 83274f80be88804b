/* hqdb.c - HQ's SQLite database: schema, opening, small helpers.
 *
 * Sections: errors; schema; opening; helpers.
 */
#include "hq/hqdb.h"
#include <sqlite3.h>
#include "hq/audit.h"
#include "hq/downsync.h"
#include "hq/formpub.h"
#include "hq/hqconfig.h"
#include "hq/pgdb.h"
#include "hq/scope.h"
#include "hq/users.h"
#include "sync/dberr.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------ */

/* ---- schema ------------------------------------------------------------ */

/* Version 6: the console's accounts (hq/users.h), and each device's
 * latest health report (hq/health.h). */
#define HQDB_V6_SQL                                                                                \
	USERS_TABLES_SQL "ALTER TABLE devices ADD COLUMN health TEXT;"                             \
			 "ALTER TABLE devices ADD COLUMN health_at INTEGER;"

/* Version 7: conflicts resolved by an administrator (ingest_resolve):
 * one row per conflict settled, append-only; settled_by is the conflict
 * the administrator chose on, whose choice ("a", "b" or "new") it is. */
#define HQDB_V7_SQL                                                                                \
	"CREATE TABLE resolutions("                                                                \
	"  conflict_id INTEGER PRIMARY KEY REFERENCES conflicts(id),"                              \
	"  settled_by INTEGER NOT NULL,"                                                           \
	"  choice TEXT NOT NULL CHECK (choice IN ('a', 'b', 'new')),"                              \
	"  hlc INTEGER NOT NULL,"                                                                  \
	"  resolved_by TEXT NOT NULL,"                                                             \
	"  resolved_at INTEGER NOT NULL"                                                           \
	") STRICT;"                                                                                \
	"CREATE TRIGGER resolutions_no_update BEFORE UPDATE ON resolutions"                        \
	"  BEGIN SELECT RAISE(ABORT, 'resolutions are append-only'); END;"                         \
	"CREATE TRIGGER resolutions_no_delete BEFORE DELETE ON resolutions"                        \
	"  BEGIN SELECT RAISE(ABORT, 'resolutions are append-only'); END;"

/* Version 8: attached files (hq/upload.h): the files HQ holds, each
 * noted with the device that sent it first (its quota), and the
 * uploads in progress. */
#define HQDB_V8_SQL                                                                                \
	"CREATE TABLE files("                                                                      \
	"  sha256 TEXT PRIMARY KEY,"                                                               \
	"  size INTEGER NOT NULL,"                                                                 \
	"  device TEXT NOT NULL,"                                                                  \
	"  received_at INTEGER NOT NULL"                                                           \
	") STRICT;"                                                                                \
	"CREATE TABLE uploads("                                                                    \
	"  device TEXT NOT NULL,"                                                                  \
	"  sha256 TEXT NOT NULL,"                                                                  \
	"  size INTEGER NOT NULL,"                                                                 \
	"  chunk_size INTEGER NOT NULL,"                                                           \
	"  started_at INTEGER NOT NULL,"                                                           \
	"  PRIMARY KEY (device, sha256)"                                                           \
	") STRICT;"

/* Version 1.  Ids and hashes are lower-case hex text; times are Unix
 * milliseconds; HLCs are integers (docs/PROTOCOL.md).  fields holds the
 * merged value of each (record, field) with the clock of the write that
 * won; field_writes holds every write of each device to it and the
 * value that device had written before (base_value, NULL for a first
 * write), which is what the conflict rule compares.  records.merged_at
 * is HQ's clock (Unix ms) when a change to the record last won a merge:
 * what `export --since` selects on, since a device may sync days after
 * it recorded.  conflicts stores each pair
 * with the lower (hlc, device) write as "a".  events is append-only:
 * the triggers refuse any UPDATE or DELETE. */
static const char schema_sql[] =
	"CREATE TABLE devices("
	"  id TEXT PRIMARY KEY,"
	"  sign_pk BLOB NOT NULL,"
	"  box_pk BLOB NOT NULL,"
	"  team TEXT NOT NULL,"
	"  municipality TEXT NOT NULL,"
	"  enrolled_at INTEGER NOT NULL,"
	"  last_seen INTEGER,"
	"  last_seq INTEGER NOT NULL DEFAULT 0,"
	"  last_hash TEXT,"
	"  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'revoked')),"
	"  revoked_reason TEXT,"
	/* 1: enrolled before schema version 2 and no version 2 set since,
	 * so its version 1 sets are read (hq/ingest.c). */
	"  unbound_ok INTEGER NOT NULL DEFAULT 0"
	") STRICT;"
	"CREATE TABLE tokens("
	"  secret_hash TEXT PRIMARY KEY,"
	"  team TEXT NOT NULL,"
	"  municipality TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  used_at INTEGER,"
	"  device TEXT,"
	/* The enrolled device's scope, a JSON array of names; NULL: the
	 * municipality (hq/scope.h). */
	"  scope TEXT"
	") STRICT;"
	"CREATE TABLE changesets("
	"  device TEXT NOT NULL REFERENCES devices(id),"
	"  seq INTEGER NOT NULL,"
	"  hash TEXT NOT NULL,"
	"  body BLOB NOT NULL,"
	"  receipt BLOB NOT NULL,"
	"  received_at INTEGER NOT NULL,"
	"  PRIMARY KEY (device, seq)"
	") STRICT;"
	"CREATE TABLE records("
	"  id TEXT PRIMARY KEY,"
	"  collection TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  updated_hlc INTEGER NOT NULL,"
	"  updated_device TEXT NOT NULL,"
	"  deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),"
	"  merged_at INTEGER NOT NULL DEFAULT 0,"
	/* hq/downsync.h: the folded scope value ('' for a collection with
	 * no scope field, NULL while unknown), and the record a ref scope
	 * field names. */
	"  scope_key TEXT,"
	"  scope_parent TEXT"
	") STRICT;"
	"CREATE INDEX records_by_collection ON records(collection, deleted, id);"
	"CREATE TABLE fields("
	"  record_id TEXT NOT NULL REFERENCES records(id),"
	"  field TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  hlc INTEGER NOT NULL,"
	"  device TEXT NOT NULL,"
	/* hq/downsync.h: when it was last merged (unique, increasing), and
	 * its record's scope key then. */
	"  rev INTEGER NOT NULL DEFAULT 0,"
	"  scope_key TEXT,"
	"  PRIMARY KEY (record_id, field)"
	") STRICT, WITHOUT ROWID;"
	"CREATE TABLE field_writes("
	"  record_id TEXT NOT NULL REFERENCES records(id),"
	"  field TEXT NOT NULL,"
	"  device TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  hlc INTEGER NOT NULL,"
	"  base_value TEXT,"
	"  PRIMARY KEY (record_id, field, device, hlc)"
	") STRICT, WITHOUT ROWID;"
	"CREATE TABLE conflicts("
	"  id INTEGER PRIMARY KEY,"
	"  record_id TEXT NOT NULL REFERENCES records(id),"
	"  field TEXT NOT NULL,"
	"  value_a TEXT NOT NULL, device_a TEXT NOT NULL, hlc_a INTEGER NOT NULL,"
	"  value_b TEXT NOT NULL, device_b TEXT NOT NULL, hlc_b INTEGER NOT NULL,"
	"  winner TEXT NOT NULL,"
	"  detected_at INTEGER NOT NULL,"
	"  rev INTEGER NOT NULL DEFAULT 0," /* hq/downsync.h */
	"  UNIQUE (record_id, field, device_a, hlc_a, device_b, hlc_b)"
	") STRICT;"
	"CREATE TABLE quarantine("
	"  device TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  record_id TEXT NOT NULL,"
	"  field TEXT NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  PRIMARY KEY (device, seq, idx),"
	"  FOREIGN KEY (device, seq) REFERENCES changesets(device, seq) DEFERRABLE INITIALLY "
	"DEFERRED"
	") STRICT;"
	"CREATE TABLE events("
	"  id INTEGER PRIMARY KEY,"
	"  at INTEGER NOT NULL,"
	"  type TEXT NOT NULL,"
	"  device TEXT,"
	"  detail TEXT,"
	"  leaf BLOB"
	") STRICT;"
	/* Entries are numbered 1, 2, 3 ... with no gap (hq/audit.h). */
	"CREATE TRIGGER events_in_order BEFORE INSERT ON events"
	"  WHEN NEW.id IS NOT (SELECT coalesce(max(id), 0) + 1 FROM events)"
	"  BEGIN SELECT RAISE(ABORT, 'events are numbered in order'); END;"
	"CREATE TABLE checkpoints("
	"  size INTEGER PRIMARY KEY,"
	"  at INTEGER NOT NULL,"
	"  note TEXT NOT NULL"
	") STRICT;"
	"CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints"
	"  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
	"CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints"
	"  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
	"CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
	"  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
	"CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
	"  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;" AUDIT_NODES_SQL
		SCOPE_TABLE_SQL DOWNSYNC_TABLES_SQL FORMPUB_TABLES_SQL HQDB_V6_SQL HQDB_V7_SQL
			HQDB_V8_SQL;

/* ---- opening ----------------------------------------------------------- */

static int configure(struct hqsql *db, const char *path, struct fs_error *err)
{
	char what[PATH_MAX + 32];

	snprintf(what, sizeof(what), "configure %s", path);
	if (sqlite3_busy_timeout(hqsql_sqlite(db), HQDB_BUSY_MS) != SQLITE_OK ||
	    scope_register_fold(hqsql_sqlite(db)) < 0)
		return fs_error_set(err, -FS_ESTORE, "%s: %s", what,
				    sqlite3_errmsg(hqsql_sqlite(db)));
	return hqsql_exec(db,
			  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			  "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
			  what, err);
}

static int user_version(struct hqsql *db, int *ret, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(db, "PRAGMA user_version", &st, err)) < 0)
		return r;
	*ret = hqsql_step(st) == HQSQL_ROW ? (int)hqsql_column_int64(st, 0) : -1;
	hqsql_finalize(st);
	return 0;
}

/* Version 1 to 2: the audit tree's interior nodes, built once from the
 * stored leaves, so that proofs and checkpoints stop costing O(n); and
 * which devices may still send version 1 change sets.  One transaction;
 * a second process waits for it and finds version 2. */
static int migrate_v2(struct hqsql *db, const char *path, struct fs_error *err)
{
	char what[PATH_MAX + 32];
	int r, v = -1;

	snprintf(what, sizeof(what), "upgrade %s to schema version 2", path);
	if ((r = hqsql_exec(db, "BEGIN IMMEDIATE", what, err)) < 0)
		return r;
	/* The devices enrolled until now may still hold version 1 change
	 * sets packed before their upgrade. */
	if ((r = user_version(db, &v, err)) == 0 && v == 1 &&
	    (r = hqsql_exec(db, AUDIT_NODES_SQL, what, err)) == 0 &&
	    (r = hqsql_exec(db,
			    "ALTER TABLE devices ADD COLUMN unbound_ok INTEGER NOT NULL "
			    "DEFAULT 0; UPDATE devices SET unbound_ok = 1;",
			    what, err)) == 0 &&
	    (r = audit_tree_build(db, err)) == 0)
		r = hqsql_exec(db, "PRAGMA user_version=2", what, err);
	if (r == 0)
		r = hqsql_commit(db, err);
	if (r < 0)
		hqsql_rollback(db);
	return r;
}

/* The upgrades that are SQL only: step i takes version 2 + i to the
 * next.  Version 2 to 3: device scopes (hq/scope.h); every device
 * enrolled until then may write its enrolment municipality, as it was
 * expected to, and an administrator widens that with `scope`.  3 to 4:
 * two-way sync (hq/downsync.h); fields merged before keep revision 0 and
 * get their scope keys from downsync_reindex(), which serve runs before
 * it listens.  4 to 5: published forms (hq/formpub.h); every device gets
 * HQ's forms in its next down-set.  5 to 6, 6 to 7 and 7 to 8: above. */
static const char *const upgrade_sql[] = {
	SCOPE_TABLE_SQL "ALTER TABLE tokens ADD COLUMN scope TEXT;"
			"INSERT INTO device_scopes(device, key, name) "
			"SELECT id, fold(municipality), municipality FROM devices;",
	"ALTER TABLE records ADD COLUMN scope_key TEXT;"
	"ALTER TABLE records ADD COLUMN scope_parent TEXT;"
	"ALTER TABLE fields ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE fields ADD COLUMN scope_key TEXT;"
	"ALTER TABLE conflicts ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;" DOWNSYNC_TABLES_SQL,
	FORMPUB_TABLES_SQL,
	HQDB_V6_SQL,
	HQDB_V7_SQL,
	HQDB_V8_SQL,
};
_Static_assert(sizeof(upgrade_sql) / sizeof(upgrade_sql[0]) == HQDB_VERSION - 2,
	       "one upgrade for each version after 2");

/* Version from to from + 1 by upgrade_sql, in one transaction that
 * first checks the version is still from: a second process waits for it
 * and finds the step done. */
static int upgrade_step(struct hqsql *db, const char *path, int from, struct fs_error *err)
{
	char what[PATH_MAX + 32], set[40];
	int r, v = -1;

	snprintf(what, sizeof(what), "upgrade %s to schema version %d", path, from + 1);
	snprintf(set, sizeof(set), "PRAGMA user_version=%d", from + 1);
	if ((r = hqsql_exec(db, "BEGIN IMMEDIATE", what, err)) < 0)
		return r;
	if ((r = user_version(db, &v, err)) == 0 && v == from &&
	    (r = hqsql_exec(db, upgrade_sql[from - 2], what, err)) == 0)
		r = hqsql_exec(db, set, what, err);
	if (r == 0)
		r = hqsql_commit(db, err);
	if (r < 0)
		hqsql_rollback(db);
	return r;
}

static int check_version(struct hqsql *db, const char *path, struct fs_error *err)
{
	int r, v = -1;

	if ((r = user_version(db, &v, err)) < 0)
		return r;
	if (v == 1 && ((r = migrate_v2(db, path, err)) < 0 || (r = user_version(db, &v, err)) < 0))
		return r;
	while (v >= 2 && v < HQDB_VERSION)
		if ((r = upgrade_step(db, path, v, err)) < 0 || (r = user_version(db, &v, err)) < 0)
			return r;
	if (v == 0)
		return fs_error_set(err, -ENOENT, "database %s: not initialised (run init)", path);
	if (v != HQDB_VERSION)
		return fs_error_set(err, -FS_EFORMAT, "database %s: schema version %d, expected %d",
				    path, v, HQDB_VERSION);
	return 0;
}

static int create_schema(struct hqsql *db, const char *path, struct fs_error *err)
{
	char what[PATH_MAX + 32];
	int r;

	snprintf(what, sizeof(what), "create schema in %s", path);
	if ((r = hqsql_exec(db, "BEGIN IMMEDIATE", what, err)) < 0)
		return r;
	if ((r = hqsql_exec(db, schema_sql, what, err)) < 0 ||
	    (r = hqsql_exec(db, "PRAGMA user_version=" FS_STR(HQDB_VERSION), what, err)) < 0 ||
	    (r = hqsql_commit(db, err)) < 0) {
		hqsql_rollback(db);
		return r;
	}
	return 0;
}

/* HQ's data is personal data: its directory and database are for HQ's
 * user alone.  A directory or file others can read (an existing 0755
 * directory, a database made under umask 022) is refused, not used. */
static int check_private(const char *path, const struct stat *st, struct fs_error *err)
{
	if (!(st->st_mode & 077))
		return 0;
	return fs_error_set(err, -EACCES, "%s %s: others can %s it (mode %04o); run chmod %s %s",
			    S_ISDIR(st->st_mode) ? "data directory" : "database", path,
			    st->st_mode & 044 ? "read" : "reach", (unsigned)(st->st_mode & 07777),
			    S_ISDIR(st->st_mode) ? "700" : "600", path);
}

int hqdb_check_dir(const char *data_dir, struct fs_error *err)
{
	struct stat st;

	if (stat(data_dir, &st) < 0)
		return fs_error_set(err, -errno, "data directory %s: %s%s", data_dir,
				    strerror(errno), errno == ENOENT ? " (run init)" : "");
	return check_private(data_dir, &st, err);
}

int hqdb_open(const char *data_dir, enum hqdb_mode mode, struct hqsql **ret_db,
	      struct fs_error *err)
{
	char path[PATH_MAX];
	struct hqsql *db = NULL;
	sqlite3 *lite = NULL;
	struct stat st;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, r;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir, HQDB_FILE) >= sizeof(path))
		return fs_error_set(err, -ENAMETOOLONG, "data directory %s: path too long",
				    data_dir);
	if ((r = hqdb_check_dir(data_dir, err)) < 0)
		return r;
	if (stat(path, &st) == 0) {
		if (mode == HQDB_CREATE)
			return fs_error_set(err, -FS_EEXIST, "database %s: already exists", path);
		if ((r = check_private(path, &st, err)) < 0)
			return r;
	} else if (errno != ENOENT || mode != HQDB_CREATE) {
		return fs_error_set(err, -errno, "database %s: %s%s", path, strerror(errno),
				    errno == ENOENT ? " (run init)" : "");
	}
	if (mode == HQDB_CREATE)
		flags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &lite, flags, NULL) != SQLITE_OK) {
		r = lite ? dberr_set(lite, sqlite3_extended_errcode(lite), path, err, "%s", path)
			 : fs_error_set(err, -ENOMEM, "database %s: out of memory", path);
		sqlite3_close(lite);
		return r;
	}
	/* From here db owns lite. */
	if ((r = hqsql_wrap_sqlite(lite, &db, err)) < 0) {
		sqlite3_close(lite);
		return r;
	}
	if ((r = configure(db, path, err)) < 0)
		goto out;
	r = mode == HQDB_CREATE ? create_schema(db, path, err) : check_version(db, path, err);
	if (r < 0)
		goto out;
	*ret_db = db;
	db = NULL;
out:
	hqdb_close(db);
	return r;
}

void hqdb_pg_config(const struct hq_config *cfg, const char *conninfo, struct pgdb_config *ret)
{
	*ret = (struct pgdb_config){ conninfo, cfg->pg_password_file,
				     cfg->pg_statement_timeout_ms };
}

int hqdb_connect(const struct hq_config *cfg, struct hqsql **ret, struct fs_error *err)
{
	struct pgdb_config pc;
	char where[512];
	PGconn *pg = NULL;
	int r, v = 0;

	if (!hqconfig_postgresql(cfg))
		return hqdb_open(cfg->data_dir, HQDB_OPEN, ret, err);
	hqdb_pg_config(cfg, cfg->postgresql, &pc);
	if ((r = pgdb_connect(&pc, &pg, err)) < 0)
		return r;
	if ((r = pgdb_upgrade(pg, &v, err)) == 0 && v != PGDB_SCHEMA_VERSION) {
		pgdb_describe(pg, where, sizeof(where));
		r = v ? fs_error_set(err, -FS_EFORMAT,
				     "PostgreSQL %s: schema version %d, expected "
				     "%d",
				     where, v, PGDB_SCHEMA_VERSION)
		      : fs_error_set(err, -ENOENT, "PostgreSQL %s: no HQ schema (run init)", where);
	}
	if (r == 0 && (r = hqsql_wrap_pg(pg, ret, err)) == 0)
		return 0;
	pgdb_close(pg);
	return r;
}

struct hqsql *hqdb_close(struct hqsql *db)
{
	return hqsql_close(db);
}
