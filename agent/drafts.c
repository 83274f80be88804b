/* drafts.c - the field app's unfinished forms (agent/drafts.h). */
#include "agent/drafts.h"
#include "agent/attach.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/records.h"

/* Statement slots in the store's cache (agent/store.h). */
enum {
	SLOT_DRAFT_PUT = 53,
	SLOT_DRAFT_GET,
	SLOT_DRAFT_LIST,
	SLOT_DRAFT_DELETE,
	SLOT_DRAFT_COUNT,
	SLOT_DRAFT_UPDATE,
};

static int oom(struct fs_error *err)
{
	return fs_error_set(err, -ENOMEM, "out of memory");
}

/* A draft id from a request: a UUID, normalised. */
static int draft_id(const char *given, char id[UUID_TEXT_LEN + 1], struct fs_error *err)
{
	if (!given || uuid_normalize(given, id) < 0)
		return fs_error_set(err, -FS_EUSAGE, "a draft id must be a UUID");
	return 0;
}

/* Fields the form knows, as an object: what a draft may hold.  Values
 * are not checked: a draft is work in progress, and the report
 * (form_report) says what is wrong with it. */
static int fields_known(const struct form *f, const cJSON *fields, struct fs_error *err)
{
	const cJSON *m;
	char buf[FS_TOKEN_MAX + 3];

	if (!cJSON_IsObject(fields))
		return fs_error_set(err, -FS_EVALID, "draft fields must be a JSON object");
	cJSON_ArrayForEach(m, fields) if (form_field_index(f, m->string) < 0) return fs_error_set(
		err, -FS_EVALID, "unknown field %s", fs_error_token(m->string, buf));
	return 0;
}

static int count_drafts(struct store *s, int *ret, struct fs_error *err)
{
	sqlite3_stmt *st;
	int r = store_stmt(s, SLOT_DRAFT_COUNT, "SELECT count(*) FROM drafts", &st, err);

	if (r < 0)
		return r;
	r = sqlite3_step(st) == SQLITE_ROW ? 0 : store_fail(s, "count drafts in", err);
	*ret = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return r;
}

/* Insert a new draft, when there is room under DRAFTS_MAX, or update
 * one that exists: an id the agent did not give is not a way past the
 * limit. */
