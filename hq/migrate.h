/* migrate.h - copy a SQLite HQ into PostgreSQL (issue 13).
 *
 * `fieldsync-hq migrate --to postgresql CONNINFO` moves an HQ that
 * outgrew one machine: every table of DATA_DIR/hq.db, row for row, into
 * a new HQ schema in the PostgreSQL database CONNINFO names (it must not
 * hold one yet), in one transaction, so a failure leaves nothing behind.
 * The audit log is copied whole, its leaves, stored tree and signed
 * checkpoints with it, so `audit verify` passes there and the
 * checkpoints devices hold stay consistent; the exports come out the
 * same byte for byte.  One entry is then appended, "admin: migrate", a
 * consistent extension of the log.  The SQLite database is not changed:
 * stop HQ first, and switch [store] backend afterwards.
 *
 * The password follows pgdb.h: never in CONNINFO.  Errors name the
 * table and the database, never a value.
 */
#ifndef FS_MIGRATE_H
#define FS_MIGRATE_H

#include <stdio.h>

#include "crypto/fserr.h"
#include "hq/hqsql.h"
#include "hq/pgdb.h"

/* Copy from (a SQLite HQ) into a new schema on the connection to.  Prints
 * one line per table (name and rows) to out. */
int migrate_to_postgresql(struct hqsql *from, struct hqsql *to, FILE *out,
			  struct fs_error *err) FS_WUR;

#endif
