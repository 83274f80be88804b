/* enroll.c - one-time enrolment with HQ: token, proof, HQ key check, and
 * the enrolment kept in the store's meta table.
 *
 * Sections: the URL; reading the enrolment; the request; the answer;
 * enroll_device.
 */
#include "agent/enroll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/secmem.h"
#include "sync/token.h"

#define ENROLL_BODY_MAX 1024

/* ---- the URL -------------------------------------------------------------- */

static int is_loopback(const char *host, size_t n)
{
	return (n == 9 && !strncmp(host, "localhost", n)) ||
	       (n == 5 && !strncmp(host, "[::1]", n)) ||
	       (n >= 9 && !strncmp(host, "127.", 4) && strspn(host, "0123456789.") >= n);
}

/* Copy url without trailing '/' into out after checking it. */
static int url_check(const char *url, int need_https, char out[HQLINK_URL_MAX],
		     struct fs_error *err)
{
	size_t n = strlen(url), hostlen;
	const char *host;
	int https = !strncmp(url, "https://", 8);

	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n >= HQLINK_URL_MAX)
		return fs_error_set(err, -FS_EUSAGE, "HQ URL longer than %d bytes",
				    HQLINK_URL_MAX - 1);
	for (size_t i = 0; i < n; i++)
		if (url[i] <= 0x20 || url[i] >= 0x7f || url[i] == '@' || url[i] == '?' ||
		    url[i] == '#')
			return fs_error_set(err, -FS_EUSAGE,
					    "HQ URL: no spaces, credentials, "
					    "queries or fragments, please");
	if (!https && strncmp(url, "http://", 7) != 0)
		return fs_error_set(err, -FS_EUSAGE,
				    "HQ URL must start with https:// (or http:// "
				    "on a loopback address)");
	host = url + (https ? 8 : 7);
	hostlen = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":/");
	if (hostlen == 0 || (size_t)(host - url) + hostlen > n)
		return fs_error_set(err, -FS_EUSAGE, "HQ URL has no host");
	if (!https && !is_loopback(host, hostlen))
		return fs_error_set(err, -FS_EUSAGE,
				    "HQ URL: plain http:// only on a loopback "
				    "address; use https://");
	if (!https && need_https)
		return fs_error_set(err, -FS_EUSAGE,
				    "the token pins HQ's TLS key, so the HQ URL "
				    "must start with https://");
	memcpy(out, url, n);
	out[n] = '\0';
	return 0;
}

/* ---- reading the enrolment ------------------------------------------------ */

static int hex_key(const char *hex, uint8_t *out, size_t len)
{
	size_t n = 0;

	return sodium_hex2bin(out, len, hex, strlen(hex), NULL, &n, NULL) == 0 && n == len ? 0 : -1;
}

int enroll_load(struct store *s, struct enrolment *ret, struct fs_error *err)
{
	char sign_hex[2 * crypto_sign_PUBLICKEYBYTES + 2],
		box_hex[2 * crypto_box_PUBLICKEYBYTES + 2];
	struct enrolment e = { 0 };
	int r, found, all = 1;

	if ((r = store_meta_get(s, "hq_url", e.target.url, sizeof(e.target.url), &found, err)) < 0)
		return r;
	if (!found)
		return fs_error_set(err, -FS_ENOTFOUND,
				    "this device is not enrolled; run "
				    "fieldsync enroll URL TOKEN with a token from HQ");
	if ((r = store_meta_get(s, "hq_sign_pk", sign_hex, sizeof(sign_hex), &found, err)) < 0)
		return r;
	all &= found;
	if ((r = store_meta_get(s, "hq_box_pk", box_hex, sizeof(box_hex), &found, err)) < 0)
		return r;
	all &= found;
	if ((r = store_meta_get(s, "team", e.team, sizeof(e.team), &found, err)) < 0 ||
	    (r = store_meta_get(s, "municipality", e.municipality, sizeof(e.municipality), &found,
				err)) < 0 ||
	    (r = store_meta_get(s, "tls_pin", e.target.tls_pin, sizeof(e.target.tls_pin), &found,
				err)) < 0)
		return r;
	if (!all || hex_key(sign_hex, e.target.hq_sign_pk, sizeof(e.target.hq_sign_pk)) < 0 ||
	    hex_key(box_hex, e.hq_box_pk, sizeof(e.hq_box_pk)) < 0)
		return fs_error_set(err, -FS_ECORRUPT,
				    "read enrolment in %s: HQ keys missing or "
				    "malformed",
				    store_path(s));
	*ret = e;
	return 0;
}

/* ---- the request ------------------------------------------------------------ */

/* The JSON body, in secure memory: it carries the token.  Every member
 * is hex or base64, so no escaping is needed. */
