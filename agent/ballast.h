/* ballast.h - disk room the store keeps so that what it recorded can
 * always be delivered.
 *
 * A field laptop's disk fills up.  Every record the device said OK to must
 * still reach HQ, and that needs a little disk: storing HQ's receipt,
 * packing the next change set and checkpointing the WAL all write.  So the
 * data directory holds store.ballast, a file of zeros whose blocks are
 * allocated (posix_fallocate), of ballast_target() bytes:
 *
 *   - local writes (records, imports) begin only with the ballast whole
 *     (ballast_hold), so a full disk stops them while the ballast is still
 *     there;
 *   - the sync path, meeting a full disk, drops the ballast
 *     (ballast_drop): truncates it to 0 and holds an exclusive flock(2) on
 *     it, so the room it freed goes to receipts and packing, not to the
 *     next local write, in this process or another;
 *   - when its attempt ends, ballast_restore() allocates the ballast
 *     again as far as the disk allows and lets go of the lock.  A ballast
 *     left short refuses local writes until the disk has room for it.
 *
 * The file holds zeros only: nothing in it is secret.  Its size is the
 * configured size, capped at an eighth of the file system, so a small
 * disk is not all ballast.
 *
 * Pages committed to the WAL must be copied into the database before the
 * WAL's room comes back, and that copy grows the database.  So the store
 * checkpoints its WAL before it holds half the ballast (store.c), and the
 * ballast always covers the last checkpoint with room to spare.
 *
 * Errors: -ENOSPC ("the disk is full ..."), -EROFS, -EIO with err naming
 * the file and the reason; never logs.  One struct ballast per store
 * connection, used by one thread at a time; two of them on one data
 * directory (the agent's two connections, or two processes) coordinate
 * through the lock.
 */
#ifndef FS_BALLAST_H
#define FS_BALLAST_H

#include <stdint.h>

#include "crypto/fserr.h"

#define BALLAST_FILE "store.ballast"
#define BALLAST_DEFAULT_BYTES (8u * 1024 * 1024)
#define BALLAST_DISK_FRACTION 8 /* at most 1/8 of the file system */

struct ballast;

/* Nothing is opened or written yet; the file is made by the first
 * ballast_hold().  bytes 0: BALLAST_DEFAULT_BYTES. */
int ballast_new(const char *data_dir, uint64_t bytes, struct ballast **ret,
		struct fs_error *err) FS_WUR;

/* Unlocks and closes; the file stays.  NULL-safe; returns NULL. */
struct ballast *ballast_free(struct ballast *b);

/* The size the ballast should have on this disk (it need not exist). */
uint64_t ballast_size(const struct ballast *b);

/* Before a local write: make the ballast whole.  -ENOSPC when the disk
 * has no room for it, or while a sync path has dropped it. */
int ballast_hold(struct ballast *b, struct fs_error *err) FS_WUR;

/* The sync path met a full disk: free the ballast's room for it, until
 * ballast_restore().  May wait for another sync path that dropped it. */
int ballast_drop(struct ballast *b, struct fs_error *err) FS_WUR;

/* Allocate the ballast again as far as the disk allows (best effort) and
 * release the lock; a no-op unless this ballast was dropped. */
void ballast_restore(struct ballast *b);

struct ballast_state {
	uint64_t target;    /* bytes it should have */
	uint64_t held;	    /* bytes it has */
	uint64_t disk_free; /* bytes free for an unprivileged user */
	int in_use;	    /* a sync path has dropped it right now */
};

int ballast_state(struct ballast *b, struct ballast_state *ret, struct fs_error *err) FS_WUR;

#endif
