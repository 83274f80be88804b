/* hqenroll.c - enrolment tokens and POST /v1/enroll.
 *
 * Sections: tokens; parsing the request; registering the device.
 */
#include "hq/hqenroll.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hq/audit.h"
#include "hq/hqsql.h"
#include "hq/scope.h"
#include "hq/refusal.h"

#define SECRET_HASH_HEX (2 * 32 + 1)

/* ---- tokens ------------------------------------------------------------ */

int hqenroll_token_create(struct hqsql *db, const struct identity *hq, const char *team,
			  const char *municipality, const char *scope, uint64_t now_ms,
			  uint64_t expires_ms, const uint8_t *tls_pin, char out[TOKEN_TEXT_MAX],
			  struct fs_error *err)
{
	struct enroll_token t = { 0 };
	uint8_t h[32];
	char hex[SECRET_HASH_HEX], detail[64], *scope_json = NULL;
	struct hqsql_stmt *st = NULL;
	cJSON *names = NULL;
	int r;

	if (!team[0] || !municipality[0] || strlen(team) > HQENROLL_MAX_NAME ||
	    strlen(municipality) > HQENROLL_MAX_NAME)
		return fs_error_set(err, -FS_EUSAGE, "team and municipality need 1 to %d bytes",
				    HQENROLL_MAX_NAME);
	if (scope) {
		if ((r = scope_parse(scope, &names, err)) < 0)
			return r;
		scope_json = cJSON_PrintUnformatted(names);
		cJSON_Delete(names);
		if (!scope_json)
			return fs_error_set(err, -ENOMEM, "out of memory");
	}
	randombytes_buf(t.secret, sizeof(t.secret));
	token_hq_fingerprint(hq->sign_pk, hq->box_pk, t.hq_fp);
	if (tls_pin) {
		t.has_tls_pin = 1;
		memcpy(t.tls_pin, tls_pin, TOKEN_TLS_PIN_BYTES);
	}
	token_secret_hash(t.secret, h);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		goto out;
	if ((r = hqsql_prepare(db,
			       "INSERT INTO tokens(secret_hash, team, municipality, "
			       "expires_at, scope) VALUES (?1, ?2, ?3, ?4, ?5)",
			       &st, err)) < 0)
		goto rollback;
	hqsql_bind_text(st, 1, hex);
	hqsql_bind_text(st, 2, team);
	hqsql_bind_text(st, 3, municipality);
	hqsql_bind_int64(st, 4, (int64_t)expires_ms);
	hqsql_bind_text(st, 5, scope_json);
	if (hqsql_step(st) != HQSQL_DONE) {
		r = hqsql_fail(db, "store token", err);
		goto rollback;
	}
	/* The event names the token by a prefix of its hash, never the secret. */
	snprintf(detail, sizeof(detail), "{\"token\":\"%.16s\"}", hex);
	if ((r = audit_append(db, now_ms, "token_created", NULL, detail, err)) < 0 ||
	    (r = hqsql_commit(db, err)) < 0)
		goto rollback;
	token_format(&t, out);
	goto out;
rollback:
	hqsql_rollback(db);
out:
	hqsql_finalize(st);
	sodium_memzero(&t, sizeof(t));
	cJSON_free(scope_json);
	return r;
}

/* ---- parsing the request ------------------------------------------------ */

struct enroll_req {
	struct enroll_token token;
	char device[IDENTITY_ID_HEXLEN + 1];
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES];
	uint8_t proof[crypto_sign_BYTES];
};

void hqenroll_result_clear(struct hqenroll_result *r)
{
	if (!r)
		return;
	cJSON_Delete(r->body);
	memset(r, 0, sizeof(*r));
}

