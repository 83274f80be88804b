/* export.c - write merged records as CSV or JSON Lines.
 *
 * Sections: CSV cells; one record; the export loop.
 */
#include "hq/export.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "hq/hqsql.h"
#include "sync/hlc.h"

/* ---- CSV cells ------------------------------------------------------------ */

static void csv_cell(FILE *out, const char *s, int may_be_formula, int first)
{
	int quote = strpbrk(s, ",\"\r\n") != NULL;
	int guard = may_be_formula && strchr("=+-@\t\r", s[0]) && s[0];

	if (!first)
		fputc(',', out);
	if (quote)
		fputc('"', out);
	if (guard)
		fputc('\'', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	if (quote)
		fputc('"', out);
}

static int all_strings(const cJSON *v)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, v) if (!cJSON_IsString(it)) return 0;
	return 1;
}

/* The text of a JSON value in a cell; *ret_text is malloc'd or NULL for
 * an empty cell.  A multiple choice is its values joined by ';'; a
 * repeat group's rows, objects, are their JSON text. */
static int cell_text(const cJSON *v, char **ret_text, int *ret_textual)
{
	*ret_text = NULL;
	*ret_textual = 1;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (cJSON_IsString(v)) {
		*ret_text = strdup(v->valuestring);
	} else if (cJSON_IsArray(v) && all_strings(v)) {
		size_t len = 1;
		const cJSON *it;
		char *p;

		cJSON_ArrayForEach(it, v) len += strlen(it->valuestring) + 1;
		if (!(p = calloc(1, len)))
			return -ENOMEM;
		cJSON_ArrayForEach(it, v)
		{
			if (p[0])
				strcat(p, ";");
			strcat(p, it->valuestring);
		}
		*ret_text = p;
		return 0;
	} else {
		char *t = cJSON_PrintUnformatted(v);

		*ret_textual = 0;
		*ret_text = t ? strdup(t) : NULL;
		cJSON_free(t);
	}
	return *ret_text ? 0 : -ENOMEM;
}

/* An attached file in a cell: the name `fieldsync-hq attachment get`
 * writes it under, its hash and its kind ("HEX.jpg"); NULL (an empty
 * cell) for none or a reference that is not one. */
static int file_name(const cJSON *v, char **ret_text)
{
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(v, "sha256");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
	const char *ext = !cJSON_IsString(t)			       ? NULL
			  : !strcmp(t->valuestring, "image/jpeg")      ? "jpg"
			  : !strcmp(t->valuestring, "image/png")       ? "png"
			  : !strcmp(t->valuestring, "application/pdf") ? "pdf"
								       : NULL;
	char name[64 + 5];

	*ret_text = NULL;
	if (!ext || !cJSON_IsString(h) || strlen(h->valuestring) != 64 ||
	    strspn(h->valuestring, "0123456789abcdef") != 64)
		return 0;
	snprintf(name, sizeof(name), "%s.%s", h->valuestring, ext);
	return (*ret_text = strdup(name)) ? 0 : -ENOMEM;
}

/* ---- one record --------------------------------------------------------- */

struct row {
	const char *id;
	hlc_t updated;
	const char *device, *team;
	const char *state; /* the device's: active, or revoked (data it sent
			      before stays, marked) */
	cJSON **values;	   /* one per form field, NULL when absent; owned */
};

static int write_csv(FILE *out, const struct form *f, const struct row *rw)
{
	char when[HLC_TIME_LEN + 1];
	size_t n = form_field_count(f);

	csv_cell(out, rw->id, 0, 1);
	for (size_t i = 0; i < n; i++) {
		char *text = NULL;
		int textual;

		if (form_field_type(f, i) == FORM_ATTACHMENT) {
			if (file_name(rw->values[i], &text) < 0)
				return -ENOMEM;
			textual = 0;
		} else if (cell_text(rw->values[i], &text, &textual) < 0) {
			return -ENOMEM;
		}
		csv_cell(out, text ? text : "", textual, 0);
		free(text);
	}
	hlc_format_time(rw->updated, when);
	csv_cell(out, when, 0, 0);
	csv_cell(out, rw->device, 0, 0);
	csv_cell(out, rw->team, 1, 0);
	csv_cell(out, rw->state, 0, 0);
	fputs("\r\n", out);
	return 0;
}

