/* vfs.c - the encrypting VFS shim described in vfs.h.
 *
 * Sections: page sealing; file methods (read, write, pass-through);
 * VFS methods (open, pass-through); create and destroy.
 */
#include "agent/vfs.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "crypto/bytes.h"
#include "crypto/secmem.h"

#define WAL_HEADER_BYTES 32
#define WAL_FRAME_HEADER_BYTES 24
#define WAL_FRAME_BYTES (WAL_FRAME_HEADER_BYTES + FSVFS_PAGE_SIZE)
#define PAGE_DATA_BYTES (FSVFS_PAGE_SIZE - FSVFS_RESERVE)
#define BIND_BYTES 12 /* WAL: page number (4) and salts (8) from the frame header */
#define AD_BYTES (FSVFS_DBID_BYTES + 1 + 8 + BIND_BYTES)
#define SALT_BYTES 8
#define WAL_HEADER_SALTS 16 /* where the salts are in the WAL header */
/* ... and in the wal-index header (wal.c, struct WalIndexHdr: aSalt
 * after iVersion, unused, iChange, isInit, bigEndCksum, szPage,
 * mxFrame, nPage and aFrameCksum), as the same bytes. */
#define WALINDEX_SALTS 32
#define NONCE_PREFIX_BYTES (AEAD_NONCEBYTES - 8)

struct fsvfs {
	sqlite3_vfs base;		/* what SQLite sees; pAppData points here */
	sqlite3_vfs *under;		/* the VFS doing the real I/O */
	uint8_t *key;			/* page key, secure memory */
	uint8_t dbid[FSVFS_DBID_BYTES]; /* binds pages to this store */
	char name[48];			/* unique registered name */
	char fault[512];		/* last fault, "" when none */
	int recovering;			/* WAL_RECOVER_LOCK held: SQLite is rebuilding the index */
	/* Page nonces: this prefix, random per fsvfs, then a counter
	 * (page_nonce()). */
	uint8_t nonce_prefix[NONCE_PREFIX_BYTES];
	_Atomic uint64_t nonce_next;
	unsigned nonce_forks; /* fork_count when the prefix was drawn */
};

struct fsfile {
	sqlite3_file base; /* our methods; must be first */
	struct fsvfs *vfs; /* owner */
	char kind;	   /* 'D' main database or 'W' WAL */
	const char *path;  /* SQLite keeps it valid while the file is open */
	uint8_t *scratch;  /* a frame: ciphertext in and out, plaintext for partial reads */
	uint8_t hdr[WAL_FRAME_HEADER_BYTES]; /* WAL: last frame header written */
	sqlite3_int64 hdr_off;		     /* its offset, or -1 */
	struct fsfile *db;		     /* WAL: its database file, when it is ours */
	void volatile *shm0;		     /* database: region 0 of the wal-index, or NULL */
	uint8_t salts[SALT_BYTES];	     /* WAL: the header's salts, when have_salts */
	int have_salts;
	sqlite3_file *real; /* the under VFS's file, allocated right after us */
};

#define SCRATCH_BYTES WAL_FRAME_BYTES

static void set_fault(struct fsvfs *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_fault(struct fsvfs *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->fault, sizeof(v->fault), fmt, ap);
	va_end(ap);
}

/* ---- page sealing ----------------------------------------------------- */

/* Forks so far in this process: a child goes on from its parent's
 * prefix and counter, so it draws a new prefix before it seals. */
static _Atomic unsigned fork_count;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
	atomic_fetch_add(&fork_count, 1);
}

static void fork_watch(void)
{
	(void)pthread_atfork(NULL, NULL, fork_child);
}

/* A nonce never used before under the page key, without a system call:
 * 16 random bytes drawn when the VFS is made (or in a forked child),
 * then a 64-bit counter.  docs/SECURITY.md argues why two never meet. */
static void page_nonce(struct fsvfs *v, uint8_t nonce[AEAD_NONCEBYTES])
{
	unsigned forks = atomic_load(&fork_count);

	if (forks != v->nonce_forks) {
		randombytes_buf(v->nonce_prefix, sizeof(v->nonce_prefix));
		atomic_store(&v->nonce_next, 0);
		v->nonce_forks = forks;
	}
	memcpy(nonce, v->nonce_prefix, NONCE_PREFIX_BYTES);
	bytes_put_be(nonce + NONCE_PREFIX_BYTES, atomic_fetch_add(&v->nonce_next, 1), 8);
}

