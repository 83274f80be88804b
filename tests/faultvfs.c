/* faultvfs.c - see faultvfs.h.  Moved from tests/tools/crashloop.c so
 * that unit tests can inject one fault too. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/fserr.h"
#include "tests/faultvfs.h"

/* A write made since its file's last sync, and what it replaced: enough
 * for a power cut to put the old bytes back. */
struct undo {
	struct ffile *file;
	sqlite3_int64 off;
	size_t len;
	sqlite3_int64 old_size; /* file size before the write */
	uint8_t *old;		/* len bytes; zeros past old_size */
};

/* The fault VFS's file: ours first, the real one right after it. */
struct ffile {
	sqlite3_file base;  /* our methods; must be first */
	sqlite3_file *real; /* the unix VFS's file */
};

/* Per process. */
static struct {
	sqlite3_vfs vfs;   /* registered as FAULTVFS_NAME */
	sqlite3_vfs *real; /* the default VFS */
	struct faultvfs_plan plan;
	uint64_t rng; /* torn lengths, lost writes */
	struct faultvfs_state st;
	void (*report)(const char *fmt, ...);
	struct undo *undo; /* only for FAULTVFS_POWERCUT */
	size_t nundo, capundo;
} fault;

/* A line for whoever watches (faultvfs_watch), if anyone does. */
#define report(...)                                                                                \
	do {                                                                                       \
		if (fault.report)                                                                  \
			fault.report(__VA_ARGS__);                                                 \
	} while (0)

#define REAL(file) (((struct ffile *)(file))->real)

/* Should this call fail?  at is the plan's index for this kind of call. */
static int fault_should_fail(unsigned long at, unsigned long n, const char *what)
{
	if (fault.st.failing)
		return 1;
	if (at == 0 || at != n)
		return 0;
	fault.st.failed = 1;
	fault.st.failing = fault.plan.sticky;
	report("F %s %lu%s\n", what, n, fault.plan.sticky ? " sticky" : "");
	return 1;
}

static void fault_undo_forget(struct ffile *f)
{
	size_t j = 0;

	for (size_t i = 0; i < fault.nundo; i++) {
		if (fault.undo[i].file == f)
			free(fault.undo[i].old);
		else
			fault.undo[j++] = fault.undo[i];
	}
	fault.nundo = j;
}

/* SQLite's unix VFS reads or writes at most 128 KiB in one call (it
 * masks the length to 17 bits: its own calls are a page or a header).
 * The undo log captures and puts back whole truncated WAL tails, which
 * are larger: so in pieces, every piece checked.  Before this, a
 * truncated WAL over 128 KiB came back cut short at a power cut, and
 * the store looked corrupt for a fault the disk could not have made. */
#define FAULT_IO_CHUNK (64 * 1024)

static int real_read_all(struct ffile *f, uint8_t *buf, size_t len, sqlite3_int64 off)
{
	for (size_t done = 0; done < len;) {
		size_t n = len - done < FAULT_IO_CHUNK ? len - done : FAULT_IO_CHUNK;
		int rc = f->real->pMethods->xRead(f->real, buf + done, (int)n,
						  off + (sqlite3_int64)done);

		if (rc != SQLITE_OK)
			return rc;
		done += n;
	}
	return SQLITE_OK;
}

static int real_write_all(struct ffile *f, const uint8_t *buf, size_t len, sqlite3_int64 off)
{
	for (size_t done = 0; done < len;) {
		size_t n = len - done < FAULT_IO_CHUNK ? len - done : FAULT_IO_CHUNK;
		int rc = f->real->pMethods->xWrite(f->real, buf + done, (int)n,
						   off + (sqlite3_int64)done);

		if (rc != SQLITE_OK)
			return rc;
		done += n;
	}
	return SQLITE_OK;
}

