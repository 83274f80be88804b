/* token.c - enrolment tokens: text form, fingerprints, proof message. */
#include "sync/token.h"

#include <string.h>

#define PAYLOAD_MAX (TOKEN_SECRET_BYTES + TOKEN_FP_BYTES + 1 + TOKEN_TLS_PIN_BYTES)

void token_format(const struct enroll_token *t, char out[TOKEN_TEXT_MAX])
{
	uint8_t p[PAYLOAD_MAX];
	size_t n = TOKEN_SECRET_BYTES + TOKEN_FP_BYTES + 1;

	memcpy(p, t->secret, TOKEN_SECRET_BYTES);
	memcpy(p + TOKEN_SECRET_BYTES, t->hq_fp, TOKEN_FP_BYTES);
	p[TOKEN_SECRET_BYTES + TOKEN_FP_BYTES] = t->has_tls_pin ? 1 : 0;
	if (t->has_tls_pin) {
		memcpy(p + n, t->tls_pin, TOKEN_TLS_PIN_BYTES);
		n += TOKEN_TLS_PIN_BYTES;
	}
	memcpy(out, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
	sodium_bin2base64(out + sizeof(TOKEN_PREFIX) - 1,
			  TOKEN_TEXT_MAX - (sizeof(TOKEN_PREFIX) - 1), p, n,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(p, sizeof(p));
}

int token_parse(const char *text, struct enroll_token *ret)
{
	uint8_t p[PAYLOAD_MAX];
	size_t n = 0, base = TOKEN_SECRET_BYTES + TOKEN_FP_BYTES + 1;
	const char *end = NULL;
	struct enroll_token t = { 0 };
	int r = -FS_EFORMAT;

	if (strlen(text) >= TOKEN_TEXT_MAX ||
	    strncmp(text, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1) != 0)
		return -FS_EFORMAT;
	text += sizeof(TOKEN_PREFIX) - 1;
	if (sodium_base642bin(p, sizeof(p), text, strlen(text), NULL, &n, &end,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    *end)
		goto out;
	if (n < base || p[base - 1] > 1 || n != base + (p[base - 1] ? TOKEN_TLS_PIN_BYTES : 0))
		goto out;
	memcpy(t.secret, p, TOKEN_SECRET_BYTES);
	memcpy(t.hq_fp, p + TOKEN_SECRET_BYTES, TOKEN_FP_BYTES);
	t.has_tls_pin = p[base - 1];
	if (t.has_tls_pin)
		memcpy(t.tls_pin, p + base, TOKEN_TLS_PIN_BYTES);
	*ret = t;
	r = 0;
out:
	sodium_memzero(p, sizeof(p));
	sodium_memzero(&t, sizeof(t));
	return r;
}

void token_hq_fingerprint(const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES],
			  const uint8_t box_pk[crypto_box_PUBLICKEYBYTES],
			  uint8_t out[TOKEN_FP_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, TOKEN_FP_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)"fieldsync-hq-v1", 15);
	crypto_generichash_update(&st, sign_pk, crypto_sign_PUBLICKEYBYTES);
	crypto_generichash_update(&st, box_pk, crypto_box_PUBLICKEYBYTES);
	crypto_generichash_final(&st, out, TOKEN_FP_BYTES);
}

void token_secret_hash(const uint8_t secret[TOKEN_SECRET_BYTES], uint8_t out[32])
{
	crypto_generichash(out, 32, secret, TOKEN_SECRET_BYTES, NULL, 0);
}

void token_enroll_message(const uint8_t secret[TOKEN_SECRET_BYTES],
			  const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES],
			  const uint8_t box_pk[crypto_box_PUBLICKEYBYTES],
			  uint8_t out[TOKEN_ENROLL_MSG_BYTES])
{
	size_t o = sizeof(TOKEN_ENROLL_LABEL) - 1;

	memcpy(out, TOKEN_ENROLL_LABEL, o);
	memcpy(out + o, secret, TOKEN_SECRET_BYTES);
	memcpy(out + o + TOKEN_SECRET_BYTES, sign_pk, crypto_sign_PUBLICKEYBYTES);
	memcpy(out + o + TOKEN_SECRET_BYTES + crypto_sign_PUBLICKEYBYTES, box_pk,
	       crypto_box_PUBLICKEYBYTES);
}
