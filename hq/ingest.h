/* ingest.h - accept one change set at HQ: check it, merge it, sign a
 * receipt, all in one transaction.
 *
 * ingest_changeset() follows docs/PROTOCOL.md, "POST /v1/changesets":
 * shape, device (unknown 401, revoked 403), signature (401), duplicate
 * (same device, sequence and hash: the stored receipt again, 200; same
 * sequence, other hash: 409), sequence (409 with the expected number),
 * chain (409), seal and payload (400).  Each change is then either
 * quarantined with a reason (unknown collection, invalid field, HLC more
 * than HLC_MAX_FUTURE_MS ahead of HQ's clock, a write outside the
 * device's scope (hq/scope.h), record id already used by another
 * collection) or merged under the merge rule, recording a
 * conflict when two devices edited the same value concurrently (see
 * "Merge rule" in PROTOCOL.md).  The raw body, the receipt, the device's
 * new sequence and hash, and a changeset_accepted event commit
 * together; a rejected set changes nothing but the event log, which gets
 * a changeset_rejected event.  No field value reaches an error, message
 * or event.
 *
 * Thread safety: ctx->db belongs to the calling thread; hq and forms are
 * read-only and may be shared.
 */
#ifndef FS_INGEST_H
#define FS_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "hq/hqsql.h"

#include "crypto/fserr.h"
#include "crypto/identity.h"
#include "hq/hqforms.h"
#include "sync/changeset.h"
#include "sync/hlc.h"

/* A device clock further than this from HQ's is reported: in the push's
 * audit entry ("clock_skew_ms"), HQ's log, and the answer.  It is the HLC
 * bound, so a device that is told nothing has changes that merge. */
#define INGEST_SKEW_REPORT_MS HLC_MAX_FUTURE_MS

struct ingest_ctx {
	struct hqsql *db;	   /* this thread's connection */
	const struct identity *hq; /* HQ's keys */
	const struct hq_forms *forms;
	uint64_t (*wall_ms)(void); /* clock; hlc_wall_ms in production */
	/* The device's wall clock when it sent the set (the Fieldsync-Time
	 * request header), Unix ms; 0 when it did not say.  Unauthenticated
	 * and used only to report skew, never to order anything. */
	uint64_t device_time_ms;
	/* HQ's clock when the request's headers arrived (0: now): the skew is
	 * measured against it, so a slow upload is not taken for skew. */
	uint64_t request_ms;
	/* Refuse every version 1 (unbound) set, not only those from devices
	 * that have sent version 2 ([server] accept_unbound_sets = no). */
	int refuse_unbound;
};

/* What to answer.  status is the HTTP status; error is the protocol's
 * error code (NULL for 200) and message says why, without values. */
struct ingest_result {
	int status;
	const char *error;
	char message[256];
	char device[IDENTITY_ID_HEXLEN + 1]; /* from the header, "" before parsing */
	uint64_t seq;			     /* from the header */
	uint64_t expected_seq;		     /* sequence_gap only */
	uint8_t *receipt;		     /* 200: malloc'd receipt bytes */
	size_t receipt_len;
	uint32_t merged;       /* 200: changes merged */
	cJSON *quarantined;    /* 200: [{"index","field","reason"}] */
	int duplicate;	       /* 200: an earlier receipt repeated */
	int authenticated;     /* the device's signature verified */
	int64_t clock_skew_ms; /* device clock minus HQ's, when skewed */
	int skewed;	       /* |skew| over INGEST_SKEW_REPORT_MS */
};

/* Returns 0 with *ret filled (any status), or a negative code with err
 * set when HQ itself failed (database, memory): answer 500, nothing was
 * changed.  Free ret with ingest_result_clear(). */
int ingest_changeset(const struct ingest_ctx *ctx, const uint8_t *body, size_t len,
		     struct ingest_result *ret, struct fs_error *err) FS_WUR;

void ingest_result_clear(struct ingest_result *r);

/* Does the change set or pull request that starts with these len bytes
 * (at least INGEST_DEVICE_PREFIX) name an enrolled, active device?  1 or 0, < 0 on
 * a database error.  Nothing here is authentic yet: the server uses it
 * only to choose which pool of request slots an upload takes. */
#define INGEST_DEVICE_PREFIX (8 + CHANGESET_DEVICE_BYTES)
int ingest_device_active(struct hqsql *db, const uint8_t *prefix, size_t len,
			 struct fs_error *err) FS_WUR;

/* An administrator's word on a quarantined change (device, seq, idx):
 * release merges it now, as the in-order merge would have (a later
 * write to the field still wins); otherwise it is rejected.  Either way
 * it leaves the quarantine, and the audit log says who, why, and which
 * record and field (never the value).  One transaction.  -FS_ENOTFOUND
 * when there is no such change in quarantine; -FS_EVALID when its
 * record id is another collection's. */
int ingest_review(const struct ingest_ctx *ctx, const char *device, uint64_t seq, uint32_t idx,
		  int release, const char *user, const char *reason, struct fs_error *err) FS_WUR;

/* An administrator's resolution of conflict id: keep the pair's value
 * "a" or "b", or ("new") the value text converts to by the field's type
 * in HQ's form (form_value_from_text, as the CLI reads a value).  The
 * value is written as HQ's own write (device: HQ's id) at an HLC after
 * every write HQ holds to the field, through the merge a device's change
 * takes: it wins at HQ, and the down-sets carry it to the devices of the
 * record's scope, where it wins over every write HQ had seen, and a
 * later edit wins over it (the in-order merge).  It settles every open
 * conflict on the same record and field (table resolutions).  One
 * transaction and one audit entry "resolved" (conflict, record, field,
 * choice, user; never a value).  -FS_ENOTFOUND: no such conflict;
 * -FS_EEXIST: already resolved, or superseded (a write later than both
 * holds the field: a choice between the two would undo it); -FS_EVALID: the value is not valid for
 * the field (the message names the field and the rule, not the value);
 * -FS_EUSAGE: a choice other than a, b or new, or text with a or b. */
int ingest_resolve(const struct ingest_ctx *ctx, int64_t conflict_id, const char *choice,
		   const char *text, const char *user, struct fs_error *err) FS_WUR;

#endif