/* Remember what [off, off+len) of f holds before it is overwritten. */
static int fault_undo_record(struct ffile *f, sqlite3_int64 off, size_t len)
{
	sqlite3_int64 size = 0;
	struct undo *u;
	int rc;

	if (fault.nundo == fault.capundo) {
		size_t cap = fault.capundo ? 2 * fault.capundo : 64;
		struct undo *p = realloc(fault.undo, cap * sizeof(*p));

		if (!p)
			return SQLITE_NOMEM;
		fault.undo = p;
		fault.capundo = cap;
	}
	if ((rc = f->real->pMethods->xFileSize(f->real, &size)) != SQLITE_OK)
		return rc;
	u = &fault.undo[fault.nundo];
	u->old = calloc(1, len ? len : 1);
	if (!u->old)
		return SQLITE_NOMEM;
	u->file = f;
	u->off = off;
	u->len = len;
	u->old_size = size;
	if (off < size) {
		size_t have = (size_t)(size - off) < len ? (size_t)(size - off) : len;

		if ((rc = real_read_all(f, u->old, have, off)) != SQLITE_OK) {
			free(u->old);
			return rc;
		}
	}
	fault.nundo++;
	return SQLITE_OK;
}

/* Power cut: every write since its file's last sync is lost (all of
 * them, or each with even odds; the disk may have written any of them
 * or none).  Undone newest first, so each byte ends up holding a value
 * it had at some moment since the last sync. */
static void fault_power_cut(void)
{
	int lose_all = faultvfs_rng_below(&fault.rng, 5) < 2;
	size_t lost = 0;

	for (size_t i = fault.nundo; i-- > 0;) {
		struct undo *u = &fault.undo[i];

		if (!lose_all && faultvfs_rng_below(&fault.rng, 2))
			continue;
		if (real_write_all(u->file, u->old, u->len, u->off) != SQLITE_OK) {
			/* The model itself failed: say so, rather than leave a state
			 * no disk could have produced for the checks to find. */
			report("E power cut model: putting back %zu bytes at %lld failed\n", u->len,
			       (long long)u->off);
			_exit(98);
		}
		lost++;
		u->len = 0; /* marks it undone */
	}
	/* A file whose every unsynced write was lost is back to its size at
	 * the last sync. */
	for (size_t i = 0; i < fault.nundo; i++) {
		struct ffile *f = fault.undo[i].file;
		int all = 1;

		if (!f)
			continue;
		for (size_t j = i; j < fault.nundo; j++)
			if (fault.undo[j].file == f && fault.undo[j].len)
				all = 0;
		if (all)
			f->real->pMethods->xTruncate(f->real, fault.undo[i].old_size);
		for (size_t j = i + 1; j < fault.nundo; j++)
			if (fault.undo[j].file == f)
				fault.undo[j].file = NULL;
	}
	report("K powercut lost %zu of %zu unsynced writes\n", lost, fault.nundo);
}

/* Die at this write (buf, amt, off) or sync (buf NULL), as planned. */
static void fault_crash(struct ffile *f, const void *buf, int amt, sqlite3_int64 off,
			const char *what, unsigned long n)
{
	int torn = 0;

	if (fault.plan.how == FAULTVFS_POWERCUT) {
		fault_power_cut();
		torn = buf && amt > 1 && faultvfs_rng_below(&fault.rng, 2);
	} else if (fault.plan.how == FAULTVFS_TORN) {
		torn = buf && amt > 1;
	}
	if (torn) {
		int k = 1 + (int)faultvfs_rng_below(&fault.rng, (unsigned long)amt - 1);

		f->real->pMethods->xWrite(f->real, buf, k, off);
		report("K torn %s %lu: %d of %d bytes\n", what, n, k, amt);
	} else {
		report("K %s %lu\n", what, n);
	}
	raise(SIGKILL);
	_exit(99); /* not reached */
}

static int ff_close(sqlite3_file *file)
{
	/* Closed files cannot be undone; SQLite syncs before it lets go of
	 * anything that matters. */
	fault_undo_forget((struct ffile *)file);
	return REAL(file)->pMethods->xClose(REAL(file));
}

static int ff_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
	return REAL(file)->pMethods->xRead(REAL(file), buf, amt, off);
}

