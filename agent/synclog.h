/* synclog.h - the device's sync log, kept in the encrypted store.
 *
 * One row per attempt to reach HQ, whoever made it (the agent or
 * `fieldsync sync`): when it started, what it did, how many change sets,
 * changes and bytes HQ acknowledged, how long it took, and why it failed.
 * The detail is one of our own error messages, which never carry a field
 * value or a key (crypto/fserr.h), so the log is safe to show an
 * administrator.  The newest SYNCLOG_KEEP rows are kept.
 *
 * Failures in a row with the same result, none of which sent anything,
 * share one row: its repeats count goes up and last_at, duration and
 * detail follow the latest.  A device offline for a week retries every
 * few seconds; its log says so in one line, not a hundred thousand.
 *
 * Event and result names are shared with HQ's audit list so the two can
 * be read side by side: event "push", and result "accepted" as in HQ's
 * entries for the same change sets (synclog_result()).
 *
 * Errors as store_fail().  Same threading rules as the store handle.
 */
#ifndef FS_SYNCLOG_H
#define FS_SYNCLOG_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "agent/store.h"

#define SYNCLOG_KEEP 10000

struct synclog_entry {
	int64_t id;	/* assigned by synclog_add */
	uint64_t at_ms; /* start, Unix ms */
	uint64_t duration_ms;
	const char *event;  /* "push" */
	const char *result; /* synclog_result() */
	unsigned long long sets, changes, bytes;
	const char *detail; /* error message, or NULL */
};

/* The result name for an attempt's error code (0: "accepted"):
 * accepted, unreachable, busy, refused, revoked, key, abandoned, error. */
const char *synclog_result(int code);

int synclog_add(struct store *s, const struct synclog_entry *e, struct fs_error *err) FS_WUR;

/* Call fn with each entry as a JSON object, oldest first, at most limit
 * newest ones (0: all).  Members: id, at (hlc_format_time: RFC 3339 UTC
 * with milliseconds, as HQ's event list),
 * event, result, sets, changes, bytes, duration_ms, detail (if any), and
 * for a row standing for several attempts, repeats and last_at. */
typedef int (*synclog_fn)(const cJSON *entry, void *ctx);
int synclog_list(struct store *s, unsigned limit, synclog_fn fn, void *ctx,
		 struct fs_error *err) FS_WUR;

/* The result class of the newest row when it was not a success
 * ("unreachable", "refused", ...), else "" (into out, cap bytes). */
int synclog_last_failure(struct store *s, char *out, size_t cap, struct fs_error *err) FS_WUR;

#endif
