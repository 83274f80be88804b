/* dberr.h - a failed SQLite call as a fieldsync error, the same on both
 * sides.
 *
 * dberr_code() maps an SQLite result code to our negative codes
 * (crypto/fserr.h): FULL -ENOSPC, BUSY and LOCKED -EBUSY, READONLY -EROFS,
 * CANTOPEN -ENOENT, NOMEM -ENOMEM, CORRUPT and NOTADB -FS_ECORRUPT,
 * IOERR_DATA -FS_ECORRUPT, other IOERR -EIO, the rest -FS_ESTORE.
 *
 * dberr_set() fills err with "PREFIX: reason".  When the disk is the
 * reason it says so in words a field worker can act on: SQLite reports a
 * full disk while opening as "disk I/O error" and a read-only mount as
 * "unable to open database file", so the errno under the failure and,
 * given file, the mount flags of file decide: "the disk is full ...;
 * nothing was changed: free some space and try again" (-ENOSPC), "the
 * file system is read-only; nothing was changed" (-EROFS), "permission
 * denied ...; nothing was changed" (-EIO, never -EACCES, which the agent
 * reads as a revocation).  Every failed call rolls its statement or
 * transaction back, which is why "nothing was changed" holds; it is left
 * out after a failed sync, whose commit may survive a crash.  Never
 * prints; thread-safe for distinct connections.
 */
#ifndef FS_DBERR_H
#define FS_DBERR_H

#include <sqlite3.h>

#include "crypto/fserr.h"

int dberr_code(int rc);

/* rc: the failed call's extended result code; file: the database file
 * (for the mount flags), or NULL. */
int dberr_set(sqlite3 *db, int rc, const char *file, struct fs_error *err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
