/* records.h - beneficiaries and visits, and their outbox.
 *
 * A record is { id (UUIDv7), collection, fields (JSON object checked
 * against the collection's form), created and updated HLC, author device,
 * deleted flag }.  Every write appends one outbox row per changed field
 * (field name, new JSON value or NULL when cleared, HLC) in the same
 * transaction, so a record and its changes are durable together or not
 * at all.  A delete is a tombstone: deleted = 1 and an outbox change of
 * the reserved field "_deleted".
 *
 * Writes must run inside store_begin()/store_commit(); they return
 * -FS_EUSAGE otherwise.  Validation failures are -FS_EVALID with a
 * message that names the field, never its value; an unknown or deleted id
 * is -FS_ENOTFOUND; a duplicate id -FS_EEXIST.
 */
#ifndef FS_RECORDS_H
#define FS_RECORDS_H

#include <cjson/cJSON.h>

#include "agent/store.h"
#include "sync/form.h"
#include "sync/uuid.h"

#define RECORDS_DELETED_FIELD "_deleted"

/* Add a record.  id: the id to keep (an import from HQ's caseload list)
 * or NULL for a new UUIDv7.  JSON null members are treated as absent.
 * The record is settled (sync/form.h: calculations done) and validated
 * whole; an answer the form's logic would drop (a question not asked
 * for the other answers) or replace (a calculated field) is refused,
 * -FS_EVALID, rather than changed quietly.  Defaults are the caller's
 * (form_apply_defaults): an import takes none. */
int records_add(struct store *s, const struct form *f, const cJSON *fields, const char *id,
		char ret_id[UUID_TEXT_LEN + 1], struct fs_error *err) FS_WUR;

/* Set the members of changes (null clears a field) on a live record,
 * then settle and validate it whole, refusing as records_add does.
 * Settling may change fields changes does not name (a question the new
 * answers no longer ask is cleared, a calculation redone): each is an
 * outbox change too, a cleared one as null. */
int records_edit(struct store *s, const struct form *f, const char *id, const cJSON *changes,
		 struct fs_error *err) FS_WUR;

int records_delete(struct store *s, const struct form *f, const char *id,
		   struct fs_error *err) FS_WUR;

/* The record as a JSON object (see README, "list --json"); caller owns it.
 * Deleted records are returned with "deleted": true. */
int records_get(struct store *s, const struct form *f, const char *id, cJSON **ret_record,
		struct fs_error *err) FS_WUR;

/* Call fn for every live record of the form's collection in id order
 * (which is creation order for UUIDv7).  A non-zero return from fn stops
 * the walk and is returned. */
typedef int (*records_fn)(const cJSON *record, void *ctx);
int records_list(struct store *s, const struct form *f, records_fn fn, void *ctx,
		 struct fs_error *err) FS_WUR;

struct records_stats {
	long long live;	   /* records not deleted */
	long long deleted; /* tombstones */
	long long pending; /* outbox changes HQ has not yet acknowledged */
};
int records_stats(struct store *s, const char *collection, struct records_stats *ret_stats,
		  struct fs_error *err) FS_WUR;

/* Replay every record's outbox changes and compare with the record:
 * -FS_ECORRUPT naming the first record that differs. */
int records_verify_outbox(struct store *s, struct fs_error *err) FS_WUR;

#endif
