/* appforms.c - the field app's forms and drafts (agent/appforms.h). */
#include "agent/appforms.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "agent/agentd.h"
#include "agent/attach.h"
#include "agent/devforms.h"
#include "agent/drafts.h"
#include "crypto/secmem.h"
#include "sync/log.h"
#include "web/http.h"
#include "web/request.h"

/* The collections the app records. */
static const char *const collections[] = { "beneficiaries", "visits" };

static int app_collection(const char *name)
{
	for (size_t i = 0; name && i < sizeof(collections) / sizeof(collections[0]); i++)
		if (!strcmp(name, collections[i]))
			return 1;
	return 0;
}

/* An error from the store or the form, as the browser is told it. */
static enum MHD_Result send_failure(struct MHD_Connection *conn, int r, const struct fs_error *err)
{
	return web_send_failure(conn, r, err, "field app", "store",
				"the agent could not use its store; see its log");
}

enum MHD_Result appforms_forms(struct agent *a, struct MHD_Connection *conn)
{
	struct fs_error err = { 0 };
	cJSON *o = cJSON_CreateObject();
	int r = o ? 0 : -ENOMEM;

	if (!a->store) {
		cJSON_Delete(o);
		return web_send_error(conn, MHD_HTTP_CONFLICT, "locked", "the store is locked");
	}
	for (size_t i = 0; r == 0 && i < sizeof(collections) / sizeof(collections[0]); i++) {
		struct form *f = NULL;
		cJSON *def;

		if ((r = devforms_load(a->store, a->c->cfg.forms_dir, collections[i], &f, &err)) <
		    0)
			break;
		def = cJSON_Parse(form_definition(f));
		if (!def || !cJSON_AddItemToObject(o, collections[i], def)) {
			cJSON_Delete(def);
			r = fs_error_set(&err, -ENOMEM, "out of memory");
		}
		form_free(f);
	}
	if (r < 0) {
		cJSON_Delete(o);
		return send_failure(conn, r, &err);
	}
	return web_send_json(conn, MHD_HTTP_OK, o, NULL);
}

int appforms_is_draft(const char *url)
{
	return !strcmp(url, "/api/drafts") || !strncmp(url, "/api/draft/", 11);
}

/* The form of a collection the app records. */
static int load_form(struct agent *a, const char *collection, struct form **ret,
		     struct fs_error *err)
{
	if (!app_collection(collection))
		return fs_error_set(err, -FS_EUSAGE, "the app records no such collection");
	return devforms_load(a->store, a->c->cfg.forms_dir, collection, ret, err);
}

/* {"id", "collection", "values", "report"} for a draft's fields, and
 * "fields" too when with_fields: values is the record as it would be
 * written (settled: calculations done, answers not asked left out), the
 * report what the page shows beside each field. */
static int draft_answer(const struct form *f, const char *id, const cJSON *fields, int with_fields,
			cJSON **ret, struct fs_error *err)
{
	cJSON *o = cJSON_CreateObject(), *values = cJSON_Duplicate(fields, 1), *report = NULL;
	int r;

	if (!o || !values || !cJSON_AddStringToObject(o, "id", id) ||
	    !cJSON_AddStringToObject(o, "collection", form_collection(f)) ||
	    (with_fields && !cJSON_AddItemToObject(o, "fields", cJSON_Duplicate(fields, 1)))) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = form_settle(f, values, NULL, err)) < 0 ||
	    (r = form_report(f, values, NULL, &report, err)) < 0)
		goto out;
	if (!cJSON_AddItemToObject(o, "values", values)) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	values = NULL;
	if (!cJSON_AddItemToObject(o, "report", report)) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	report = NULL;
	*ret = o;
	o = NULL;
out:
	cJSON_Delete(report);
	cJSON_Delete(values);
	cJSON_Delete(o);
	return r;
}

/* POST /api/draft/save {"id"?, "collection", "fields"}: keep the fields
 * as typed (a new draft without an id), and report on them. */
static int draft_save(struct agent *a, const cJSON *req, cJSON **ret, struct fs_error *err)
{
	const cJSON *fields = cJSON_GetObjectItemCaseSensitive(req, "fields");
	char id[UUID_TEXT_LEN + 1];
	struct form *f = NULL;
	cJSON *saved = NULL;
	int r;

	/* The answer reports on the fields as stored: a new draft has its
	 * defaults. */
	if ((r = load_form(a, web_json_text(req, "collection"), &f, err)) < 0 ||
	    (r = drafts_save(a->store, f, web_json_text(req, "id"), fields, id, &saved, err)) < 0)
		goto out;
	r = draft_answer(f, id, saved, !web_json_text(req, "id"), ret, err);
out:
	cJSON_Delete(saved);
	form_free(f);
	return r;
}

/* POST /api/draft/open {"id"}: the draft as typed, with its report. */
static int draft_open(struct agent *a, const cJSON *req, cJSON **ret, struct fs_error *err)
{
	char collection[FORM_MAX_NAME + 1];
	const char *id = web_json_text(req, "id");
	struct form *f = NULL;
	cJSON *fields = NULL;
	int r;

	if ((r = drafts_load(a->store, id, collection, sizeof(collection), &fields, err)) < 0 ||
	    (r = load_form(a, collection, &f, err)) < 0)
		goto out;
	r = draft_answer(f, id, fields, 1, ret, err);
out:
	cJSON_Delete(fields);
	form_free(f);
	return r;
}

