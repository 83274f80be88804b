/* health.h - the devices' health at HQ: each device's latest signed
 * status report (sync/status.h, POST /v1/status), kept in its row, and
 * the facts `devices --json` and the console show from it.
 *
 * A report is accepted only from an enrolled, active device whose
 * enrolled key signed it; it is not audited (a device sends one with
 * every contact), but it is contact: last_seen moves.  Errors: database
 * errors only; a refused report is an answer in *ret (status, error
 * code, message), never -errno.
 */
#ifndef FS_HEALTH_H
#define FS_HEALTH_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "crypto/fserr.h"
#include "hq/hqsql.h"

struct health_result {
	int status;	   /* 204 kept; 400, 401, 403 refused */
	const char *error; /* the code of a refusal */
	char message[160];
	char device[33]; /* hex, once read */
};

int health_report(struct hqsql *db, const uint8_t *body, size_t len, uint64_t now_ms,
		  struct health_result *ret, struct fs_error *err) FS_WUR;

/* Add the report's facts to a device's JSON object: pending_changes,
 * oldest_unsent_age_s (aged to now_ms since the report), last_error,
 * agent_version, form_version, clock_skew_ms, free_disk_bytes and
 * reported_at; each null when report is NULL (no report yet).  -ENOMEM. */
int health_add_facts(cJSON *device, const char *report, int64_t reported_ms, uint64_t now_ms);

/* Whether device (an object of `devices --json`, with the facts above
 * and last_seen_ms) is red at now_ms, and why: never seen, not seen for
 * longer than unseen_hours, or a change unsent for longer than
 * backlog_hours ([console] red_unseen_hours and red_backlog_hours).
 * *ret_why is "" when it is not. */
int health_red(const cJSON *device, uint64_t now_ms, unsigned unseen_hours, unsigned backlog_hours,
	       const char **ret_why);

#endif
