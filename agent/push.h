/* push.h - send packed change sets to HQ and keep HQ's signed receipts.
 *
 * It speaks to HQ through agent/hqlink.h (the transport seam, libcurl
 * and HQ's answers), and measures the clock against HQ's through
 * agent/skew.h.
 *
 * push_pending() sends every change set in outgoing that has no receipt,
 * in sequence order, to URL/v1/changesets (docs/PROTOCOL.md).  A receipt
 * is kept only when it verifies with the HQ key pinned at enrolment and
 * names this device, the set's sequence and its hash; receipt and
 * acknowledgement time are then written in one transaction.  Nothing is
 * deleted.  When HQ answers 409 sequence_gap with an expected sequence
 * below ours (HQ lost sets it had acknowledged) and we still hold that
 * set, pushing resumes from there.
 *
 * Errors (err names the URL or the set and the reason; never a field
 * value, a key or the token):
 *   -EHOSTUNREACH  HQ unreachable: connection, name resolution, timeout
 *   -EBUSY         HQ overloaded (503); retry later
 *   -EPROTO        HQ answered something this protocol does not allow
 *   -FS_EKEY       the TLS pin or certificate does not match
 *   -FS_EAUTH      a receipt that does not verify or is for another set
 *   -EACCES        HQ revoked this device (403); the message says "revoked"
 *   -EPERM         HQ does not accept this device (401)
 *   -EBADMSG       HQ refused a set (400, 409) or a sequence HQ expects
 *                  that we cannot send
 *   -FS_ELIMIT     HQ refused a set as too large, or an oversized answer
 *   -ECANCELED     the transport's cancel flag was raised
 *   store errors as store_fail().
 * Not thread-safe: one store, one transport, one thread.
 */
#ifndef FS_PUSH_H
#define FS_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "agent/hqlink.h"
#include "agent/store.h"
#include "crypto/fserr.h"

#define PUSH_CHANGESET_TYPE "application/vnd.fieldsync.changeset"

/* Totals, updated as each set is acknowledged (also when a later set
 * fails, so a caller can report what did get through). */
struct push_stats {
	unsigned long long sets;	/* change sets acknowledged now */
	unsigned long long changes;	/* changes in those sets */
	unsigned long long quarantined; /* changes HQ's receipts quarantined */
	unsigned long long bytes;	/* request bytes of those sets */
	long retry_after;		/* with -EBUSY: HQ's Retry-After, s */
	int clock_checked;		/* HQ said its time in an answer */
	int64_t clock_skew_ms;		/* then: this device's clock minus HQ's */
};

/* Called after each acknowledged set: done of total sets pending at start. */
typedef void (*push_progress_fn)(unsigned long long done, unsigned long long total, void *ctx);

int push_pending(struct store *s, const struct hqlink_target *target, struct hqlink *t,
		 push_progress_fn progress, void *ctx, struct push_stats *stats,
		 struct fs_error *err) FS_WUR;

/* Make room on a full disk: forget the bodies of the sets HQ has
 * acknowledged, keeping their sequence, hash and receipt (the chain and
 * the proof of delivery).  Only should HQ lose sets it had acknowledged
 * can they then not be sent again; push_pending() says so.  One
 * transaction. */
int push_drop_acked(struct store *s, struct fs_error *err) FS_WUR;

/* Sets without a receipt, and sets acknowledged. */
int push_count(struct store *s, unsigned long long *ret_pending, unsigned long long *ret_acked,
	       struct fs_error *err) FS_WUR;

/* Changes HQ has not acknowledged (packed or not) and their bytes: the
 * size of their change sets, or of their text while still unpacked. */
int push_backlog(struct store *s, unsigned long long *ret_changes, unsigned long long *ret_bytes,
		 struct fs_error *err) FS_WUR;

/* When the oldest change HQ has not acknowledged was made (its HLC's
 * physical time, Unix ms), or 0 when there is none. */
int push_oldest_unsent(struct store *s, uint64_t *ret_ms, struct fs_error *err) FS_WUR;

#endif