/* Associated data: store id, file kind, page or frame number, and for a
 * WAL frame the database page number and the WAL generation's salts.
 * SQLite's frame checksums carry no key, so without the last two a frame
 * could be relabelled as another page, or replayed from an earlier WAL
 * generation, with the checksums recomputed. */
static void page_ad(const struct fsfile *f, uint64_t number, const uint8_t *bind,
		    uint8_t ad[AD_BYTES])
{
	memcpy(ad, f->vfs->dbid, FSVFS_DBID_BYTES);
	ad[FSVFS_DBID_BYTES] = (uint8_t)f->kind;
	bytes_put_be(ad + FSVFS_DBID_BYTES + 1, number, 8);
	if (bind)
		memcpy(ad + FSVFS_DBID_BYTES + 9, bind, BIND_BYTES);
	else
		memset(ad + FSVFS_DBID_BYTES + 9, 0, BIND_BYTES);
}

/* The salts of the WAL's current generation, as its header has them.
 * Read from the file, then kept: while the wal-index header in shared
 * memory (no system call) has the same, the file still has them, since
 * SQLite writes a new generation's salts there (walRestartHdr) before
 * it writes the WAL header, and a reader can use a frame only once a
 * commit wrote the index.  The header of a new WAL reaches the index
 * only at its first commit, and recovery rebuilds the index: there, and
 * whenever the two differ, the file is read again. */
static int wal_salts(struct fsfile *f, uint8_t salts[SALT_BYTES])
{
	const volatile uint8_t *idx = f->db ? f->db->shm0 : NULL;
	uint8_t walhdr[WAL_HEADER_BYTES];
	int rc, same = f->have_salts && idx && !f->vfs->recovering;

	for (int i = 0; same && i < SALT_BYTES; i++)
		same = idx[WALINDEX_SALTS + i] == f->salts[i];
	if (!same) {
		rc = f->real->pMethods->xRead(f->real, walhdr, sizeof(walhdr), 0);
		if (rc != SQLITE_OK)
			return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_DATA : rc;
		memcpy(f->salts, walhdr + WAL_HEADER_SALTS, SALT_BYTES);
		f->have_salts = 1;
	}
	memcpy(salts, f->salts, SALT_BYTES);
	return SQLITE_OK;
}

/* What a WAL page is bound to besides its frame number: the database page
 * number from its frame header (SQLite never changes it for a frame) and
 * the salts from the WAL file header (they name the WAL generation).
 * Not the frame header's own salts: SQLite writes those as zeros for
 * frames after an in-place overwrite and fills them in at commit. */
static int wal_bind(struct fsfile *f, const uint8_t frame_hdr[WAL_FRAME_HEADER_BYTES],
		    uint8_t bind[BIND_BYTES])
{
	memcpy(bind, frame_hdr, 4);
	return wal_salts(f, bind + 4);
}

/* Seal plaintext page p into out (both FSVFS_PAGE_SIZE bytes). */
static int page_seal(struct fsfile *f, uint64_t number, const uint8_t *bind, const uint8_t *p,
		     uint8_t *out)
{
	uint8_t ad[AD_BYTES];

	if (!sodium_is_zero(p + PAGE_DATA_BYTES, FSVFS_RESERVE)) {
		set_fault(f->vfs,
			  "%s page %llu: SQLite wrote into the reserved bytes "
			  "(store was not created with %d reserved bytes per page)",
			  f->path, (unsigned long long)number, FSVFS_RESERVE);
		return SQLITE_IOERR_WRITE;
	}
	page_ad(f, number, bind, ad);
	page_nonce(f->vfs, out + PAGE_DATA_BYTES);
	aead_seal_detached_nonce(out, out + PAGE_DATA_BYTES + AEAD_NONCEBYTES,
				 out + PAGE_DATA_BYTES, p, PAGE_DATA_BYTES, ad, sizeof(ad),
				 f->vfs->key);
	return SQLITE_OK;
}

/* Open the sealed page at sealed into out (the same buffer, or
 * another).  On failure out is wiped and, when report is set, the
 * fault recorded. */
