/* drafts.h - the field app's unfinished forms, in the encrypted store.
 *
 * A draft is the fields of a record being filled in, as the worker
 * typed them (not settled: an answer to a question hidden for now stays,
 * in case the question comes back).  The page saves it within a second
 * of each change, so a closed or killed browser loses nothing.  Drafts
 * never leave the device: they are not records, have no outbox rows and
 * are not packed.  Finalising one writes its record exactly as `record
 * add` does (settled, validated, with its changes) and removes the draft,
 * in one transaction.
 *
 * Error behaviour: -FS_ENOTFOUND for no such draft (or one of another
 * collection); -FS_EUSAGE for an id that is not a UUID, or a form that
 * is not the draft's; -FS_EVALID for fields the form does not know, or
 * for a record that breaks the form when finalised (err names the field
 * and rule, never a value); -FS_ELIMIT past DRAFTS_MAX drafts or
 * DRAFTS_MAX_BYTES of fields; -ENOSPC when the disk's room is kept for
 * delivery (agent/ballast.h); store errors otherwise.  Each call runs its own transaction
 * (drafts_save, drafts_finalise, drafts_discard) or none (reads). Thread safety: as the store (one
 * thread per connection).
 */
#ifndef FS_DRAFTS_H
#define FS_DRAFTS_H

#include <cjson/cJSON.h>

#include "agent/store.h"
#include "sync/form.h"
#include "sync/uuid.h"

#define DRAFTS_MAX 500
#define DRAFTS_MAX_BYTES (256u << 10)

/* Save fields as draft id, which must exist, or (id NULL or empty) as a
 * new draft with an id the store gives, whose fields get the form's
 * defaults first; ret_id gets its id and, unless NULL, ret_saved the
 * fields as stored (the caller's, cJSON_Delete). */
int drafts_save(struct store *s, const struct form *f, const char *id, const cJSON *fields,
		char ret_id[UUID_TEXT_LEN + 1], cJSON **ret_saved, struct fs_error *err) FS_WUR;

/* A draft's collection (into collection, of cap bytes) and fields (the
 * caller's, cJSON_Delete; with ret_fields NULL, the collection only,
 * and the fields are not parsed). */
int drafts_load(struct store *s, const char *id, char *collection, size_t cap, cJSON **ret_fields,
		struct fs_error *err) FS_WUR;

/* [{"id", "collection", "updated_ms"}], the latest first (the caller's). */
int drafts_list(struct store *s, cJSON **ret, struct fs_error *err) FS_WUR;

/* Remove a draft. */
int drafts_discard(struct store *s, const char *id, struct fs_error *err) FS_WUR;

/* The form of a collection, or NULL when the device has none. */
typedef const struct form *(*drafts_form_fn)(void *ctx, const char *collection);

/* Remove the drafts whose ref fields (by each collection's form) name a
 * record this device does not hold (it left the device's scope): they
 * could never be finished, and hold what the device may no longer keep.
 * In the caller's transaction; *ret_dropped gets how many went. */
int drafts_drop_orphans(struct store *s, drafts_form_fn form_of, void *ctx, size_t *ret_dropped,
			struct fs_error *err) FS_WUR;

/* Write the draft's record (f must be its collection's form) and remove
 * the draft, together; ret_record_id gets the record's id. */
int drafts_finalise(struct store *s, const struct form *f, const char *id,
		    char ret_record_id[UUID_TEXT_LEN + 1], struct fs_error *err) FS_WUR;

#endif
