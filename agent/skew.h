/* skew.h - this device's clock against HQ's.
 *
 * HQ says its time in its answers ("hq_time"); the difference from ours
 * is the skew, kept in the store's meta "clock_skew", reported when it
 * is over HQ's HLC bound, and used to keep the store's HLC in step with
 * HQ's (docs/PROTOCOL.md, Clocks).  Not thread-safe: the store's rules.
 */
#ifndef FS_SKEW_H
#define FS_SKEW_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "agent/store.h"
#include "crypto/fserr.h"
#include "sync/hlc.h"

/* A clock further than this from HQ's is reported: in the sync log, the
 * agent's journal and `fieldsync status`.  It is HQ's HLC bound: changes
 * stamped further ahead than that are quarantined there. */
#define SKEW_REPORT_MS HLC_MAX_FUTURE_MS
#define SKEW_TEXT_MAX 96

/* "3 d 4 h behind HQ", "within 1 s of HQ": for messages and status. */
void skew_text(int64_t skew_ms, char out[SKEW_TEXT_MAX]);

/* This device's clock minus HQ's from an answer's "hq_time" (HQ's clock
 * when our headers arrived) and our clock when we started sending
 * (sent_ms): 1 with *ret_skew_ms set, 0 when the answer has no usable
 * hq_time.  Only the length of the connect is mistaken for skew. */
int skew_from_answer(const cJSON *answer, uint64_t sent_ms, int64_t *ret_skew_ms);

/* When |skew_ms| is over SKEW_REPORT_MS, write what is wrong and
 * what it does to out and return 1; else return 0. */
#define SKEW_WARNING_MAX 256
int skew_warning(int64_t skew_ms, char out[SKEW_WARNING_MAX]);

/* A clock check outside a push (HQ's time from another answer, which is
 * not signed): keep the skew, and set the store's clock back when it ran
 * far ahead of HQ's and the wall clock now agrees with HQ (see
 * docs/PROTOCOL.md, Clocks).  Opens its own transaction. */
int skew_check(struct store *s, int64_t skew_ms, struct fs_error *err) FS_WUR;

/* The skew measured at the last acknowledged push, kept in the store:
 * *ret_found 0 when no push has measured it yet. */
int skew_load(struct store *s, int64_t *ret_skew_ms, uint64_t *ret_at_ms, int *ret_found,
	      struct fs_error *err) FS_WUR;

/* Keep the skew in the store, in the caller's transaction. */
int skew_save(struct store *s, int64_t skew_ms, struct fs_error *err) FS_WUR;

/* Keep the store's clock in step with HQ's, in the caller's transaction
 * (skew.c says how); accepted_ms is a signed receipt's time, or NULL. */
void skew_follow_hq(struct store *s, int64_t skew, const uint64_t *accepted_ms);

#endif
