/* token.h - one-time enrolment tokens.
 *
 * `fieldsync-hq enroll-token` prints a token, an admin hands it to a
 * field team, and `fieldsync enroll URL TOKEN` uses it once.  The token
 * carries HQ's key fingerprint (and, for HTTPS, the SHA-256 of HQ's TLS
 * public key), so the device trusts no key on first use.  Text form:
 *
 *   "FS1-" base64url-without-padding(payload)
 *
 *   payload: secret (32) | HQ fingerprint (32) | flags (1)
 *            | TLS SPKI SHA-256 (32, present when flags bit 0 is set)
 *
 * HQ fingerprint = BLAKE2b-256("fieldsync-hq-v1" || HQ Ed25519 public key
 * || HQ X25519 public key).  HQ keeps only BLAKE2b-256(secret).  The
 * device proves it holds its keys by signing token_enroll_message().
 * Errors: -FS_EFORMAT.  Thread-safe; no I/O.
 */
#ifndef FS_TOKEN_H
#define FS_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "crypto/fserr.h"

#define TOKEN_PREFIX "FS1-"
#define TOKEN_SECRET_BYTES 32
#define TOKEN_FP_BYTES 32
#define TOKEN_TLS_PIN_BYTES 32
#define TOKEN_TEXT_MAX 160
#define TOKEN_ENROLL_LABEL "fieldsync-enroll-v1"
#define TOKEN_ENROLL_MSG_BYTES                                                                     \
	(sizeof(TOKEN_ENROLL_LABEL) - 1 + TOKEN_SECRET_BYTES + crypto_sign_PUBLICKEYBYTES +        \
	 crypto_box_PUBLICKEYBYTES)

struct enroll_token {
	uint8_t secret[TOKEN_SECRET_BYTES];   /* the one-time credential */
	uint8_t hq_fp[TOKEN_FP_BYTES];	      /* token_hq_fingerprint() of HQ's keys */
	int has_tls_pin;		      /* tls_pin is set */
	uint8_t tls_pin[TOKEN_TLS_PIN_BYTES]; /* SHA-256 of HQ's TLS SubjectPublicKeyInfo */
};

/* out must hold TOKEN_TEXT_MAX bytes. */
void token_format(const struct enroll_token *t, char out[TOKEN_TEXT_MAX]);
int token_parse(const char *text, struct enroll_token *ret) FS_WUR;

void token_hq_fingerprint(const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES],
			  const uint8_t box_pk[crypto_box_PUBLICKEYBYTES],
			  uint8_t out[TOKEN_FP_BYTES]);

/* BLAKE2b-256 of the secret: what HQ stores and looks tokens up by. */
void token_secret_hash(const uint8_t secret[TOKEN_SECRET_BYTES], uint8_t out[32]);

/* The message a device signs to enrol: label || secret || its keys. */
void token_enroll_message(const uint8_t secret[TOKEN_SECRET_BYTES],
			  const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES],
			  const uint8_t box_pk[crypto_box_PUBLICKEYBYTES],
			  uint8_t out[TOKEN_ENROLL_MSG_BYTES]);

#endif