static int page_open_into(struct fsfile *f, uint64_t number, const uint8_t *bind,
			  const uint8_t *sealed, uint8_t *out, int report)
{
	uint8_t ad[AD_BYTES];

	page_ad(f, number, bind, ad);
	if (aead_open_detached(out, sealed, PAGE_DATA_BYTES,
			       sealed + PAGE_DATA_BYTES + AEAD_NONCEBYTES, sealed + PAGE_DATA_BYTES,
			       ad, sizeof(ad), f->vfs->key) < 0) {
		sodium_memzero(out, FSVFS_PAGE_SIZE);
		if (report)
			set_fault(f->vfs,
				  "%s %s %llu: authentication failed "
				  "(wrong key, or the file was altered)",
				  f->path, f->kind == 'W' ? "WAL frame" : "page",
				  (unsigned long long)number);
		return SQLITE_IOERR_DATA;
	}
	sodium_memzero(out + PAGE_DATA_BYTES, FSVFS_RESERVE);
	return SQLITE_OK;
}

static int page_open(struct fsfile *f, uint64_t number, const uint8_t *bind, uint8_t *page,
		     int report)
{
	return page_open_into(f, number, bind, page, page, report);
}

/* ---- file methods ----------------------------------------------------- */

static int real_read(struct fsfile *f, void *buf, int amt, sqlite3_int64 off)
{
	return f->real->pMethods->xRead(f->real, buf, amt, off);
}

/* Read and open one whole sealed page at off.  A page entirely past the
 * end of the file is a normal short read (SQLite treats it as zeros); a
 * page cut short is damage. */
static int read_sealed(struct fsfile *f, uint64_t number, const uint8_t *bind, uint8_t *page,
		       sqlite3_int64 off, int report)
{
	sqlite3_int64 size = 0;
	int rc = real_read(f, page, FSVFS_PAGE_SIZE, off);

	if (rc == SQLITE_IOERR_SHORT_READ) {
		if (f->real->pMethods->xFileSize(f->real, &size) == SQLITE_OK && size <= off) {
			memset(page, 0, FSVFS_PAGE_SIZE);
			return SQLITE_IOERR_SHORT_READ;
		}
		if (report)
			set_fault(f->vfs, "%s page %llu: truncated", f->path,
				  (unsigned long long)number);
		sodium_memzero(page, FSVFS_PAGE_SIZE);
		return SQLITE_IOERR_DATA;
	}
	if (rc != SQLITE_OK)
		return rc;
	return page_open(f, number, bind, page, report);
}

static int db_read(struct fsfile *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
	uint64_t pgno = (uint64_t)(off / FSVFS_PAGE_SIZE) + 1;
	sqlite3_int64 within = off % FSVFS_PAGE_SIZE;
	int rc;

	if (within == 0 && amt == FSVFS_PAGE_SIZE)
		return read_sealed(f, pgno, NULL, buf, off, 1);
	/* SQLite reads parts of page 1 (the 100-byte header, the change
	 * counter) before it knows the page size: open the whole page. */
	if (within + amt > FSVFS_PAGE_SIZE) {
		set_fault(f->vfs, "%s: read of %d bytes at %lld spans pages", f->path, amt,
			  (long long)off);
		return SQLITE_IOERR_READ;
	}
	rc = read_sealed(f, pgno, NULL, f->scratch, off - within, !(pgno == 1 && within == 0));
	if (rc == SQLITE_OK || rc == SQLITE_IOERR_SHORT_READ)
		memcpy(buf, f->scratch + within, (size_t)amt);
	sodium_memzero(f->scratch, FSVFS_PAGE_SIZE);
	if (rc == SQLITE_IOERR_DATA && pgno == 1 && within == 0) {
		/* The header SQLite sniffs when it opens the file, before it
		 * opens the WAL.  A crash or power cut in a checkpoint can tear
		 * page 1 here while the WAL still holds its good copy, which
		 * plain SQLite shrugs off.  Answer as for an empty file (zeros,
		 * a short read): SQLite then takes page 1 from the WAL, or from
		 * this file in a whole-page read, which authenticates and
		 * reports the fault, before it trusts any of it.  Nothing
		 * unauthenticated reaches SQLite as data. */
		memset(buf, 0, (size_t)amt);
		return SQLITE_IOERR_SHORT_READ;
	}
	return rc;
}

/* Is [within, within + amt) inside the clear-text header of a frame? */
static int in_frame_header(sqlite3_int64 within, int amt)
{
	return within + amt <= WAL_FRAME_HEADER_BYTES;
}

static sqlite3_int64 frame_offset(uint64_t frame)
{
	return WAL_HEADER_BYTES + (sqlite3_int64)(frame - 1) * WAL_FRAME_BYTES;
}

/* The header of the frame at frame_off: the one SQLite just wrote, or
 * the one on disk (in-place overwrites write only the page). */
