/* formpub.h - the form definitions HQ has published, and their versions.
 *
 * HQ publishes each collection's form to the devices (in down-sets,
 * hq/downsync.h) as numbered versions: form_versions holds every version
 * ever published, append-only.  Before `serve` listens,
 * formpub_publish() compares each loaded form (hq/hqforms.h) with the
 * latest version of its collection, by its canonical JSON; a new or
 * changed definition becomes the next version (from 1) with a new
 * revision from the same counter as merged fields (so a device's cursor
 * orders it), and one audit entry ("form": collection, version and the
 * BLAKE2b-256 of the definition; the definition itself is not personal
 * data, but the log stays small).  Every loaded form is then marked with
 * its version (form_version).
 *
 * A change carries the version it was made under (change sets version 3,
 * PROTOCOL.md).  Ingest validates it with that version's definition
 * (formpub_load), so a field HQ added or tightened since does not
 * quarantine changes made under the old one.  Version 0 (a device's own
 * form, or a set before version 3) is validated with the current form.
 *
 * Thread safety: db belongs to the caller; forms as hqforms.h.
 * Errors name the collection and version, never a value.
 */
#ifndef FS_FORMPUB_H
#define FS_FORMPUB_H

#include <stdint.h>
#include "hq/hqsql.h"

#include "crypto/fserr.h"
#include "hq/hqforms.h"
#include "sync/form.h"

/* Schema version 5: the versions, and each device's form cursor (the
 * greatest form revision sent to it). */
#define FORMPUB_TABLES_SQL                                                                         \
	"CREATE TABLE form_versions("                                                              \
	"  collection TEXT NOT NULL,"                                                              \
	"  version INTEGER NOT NULL CHECK (version >= 1),"                                         \
	"  definition TEXT NOT NULL,"                                                              \
	"  rev INTEGER NOT NULL UNIQUE,"                                                           \
	"  published_at INTEGER NOT NULL,"                                                         \
	"  PRIMARY KEY (collection, version)"                                                      \
	") STRICT;"                                                                                \
	"CREATE TRIGGER form_versions_no_update BEFORE UPDATE ON form_versions"                    \
	"  BEGIN SELECT RAISE(ABORT, 'published forms are append-only'); END;"                     \
	"CREATE TRIGGER form_versions_no_delete BEFORE DELETE ON form_versions"                    \
	"  BEGIN SELECT RAISE(ABORT, 'published forms are append-only'); END;"                     \
	"ALTER TABLE down_state ADD COLUMN form_cursor INTEGER NOT NULL DEFAULT 0;"

/* Publish what changed, in one transaction, and mark every form in fs
 * with its version.  *ret_published: how many new versions (may be NULL). */
int formpub_publish(struct hqsql *db, struct hq_forms *fs, uint64_t now_ms, unsigned *ret_published,
		    struct fs_error *err) FS_WUR;

/* The definition of collection as published at version; -ENOENT when HQ
 * never published that version.  *ret is the caller's (form_free). */
int formpub_load(struct hqsql *db, const char *collection, uint32_t version, struct form **ret,
		 struct fs_error *err) FS_WUR;

#endif
