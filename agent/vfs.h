/* vfs.h - an encrypting SQLite VFS shim.
 *
 * Every page of the main database and of its WAL is sealed with
 * XChaCha20-Poly1305 under a page key derived from the store's data key.
 * A page on disk is
 *
 *   ciphertext (FSVFS_PAGE_SIZE - 40) || nonce (24) || tag (16)
 *
 * where the last 40 bytes are SQLite's per-page reserved space, set with
 * SQLITE_FCNTL_RESERVE_BYTES before the first write, so SQLite never puts
 * data there.  The nonce is new for every write: a random prefix drawn
 * per fsvfs (and again in a forked child) and a counter, so no system
 * call per page (docs/SECURITY.md, "Page nonces").  The associated data
 * binds the page to its place:
 *
 *   db_id (16) || file kind ('D' database, 'W' WAL) || number (8, BE)
 *
 * where number is the page number in the database file and the frame
 * number in the WAL.  A wrong key, a flipped byte, a page moved to
 * another place or a page from another store fails authentication; the
 * read returns SQLITE_IOERR_DATA and the VFS remembers which file and
 * page (fsvfs_last_fault) so the caller can say so.
 *
 * Reads hand SQLite the plaintext with the reserved bytes zeroed, and
 * writes require them to be zero: SQLite checksums WAL frames over the
 * page as it holds it in memory, so what we return must equal what it
 * gave us, bit for bit, or WAL recovery after a crash would stop at the
 * first frame and drop later commits.
 *
 * In the clear remain only the WAL header and frame headers (page
 * numbers, salts and SQLite's frame checksums) and the -shm index; see
 * docs/SECURITY.md.  Rollback journals and temporary files are refused:
 * the store runs in WAL mode with temp_store=MEMORY, and xFetch is not
 * offered, so mmap can never bypass decryption.
 *
 * WAL salts are read from the WAL header once per connection and kept
 * while the wal-index header agrees, and a committed frame is read with
 * its header in one read: a page that misses SQLite's cache costs one
 * pread and one open, as in the database file.
 *
 * Ownership and threads: one fsvfs per open store; it copies the key into
 * secure memory.  Every database opened through it must be closed before
 * fsvfs_destroy().  A store handle is used by one thread at a time, and
 * the fault record is per fsvfs.
 */
#ifndef FS_VFS_H
#define FS_VFS_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "crypto/aead.h"
#include "crypto/fserr.h"

#define FSVFS_PAGE_SIZE 4096
#define FSVFS_RESERVE (AEAD_NONCEBYTES + AEAD_TAGBYTES)
#define FSVFS_DBID_BYTES 16

struct fsvfs;

/* Register a new VFS over under (NULL: the default VFS) that encrypts
 * with a page key derived from data_key.  *ret_vfs written on success. */
int fsvfs_create(const uint8_t data_key[AEAD_KEYBYTES], const uint8_t db_id[FSVFS_DBID_BYTES],
		 sqlite3_vfs *under, struct fsvfs **ret_vfs) FS_WUR;

/* The name to pass to sqlite3_open_v2(). */
const char *fsvfs_name(const struct fsvfs *v);

/* Unregister, wipe the key, free.  NULL-safe; returns NULL. */
struct fsvfs *fsvfs_destroy(struct fsvfs *v);

/* The last integrity or layout fault, as "FILE page N: why", or NULL. */
const char *fsvfs_last_fault(const struct fsvfs *v);
void fsvfs_clear_fault(struct fsvfs *v);

#endif
