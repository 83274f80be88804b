/* scope.c - device scopes and the write rule (see scope.h).
 *
 * Sections: parsing a list; storing and changing; loading and matching;
 * one change set's check; SQL.
 */
#include "hq/scope.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hq/audit.h"
#include "hq/hqsql.h"
#include "sync/fold.h"
#include "sync/scoperule.h"
#include "sync/utf8.h"

/* ---- parsing a list ------------------------------------------------------ */

static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n > SCOPE_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* Is name's key already among arr's? */
static int listed(const cJSON *arr, const char *name)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, arr)
	{
		if (fold_equal(it->valuestring, name) == 1)
			return 1;
	}
	return 0;
}

int scope_parse(const char *list, cJSON **ret, struct fs_error *err)
{
	cJSON *arr = cJSON_CreateArray();
	const char *p = list;
	char name[SCOPE_MAX_NAME + 1];
	int r = 0, all = 0;

	if (!arr)
		return fs_error_set(err, -ENOMEM, "out of memory");
	for (;;) {
		const char *end = strchr(p, ','), *a = p, *b = end ? end : p + strlen(p);

		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (!name_ok(a, (size_t)(b - a))) {
			r = fs_error_set(err, -FS_EUSAGE,
					 "scope: each municipality needs 1 to %d bytes without "
					 "control characters",
					 SCOPE_MAX_NAME);
			goto out;
		}
		memcpy(name, a, (size_t)(b - a));
		name[b - a] = '\0';
		if (!utf8_valid(name)) {
			r = fs_error_set(err, -FS_EUSAGE,
					 "scope: a municipality is not valid UTF-8");
			goto out;
		}
		if (!strcmp(name, SCOPE_ALL))
			all = 1;
		if (!listed(arr, name)) {
			if (cJSON_GetArraySize(arr) >= SCOPE_MAX_NAMES) {
				r = fs_error_set(err, -FS_EUSAGE,
						 "scope: more than %d municipalities",
						 SCOPE_MAX_NAMES);
				goto out;
			}
			if (!cJSON_AddItemToArray(arr, cJSON_CreateString(name))) {
				r = fs_error_set(err, -ENOMEM, "out of memory");
				goto out;
			}
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (all && cJSON_GetArraySize(arr) != 1) {
		r = fs_error_set(err, -FS_EUSAGE,
				 "scope: \"" SCOPE_ALL "\" (every municipality) stands alone");
		goto out;
	}
	*ret = arr;
	arr = NULL;
out:
	cJSON_Delete(arr);
	return r;
}

/* ---- storing and changing ---------------------------------------------- */

int scope_store(struct hqsql *db, const char *device, const cJSON *names, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	const cJSON *it;
	int r;

	if (!cJSON_IsArray(names) || cJSON_GetArraySize(names) < 1)
		return fs_error_set(err, -FS_EUSAGE, "device %s: an empty scope", device);
	if ((r = hqsql_prepare(db, "DELETE FROM device_scopes WHERE device = ?1", &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, device);
	r = hqsql_step(st) == HQSQL_DONE ? 0 : hqsql_fail(db, "clear the device's scope", err);
	hqsql_finalize(st);
	if (r < 0 || (r = hqsql_prepare(db,
					"INSERT INTO device_scopes(device, key, name) "
					"VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
					&st, err)) < 0)
		return r;
	cJSON_ArrayForEach(it, names)
	{
		char *key = NULL;

		if (!cJSON_IsString(it) || !it->valuestring ||
		    fold_text(it->valuestring, strlen(it->valuestring), &key) < 0) {
			r = fs_error_set(err, -FS_EFORMAT, "device %s: a scope name is not text",
					 device);
			break;
		}
		hqsql_reset(st);
		hqsql_bind_text(st, 1, device);
		hqsql_bind_text(st, 2, key);
		hqsql_bind_text(st, 3, it->valuestring);
		free(key);
		if (hqsql_step(st) != HQSQL_DONE) {
			r = hqsql_fail(db, "store the device's scope", err);
			break;
		}
	}
	hqsql_finalize(st);
	/* What the device held of a key it leaves, it purges; if the key
	 * comes back, it must get everything of it again (hq/downsync.h),
	 * conflicts included. */
	if (r == 0 && (r = hqsql_prepare(db,
					 "DELETE FROM down_cursors WHERE device = ?1 AND key "
					 "<> '' AND key NOT IN (SELECT key FROM device_scopes "
					 "WHERE device = ?1)",
					 &st, err)) == 0) {
		hqsql_bind_text(st, 1, device);
		if (hqsql_step(st) != HQSQL_DONE)
			r = hqsql_fail(db, "forget the device's old cursors", err);
		hqsql_finalize(st);
	}
	if (r == 0 && (r = hqsql_prepare(db,
					 "UPDATE down_state SET conflict_cursor = 0 WHERE "
					 "device = ?1",
					 &st, err)) == 0) {
		hqsql_bind_text(st, 1, device);
		if (hqsql_step(st) != HQSQL_DONE)
			r = hqsql_fail(db, "reset the device's conflicts", err);
		hqsql_finalize(st);
	}
	return r;
}

/* The device's scope as one text, "A, B"; 0 with *ret NULL when the
 * device is not enrolled. */
static int scope_text(struct hqsql *db, const char *device, char **ret, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r;

	*ret = NULL;
	if ((r = hqsql_prepare(
		     db,
		     hqsql_backend(db) == HQSQL_POSTGRESQL
			     ? "SELECT (SELECT string_agg(name, ', ' ORDER BY key) FROM "
			       "device_scopes WHERE device = d.id) FROM devices d WHERE d.id = ?1"
			     : "SELECT (SELECT group_concat(name, ', ') FROM (SELECT name FROM "
			       "device_scopes WHERE device = d.id ORDER BY key)) FROM devices d "
			       "WHERE d.id = ?1",
		     &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, device);
	switch (hqsql_step(st)) {
	case HQSQL_ROW: {
		const unsigned char *t = (const unsigned char *)hqsql_column_text(st, 0);

		if (!(*ret = strdup(t ? (const char *)t : "")))
			r = fs_error_set(err, -ENOMEM, "out of memory");
		break;
	}
	case HQSQL_DONE:
		break;
	default:
		r = hqsql_fail(db, "read the device's scope", err);
	}
	hqsql_finalize(st);
	return r;
}

int scope_change(struct hqsql *db, const char *device, const char *list, uint64_t now_ms,
		 struct fs_error *err)
{
	char *before = NULL, *after = NULL, tok[FS_TOKEN_MAX + 3];
	cJSON *names = NULL;
	int r;

	if ((r = scope_parse(list, &names, err)) < 0)
		return r;
	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		goto out;
	if ((r = scope_text(db, device, &before, err)) < 0)
		goto out;
	if (!before) {
		r = fs_error_set(err, -FS_ENOTFOUND, "device %s: not enrolled",
				 fs_error_token(device, tok));
		goto out;
	}
	if ((r = scope_store(db, device, names, err)) < 0 ||
	    (r = scope_text(db, device, &after, err)) < 0)
		goto out;
	/* Municipality names are an administrator's words, not personal
	 * data: the audit says who may write where, and since when. */
	if ((r = audit_append_strings(db, now_ms, "scope", device, err, "scope", after, "previous",
				      before, (const char *)NULL)) < 0)
		goto out;
	r = hqsql_commit(db, err);
out:
	hqsql_rollback(db);
	cJSON_Delete(names);
	free(before);
	free(after);
	return r;
}

/* ---- loading and matching ---------------------------------------------- */

struct scope {
	int all;
	size_t n;
	char **keys;
};

void scope_free(struct scope *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->keys[i]);
	free(s->keys);
	free(s);
}

int scope_load(struct hqsql *db, const char *device, struct scope **ret, struct fs_error *err)
{
	struct scope *s = calloc(1, sizeof(*s));
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if (!s)
		return fs_error_set(err, -ENOMEM, "out of memory");
	if ((r = hqsql_prepare(db, "SELECT key FROM device_scopes WHERE device = ?1", &st, err)) <
	    0)
		goto out;
	hqsql_bind_text(st, 1, device);
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		const char *key = hqsql_column_text(st, 0);
		char **keys;

		if (!strcmp(key, SCOPE_ALL))
			s->all = 1;
		if (!(keys = realloc(s->keys, (s->n + 1) * sizeof(*keys))) ||
		    !((s->keys = keys)[s->n] = strdup(key))) {
			r = fs_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		s->n++;
	}
	if (rc != HQSQL_DONE) {
		r = hqsql_fail(db, "read the device's scope", err);
		goto out;
	}
	*ret = s;
	s = NULL;
out:
	hqsql_finalize(st);
	scope_free(s);
	return r;
}

int scope_contains(const struct scope *s, const char *value)
{
	char *key = NULL;
	int in = 0;

	if (s->all)
		return 1;
	if (fold_text(value, strlen(value), &key) < 0)
		return 0;
	for (size_t i = 0; i < s->n && !in; i++)
		in = !strcmp(s->keys[i], key);
	free(key);
	return in;
}

/* ---- one change set's check -------------------------------------------- */

struct set_value {
	const char *record_id;
	const char *field;
	const char *value;
	size_t idx; /* position in the set: the later one is kept */
};

/* Merged values read lately (scope_check): the changes of one record ask
 * for the same one or two, and a read is a round trip on PostgreSQL. */
#define KEPT_MAX 8

struct kept {
	char *record_id, *field; /* NULL: an empty slot */
	char *value;		 /* NULL: no string value */
};

struct scope_set {
	struct hqsql *db;
	const struct hq_forms *forms;
	struct hqsql_stmt *merged; /* HQ's merged value of (record, field) */
	struct set_value *v;
	size_t n;
	struct kept kept[KEPT_MAX];
	unsigned next_kept; /* the slot to fill next, in turn */
};

static void kept_clear(struct kept *k)
{
	free(k->record_id);
	free(k->field);
	free(k->value);
	memset(k, 0, sizeof(*k));
}

void scope_set_written(struct scope_set *sv, const char *record_id, const char *field)
{
	for (unsigned i = 0; sv && i < KEPT_MAX; i++)
		if (sv->kept[i].record_id && !strcmp(sv->kept[i].record_id, record_id) &&
		    !strcmp(sv->kept[i].field, field))
			kept_clear(&sv->kept[i]);
}

static int value_cmp(const void *a, const void *b)
{
	const struct set_value *x = a, *y = b;
	int c = strcmp(x->record_id, y->record_id);

	if (!c)
		c = strcmp(x->field, y->field);
	if (!c)
		c = x->idx < y->idx ? -1 : x->idx > y->idx;
	return c;
}

/* The scope field of a change's collection, or NULL. */
static const char *scope_field_of(const struct hq_forms *forms, const char *collection,
				  const struct form **ret_form)
{
	const struct form *f = hqforms_find(forms, collection);
	int si = f ? form_scope_field(f) : -1;

	if (ret_form)
		*ret_form = f;
	return si < 0 ? NULL : form_field_name(f, (size_t)si);
}

void scope_set_free(struct scope_set *sv)
{
	if (!sv)
		return;
	hqsql_finalize(sv->merged);
	for (unsigned i = 0; i < KEPT_MAX; i++)
		kept_clear(&sv->kept[i]);
	free(sv->v);
	free(sv);
}

int scope_set_build(struct hqsql *db, const struct hq_forms *forms, const struct change *ch,
		    size_t n, struct scope_set **ret, struct fs_error *err)
{
	struct scope_set *sv = calloc(1, sizeof(*sv));
	struct hqsql_stmt *known = NULL;
	size_t k = 0;
	int r;

	if (!sv || !(sv->v = calloc(n ? n : 1, sizeof(*sv->v)))) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	sv->db = db;
	sv->forms = forms;
	/* JSON text in, the string out: scope fields hold strings. */
	if ((r = hqsql_prepare(db,
			       "SELECT value FROM fields "
			       "WHERE record_id = ?1 AND field = ?2",
			       &sv->merged, err)) < 0 ||
	    (r = hqsql_prepare(db, "SELECT 1 FROM records WHERE id = ?1", &known, err)) < 0)
		goto out;
	/* Only for a record HQ does not hold yet, and only a value its form
	 * accepts: a record HQ holds without a scope value stays out of
	 * every scope, whatever a set says it is. */
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct form *f = NULL;
		const char *field = scope_field_of(forms, ch[i].collection, &f);
		int rc;

		if (!field || strcmp(field, ch[i].field) || !cJSON_IsString(ch[i].value) ||
		    form_validate_value(f, field, ch[i].value, NULL) < 0)
			continue;
		hqsql_reset(known);
		hqsql_bind_text(known, 1, ch[i].record_id);
		if ((rc = hqsql_step(known)) == HQSQL_ROW)
			continue;
		if (rc != HQSQL_DONE) {
			r = hqsql_fail(db, "look up a record", err);
			break;
		}
		sv->v[k++] =
			(struct set_value){ ch[i].record_id, field, ch[i].value->valuestring, i };
	}
	if (r < 0)
		goto out;
	qsort(sv->v, k, sizeof(*sv->v), value_cmp);
	/* Keep the last value per (record, field). */
	sv->n = 0;
	for (size_t i = 0; i < k; i++) {
		if (i + 1 < k && !strcmp(sv->v[i].record_id, sv->v[i + 1].record_id) &&
		    !strcmp(sv->v[i].field, sv->v[i + 1].field))
			continue;
		sv->v[sv->n++] = sv->v[i];
	}
	*ret = sv;
	sv = NULL;
out:
	hqsql_finalize(known);
	scope_set_free(sv);
	return r;
}

static const char *set_value(const struct scope_set *sv, const char *record_id, const char *field)
{
	size_t lo = 0, hi = sv->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(sv->v[mid].record_id, record_id);

		if (!c)
			c = strcmp(sv->v[mid].field, field);
		if (!c)
			return sv->v[mid].value;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Keep what merged_value read (1 with value, or 0). */
static void keep(struct scope_set *sv, const char *id, const char *field, int found,
		 const char *value)
{
	struct kept *k = &sv->kept[sv->next_kept];

	kept_clear(k);
	k->record_id = strdup(id);
	k->field = strdup(field);
	k->value = found ? strdup(value) : NULL;
	/* Out of memory: nothing kept, which is always correct. */
	if (!k->record_id || !k->field || (found && !k->value))
		kept_clear(k);
	sv->next_kept = (sv->next_kept + 1) % KEPT_MAX;
}

/* HQ's merged value of the field: 1 with *ret malloc'd, 0 when none. */
static int merged_value(struct scope_set *sv, const char *id, const char *field, char **ret,
			struct fs_error *err)
{
	int rc, r = 0;

	for (unsigned i = 0; i < KEPT_MAX; i++) {
		const struct kept *k = &sv->kept[i];

		if (!k->record_id || strcmp(k->record_id, id) || strcmp(k->field, field))
			continue;
		if (!k->value)
			return 0;
		return (*ret = strdup(k->value)) ? 1 : fs_error_set(err, -ENOMEM, "out of memory");
	}

	hqsql_reset(sv->merged);
	hqsql_bind_text(sv->merged, 1, id);
	hqsql_bind_text(sv->merged, 2, field);
	rc = hqsql_step(sv->merged);
	if (rc == HQSQL_ROW) {
		/* The merged value is JSON text: only a string places a record. */
		cJSON *v = cJSON_Parse(hqsql_column_text(sv->merged, 0));

		if (cJSON_IsString(v) && !(*ret = strdup(v->valuestring)))
			r = fs_error_set(err, -ENOMEM, "out of memory");
		else if (cJSON_IsString(v))
			r = 1;
		cJSON_Delete(v);
	} else if (rc != HQSQL_DONE) {
		r = hqsql_fail(sv->db, "read a record's scope", err);
	}
	if (r >= 0)
		keep(sv, id, field, r, *ret);
	hqsql_reset(sv->merged);
	return r;
}

/* The rule's lookups (sync/scoperule.h): HQ's merged value or, for a
 * record HQ does not hold yet, what this set gives it. */
static int lookup_value(void *ctx, const char *id, const char *field, char **ret,
			struct fs_error *err)
{
	struct scope_set *sv = ctx;
	const char *v;
	int r = merged_value(sv, id, field, ret, err);

	if (r != 0 || !(v = set_value(sv, id, field)))
		return r;
	if (!(*ret = strdup(v)))
		return fs_error_set(err, -ENOMEM, "out of memory");
	return 1;
}

static const struct form *lookup_form(void *ctx, const char *collection)
{
	return hqforms_find(((const struct scope_set *)ctx)->forms, collection);
}

int scope_check(struct scope_set *sv, const struct scope *s, const struct change *c,
		const char **reason, struct fs_error *err)
{
	const struct scoperule_lookup l = { lookup_form, lookup_value, sv };
	const struct form *f = NULL;
	const char *field = scope_field_of(sv->forms, c->collection, &f);
	char *v = NULL;
	int r;

	*reason = NULL;
	if (!field || s->all)
		return 0;
	if ((r = scoperule_resolve(&l, c->collection, c->record_id, &v, err)) < 0)
		return r;
	if (r == SCOPERULE_UNKNOWN)
		*reason = "outside the device's scope: HQ does not know whose caseload the record "
			  "is in";
	else if (r == SCOPERULE_VALUE && !scope_contains(s, v))
		*reason = "outside the device's scope";
	free(v);
	v = NULL;
	if (*reason || strcmp(c->field, field) || !cJSON_IsString(c->value))
		return 0;
	/* The scope field itself: where the record goes must be ours too. */
	if ((r = scoperule_resolve_value(&l, f, c->value->valuestring, &v, err)) < 0)
		return r;
	if (r == SCOPERULE_UNKNOWN)
		*reason = "outside the device's scope: the record it names is not known at HQ";
	else if (r == SCOPERULE_VALUE && !scope_contains(s, v))
		*reason = "moves the record out of the device's scope";
	free(v);
	return 0;
}

/* ---- SQL -------------------------------------------------------------- */

static void sql_fold(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *text = (const char *)sqlite3_value_text(argv[0]);
	char *key = NULL;

	(void)argc;
	if (!text) {
		sqlite3_result_null(ctx);
		return;
	}
	if (fold_text(text, (size_t)sqlite3_value_bytes(argv[0]), &key) < 0) {
		sqlite3_result_null(ctx);
		return;
	}
	sqlite3_result_text(ctx, key, -1, free);
}

int scope_register_fold(sqlite3 *db)
{
	return sqlite3_create_function_v2(db, "fold", 1,
					  SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
					  NULL, sql_fold, NULL, NULL, NULL) == SQLITE_OK
		       ? 0
		       : -FS_ESTORE;
}
