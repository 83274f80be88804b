/* hqpool.h - a serve process's idle database connections.
 *
 * Every request needs a connection, and opening one costs a TCP
 * connection, a login and a setting on PostgreSQL, and a schema check on
 * SQLite.  The pool keeps up to max_idle connections a request has
 * finished with, cleanly (no transaction open, the connection healthy),
 * and hands them to the next request; anything else is closed.  A
 * connection is used by one thread at a time, between hqpool_get and
 * hqpool_put.  Thread-safe.
 */
#ifndef FS_HQPOOL_H
#define FS_HQPOOL_H

#include "crypto/fserr.h"
#include "hq/hqconfig.h"
#include "hq/hqsql.h"

struct hqpool;

/* cfg must outlive the pool. */
int hqpool_new(const struct hq_config *cfg, unsigned max_idle, struct hqpool **ret,
	       struct fs_error *err) FS_WUR;
/* An idle connection, or a new one (hqdb_connect's errors). */
int hqpool_get(struct hqpool *p, struct hqsql **ret, struct fs_error *err) FS_WUR;
/* NULL-safe: db back to the pool, or closed. */
void hqpool_put(struct hqpool *p, struct hqsql *db);
/* Closes every idle connection; NULL-safe. */
void hqpool_free(struct hqpool *p);

#endif
