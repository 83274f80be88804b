/* status.c - a device's signed health report (sync/status.h). */
#include "sync/status.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bytes.h"

#define MAX_WHOLE 9007199254740992.0 /* 2^53 */

const char *const status_members[STATUS_NMEMBERS] = { "pending_changes", "oldest_unsent_age_s",
						      "last_error",	 "agent_version",
						      "form_version",	 "clock_skew_ms",
						      "free_disk_bytes" };

/* Printable ASCII, 1 to STATUS_TEXT_MAX bytes. */
static int text_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return n >= 1 && n <= STATUS_TEXT_MAX;
}

static cJSON *report_json(const struct status_report *r)
{
	cJSON *o = cJSON_CreateObject(), *forms;

	if (!o ||
	    !cJSON_AddNumberToObject(o, status_members[STATUS_PENDING_CHANGES],
				     (double)r->pending_changes) ||
	    !(r->oldest_unsent_age_s < 0
		      ? cJSON_AddNullToObject(o, status_members[STATUS_OLDEST_UNSENT_AGE_S])
		      : cJSON_AddNumberToObject(o, status_members[STATUS_OLDEST_UNSENT_AGE_S],
						(double)r->oldest_unsent_age_s)) ||
	    !(r->last_error[0]
		      ? cJSON_AddStringToObject(o, status_members[STATUS_LAST_ERROR], r->last_error)
		      : cJSON_AddNullToObject(o, status_members[STATUS_LAST_ERROR])) ||
	    !cJSON_AddStringToObject(o, status_members[STATUS_AGENT_VERSION], r->agent_version) ||
	    !(forms = cJSON_AddObjectToObject(o, status_members[STATUS_FORM_VERSION])))
		goto fail;
	for (size_t i = 0; i < r->nforms; i++)
		if (!cJSON_AddNumberToObject(forms, r->forms[i].collection,
					     (double)r->forms[i].version))
			goto fail;
	if (!(r->has_skew ? cJSON_AddNumberToObject(o, status_members[STATUS_CLOCK_SKEW_MS],
						    (double)r->clock_skew_ms)
			  : cJSON_AddNullToObject(o, status_members[STATUS_CLOCK_SKEW_MS])) ||
	    !cJSON_AddNumberToObject(o, status_members[STATUS_FREE_DISK_BYTES],
				     (double)r->free_disk_bytes))
		goto fail;
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

int status_encode(const struct status_report *r, const uint8_t sign_sk[crypto_sign_SECRETKEYBYTES],
		  uint8_t **ret, size_t *ret_len, struct fs_error *err)
{
	cJSON *o = NULL;
	char *text = NULL;
	uint8_t *buf = NULL;
	size_t n, total;
	int rc = 0;

	if (!text_ok(r->agent_version) || (r->last_error[0] && !text_ok(r->last_error)) ||
	    r->nforms > STATUS_MAX_FORMS)
		return fs_error_set(err, -FS_EUSAGE,
				    "status report: a text or a list is over its "
				    "limits");
	for (size_t i = 0; i < r->nforms; i++)
		if (!text_ok(r->forms[i].collection))
			return fs_error_set(err, -FS_EUSAGE, "status report: a collection's name");
	if (!(o = report_json(r)) || !(text = cJSON_PrintUnformatted(o))) {
		rc = fs_error_set(err, -ENOMEM, "status report: out of memory");
		goto out;
	}
	n = strlen(text);
	if (n > STATUS_JSON_MAX) {
		rc = fs_error_set(err, -FS_ELIMIT, "status report: over %d bytes", STATUS_JSON_MAX);
		goto out;
	}
	total = STATUS_FIXED + n + crypto_sign_BYTES;
	if (!(buf = calloc(1, total))) {
		rc = fs_error_set(err, -ENOMEM, "status report: out of memory");
		goto out;
	}
	memcpy(buf, STATUS_MAGIC, 4);
	buf[4] = STATUS_VERSION;
	memcpy(buf + 8, r->device, 16);
	bytes_put_be(buf + 24, r->wall_ms, 8);
	bytes_put_be(buf + 32, n, 4);
	memcpy(buf + STATUS_FIXED, text, n);
	crypto_sign_detached(buf + STATUS_FIXED + n, NULL, buf, STATUS_FIXED + n, sign_sk);
	*ret = buf;
	*ret_len = total;
	buf = NULL;
out:
	free(buf);
	cJSON_free(text);
	cJSON_Delete(o);
	return rc;
}

/* A whole number member in [lo, 2^53], or null when nullable. */
static int whole(const cJSON *v, double lo, int nullable, int64_t *ret)
{
	if (nullable && cJSON_IsNull(v)) {
		*ret = -1;
		return 1;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
	    v->valuedouble > MAX_WHOLE)
		return 0;
	*ret = (int64_t)v->valuedouble;
	return 1;
}

/* The JSON object's members into r, each as the header says. */
static int members_read(const cJSON *o, struct status_report *r)
{
	const cJSON *m[STATUS_NMEMBERS], *it;
	int64_t v;
	size_t i = 0;

	if (!cJSON_IsObject(o))
		return 0;
	for (it = o->child; it; it = it->next, i++)
		if (i >= STATUS_NMEMBERS || !it->string || strcmp(it->string, status_members[i]))
			return 0;
		else
			m[i] = it;
	if (i != STATUS_NMEMBERS || !whole(m[0], 0, 0, &v))
		return 0;
	r->pending_changes = (uint64_t)v;
	if (!whole(m[1], 0, 1, &r->oldest_unsent_age_s))
		return 0;
	if (!cJSON_IsNull(m[2]) && !(cJSON_IsString(m[2]) && text_ok(m[2]->valuestring)))
		return 0;
	snprintf(r->last_error, sizeof(r->last_error), "%s",
		 cJSON_IsString(m[2]) ? m[2]->valuestring : "");
	if (!cJSON_IsString(m[3]) || !text_ok(m[3]->valuestring))
		return 0;
	snprintf(r->agent_version, sizeof(r->agent_version), "%s", m[3]->valuestring);
	if (!cJSON_IsObject(m[4]))
		return 0;
	cJSON_ArrayForEach(it, m[4])
	{
		if (r->nforms == STATUS_MAX_FORMS || !text_ok(it->string) || !whole(it, 0, 0, &v) ||
		    v > UINT32_MAX)
			return 0;
		snprintf(r->forms[r->nforms].collection, sizeof(r->forms[0].collection), "%s",
			 it->string);
		r->forms[r->nforms++].version = (uint32_t)v;
	}
	if (cJSON_IsNull(m[5])) {
		r->has_skew = 0;
	} else if (cJSON_IsNumber(m[5]) && fabs(m[5]->valuedouble) <= MAX_WHOLE &&
		   m[5]->valuedouble == floor(m[5]->valuedouble)) {
		r->has_skew = 1;
		r->clock_skew_ms = (int64_t)m[5]->valuedouble;
	} else {
		return 0;
	}
	if (!whole(m[6], 0, 0, &v))
		return 0;
	r->free_disk_bytes = (uint64_t)v;
	return 1;
}

int status_parse(const uint8_t *buf, size_t len, struct status_report *ret, cJSON **ret_json,
		 struct fs_error *err)
{
	struct status_report r;
	cJSON *o = NULL;
	size_t n;

	memset(&r, 0, sizeof(r));
	if (len < STATUS_FIXED + 2 + crypto_sign_BYTES || len > STATUS_MAX_BYTES)
		return fs_error_set(err, -FS_EFORMAT, "status report: %zu bytes", len);
	if (memcmp(buf, STATUS_MAGIC, 4) || buf[4] != STATUS_VERSION || buf[5] || buf[6] || buf[7])
		return fs_error_set(err, -FS_EFORMAT, "status report: not version %d",
				    STATUS_VERSION);
	n = (size_t)bytes_get_be(buf + 32, 4);
	if (n < 2 || n > STATUS_JSON_MAX || STATUS_FIXED + n + crypto_sign_BYTES != len)
		return fs_error_set(err, -FS_EFORMAT, "status report: its length is not its own");
	memcpy(r.device, buf + 8, 16);
	r.wall_ms = bytes_get_be(buf + 24, 8);
	if (!(o = cJSON_ParseWithLength((const char *)buf + STATUS_FIXED, n)))
		return fs_error_set(err, -FS_EFORMAT, "status report: not JSON");
	if (!members_read(o, &r)) {
		cJSON_Delete(o);
		return fs_error_set(err, -FS_EFORMAT,
				    "status report: members are not the report's");
	}
	*ret = r;
	if (ret_json)
		*ret_json = o;
	else
		cJSON_Delete(o);
	return 0;
}

int status_verify(const uint8_t *buf, size_t len, const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES])
{
	if (len < STATUS_FIXED + crypto_sign_BYTES)
		return -FS_EAUTH;
	return crypto_sign_verify_detached(buf + len - crypto_sign_BYTES, buf,
					   len - crypto_sign_BYTES, sign_pk) == 0
		       ? 0
		       : -FS_EAUTH;
}
