/* hqdb.h - HQ's database: devices, tokens, raw change sets, merged
 * records with per-field clocks, conflicts, quarantine and the
 * append-only event log.
 *
 * SQLite by default: plain SQLite (HQ's disk is protected by the host) in
 * WAL mode with synchronous=FULL and foreign keys on, its schema version
 * HQDB_VERSION (PRAGMA user_version), older ones upgraded when opened.
 * Or PostgreSQL (hq/pgdb.h) with the same tables.  Either is reached
 * through hq/hqsql.h; hqdb_connect() opens the one the config names.  A
 * connection belongs to one thread: every request opens its own, and a
 * writer waits its turn (HQDB_BUSY_MS on SQLite).  Errors: -FS_ESTORE and
 * friends mapped from the engine, -ENOENT when the database does not
 * exist (run init), -ENOSPC on a full disk; err names the database and
 * the engine's reason.
 */
#ifndef FS_HQDB_H
#define FS_HQDB_H

#include <stdint.h>
#include "hq/hqsql.h"

#include "crypto/fserr.h"

#define HQDB_FILE "hq.db"
#define HQDB_BUSY_MS 10000
/* 2: audit_nodes; 3: device scopes; 4: two-way sync; 5: published
 * forms; 6: console accounts and device health; 7: resolutions.  Older
 * versions are upgraded when opened. */
#define HQDB_VERSION 8
#define FS_STR_(x) #x
#define FS_STR(x) FS_STR_(x)

enum hqdb_mode {
	HQDB_OPEN = 0,	 /* the database must exist with the current schema */
	HQDB_CREATE = 1, /* create the file and schema; -FS_EEXIST if it exists */
};

/* The data directory exists and only its owner can reach it (mode 0700
 * or stricter); -EACCES naming the chmod that fixes it otherwise.
 * hqdb_open() checks this, and the database file (0600), every time. */
int hqdb_check_dir(const char *data_dir, struct fs_error *err) FS_WUR;

int hqdb_open(const char *data_dir, enum hqdb_mode mode, struct hqsql **ret_db,
	      struct fs_error *err) FS_WUR;

/* HQ's database as cfg says: SQLite in cfg->data_dir (HQDB_OPEN), or
 * PostgreSQL at [store] postgresql, whose schema must be the current
 * one (hq/pgdb.h). */
struct hq_config;
struct pgdb_config;
/* [store]'s PostgreSQL settings as pgdb_connect takes them, for the
 * database conninfo ([store] postgresql, or migrate's target). */
void hqdb_pg_config(const struct hq_config *cfg, const char *conninfo, struct pgdb_config *ret);
int hqdb_connect(const struct hq_config *cfg, struct hqsql **ret, struct fs_error *err) FS_WUR;

/* NULL-safe; returns NULL. */
struct hqsql *hqdb_close(struct hqsql *db);

#endif
