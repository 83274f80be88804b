/* enroll.h - enrol this device with HQ, and read the enrolment back.
 *
 * enroll_device() follows docs/PROTOCOL.md, "POST /v1/enroll": it parses
 * the one-time token (sync/token.h), proves the device holds its keys by
 * signing token_enroll_message() with the device key, sends the device id
 * and public keys, and checks that the HQ keys in the answer have the
 * fingerprint the token carries before it trusts them.  Only then does it
 * write, in one transaction, the meta keys hq_url, hq_sign_pk and
 * hq_box_pk (hex), tls_pin ("sha256//BASE64", only when the token has one),
 * team and municipality.  No key is trusted on first use.
 *
 * The URL must be https://, or http:// on a loopback address (HQ serves
 * plain HTTP only there); a token with a TLS pin needs https.  The token's
 * secret lives in secure memory and is wiped on every path; it appears in
 * no message.
 *
 * Errors: -FS_EEXIST already enrolled (here, or HQ says so), -FS_EFORMAT
 * a malformed token, -FS_EUSAGE a URL we refuse, -EACCES HQ refused the
 * token or proof, -FS_EAUTH HQ's keys do not match the token, -EPROTO an
 * answer outside the protocol, -EBADMSG other refusals, the transport's
 * codes (agent/push.h), store errors.  -FS_ENOTFOUND from enroll_load():
 * not enrolled.  Not thread-safe.
 */
#ifndef FS_ENROLL_H
#define FS_ENROLL_H

#include <sodium.h>

#include "agent/hqlink.h"
#include "agent/store.h"
#include "crypto/fserr.h"
#include "crypto/identity.h"
#include "sync/token.h"

#define ENROLL_NAME_MAX 128 /* team and municipality, bytes */

struct enrolment {
	struct hqlink_target target;		      /* URL, HQ sign key, TLS pin */
	uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES]; /* change sets are sealed to it */
	char team[ENROLL_NAME_MAX + 1];
	char municipality[ENROLL_NAME_MAX + 1];
};

/* The POST /v1/enroll body for id and tok, in secure memory (it carries
 * the token): free it with secmem_free().  Also for load tools that act
 * as many devices. */
int enroll_request_body(const struct identity *id, const struct enroll_token *tok, char **ret_body,
			size_t *ret_len, struct fs_error *err) FS_WUR;

/* Read HQ's 200 answer into e (team, municipality, both HQ keys; e's URL
 * is only used in messages) and check the keys against the token's
 * fingerprint: -EPROTO for an answer outside the protocol, -FS_EAUTH for
 * keys that do not match. */
int enroll_answer_read(const struct identity *id, const struct enroll_token *tok,
		       const struct hqlink_response *resp, struct enrolment *e,
		       struct fs_error *err) FS_WUR;

/* Enrol with HQ at url using token_text; on success *ret (may be NULL)
 * holds what was stored.  Must not be called inside a transaction. */
int enroll_device(struct store *s, const char *url, const char *token_text, struct hqlink *t,
		  struct enrolment *ret, struct fs_error *err) FS_WUR;

/* Read the stored enrolment. */
int enroll_load(struct store *s, struct enrolment *ret, struct fs_error *err) FS_WUR;

#endif
