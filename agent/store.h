/* store.h - the encrypted local store of a field device.
 *
 * A data directory holds:
 *
 *   store.key   the wrapped data key (keystore.h), mode 0600
 *   device.key  the device identity, sealed under the data key, mode 0600
 *   store.db    SQLite database, every page encrypted (vfs.h), with its
 *               -wal and -shm while open
 *   store.ballast  zeros: disk room kept so that what was recorded can
 *               still be delivered on a full disk (ballast.h)
 *
 * The database runs with journal_mode=WAL, synchronous=FULL,
 * temp_store=MEMORY and mmap_size=0; page size and reserved bytes are
 * checked on every open.  Schema changes are versioned by user_version.
 *
 * Errors: every function fills err with the file and the reason; an
 * integrity failure names the page (from the VFS).  A store handle is
 * used by one thread at a time.
 */
#ifndef FS_STORE_H
#define FS_STORE_H

#include <sqlite3.h>

#include "agent/keystore.h"
#include "crypto/identity.h"
#include "sync/hlc.h"

#define STORE_SCHEMA_VERSION 7

/* The outbox rows HQ has not signed for: the unpacked ones, and those of
 * a change set without a receipt.  Queries take the two halves apart
 * (they are disjoint) and add or compare the results; each half is a
 * search of outbox_by_changeset.  Written as one OR, SQLite collects the
 * rowid of every match in memory to drop duplicates: 9.7 MiB of a
 * pushing agent's heap at 400,000 pending changes, for each status. */
#define STORE_OUTBOX_UNPACKED "changeset IS NULL"
#define STORE_OUTBOX_UNACKED "changeset IN (SELECT seq FROM outgoing WHERE receipt IS NULL)"

struct store;

/* Options for tests and tools; zero-initialise for the defaults. */
struct store_options {
	sqlite3_vfs *under_vfs;	   /* VFS below the encryption (NULL: default) */
	uint64_t (*wall_ms)(void); /* clock for HLC and ids (NULL: hlc_wall_ms) */
	uint64_t ballast_bytes;	   /* disk room kept for delivery (0: default,
				      agent/ballast.h) */
	unsigned cache_mib;	   /* SQLite's page cache per connection (0:
				      STORE_DEFAULT_CACHE_MIB) */
};

/* Every page that misses SQLite's page cache is read and decrypted
 * (about 4 us for a 4 KiB page here, against 0.7 us to read it), so the
 * cache is larger than SQLite's 2 MiB.  bench_store's mixed phase over
 * a field laptop's store (20,000 visits, 33 MiB) took 5.05 s at 2 MiB,
 * 4.61 s at 8, 4.48 s at 16 and 3.97 s at 32 (plain SQLite 3.0 to 3.2 s
 * at each).  8 MiB takes most of the gain of 16 within the agent's
 * memory budget; the cache grows only as pages are used. */
#define STORE_DEFAULT_CACHE_MIB 8
#define STORE_MAX_CACHE_MIB 1024
/* The agent's worker connection pushes, pulls and imports: it reads and
 * writes in sequence, where a cache buys little, and its pages would
 * count against the push's memory (issue 18: 2 MiB there kept a push of
 * 100,000 visits at about 30 MiB, 16 MiB took it to 60). */
#define STORE_WORKER_CACHE_MIB 2

/* Create data_dir (mode 0700) if needed, the key envelope, the device
 * identity and an empty store.  -FS_EEXIST if a store is already there. */
int store_create(const char *data_dir, const struct keystore_secret *secret,
		 enum pwhash_profile profile, const struct store_options *opt,
		 struct fs_error *err) FS_WUR;

int store_open(const char *data_dir, const struct keystore_secret *secret,
	       const struct store_options *opt, struct store **ret_store,
	       struct fs_error *err) FS_WUR;

/* A second connection to the store from, for another thread: same key
 * (kept in secure memory by the open store, so no passphrase or Argon2id
 * again), its own SQLite connection, VFS and identity copy.  Options
 * other than the clock are the defaults. */
int store_reopen(const struct store *from, struct store **ret_store, struct fs_error *err) FS_WUR;

/* Close; NULL-safe; returns NULL.  Rolls back an open transaction.  Wipes
 * the data key. */
struct store *store_close(struct store *s);

/* Crypto-shred the store: overwrite store.key (the only copy of the
 * wrapped data key) with random bytes, sync it, and remove it.  store.db
 * and device.key stay, unreadable without it.  The store must be closed. */
int store_shred_key(const char *data_dir, struct fs_error *err) FS_WUR;

/* Whether secret unwraps the store's data key: 0, -FS_EKEY when it does
 * not, or why it could not tell.  Nothing is opened for use; the agent
 * asks this of a person who unlocks the field app when the store is
 * already open. */
int store_check_secret(const char *data_dir, const struct keystore_secret *secret,
		       struct fs_error *err) FS_WUR;

