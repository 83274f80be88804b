/* records.c - record writes with their outbox changes, and reads.
 *
 * Sections: helpers; references; add, edit, delete; reads; checks.
 */
#include "agent/records.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Statement slots in the store's cache (0 and 1 belong to store.c). */
enum {
	SLOT_INSERT_RECORD = 2,
	SLOT_INSERT_CHANGE,
	SLOT_SELECT_RECORD,
	SLOT_UPDATE_RECORD,
	SLOT_REF_EXISTS,
	SLOT_ID_EXISTS,
	SLOT_DELETE_RECORD,
};

/* ---- helpers ---------------------------------------------------------- */

static int need_transaction(struct store *s, struct fs_error *err)
{
	if (sqlite3_get_autocommit(store_db(s)))
		return fs_error_set(err, -FS_EUSAGE, "record write outside a transaction");
	return 0;
}

static int oom(struct fs_error *err)
{
	return fs_error_set(err, -ENOMEM, "out of memory");
}

/* A copy of fields without JSON null members (null means absent). */
static cJSON *without_nulls(const cJSON *fields)
{
	cJSON *out = cJSON_CreateObject(), *item;

	if (!out)
		return NULL;
	cJSON_ArrayForEach(item, fields)
	{
		cJSON *dup;

		if (cJSON_IsNull(item))
			continue;
		dup = cJSON_Duplicate(item, 1);
		if (!dup || !cJSON_AddItemToObject(out, item->string, dup)) {
			cJSON_Delete(dup);
			cJSON_Delete(out);
			return NULL;
		}
	}
	return out;
}

/* One outbox row: the change, and the version of the form it was made
 * under (form_version), which travels with it to HQ. */
static int insert_change(struct store *s, const struct form *f, const char *id, const char *field,
			 const cJSON *value, hlc_t hlc, struct fs_error *err)
{
	sqlite3_stmt *st;
	char *text = NULL;
	int r;

	r = store_stmt(s, SLOT_INSERT_CHANGE,
		       "INSERT INTO outbox(record_id, collection, field, value, hlc, form_version)"
		       " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
		       &st, err);
	if (r < 0)
		return r;
	if (value && !cJSON_IsNull(value)) {
		text = cJSON_PrintUnformatted(value);
		if (!text)
			return oom(err);
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, form_collection(f), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, field, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, form_version(f));
	if (text)
		sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)hlc);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail(s, "write outbox in", err);
	sqlite3_reset(st);
	cJSON_free(text);
	return r;
}

/* ---- references ------------------------------------------------------- */

/* Store ids in canonical lower case whatever case they were typed in, so
 * that equal ids compare equal everywhere (here and at HQ). */
static int normalize_refs(const struct form *f, cJSON *fields, struct fs_error *err)
{
	for (size_t i = 0; i < form_field_count(f); i++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, form_field_name(f, i));
		char canon[UUID_TEXT_LEN + 1];

		if (!form_field_ref(f, i) || !cJSON_IsString(v) ||
		    uuid_normalize(v->valuestring, canon) < 0)
			continue; /* validation reports a bad id */
		if (!cJSON_SetValuestring(v, canon))
			return oom(err);
	}
	return 0;
}

