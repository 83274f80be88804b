/* report.c - this device's health report to HQ (agent/report.h). */
#include "agent/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ballast.h"
#include "agent/devforms.h"
#include "agent/push.h"
#include "agent/skew.h"
#include "agent/synclog.h"

static int add_form(const char *collection, uint32_t version, int from_hq, void *ctx)
{
	struct status_report *rep = ctx;

	(void)from_hq;
	if (rep->nforms == STATUS_MAX_FORMS || strlen(collection) > STATUS_TEXT_MAX)
		return 0;
	snprintf(rep->forms[rep->nforms].collection, sizeof(rep->forms[0].collection), "%s",
		 collection);
	rep->forms[rep->nforms++].version = version;
	return 0;
}

int report_build(struct store *s, const char *forms_dir, struct status_report *ret,
		 struct fs_error *err)
{
	struct status_report rep;
	struct ballast_state b = { 0 };
	uint64_t oldest = 0, now = store_wall_ms(s), at = 0;
	unsigned long long changes = 0, bytes = 0;
	int64_t skew = 0;
	int r, found = 0;

	memset(&rep, 0, sizeof(rep));
	if (sodium_hex2bin(rep.device, sizeof(rep.device), store_identity(s)->id,
			   strlen(store_identity(s)->id), NULL, NULL, NULL) < 0)
		return fs_error_set(err, -FS_ECORRUPT, "store: the device id is damaged");
	rep.wall_ms = now;
	snprintf(rep.agent_version, sizeof(rep.agent_version), "%s", FS_VERSION);
	if ((r = push_backlog(s, &changes, &bytes, err)) < 0 ||
	    (r = push_oldest_unsent(s, &oldest, err)) < 0 ||
	    (r = synclog_last_failure(s, rep.last_error, sizeof(rep.last_error), err)) < 0 ||
	    (r = devforms_list(s, forms_dir, add_form, &rep, err)) < 0 ||
	    (r = skew_load(s, &skew, &at, &found, err)) < 0 ||
	    (r = store_room_state(s, &b, err)) < 0)
		return r;
	rep.pending_changes = changes;
	rep.oldest_unsent_age_s = oldest ? (int64_t)((now > oldest ? now - oldest : 0) / 1000) : -1;
	rep.has_skew = found;
	rep.clock_skew_ms = skew;
	rep.free_disk_bytes = b.disk_free;
	*ret = rep;
	return 0;
}

int report_send(struct store *s, const struct enrolment *en, const char *forms_dir,
		struct hqlink *t, struct fs_error *err)
{
	struct hqlink_response resp = { 0 };
	char url[HQLINK_URL_MAX + 16];
	struct status_report rep;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = report_build(s, forms_dir, &rep, err)) < 0 ||
	    (r = status_encode(&rep, store_identity(s)->sign_sk, &buf, &len, err)) < 0)
		return r;
	snprintf(url, sizeof(url), "%s/v1/status", en->target.url);
	r = t->post(t, url, REPORT_TYPE, buf, len,
		    en->target.tls_pin[0] ? en->target.tls_pin : NULL, &resp, err);
	free(buf);
	if (r == 0 && resp.status != 204)
		r = hqlink_answer_error(url, "status report", &resp, err);
	hqlink_response_clear(&resp);
	return r;
}