static int write_jsonl(FILE *out, const struct form *f, struct row *rw)
{
	char when[HLC_TIME_LEN + 1], *text;
	size_t n = form_field_count(f);
	cJSON *o = cJSON_CreateObject();

	hlc_format_time(rw->updated, when);
	if (!o || !cJSON_AddStringToObject(o, "id", rw->id))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		cJSON *v = rw->values[i] ? rw->values[i] : cJSON_CreateNull();

		if (!v)
			goto fail;
		rw->values[i] = NULL;
		cJSON_AddItemToObject(o, form_field_name(f, i), v);
	}
	if (!cJSON_AddStringToObject(o, "updated", when) ||
	    !cJSON_AddStringToObject(o, "device", rw->device) ||
	    !cJSON_AddStringToObject(o, "team", rw->team) ||
	    !cJSON_AddStringToObject(o, "device_state", rw->state) ||
	    !(text = cJSON_PrintUnformatted(o)))
		goto fail;
	fputs(text, out);
	fputc('\n', out);
	cJSON_free(text);
	cJSON_Delete(o);
	return 0;
fail:
	cJSON_Delete(o);
	return -ENOMEM;
}

/* Fill rw->values from the fields table. */
static int load_values(struct hqsql *db, struct hqsql_stmt *st, const struct form *f,
		       struct row *rw, struct fs_error *err)
{
	int rc;

	hqsql_reset(st);
	hqsql_bind_text(st, 1, rw->id);
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		int i = form_field_index(f, hqsql_column_text(st, 0));

		if (i < 0)
			continue; /* a field since removed from the form */
		cJSON_Delete(rw->values[i]);
		rw->values[i] = cJSON_ParseWithLength(hqsql_column_text(st, 1),
						      (size_t)(int)hqsql_column_bytes(st, 1));
		if (!rw->values[i])
			return fs_error_set(err, -FS_ECORRUPT,
					    "record %s: a stored value is not "
					    "JSON",
					    rw->id);
	}
	return rc == HQSQL_DONE ? 0 : hqsql_fail(db, "read fields", err);
}

/* ---- the export loop --------------------------------------------------- */

static void write_csv_header(FILE *out, const struct form *f)
{
	fputs("\xEF\xBB\xBF", out);
	csv_cell(out, "id", 0, 1);
	for (size_t i = 0; i < form_field_count(f); i++)
		csv_cell(out, form_field_name(f, i), 0, 0);
	csv_cell(out, "updated", 0, 0);
	csv_cell(out, "device", 0, 0);
	csv_cell(out, "team", 0, 0);
	csv_cell(out, "device_state", 0, 0);
	fputs("\r\n", out);
}

int export_records(struct hqsql *db, const struct form *f, enum export_format fmt,
		   uint64_t since_ms, FILE *out, struct fs_error *err)
{
	struct hqsql_stmt *recs = NULL, *vals = NULL;
	size_t n = form_field_count(f);
	cJSON **values = calloc(n ? n : 1, sizeof(*values));
	int rc, r;

	if (!values)
		return fs_error_set(err, -ENOMEM, "out of memory");
	if ((r = hqsql_prepare(db,
			       "SELECT r.id, r.updated_hlc, r.updated_device, "
			       "coalesce(d.team, ''), coalesce(d.state, '') FROM records r "
			       "LEFT JOIN devices d "
			       "ON d.id = r.updated_device WHERE r.collection = ?1 "
			       "AND r.deleted = 0 AND r.merged_at >= ?2 ORDER BY r.id",
			       &recs, err)) < 0 ||
	    (r = hqsql_prepare(db, "SELECT field, value FROM fields WHERE record_id = ?1", &vals,
			       err)) < 0)
		goto out;
	hqsql_bind_text(recs, 1, form_collection(f));
	/* HQ's clock, not the device's: a visit recorded offline on day 1
	 * and synced on day 5 belongs in an export "since day 4". */
	hqsql_bind_int64(recs, 2, (int64_t)since_ms);
	if (fmt == EXPORT_CSV)
		write_csv_header(out, f);
	while ((rc = hqsql_step(recs)) == HQSQL_ROW) {
		struct row rw = { .id = hqsql_column_text(recs, 0),
				  .updated = (hlc_t)hqsql_column_int64(recs, 1),
				  .device = hqsql_column_text(recs, 2),
				  .team = hqsql_column_text(recs, 3),
				  .state = hqsql_column_text(recs, 4),
				  .values = values };

		r = load_values(db, vals, f, &rw, err);
		if (r == 0 &&
		    (fmt == EXPORT_CSV ? write_csv(out, f, &rw) : write_jsonl(out, f, &rw)) < 0)
			r = fs_error_set(err, -ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			cJSON_Delete(values[i]);
			values[i] = NULL;
		}
		if (r < 0)
			goto out;
	}
	if (rc != HQSQL_DONE) {
		r = hqsql_fail(db, "read records", err);
		goto out;
	}
	if (fflush(out) != 0 || ferror(out))
		r = fs_error_set(err, -EIO, "write export: %s", strerror(errno));
out:
	hqsql_finalize(recs);
	hqsql_finalize(vals);
	free(values);
	return r;
}