/* Every ref field that is set must name a live record of its target. */
static int check_refs(struct store *s, const struct form *f, const cJSON *fields,
		      struct fs_error *err)
{
	for (size_t i = 0; i < form_field_count(f); i++) {
		const char *target = form_field_ref(f, i), *name = form_field_name(f, i);
		const cJSON *v;
		sqlite3_stmt *st;
		int r, rc;

		if (!target)
			continue;
		v = cJSON_GetObjectItemCaseSensitive(fields, name);
		if (!cJSON_IsString(v))
			continue;
		r = store_stmt(s, SLOT_REF_EXISTS,
			       "SELECT 1 FROM records WHERE id = lower(?1) AND collection = ?2"
			       " AND deleted = 0",
			       &st, err);
		if (r < 0)
			return r;
		sqlite3_bind_text(st, 1, v->valuestring, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return fs_error_set(err, -FS_EVALID,
					    "field '%s': no %s record with that id", name, target);
		if (rc != SQLITE_ROW)
			return store_fail(s, "look up reference in", err);
	}
	return 0;
}

/* ---- add, edit, delete ------------------------------------------------ */

/* Settle fields in place (sync/form.h), refusing to drop or replace a
 * value that given holds: an answer to a question not asked, or to one
 * the form calculates, would otherwise be lost without a word.  given
 * may be fields itself (then a copy is compared). */
static int settle_given_from(const struct form *f, const cJSON *given, cJSON *fields,
			     struct fs_error *err)
{
	cJSON *copy = given == fields ? cJSON_Duplicate(given, 1) : NULL;
	const cJSON *m, *before = copy ? copy : given;
	int r;

	if (given == fields && !copy)
		return oom(err);
	if ((r = form_settle(f, fields, NULL, err)) < 0)
		goto out;
	/* Settling succeeded: every member names a field of the form. */
	cJSON_ArrayForEach(m, before)
	{
		const cJSON *now = cJSON_GetObjectItemCaseSensitive(fields, m->string);

		if (cJSON_IsNull(m) || (now && cJSON_Compare(now, m, 1)))
			continue;
		r = fs_error_set(err, -FS_EVALID,
				 now ? "field '%s': the form's logic changes this answer (it is "
				       "calculated, or asks it only for other answers)"
				     : "field '%s': answered, but not asked for these answers",
				 m->string);
		break;
	}
out:
	cJSON_Delete(copy);
	return r;
}

static int settle_given(const struct form *f, cJSON *fields, struct fs_error *err)
{
	return settle_given_from(f, fields, fields, err);
}

int records_add(struct store *s, const struct form *f, const cJSON *fields, const char *id,
		char ret_id[UUID_TEXT_LEN + 1], struct fs_error *err)
{
	const char *collection = form_collection(f);
	char rid[UUID_TEXT_LEN + 1], *text = NULL;
	cJSON *clean = NULL, *item;
	sqlite3_stmt *st;
	hlc_t hlc;
	int r, rc;

	if ((r = need_transaction(s, err)) < 0)
		return r;
	/* Validate the copy that is stored, with nulls dropped and ids
	 * normalised, so what is checked is what is written. */
	clean = without_nulls(fields);
	if (!clean)
		return oom(err);
	if ((r = normalize_refs(f, clean, err)) < 0 || (r = settle_given(f, clean, err)) < 0 ||
	    (r = form_validate(f, clean, NULL, err)) < 0 || (r = check_refs(s, f, clean, err)) < 0)
		goto out;
	if (id) {
		if (uuid_normalize(id, rid) < 0) {
			r = fs_error_set(err, -FS_EVALID, "field 'id': not a UUID");
			goto out;
		}
		r = store_stmt(s, SLOT_ID_EXISTS, "SELECT 1 FROM records WHERE id = ?1", &st, err);
		if (r < 0)
			goto out;
		sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_ROW) {
			r = fs_error_set(err, -FS_EEXIST, "record %s already exists", rid);
			goto out;
		}
		if (rc != SQLITE_DONE) {
			r = store_fail(s, "look up id in", err);
			goto out;
		}
	} else {
		uuid_v7_new(store_wall_ms(s), rid);
	}
	text = cJSON_PrintUnformatted(clean);
	if (!text) {
		r = oom(err);
		goto out;
	}
	hlc = store_hlc_next(s);
	r = store_stmt(
		s, SLOT_INSERT_RECORD,
		"INSERT INTO records(id, collection, fields, created_hlc, updated_hlc, author)"
		" VALUES(?1, ?2, ?3, ?4, ?4, ?5)",
		&st, err);
	if (r < 0)
		goto out;
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)hlc);
	sqlite3_bind_text(st, 5, store_identity(s)->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		r = store_fail(s, "write record to", err);
		goto out;
	}
	cJSON_ArrayForEach(item, clean)
	{
		r = insert_change(s, f, rid, item->string, item, hlc, err);
		if (r < 0)
			goto out;
	}
	memcpy(ret_id, rid, sizeof(rid));