static const char *member_string(const cJSON *o, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* Base64 (original variant, padded) of exactly n bytes. */
static int decode_b64(const char *s, uint8_t *out, size_t n)
{
	size_t got = 0;
	const char *end = NULL;

	if (!s ||
	    sodium_base642bin(out, n, s, strlen(s), NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    *end || got != n)
		return -FS_EFORMAT;
	return 0;
}

/* 0 with req filled, or 0 with ret refused (400). */
static int parse_request(const char *json, size_t len, struct enroll_req *req,
			 struct hqenroll_result *ret)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	const char *token, *device;

	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return REFUSE(ret, 400, "malformed", "the body is not a JSON object");
	}
	token = member_string(o, "token");
	device = member_string(o, "device");
	if (!token || token_parse(token, &req->token) < 0)
		REFUSE(ret, 400, "malformed", "\"token\" is missing or not an enrolment token");
	else if (!identity_id_text_ok(device))
		REFUSE(ret, 400, "malformed", "\"device\" must be %d lower-case hex digits",
		       IDENTITY_ID_HEXLEN);
	else if (decode_b64(member_string(o, "sign_pk"), req->sign_pk, sizeof(req->sign_pk)) < 0)
		REFUSE(ret, 400, "malformed", "\"sign_pk\" must be base64 of %d bytes",
		       crypto_sign_PUBLICKEYBYTES);
	else if (decode_b64(member_string(o, "box_pk"), req->box_pk, sizeof(req->box_pk)) < 0)
		REFUSE(ret, 400, "malformed", "\"box_pk\" must be base64 of %d bytes",
		       crypto_box_PUBLICKEYBYTES);
	else if (decode_b64(member_string(o, "proof"), req->proof, sizeof(req->proof)) < 0)
		REFUSE(ret, 400, "malformed", "\"proof\" must be base64 of %d bytes",
		       crypto_sign_BYTES);
	else
		memcpy(req->device, device, sizeof(req->device));
	cJSON_Delete(o);
	return 0;
}

/* ---- registering the device --------------------------------------------- */

struct token_row {
	char team[HQENROLL_MAX_NAME + 1];
	char municipality[HQENROLL_MAX_NAME + 1];
	cJSON *scope;  /* the token's scope names; NULL: the municipality */
	int same_keys; /* spent: the device enrolled with the keys asked with */
};

/* The token's row: 1 with row filled when it is unused and unexpired, 2
 * when it was spent by device (which then gets its answer again), 0 when
 * it is neither; < 0 on error. */
