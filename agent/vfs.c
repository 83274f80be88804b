/* vfs.c - the encrypting VFS shim described in vfs.h.
 *
 * Sections: page sealing; file methods (read, write, pass-through);
 * VFS methods (open, pass-through); create and destroy.
 */
#include "agent/vfs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "crypto/secmem.h"

#define WAL_HEADER_BYTES 32
#define WAL_FRAME_HEADER_BYTES 24
#define WAL_FRAME_BYTES (WAL_FRAME_HEADER_BYTES + FSVFS_PAGE_SIZE)
#define PAGE_DATA_BYTES (FSVFS_PAGE_SIZE - FSVFS_RESERVE)
#define AD_BYTES (FSVFS_DBID_BYTES + 1 + 8)

struct fsvfs {
	sqlite3_vfs base;           /* what SQLite sees; pAppData points here */
	sqlite3_vfs *under;         /* the VFS doing the real I/O */
	uint8_t *key;               /* page key, secure memory */
	uint8_t dbid[FSVFS_DBID_BYTES]; /* binds pages to this store */
	char name[48];              /* unique registered name */
	char fault[512];            /* last fault, "" when none */
};

struct fsfile {
	sqlite3_file base;  /* our methods; must be first */
	struct fsvfs *vfs;  /* owner */
	char kind;          /* 'D' main database or 'W' WAL */
	const char *path;   /* SQLite keeps it valid while the file is open */
	uint8_t *scratch;   /* one page: ciphertext out, plaintext for partial reads */
	sqlite3_file *real; /* the under VFS's file, allocated right after us */
};

static void set_fault(struct fsvfs *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_fault(struct fsvfs *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->fault, sizeof(v->fault), fmt, ap);
	va_end(ap);
}

/* ---- page sealing ----------------------------------------------------- */

static void page_ad(const struct fsfile *f, uint64_t number, uint8_t ad[AD_BYTES])
{
	memcpy(ad, f->vfs->dbid, FSVFS_DBID_BYTES);
	ad[FSVFS_DBID_BYTES] = (uint8_t)f->kind;
	for (int i = 0; i < 8; i++)
		ad[FSVFS_DBID_BYTES + 1 + i] = (uint8_t)(number >> (56 - 8 * i));
}

/* Seal plaintext page p into out (both FSVFS_PAGE_SIZE bytes). */
static int page_seal(struct fsfile *f, uint64_t number, const uint8_t *p, uint8_t *out)
{
	uint8_t ad[AD_BYTES];

	if (!sodium_is_zero(p + PAGE_DATA_BYTES, FSVFS_RESERVE)) {
		set_fault(f->vfs, "%s page %llu: SQLite wrote into the reserved bytes "
			  "(store was not created with %d reserved bytes per page)",
			  f->path, (unsigned long long)number, FSVFS_RESERVE);
		return SQLITE_IOERR_WRITE;
	}
	page_ad(f, number, ad);
	aead_seal_detached(out, out + PAGE_DATA_BYTES + AEAD_NONCEBYTES, out + PAGE_DATA_BYTES, p,
			   PAGE_DATA_BYTES, ad, sizeof(ad), f->vfs->key);
	return SQLITE_OK;
}

/* Open a sealed page in place; on failure the page is wiped. */
static int page_open(struct fsfile *f, uint64_t number, uint8_t *page)
{
	uint8_t ad[AD_BYTES];

	page_ad(f, number, ad);
	if (aead_open_detached(page, page, PAGE_DATA_BYTES, page + PAGE_DATA_BYTES + AEAD_NONCEBYTES,
			       page + PAGE_DATA_BYTES, ad, sizeof(ad), f->vfs->key) < 0) {
		sodium_memzero(page, FSVFS_PAGE_SIZE);
		set_fault(f->vfs, "%s %s %llu: authentication failed "
			  "(wrong key, or the file was altered)",
			  f->path, f->kind == 'W' ? "WAL frame" : "page", (unsigned long long)number);
		return SQLITE_IOERR_DATA;
	}
	sodium_memzero(page + PAGE_DATA_BYTES, FSVFS_RESERVE);
	return SQLITE_OK;
}

/* ---- file methods ----------------------------------------------------- */

static int real_read(struct fsfile *f, void *buf, int amt, sqlite3_int64 off)
{
	return f->real->pMethods->xRead(f->real, buf, amt, off);
}

/* Read and open one whole sealed page at off.  A page entirely past the
 * end of the file is a normal short read (SQLite treats it as zeros); a
 * page cut short is damage. */
