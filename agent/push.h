/* push.h - send packed change sets to HQ and keep HQ's signed receipts.
 *
 * The HTTP transport is a seam: struct push_transport is a small table of
 * function pointers, so tests put canned HQ answers in place of the
 * network while the receipt and JSON handling under test stay real.  The
 * default transport (push_transport_curl_new) is a libcurl easy handle:
 * POST only, https or http, no redirects, connect and low-speed timeouts,
 * and with a TLS pin (CURLOPT_PINNEDPUBLICKEY) the pin replaces CA
 * verification, so a self-signed HQ certificate named by the enrolment
 * token works and nothing else does.
 *
 * push_pending() sends every change set in outgoing that has no receipt,
 * in sequence order, to URL/v1/changesets (docs/PROTOCOL.md).  A receipt
 * is kept only when it verifies with the HQ key pinned at enrolment and
 * names this device, the set's sequence and its hash; receipt and
 * acknowledgement time are then written in one transaction.  Nothing is
 * deleted.  When HQ answers 409 sequence_gap with an expected sequence
 * below ours (HQ lost sets it had acknowledged) and we still hold that
 * set, pushing resumes from there.
 *
 * Errors (err names the URL or the set and the reason; never a field
 * value, a key or the token):
 *   -EHOSTUNREACH  HQ unreachable: connection, name resolution, timeout
 *   -EBUSY         HQ overloaded (503); retry later
 *   -EPROTO        HQ answered something this protocol does not allow
 *   -FS_EKEY       the TLS pin or certificate does not match
 *   -FS_EAUTH      a receipt that does not verify or is for another set
 *   -EACCES        HQ revoked this device (403); the message says "revoked"
 *   -EPERM         HQ does not accept this device (401)
 *   -EBADMSG       HQ refused a set (400, 409) or a sequence HQ expects
 *                  that we cannot send
 *   -FS_ELIMIT     HQ refused a set as too large, or an oversized answer
 *   -ECANCELED     the transport's cancel flag was raised
 *   store errors as store_fail().
 * Not thread-safe: one store, one transport, one thread.
 */
#ifndef FS_PUSH_H
#define FS_PUSH_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <sodium.h>

#include "agent/store.h"
#include "crypto/fserr.h"
#include "sync/hlc.h"

#define PUSH_URL_MAX 1024
#define PUSH_PIN_MAX 128                    /* "sha256//" + base64 */
#define PUSH_RESPONSE_MAX (4 * 1024 * 1024) /* cap on an HQ answer */
#define PUSH_CONNECT_TIMEOUT_S 15
#define PUSH_LOW_SPEED_BYTES 64  /* slower than this ... */
#define PUSH_LOW_SPEED_TIME_S 60 /* ... for this long fails */
#define PUSH_CHANGESET_TYPE "application/vnd.fieldsync.changeset"

/* One HQ answer. */
struct push_response {
	long status; /* HTTP status code */
	char *body;  /* malloc'd and NUL-terminated; NULL when empty */
	size_t len;  /* bytes in body, at most PUSH_RESPONSE_MAX */
	long retry_after; /* seconds from a Retry-After header, else 0 */
	/* The Fieldsync-Checkpoint header (a pull's answer): malloc'd, as
	 * sent (base64), at most DOWNSET_CHECKPOINT_MAX bytes; else NULL. */
	char *checkpoint;
};

/* Free the body; NULL-safe; leaves *r zeroed. */
void push_response_clear(struct push_response *r);

/* The transport seam.  post() sends body to url; when HQ answered at all,
 * whatever the status, it fills *ret and returns 0.  tls_pin, when not
 * NULL, is "sha256//BASE64".  Failures return the codes above with err
 * naming the URL.  destroy() frees the transport; NULL-safe callers use
 * push_transport_free(). */
struct push_transport {
	int (*post)(struct push_transport *t, const char *url, const char *content_type,
	            const uint8_t *body, size_t len, const char *tls_pin, struct push_response *ret,
	            struct fs_error *err);
	void (*destroy)(struct push_transport *t);
};

/* libcurl transport; initialises libcurl and cleans it up when freed.
 * libcurl honours https_proxy/HTTPS_PROXY from the environment for
 * https:// URLs; plain http:// (loopback only) never goes through a
 * proxy. */
int push_transport_curl_new(struct push_transport **ret, struct fs_error *err) FS_WUR;

/* Abandon a transfer in flight (within about a second) once *flag is
 * non-zero; the post then fails with -ECANCELED.  flag must outlive t.
 * Another thread may set the flag: this is how the agent stops a push on
 * SIGTERM.  Only for transports from push_transport_curl_new(). */
void push_transport_curl_cancel_on(struct push_transport *t, const _Atomic int *flag);

/* Replace the connect timeout and the stall timeout (a transfer slower
 * than PUSH_LOW_SPEED_BYTES per second for that long fails), seconds;
 * 0 keeps the default.  Only for push_transport_curl_new() transports. */
void push_transport_curl_timeouts(struct push_transport *t, unsigned connect_s, unsigned stall_s);

/* NULL-safe; returns NULL. */
struct push_transport *push_transport_free(struct push_transport *t);

