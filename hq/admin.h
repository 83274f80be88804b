/* admin.h - administrators' views and actions: devices, conflicts,
 * revocation.
 *
 * admin_devices() lists every device (id, team, municipality, last seen,
 * last sequence, state, scope); admin_conflicts() every recorded conflict
 * (record, field, both values, both devices and clocks, the winner);
 * admin_quarantine() every change HQ kept but did not merge (device,
 * sequence, index, record, field, reason; never the value);
 * all as aligned text or, with json, one JSON array.  Conflict values
 * are personal data: they go to the admin's terminal, never to a log.
 * admin_revoke() marks a device revoked (HQ then answers its pushes 403)
 * and appends a "revoke" event; -FS_ENOTFOUND for a device that is not
 * enrolled or already revoked.  Thread safety: db belongs to the
 * caller.
 */
#ifndef FS_ADMIN_H
#define FS_ADMIN_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include "hq/hqsql.h"

#include "crypto/fserr.h"

int admin_devices(struct hqsql *db, int json, FILE *out, struct fs_error *err) FS_WUR;
/* The quarantine as `quarantine --json` gives it, each with its
 * device's team and municipality, as an array (the caller's). */
int admin_quarantine_array(struct hqsql *db, cJSON **ret, struct fs_error *err) FS_WUR;

/* The same devices as `devices --json` gives, as an array (the
 * caller's). */
int admin_devices_array(struct hqsql *db, cJSON **ret, struct fs_error *err) FS_WUR;
int admin_conflicts(struct hqsql *db, int json, FILE *out, struct fs_error *err) FS_WUR;
/* The same conflicts as `conflicts --json` gives, as an array (the
 * caller's): each with its "id", its record's "scope_key" (sync/fold.h),
 * "superseded" (a write later than both holds the field), and
 * "resolved": null, or {"conflict", "choice", "by", "at", "at_ms"}
 * (hq/ingest.h, ingest_resolve). */
int admin_conflicts_array(struct hqsql *db, cJSON **ret, struct fs_error *err) FS_WUR;
/* How a resolution's choice ("a", "b", "new") reads: "kept a's value". */
const char *admin_resolution_words(const char *choice);
int admin_quarantine(struct hqsql *db, int json, FILE *out, struct fs_error *err) FS_WUR;
/* Every delete, and every write by a team other than the one that
 * registered the record (whose write came first) that changed the value
 * the write before it left: record, collection,
 * field, when, which device and team, the owner, and whether the write
 * is the merged value.  Never the value. */
int admin_review(struct hqsql *db, int json, FILE *out, struct fs_error *err) FS_WUR;
int admin_revoke(struct hqsql *db, const char *device, const char *reason, uint64_t now_ms,
		 struct fs_error *err) FS_WUR;

#endif