static int read_sealed(struct fsfile *f, uint64_t number, uint8_t *page, sqlite3_int64 off)
{
	sqlite3_int64 size = 0;
	int rc = real_read(f, page, FSVFS_PAGE_SIZE, off);

	if (rc == SQLITE_IOERR_SHORT_READ) {
		if (f->real->pMethods->xFileSize(f->real, &size) == SQLITE_OK && size <= off) {
			memset(page, 0, FSVFS_PAGE_SIZE);
			return SQLITE_IOERR_SHORT_READ;
		}
		set_fault(f->vfs, "%s page %llu: truncated", f->path, (unsigned long long)number);
		return SQLITE_IOERR_DATA;
	}
	if (rc != SQLITE_OK)
		return rc;
	return page_open(f, number, page);
}

static int db_read(struct fsfile *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
	uint64_t pgno = (uint64_t)(off / FSVFS_PAGE_SIZE) + 1;
	sqlite3_int64 within = off % FSVFS_PAGE_SIZE;
	int rc;

	if (within == 0 && amt == FSVFS_PAGE_SIZE)
		return read_sealed(f, pgno, buf, off);
	/* SQLite reads parts of page 1 (the 100-byte header, the change
	 * counter) before it knows the page size: open the whole page. */
	if (within + amt > FSVFS_PAGE_SIZE) {
		set_fault(f->vfs, "%s: read of %d bytes at %lld spans pages", f->path, amt,
			  (long long)off);
		return SQLITE_IOERR_READ;
	}
	rc = read_sealed(f, pgno, f->scratch, off - within);
	if (rc == SQLITE_OK || rc == SQLITE_IOERR_SHORT_READ)
		memcpy(buf, f->scratch + within, (size_t)amt);
	sodium_memzero(f->scratch, FSVFS_PAGE_SIZE);
	return rc;
}

/* Is [within, within + amt) inside the clear-text header of a frame? */
static int in_frame_header(sqlite3_int64 within, int amt)
{
	return within + amt <= WAL_FRAME_HEADER_BYTES;
}

static int wal_read(struct fsfile *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
	sqlite3_int64 rel, within;
	uint64_t frame;
	int rc;

	/* The WAL header, and any part of a frame header (checksum rewrites
	 * read 8 bytes at +16), are SQLite's bookkeeping, kept in clear. */
	if (off + amt <= WAL_HEADER_BYTES)
		return real_read(f, buf, amt, off);
	rel = off - WAL_HEADER_BYTES;
	if (rel < 0)
		goto unexpected;
	frame = (uint64_t)(rel / WAL_FRAME_BYTES) + 1;
	within = rel % WAL_FRAME_BYTES;
	if (in_frame_header(within, amt))
		return real_read(f, buf, amt, off);
	if (within == WAL_FRAME_HEADER_BYTES && amt == FSVFS_PAGE_SIZE)
		return read_sealed(f, frame, buf, off);
	if (within == 0 && amt == WAL_FRAME_BYTES) {
		/* Recovery reads whole frames: header in clear, page sealed. */
		rc = real_read(f, buf, WAL_FRAME_HEADER_BYTES, off);
		if (rc != SQLITE_OK)
			return rc;
		return read_sealed(f, frame, buf + WAL_FRAME_HEADER_BYTES,
				   off + WAL_FRAME_HEADER_BYTES);
	}
unexpected:
	set_fault(f->vfs, "%s: unexpected WAL read of %d bytes at %lld", f->path, amt,
		  (long long)off);
	return SQLITE_IOERR_READ;
}

static int fs_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
	struct fsfile *f = (struct fsfile *)file;

	if (amt <= 0 || off < 0)
		return SQLITE_IOERR_READ;
	return f->kind == 'D' ? db_read(f, buf, amt, off) : wal_read(f, buf, amt, off);
}

static int write_sealed(struct fsfile *f, uint64_t number, const void *buf, sqlite3_int64 off)
{
	int rc = page_seal(f, number, buf, f->scratch);

	if (rc == SQLITE_OK)
		rc = f->real->pMethods->xWrite(f->real, f->scratch, FSVFS_PAGE_SIZE, off);
	return rc;
}

