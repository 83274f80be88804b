/* dberr.c - SQLite failures as fieldsync errors (dberr.h). */
#include "sync/dberr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

int dberr_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return -EBUSY;
	case SQLITE_READONLY: return -EROFS;
	case SQLITE_CANTOPEN: return -ENOENT;
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return -FS_ECORRUPT;
	case SQLITE_IOERR: return rc == SQLITE_IOERR_DATA ? -FS_ECORRUPT : -EIO;
	default: return -FS_ESTORE;
	}
}

/* The errno that explains a disk-level failure, or 0. */
static int disk_errno(sqlite3 *db, int rc, const char *file)
{
	int prim = rc & 0xff, sys = sqlite3_system_errno(db);
	struct statvfs fs;

	if (prim != SQLITE_IOERR && prim != SQLITE_CANTOPEN && prim != SQLITE_FULL &&
	    prim != SQLITE_READONLY)
		return 0;
	if (rc == SQLITE_IOERR_DATA)
		return 0; /* the VFS's integrity check: not the disk */
	/* On a read-only mount SQLite falls back to opening the -shm
	 * read-only and reports that it is missing. */
	if (file && statvfs(file, &fs) == 0 && (fs.f_flag & ST_RDONLY))
		return EROFS;
	if (prim == SQLITE_FULL)
		return ENOSPC;
	return sys;
}

int dberr_set(sqlite3 *db, int rc, const char *file, struct fs_error *err, const char *fmt, ...)
{
	char prefix[sizeof(((struct fs_error *)0)->msg)];
	int sys = disk_errno(db, rc, file);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	switch (sys) {
	case ENOSPC:
	case EDQUOT:
		return fs_error_set(err, -ENOSPC,
				    "%s: the disk is full (%s); nothing was changed: free some space "
				    "and try again",
				    prefix, sys == EDQUOT ? "quota exceeded" : "no space left");
	case EROFS:
		return fs_error_set(err, -EROFS, "%s: the file system is read-only; nothing was "
					       "changed", prefix);
	case EACCES:
	case EPERM:
		return fs_error_set(err, -EACCES, "%s: permission denied; nothing was changed",
				    prefix);
	case 0:
		if ((rc & 0xff) == SQLITE_READONLY)
			return fs_error_set(err, -EROFS, "%s: the file system is read-only; nothing "
						       "was changed", prefix);
		return fs_error_set(err, dberr_code(rc), "%s: %s", prefix, sqlite3_errmsg(db));
	default:
		return fs_error_set(err, dberr_code(rc), "%s: %s (%s)", prefix, sqlite3_errmsg(db),
				    strerror(sys));
	}
}