int enroll_request_body(const struct identity *id, const struct enroll_token *tok, char **ret_body,
			size_t *ret_len, struct fs_error *err)
{
	char sign_b64[sodium_base64_ENCODED_LEN(crypto_sign_PUBLICKEYBYTES,
						sodium_base64_VARIANT_ORIGINAL)];
	char box_b64[sodium_base64_ENCODED_LEN(crypto_box_PUBLICKEYBYTES,
					       sodium_base64_VARIANT_ORIGINAL)];
	char proof_b64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES,
						 sodium_base64_VARIANT_ORIGINAL)];
	uint8_t *msg = secmem_alloc(TOKEN_ENROLL_MSG_BYTES), proof[crypto_sign_BYTES];
	char *text = secmem_alloc(TOKEN_TEXT_MAX), *body = secmem_alloc(ENROLL_BODY_MAX);
	int r = 0, n;

	if (!msg || !text || !body) {
		r = fs_error_set(err, -ENOMEM, "enrol: out of secure memory");
		goto out;
	}
	token_enroll_message(tok->secret, id->sign_pk, id->box_pk, msg);
	crypto_sign_detached(proof, NULL, msg, TOKEN_ENROLL_MSG_BYTES, id->sign_sk);
	token_format(tok, text);
	sodium_bin2base64(sign_b64, sizeof(sign_b64), id->sign_pk, sizeof(id->sign_pk),
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(box_b64, sizeof(box_b64), id->box_pk, sizeof(id->box_pk),
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(proof_b64, sizeof(proof_b64), proof, sizeof(proof),
			  sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(body, ENROLL_BODY_MAX,
		     "{\"token\":\"%s\",\"device\":\"%s\",\"sign_pk\":\"%s\",\"box_pk\":\"%s\","
		     "\"proof\":\"%s\"}",
		     text, id->id, sign_b64, box_b64, proof_b64);
	if (n < 0 || n >= ENROLL_BODY_MAX) {
		r = fs_error_set(err, -FS_ELIMIT, "enrol: request too long");
		goto out;
	}
	*ret_body = body;
	*ret_len = (size_t)n;
	body = NULL;
out:
	secmem_free(msg);
	secmem_free(text);
	secmem_free(body);
	return r;
}

/* ---- the answer ------------------------------------------------------------- */

/* A team or municipality name: a string without control characters. */
static int name_copy(const cJSON *o, const char *key, char out[ENROLL_NAME_MAX + 1])
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	size_t n;

	if (!cJSON_IsString(v) || !v->valuestring)
		return -1;
	n = strlen(v->valuestring);
	if (n == 0 || n > ENROLL_NAME_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v->valuestring[i] < 0x20 || v->valuestring[i] == 0x7f)
			return -1;
	memcpy(out, v->valuestring, n + 1);
	return 0;
}

static int answer_refused(const char *url, const struct hqlink_response *resp, struct fs_error *err)
{
	char why[200];

	hqlink_error_text(resp, why, sizeof(why));
	switch (resp->status) {
	case 401:
		return fs_error_set(err, -EACCES,
				    "HQ at %s refused the enrolment: the token is "
				    "unknown, used or expired, or the proof failed (%s)",
				    url, why);
	case 409:
		return fs_error_set(err, -FS_EEXIST,
				    "HQ at %s: this device is already enrolled "
				    "(%s)",
				    url, why);
	case 400:
	case 413:
		return fs_error_set(err, -EBADMSG, "HQ at %s rejected the enrolment request (%s)",
				    url, why);
	case 503:
		return fs_error_set(err, -EBUSY, "HQ overloaded, retry later (%s)", url);
	default:
		return fs_error_set(err, -EPROTO,
				    "HQ at %s answered HTTP %ld to the enrolment (%s)", url,
				    resp->status, why);
	}
}

/* Read HQ's 200 answer into e and check its keys against the token. */
int enroll_answer_read(const struct identity *id, const struct enroll_token *tok,
		       const struct hqlink_response *resp, struct enrolment *e,
		       struct fs_error *err)
{
	uint8_t fp[TOKEN_FP_BYTES];
	cJSON *o = resp->body ? cJSON_ParseWithLength(resp->body, resp->len) : NULL;
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(o, "device");
	int r = 0;

	if (!cJSON_IsObject(o) || !cJSON_IsString(dev) || strcmp(dev->valuestring, id->id) != 0 ||
	    name_copy(o, "team", e->team) < 0 ||
	    name_copy(o, "municipality", e->municipality) < 0 ||
	    hqlink_json_base64(o, "hq_sign_pk", e->target.hq_sign_pk, sizeof(e->target.hq_sign_pk),
			       sizeof(e->target.hq_sign_pk), NULL) < 0 ||
	    hqlink_json_base64(o, "hq_box_pk", e->hq_box_pk, sizeof(e->hq_box_pk),
			       sizeof(e->hq_box_pk), NULL) < 0) {
		r = fs_error_set(err, -EPROTO,
				 "HQ at %s: enrolment answer is not what the protocol "
				 "specifies (device, team, municipality, hq_sign_pk, hq_box_pk)",
				 e->target.url);
		goto out;
	}
	token_hq_fingerprint(e->target.hq_sign_pk, e->hq_box_pk, fp);
	if (sodium_memcmp(fp, tok->hq_fp, sizeof(fp)) != 0)
		r = fs_error_set(err, -FS_EAUTH,
				 "HQ at %s presented keys that do not match the "
				 "fingerprint in the token; not enrolled (wrong HQ, or someone in "
				 "between)",
				 e->target.url);
out:
	cJSON_Delete(o);
	return r;
}

/* ---- enroll_device ------------------------------------------------------------ */

static int enrolment_save(struct store *s, const struct enrolment *e, struct fs_error *err)
{
	char sign_hex[2 * crypto_sign_PUBLICKEYBYTES + 1],
		box_hex[2 * crypto_box_PUBLICKEYBYTES + 1];
	int r;

	sodium_bin2hex(sign_hex, sizeof(sign_hex), e->target.hq_sign_pk,
		       sizeof(e->target.hq_sign_pk));
	sodium_bin2hex(box_hex, sizeof(box_hex), e->hq_box_pk, sizeof(e->hq_box_pk));
	if ((r = store_begin(s, err)) < 0)
		return r;
	if ((r = store_meta_put(s, "hq_url", e->target.url, err)) < 0 ||
	    (r = store_meta_put(s, "hq_sign_pk", sign_hex, err)) < 0 ||
	    (r = store_meta_put(s, "hq_box_pk", box_hex, err)) < 0 ||
	    (r = store_meta_put(s, "team", e->team, err)) < 0 ||
	    (r = store_meta_put(s, "municipality", e->municipality, err)) < 0 ||
	    (e->target.tls_pin[0] &&
	     (r = store_meta_put(s, "tls_pin", e->target.tls_pin, err)) < 0)) {
		store_rollback(s);
		return r;
	}
	return store_commit(s, err);
}

int enroll_device(struct store *s, const char *url, const char *token_text, struct hqlink *t,
		  struct enrolment *ret, struct fs_error *err)
{
	char endpoint[HQLINK_URL_MAX + 16], *body = NULL;
	struct enroll_token *tok = secmem_alloc(sizeof(*tok));
	struct hqlink_response resp = { 0 };
	struct enrolment e = { 0 }, old;
	size_t len = 0;
	int r;

	if (!tok)
		return fs_error_set(err, -ENOMEM, "enrol: out of secure memory");
	r = enroll_load(s, &old, err);
	if (r == 0) {
		r = fs_error_set(err, -FS_EEXIST,
				 "this device is already enrolled with HQ at %s "
				 "(team %s); not enrolling again",
				 old.target.url, old.team);
		goto out;
	}
	if (r != -FS_ENOTFOUND)
		goto out;
	if (token_parse(token_text, tok) < 0) {
		r = fs_error_set(err, -FS_EFORMAT,
				 "enrolment token is malformed (expected FS1-... "
				 "as printed by fieldsync-hq enroll-token)");
		goto out;
	}
	if ((r = url_check(url, tok->has_tls_pin, e.target.url, err)) < 0)
		goto out;
	if (tok->has_tls_pin) {
		memcpy(e.target.tls_pin, "sha256//", 8);
		sodium_bin2base64(e.target.tls_pin + 8, sizeof(e.target.tls_pin) - 8, tok->tls_pin,
				  sizeof(tok->tls_pin), sodium_base64_VARIANT_ORIGINAL);
	}
	snprintf(endpoint, sizeof(endpoint), "%s/v1/enroll", e.target.url);
	if ((r = enroll_request_body(store_identity(s), tok, &body, &len, err)) < 0)
		goto out;
	r = t->post(t, endpoint, "application/json", (const uint8_t *)body, len,
		    e.target.tls_pin[0] ? e.target.tls_pin : NULL, &resp, err);
	if (r < 0)
		goto out;
	if (resp.status != 200) {
		r = answer_refused(e.target.url, &resp, err);
		goto out;
	}
	if ((r = enroll_answer_read(store_identity(s), tok, &resp, &e, err)) < 0 ||
	    (r = enrolment_save(s, &e, err)) < 0)
		goto out;
	if (ret)
		*ret = e;
out:
	hqlink_response_clear(&resp);
	secmem_free(body);
	secmem_free(tok);
	return r;
}
