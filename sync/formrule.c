/* formrule.c - the logic of fieldsync-form/2 (sync/form.h): parsing a
 * field's expressions, settling a record (skip logic, calculations) and
 * checking it whole, for form_validate and for the field app's report.
 *
 * Sections: parsing; reach and order; evaluating; settling; checking;
 * the record.
 */
#include "sync/form.h"
#include "sync/form_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sync/utf8.h"

/* Keys per choice_data entry, and their length. */
#define CHOICE_DATA_KEYS 16
#define CHOICE_DATA_TEXT 1000

/* ---- parsing ------------------------------------------------------------ */

static int parse_expr(const cJSON *v, const char *what, struct expr **ret, struct fs_error *err)
{
	int r;

	if (!v)
		return 0;
	if (!cJSON_IsString(v) || !v->valuestring)
		return fs_error_set(err, -FS_EFORMAT, "'%s' must be an expression (a string)",
				    what);
	if ((r = expr_parse(v->valuestring, ret, err)) < 0)
		fs_error_prefix(err, "'%s'", what);
	return r;
}

/* {value: {key: text}}: each value one of the field's, each key a name. */
static int parse_choice_data(struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	const cJSON *entry, *m;

	if (!v)
		return 0;
	if (!cJSON_IsObject(v))
		return fs_error_set(err, -FS_EFORMAT, "'choice_data' must be an object of values");
	cJSON_ArrayForEach(entry, v)
	{
		size_t i, n = 0;

		for (i = 0; i < ff->nvalues; i++)
			if (entry->string && !strcmp(entry->string, ff->values[i]))
				break;
		if (i == ff->nvalues)
			return fs_error_set(err, -FS_EFORMAT,
					    "'choice_data' names an entry that is not one of the "
					    "values");
		if (!cJSON_IsObject(entry))
			return fs_error_set(err, -FS_EFORMAT,
					    "'choice_data' for value %zu must be an object", i + 1);
		for (const cJSON *o = v->child; o != entry; o = o->next)
			if (!strcmp(o->string, entry->string))
				return fs_error_set(err, -FS_EFORMAT,
						    "'choice_data' gives value %zu twice", i + 1);
		cJSON_ArrayForEach(m, entry)
		{
			const char *s = cJSON_IsString(m) ? m->valuestring : NULL;

			if (++n > CHOICE_DATA_KEYS || !m->string || !*m->string ||
			    strlen(m->string) > FORM_MAX_NAME || !s || !utf8_valid(s) ||
			    strlen(s) > CHOICE_DATA_TEXT)
				return fs_error_set(
					err, -FS_EFORMAT,
					"'choice_data' for value %zu: at most %d keys, each of "
					"1 to %d bytes, each with a UTF-8 text of at most %d bytes",
					i + 1, CHOICE_DATA_KEYS, FORM_MAX_NAME, CHOICE_DATA_TEXT);
			for (const cJSON *o = entry->child; o != m; o = o->next)
				if (!strcmp(o->string, m->string))
					return fs_error_set(err, -FS_EFORMAT,
							    "'choice_data' for value %zu gives "
							    "a key twice",
							    i + 1);
		}
	}
	return (ff->choice_data = cJSON_Duplicate(v, 1))
		       ? 0
		       : fs_error_set(err, -ENOMEM, "out of memory");
}