static int ff_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
	struct ffile *f = (struct ffile *)file;
	unsigned long n = ++fault.st.writes;
	int rc;

	if (fault.plan.die_at_write == n)
		fault_crash(f, buf, amt, off, "write", n);
	if (fault_should_fail(fault.plan.fail_write_at, n, "write"))
		return fault.plan.write_error ? fault.plan.write_error : SQLITE_IOERR_WRITE;
	if (fault.plan.how == FAULTVFS_POWERCUT &&
	    (rc = fault_undo_record(f, off, (size_t)amt)) != SQLITE_OK)
		return rc;
	return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int ff_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct ffile *f = (struct ffile *)file;
	unsigned long n = ++fault.st.truncs;
	sqlite3_int64 cur = 0;
	int rc;

	if (fault_should_fail(fault.plan.fail_trunc_at, n, "truncate"))
		return SQLITE_IOERR_TRUNCATE;
	if (fault.plan.how == FAULTVFS_POWERCUT &&
	    f->real->pMethods->xFileSize(f->real, &cur) == SQLITE_OK && cur > size &&
	    cur - size <= FAULTVFS_UNDO_MAX &&
	    (rc = fault_undo_record(f, size, (size_t)(cur - size))) != SQLITE_OK)
		return rc;
	return f->real->pMethods->xTruncate(f->real, size);
}

static int ff_sync(sqlite3_file *file, int flags)
{
	struct ffile *f = (struct ffile *)file;
	unsigned long n = ++fault.st.syncs;
	int rc;

	if (fault.plan.die_at_sync == n)
		fault_crash(f, NULL, 0, 0, "sync", n);
	if (fault_should_fail(fault.plan.fail_sync_at, n, "sync"))
		return SQLITE_IOERR_FSYNC;
	rc = f->real->pMethods->xSync(f->real, flags);
	if (rc == SQLITE_OK)
		fault_undo_forget(f); /* on the disk now */
	return rc;
}

static int ff_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	return REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int ff_lock(sqlite3_file *file, int lock)
{
	return REAL(file)->pMethods->xLock(REAL(file), lock);
}

static int ff_unlock(sqlite3_file *file, int lock)
{
	return REAL(file)->pMethods->xUnlock(REAL(file), lock);
}

static int ff_check_reserved_lock(sqlite3_file *file, int *out)
{
	return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int ff_file_control(sqlite3_file *file, int op, void *arg)
{
	return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int ff_sector_size(sqlite3_file *file)
{
	return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int ff_device_characteristics(sqlite3_file *file)
{
	return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int ff_shm_map(sqlite3_file *file, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(file)->pMethods->xShmMap(REAL(file), pg, pgsz, extend, pp);
}

static int ff_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	return REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);
}

static void ff_shm_barrier(sqlite3_file *file)
{
	REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int ff_shm_unmap(sqlite3_file *file, int delete_flag)
{
	return REAL(file)->pMethods->xShmUnmap(REAL(file), delete_flag);
}

/* Version 2, like the encryption VFS above it: no xFetch. */
static const sqlite3_io_methods ff_methods = {
	.iVersion = 2,
	.xClose = ff_close,
	.xRead = ff_read,
	.xWrite = ff_write,
	.xTruncate = ff_truncate,
	.xSync = ff_sync,
	.xFileSize = ff_file_size,
	.xLock = ff_lock,
	.xUnlock = ff_unlock,
	.xCheckReservedLock = ff_check_reserved_lock,
	.xFileControl = ff_file_control,
	.xSectorSize = ff_sector_size,
	.xDeviceCharacteristics = ff_device_characteristics,
	.xShmMap = ff_shm_map,
	.xShmLock = ff_shm_lock,
	.xShmBarrier = ff_shm_barrier,
	.xShmUnmap = ff_shm_unmap,
};

#define FFILE_SIZE ((sizeof(struct ffile) + 7) & ~(size_t)7)

static int fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
		   int *out_flags)
{
	struct ffile *f = (struct ffile *)file;
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)((char *)file + FFILE_SIZE);
	rc = fault.real->xOpen(fault.real, name, f->real, flags, out_flags);
	if (rc == SQLITE_OK)
		f->base.pMethods = &ff_methods;
	else if (f->real->pMethods) /* SQLite's rule: close what was opened */
		f->real->pMethods->xClose(f->real);
	return rc;
}

static int fv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	return fault.real->xDelete(fault.real, name, sync_dir);
}

