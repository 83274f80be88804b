/* pull.h - two-way sync on the device: take HQ's down-sets and merge
 * them into the store.
 *
 * pull_run() asks HQ (POST URL/v1/pull, docs/PROTOCOL.md "Down-set")
 * for the down-set after the last one applied, checks the audit
 * checkpoint that comes with it (agent/hqhistory.h: -FS_EAUTH, nothing
 * applied, when HQ rewrote its history), applies it, and asks again
 * while HQ says it holds more.  pull_apply() applies one, in one
 * transaction, or nothing:
 *   - it must be signed by the HQ key pinned at enrolment, name this
 *     device, and follow the last applied down-set in sequence and hash;
 *     otherwise -FS_EAUTH or -EBADMSG and the store is unchanged
 *     (-EALREADY when another pull on the store applied it first:
 *     pull_run then asks again from there);
 *   - each field takes HQ's value when HQ's write is later by the merge
 *     rule, per field (HLC, then device) than what the store holds: a
 *     value pulled before (field_clocks) or this device's own write (its
 *     outbox).  Unsent local changes are never dropped or reordered:
 *     they stay in the outbox and go to HQ, which merges them by the same
 *     rule.  There is no reset.  A field whose latest local write HQ's
 *     receipt quarantined takes HQ's value, which HQ sends again, at any
 *     clock (agent/push.c marks those writes);
 *   - the conflicts HQ decided are kept (hq_conflicts), values included,
 *     for `fieldsync conflicts`; they never reach a log;
 *   - HQ's form definitions are kept (agent/devforms.h) and validate
 *     every later write; one that is not a valid form of its collection
 *     refuses the whole down-set (-FS_EFORMAT);
 *   - when the scope changed, or a record's scope field did, every record
 *     is placed by the scope rule (sync/scoperule.h) and those outside
 *     the scope are purged, unless they have changes HQ has not yet
 *     acknowledged: the rows go, and secure_delete overwrites them.
 * The store's clock moves past every HLC applied, so later local edits
 * order after what HQ had.
 *
 * Errors as push.h (-EHOSTUNREACH, -EBUSY, -EPROTO, -FS_EKEY, -EACCES,
 * -EPERM), and -EBADMSG when HQ and the device disagree about the chain
 * (409), -FS_EAUTH for a down-set that does not verify or open.  Never a
 * field value in a message.  Not thread-safe: one store, one thread.
 */
#ifndef FS_PULL_H
#define FS_PULL_H

#include <stddef.h>
#include <stdint.h>

#include "agent/enroll.h"
#include "agent/hqlink.h"
#include "agent/store.h"
#include "crypto/fserr.h"

#define PULL_TYPE "application/vnd.fieldsync.pull"

struct pull_stats {
	unsigned long long sets;      /* down-sets applied */
	unsigned long long changes;   /* field values HQ sent */
	unsigned long long applied;   /* of those, taken (HQ's write was later) */
	unsigned long long conflicts; /* conflicts HQ sent */
	unsigned long long forms;     /* form definitions HQ sent */
	unsigned long long purged;    /* records that left the scope */
	unsigned long long bytes;     /* down-set bytes */
};

/* forms_dir: the device's own form definitions (NULL: built in), for the
 * scope rule of collections HQ has sent no form for. */
int pull_apply(struct store *s, const struct enrolment *en, const char *forms_dir,
	       const uint8_t *buf, size_t len, struct pull_stats *st, struct fs_error *err) FS_WUR;

int pull_run(struct store *s, const struct enrolment *en, const char *forms_dir, struct hqlink *t,
	     struct pull_stats *st, struct fs_error *err) FS_WUR;

/* The conflicts HQ decided on records in this device's scope, as JSON
 * objects {record, field, device_a, hlc_a, value_a, device_b, hlc_b,
 * value_b, winner, superseded}, b being the later write, which HQ kept;
 * superseded when the field holds a write later than both (HQ's
 * resolution, or an edit since); fn's non-zero
 * return stops the walk and is returned.  Values are personal data: for
 * the person at this device, never for a log. */
typedef int (*pull_conflict_fn)(const cJSON *conflict, void *ctx);
int pull_conflicts(struct store *s, pull_conflict_fn fn, void *ctx, struct fs_error *err) FS_WUR;

/* For status: the last down-set applied (0: none), when (Unix ms, 0:
 * never), and the scope it carried (a JSON array text, "" before the
 * first). */
/* The longest scope as JSON: DOWNSET_MAX_SCOPE names of
 * DOWNSET_MAX_SCOPE_NAME bytes, each byte at most two when escaped
 * (control characters are refused), quoted, with commas. */
#define PULL_SCOPE_MAX 32768
struct pull_state {
	uint64_t seq;
	uint64_t at_ms;
	char scope[PULL_SCOPE_MAX];
};
int pull_state(struct store *s, struct pull_state *ret, struct fs_error *err) FS_WUR;

#endif
