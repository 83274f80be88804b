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
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -FS_ECORRUPT;
	case SQLITE_IOERR:
		return rc == SQLITE_IOERR_DATA ? -FS_ECORRUPT : -EIO;
	default:
		return -FS_ESTORE;
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
	if (prim == SQLITE_FULL)
		return ENOSPC;
	/* On a read-only mount SQLite falls back to opening the -shm
	 * read-only and reports that it is missing; a real errno (EIO from a
	 * failing disk that was remounted read-only) says more. */
	if ((sys == 0 || sys == ENOENT || sys == EROFS) && file && statvfs(file, &fs) == 0 &&
	    (fs.f_flag & ST_RDONLY))
		return EROFS;
	return sys;
}

int dberr_set(sqlite3 *db, int rc, const char *file, struct fs_error *err, const char *fmt, ...)
{
	char prefix[sizeof(((struct fs_error *)0)->msg)];
	int sys = disk_errno(db, rc, file);
	/* A failed sync may leave a commit that survives a crash; every
	 * other failure rolled back. */
	const char *nothing = rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_DIR_FSYNC
				      ? ""
				      : "; nothing was changed";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	switch (sys) {
	case ENOSPC:
	case EDQUOT:
		return fs_error_set(
			err, -ENOSPC, "%s: the disk is full (%s)%s: free some space and try again",
			prefix, sys == EDQUOT ? "quota exceeded" : "no space left", nothing);
	case EROFS:
		return fs_error_set(err, -EROFS, "%s: the file system is read-only%s", prefix,
				    nothing);
	case EACCES:
	case EPERM:
		/* -EIO, not -EACCES: to the agent -EACCES means HQ revoked
		 * this device, which may destroy the store key. */
		return fs_error_set(err, -EIO, "%s: permission denied (file or directory)%s",
				    prefix, nothing);
	case 0:
		if ((rc & 0xff) == SQLITE_READONLY)
			return fs_error_set(err, -EROFS,
					    "%s: the database or its directory is read-only "
					    "(permissions)%s",
					    prefix, nothing);
		return fs_error_set(err, dberr_code(rc), "%s: %s", prefix, sqlite3_errmsg(db));
	default:
		return fs_error_set(err, dberr_code(rc), "%s: %s (%s)", prefix, sqlite3_errmsg(db),
				    strerror(sys));
	}
}
