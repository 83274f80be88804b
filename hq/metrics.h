/* metrics.h - HQ's numbers for Prometheus: `GET /metrics` on the
 * console's listener (hq/console.h), behind a token.
 *
 * Counters are this process's, since it started (Prometheus handles
 * restarts): answers by HTTP status, change sets by outcome, and a
 * histogram of how long an accepted set took to ingest.  Gauges are read
 * from the database when scraped: the quarantine's size, conflicts,
 * devices flagged red (hq/health.h) and the audit log's size.  No value
 * of a record, no name and no token ever appears.
 *
 * Thread-safe: counters are atomics, written by the device API's
 * threads and read by the console's.
 */
#ifndef FS_METRICS_H
#define FS_METRICS_H

#include <stdint.h>

#include "crypto/fserr.h"
#include "hq/hqconfig.h"
#include "hq/hqsql.h"

enum metrics_outcome { METRICS_ACCEPTED, METRICS_DUPLICATE, METRICS_REJECTED };

/* An answer queued by the device API. */
void metrics_response(unsigned status);
/* A change set's outcome, and for an accepted one its ingest time. */
void metrics_changeset(enum metrics_outcome outcome, uint64_t duration_us);

/* The exposition (text format 0.0.4), malloc'd into *ret. */
int metrics_render(struct hqsql *db, const struct hq_config *cfg, char **ret,
		   struct fs_error *err) FS_WUR;

#endif