out:
	cJSON_free(text);
	cJSON_Delete(clean);
	return r;
}

/* Load a live record's fields; -FS_ENOTFOUND names the id. */
static int load_fields(struct store *s, const struct form *f, const char *id,
		       char rid[UUID_TEXT_LEN + 1], cJSON **ret_fields, struct fs_error *err)
{
	const char *collection = form_collection(f);
	sqlite3_stmt *st;
	cJSON *fields;
	int r, rc;

	if (uuid_normalize(id, rid) < 0)
		return fs_error_set(err, -FS_EVALID, "not a record id (expected a UUID)");
	r = store_stmt(s, SLOT_SELECT_RECORD,
		       "SELECT collection, fields, deleted FROM records WHERE id = ?1", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_fail(s, "read record from", err);
		return fs_error_set(err, -FS_ENOTFOUND, "no %s record %s", collection, rid);
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), collection) != 0 ||
	    sqlite3_column_int(st, 2)) {
		r = fs_error_set(err, -FS_ENOTFOUND, "no %s record %s%s", collection, rid,
				 sqlite3_column_int(st, 2) ? " (it was deleted)" : "");
		sqlite3_reset(st);
		return r;
	}
	fields = cJSON_Parse((const char *)sqlite3_column_text(st, 1));
	sqlite3_reset(st);
	if (!cJSON_IsObject(fields)) {
		cJSON_Delete(fields);
		return fs_error_set(err, -FS_ECORRUPT,
				    "record %s: stored fields are not a JSON object", rid);
	}
	*ret_fields = fields;
	return 0;
}

static int update_record(struct store *s, const char *rid, const cJSON *fields, int deleted,
			 hlc_t hlc, struct fs_error *err)
{
	char *text = cJSON_PrintUnformatted(fields);
	sqlite3_stmt *st;
	int r;

	if (!text)
		return oom(err);
	r = store_stmt(
		s, SLOT_UPDATE_RECORD,
		"UPDATE records SET fields = ?2, deleted = ?3, updated_hlc = ?4 WHERE id = ?1", &st,
		err);
	if (r == 0) {
		sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, deleted);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)hlc);
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail(s, "update record in", err);
		sqlite3_reset(st);
	}
	cJSON_free(text);
	return r;
}

/* Set or, for null, remove each member of input in fields. */
static int apply_input(cJSON *fields, const cJSON *input)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, input)
	{
		int had = cJSON_GetObjectItemCaseSensitive(fields, item->string) != NULL;
		cJSON *dup;

		if (cJSON_IsNull(item)) {
			cJSON_DeleteItemFromObjectCaseSensitive(fields, item->string);
			continue;
		}
		/* Replaced in place, so a record keeps its members' order. */
		dup = cJSON_Duplicate(item, 1);
		if (!dup ||
		    !(had ? cJSON_ReplaceItemInObjectCaseSensitive(fields, item->string, dup)
			  : cJSON_AddItemToObject(fields, item->string, dup))) {
			cJSON_Delete(dup);
			return -ENOMEM;
		}
	}
	return 0;
}

/* The members that differ between old and new: new's value, or null for
 * one new lacks.  Settling can change fields the input did not name (a
 * question no longer asked, a calculation), and each is a change. */
