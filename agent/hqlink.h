/* hqlink.h - the link to HQ: the transport seam and HQ's answers.
 *
 * struct hqlink is a small table of function pointers, so tests put
 * canned HQ answers in place of the network while the receipt and JSON
 * handling under test stay real.  The real transport (agent/hqcurl.h,
 * in the network helper only) is a libcurl easy handle: POST only, https or http,
 * no redirects, connect and low-speed timeouts, and with a TLS pin
 * (CURLOPT_PINNEDPUBLICKEY) the pin replaces CA verification, so a
 * self-signed HQ certificate named by the enrolment token works and
 * nothing else does.  Push, pull, enrolment and the history check all
 * speak to HQ through it.
 *
 * Errors (err names the URL and the reason; never a key or the token):
 *   -EHOSTUNREACH  HQ unreachable: connection, name resolution, timeout
 *   -FS_EKEY       the TLS pin or certificate does not match
 *   -FS_ELIMIT     an oversized answer
 *   -ECANCELED     the request was abandoned (agent/netproc.h: its
 *                  transport kills the helper on SIGTERM or lock)
 * Not thread-safe: one transport, one thread.
 */
#ifndef FS_HQLINK_H
#define FS_HQLINK_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <sodium.h>

#include "crypto/fserr.h"

#define HQLINK_URL_MAX 1024
#define HQLINK_PIN_MAX 128		      /* "sha256//" + base64 */
#define HQLINK_RESPONSE_MAX (4 * 1024 * 1024) /* cap on an HQ answer */
#define HQLINK_CONNECT_TIMEOUT_S 15
#define HQLINK_LOW_SPEED_BYTES 64  /* slower than this ... */
#define HQLINK_LOW_SPEED_TIME_S 60 /* ... for this long fails */

/* One HQ answer. */
struct hqlink_response {
	long status;	  /* HTTP status code */
	char *body;	  /* malloc'd and NUL-terminated; NULL when empty */
	size_t len;	  /* bytes in body, at most HQLINK_RESPONSE_MAX */
	long retry_after; /* seconds from a Retry-After header, else 0 */
	/* The Fieldsync-Checkpoint header (a pull's answer): malloc'd, as
	 * sent (base64), at most DOWNSET_CHECKPOINT_MAX bytes; else NULL. */
	char *checkpoint;
};

/* Free the body; NULL-safe; leaves *r zeroed. */
void hqlink_response_clear(struct hqlink_response *r);

/* The transport seam.  post() sends body to url; when HQ answered at all,
 * whatever the status, it fills *ret and returns 0.  tls_pin, when not
 * NULL, is "sha256//BASE64".  Failures return the codes above with err
 * naming the URL.  destroy() frees the transport; NULL-safe callers use
 * hqlink_free(). */
struct hqlink {
	int (*post)(struct hqlink *t, const char *url, const char *content_type,
		    const uint8_t *body, size_t len, const char *tls_pin,
		    struct hqlink_response *ret, struct fs_error *err);
	void (*destroy)(struct hqlink *t);
};

/* NULL-safe; returns NULL. */
struct hqlink *hqlink_free(struct hqlink *t);

/* Where to push, from enrolment (agent/enroll.h fills it). */
struct hqlink_target {
	char url[HQLINK_URL_MAX];			/* HQ base URL, no trailing '/' */
	uint8_t hq_sign_pk[crypto_sign_PUBLICKEYBYTES]; /* verifies receipts */
	char tls_pin[HQLINK_PIN_MAX];			/* "" when none */
};

/* Decode the base64 string member name of o (o itself when name is
 * NULL; standard alphabet, padding
 * optional) into exactly want bytes, or at most cap bytes when want is 0.
 * -EPROTO when missing, not a string, not base64 or the wrong size. */
int hqlink_json_base64(const cJSON *o, const char *name, uint8_t *out, size_t cap, size_t want,
		       size_t *ret_len) FS_WUR;

/* A short, safe rendering of HQ's JSON error ("code: message") for our
 * messages: printable ASCII only, at most 160 bytes. */
void hqlink_error_text(const struct hqlink_response *r, char *out, size_t cap);

/* What HQ's non-200 answer to what ("change set 7", "a pull") means, with
 * HQ's own words: 403 -EACCES (revoked), 401 -EPERM, 400 -EBADMSG, 413
 * -FS_ELIMIT, 429 and 503 -EBUSY, anything else -EPROTO.  A 409 means
 * something else to each exchange: callers handle it first. */
int hqlink_answer_error(const char *url, const char *what, const struct hqlink_response *resp,
			struct fs_error *err);

#endif
