/* hqsql.h - one way to run HQ's SQL on SQLite or PostgreSQL.
 *
 * The executor under HQ's storage (issue 13).  HQ's modules keep their
 * SQL, in the subset both engines read the same way, and run it through
 * these calls; what differs between the engines lives here:
 * placeholders, transactions and locks, types, and errors.  The few
 * statements that need an engine's own functions ask hqsql_backend().
 * hqdb_connect() (hq/hqdb.h) opens the right one from the config.
 *
 *   - Placeholders are ?1, ?2, ... (SQLite's form); the PostgreSQL
 *     backend rewrites them to $1, $2 outside string literals.
 *   - Values: text, 64-bit integers, blobs and NULL.  A column reads back
 *     as what was stored: PostgreSQL's BIGINT/INTEGER/BOOLEAN as
 *     integers, BYTEA as bytes (hqsql_column_blob), TEXT as text.
 *   - Transactions: hqsql_begin(HQSQL_WRITE) is SQLite's BEGIN
 *     IMMEDIATE: one writer at a time for the whole database.  On
 *     PostgreSQL it is READ COMMITTED plus a transaction-scoped advisory
 *     lock that every writer takes, so N processes on one database keep
 *     SQLite's one-writer semantics; finer locks (hqsql_lock) come as
 *     the modules move onto this seam.  hqsql_lock(key) takes a named
 *     transaction-scoped lock on PostgreSQL, and is a no-op on SQLite,
 *     whose write transaction already excludes every other writer.
 *   - Rows: hqsql_step() returns HQSQL_ROW, HQSQL_DONE or a negative
 *     error.  On PostgreSQL the first step runs the statement and holds
 *     its result; statements are prepared once per connection.
 *   - Round trips: on PostgreSQL every statement is one, and they, not
 *     the server's work, bound a change set's time.  A write whose
 *     result the caller does not need goes with hqsql_step_later(),
 *     which sends it ahead in libpq's pipeline mode; its result comes
 *     back with the next read's.
 *   - Errors: a failed call returns a negative code and keeps the
 *     engine's reason in the connection; hqsql_fail() turns it into err
 *     as "DATABASE: what: reason", naming the database (a file, or host,
 *     port, database and user; never a password).  Codes: -EEXIST for a
 *     unique or primary key violation, -EBUSY for a lock or
 *     serialisation failure, -ENOSPC for a full disk, -EHOSTUNREACH when
 *     the server went away, -ETIMEDOUT for the statement timeout, and
 *     SQLite's mapping (sync/dberr.h) or -FS_ESTORE otherwise.
 *
 * A connection and its statements belong to one thread.  Strings and
 * blobs returned by column calls are valid until the next step, reset
 * or finalize of that statement.
 */
#ifndef FS_HQSQL_H
#define FS_HQSQL_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include <libpq-fe.h>

#include "crypto/fserr.h"

#define HQSQL_ROW 100
#define HQSQL_DONE 101
#define HQSQL_MAX_PARAMS 32
#define HQSQL_MAX_COLUMNS 32

enum hqsql_backend { HQSQL_SQLITE, HQSQL_POSTGRESQL };
enum hqsql_tx { HQSQL_READ, HQSQL_WRITE };

struct hqsql;
struct hqsql_stmt;

/* Take over an open connection (closed by hqsql_close). */
int hqsql_wrap_sqlite(sqlite3 *db, struct hqsql **ret, struct fs_error *err) FS_WUR;
int hqsql_wrap_pg(PGconn *db, struct hqsql **ret, struct fs_error *err) FS_WUR;
/* NULL-safe; finalizes nothing: statements go first.  Returns NULL. */
struct hqsql *hqsql_close(struct hqsql *db);

enum hqsql_backend hqsql_backend(const struct hqsql *db);

/* The last failure on db as err ("DATABASE: what: reason"); returns its
 * code (-FS_ESTORE when nothing failed). */
int hqsql_fail(struct hqsql *db, const char *what, struct fs_error *err);

int hqsql_exec(struct hqsql *db, const char *sql, const char *what, struct fs_error *err) FS_WUR;
int hqsql_begin(struct hqsql *db, enum hqsql_tx tx, struct fs_error *err) FS_WUR;
int hqsql_commit(struct hqsql *db, struct fs_error *err) FS_WUR;
/* Never fails visibly: a transaction that cannot roll back is gone. */
void hqsql_rollback(struct hqsql *db);
int hqsql_in_transaction(const struct hqsql *db);
/* Fit for another request: no transaction open, the server reachable
 * (as far as the last call knows). */
int hqsql_usable(const struct hqsql *db);
/* A lock on key until the transaction ends (see above). */
int hqsql_lock(struct hqsql *db, const char *key, struct fs_error *err) FS_WUR;
/* The SQLite connection under db, for what only SQLite has (its
 * functions, its pragmas); NULL on PostgreSQL. */
sqlite3 *hqsql_sqlite(struct hqsql *db);
/* The PostgreSQL connection under db; NULL on SQLite. */
PGconn *hqsql_pg(struct hqsql *db);

int hqsql_prepare(struct hqsql *db, const char *sql, struct hqsql_stmt **ret,
		  struct fs_error *err) FS_WUR;
void hqsql_bind_text(struct hqsql_stmt *st, int i, const char *text);
void hqsql_bind_int64(struct hqsql_stmt *st, int i, int64_t v);
void hqsql_bind_blob(struct hqsql_stmt *st, int i, const void *p, size_t n);
void hqsql_bind_null(struct hqsql_stmt *st, int i);
void hqsql_clear_bindings(struct hqsql_stmt *st);
/* HQSQL_ROW, HQSQL_DONE, or a negative error (hqsql_fail says why). */
int hqsql_step(struct hqsql_stmt *st);
/* Run st, a statement whose rows and count the caller does not need,
 * inside a transaction; what (a static string) names it if it fails.
 * SQLite runs it now.  PostgreSQL sends it ahead in pipeline mode and
 * reads its result with the next statement that needs one, so a run of
 * writes costs no round trip each.  A failure is then reported by a
 * later call on the connection (a step, hqsql_exec or hqsql_commit,
 * which fails and never commits), as "what: reason"; the transaction
 * is over.  So a caller that must react to one statement's failure
 * (-EEXIST) steps it with hqsql_step.  Outside a transaction it is
 * hqsql_step.  0, or a negative error with err as hqsql_fail() sets it
 * for what. */
int hqsql_step_later(struct hqsql_stmt *st, const char *what, struct fs_error *err) FS_WUR;
int hqsql_column_is_null(struct hqsql_stmt *st, int i);
const char *hqsql_column_text(struct hqsql_stmt *st, int i);
int64_t hqsql_column_int64(struct hqsql_stmt *st, int i);
/* A blob's bytes (NULL for NULL) and its length; text columns give
 * their text's bytes. */
const void *hqsql_column_blob(struct hqsql_stmt *st, int i);
size_t hqsql_column_bytes(struct hqsql_stmt *st, int i);
/* Rows the last INSERT, UPDATE or DELETE of st changed. */
int64_t hqsql_changes(struct hqsql_stmt *st);
/* Ready to run again, bindings kept. */
void hqsql_reset(struct hqsql_stmt *st);
/* NULL-safe. */
void hqsql_finalize(struct hqsql_stmt *st);

#endif
