/* hqhistory.h - hold HQ to its audit history.
 *
 * HQ sends its latest signed audit checkpoint (sync/note.h) with every
 * receipt and every down-set (agent/pull.c).  The device keeps the newest one it has checked, in
 * the store's meta table (key hq_checkpoint), and accepts a newer one only with an RFC 6962
 * consistency proof from HQ (POST /v1/audit/consistency) showing that the new tree extends the old.
 * So an HQ that rewrites, truncates or forks its log after a device saw a checkpoint is caught by
 * that device the next time it talks to HQ, and loudly: -FS_EAUTH with "HQ's audit history was
 * rewritten".  A checkpoint older than the one held (two answers checked in the other order) is no
 * alarm when HQ proves both are prefixes of its log now.
 *
 * Errors: -FS_EAUTH (bad signature, inconsistent history), -EPROTO (HQ
 * answered nonsense), transport and store errors as push.h.  Not
 * thread-safe per store.
 */
#ifndef FS_HQHISTORY_H
#define FS_HQHISTORY_H

#include <stdint.h>

#include "agent/hqlink.h"
#include "agent/store.h"

/* What the device holds and what it checked. */
struct hqhistory_result {
	uint64_t old_size; /* the checkpoint held before; 0: none */
	uint64_t new_size; /* the checkpoint held now */
	int checked;	   /* a consistency proof was verified */
	int has_time;	   /* verify: HQ said its time (hq_time) */
	int64_t skew_ms;   /* then: this device's clock minus HQ's */
};

/* A checkpoint note that came with a receipt or a down-set: verify its signature,
 * and if it is newer than the one held, check consistency with HQ and
 * keep it.  note NULL: nothing to do. */
int hqhistory_observe(struct store *s, const struct hqlink_target *tg, struct hqlink *t,
		      const char *note, struct hqhistory_result *res, struct fs_error *err) FS_WUR;

/* `status --verify-hq`: ask HQ for its latest checkpoint and a proof
 * from the one held; verify and keep it. */
int hqhistory_verify(struct store *s, const struct hqlink_target *tg, struct hqlink *t,
		     struct hqhistory_result *res, struct fs_error *err) FS_WUR;

#endif