static int frame_header(struct fsfile *f, sqlite3_int64 frame_off,
			uint8_t hdr[WAL_FRAME_HEADER_BYTES])
{
	if (f->hdr_off == frame_off) {
		memcpy(hdr, f->hdr, WAL_FRAME_HEADER_BYTES);
		return SQLITE_OK;
	}
	return real_read(f, hdr, WAL_FRAME_HEADER_BYTES, frame_off);
}

/* SQLite's WAL checksum (wal.c, walChecksumBytes) over len bytes (a
 * multiple of 8), continuing sum.  Words are big-endian when the WAL
 * header's magic is odd, little-endian otherwise. */
static void wal_checksum(int big_endian, const uint8_t *p, size_t len, uint32_t sum[2])
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint32_t x0 =
			(uint32_t)(big_endian ? bytes_get_be(p + i, 4) : bytes_get_le(p + i, 4));
		uint32_t x1 = (uint32_t)(big_endian ? bytes_get_be(p + i + 4, 4)
						    : bytes_get_le(p + i + 4, 4));

		sum[0] += x0 + sum[1];
		sum[1] += x1 + sum[0];
	}
}

/* Frame `frame` failed authentication while SQLite recovered the WAL.
 * Is it the torn tail of a transaction that never committed (power
 * lost mid-write), or was a durable frame altered?  SQLite writes a
 * transaction's frames, ends with a commit frame, and syncs; the next
 * transaction starts only after that sync.  So an authentic frame with
 * the current salts after an authentic commit frame that follows
 * `frame` means `frame` was durable: tampering.  Anything less is a
 * torn tail, which SQLite must see as the end of the log.
 *
 * The frames counted must continue SQLite's checksum chain from
 * `frame`'s header (in clear, so checkable without its page).  After a
 * commit whose sync failed, SQLite writes the next transaction over the
 * same frames; a shorter one leaves the failed commit's frames, commit
 * frame included, and older frames of the same WAL generation behind
 * it.  They authenticate, but SQLite's recovery never reaches them: the
 * chain breaks.  Counting them would call a torn tail tampering and
 * refuse the store.  A frame that does not authenticate, or is of an
 * earlier generation, is skipped as before, the chain continuing from
 * its stored checksum. */
static int frame_is_torn_tail(struct fsfile *f, uint64_t frame)
{
	uint8_t walhdr[WAL_HEADER_BYTES], hdr[WAL_FRAME_HEADER_BYTES], bind[BIND_BYTES];
	int seen_commit = 0, torn = 1, big_endian;
	uint32_t sum[2];

	if (real_read(f, walhdr, sizeof(walhdr), 0) != SQLITE_OK ||
	    real_read(f, hdr, sizeof(hdr), frame_offset(frame)) != SQLITE_OK)
		return 0;
	big_endian = walhdr[3] & 1;
	sum[0] = (uint32_t)bytes_get_be(hdr + 16, 4);
	sum[1] = (uint32_t)bytes_get_be(hdr + 20, 4);
	for (uint64_t j = frame + 1;; j++) {
		sqlite3_int64 off = frame_offset(j);

		if (real_read(f, hdr, sizeof(hdr), off) != SQLITE_OK)
			break; /* end of file */
		memcpy(bind, hdr, 4);
		memcpy(bind + 4, walhdr + 16, 8);
		if (memcmp(hdr + 8, walhdr + 16, 8) != 0 ||
		    read_sealed(f, j, bind, f->scratch, off + WAL_FRAME_HEADER_BYTES, 0) !=
			    SQLITE_OK) {
			/* Left over from an earlier WAL generation, or damaged too. */
			sum[0] = (uint32_t)bytes_get_be(hdr + 16, 4);
			sum[1] = (uint32_t)bytes_get_be(hdr + 20, 4);
			continue;
		}
		wal_checksum(big_endian, hdr, 8, sum);
		wal_checksum(big_endian, f->scratch, FSVFS_PAGE_SIZE, sum);
		if (sum[0] != (uint32_t)bytes_get_be(hdr + 16, 4) ||
		    sum[1] != (uint32_t)bytes_get_be(hdr + 20, 4))
			break; /* not written after `frame`: the log ends before it */
		if (seen_commit) {
			torn = 0;
			break;
		}
		if (hdr[4] | hdr[5] | hdr[6] | hdr[7])
			seen_commit = 1;
	}
	sodium_memzero(f->scratch, FSVFS_PAGE_SIZE);
	return torn;
}