/* POST /api/draft/finalise {"id"}: write the record and drop the draft,
 * in one transaction; {"record_id"}.  When the record breaks its form,
 * nothing changes and the answer is 422, for the page to ask /open for
 * the report again. */
static int draft_finalise(struct agent *a, const cJSON *req, cJSON **ret, struct fs_error *err)
{
	char collection[FORM_MAX_NAME + 1], rid[UUID_TEXT_LEN + 1];
	const char *id = web_json_text(req, "id");
	struct form *f = NULL;
	cJSON *o = NULL;
	int r;

	/* Which form: drafts_finalise reads the answers itself, in its
	 * transaction. */
	if ((r = drafts_load(a->store, id, collection, sizeof(collection), NULL, err)) < 0 ||
	    (r = load_form(a, collection, &f, err)) < 0 ||
	    (r = drafts_finalise(a->store, f, id, rid, err)) < 0)
		goto out;
	daemon_schedule(a, a->c->cfg.push_delay_ms);
	if (!(o = cJSON_CreateObject()) || !cJSON_AddStringToObject(o, "record_id", rid)) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	*ret = o;
	o = NULL;
out:
	cJSON_Delete(o);
	form_free(f);
	return r;
}

enum MHD_Result appforms_draft(struct agent *a, struct MHD_Connection *conn, const char *url,
			       const cJSON *req)
{
	struct fs_error err = { 0 };
	cJSON *ret = NULL;
	int r;

	if (!strcmp(url, "/api/drafts")) {
		cJSON *list = NULL;

		if ((r = drafts_list(a->store, &list, &err)) == 0 &&
		    (!(ret = cJSON_CreateObject()) ||
		     !cJSON_AddItemToObject(ret, "drafts", list))) {
			cJSON_Delete(list);
			r = fs_error_set(&err, -ENOMEM, "out of memory");
		}
	} else if (!strcmp(url, "/api/draft/save")) {
		r = draft_save(a, req, &ret, &err);
	} else if (!strcmp(url, "/api/draft/open")) {
		r = draft_open(a, req, &ret, &err);
	} else if (!strcmp(url, "/api/draft/finalise")) {
		r = draft_finalise(a, req, &ret, &err);
	} else if (!strcmp(url, "/api/draft/discard")) {
		if ((r = drafts_discard(a->store, web_json_text(req, "id"), &err)) == 0 &&
		    !(ret = cJSON_CreateObject()))
			r = fs_error_set(&err, -ENOMEM, "out of memory");
	} else {
		return web_send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such request");
	}
	if (r < 0) {
		cJSON_Delete(ret);
		return send_failure(conn, r, &err);
	}
	return web_send_json(conn, MHD_HTTP_OK, ret, NULL);
}

/* The file's reference into the draft's field, and the draft saved. */
static int attach_to_draft(struct agent *a, const char *id, const char *field, FILE *in,
			   cJSON **ret, struct fs_error *err)
{
	char collection[FORM_MAX_NAME + 1], saved_id[UUID_TEXT_LEN + 1];
	cJSON *fields = NULL, *ref = NULL, *saved = NULL;
	struct form *f = NULL;
	int r, added = 0;

	if ((r = drafts_load(a->store, id, collection, sizeof(collection), &fields, err)) < 0 ||
	    (r = load_form(a, collection, &f, err)) < 0 ||
	    (r = attach_store(a->store, f, field, in, "the chosen file", 1, &ref, &added, err)) < 0)
		goto out;
	cJSON_DeleteItemFromObjectCaseSensitive(fields, field);
	if (!cJSON_AddItemToObject(fields, field, ref)) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ref = NULL;
	if ((r = drafts_save(a->store, f, id, fields, saved_id, &saved, err)) < 0)
		goto out;
	r = draft_answer(f, id, saved, 1, ret, err);
out:
	cJSON_Delete(ref);
	cJSON_Delete(saved);
	cJSON_Delete(fields);
	form_free(f);
	return r;
}

enum MHD_Result appforms_attach(struct agent *a, struct MHD_Connection *conn,
				const struct web_body *body)
{
	const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Fieldsync-Draft");
	const char *field = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Fieldsync-Field");
	struct fs_error err = { 0 };
	struct secmem_stream in = { 0 };
	cJSON *ret = NULL;
	int r;

	if (!a->store)
		return web_send_error(conn, MHD_HTTP_CONFLICT, "locked", "the store is locked");
	if (!id || !field || !body->file || !body->len)
		return web_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
				      "expected a file, with X-Fieldsync-Draft and "
				      "X-Fieldsync-Field");
	if (secmem_stream_mem(&in, body->file, body->len, ATTACH_IOBUF) < 0)
		return web_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
				      "out of memory");
	r = attach_to_draft(a, id, field, in.fp, &ret, &err);
	secmem_stream_close(&in);
	if (r < 0)
		return send_failure(conn, r, &err);
	return web_send_json(conn, MHD_HTTP_OK, ret, NULL);
}