static int fs_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
	struct fsfile *f = (struct fsfile *)file;
	sqlite3_int64 rel, within;

	if (f->kind == 'D') {
		if (amt == FSVFS_PAGE_SIZE && off % FSVFS_PAGE_SIZE == 0)
			return write_sealed(f, (uint64_t)(off / FSVFS_PAGE_SIZE) + 1, buf, off);
	} else if (off + amt <= WAL_HEADER_BYTES) {
		return f->real->pMethods->xWrite(f->real, buf, amt, off);
	} else if (off >= WAL_HEADER_BYTES) {
		rel = off - WAL_HEADER_BYTES;
		within = rel % WAL_FRAME_BYTES;
		if (in_frame_header(within, amt))
			return f->real->pMethods->xWrite(f->real, buf, amt, off);
		if (within == WAL_FRAME_HEADER_BYTES && amt == FSVFS_PAGE_SIZE)
			return write_sealed(f, (uint64_t)(rel / WAL_FRAME_BYTES) + 1, buf, off);
	}
	set_fault(f->vfs, "%s: unexpected write of %d bytes at %lld (page size must be %d)",
		  f->path, amt, (long long)off, FSVFS_PAGE_SIZE);
	return SQLITE_IOERR_WRITE;
}

static int fs_close(sqlite3_file *file)
{
	struct fsfile *f = (struct fsfile *)file;
	int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;

	if (f->scratch) {
		sodium_memzero(f->scratch, FSVFS_PAGE_SIZE);
		sqlite3_free(f->scratch);
		f->scratch = NULL;
	}
	return rc;
}

/* The rest hand the call to the real file unchanged. */
#define REAL(file) (((struct fsfile *)(file))->real)

static int fs_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	return REAL(file)->pMethods->xTruncate(REAL(file), size);
}

static int fs_sync(sqlite3_file *file, int flags)
{
	return REAL(file)->pMethods->xSync(REAL(file), flags);
}

static int fs_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	return REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int fs_lock(sqlite3_file *file, int lock)
{
	return REAL(file)->pMethods->xLock(REAL(file), lock);
}

static int fs_unlock(sqlite3_file *file, int lock)
{
	return REAL(file)->pMethods->xUnlock(REAL(file), lock);
}

static int fs_check_reserved_lock(sqlite3_file *file, int *out)
{
	return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int fs_file_control(sqlite3_file *file, int op, void *arg)
{
	/* mmap would hand SQLite ciphertext; we offer no xFetch, and say no
	 * here too so nobody is misled into thinking it is on. */
	if (op == SQLITE_FCNTL_MMAP_SIZE) {
		*(sqlite3_int64 *)arg = 0;
		return SQLITE_OK;
	}
	return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int fs_sector_size(sqlite3_file *file)
{
	return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int fs_device_characteristics(sqlite3_file *file)
{
	return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int fs_shm_map(sqlite3_file *file, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(file)->pMethods->xShmMap(REAL(file), pg, pgsz, extend, pp);
}

static int fs_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	return REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);
}

static void fs_shm_barrier(sqlite3_file *file)
{
	REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int fs_shm_unmap(sqlite3_file *file, int delete_flag)
{
	return REAL(file)->pMethods->xShmUnmap(REAL(file), delete_flag);
}

/* Version 2: shared memory for WAL, and deliberately no xFetch. */
static const sqlite3_io_methods fs_io_methods = {
	.iVersion = 2,
	.xClose = fs_close,
	.xRead = fs_read,
	.xWrite = fs_write,
	.xTruncate = fs_truncate,
	.xSync = fs_sync,
	.xFileSize = fs_file_size,
	.xLock = fs_lock,
	.xUnlock = fs_unlock,
	.xCheckReservedLock = fs_check_reserved_lock,
	.xFileControl = fs_file_control,
	.xSectorSize = fs_sector_size,
	.xDeviceCharacteristics = fs_device_characteristics,
	.xShmMap = fs_shm_map,
	.xShmLock = fs_shm_lock,
	.xShmBarrier = fs_shm_barrier,
	.xShmUnmap = fs_shm_unmap,
};

/* ---- VFS methods ------------------------------------------------------ */

#define UNDER(vfs) (((struct fsvfs *)(vfs)->pAppData)->under)

static int fs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
		   int *out_flags)
{
	struct fsvfs *v = vfs->pAppData;
	struct fsfile *f = (struct fsfile *)file;
	int rc;

	memset(f, 0, sizeof(*f));
	f->vfs = v;
	f->path = name ? name : "(temporary)";
	f->real = (sqlite3_file *)((char *)file + ((sizeof(struct fsfile) + 7) & ~(size_t)7));
	if (flags & SQLITE_OPEN_MAIN_DB) {
		f->kind = 'D';
	} else if (flags & SQLITE_OPEN_WAL) {
		f->kind = 'W';
	} else {
		/* A rollback journal or a temporary file would hold pages in
		 * the clear; the store never needs one (WAL, temp_store=MEMORY). */
		set_fault(v, "%s: refusing to open a journal or temporary file (flags 0x%x)",
			  f->path, (unsigned)flags);
		return SQLITE_CANTOPEN;
	}
	f->scratch = sqlite3_malloc(FSVFS_PAGE_SIZE);
	if (!f->scratch)
		return SQLITE_NOMEM;
	rc = v->under->xOpen(v->under, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		sqlite3_free(f->scratch);
		f->scratch = NULL;
		return rc; /* pMethods stays NULL: SQLite will not call xClose */
	}
	f->base.pMethods = &fs_io_methods;
	return SQLITE_OK;
}

static int fs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	return UNDER(vfs)->xDelete(UNDER(vfs), name, sync_dir);
}

static int fs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	return UNDER(vfs)->xAccess(UNDER(vfs), name, flags, out);
}