static int fv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return fault.real->xAccess(fault.real, name, flags, out);
}

static int fv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return fault.real->xFullPathname(fault.real, name, n, out);
}

static void *fv_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	(void)name;
	return NULL;
}

static void fv_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	snprintf(msg, (size_t)n, "no extensions");
}

static void (*fv_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	(void)h;
	(void)sym;
	return NULL;
}

static void fv_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	(void)h;
}

static int fv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fault.real->xRandomness(fault.real, n, out);
}

static int fv_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return fault.real->xSleep(fault.real, us);
}

static int fv_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return fault.real->xCurrentTime(fault.real, out);
}

static int fv_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fault.real->xGetLastError ? fault.real->xGetLastError(fault.real, n, out) : 0;
}

static int fv_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return fault.real->xCurrentTimeInt64(fault.real, out);
}

/* Register the fault VFS over the default one (not as the default). */
static int faultvfs_register(void)
{
	fault.real = sqlite3_vfs_find(NULL);
	if (!fault.real || fault.real->iVersion < 2)
		return -ENOSYS;
	fault.vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)(FFILE_SIZE + (size_t)fault.real->szOsFile),
		.mxPathname = fault.real->mxPathname,
		.zName = FAULTVFS_NAME,
		.xOpen = fv_open,
		.xDelete = fv_delete,
		.xAccess = fv_access,
		.xFullPathname = fv_full_pathname,
		.xDlOpen = fv_dlopen,
		.xDlError = fv_dlerror,
		.xDlSym = fv_dlsym,
		.xDlClose = fv_dlclose,
		.xRandomness = fv_randomness,
		.xSleep = fv_sleep,
		.xCurrentTime = fv_current_time,
		.xGetLastError = fv_get_last_error,
		.xCurrentTimeInt64 = fv_current_time_int64,
	};
	return sqlite3_vfs_register(&fault.vfs, 0) == SQLITE_OK ? 0 : -FS_ESTORE;
}

/* The power-cut model must put back exactly what it took: a 300 KiB
 * tail (over the unix VFS's 128 KiB per call) written, read back and
 * compared through the undo helpers.  -1 (and a message) if not. */
int faultvfs_model_selftest(const char *work_dir)
{
	struct ffile f = { 0 };
	size_t n = 300 * 1024;
	uint8_t *a = malloc(n), *b = calloc(1, n);
	char name[PATH_MAX + 2] = { 0 };
	int out = 0, r = -1;

	snprintf(name, PATH_MAX, "%s/modelselftest.db", work_dir);
	f.real = calloc(1, (size_t)fault.real->szOsFile);
	if (!a || !b || !f.real ||
	    fault.real->xOpen(fault.real, name, f.real,
			      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_DB,
			      &out) != SQLITE_OK)
		goto done;
	for (size_t i = 0; i < n; i++)
		a[i] = (uint8_t)(i * 7 + i / 4096);
	if (real_write_all(&f, a, n, 0) == SQLITE_OK && real_read_all(&f, b, n, 0) == SQLITE_OK &&
	    memcmp(a, b, n) == 0)
		r = 0;
	f.real->pMethods->xClose(f.real);
	unlink(name);
done:
	if (r < 0)
		fprintf(stderr, "faultvfs: the power-cut model cannot put back %zu bytes whole\n",
			n);
	free(f.real);
	free(a);
	free(b);
	return r;
}

sqlite3_vfs *faultvfs(void)
{
	if (!fault.real && faultvfs_register() < 0) {
		fault.real = NULL;
		return NULL;
	}
	return &fault.vfs;
}

void faultvfs_arm(const struct faultvfs_plan *plan)
{
	for (size_t i = 0; i < fault.nundo; i++)
		free(fault.undo[i].old);
	fault.nundo = 0;
	fault.plan = *plan;
	fault.rng = plan->seed;
	memset(&fault.st, 0, sizeof(fault.st));
}

const struct faultvfs_state *faultvfs_state(void)
{
	return &fault.st;
}

void faultvfs_watch(void (*fn)(const char *fmt, ...))
{
	fault.report = fn;
}
