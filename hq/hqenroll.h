/* hqenroll.h - enrolment at HQ: one-time tokens and device registration.
 *
 * hqenroll_token_create() makes a token (sync/token.h) and stores only
 * BLAKE2b-256 of its secret, with the team, municipality and expiry.
 * hqenroll_device() handles POST /v1/enroll (docs/PROTOCOL.md): the
 * token must be known, unused and unexpired (401 bad_token); the proof
 * must verify with the device key and the device id must be the one
 * derived from it (401 bad_proof); a device key enrolled before is 409
 * already_enrolled; anything misshapen is 400 malformed.  The device
 * that spent a token, while active, gets its 200 again for the same token
 * and keys (a retry after a lost answer; audited, nothing else changes).
 * Success
 * registers the device, spends the token and appends an "enroll" event
 * in one transaction; a refusal changes nothing (the server audits it
 * with hqenroll_audit_refusal(), within its limits).  Messages and events
 * never carry the token or keys.
 * Thread safety: db belongs to the calling thread; hq is read-only.
 */
#ifndef FS_HQENROLL_H
#define FS_HQENROLL_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "hq/hqsql.h"

#include "crypto/fserr.h"
#include "crypto/identity.h"
#include "sync/token.h"

#define HQENROLL_MAX_NAME 200 /* team, municipality: bytes */

/* tls_pin: SHA-256 of HQ's TLS SubjectPublicKeyInfo, or NULL.  scope:
 * the enrolled device's scope as a list "A, B" (hq/scope.h), or NULL for
 * the municipality alone.  out gets the token text; it is a credential:
 * print it once, never log it. */
int hqenroll_token_create(struct hqsql *db, const struct identity *hq, const char *team,
			  const char *municipality, const char *scope, uint64_t now_ms,
			  uint64_t expires_ms, const uint8_t *tls_pin, char out[TOKEN_TEXT_MAX],
			  struct fs_error *err) FS_WUR;

struct hqenroll_result {
	int status;	   /* HTTP status */
	const char *error; /* protocol error code; NULL on 200 */
	char message[256];
	cJSON *body; /* 200: the response object; owned */
};

/* Returns 0 with *ret filled (any status), or a negative code with err
 * set when HQ failed (answer 500; nothing changed).  Free with
 * hqenroll_result_clear(). */
int hqenroll_device(struct hqsql *db, const struct identity *hq, const char *json, size_t len,
		    uint64_t now_ms, struct hqenroll_result *ret, struct fs_error *err) FS_WUR;

/* Append an "enroll_rejected" event {"peer", "error"} in its own
 * transaction (also for attempts the server refused before reading them,
 * error "rate_limited"). */
int hqenroll_audit_refusal(struct hqsql *db, uint64_t now_ms, const char *peer, const char *error,
			   struct fs_error *err) FS_WUR;

void hqenroll_result_clear(struct hqenroll_result *r);

/* An enrolled device's keys (sign_pk: crypto_sign_PUBLICKEYBYTES, box_pk:
 * crypto_box_PUBLICKEYBYTES) and whether it is revoked: 1 found, 0 not
 * enrolled, < 0 on error. */
int hqenroll_device_keys(struct hqsql *db, const char *device, uint8_t *sign_pk, uint8_t *box_pk,
			 int *revoked, struct fs_error *err) FS_WUR;

#endif
