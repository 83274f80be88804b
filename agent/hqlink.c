/* hqlink.c - see hqlink.h.  Sections: responses and JSON helpers; the
 * libcurl transport; what HQ's refusals mean. */
#include "agent/hqlink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- responses and JSON helpers ----------------------------------------- */

void hqlink_response_clear(struct hqlink_response *r)
{
	if (!r)
		return;
	free(r->body);
	free(r->checkpoint);
	memset(r, 0, sizeof(*r));
}

int hqlink_json_base64(const cJSON *o, const char *name, uint8_t *out, size_t cap, size_t want,
		       size_t *ret_len)
{
	static const int variants[] = { sodium_base64_VARIANT_ORIGINAL,
					sodium_base64_VARIANT_ORIGINAL_NO_PADDING };
	const cJSON *v = name ? cJSON_GetObjectItemCaseSensitive(o, name) : o;
	size_t n = 0;

	if (!cJSON_IsString(v) || !v->valuestring)
		return -EPROTO;
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		const char *end = NULL;

		if (sodium_base642bin(out, cap, v->valuestring, strlen(v->valuestring), NULL, &n,
				      &end, variants[i]) == 0 &&
		    *end == '\0') {
			if (want && n != want)
				return -EPROTO;
			if (ret_len)
				*ret_len = n;
			return 0;
		}
	}
	return -EPROTO;
}

/* Copy printable ASCII only: HQ's text goes into our messages. */
static void safe_copy(char *out, size_t cap, const char *in)
{
	size_t j = 0;

	for (size_t i = 0; in && in[i] && j + 1 < cap; i++)
		out[j++] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
	out[j] = '\0';
}

void hqlink_error_text(const struct hqlink_response *r, char *out, size_t cap)
{
	char code[48] = "", msg[128] = "";
	cJSON *o = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "error");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");

	if (cJSON_IsString(c))
		safe_copy(code, sizeof(code), c->valuestring);
	if (cJSON_IsString(m))
		safe_copy(msg, sizeof(msg), m->valuestring);
	if (code[0] || msg[0])
		snprintf(out, cap, "%s%s%s", code, code[0] && msg[0] ? ": " : "", msg);
	else
		snprintf(out, cap, "no error description");
	cJSON_Delete(o);
}

struct hqlink *hqlink_free(struct hqlink *t)
{
	if (t && t->destroy)
		t->destroy(t);
	return NULL;
}

/* ---- what HQ's refusals mean ---------------------------------------------- */

int hqlink_answer_error(const char *url, const char *what, const struct hqlink_response *resp,
			struct fs_error *err)
{
	char why[200];

	hqlink_error_text(resp, why, sizeof(why));
	switch (resp->status) {
	case 403:
		return fs_error_set(err, -EACCES,
				    "HQ at %s refused %s: this device has been revoked; ask your "
				    "HQ administrator (%s)",
				    url, what, why);
	case 401:
		return fs_error_set(err, -EPERM,
				    "HQ at %s refused %s: this device is not accepted (%s)", url,
				    what, why);
	case 400:
		return fs_error_set(err, -EBADMSG, "HQ at %s rejected %s as malformed (%s)", url,
				    what, why);
	case 413:
		return fs_error_set(err, -FS_ELIMIT, "HQ at %s rejected %s as too large (%s)", url,
				    what, why);
	case 429:
	case 503:
		return fs_error_set(err, -EBUSY, "HQ at %s is overloaded; retry later (%s)", url,
				    why);
	default:
		return fs_error_set(err, -EPROTO, "HQ at %s answered HTTP %ld for %s (%s)", url,
				    resp->status, what, why);
	}
}