/* Where to push, from enrolment (agent/enroll.h fills it). */
struct push_target {
	char url[PUSH_URL_MAX];                         /* HQ base URL, no trailing '/' */
	uint8_t hq_sign_pk[crypto_sign_PUBLICKEYBYTES]; /* verifies receipts */
	char tls_pin[PUSH_PIN_MAX];                     /* "" when none */
};

/* Totals, updated as each set is acknowledged (also when a later set
 * fails, so a caller can report what did get through). */
struct push_stats {
	unsigned long long sets;        /* change sets acknowledged now */
	unsigned long long changes;     /* changes in those sets */
	unsigned long long quarantined; /* changes HQ's receipts quarantined */
	unsigned long long bytes;       /* request bytes of those sets */
	long retry_after;               /* with -EBUSY: HQ's Retry-After, s */
	int clock_checked;              /* HQ said its time in an answer */
	int64_t clock_skew_ms;          /* then: this device's clock minus HQ's */
};

/* A clock further than this from HQ's is reported: in the sync log, the
 * agent's journal and `fieldsync status`.  It is HQ's HLC bound: changes
 * stamped further ahead than that are quarantined there. */
#define PUSH_SKEW_REPORT_MS HLC_MAX_FUTURE_MS
#define PUSH_SKEW_TEXT_MAX 96

/* "3 d 4 h behind HQ", "within 1 s of HQ": for messages and status. */
void push_skew_text(int64_t skew_ms, char out[PUSH_SKEW_TEXT_MAX]);

/* This device's clock minus HQ's from an answer's "hq_time" (HQ's clock
 * when our headers arrived) and our clock when we started sending
 * (sent_ms): 1 with *ret_skew_ms set, 0 when the answer has no usable
 * hq_time.  Only the length of the connect is mistaken for skew. */
int push_hq_time_skew(const cJSON *answer, uint64_t sent_ms, int64_t *ret_skew_ms);

/* When |skew_ms| is over PUSH_SKEW_REPORT_MS, write what is wrong and
 * what it does to out and return 1; else return 0. */
#define PUSH_SKEW_WARNING_MAX 256
int push_skew_warning(int64_t skew_ms, char out[PUSH_SKEW_WARNING_MAX]);

/* A clock check outside a push (HQ's time from another answer, which is
 * not signed): keep the skew, and set the store's clock back when it ran
 * far ahead of HQ's and the wall clock now agrees with HQ (see
 * docs/PROTOCOL.md, Clocks).  Opens its own transaction. */
int push_clock_check(struct store *s, int64_t skew_ms, struct fs_error *err) FS_WUR;

/* The skew measured at the last acknowledged push, kept in the store:
 * *ret_found 0 when no push has measured it yet. */
int push_skew_load(struct store *s, int64_t *ret_skew_ms, uint64_t *ret_at_ms, int *ret_found,
                   struct fs_error *err) FS_WUR;

/* Called after each acknowledged set: done of total sets pending at start. */
typedef void (*push_progress_fn)(unsigned long long done, unsigned long long total, void *ctx);

int push_pending(struct store *s, const struct push_target *target, struct push_transport *t,
                 push_progress_fn progress, void *ctx, struct push_stats *stats,
                 struct fs_error *err) FS_WUR;

/* Make room on a full disk: forget the bodies of the sets HQ has
 * acknowledged, keeping their sequence, hash and receipt (the chain and
 * the proof of delivery).  Only should HQ lose sets it had acknowledged
 * can they then not be sent again; push_pending() says so.  One
 * transaction. */
int push_drop_acked(struct store *s, struct fs_error *err) FS_WUR;

/* Sets without a receipt, and sets acknowledged. */
int push_count(struct store *s, unsigned long long *ret_pending, unsigned long long *ret_acked,
               struct fs_error *err) FS_WUR;

/* Changes HQ has not acknowledged (packed or not) and their bytes: the
 * size of their change sets, or of their text while still unpacked. */
int push_backlog(struct store *s, unsigned long long *ret_changes, unsigned long long *ret_bytes,
                 struct fs_error *err) FS_WUR;

/* Decode the base64 string member name of o (o itself when name is
 * NULL; standard alphabet, padding
 * optional) into exactly want bytes, or at most cap bytes when want is 0.
 * -EPROTO when missing, not a string, not base64 or the wrong size. */
int push_json_base64(const cJSON *o, const char *name, uint8_t *out, size_t cap, size_t want,
                     size_t *ret_len) FS_WUR;

/* A short, safe rendering of HQ's JSON error ("code: message") for our
 * messages: printable ASCII only, at most 160 bytes. */
void push_hq_error(const struct push_response *r, char *out, size_t cap);

/* What HQ's non-200 answer to what ("change set 7", "a pull") means, with
 * HQ's own words: 403 -EACCES (revoked), 401 -EPERM, 400 -EBADMSG, 413
 * -FS_ELIMIT, 429 and 503 -EBUSY, anything else -EPROTO.  A 409 means
 * something else to each exchange: callers handle it first. */
int push_answer_error(const char *url, const char *what, const struct push_response *resp,
                      struct fs_error *err);

#endif