/* Re-wrap the data key; the database is not touched. */
int store_passwd(const char *data_dir, const struct keystore_secret *old_secret,
		 const struct keystore_secret *new_secret, enum pwhash_profile profile,
		 struct fs_error *err) FS_WUR;

sqlite3 *store_db(struct store *s);
const struct identity *store_identity(const struct store *s);
const char *store_path(const struct store *s);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK.  Commit persists the HLC. */
int store_begin(struct store *s, struct fs_error *err) FS_WUR;
int store_commit(struct store *s, struct fs_error *err) FS_WUR;
void store_rollback(struct store *s);

/* BEGIN for a local write (a record, an import): only while the disk
 * room kept for delivery is whole (agent/ballast.h), else -ENOSPC saying
 * the disk is full.  Writes of the sync path use store_begin(). */
int store_begin_local(struct store *s, struct fs_error *err) FS_WUR;

/* The sync path met a full disk: take the room kept for it, until
 * store_room_give_back() (which puts back what fits).  While taken, local
 * writes in any connection get -ENOSPC. */
int store_room_take(struct store *s, struct fs_error *err) FS_WUR;
void store_room_give_back(struct store *s);
struct ballast_state;
int store_room_state(struct store *s, struct ballast_state *ret, struct fs_error *err) FS_WUR;

/* Checkpoint the WAL into the database and truncate it to zero bytes, so
 * that its room goes back to the disk; outside a transaction.  -EBUSY
 * when another connection is reading or writing. */
int store_checkpoint(struct store *s, struct fs_error *err) FS_WUR;

/* Next HLC for a local write; only inside a transaction. */
hlc_t store_hlc_next(struct store *s);
/* Move the clock to at least physical_ms (HQ's signed time of a receipt);
 * only inside a transaction.  A device whose wall clock is behind then
 * orders its next writes after everything HQ had accepted, instead of
 * years in the past. */
void store_hlc_observe(struct store *s, uint64_t physical_ms);
/* The clock's physical part (Unix ms); only inside a transaction. */
uint64_t store_hlc_physical_ms(const struct store *s);
/* Set the clock back to physical_ms; only inside a transaction.  Only for
 * a clock that ran far ahead of HQ's because the wall clock was wrong, and
 * only once the wall clock is right again (agent/push.c): the changes it
 * stamped ahead are quarantined at HQ, and without this every later change
 * would be too, until real time caught up. */
void store_hlc_rewind(struct store *s, uint64_t physical_ms);
uint64_t store_wall_ms(const struct store *s);

/* A cached prepared statement for slot (0..STORE_STMT_SLOTS-1), reset
 * and with bindings cleared.  sql must be the same for a slot always.
 * Slots by module: records 2..8, pack 16..19 and 30, push 20..23, 29
 * and 31, enroll and synclog 24..28, pull 32..43, devforms 44..46, push 47, caseload 48..52,
 * drafts 53..58. */
#define STORE_STMT_SLOTS 59
int store_stmt(struct store *s, int slot, const char *sql, sqlite3_stmt **ret_stmt,
	       struct fs_error *err) FS_WUR;

/* Turn a failed SQLite call into an fs_error naming the store, what was
 * being done, and the page when the VFS saw an integrity failure. */
int store_fail(struct store *s, const char *what, struct fs_error *err);

/* The schema, and the connection setup every store connection gets: for
 * a new database the page size, reserved bytes and WAL mode, then the
 * pragmas.  Exported so that the benchmark's plain-SQLite baseline is
 * built exactly like the store.  store_setup_connection returns an
 * SQLite result code. */
extern const char store_schema_sql[];
int store_setup_connection(sqlite3 *db, int create);
/* SQLite's page cache of db: mib MiB (an SQLite result code). */
int store_cache_size(sqlite3 *db, unsigned mib);
/* The same for an open store (its store_reopen() copies keep it). */
int store_set_cache(struct store *s, unsigned mib, struct fs_error *err) FS_WUR;
/* Give back the pages of s's cache no statement holds (they are read
 * and decrypted again when next needed); NULL-safe.  For a connection
 * that will sit idle, outside a transaction. */
void store_release_memory(struct store *s);

/* The meta table: the enrolment (agent/enroll.h), HQ's latest checkpoint
 * (agent/hqhistory.h), the clock skew (agent/push.h) and the HLC.  get:
 * *ret_found 0 when absent; a value that does not fit cap is
 * -FS_ECORRUPT.  put: insert or replace; the caller holds the transaction
 * if it needs one. */
int store_meta_get(struct store *s, const char *key, char *out, size_t cap, int *ret_found,
		   struct fs_error *err) FS_WUR;
int store_meta_put(struct store *s, const char *key, const char *value,
		   struct fs_error *err) FS_WUR;

/* PRAGMA integrity_check, and every live record has outbox changes and
 * every outbox change a record.  -FS_ECORRUPT with the first problem. */
int store_check(struct store *s, struct fs_error *err) FS_WUR;

#endif