static cJSON *fields_diff(const cJSON *old, const cJSON *new)
{
	cJSON *out = cJSON_CreateObject();
	const cJSON *item;

	if (!out)
		return NULL;
	cJSON_ArrayForEach(item, new)
	{
		const cJSON *was = cJSON_GetObjectItemCaseSensitive(old, item->string);

		if ((!was || !cJSON_Compare(was, item, 1)) &&
		    !cJSON_AddItemToObject(out, item->string, cJSON_Duplicate(item, 1)))
			return cJSON_Delete(out), NULL;
	}
	cJSON_ArrayForEach(item, old)
	{
		if (!cJSON_GetObjectItemCaseSensitive(new, item->string) &&
		    !cJSON_AddNullToObject(out, item->string))
			return cJSON_Delete(out), NULL;
	}
	return out;
}

int records_edit(struct store *s, const struct form *f, const char *id, const cJSON *changes,
		 struct fs_error *err)
{
	char rid[UUID_TEXT_LEN + 1];
	cJSON *old = NULL, *fields = NULL, *changed = NULL, *input = NULL, *item;
	hlc_t hlc;
	int r;

	if ((r = need_transaction(s, err)) < 0)
		return r;
	if (!cJSON_IsObject(changes))
		return fs_error_set(err, -FS_EVALID, "changes must be a JSON object");
	if ((r = load_fields(s, f, id, rid, &old, err)) < 0)
		return r;
	fields = cJSON_Duplicate(old, 1);
	input = cJSON_Duplicate(changes, 1);
	if (!fields || !input) {
		r = oom(err);
		goto out;
	}
	if ((r = normalize_refs(f, input, err)) < 0)
		goto out;
	if (apply_input(fields, input) < 0) {
		r = oom(err);
		goto out;
	}
	if ((r = settle_given_from(f, input, fields, err)) < 0)
		goto out;
	if (!(changed = fields_diff(old, fields))) {
		r = oom(err);
		goto out;
	}
	if ((r = form_validate(f, fields, NULL, err)) < 0 ||
	    (r = check_refs(s, f, changed, err)) < 0)
		goto out;
	if (!changed->child)
		goto out; /* nothing to write: no new HLC, no outbox row */
	hlc = store_hlc_next(s);
	if ((r = update_record(s, rid, fields, 0, hlc, err)) < 0)
		goto out;
	cJSON_ArrayForEach(item, changed)
	{
		r = insert_change(s, f, rid, item->string, item, hlc, err);
		if (r < 0)
			goto out;
	}
out:
	cJSON_Delete(input);
	cJSON_Delete(changed);
	cJSON_Delete(fields);
	cJSON_Delete(old);
	return r;
}

int records_delete(struct store *s, const struct form *f, const char *id, struct fs_error *err)
{
	char rid[UUID_TEXT_LEN + 1];
	cJSON *fields = NULL, *yes = NULL;
	hlc_t hlc;
	int r;

	if ((r = need_transaction(s, err)) < 0)
		return r;
	if ((r = load_fields(s, f, id, rid, &fields, err)) < 0)
		return r;
	hlc = store_hlc_next(s);
	yes = cJSON_CreateTrue();
	if (!yes) {
		r = oom(err);
		goto out;
	}
	if ((r = update_record(s, rid, fields, 1, hlc, err)) < 0)
		goto out;
	r = insert_change(s, f, rid, RECORDS_DELETED_FIELD, yes, hlc, err);
out:
	cJSON_Delete(yes);
	cJSON_Delete(fields);
	return r;
}

/* ---- reads ------------------------------------------------------------ */

static int add_hlc(cJSON *o, const char *time_key, const char *hlc_key, hlc_t t)
{
	char text[HLC_TEXT_LEN + 1], when[HLC_TIME_LEN + 1];

	hlc_format(t, text);
	hlc_format_time(t, when);
	return cJSON_AddStringToObject(o, time_key, when) &&
			       cJSON_AddStringToObject(o, hlc_key, text)
		       ? 0
		       : -ENOMEM;
}