static int wal_read(struct fsfile *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
	uint8_t hdr[WAL_FRAME_HEADER_BYTES], bind[BIND_BYTES];
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
	if (within == WAL_FRAME_HEADER_BYTES && amt == FSVFS_PAGE_SIZE) {
		/* A frame the wal-index says is committed: it must authenticate.
		 * Its header and page in one read; one cut short is left to
		 * read_sealed() to tell the end of the file from damage. */
		rc = real_read(f, f->scratch, WAL_FRAME_BYTES, off - WAL_FRAME_HEADER_BYTES);
		if (rc == SQLITE_OK) {
			rc = wal_bind(f, f->scratch, bind);
			return rc != SQLITE_OK ? rc
					       : page_open_into(f, frame, bind,
								f->scratch + WAL_FRAME_HEADER_BYTES,
								buf, 1);
		}
		if (rc != SQLITE_IOERR_SHORT_READ)
			return rc;
		rc = real_read(f, hdr, sizeof(hdr), off - WAL_FRAME_HEADER_BYTES);
		if (rc == SQLITE_OK)
			rc = wal_bind(f, hdr, bind);
		if (rc != SQLITE_OK)
			return rc;
		return read_sealed(f, frame, bind, buf, off, 1);
	}
	if (within == 0 && amt == WAL_FRAME_BYTES) {
		/* Recovery reads whole frames: header in clear, page sealed. */
		rc = real_read(f, buf, WAL_FRAME_HEADER_BYTES, off);
		if (rc == SQLITE_OK)
			rc = wal_bind(f, buf, bind);
		if (rc != SQLITE_OK)
			return rc;
		rc = read_sealed(f, frame, bind, buf + WAL_FRAME_HEADER_BYTES,
				 off + WAL_FRAME_HEADER_BYTES, 1);
		/* Only recovery may meet a torn tail; the same read at commit
		 * (checksum rewrite) is of frames we just wrote, and a failure
		 * there must stop the commit. */
		if (rc == SQLITE_IOERR_DATA && f->vfs->recovering && frame_is_torn_tail(f, frame)) {
			/* Page number 0 makes SQLite treat the frame as the end
			 * of the log, exactly as for a torn write it can see. */
			fsvfs_clear_fault(f->vfs);
			memset(buf, 0, WAL_FRAME_BYTES);
			return SQLITE_OK;
		}
		return rc;
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

static int write_sealed(struct fsfile *f, uint64_t number, const uint8_t *bind, const void *buf,
			sqlite3_int64 off)
{
	int rc = page_seal(f, number, bind, buf, f->scratch);

	if (rc == SQLITE_OK)
		rc = f->real->pMethods->xWrite(f->real, f->scratch, FSVFS_PAGE_SIZE, off);
	return rc;
}

/* wal_write() for a write of a shape SQLite never makes; distinct from
 * every SQLite code, so that an I/O error of the file below is passed on
 * as what it is, not reported as a layout fault. */
#define WAL_WRITE_UNEXPECTED (-1)

static int wal_write(struct fsfile *f, const void *buf, int amt, sqlite3_int64 off)
{
	uint8_t hdr[WAL_FRAME_HEADER_BYTES], bind[BIND_BYTES];
	sqlite3_int64 rel = off - WAL_HEADER_BYTES, within;
	int rc;

	if (off + amt <= WAL_HEADER_BYTES) {
		/* A new generation's header: its salts are this file's now. */
		if (off == 0 && amt == WAL_HEADER_BYTES) {
			memcpy(f->salts, (const uint8_t *)buf + WAL_HEADER_SALTS, SALT_BYTES);
			f->have_salts = 1;
		}
		return f->real->pMethods->xWrite(f->real, buf, amt, off);
	}
	if (rel < 0)
		return WAL_WRITE_UNEXPECTED;
	within = rel % WAL_FRAME_BYTES;
	if (in_frame_header(within, amt)) {
		/* Remember a whole header: the page that follows is bound to it. */
		if (within == 0 && amt == WAL_FRAME_HEADER_BYTES) {
			memcpy(f->hdr, buf, WAL_FRAME_HEADER_BYTES);
			f->hdr_off = off;
		} else if (f->hdr_off == off - within) {
			f->hdr_off = -1;
		}
		return f->real->pMethods->xWrite(f->real, buf, amt, off);
	}
	if (within == WAL_FRAME_HEADER_BYTES && amt == FSVFS_PAGE_SIZE) {
		rc = frame_header(f, off - WAL_FRAME_HEADER_BYTES, hdr);
		if (rc == SQLITE_OK)
			rc = wal_bind(f, hdr, bind);
		if (rc != SQLITE_OK)
			return rc;
		return write_sealed(f, (uint64_t)(rel / WAL_FRAME_BYTES) + 1, bind, buf, off);
	}
	return WAL_WRITE_UNEXPECTED;
}

static int fs_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
	struct fsfile *f = (struct fsfile *)file;
	int rc = SQLITE_IOERR_WRITE;

	if (f->kind == 'D') {
		if (amt == FSVFS_PAGE_SIZE && off % FSVFS_PAGE_SIZE == 0)
			return write_sealed(f, (uint64_t)(off / FSVFS_PAGE_SIZE) + 1, NULL, buf,
					    off);
	} else {
		rc = wal_write(f, buf, amt, off);
		if (rc != WAL_WRITE_UNEXPECTED)
			return rc;
		rc = SQLITE_IOERR_WRITE;
	}
	if (!f->vfs->fault[0])
		set_fault(f->vfs, "%s: unexpected write of %d bytes at %lld (page size must be %d)",
			  f->path, amt, (long long)off, FSVFS_PAGE_SIZE);
	return rc;
}

static int fs_close(sqlite3_file *file)
{
	struct fsfile *f = (struct fsfile *)file;
	int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;

	if (f->scratch) {
		sodium_memzero(f->scratch, SCRATCH_BYTES);
		sqlite3_free(f->scratch);
		f->scratch = NULL;
	}
	return rc;
}

/* The rest hand the call to the real file unchanged. */
#define REAL(file) (((struct fsfile *)(file))->real)

static int fs_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	((struct fsfile *)file)->hdr_off = -1; /* the cached header may be gone */
	((struct fsfile *)file)->have_salts = 0;
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
	int rc = REAL(file)->pMethods->xShmMap(REAL(file), pg, pgsz, extend, pp);

	/* Region 0 begins with the wal-index header (wal_salts()). */
	if (rc == SQLITE_OK && pg == 0 && *pp)
		((struct fsfile *)file)->shm0 = *pp;
	return rc;
}

