/* pgdb.h - HQ on PostgreSQL (libpq): the connection and the schema.
 *
 * The second backend of HQ's storage (issue 13; SQLite, hq/hqdb.h, stays
 * the embedded default).  HQ's modules run their SQL through hq/hqsql.h
 * on a connection made here:
 *
 *   - pgdb_connect() opens a connection from [store] postgresql (a libpq
 *     connection string).  The password comes from [store]
 *     postgresql_password_file, or the systemd credential
 *     PGDB_CREDENTIAL in $CREDENTIALS_DIRECTORY, or libpq's own
 *     PGPASSFILE/~/.pgpass; a connection string that holds a password is
 *     refused, so it never sits in a config line or a command line.  The
 *     password is held in secure memory and wiped.  Each connection gets
 *     a statement timeout and HQ's application name.
 *   - pgdb_create_schema() creates HQ's schema (the same tables and rules
 *     as SQLite's version HQDB_VERSION, in PostgreSQL's types) in one
 *     transaction; -FS_EEXIST when a schema is there.
 *
 * Errors name the connection as host, port, database and user, and
 * PostgreSQL's reason, never the password: -EHOSTUNREACH when the
 * server cannot be reached, -EACCES when it refuses the login, -ENOENT
 * when the database does not exist, -FS_ESTORE for other failures,
 * -FS_EUSAGE for a connection string that is malformed or holds a
 * password.  A connection belongs to one thread.
 */
#ifndef FS_PGDB_H
#define FS_PGDB_H

#include <libpq-fe.h>

#include "crypto/fserr.h"

#define PGDB_CREDENTIAL "fieldsync-hq-postgresql"
#define PGDB_APPLICATION "fieldsync-hq"
#define PGDB_DEFAULT_STATEMENT_TIMEOUT_MS 30000
/* Bring an older schema (from version 5) up to PGDB_SCHEMA_VERSION; a
 * newer or missing one (0) is left for the caller to refuse.  The
 * version it leaves in *ret_version. */
int pgdb_upgrade(PGconn *db, int *ret_version, struct fs_error *err) FS_WUR;

/* The schema version a PostgreSQL HQ holds (hqdb.h's HQDB_VERSION). */
#define PGDB_SCHEMA_VERSION 8

struct pgdb_config {
	const char *conninfo;	       /* [store] postgresql */
	const char *password_file;     /* [store] postgresql_password_file, or NULL */
	unsigned statement_timeout_ms; /* 0: PGDB_DEFAULT_STATEMENT_TIMEOUT_MS */
};

int pgdb_connect(const struct pgdb_config *cfg, PGconn **ret, struct fs_error *err) FS_WUR;

/* PostgreSQL's message msg (may be NULL) on one line into out, without
 * a "FATAL:" prefix or trailing space. */
void pgdb_reason(const char *msg, char *out, size_t cap);

/* "host=H port=P dbname=D user=U" of a connection, for messages. */
void pgdb_describe(const PGconn *db, char *out, size_t cap);

/* The schema version held: 0 when there is no HQ schema. */
int pgdb_schema_version(PGconn *db, int *ret, struct fs_error *err) FS_WUR;

int pgdb_create_schema(PGconn *db, struct fs_error *err) FS_WUR;
/* The same inside the caller's transaction. */
int pgdb_create_schema_in(PGconn *db, struct fs_error *err) FS_WUR;

/* NULL-safe; returns NULL. */
PGconn *pgdb_close(PGconn *db);

#endif