/* Row (id, collection, fields, created, updated, author, deleted) to JSON. */
static int row_to_json(sqlite3_stmt *st, cJSON **ret, struct fs_error *err)
{
	cJSON *o = cJSON_CreateObject(), *fields;

	if (!o)
		return oom(err);
	fields = cJSON_Parse((const char *)sqlite3_column_text(st, 2));
	if (!cJSON_IsObject(fields)) {
		cJSON_Delete(fields);
		cJSON_Delete(o);
		return fs_error_set(err, -FS_ECORRUPT, "record %s: stored fields are not JSON",
				    (const char *)sqlite3_column_text(st, 0));
	}
	if (!cJSON_AddStringToObject(o, "id", (const char *)sqlite3_column_text(st, 0)) ||
	    !cJSON_AddStringToObject(o, "collection", (const char *)sqlite3_column_text(st, 1)) ||
	    !cJSON_AddItemToObject(o, "fields", fields)) {
		cJSON_Delete(fields);
		cJSON_Delete(o);
		return oom(err);
	}
	if (add_hlc(o, "created", "created_hlc", (hlc_t)sqlite3_column_int64(st, 3)) < 0 ||
	    add_hlc(o, "updated", "updated_hlc", (hlc_t)sqlite3_column_int64(st, 4)) < 0 ||
	    !cJSON_AddStringToObject(o, "author", (const char *)sqlite3_column_text(st, 5)) ||
	    !cJSON_AddStringToObject(o, "updated_by",
				     sqlite3_column_type(st, 7) == SQLITE_NULL
					     ? (const char *)sqlite3_column_text(st, 5)
					     : (const char *)sqlite3_column_text(st, 7)) ||
	    !cJSON_AddBoolToObject(o, "deleted", sqlite3_column_int(st, 6))) {
		cJSON_Delete(o);
		return oom(err);
	}
	*ret = o;
	return 0;
}

/* updated_by: the device of the latest write by the merge rule, a
 * value HQ sent (agent/pull.h) or this device's own (?9). */
#define RECORD_COLUMNS                                                                             \
	"id, collection, fields, created_hlc, updated_hlc, author, deleted, "                      \
	"(SELECT d FROM (SELECT hlc AS h, device AS d FROM field_clocks WHERE record_id = "        \
	"records.id UNION ALL SELECT hlc, ?9 FROM outbox WHERE record_id = records.id) "           \
	"ORDER BY h DESC, d DESC LIMIT 1)"

int records_get(struct store *s, const struct form *f, const char *id, cJSON **ret_record,
		struct fs_error *err)
{
	char rid[UUID_TEXT_LEN + 1];
	sqlite3_stmt *st = NULL;
	int r, rc;

	if (uuid_normalize(id, rid) < 0)
		return fs_error_set(err, -FS_EVALID, "not a record id (expected a UUID)");
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT " RECORD_COLUMNS
			       " FROM records WHERE id = ?1 AND collection = ?2",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "read record from", err);
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, form_collection(f), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, store_identity(s)->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = row_to_json(st, ret_record, err);
	else if (rc == SQLITE_DONE)
		r = fs_error_set(err, -FS_ENOTFOUND, "no %s record %s", form_collection(f), rid);
	else
		r = store_fail(s, "read record from", err);
	sqlite3_finalize(st);
	return r;
}

int records_list(struct store *s, const struct form *f, records_fn fn, void *ctx,
		 struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0, rc;

	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT " RECORD_COLUMNS " FROM records"
			       " WHERE collection = ?1 AND deleted = 0 ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "list records in", err);
	sqlite3_bind_text(st, 1, form_collection(f), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, store_identity(s)->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *rec = NULL;

		if ((r = row_to_json(st, &rec, err)) < 0)
			break;
		r = fn(rec, ctx);
		cJSON_Delete(rec);
		if (r)
			break;
	}
	if (!r && rc != SQLITE_DONE)
		r = store_fail(s, "list records in", err);
	sqlite3_finalize(st);
	return r;
}