/* wal.c: WAL_RECOVER_LOCK is slot 2, held exclusively only while a
 * connection recovers the WAL into a new wal-index. */
#define SHM_RECOVER_SLOT 2

static int fs_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	struct fsfile *f = (struct fsfile *)file;
	int rc = REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);

	if (rc == SQLITE_OK && offset <= SHM_RECOVER_SLOT && SHM_RECOVER_SLOT < offset + n) {
		if (flags == (SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE))
			f->vfs->recovering = 1;
		else if (flags & SQLITE_SHM_UNLOCK)
			f->vfs->recovering = 0;
	}
	return rc;
}

static void fs_shm_barrier(sqlite3_file *file)
{
	REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int fs_shm_unmap(sqlite3_file *file, int delete_flag)
{
	((struct fsfile *)file)->shm0 = NULL;
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
	f->hdr_off = -1;
	f->real = (sqlite3_file *)((char *)file + ((sizeof(struct fsfile) + 7) & ~(size_t)7));
	if (flags & SQLITE_OPEN_MAIN_DB) {
		f->kind = 'D';
	} else if (flags & SQLITE_OPEN_WAL) {
		sqlite3_file *db = name ? sqlite3_database_file_object(name) : NULL;

		f->kind = 'W';
		if (db && db->pMethods == &fs_io_methods)
			f->db = (struct fsfile *)db;
	} else {
		/* A rollback journal or a temporary file would hold pages in
		 * the clear; the store never needs one (WAL, temp_store=MEMORY). */
		set_fault(v, "%s: refusing to open a journal or temporary file (flags 0x%x)",
			  f->path, (unsigned)flags);
		return SQLITE_CANTOPEN;
	}
	f->scratch = sqlite3_malloc(SCRATCH_BYTES);
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
	(void)pthread_once(&fork_once, fork_watch);
	randombytes_buf(v->nonce_prefix, sizeof(v->nonce_prefix));
	atomic_init(&v->nonce_next, 0);
	v->nonce_forks = atomic_load(&fork_count);
	memcpy(v->dbid, db_id, FSVFS_DBID_BYTES);
	snprintf(v->name, sizeof(v->name), "fieldsync-%p", (void *)v);
	v->under = under;
	v->base = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile =
			(int)(((sizeof(struct fsfile) + 7) & ~(size_t)7) + (size_t)under->szOsFile),
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