static int fs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	return UNDER(vfs)->xFullPathname(UNDER(vfs), name, n, out);
}

static void *fs_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	(void)name;
	return NULL; /* no loadable extensions in a store of personal data */
}

static void fs_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	snprintf(msg, (size_t)n, "extensions are disabled");
}

static void (*fs_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	(void)h;
	(void)sym;
	return NULL;
}

static void fs_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	(void)h;
}

static int fs_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	randombytes_buf(out, (size_t)n);
	return n;
}

static int fs_sleep(sqlite3_vfs *vfs, int us)
{
	return UNDER(vfs)->xSleep(UNDER(vfs), us);
}

static int fs_current_time(sqlite3_vfs *vfs, double *out)
{
	return UNDER(vfs)->xCurrentTime(UNDER(vfs), out);
}

static int fs_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	return UNDER(vfs)->xGetLastError ? UNDER(vfs)->xGetLastError(UNDER(vfs), n, out) : 0;
}

static int fs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	return UNDER(vfs)->xCurrentTimeInt64(UNDER(vfs), out);
}

/* ---- create and destroy ----------------------------------------------- */

int fsvfs_create(const uint8_t data_key[AEAD_KEYBYTES], const uint8_t db_id[FSVFS_DBID_BYTES],
		 sqlite3_vfs *under, struct fsvfs **ret_vfs)
{
	struct fsvfs *v;
	int rc;

	if (!under)
		under = sqlite3_vfs_find(NULL);
	if (!under || under->iVersion < 2 || !under->xCurrentTimeInt64)
		return -FS_EUSAGE;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->key = secmem_alloc(AEAD_KEYBYTES);
	if (!v->key) {
		free(v);
		return -ENOMEM;
	}
	aead_derive_subkey(v->key, 1, "fspages1", data_key);
	memcpy(v->dbid, db_id, FSVFS_DBID_BYTES);
	snprintf(v->name, sizeof(v->name), "fieldsync-%p", (void *)v);
	v->under = under;
	v->base = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)(((sizeof(struct fsfile) + 7) & ~(size_t)7) + (size_t)under->szOsFile),
		.mxPathname = under->mxPathname,
		.zName = v->name,
		.pAppData = v,
		.xOpen = fs_open,
		.xDelete = fs_delete,
		.xAccess = fs_access,
		.xFullPathname = fs_full_pathname,
		.xDlOpen = fs_dlopen,
		.xDlError = fs_dlerror,
		.xDlSym = fs_dlsym,
		.xDlClose = fs_dlclose,
		.xRandomness = fs_randomness,
		.xSleep = fs_sleep,
		.xCurrentTime = fs_current_time,
		.xGetLastError = fs_get_last_error,
		.xCurrentTimeInt64 = fs_current_time_int64,
	};
	rc = sqlite3_vfs_register(&v->base, 0);
	if (rc != SQLITE_OK) {
		secmem_free(v->key);
		free(v);
		return -FS_ESTORE;
	}
	*ret_vfs = v;
	return 0;
}

const char *fsvfs_name(const struct fsvfs *v)
{
	return v->name;
}

struct fsvfs *fsvfs_destroy(struct fsvfs *v)
{
	if (!v)
		return NULL;
	sqlite3_vfs_unregister(&v->base);
	secmem_free(v->key);
	sodium_memzero(v, sizeof(*v));
	free(v);
	return NULL;
}

const char *fsvfs_last_fault(const struct fsvfs *v)
{
	return v->fault[0] ? v->fault : NULL;
}

void fsvfs_clear_fault(struct fsvfs *v)
{
	v->fault[0] = '\0';
}