int records_stats(struct store *s, const char *collection, struct records_stats *ret_stats,
		  struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	if (sqlite3_prepare_v2(
		    store_db(s),
		    "SELECT (SELECT count(*) FROM records WHERE collection = ?1 AND deleted = 0),"
		    " (SELECT count(*) FROM records WHERE collection = ?1 AND deleted = 1),"
		    " (SELECT count(*) FROM outbox WHERE collection = ?1"
		    "  AND " STORE_OUTBOX_UNPACKED ")"
		    " + (SELECT count(*) FROM outbox WHERE collection = ?1"
		    "  AND " STORE_OUTBOX_UNACKED ")",
		    -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "count records in", err);
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		ret_stats->live = sqlite3_column_int64(st, 0);
		ret_stats->deleted = sqlite3_column_int64(st, 1);
		ret_stats->pending = sqlite3_column_int64(st, 2);
	} else {
		r = store_fail(s, "count records in", err);
	}
	sqlite3_finalize(st);
	return r;
}

/* ---- checks ----------------------------------------------------------- */

/* Apply one outbox row to a replayed record. */
static int replay_change(cJSON *fields, int *deleted, const char *field, const char *value)
{
	cJSON *v;

	if (!strcmp(field, RECORDS_DELETED_FIELD)) {
		*deleted = 1;
		return 0;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(fields, field);
	if (!value)
		return 0;
	v = cJSON_Parse(value);
	if (!v)
		return -FS_ECORRUPT;
	if (!cJSON_AddItemToObject(fields, field, v)) {
		cJSON_Delete(v);
		return -ENOMEM;
	}
	return 0;
}

static int compare_replay(const char *id, const cJSON *replayed, int rdeleted, const char *stored,
			  int sdeleted, struct fs_error *err)
{
	cJSON *sf = cJSON_Parse(stored);
	int same = sf && cJSON_Compare(sf, replayed, 1) && rdeleted == sdeleted;

	cJSON_Delete(sf);
	if (!same)
		return fs_error_set(err, -FS_ECORRUPT,
				    "record %s does not match its outbox changes", id);
	return 0;
}

int records_verify_outbox(struct store *s, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	char cur[UUID_TEXT_LEN + 1] = "";
	char *stored = NULL;
	cJSON *fields = NULL;
	int rc, r = 0, rdeleted = 0, sdeleted = 0;

	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT r.id, r.fields, r.deleted, o.field, o.value FROM records r"
			       " JOIN outbox o ON o.record_id = r.id"
			       /* A record HQ sent values of is not this
				* device's outbox alone (agent/pull.h). */
			       " WHERE r.id NOT IN (SELECT record_id FROM field_clocks)"
			       " ORDER BY r.id, o.seq",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "verify outbox in", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);

		if (strcmp(id, cur) != 0) {
			if (cur[0] &&
			    (r = compare_replay(cur, fields, rdeleted, stored, sdeleted, err)) < 0)
				goto out;
			cJSON_Delete(fields);
			free(stored);
			fields = cJSON_CreateObject();
			stored = strdup((const char *)sqlite3_column_text(st, 1));
			if (!fields || !stored) {
				r = oom(err);
				goto out;
			}
			snprintf(cur, sizeof(cur), "%s", id);
			sdeleted = sqlite3_column_int(st, 2);
			rdeleted = 0;
		}
		r = replay_change(fields, &rdeleted, (const char *)sqlite3_column_text(st, 3),
				  (const char *)sqlite3_column_text(st, 4));
		if (r < 0) {
			fs_error_set(err, r, "record %s: outbox change cannot be replayed", cur);
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = store_fail(s, "verify outbox in", err);
		goto out;
	}
	if (cur[0])
		r = compare_replay(cur, fields, rdeleted, stored, sdeleted, err);
out:
	cJSON_Delete(fields);
	free(stored);
	sqlite3_finalize(st);
	return r;
}