int formrule_parse(struct form_field *ff, const struct form_logic_attrs *a, struct fs_error *err)
{
	int r;

	if ((r = parse_expr(a->relevant, "relevant", &ff->relevant, err)) < 0 ||
	    (r = parse_expr(a->required, "required", &ff->required_if, err)) < 0 ||
	    (r = parse_expr(a->constraint, "constraint", &ff->constraint, err)) < 0 ||
	    (r = parse_expr(a->calculate, "calculate", &ff->calculate, err)) < 0 ||
	    (r = parse_expr(a->choice_filter, "choice_filter", &ff->choice_filter, err)) < 0 ||
	    (r = parse_choice_data(ff, a->choice_data, err)) < 0)
		return r;
	ff->constraint_alone = ff->constraint && expr_reads_only_self(ff->constraint);
	if (a->constraint_message) {
		if (!a->constraint)
			return fs_error_set(err, -FS_EFORMAT,
					    "'constraint_message' without a 'constraint'");
		if ((r = form_parse_words(a->constraint_message, "constraint_message", err)) < 0)
			return r;
		if (!(ff->constraint_message = cJSON_Duplicate(a->constraint_message, 1)))
			return fs_error_set(err, -ENOMEM, "out of memory");
	}
	if (a->deflt) {
		struct fs_error verr = { 0 };

		if (a->calculate)
			return fs_error_set(err, -FS_EFORMAT,
					    "'default' on a calculated field is never used");
		/* The default must pass the field's own rules: a default the
		 * form refuses would make every new record invalid. */
		if (cJSON_IsNull(a->deflt) || form_check_value(ff, a->deflt, &verr) < 0)
			return fs_error_set(err, -FS_EFORMAT, "'default' breaks the field's rules");
		if (!(ff->deflt = cJSON_Duplicate(a->deflt, 1)))
			return fs_error_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

void formrule_free(struct form_field *ff)
{
	expr_free(ff->relevant);
	expr_free(ff->required_if);
	expr_free(ff->constraint);
	expr_free(ff->calculate);
	expr_free(ff->choice_filter);
	cJSON_Delete(ff->constraint_message);
	cJSON_Delete(ff->deflt);
	cJSON_Delete(ff->choice_data);
}

/* ---- reach and order ---------------------------------------------------- */

/* Where an expression stands: the form's field at index top, and within
 * a group, the row's field at index sub (else -1). */
struct reach {
	const struct form *f;
	size_t top;
	int sub;
	int backwards; /* the expression may name only earlier fields */
	const char *what;
	struct fs_error *err;
};

static int index_in(const struct form_field *fields, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(fields[i].name, name))
			return (int)i;
	return -1;
}

static int reach_name(const char *name, void *ctx)
{
	const struct reach *rc = ctx;
	const struct form_field *group = &rc->f->fields[rc->top];
	int i;

	if (rc->sub >= 0 && (i = index_in(group->sub, group->nsub, name)) >= 0) {
		if (rc->backwards && i >= rc->sub)
			goto order;
		return 0;
	}
	if ((i = index_in(rc->f->fields, rc->f->nfields, name)) < 0)
		return fs_error_set(rc->err, -FS_EFORMAT, "'%s' names a field %s", rc->what,
				    rc->sub >= 0 ? "neither of its row nor of the form"
						 : "the form does not have");
	/* Seen from a row, the group itself comes after. */
	if (rc->backwards && (size_t)i >= rc->top)
		goto order;
	return 0;
order:
	return fs_error_set(rc->err, -FS_EFORMAT,
			    "'%s' may name only fields defined before this one ('%s' is not)",
			    rc->what, name);
}

static int reach_field(const struct form *f, size_t top, int sub, const struct form_field *ff,
		       struct fs_error *err)
{
	const struct {
		const struct expr *e;
		const char *what;
		int backwards;
	} exprs[] = {
		{ ff->relevant, "relevant", 1 },	   { ff->calculate, "calculate", 1 },
		{ ff->choice_filter, "choice_filter", 1 }, { ff->required_if, "required", 0 },
		{ ff->constraint, "constraint", 0 },
	};
	int r;

	for (size_t k = 0; k < sizeof(exprs) / sizeof(exprs[0]); k++) {
		struct reach rc = { f, top, sub, exprs[k].backwards, exprs[k].what, err };

		if (exprs[k].e && (r = expr_refs(exprs[k].e, reach_name, &rc)) != 0) {
			fs_error_prefix(err, "field '%s'", ff->name);
			return r;
		}
	}
	return 0;
}

int formrule_check_refs(const struct form *f, struct fs_error *err)
{
	int r;

	for (size_t i = 0; i < f->nfields; i++) {
		const struct form_field *group = &f->fields[i];

		if ((r = reach_field(f, i, -1, group, err)) < 0)
			return r;
		for (size_t k = 0; k < group->nsub; k++) {
			if (index_in(f->fields, f->nfields, group->sub[k].name) >= 0)
				return fs_error_set(err, -FS_EFORMAT,
						    "field '%s' row field '%s': the form has a "
						    "field of that name",
						    group->name, group->sub[k].name);
			if ((r = reach_field(f, i, (int)k, &group->sub[k], err)) < 0) {
				fs_error_prefix(err, "field '%s' row", group->name);
				return r;
			}
		}
	}
	return 0;
}

/* ---- evaluating --------------------------------------------------------- */

/* What ${name} reads: the row being looked at, then the record. */
struct scope {
	const cJSON *record;
	const cJSON *row;
	const char *today;
};

static const cJSON *scope_lookup(const char *name, void *ctx)
{
	const struct scope *sc = ctx;
	const cJSON *v = sc->row ? cJSON_GetObjectItemCaseSensitive(sc->row, name) : NULL;

	return v ? v : cJSON_GetObjectItemCaseSensitive(sc->record, name);
}

static int holds(const struct expr *e, const struct scope *sc, const cJSON *self)
{
	struct expr_value v = expr_eval(e, scope_lookup, (void *)sc, self, sc->today);

	return expr_true(&v);
}

static int offered(const struct form_field *ff, const struct scope *sc, const char *value)
{
	cJSON self = { .type = cJSON_String, .valuestring = (char *)value };
	struct expr_value v;

	v = expr_eval_choice(ff->choice_filter, scope_lookup, (void *)sc, &self,
			     cJSON_GetObjectItemCaseSensitive(ff->choice_data, value), sc->today);
	return expr_true(&v);
}

/* A calculation's result as the field's value; NULL when there is none,
 * or when the result breaks the field's own rules. */
static cJSON *computed(const struct form_field *ff, const struct scope *sc)
{
	struct expr_value v = expr_eval(ff->calculate, scope_lookup, (void *)sc, NULL, sc->today);
	char buf[32];
	cJSON *out = NULL;
	double x;

	if (v.kind == EXPR_NULL || v.kind == EXPR_LIST)
		return NULL;
	switch (ff->type) {
	case FORM_INTEGER:
		if (v.kind == EXPR_NUMBER)
			x = v.n;
		else if (v.kind != EXPR_TEXT || sscanf(v.text, "%lf%31s", &x, buf) != 1)
			return NULL;
		x = round(x);
		if (isfinite(x) && fabs(x) <= 9007199254740992.0)
			out = cJSON_CreateNumber(x);
		break;
	case FORM_BOOLEAN:
		out = cJSON_CreateBool(expr_true(&v));
		break;
	case FORM_TEXT:
	case FORM_DATE:
		if (v.kind == EXPR_TEXT)
			out = cJSON_CreateString(v.text);
		else if (ff->type == FORM_TEXT && v.kind == EXPR_NUMBER &&
			 snprintf(buf, sizeof(buf), "%.15g", v.n) > 0)
			out = cJSON_CreateString(buf);
		else if (ff->type == FORM_TEXT && v.kind == EXPR_BOOL)
			out = cJSON_CreateString(v.b ? "true" : "false");
		break;
	default:
		break;
	}
	if (out && form_check_value(ff, out, NULL) < 0)
		out = (cJSON_Delete(out), NULL);
	return out;
}

/* ---- settling ----------------------------------------------------------- */

/* Settle obj (the record, or a row in sc->row).  Its members must be
 * fields of it, once each: a repeated one would keep a copy that
 * settling never saw. */
static int settle_fields(struct scope *sc, const struct form_field *fields, size_t n, cJSON *obj,
			 struct fs_error *err)
{
	int r;

	if ((r = form_check_members(fields, n, obj, err)) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		const struct form_field *ff = &fields[i];
		cJSON *v, *row;
		size_t k = 0;

		if (ff->relevant && !holds(ff->relevant, sc, NULL)) {
			cJSON_DeleteItemFromObjectCaseSensitive(obj, ff->name);
			continue;
		}
		if (ff->calculate) {
			v = computed(ff, sc);
			cJSON_DeleteItemFromObjectCaseSensitive(obj, ff->name);
			if (v && !cJSON_AddItemToObject(obj, ff->name, v)) {
				cJSON_Delete(v);
				return fs_error_set(err, -ENOMEM, "out of memory");
			}
		}
		v = cJSON_GetObjectItemCaseSensitive(obj, ff->name);
		if (ff->type != FORM_REPEAT || !cJSON_IsArray(v))
			continue;
		cJSON_ArrayForEach(row, v)
		{
			k++;
			if (!cJSON_IsObject(row))
				continue;
			sc->row = row;
			r = settle_fields(sc, ff->sub, ff->nsub, row, err);
			sc->row = NULL;
			if (r < 0) {
				fs_error_prefix(err, "field '%s' row %zu", ff->name, k);
				return r;
			}
		}
	}
	return 0;
}

void form_today(char buf[FORM_DATE_SIZE])
{
	time_t now = time(NULL);
	struct tm tm;

	if (!localtime_r(&now, &tm) || strftime(buf, FORM_DATE_SIZE, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, FORM_DATE_SIZE, "1970-01-01");
}

int form_settle(const struct form *f, cJSON *fields, const char *today, struct fs_error *err)
{
	char day[FORM_DATE_SIZE];
	struct scope sc = { fields, NULL, today };

	if (!f || !fields)
		return fs_error_set(err, -FS_EUSAGE, "settle: no form or record");
	if (!cJSON_IsObject(fields))
		return fs_error_set(err, -FS_EVALID, "record fields must be a JSON object");
	if (!today) {
		form_today(day);
		sc.today = day;
	}
	return settle_fields(&sc, f->fields, f->nfields, fields, err);
}

int form_apply_defaults(const struct form *f, cJSON *fields, struct fs_error *err)
{
	if (!f || !cJSON_IsObject(fields))
		return fs_error_set(err, -FS_EUSAGE, "defaults: no form or record");
	for (size_t i = 0; i < f->nfields; i++) {
		const struct form_field *ff = &f->fields[i];
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, ff->name);
		cJSON *dup;

		if (!ff->deflt || (v && !cJSON_IsNull(v)))
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(fields, ff->name);
		dup = cJSON_Duplicate(ff->deflt, 1);
		if (!dup || !cJSON_AddItemToObject(fields, ff->name, dup)) {
			cJSON_Delete(dup);
			return fs_error_set(err, -ENOMEM, "out of memory");
		}
	}
	return 0;
}

/* ---- checking ----------------------------------------------------------- */

/* Where a check's findings go: the first error (report NULL), or a
 * report, which goes on past errors. */
struct check {
	struct scope sc;
	int valid;
	struct fs_error *err;
};

/* Every value of a choice field that the filter lets through. */
static int choice_passes(const struct form_field *ff, const struct scope *sc, const cJSON *v)
{
	const cJSON *item;

	if (!ff->choice_filter)
		return 1;
	if (cJSON_IsString(v))
		return offered(ff, sc, v->valuestring);
	cJSON_ArrayForEach(item, v) if (!offered(ff, sc, item->valuestring)) return 0;
	return 1;
}

static int check_fields(struct check *ck, const struct form_field *fields, size_t n,
			const cJSON *obj, cJSON *out);

/* A group's rows: count, then each row's fields. */
static int check_group(struct check *ck, const struct form_field *ff, const cJSON *v, cJSON *entry,
		       const char **rule, struct fs_error *e)
{
	cJSON *rows = NULL;
	const cJSON *row;
	size_t n = 0;
	int r;

	if (!cJSON_IsArray(v)) {
		*rule = "type";
		return fs_error_set(e, -FS_EVALID, "field '%s': must be an array of rows",
				    ff->name);
	}
	if ((size_t)cJSON_GetArraySize(v) > ff->max_rows ||
	    (size_t)cJSON_GetArraySize(v) < ff->min_rows) {
		*rule = "rows";
		return fs_error_set(e, -FS_EVALID, "field '%s': needs %zu to %zu rows", ff->name,
				    ff->min_rows, ff->max_rows);
	}
	if (entry && !(rows = cJSON_AddArrayToObject(entry, "rows")))
		return -ENOMEM;
	cJSON_ArrayForEach(row, v)
	{
		cJSON *rout = NULL;

		n++;
		if ((r = form_check_members(ff->sub, ff->nsub, row, e)) < 0) {
			*rule = "type";
			fs_error_prefix(e, "field '%s' row %zu", ff->name, n);
			return r;
		}
		if (rows && (!(rout = cJSON_CreateObject()) || !cJSON_AddItemToArray(rows, rout)))
			return (cJSON_Delete(rout), -ENOMEM);
		ck->sc.row = row;
		r = check_fields(ck, ff->sub, ff->nsub, row, rout);
		ck->sc.row = NULL;
		if (r < 0 && !rout) {
			fs_error_prefix(ck->err, "field '%s' row %zu", ff->name, n);
			return r;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* One field: which rule it breaks, if any (*rule NULL: none). */
static int check_field(struct check *ck, const struct form_field *ff, const cJSON *v, int relevant,
		       int required, cJSON *entry, const char **rule, struct fs_error *e)
{
	int present = v && !cJSON_IsNull(v), r;

	*rule = NULL;
	if (!relevant) {
		if (present)
			*rule = "relevant";
		return present ? fs_error_set(e, -FS_EVALID, "field '%s': answered, but not asked",
					      ff->name)
			       : 0;
	}
	if (!present) {
		if (required)
			*rule = "required";
		return required ? fs_error_set(e, -FS_EVALID, "field '%s': required", ff->name) : 0;
	}
	if (ff->type == FORM_REPEAT) {
		if ((r = check_group(ck, ff, v, entry, rule, e)) < 0)
			return r;
	} else if (form_check_type(ff, v, e) < 0) {
		*rule = "type";
		return -FS_EVALID;
	}
	if (!choice_passes(ff, &ck->sc, v)) {
		*rule = "choice";
		return fs_error_set(e, -FS_EVALID, "field '%s': not offered for these answers",
				    ff->name);
	}
	if (ff->constraint && !holds(ff->constraint, &ck->sc, v)) {
		*rule = "constraint";
		return fs_error_set(e, -FS_EVALID, "field '%s': constraint not met", ff->name);
	}
	return 0;
}

/* A field's entry in the report. */
static int report_field(const struct form_field *ff, const struct scope *sc, cJSON *entry,
			int relevant, int required, const char *rule, const struct fs_error *e)
{
	cJSON *o, *list;

	if (!cJSON_AddBoolToObject(entry, "relevant", relevant) ||
	    !cJSON_AddBoolToObject(entry, "required", required))
		return -ENOMEM;
	if (rule) {
		if (!(o = cJSON_AddObjectToObject(entry, "error")) ||
		    !cJSON_AddStringToObject(o, "rule", rule) ||
		    !cJSON_AddStringToObject(o, "detail", e->msg))
			return -ENOMEM;
		if (!strcmp(rule, "constraint") && ff->constraint_message &&
		    !cJSON_AddItemToObject(o, "message",
					   cJSON_Duplicate(ff->constraint_message, 1)))
			return -ENOMEM;
	}
	if (!ff->choice_filter || !relevant)
		return 0;
	if (!(list = cJSON_AddArrayToObject(entry, "choices")))
		return -ENOMEM;
	for (size_t i = 0; i < ff->nvalues; i++)
		if (offered(ff, sc, ff->values[i]) &&
		    !cJSON_AddItemToArray(list, cJSON_CreateString(ff->values[i])))
			return -ENOMEM;
	return 0;
}

/* Check fields of obj (the record, or a row in ck->sc.row).  Without
 * out, stop at the first error, in ck->err; with out, add an entry per
 * field and go on, returning < 0 only for -ENOMEM. */
static int check_fields(struct check *ck, const struct form_field *fields, size_t n,
			const cJSON *obj, cJSON *out)
{
	for (size_t i = 0; i < n; i++) {
		const struct form_field *ff = &fields[i];
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, ff->name);
		const struct scope *sc = &ck->sc;
		int relevant = !ff->relevant || holds(ff->relevant, sc, NULL);
		int required = relevant && (ff->required ||
					    (ff->required_if && holds(ff->required_if, sc, NULL)));
		struct fs_error e = { 0 };
		const char *rule = NULL;
		cJSON *entry = NULL;
		const cJSON *row = sc->row;
		int r;

		if (out && !(entry = cJSON_AddObjectToObject(out, ff->name)))
			return -ENOMEM;
		r = check_field(ck, ff, v, relevant, required, entry, &rule, out ? &e : ck->err);
		ck->sc.row = row;
		if (r == -ENOMEM)
			return r;
		if (r < 0 && !out)
			return r;
		if (rule)
			ck->valid = 0;
		if (out && (r = report_field(ff, sc, entry, relevant, required, rule, &e)) < 0)
			return r;
	}
	return 0;
}

/* ---- the record --------------------------------------------------------- */

static int check_record(const struct form *f, const cJSON *fields, const char *today, cJSON *out,
			int *ret_valid, struct fs_error *err)
{
	char day[FORM_DATE_SIZE];
	struct check ck = { { fields, NULL, today }, 1, err };
	int r;

	if (!f)
		return fs_error_set(err, -FS_EUSAGE, "no form");
	if (!cJSON_IsObject(fields))
		return fs_error_set(err, -FS_EVALID, "record fields must be a JSON object");
	if (!today) {
		form_today(day);
		ck.sc.today = day;
	}
	if ((r = form_check_members(f->fields, f->nfields, fields, err)) < 0)
		return r;
	r = check_fields(&ck, f->fields, f->nfields, fields, out);
	if (r == -ENOMEM)
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (ret_valid)
		*ret_valid = ck.valid;
	return r;
}

int form_validate(const struct form *f, const cJSON *fields, const char *today,
		  struct fs_error *err)
{
	return check_record(f, fields, today, NULL, NULL, err);
}

int form_report(const struct form *f, const cJSON *fields, const char *today, cJSON **ret,
		struct fs_error *err)
{
	cJSON *report = cJSON_CreateObject(), *out;
	int valid = 0, r;

	if (!ret)
		return fs_error_set(err, -FS_EUSAGE, "report: nowhere to put it");
	if (!report || !(out = cJSON_AddObjectToObject(report, "fields"))) {
		cJSON_Delete(report);
		return fs_error_set(err, -ENOMEM, "out of memory");
	}
	if ((r = check_record(f, fields, today, out, &valid, err)) < 0 ||
	    (!cJSON_AddBoolToObject(report, "valid", valid) &&
	     (r = fs_error_set(err, -ENOMEM, "out of memory")) < 0)) {
		cJSON_Delete(report);
		return r;
	}
	*ret = report;
	return 0;
}
