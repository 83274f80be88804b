/* faultvfs.h - a SQLite VFS that fails or dies on purpose, for tests.
 *
 * It sits over SQLite's default VFS and, as store_options.under_vfs,
 * below the store's encryption VFS: what it breaks is ciphertext on its
 * way to the disk, as a disk would.  An armed plan makes it
 *   - fail the Nth write, sync or truncate (counted from the arming, from
 *     1) once, or every write, sync and truncate after it (sticky); a
 *     failed write returns plan.write_error (SQLITE_FULL: a full disk),
 *     SQLITE_IOERR_WRITE by default;
 *   - or die at the Nth write or sync: SIGKILL, a torn write (a random
 *     prefix written first), or a power cut (writes since each file's
 *     last sync are lost, all or each with even odds, then SIGKILL).
 * An unarmed VFS (or an empty plan) passes everything through.
 * tests/tools/crashloop.c drives it in forked children; unit tests (the
 * fstest runner forks per test) arm one fault.
 *
 * One per process, not thread-safe: one connection's calls at a time.
 */
#ifndef FS_TEST_FAULTVFS_H
#define FS_TEST_FAULTVFS_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#define FAULTVFS_NAME "fieldsync-fault"
/* Bytes of one truncation a power cut can undo. */
#define FAULTVFS_UNDO_MAX (16 << 20)

enum faultvfs_death { FAULTVFS_LIVE, FAULTVFS_KILL, FAULTVFS_TORN, FAULTVFS_POWERCUT };

struct faultvfs_plan {
	unsigned long fail_write_at; /* the write to fail (0: none) */
	unsigned long fail_sync_at;  /* the sync to fail */
	unsigned long fail_trunc_at; /* the truncate to fail */
	int sticky;		     /* after the first failure, fail all of them */
	int write_error;	     /* what a failed write returns (0: SQLITE_IOERR_WRITE) */
	unsigned long die_at_write;  /* die at this write ... */
	unsigned long die_at_sync;   /* ... or this sync */
	enum faultvfs_death how;
	uint64_t seed; /* torn lengths and lost writes */
};

/* What happened since the arming. */
struct faultvfs_state {
	unsigned long writes, syncs, truncs;
	int failed;  /* a fault was injected */
	int failing; /* sticky: every write, sync and truncate fails now */
};

/* The VFS, registered (not as the default) on the first call; NULL when
 * the default VFS is too old to stack on. */
sqlite3_vfs *faultvfs(void);
/* Arm plan; the counters start again. */
void faultvfs_arm(const struct faultvfs_plan *plan);
const struct faultvfs_state *faultvfs_state(void);
/* fn gets a line for each fault ("F write 7", "K sync 3", ...); NULL:
 * none.  It may be called just before the process dies. */
void faultvfs_watch(void (*fn)(const char *fmt, ...));
/* The power-cut model puts back a 300 KiB tail whole through the real
 * VFS, in dir; 0, or -1 with a message on stderr. */
int faultvfs_model_selftest(const char *dir);

/* splitmix64: small, seedable, good enough to pick faults. */
static inline uint64_t faultvfs_rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static inline unsigned long faultvfs_rng_below(uint64_t *state, unsigned long n)
{
	return (unsigned long)(faultvfs_rng_next(state) % n);
}

#endif
