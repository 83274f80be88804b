/* hqdb.h - HQ's SQLite database: devices, tokens, raw change sets,
 * merged records with per-field clocks, conflicts, quarantine and the
 * append-only event log.
 *
 * Plain SQLite (HQ's disk is protected by the host) in WAL mode with
 * synchronous=FULL and foreign keys on.  A connection belongs to one
 * thread: every request opens its own (hqdb_open), which is cheap, and
 * waits up to HQDB_BUSY_MS for the write lock.  The schema version is
 * HQDB_VERSION (PRAGMA user_version).  Errors: -FS_ESTORE and friends mapped from
 * SQLite, -ENOENT when the database does not exist (run init), -ENOSPC
 * on a full disk; err names the file and SQLite's reason.
 */
#ifndef FS_HQDB_H
#define FS_HQDB_H

#include <stdint.h>
#include <sqlite3.h>

#include "crypto/fserr.h"

#define HQDB_FILE "hq.db"
#define HQDB_BUSY_MS 10000
/* 2: audit_nodes; 3: device scopes; 4: two-way sync; 5: published
 * forms.  Older versions are upgraded when opened. */
#define HQDB_VERSION 5
#define FS_STR_(x) #x
#define FS_STR(x) FS_STR_(x)

enum hqdb_mode {
	HQDB_OPEN = 0,   /* the database must exist with the current schema */
	HQDB_CREATE = 1, /* create the file and schema; -FS_EEXIST if it exists */
};

/* The data directory exists and only its owner can reach it (mode 0700
 * or stricter); -EACCES naming the chmod that fixes it otherwise.
 * hqdb_open() checks this, and the database file (0600), every time. */
int hqdb_check_dir(const char *data_dir, struct fs_error *err) FS_WUR;

int hqdb_open(const char *data_dir, enum hqdb_mode mode, sqlite3 **ret_db,
	      struct fs_error *err) FS_WUR;

/* NULL-safe; returns NULL. */
sqlite3 *hqdb_close(sqlite3 *db);

/* Map the connection's last error into err as "what: SQLite's reason". */
int hqdb_fail(sqlite3 *db, const char *what, struct fs_error *err);

/* Run SQL without results. */
int hqdb_exec(sqlite3 *db, const char *sql, const char *what, struct fs_error *err) FS_WUR;

/* Prepare sql; on failure err says what. */
int hqdb_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, struct fs_error *err) FS_WUR;

/* Append an event (type, device may be NULL, detail a JSON text or
 * NULL) at time at_ms; the caller owns the transaction.  Details never
 * carry field values. */
int hqdb_event(sqlite3 *db, uint64_t at_ms, const char *type, const char *device,
	       const char *detail, struct fs_error *err) FS_WUR;

/* The same, with the detail a JSON object of string members given as
 * name, value pairs and a NULL name at the end; a NULL value is left
 * out.  The strings are JSON-escaped, so admin text cannot break out. */
int hqdb_event_strings(sqlite3 *db, uint64_t at_ms, const char *type, const char *device,
		       struct fs_error *err, ...) FS_WUR;

#endif
