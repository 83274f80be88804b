/* pack.h - pack the outbox into signed, sealed change sets.
 *
 * pack_outbox() takes the oldest outbox changes that are in no change set
 * yet (outbox.changeset IS NULL, in outbox order) and turns them into
 * change sets (sync/changeset.h) for this device's chain:
 *
 *   device = hex-decoded store_identity()->id
 *   seq    = last outgoing.seq + 1 (1 for the first set)
 *   prev   = outgoing.hash of seq - 1 (zeros for seq 1)
 *
 * Each set is built and recorded in one store transaction: the set is
 * inserted into outgoing and its changes' outbox.changeset is set to its
 * seq.  A crash at any point therefore leaves either the whole set packed
 * or none of it, the chain contiguous, and every change in at most one
 * set.  Outbox rows are never deleted.
 *
 * Bounds: a set holds at most max_changes changes (0: PACK_DEFAULT_CHANGES,
 * capped at CHANGESET_MAX_CHANGES), and stops growing once the estimated
 * uncompressed payload passes max_bytes (0: PACK_DEFAULT_BYTES).  Should
 * the sealed encoding still exceed CHANGESET_MAX_BYTES, the set is halved
 * until it fits.
 *
 * Errors: -FS_EUSAGE when called inside a transaction, -FS_ECORRUPT for an
 * outbox row that cannot be encoded (a bad id, name or JSON value; the
 * message names the outbox row, never the value), store errors as
 * store_fail().  Sets packed before an error stay packed.  Not
 * thread-safe: one store handle, one thread.
 */
#ifndef FS_PACK_H
#define FS_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "agent/store.h"
#include "crypto/fserr.h"

#define PACK_DEFAULT_CHANGES 1000
#define PACK_DEFAULT_BYTES (4 * 1024 * 1024)

/* Pack every unpacked outbox change.  *ret_sets_made (may be NULL) is the
 * number of new sets, written on success. */
int pack_outbox(struct store *s, const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
		size_t max_changes, size_t max_bytes, unsigned long long *ret_sets_made,
		struct fs_error *err) FS_WUR;

/* Pack at most one set: *ret_made 1 when one was made, 0 when the outbox
 * has nothing left to pack.  The agent packs this way, one set ahead of
 * the push, so that while HQ is away pending changes are not stored a
 * second time in sets (and a full disk still has room to deliver them). */
int pack_next(struct store *s, const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
	      size_t max_changes, size_t max_bytes, int *ret_made, struct fs_error *err) FS_WUR;

/* Outbox changes in no set yet. */
int pack_unpacked(struct store *s, unsigned long long *ret_changes, struct fs_error *err) FS_WUR;

/* The version sets are written in: the highest this agent writes (5,
 * rows by column; 4, rows grouped by record) that HQ's last answer to a
 * change set named as "changeset_version", else 3, which every HQ reads
 * (docs/PROTOCOL.md).  An HQ from before version 4 names none, and
 * refuses version 4 and 5 sets.  pack_follow_hq
 * takes named, the answer's value (0 when it had none), and keeps the
 * choice in meta PACK_META_CHANGESET_VERSION when it changes, inside
 * the caller's transaction.  A set already packed keeps its version. */
#define PACK_META_CHANGESET_VERSION "hq_changeset_version"
int pack_follow_hq(struct store *s, double named, struct fs_error *err) FS_WUR;

#endif