static int token_lookup(struct hqsql *db, const char *hash_hex, const struct enroll_req *req,
			uint64_t now_ms, struct token_row *row, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	/* A spent token still answers the device that spent it, while that
	 * device is active: an enrolment whose answer was lost on the way
	 * can be retried with the same token. */
	if ((r = hqsql_prepare(
		     db,
		     "SELECT t.team, t.municipality, t.used_at IS NOT NULL, "
		     "CASE WHEN d.sign_pk = ?4 AND d.box_pk = ?5 THEN 1 ELSE 0 END, t.scope "
		     "FROM tokens t "
		     "LEFT JOIN devices d ON d.id = t.device "
		     "WHERE t.secret_hash = ?1 AND ((t.used_at IS NULL AND t.expires_at > ?2) "
		     "OR (t.device = ?3 AND d.state = 'active'))",
		     &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, hash_hex);
	hqsql_bind_int64(st, 2, (int64_t)now_ms);
	hqsql_bind_text(st, 3, req->device);
	hqsql_bind_blob(st, 4, req->sign_pk, (size_t)(sizeof(req->sign_pk)));
	hqsql_bind_blob(st, 5, req->box_pk, (size_t)(sizeof(req->box_pk)));
	rc = hqsql_step(st);
	if (rc == HQSQL_ROW) {
		snprintf(row->team, sizeof(row->team), "%s", hqsql_column_text(st, 0));
		snprintf(row->municipality, sizeof(row->municipality), "%s",
			 hqsql_column_text(st, 1));
		row->same_keys = (int)hqsql_column_int64(st, 3);
		r = (int)hqsql_column_int64(st, 2) ? 2 : 1;
		if (!hqsql_column_is_null(st, 4) &&
		    !(row->scope = cJSON_Parse(hqsql_column_text(st, 4))))
			r = fs_error_set(err, -FS_ECORRUPT, "token: stored scope is not JSON");
	} else {
		r = rc == HQSQL_DONE ? 0 : hqsql_fail(db, "look up token", err);
	}
	hqsql_finalize(st);
	return r;
}

static int device_exists(struct hqsql *db, const char *id, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(db, "SELECT 1 FROM devices WHERE id = ?1", &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, id);
	rc = hqsql_step(st);
	r = rc == HQSQL_ROW ? 1 : rc == HQSQL_DONE ? 0 : hqsql_fail(db, "look up device", err);
	hqsql_finalize(st);
	return r;
}

static int register_device(struct hqsql *db, const struct enroll_req *req,
			   const struct token_row *row, const char *hash_hex, uint64_t now_ms,
			   struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(db,
			       "INSERT INTO devices(id, sign_pk, box_pk, team, municipality, "
			       "enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, req->device);
	hqsql_bind_blob(st, 2, req->sign_pk, (size_t)(sizeof(req->sign_pk)));
	hqsql_bind_blob(st, 3, req->box_pk, (size_t)(sizeof(req->box_pk)));
	hqsql_bind_text(st, 4, row->team);
	hqsql_bind_text(st, 5, row->municipality);
	hqsql_bind_int64(st, 6, (int64_t)now_ms);
	r = hqsql_step(st) == HQSQL_DONE ? 0 : hqsql_fail(db, "register device", err);
	hqsql_finalize(st);
	if (r == 0) {
		cJSON *muni = row->scope ? NULL
					 : cJSON_CreateStringArray(
						   (const char *const[]){ row->municipality }, 1);

		if (!row->scope && !muni)
			return fs_error_set(err, -ENOMEM, "out of memory");
		r = scope_store(db, req->device, row->scope ? row->scope : muni, err);
		cJSON_Delete(muni);
	}
	if (r < 0 || (r = hqsql_prepare(db,
					"UPDATE tokens SET used_at = ?2, device = ?3 "
					"WHERE secret_hash = ?1",
					&st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, hash_hex);
	hqsql_bind_int64(st, 2, (int64_t)now_ms);
	hqsql_bind_text(st, 3, req->device);
	r = hqsql_step(st) == HQSQL_DONE ? 0 : hqsql_fail(db, "spend token", err);
	hqsql_finalize(st);
	return r;
}

static int build_body(const struct identity *hq, const struct enroll_req *req,
		      const struct token_row *row, struct hqenroll_result *ret)
{
	char sign_b64[sodium_base64_ENCODED_LEN(crypto_sign_PUBLICKEYBYTES,
						sodium_base64_VARIANT_ORIGINAL)];
	char box_b64[sodium_base64_ENCODED_LEN(crypto_box_PUBLICKEYBYTES,
					       sodium_base64_VARIANT_ORIGINAL)];
	cJSON *o = cJSON_CreateObject();

	sodium_bin2base64(sign_b64, sizeof(sign_b64), hq->sign_pk, crypto_sign_PUBLICKEYBYTES,
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(box_b64, sizeof(box_b64), hq->box_pk, crypto_box_PUBLICKEYBYTES,
			  sodium_base64_VARIANT_ORIGINAL);
	if (!o || !cJSON_AddStringToObject(o, "device", req->device) ||
	    !cJSON_AddStringToObject(o, "team", row->team) ||
	    !cJSON_AddStringToObject(o, "municipality", row->municipality) ||
	    !cJSON_AddStringToObject(o, "hq_sign_pk", sign_b64) ||
	    !cJSON_AddStringToObject(o, "hq_box_pk", box_b64)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	ret->body = o;
	ret->status = 200;
	return 0;
}

/* Every check of a token found (found: token_lookup's 1 or 2), then the
 * writes. */
static int enroll_token_found(struct hqsql *db, const struct identity *hq,
			      const struct enroll_req *req, const struct token_row *rowp,
			      const char *hash_hex, int found, uint64_t now_ms,
			      struct hqenroll_result *ret, struct fs_error *err)
{
	uint8_t msg[TOKEN_ENROLL_MSG_BYTES];
	char derived[IDENTITY_ID_HEXLEN + 1], detail[128];
	const struct token_row row = *rowp;
	int r, repeat = found == 2;

	token_enroll_message(req->token.secret, req->sign_pk, req->box_pk, msg);
	identity_device_id(req->sign_pk, derived);
	if (crypto_sign_verify_detached(req->proof, msg, sizeof(msg), req->sign_pk) != 0)
		return REFUSE(ret, 401, "bad_proof", "the proof does not verify with sign_pk");
	if (strcmp(derived, req->device))
		return REFUSE(ret, 401, "bad_proof", "the device id is not derived from sign_pk");
	if (repeat) {
		/* The same device, proving the same token again: its answer
		 * was lost.  Nothing changes but the audit log. */
		if (!row.same_keys)
			return REFUSE(ret, 401, "bad_token",
				      "the token is unknown, used or expired");
		snprintf(detail, sizeof(detail), "{\"token\":\"%.16s\",\"repeat\":true}", hash_hex);
		if ((r = audit_append(db, now_ms, "enroll", req->device, detail, err)) < 0)
			return r;
		return build_body(hq, req, &row, ret) < 0
			       ? fs_error_set(err, -ENOMEM, "out of memory")
			       : 0;
	}
	if ((r = device_exists(db, req->device, err)) < 0)
		return r;
	if (r == 1)
		return REFUSE(ret, 409, "already_enrolled", "device %s is already enrolled",
			      req->device);
	snprintf(detail, sizeof(detail), "{\"token\":\"%.16s\"}", hash_hex);
	if ((r = register_device(db, req, &row, hash_hex, now_ms, err)) < 0 ||
	    (r = audit_append(db, now_ms, "enroll", req->device, detail, err)) < 0)
		return r;
	if (build_body(hq, req, &row, ret) < 0)
		return fs_error_set(err, -ENOMEM, "out of memory");
	return 0;
}

/* Inside the transaction. */
static int enroll_locked(struct hqsql *db, const struct identity *hq, const struct enroll_req *req,
			 uint64_t now_ms, struct hqenroll_result *ret, struct fs_error *err)
{
	char hash_hex[SECRET_HASH_HEX];
	struct token_row row = { 0 };
	uint8_t h[32];
	int r;

	token_secret_hash(req->token.secret, h);
	sodium_bin2hex(hash_hex, sizeof(hash_hex), h, sizeof(h));
	r = token_lookup(db, hash_hex, req, now_ms, &row, err);
	if (r == 0)
		r = REFUSE(ret, 401, "bad_token", "the token is unknown, used or expired");
	else if (r > 0)
		r = enroll_token_found(db, hq, req, &row, hash_hex, r, now_ms, ret, err);
	cJSON_Delete(row.scope);
	return r;
}

int hqenroll_audit_refusal(struct hqsql *db, uint64_t now_ms, const char *peer, const char *error,
			   struct fs_error *err)
{
	int r;

	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		return r;
	if ((r = audit_append_strings(db, now_ms, "enroll_rejected", NULL, err, "peer", peer,
				      "error", error, (const char *)NULL)) == 0)
		r = hqsql_commit(db, err);
	hqsql_rollback(db);
	return r;
}

int hqenroll_device(struct hqsql *db, const struct identity *hq, const char *json, size_t len,
		    uint64_t now_ms, struct hqenroll_result *ret, struct fs_error *err)
{
	struct hqenroll_result res = { 0 };
	struct enroll_req req = { 0 };
	int r = 0;

	if ((r = parse_request(json, len, &req, &res)) < 0 || res.status)
		goto done;
	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		goto done;
	r = enroll_locked(db, hq, &req, now_ms, &res, err);
	if (r == 0 && res.status == 200)
		r = hqsql_commit(db, err);
	hqsql_rollback(db);
done:
	sodium_memzero(&req, sizeof(req));
	if (r < 0) {
		hqenroll_result_clear(&res);
		return r;
	}
	*ret = res;
	return 0;
}

int hqenroll_device_keys(struct hqsql *db, const char *device, uint8_t *sign_pk, uint8_t *box_pk,
			 int *revoked, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(db, "SELECT sign_pk, box_pk, state FROM devices WHERE id = ?1", &st,
			       err)) < 0)
		return r;
	hqsql_bind_text(st, 1, device);
	rc = hqsql_step(st);
	if (rc == HQSQL_ROW && (int)hqsql_column_bytes(st, 0) == crypto_sign_PUBLICKEYBYTES &&
	    (int)hqsql_column_bytes(st, 1) == crypto_box_PUBLICKEYBYTES) {
		memcpy(sign_pk, hqsql_column_blob(st, 0), crypto_sign_PUBLICKEYBYTES);
		memcpy(box_pk, hqsql_column_blob(st, 1), crypto_box_PUBLICKEYBYTES);
		*revoked = !strcmp(hqsql_column_text(st, 2), "revoked");
		r = 1;
	} else if (rc == HQSQL_ROW) {
		r = fs_error_set(err, -FS_ECORRUPT, "device %s: stored keys have a bad length",
				 device);
	} else {
		r = rc == HQSQL_DONE ? 0 : hqsql_fail(db, "look up device", err);
	}
	hqsql_finalize(st);
	return r;
}
