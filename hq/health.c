/* health.c - the devices' health reports at HQ (hq/health.h). */
#include "hq/health.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "hq/hqenroll.h"
#include "hq/refusal.h"
#include "sync/hlc.h"
#include "sync/status.h"

int health_report(struct hqsql *db, const uint8_t *body, size_t len, uint64_t now_ms,
		  struct health_result *ret, struct fs_error *err)
{
	struct status_report rep;
	struct hqsql_stmt *st = NULL;
	cJSON *json = NULL;
	char *text = NULL;
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], box_pk[crypto_box_PUBLICKEYBYTES];
	int r, revoked = 0;

	memset(ret, 0, sizeof(*ret));
	if (status_parse(body, len, &rep, &json, NULL) < 0)
		return REFUSE(ret, 400, "malformed", "not a status report");
	sodium_bin2hex(ret->device, sizeof(ret->device), rep.device, sizeof(rep.device));
	if ((r = hqenroll_device_keys(db, ret->device, sign_pk, box_pk, &revoked, err)) < 0)
		goto out;
	if (r == 0) {
		REFUSE(ret, 401, "unknown_device", "the device is not enrolled");
		goto out;
	}
	r = 0;
	if (status_verify(body, len, sign_pk) < 0) {
		REFUSE(ret, 401, "bad_signature",
		       "the signature does not verify with the enrolled key");
		goto out;
	}
	if (revoked) {
		REFUSE(ret, 403, "revoked", "the device has been revoked");
		goto out;
	}
	if (!(text = cJSON_PrintUnformatted(json))) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = hqsql_prepare(
		     db,
		     "UPDATE devices SET health = ?2, health_at = ?3, last_seen = CASE "
		     "WHEN last_seen IS NULL OR last_seen < ?3 THEN ?3 ELSE last_seen END "
		     "WHERE id = ?1",
		     &st, err)) < 0)
		goto out;
	hqsql_bind_text(st, 1, ret->device);
	hqsql_bind_text(st, 2, text);
	hqsql_bind_int64(st, 3, (int64_t)now_ms);
	if (hqsql_step(st) != HQSQL_DONE) {
		r = hqsql_fail(db, "keep the device's report", err);
		goto out;
	}
	ret->status = 204;
out:
	hqsql_finalize(st);
	cJSON_free(text);
	cJSON_Delete(json);
	return r;
}

int health_add_facts(cJSON *device, const char *report, int64_t reported_ms, uint64_t now_ms)
{
	cJSON *o = report ? cJSON_Parse(report) : NULL;
	char at[HLC_TIME_LEN + 1];
	int r = 0;

	for (size_t i = 0; i < STATUS_NMEMBERS && r == 0; i++) {
		cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(o, status_members[i]);

		/* The age as of now: the report said it as of its time. */
		if (cJSON_IsNumber(v) && i == STATUS_OLDEST_UNSENT_AGE_S && reported_ms >= 0 &&
		    now_ms > (uint64_t)reported_ms)
			cJSON_SetNumberValue(
				v,
				v->valuedouble + (double)((now_ms - (uint64_t)reported_ms) / 1000));
		if (!v)
			v = cJSON_CreateNull();
		if (!v || !cJSON_AddItemToObject(device, status_members[i], v)) {
			cJSON_Delete(v);
			r = -ENOMEM;
		}
	}
	cJSON_Delete(o);
	if (r == 0 && reported_ms >= 0) {
		hlc_format_time((hlc_t)reported_ms << 16, at);
		if (!cJSON_AddStringToObject(device, "reported_at", at))
			r = -ENOMEM;
	} else if (r == 0 && !cJSON_AddNullToObject(device, "reported_at")) {
		r = -ENOMEM;
	}
	return r;
}

int health_red(const cJSON *device, uint64_t now_ms, unsigned unseen_hours, unsigned backlog_hours,
	       const char **ret_why)
{
	const cJSON *seen = cJSON_GetObjectItemCaseSensitive(device, "last_seen_ms");
	const cJSON *age = cJSON_GetObjectItemCaseSensitive(device, "oldest_unsent_age_s");
	uint64_t at =
		cJSON_IsNumber(seen) && seen->valuedouble > 0 ? (uint64_t)seen->valuedouble : 0;

	*ret_why = "";
	if (!at)
		*ret_why = "never seen";
	else if (now_ms > at && now_ms - at > (uint64_t)unseen_hours * 3600000u)
		*ret_why = "not seen for too long";
	else if (cJSON_IsNumber(age) && age->valuedouble > (double)backlog_hours * 3600)
		*ret_why = "changes waiting to be sent for too long";
	return (*ret_why)[0] != '\0';
}