static int put_draft(struct store *s, const struct form *f, const char *id, int is_new,
		     const char *text, struct fs_error *err)
{
	uint64_t now = store_wall_ms(s);
	sqlite3_stmt *st;
	int n = 0, r;

	if (is_new && (r = count_drafts(s, &n, err)) < 0)
		return r;
	if (n >= DRAFTS_MAX)
		return fs_error_set(err, -FS_ELIMIT,
				    "there are %d drafts already; finish or discard some first",
				    DRAFTS_MAX);
	r = is_new ? store_stmt(s, SLOT_DRAFT_PUT,
				"INSERT INTO drafts(id, collection, fields, created_ms, updated_ms)"
				" VALUES (?1, ?2, ?3, ?4, ?4)",
				&st, err)
		   : store_stmt(s, SLOT_DRAFT_UPDATE,
				"UPDATE drafts SET fields = ?3, updated_ms = ?4"
				" WHERE id = ?1 AND collection = ?2",
				&st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, form_collection(f), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail(s, "save draft in", err);
	sqlite3_reset(st);
	if (r == 0 && sqlite3_changes(store_db(s)) == 0)
		r = fs_error_set(err, -FS_ENOTFOUND, "no draft %s of form %s", id,
				 form_collection(f));
	return r;
}

int drafts_save(struct store *s, const struct form *f, const char *id, const cJSON *fields,
		char ret_id[UUID_TEXT_LEN + 1], cJSON **ret_saved, struct fs_error *err)
{
	int is_new = !id || !*id, r;
	char did[UUID_TEXT_LEN + 1];
	cJSON *copy = NULL;
	char *text = NULL;

	if ((r = fields_known(f, fields, err)) < 0)
		return r;
	if (is_new)
		uuid_v7_new(store_wall_ms(s), did);
	else if ((r = draft_id(id, did, err)) < 0)
		return r;
	if (!(copy = cJSON_Duplicate(fields, 1))) {
		r = oom(err);
		goto out;
	}
	if (is_new && (r = form_apply_defaults(f, copy, err)) < 0)
		goto out;
	if (!(text = cJSON_PrintUnformatted(copy))) {
		r = oom(err);
		goto out;
	}
	if (strlen(text) > DRAFTS_MAX_BYTES) {
		r = fs_error_set(err, -FS_ELIMIT, "a draft may hold at most %u bytes",
				 DRAFTS_MAX_BYTES);
		goto out;
	}
	if ((r = store_begin_local(s, err)) < 0)
		goto out;
	if ((r = put_draft(s, f, did, is_new, text, err)) < 0 || (r = store_commit(s, err)) < 0) {
		store_rollback(s);
		goto out;
	}
	memcpy(ret_id, did, sizeof(did));
	if (ret_saved) {
		*ret_saved = copy;
		copy = NULL;
	}
out:
	cJSON_free(text);
	cJSON_Delete(copy);
	return r;
}

int drafts_load(struct store *s, const char *id, char *collection, size_t cap, cJSON **ret_fields,
		struct fs_error *err)
{
	char did[UUID_TEXT_LEN + 1];
	cJSON *fields = NULL;
	sqlite3_stmt *st;
	int r, rc;

	if ((r = draft_id(id, did, err)) < 0 ||
	    (r = store_stmt(s, SLOT_DRAFT_GET,
			    "SELECT collection, fields FROM drafts WHERE id = ?1", &st, err)) < 0)
		return r;
	sqlite3_bind_text(st, 1, did, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(st, 0);

		if (ret_fields)
			fields = cJSON_Parse((const char *)sqlite3_column_text(st, 1));
		if (ret_fields && !cJSON_IsObject(fields))
			r = fs_error_set(err, -FS_ECORRUPT, "draft %s: stored fields are not JSON",
					 did);
		else if (!c || strlen(c) >= cap)
			r = fs_error_set(err, -FS_ECORRUPT, "draft %s: bad collection", did);
		else
			memcpy(collection, c, strlen(c) + 1);
	} else if (rc == SQLITE_DONE) {
		r = fs_error_set(err, -FS_ENOTFOUND, "no draft %s", did);
	} else {
		r = store_fail(s, "read draft from", err);
	}
	sqlite3_reset(st);
	if (r < 0) {
		cJSON_Delete(fields);
		return r;
	}
	if (ret_fields)
		*ret_fields = fields;
	return 0;
}

int drafts_list(struct store *s, cJSON **ret, struct fs_error *err)
{
	cJSON *list = cJSON_CreateArray();
	sqlite3_stmt *st;
	int r, rc;

	if (!list)
		return oom(err);
	if ((r = store_stmt(s, SLOT_DRAFT_LIST,
			    "SELECT id, collection, updated_ms FROM drafts"
			    " ORDER BY updated_ms DESC, id",
			    &st, err)) < 0) {
		cJSON_Delete(list);
		return r;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *o = cJSON_CreateObject();

		if (!o || !cJSON_AddItemToArray(list, o) ||
		    !cJSON_AddStringToObject(o, "id", (const char *)sqlite3_column_text(st, 0)) ||
		    !cJSON_AddStringToObject(o, "collection",
					     (const char *)sqlite3_column_text(st, 1)) ||
		    !cJSON_AddNumberToObject(o, "updated_ms",
					     (double)sqlite3_column_int64(st, 2))) {
			r = oom(err);
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, "list drafts in", err);
	sqlite3_reset(st);
	if (r < 0) {
		cJSON_Delete(list);
		return r;
	}
	*ret = list;
	return 0;
}

/* Delete the row, in the caller's transaction. */
static int delete_draft(struct store *s, const char *did, struct fs_error *err)
{
	sqlite3_stmt *st;
	int r = store_stmt(s, SLOT_DRAFT_DELETE, "DELETE FROM drafts WHERE id = ?1", &st, err);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, did, -1, SQLITE_STATIC);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail(s, "discard draft in", err);
	sqlite3_reset(st);
	if (r == 0 && sqlite3_changes(store_db(s)) == 0)
		r = fs_error_set(err, -FS_ENOTFOUND, "no draft %s", did);
	return r;
}

int drafts_discard(struct store *s, const char *id, struct fs_error *err)
{
	char did[UUID_TEXT_LEN + 1];
	int r;

	/* Not store_begin_local: removing a draft frees room, and must work
	 * on a full disk. */
	if ((r = draft_id(id, did, err)) < 0 || (r = store_begin(s, err)) < 0)
		return r;
	if ((r = delete_draft(s, did, err)) < 0 || (r = attach_settle_drafts(s, NULL, err)) < 0 ||
	    (r = store_commit(s, err)) < 0)
		store_rollback(s);
	return r;
}

int drafts_finalise(struct store *s, const struct form *f, const char *id,
		    char ret_record_id[UUID_TEXT_LEN + 1], struct fs_error *err)
{
	char did[UUID_TEXT_LEN + 1], collection[FORM_MAX_NAME + 1];
	cJSON *fields = NULL;
	int r;

	if ((r = draft_id(id, did, err)) < 0 || (r = store_begin_local(s, err)) < 0)
		return r;
	if ((r = drafts_load(s, did, collection, sizeof(collection), &fields, err)) < 0)
		goto out;
	if (strcmp(collection, form_collection(f)) != 0) {
		r = fs_error_set(err, -FS_EUSAGE, "draft %s is not of form %s", did,
				 form_collection(f));
		goto out;
	}
	/* Answers to questions the worker's later answers no longer ask
	 * were kept in the draft, in case they came back; now they go.
	 * records_add then checks the record whole, as for `record add`. */
	if ((r = form_settle(f, fields, NULL, err)) < 0 ||
	    (r = records_add(s, f, fields, NULL, ret_record_id, err)) < 0 ||
	    (r = delete_draft(s, did, err)) < 0 ||
	    (r = attach_settle_drafts(s, ret_record_id, err)) < 0)
		goto out;
	r = store_commit(s, err);
out:
	if (r < 0)
		store_rollback(s);
	cJSON_Delete(fields);
	return r;
}

/* Those of f's collection. */
static int drop_orphans_of(struct store *s, const struct form *f, size_t *ret_dropped,
			   struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	/* Rare (a scope change): prepared here, not cached in a slot. */
	if (sqlite3_prepare_v2(
		    store_db(s),
		    "DELETE FROM drafts WHERE collection = ?1"
		    " AND fs_field(fields, ?2) IS NOT NULL AND NOT EXISTS"
		    " (SELECT 1 FROM records r WHERE r.id = fs_field(drafts.fields, ?2))",
		    -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "prepare to drop drafts in", err);
	for (size_t i = 0; i < form_field_count(f) && r == 0; i++) {
		if (form_field_type(f, i) != FORM_REF)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, form_collection(f), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, form_field_name(f, i), -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			r = store_fail(s, "drop drafts in", err);
		else
			*ret_dropped += (size_t)sqlite3_changes(store_db(s));
	}
	sqlite3_finalize(st);
	return r;
}

int drafts_drop_orphans(struct store *s, drafts_form_fn form_of, void *ctx, size_t *ret_dropped,
			struct fs_error *err)
{
	char collection[FORM_MAX_NAME + 1];
	sqlite3_stmt *st = NULL;
	int r = 0, rc;

	*ret_dropped = 0;
	if (sqlite3_prepare_v2(store_db(s), "SELECT DISTINCT collection FROM drafts", -1, &st,
			       NULL) != SQLITE_OK)
		return store_fail(s, "list drafts in", err);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const struct form *f;

		snprintf(collection, sizeof(collection), "%s", sqlite3_column_text(st, 0));
		if ((f = form_of(ctx, collection)))
			r = drop_orphans_of(s, f, ret_dropped, err);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, "list drafts in", err);
	sqlite3_finalize(st);
	return r;
}
