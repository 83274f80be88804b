/* form.c - form definitions and validation of record fields.
 *
 * Sections: strings and numbers; parsing a definition; loading a file;
 * the loaded form; checking values; whole records; values from text.
 */
#include "sync/form.h"
#include "sync/form_impl.h"
#include "sync/sniff.h"
#include "sync/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/uuid.h"

#define FORMAT_V1 "fieldsync-form/1"
#define FORMAT_V2 "fieldsync-form/2" /* adds words for people, logic, repeats */
/* A label or hint: languages, and bytes of text in one language. */
#define FORM_MAX_LANGUAGES 16
#define FORM_MAX_LABEL 1000
/* A text field may not be declared longer than this (bytes). */
#define FORM_MAX_TEXT_LENGTH (1024 * 1024)
/* At most this many allowed values per choice or multi_choice field. */
#define FORM_MAX_VALUES 1024
/* ---- strings and numbers ---------------------------------------------- */

/* A name or key for a message: quoted if it is printable ASCII (cut to
 * PRINT_MAX bytes), else not printed at all. */
static const char *quoted(const char *s, char buf[PRINT_MAX + 8])
{
	size_t n;

	if (!s)
		return "(no name)";
	for (n = 0; s[n]; n++)
		if (s[n] < 0x20 || s[n] > 0x7e)
			return "(unprintable name)";
	if (n > PRINT_MAX)
		n = PRINT_MAX;
	snprintf(buf, PRINT_MAX + 8, "'%.*s'%s", (int)n, s, s[n] ? "..." : "");
	return buf;
}

/* [a-z][a-z0-9_]{0,63} */
static bool name_valid(const char *s)
{
	size_t n;

	if (!(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (n = 1; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	return n <= FORM_MAX_NAME;
}

/* A JSON number that is a whole number within int64. */
static bool json_int64(const cJSON *v, int64_t *ret)
{
	double d;

	if (!cJSON_IsNumber(v))
		return false;
	d = v->valuedouble;
	/* Also false for NaN; 0x1p63 itself does not fit. */
	if (!(d >= -0x1p63 && d < 0x1p63))
		return false;
	if ((double)(int64_t)d != d)
		return false;
	*ret = (int64_t)d;
	return true;
}

static bool ascii_eq_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;

		if (x != *b)
			return false;
	}
	return *a == *b;
}

/* ---- parsing a definition --------------------------------------------- */

enum attr {
	ATTR_NAME,
	ATTR_TYPE,
	ATTR_REQUIRED,
	ATTR_MAX_LENGTH,
	ATTR_FORMAT,
	ATTR_MIN,
	ATTR_MAX,
	ATTR_VALUES,
	ATTR_MUST_BE,
	ATTR_COLLECTION,
	ATTR_LABEL,
	ATTR_HINT,
	ATTR_CHOICE_LABELS,
	ATTR_RELEVANT,
	ATTR_CONSTRAINT,
	ATTR_CONSTRAINT_MESSAGE,
	ATTR_CALCULATE,
	ATTR_DEFAULT,
	ATTR_CHOICE_FILTER,
	ATTR_CHOICE_DATA,
	ATTR_FIELDS,
	ATTR_MIN_ROWS,
	ATTR_MAX_ROWS,
	ATTR_MAX_BYTES,
	ATTR_ACCEPT,
	ATTR_MAX_SIDE,
	ATTR_QUALITY,
	ATTR_KEEP_LOCATION,
	ATTR_COUNT,
};

#define T(t) (1u << (t))
#define T_ALL 0x3ffu
#define T_CHOICES (T(FORM_CHOICE) | T(FORM_MULTI_CHOICE))
/* A file's reference is not typed, computed or checked by an expression. */
#define T_VALUES (T_ALL & ~T(FORM_REPEAT) & ~T(FORM_ATTACHMENT))

/* Each attribute and the field types that may carry it. */
static const struct {
	const char *name;
	unsigned types;
} attrs[ATTR_COUNT] = {
	[ATTR_NAME] = { "name", T_ALL },
	[ATTR_TYPE] = { "type", T_ALL },
	[ATTR_REQUIRED] = { "required", T_ALL },
	[ATTR_MAX_LENGTH] = { "max_length", T(FORM_TEXT) },
	[ATTR_FORMAT] = { "format", T(FORM_TEXT) },
	[ATTR_MIN] = { "min", T(FORM_INTEGER) },
	[ATTR_MAX] = { "max", T(FORM_INTEGER) },
	[ATTR_VALUES] = { "values", T(FORM_CHOICE) | T(FORM_MULTI_CHOICE) },
	[ATTR_MUST_BE] = { "must_be", T(FORM_BOOLEAN) },
	[ATTR_COLLECTION] = { "collection", T(FORM_REF) },
	[ATTR_LABEL] = { "label", T_ALL },
	[ATTR_HINT] = { "hint", T_ALL },
	[ATTR_CHOICE_LABELS] = { "choice_labels", T_CHOICES },
	[ATTR_RELEVANT] = { "relevant", T_ALL },
	[ATTR_CONSTRAINT] = { "constraint", T_ALL & ~T(FORM_ATTACHMENT) },
	[ATTR_CONSTRAINT_MESSAGE] = { "constraint_message", T_ALL & ~T(FORM_ATTACHMENT) },
	[ATTR_CALCULATE] = { "calculate",
			     T(FORM_TEXT) | T(FORM_INTEGER) | T(FORM_BOOLEAN) | T(FORM_DATE) },
	[ATTR_DEFAULT] = { "default", T_VALUES },
	[ATTR_CHOICE_FILTER] = { "choice_filter", T_CHOICES },
	[ATTR_CHOICE_DATA] = { "choice_data", T_CHOICES },
	[ATTR_FIELDS] = { "fields", T(FORM_REPEAT) },
	[ATTR_MIN_ROWS] = { "min_rows", T(FORM_REPEAT) },
	[ATTR_MAX_ROWS] = { "max_rows", T(FORM_REPEAT) },
	[ATTR_MAX_BYTES] = { "max_bytes", T(FORM_ATTACHMENT) },
	[ATTR_ACCEPT] = { "accept", T(FORM_ATTACHMENT) },
	[ATTR_MAX_SIDE] = { "max_side", T(FORM_ATTACHMENT) },
	[ATTR_QUALITY] = { "quality", T(FORM_ATTACHMENT) },
	[ATTR_KEEP_LOCATION] = { "keep_location", T(FORM_ATTACHMENT) },
};

/* The attributes fieldsync-form/1 does not have. */
static bool attr_v2(int a)
{
	return a >= ATTR_LABEL;
}

static const char *const type_names[] = {
	[FORM_TEXT] = "text",	    [FORM_INTEGER] = "integer",
	[FORM_BOOLEAN] = "boolean", [FORM_DATE] = "date",
	[FORM_CHOICE] = "choice",   [FORM_MULTI_CHOICE] = "multi_choice",
	[FORM_GPS] = "gps",	    [FORM_REF] = "ref",
	[FORM_REPEAT] = "repeat",   [FORM_ATTACHMENT] = "attachment",
};

/* Sort the members of a field object by attribute; reject unknown and
 * repeated ones. */
static int field_attrs(const cJSON *obj, const cJSON *ret_attr[ATTR_COUNT], struct fs_error *err)
{
	const cJSON *m;
	char buf[PRINT_MAX + 8];

	cJSON_ArrayForEach(m, obj)
	{
		int a;

		for (a = 0; a < ATTR_COUNT; a++)
			if (m->string && !strcmp(m->string, attrs[a].name))
				break;
		if (a == ATTR_COUNT)
			return fs_error_set(err, -FS_EFORMAT, "unknown attribute %s",
					    quoted(m->string, buf));
		if (ret_attr[a])
			return fs_error_set(err, -FS_EFORMAT, "attribute '%s' given twice",
					    attrs[a].name);
		ret_attr[a] = m;
	}
	return 0;
}

static int parse_name(struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	char buf[PRINT_MAX + 8];

	if (!v)
		return fs_error_set(err, -FS_EFORMAT, "'name' missing");
	if (!cJSON_IsString(v) || !v->valuestring)
		return fs_error_set(err, -FS_EFORMAT, "'name' must be a string");
	if (!strcmp(v->valuestring, "id") || v->valuestring[0] == '_')
		return fs_error_set(err, -FS_EFORMAT, "name %s is reserved",
				    quoted(v->valuestring, buf));
	if (!name_valid(v->valuestring))
		return fs_error_set(err, -FS_EFORMAT, "name %s must match [a-z][a-z0-9_]{0,63}",
				    quoted(v->valuestring, buf));
	strcpy(ff->name, v->valuestring);
	return 0;
}

static int parse_type(struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	char buf[PRINT_MAX + 8];

	if (!v)
		return fs_error_set(err, -FS_EFORMAT, "'type' missing");
	if (!cJSON_IsString(v) || !v->valuestring)
		return fs_error_set(err, -FS_EFORMAT, "'type' must be a string");
	for (size_t t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++) {
		if (!strcmp(v->valuestring, type_names[t])) {
			ff->type = (enum form_type)t;
			return 0;
		}
	}
	return fs_error_set(err, -FS_EFORMAT, "unknown type %s", quoted(v->valuestring, buf));
}

/* The allowed values of a choice or multi_choice field: a non-empty
 * array of distinct non-empty strings.  multi_choice values are written
 * as a list on the command line, so they may not hold a separator or
 * start or end with a space. */
static int parse_values(struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	const cJSON *item;
	int n;

	if (!v)
		return fs_error_set(err, -FS_EFORMAT, "'values' missing");
	if (!cJSON_IsArray(v))
		return fs_error_set(err, -FS_EFORMAT, "'values' must be an array of strings");
	n = cJSON_GetArraySize(v);
	if (n <= 0)
		return fs_error_set(err, -FS_EFORMAT, "'values' must not be empty");
	if (n > FORM_MAX_VALUES)
		return fs_error_set(err, -FS_EFORMAT, "more than %d values", FORM_MAX_VALUES);
	ff->values = calloc((size_t)n, sizeof(*ff->values));
	if (!ff->values)
		return fs_error_set(err, -ENOMEM, "out of memory");
	cJSON_ArrayForEach(item, v)
	{
		const char *s = cJSON_IsString(item) ? item->valuestring : NULL;
		size_t i = ff->nvalues, len;

		if (!s || !*s || !utf8_valid(s))
			return fs_error_set(err, -FS_EFORMAT,
					    "value %zu must be a non-empty UTF-8 string", i + 1);
		len = strlen(s);
		if (ff->type == FORM_MULTI_CHOICE &&
		    (strpbrk(s, ",;") || s[0] == ' ' || s[len - 1] == ' '))
			return fs_error_set(err, -FS_EFORMAT,
					    "value %zu: a multi_choice value may not contain ',' "
					    "or ';' or start or end with a space",
					    i + 1);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(ff->values[j], s))
				return fs_error_set(err, -FS_EFORMAT, "value %zu repeats value %zu",
						    i + 1, j + 1);
		ff->values[i] = strdup(s);
		if (!ff->values[i])
			return fs_error_set(err, -ENOMEM, "out of memory");
		ff->nvalues++;
	}
	return 0;
}

static int parse_bounds(struct form_field *ff, const cJSON *min, const cJSON *max,
			struct fs_error *err)
{
	ff->min = INT64_MIN;
	ff->max = INT64_MAX;
	if (min && !json_int64(min, &ff->min))
		return fs_error_set(err, -FS_EFORMAT, "'min' must be a whole number");
	if (max && !json_int64(max, &ff->max))
		return fs_error_set(err, -FS_EFORMAT, "'max' must be a whole number");
	if (ff->min > ff->max)
		return fs_error_set(err, -FS_EFORMAT, "'min' is greater than 'max'");
	return 0;
}

static int parse_text_attrs(struct form_field *ff, const cJSON *max_length, const cJSON *format,
			    struct fs_error *err)
{
	char buf[PRINT_MAX + 8];
	int64_t n;

	ff->max_length = FORM_DEFAULT_MAX_LENGTH;
	if (max_length) {
		if (!json_int64(max_length, &n) || n < 1 || n > FORM_MAX_TEXT_LENGTH)
			return fs_error_set(err, -FS_EFORMAT,
					    "'max_length' must be a whole number in 1..%d",
					    FORM_MAX_TEXT_LENGTH);
		ff->max_length = (size_t)n;
	}
	if (format) {
		if (!cJSON_IsString(format) || !format->valuestring)
			return fs_error_set(err, -FS_EFORMAT, "'format' must be a string");
		if (strcmp(format->valuestring, "phone") != 0)
			return fs_error_set(err, -FS_EFORMAT, "unknown text format %s",
					    quoted(format->valuestring, buf));
		ff->phone = true;
	}
	return 0;
}

static int parse_collection_name(const cJSON *v, const char *what, char **ret, struct fs_error *err)
{
	char buf[PRINT_MAX + 8];
	char *s;

	if (!v)
		return fs_error_set(err, -FS_EFORMAT, "'%s' missing", what);
	if (!cJSON_IsString(v) || !v->valuestring)
		return fs_error_set(err, -FS_EFORMAT, "'%s' must be a string", what);
	if (!name_valid(v->valuestring))
		return fs_error_set(err, -FS_EFORMAT, "%s %s must match [a-z][a-z0-9_]{0,63}", what,
				    quoted(v->valuestring, buf));
	s = strdup(v->valuestring);
	if (!s)
		return fs_error_set(err, -ENOMEM, "out of memory");
	*ret = s;
	return 0;
}

/* One entry of "fields".  On failure ff may be half built; form_free
 * releases it. */
/* A language tag as forms use them: "en", "sr-Latn", "sr-Cyrl",
 * "pt-BR": 2 or 3 lower-case letters, then a script (Xxxx) and or a
 * region (XX). */
static bool language_valid(const char *s)
{
	size_t n = 0;

	while (s[n] >= 'a' && s[n] <= 'z')
		n++;
	if (n < 2 || n > 3)
		return false;
	s += n;
	if (s[0] == '-' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'a' && s[2] <= 'z' &&
	    s[3] >= 'a' && s[3] <= 'z' && s[4] >= 'a' && s[4] <= 'z')
		s += 5;
	if (s[0] == '-' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z')
		s += 3;
	return *s == '\0';
}

/* Words for people, per language: {"sr-Latn": "...", "en": "..."}, each
 * a non-empty UTF-8 text without control characters. */
int form_parse_words(const cJSON *v, const char *what, struct fs_error *err)
{
	const cJSON *m;
	char buf[PRINT_MAX + 8];
	int n = 0;

	if (!cJSON_IsObject(v))
		return fs_error_set(err, -FS_EFORMAT, "'%s' must be an object of languages", what);
	cJSON_ArrayForEach(m, v)
	{
		const char *s = cJSON_IsString(m) ? m->valuestring : NULL;

		if (++n > FORM_MAX_LANGUAGES)
			return fs_error_set(err, -FS_EFORMAT, "'%s': more than %d languages", what,
					    FORM_MAX_LANGUAGES);
		if (!m->string || !language_valid(m->string))
			return fs_error_set(err, -FS_EFORMAT,
					    "'%s': %s is not a language tag (such as sr-Latn)",
					    what, quoted(m->string, buf));
		for (const cJSON *o = v->child; o != m; o = o->next)
			if (!strcmp(o->string, m->string))
				return fs_error_set(err, -FS_EFORMAT,
						    "'%s': language %s given twice", what,
						    m->string);
		if (!s || !*s || !utf8_valid(s) || strlen(s) > FORM_MAX_LABEL)
			return fs_error_set(err, -FS_EFORMAT,
					    "'%s' in %s must be UTF-8 text of 1 to %d bytes", what,
					    m->string, FORM_MAX_LABEL);
		for (const unsigned char *p = (const unsigned char *)s; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				return fs_error_set(err, -FS_EFORMAT,
						    "'%s' in %s holds a control character", what,
						    m->string);
	}
	if (n == 0)
		return fs_error_set(err, -FS_EFORMAT, "'%s' names no language", what);
	return 0;
}

/* "choice_labels": {"value": {language: text}} for values of the field. */
static int parse_choice_labels(const struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	const cJSON *m;
	char buf[PRINT_MAX + 8];
	int r;

	if (!v)
		return 0;
	if (!cJSON_IsObject(v))
		return fs_error_set(err, -FS_EFORMAT,
				    "'choice_labels' must be an object of values");
	cJSON_ArrayForEach(m, v)
	{
		size_t i;

		for (i = 0; i < ff->nvalues; i++)
			if (m->string && !strcmp(m->string, ff->values[i]))
				break;
		if (i == ff->nvalues)
			return fs_error_set(
				err, -FS_EFORMAT,
				"'choice_labels' names %s, which is not one of the values",
				quoted(m->string, buf));
		for (const cJSON *o = v->child; o != m; o = o->next)
			if (!strcmp(o->string, m->string))
				return fs_error_set(err, -FS_EFORMAT,
						    "'choice_labels' gives value %zu twice", i + 1);
		if ((r = form_parse_words(m, "choice_labels", err)) < 0)
			return r;
	}
	return 0;
}

static int parse_fields(struct form_field **ret, size_t *ret_n, const cJSON *arr, int format,
			int depth, struct fs_error *err);

/* How many rows a repeat group may hold: "min_rows", "max_rows". */
static int parse_rows(struct form_field *ff, const cJSON *min, const cJSON *max,
		      struct fs_error *err)
{
	int64_t lo = 0, hi = FORM_DEFAULT_MAX_ROWS;

	if (min && (!json_int64(min, &lo) || lo < 0 || lo > FORM_MAX_ROWS))
		return fs_error_set(err, -FS_EFORMAT, "'min_rows' must be a whole number 0 to %d",
				    FORM_MAX_ROWS);
	if (max && (!json_int64(max, &hi) || hi < 1 || hi > FORM_MAX_ROWS))
		return fs_error_set(err, -FS_EFORMAT, "'max_rows' must be a whole number 1 to %d",
				    FORM_MAX_ROWS);
	if (lo > hi)
		return fs_error_set(err, -FS_EFORMAT, "'min_rows' is greater than 'max_rows'");
	ff->min_rows = (size_t)lo;
	ff->max_rows = (size_t)hi;
	return 0;
}

/* What a device does to a photo before it keeps it: the longest side
 * ("max_side", none by default), the JPEG quality of a resized one
 * ("quality", default FORM_DEFAULT_QUALITY), and whether its location
 * (EXIF) stays ("keep_location", default false). */
static int parse_image_attrs(struct form_field *ff, const cJSON *side, const cJSON *quality,
			     const cJSON *keep, struct fs_error *err)
{
	int64_t n = 0;

	ff->quality = FORM_DEFAULT_QUALITY;
	if (side && (!json_int64(side, &n) || n < FORM_MIN_SIDE || n > FORM_MAX_SIDE))
		return fs_error_set(err, -FS_EFORMAT, "'max_side' must be a whole number %d to %d",
				    FORM_MIN_SIDE, FORM_MAX_SIDE);
	if (side)
		ff->max_side = (unsigned)n;
	if (quality && (!json_int64(quality, &n) || n < 1 || n > 100))
		return fs_error_set(err, -FS_EFORMAT, "'quality' must be a whole number 1 to 100");
	if (quality && !side)
		return fs_error_set(err, -FS_EFORMAT, "'quality' applies only with 'max_side'");
	if (quality)
		ff->quality = (unsigned)n;
	if (keep && !cJSON_IsBool(keep))
		return fs_error_set(err, -FS_EFORMAT, "'keep_location' must be true or false");
	ff->keep_location = keep && cJSON_IsTrue(keep);
	return 0;
}

/* An attachment's largest file ("max_bytes", default
 * FORM_DEFAULT_MAX_BYTES) and the content types it takes ("accept", by
 * magic bytes: sync/sniff.h; default all). */
static int parse_attachment_attrs(struct form_field *ff, const cJSON *max, const cJSON *accept,
				  struct fs_error *err)
{
	const cJSON *t;
	int64_t n = 0;

	ff->max_bytes = FORM_DEFAULT_MAX_BYTES;
	ff->accept = SNIFF_ALL;
	if (max && (!json_int64(max, &n) || n < 1 || (uint64_t)n > FORM_MAX_MAX_BYTES))
		return fs_error_set(err, -FS_EFORMAT,
				    "'max_bytes' must be a whole number 1 to %llu",
				    (unsigned long long)FORM_MAX_MAX_BYTES);
	if (max)
		ff->max_bytes = (uint64_t)n;
	if (!accept)
		return 0;
	if (!cJSON_IsArray(accept) || !cJSON_GetArraySize(accept))
		return fs_error_set(err, -FS_EFORMAT, "'accept' must be a list of content types");
	ff->accept = 0;
	cJSON_ArrayForEach(t, accept)
	{
		enum sniff_type k =
			cJSON_IsString(t) ? sniff_from_name(t->valuestring) : SNIFF_NONE;

		if (k == SNIFF_NONE)
			return fs_error_set(err, -FS_EFORMAT,
					    "'accept': each must be image/jpeg, image/png or "
					    "application/pdf");
		ff->accept |= (unsigned)k;
	}
	return 0;
}

/* What a field's type takes: bounds, values, a target, or its rows. */
static int parse_type_attrs(struct form_field *ff, const cJSON *a[ATTR_COUNT], int format,
			    int depth, struct fs_error *err)
{
	int r;

	switch (ff->type) {
	case FORM_TEXT:
		return parse_text_attrs(ff, a[ATTR_MAX_LENGTH], a[ATTR_FORMAT], err);
	case FORM_INTEGER:
		return parse_bounds(ff, a[ATTR_MIN], a[ATTR_MAX], err);
	case FORM_BOOLEAN:
		if (a[ATTR_MUST_BE] && !cJSON_IsBool(a[ATTR_MUST_BE]))
			return fs_error_set(err, -FS_EFORMAT, "'must_be' must be true or false");
		if (a[ATTR_MUST_BE])
			ff->must_be = cJSON_IsTrue(a[ATTR_MUST_BE]);
		return 0;
	case FORM_CHOICE:
	case FORM_MULTI_CHOICE:
		if ((r = parse_values(ff, a[ATTR_VALUES], err)) < 0)
			return r;
		return parse_choice_labels(ff, a[ATTR_CHOICE_LABELS], err);
	case FORM_REF:
		if (depth > 0)
			return fs_error_set(err, -FS_EFORMAT, "a repeat group cannot hold a ref");
		return parse_collection_name(a[ATTR_COLLECTION], "collection", &ff->collection,
					     err);
	case FORM_REPEAT:
		/* One level: a row of a row would be a record of its own. */
		if (depth > 0)
			return fs_error_set(err, -FS_EFORMAT, "a repeat group cannot hold another");
		if ((r = parse_rows(ff, a[ATTR_MIN_ROWS], a[ATTR_MAX_ROWS], err)) < 0)
			return r;
		return parse_fields(&ff->sub, &ff->nsub, a[ATTR_FIELDS], format, depth + 1, err);
	case FORM_ATTACHMENT:
		if (depth > 0)
			return fs_error_set(err, -FS_EFORMAT,
					    "a repeat group cannot hold an attachment");
		if ((r = parse_image_attrs(ff, a[ATTR_MAX_SIDE], a[ATTR_QUALITY],
					   a[ATTR_KEEP_LOCATION], err)) < 0)
			return r;
		return parse_attachment_attrs(ff, a[ATTR_MAX_BYTES], a[ATTR_ACCEPT], err);
	case FORM_DATE:
	case FORM_GPS:
		return 0;
	}
	return fs_error_set(err, -FS_EFORMAT, "unknown type");
}

static int parse_field(struct form_field *ff, const cJSON *obj, int format, int depth,
		       struct fs_error *err)
{
	const cJSON *a[ATTR_COUNT] = { 0 };
	int r;

	if (!cJSON_IsObject(obj))
		return fs_error_set(err, -FS_EFORMAT, "must be an object");
	if ((r = field_attrs(obj, a, err)) < 0 || (r = parse_name(ff, a[ATTR_NAME], err)) < 0 ||
	    (r = parse_type(ff, a[ATTR_TYPE], err)) < 0)
		return r;
	if ((ff->type == FORM_REPEAT || ff->type == FORM_ATTACHMENT) && format < 2)
		return fs_error_set(err, -FS_EFORMAT, "type %s needs format \"" FORMAT_V2 "\"",
				    type_names[ff->type]);
	for (int i = 0; i < ATTR_COUNT; i++) {
		if (a[i] && !(attrs[i].types & T(ff->type)))
			return fs_error_set(err, -FS_EFORMAT,
					    "attribute '%s' not allowed for type %s", attrs[i].name,
					    type_names[ff->type]);
		if (a[i] && attr_v2(i) && format < 2)
			return fs_error_set(err, -FS_EFORMAT,
					    "attribute '%s' needs format \"" FORMAT_V2 "\"",
					    attrs[i].name);
	}
	if ((a[ATTR_LABEL] && (r = form_parse_words(a[ATTR_LABEL], "label", err)) < 0) ||
	    (a[ATTR_HINT] && (r = form_parse_words(a[ATTR_HINT], "hint", err)) < 0))
		return r;
	/* "required" is true or false, or in /2 an expression (formrule.c). */
	if (a[ATTR_REQUIRED] && !cJSON_IsBool(a[ATTR_REQUIRED]) &&
	    !(format >= 2 && cJSON_IsString(a[ATTR_REQUIRED])))
		return fs_error_set(err, -FS_EFORMAT,
				    format >= 2 ? "'required' must be true, false or an expression"
						: "'required' must be true or false");
	ff->required = cJSON_IsTrue(a[ATTR_REQUIRED]);
	ff->must_be = -1;
	if ((r = parse_type_attrs(ff, a, format, depth, err)) < 0)
		return r;
	return formrule_parse(
		ff,
		&(struct form_logic_attrs){
			.relevant = a[ATTR_RELEVANT],
			.required = cJSON_IsString(a[ATTR_REQUIRED]) ? a[ATTR_REQUIRED] : NULL,
			.constraint = a[ATTR_CONSTRAINT],
			.constraint_message = a[ATTR_CONSTRAINT_MESSAGE],
			.calculate = a[ATTR_CALCULATE],
			.deflt = a[ATTR_DEFAULT],
			.choice_filter = a[ATTR_CHOICE_FILTER],
			.choice_data = a[ATTR_CHOICE_DATA],
		},
		err);
}

/* A "fields" array, the form's or a repeat group's: each entry parsed,
 * names distinct. */
static int parse_fields(struct form_field **ret, size_t *ret_n, const cJSON *arr, int format,
			int depth, struct fs_error *err)
{
	const cJSON *item;
	int n;

	if (!arr)
		return fs_error_set(err, -FS_EFORMAT, "'fields' missing");
	if (!cJSON_IsArray(arr))
		return fs_error_set(err, -FS_EFORMAT, "'fields' must be an array");
	n = cJSON_GetArraySize(arr);
	if (n <= 0)
		return fs_error_set(err, -FS_EFORMAT, "'fields' is empty");
	if (n > FORM_MAX_FIELDS)
		return fs_error_set(err, -FS_EFORMAT, "more than %d fields", FORM_MAX_FIELDS);
	*ret = calloc((size_t)n, sizeof(**ret));
	if (!*ret)
		return fs_error_set(err, -ENOMEM, "out of memory");
	cJSON_ArrayForEach(item, arr)
	{
		struct form_field *fields = *ret, *ff = &fields[*ret_n];
		size_t i = *ret_n;
		int r;

		(*ret_n)++; /* so form_free sees a half-built field */
		r = parse_field(ff, item, format, depth, err);
		if (r == 0)
			for (size_t j = 0; j < i && r == 0; j++)
				if (!strcmp(fields[j].name, ff->name))
					r = fs_error_set(err, -FS_EFORMAT, "name repeats field %zu",
							 j + 1);
		if (r < 0) {
			if (ff->name[0])
				fs_error_prefix(err, "field %zu '%s'", i + 1, ff->name);
			else
				fs_error_prefix(err, "field %zu", i + 1);
			return r;
		}
	}
	return 0;
}

/* "scope": the name of a text or choice field whose value says whose
 * caseload a record is in, or of a ref field, when a record is in the
 * scope of the record it names. */
static int parse_scope(struct form *f, const cJSON *scope, struct fs_error *err)
{
	char buf[PRINT_MAX + 8];
	int i;

	f->scope = -1;
	if (!scope)
		return 0;
	if (!cJSON_IsString(scope) || !scope->valuestring)
		return fs_error_set(err, -FS_EFORMAT, "'scope' must be a field name");
	if ((i = form_field_index(f, scope->valuestring)) < 0)
		return fs_error_set(err, -FS_EFORMAT, "'scope' names no field of the form (%s)",
				    quoted(scope->valuestring, buf));
	if (f->fields[i].type != FORM_TEXT && f->fields[i].type != FORM_CHOICE &&
	    f->fields[i].type != FORM_REF)
		return fs_error_set(err, -FS_EFORMAT,
				    "'scope' field '%s' must be of type text, choice or ref",
				    f->fields[i].name);
	if (!f->fields[i].required)
		return fs_error_set(err, -FS_EFORMAT, "'scope' field '%s' must be required",
				    f->fields[i].name);
	/* HQ places a record by this field alone: it must always be given,
	 * and by the worker, not by logic HQ does not run per change. */
	if (f->fields[i].relevant || f->fields[i].calculate || f->fields[i].required_if)
		return fs_error_set(err, -FS_EFORMAT,
				    "'scope' field '%s' may not have relevant, calculate or a "
				    "required expression",
				    f->fields[i].name);
	f->scope = i;
	return 0;
}

/* The top-level object: "format", "collection" and "fields", and
 * optionally "scope". */
static int parse_form(struct form *f, const cJSON *root, struct fs_error *err)
{
	const cJSON *format = NULL, *collection = NULL, *fields = NULL, *scope = NULL,
		    *title = NULL, *m;
	char buf[PRINT_MAX + 8];
	int r;

	if (!cJSON_IsObject(root))
		return fs_error_set(err, -FS_EFORMAT, "not a JSON object");
	cJSON_ArrayForEach(m, root)
	{
		const cJSON **slot = NULL;

		if (m->string && !strcmp(m->string, "format"))
			slot = &format;
		else if (m->string && !strcmp(m->string, "collection"))
			slot = &collection;
		else if (m->string && !strcmp(m->string, "fields"))
			slot = &fields;
		else if (m->string && !strcmp(m->string, "scope"))
			slot = &scope;
		else if (m->string && !strcmp(m->string, "title"))
			slot = &title;
		else
			return fs_error_set(err, -FS_EFORMAT, "unknown member %s",
					    quoted(m->string, buf));
		if (*slot)
			return fs_error_set(err, -FS_EFORMAT, "member '%s' given twice", m->string);
		*slot = m;
	}
	if (!format)
		return fs_error_set(err, -FS_EFORMAT, "'format' missing");
	if (cJSON_IsString(format) && !strcmp(format->valuestring, FORMAT_V1))
		f->format = 1;
	else if (cJSON_IsString(format) && !strcmp(format->valuestring, FORMAT_V2))
		f->format = 2;
	else
		return fs_error_set(err, -FS_EFORMAT,
				    "unsupported format (expected \"" FORMAT_V1 "\" or \"" FORMAT_V2
				    "\")");
	if (title && f->format < 2)
		return fs_error_set(err, -FS_EFORMAT, "'title' needs format \"" FORMAT_V2 "\"");
	if (title && (r = form_parse_words(title, "title", err)) < 0)
		return r;
	if ((r = parse_collection_name(collection, "collection", &f->collection, err)) < 0 ||
	    (r = parse_fields(&f->fields, &f->nfields, fields, f->format, 0, err)) < 0 ||
	    (r = parse_scope(f, scope, err)) < 0)
		return r;
	return formrule_check_refs(f, err);
}

int form_load_json(const char *json, size_t len, const char *origin, struct form **ret_form,
		   struct fs_error *err)
{
	const char *where = origin ? origin : "(definition)", *end = NULL;
	struct form *f = NULL;
	cJSON *root = NULL;
	char *buf = NULL;
	int r;

	if (!json || !ret_form)
		return fs_error_set(err, -FS_EUSAGE, "form %s: no definition", where);
	if (len > FORM_MAX_DEFINITION_BYTES)
		return fs_error_set(err, -FS_EFORMAT, "form %s: definition larger than %d bytes",
				    where, FORM_MAX_DEFINITION_BYTES);
	if (memchr(json, '\0', len))
		return fs_error_set(err, -FS_EFORMAT, "form %s: definition contains a NUL byte",
				    where);
	/* cJSON wants a terminated string; a copy also rules out trailing
	 * bytes being read past len. */
	buf = malloc(len + 1);
	f = calloc(1, sizeof(*f));
	if (!buf || !f) {
		r = fs_error_set(err, -ENOMEM, "form %s: out of memory", where);
		goto out;
	}
	memcpy(buf, json, len);
	buf[len] = '\0';
	root = cJSON_ParseWithOpts(buf, &end, 1);
	if (!root) {
		r = fs_error_set(err, -FS_EFORMAT, "form %s: not valid JSON (near byte %zu)", where,
				 end && end >= buf && end <= buf + len ? (size_t)(end - buf) : len);
		goto out;
	}
	r = parse_form(f, root, err);
	if (r < 0) {
		fs_error_prefix(err, "form %s", where);
		goto out;
	}
	/* Kept canonical (cJSON, no spaces): HQ tells a changed definition
	 * from the one it published by these bytes, and sends them. */
	if (!(f->definition = cJSON_PrintUnformatted(root))) {
		r = fs_error_set(err, -ENOMEM, "form %s: out of memory", where);
		goto out;
	}
	*ret_form = f;
	f = NULL;
out:
	form_free(f);
	cJSON_Delete(root);
	free(buf);
	return r;
}

/* ---- loading a file --------------------------------------------------- */

int form_load_file(const char *path, struct form **ret_form, struct fs_error *err)
{
	size_t cap = FORM_MAX_DEFINITION_BYTES + 1, got = 0;
	struct stat st;
	char *buf = NULL;
	int fd, r;

	if (!path || !ret_form)
		return fs_error_set(err, -FS_EUSAGE, "form: no path");
	/* O_NONBLOCK: a FIFO in the forms directory must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		return fs_error_set(err, r, "form %s: %s", path, fs_strerror(r));
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		r = fs_error_set(err, r, "form %s: %s", path, fs_strerror(r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = fs_error_set(err, -FS_EFORMAT, "form %s: not a regular file", path);
		goto out;
	}
	if (st.st_size > FORM_MAX_DEFINITION_BYTES) {
		r = fs_error_set(err, -FS_EFORMAT, "form %s: definition larger than %d bytes", path,
				 FORM_MAX_DEFINITION_BYTES);
		goto out;
	}
	buf = malloc(cap);
	if (!buf) {
		r = fs_error_set(err, -ENOMEM, "form %s: out of memory", path);
		goto out;
	}
	/* Read one byte past the cap, in case the file grew since fstat. */
	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			r = fs_error_set(err, r, "form %s: %s", path, fs_strerror(r));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > FORM_MAX_DEFINITION_BYTES) {
		r = fs_error_set(err, -FS_EFORMAT, "form %s: definition larger than %d bytes", path,
				 FORM_MAX_DEFINITION_BYTES);
		goto out;
	}
	r = form_load_json(buf, got, path, ret_form, err);
out:
	free(buf);
	close(fd);
	return r;
}

/* ---- the loaded form -------------------------------------------------- */

static void fields_free(struct form_field *fields, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct form_field *ff = &fields[i];

		for (size_t j = 0; j < ff->nvalues; j++)
			free(ff->values[j]);
		free(ff->values);
		free(ff->collection);
		formrule_free(ff);
		fields_free(ff->sub, ff->nsub);
	}
	free(fields);
}

struct form *form_free(struct form *f)
{
	if (!f)
		return NULL;
	fields_free(f->fields, f->nfields);
	free(f->collection);
	cJSON_free(f->definition);
	free(f);
	return NULL;
}

const char *form_collection(const struct form *f)
{
	return f ? f->collection : NULL;
}

const char *form_definition(const struct form *f)
{
	return f->definition;
}

uint32_t form_version(const struct form *f)
{
	return f->version;
}

void form_set_version(struct form *f, uint32_t version)
{
	f->version = version;
}

size_t form_field_count(const struct form *f)
{
	return f ? f->nfields : 0;
}

const char *form_field_name(const struct form *f, size_t i)
{
	return f && i < f->nfields ? f->fields[i].name : NULL;
}

enum form_type form_field_type(const struct form *f, size_t i)
{
	return f && i < f->nfields ? f->fields[i].type : FORM_TEXT;
}

void form_field_image(const struct form *f, size_t i, unsigned *max_side, unsigned *quality,
		      int *keep_location)
{
	*max_side = f->fields[i].max_side;
	*quality = f->fields[i].quality;
	*keep_location = f->fields[i].keep_location;
}

int form_field_index(const struct form *f, const char *name)
{
	if (!f || !name)
		return -FS_ENOTFOUND;
	for (size_t i = 0; i < f->nfields; i++)
		if (!strcmp(f->fields[i].name, name))
			return (int)i;
	return -FS_ENOTFOUND;
}

const char *form_field_ref(const struct form *f, size_t i)
{
	return f && i < f->nfields ? f->fields[i].collection : NULL;
}

int form_scope_field(const struct form *f)
{
	return f && f->scope >= 0 ? f->scope : -FS_ENOTFOUND;
}

static int unknown_field(const char *name, struct fs_error *err)
{
	char buf[FS_TOKEN_MAX + 3];

	/* A record's key may be anything a person typed, even a name. */
	return fs_error_set(err, -FS_EVALID, "unknown field %s", fs_error_token(name, buf));
}

/* The field called name, or NULL after filling err. */
static const struct form_field *field_find(const struct form *f, const char *name,
					   struct fs_error *err)
{
	int i = form_field_index(f, name);

	if (i < 0) {
		unknown_field(name, err);
		return NULL;
	}
	return &f->fields[i];
}

/* ---- checking values -------------------------------------------------- */
/* Every message names the field and the rule; none prints the value. */

static int check_text(const struct form_field *ff, const char *s, struct fs_error *err)
{
	int ndigits = 0;

	if (strlen(s) > ff->max_length)
		return fs_error_set(err, -FS_EVALID, "field '%s': longer than %zu bytes", ff->name,
				    ff->max_length);
	if (!utf8_valid(s))
		return fs_error_set(err, -FS_EVALID, "field '%s': not valid UTF-8", ff->name);
	if (!ff->phone)
		return 0;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9')
			ndigits++;
		else if (!strchr(" +-()", *s))
			return fs_error_set(err, -FS_EVALID,
					    "field '%s': a phone number may contain only digits, "
					    "spaces and + - ( )",
					    ff->name);
	}
	if (ndigits < 3)
		return fs_error_set(err, -FS_EVALID,
				    "field '%s': a phone number needs at least 3 digits", ff->name);
	return 0;
}

static int check_integer(const struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	int64_t n;

	if (!json_int64(v, &n))
		return fs_error_set(err, -FS_EVALID,
				    "field '%s': must be a whole number (64-bit integer)",
				    ff->name);
	if (n < ff->min)
		return fs_error_set(err, -FS_EVALID, "field '%s': must be at least %" PRId64,
				    ff->name, ff->min);
	if (n > ff->max)
		return fs_error_set(err, -FS_EVALID, "field '%s': must be at most %" PRId64,
				    ff->name, ff->max);
	return 0;
}

static int check_boolean(const struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	if (!cJSON_IsBool(v))
		return fs_error_set(err, -FS_EVALID, "field '%s': must be true or false", ff->name);
	if (ff->must_be >= 0 && cJSON_IsTrue(v) != ff->must_be)
		return fs_error_set(err, -FS_EVALID, "field '%s': must be %s", ff->name,
				    ff->must_be ? "true" : "false");
	return 0;
}

/* Digits only, exactly n of them. */
static bool digits(const char *s, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return true;
}

static int check_date(const struct form_field *ff, const char *s, struct fs_error *err)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d, last;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) ||
	    !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
		return fs_error_set(err, -FS_EVALID, "field '%s': must be a date YYYY-MM-DD",
				    ff->name);
	if (y < 1900 || y > 2200)
		return fs_error_set(err, -FS_EVALID, "field '%s': year must be in 1900..2200",
				    ff->name);
	if (m < 1 || m > 12)
		return fs_error_set(err, -FS_EVALID, "field '%s': not a calendar date", ff->name);
	last = mdays[m - 1];
	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		last = 29;
	if (d < 1 || d > last)
		return fs_error_set(err, -FS_EVALID, "field '%s': not a calendar date", ff->name);
	return 0;
}

static bool choice_allowed(const struct form_field *ff, const char *s)
{
	for (size_t i = 0; i < ff->nvalues; i++)
		if (!strcmp(ff->values[i], s))
			return true;
	return false;
}

static int check_multi(const struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	const cJSON *item;
	size_t i = 0;

	if (!cJSON_IsArray(v))
		return fs_error_set(err, -FS_EVALID, "field '%s': must be a list of values",
				    ff->name);
	/* Items are distinct allowed values, so the loop stops by item
	 * nvalues + 1 at the latest. */
	cJSON_ArrayForEach(item, v)
	{
		const cJSON *prev;

		i++;
		if (!cJSON_IsString(item) || !item->valuestring)
			return fs_error_set(err, -FS_EVALID, "field '%s': item %zu is not a string",
					    ff->name, i);
		if (!choice_allowed(ff, item->valuestring))
			return fs_error_set(err, -FS_EVALID,
					    "field '%s': item %zu is not an allowed value",
					    ff->name, i);
		for (prev = v->child; prev != item; prev = prev->next)
			if (!strcmp(prev->valuestring, item->valuestring))
				return fs_error_set(err, -FS_EVALID,
						    "field '%s': item %zu is repeated", ff->name,
						    i);
	}
	return 0;
}

/* One coordinate: -?D{1,3}(.D{1,15})?  Compared with limit exactly, so
 * neither the locale nor rounding matters.  Returns the end, or NULL
 * on a syntax error; *ret_over is set if |value| > limit. */
static const char *gps_coord(const char *s, int limit, bool *ret_over)
{
	int whole = 0, nd = 0, nf = 0;
	bool frac_nonzero = false;

	if (*s == '-')
		s++;
	for (; *s >= '0' && *s <= '9'; s++, nd++)
		if (nd < 3)
			whole = whole * 10 + (*s - '0');
	if (nd < 1 || nd > 3)
		return NULL;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, nf++)
			frac_nonzero |= *s != '0';
		if (nf < 1 || nf > 15)
			return NULL;
	}
	*ret_over = whole > limit || (whole == limit && frac_nonzero);
	return s;
}

static int check_gps(const struct form_field *ff, const char *s, struct fs_error *err)
{
	bool lat_over = false, lon_over = false;
	const char *p = gps_coord(s, 90, &lat_over);

	if (p && *p == ',') {
		p++;
		if (*p == ' ')
			p++;
		p = gps_coord(p, 180, &lon_over);
	} else {
		p = NULL;
	}
	if (!p || *p)
		return fs_error_set(err, -FS_EVALID,
				    "field '%s': must be \"lat,lon\" in decimal degrees", ff->name);
	if (lat_over)
		return fs_error_set(err, -FS_EVALID, "field '%s': latitude must be in -90..90",
				    ff->name);
	if (lon_over)
		return fs_error_set(err, -FS_EVALID, "field '%s': longitude must be in -180..180",
				    ff->name);
	return 0;
}

static int check_string(const struct form_field *ff, const char *s, struct fs_error *err)
{
	char uuid[UUID_TEXT_LEN + 1];

	switch (ff->type) {
	case FORM_TEXT:
		return check_text(ff, s, err);
	case FORM_DATE:
		return check_date(ff, s, err);
	case FORM_CHOICE:
		if (!choice_allowed(ff, s))
			return fs_error_set(err, -FS_EVALID,
					    "field '%s': not one of the allowed values", ff->name);
		return 0;
	case FORM_GPS:
		return check_gps(ff, s, err);
	case FORM_REF:
		if (uuid_normalize(s, uuid) < 0)
			return fs_error_set(err, -FS_EVALID,
					    "field '%s': must be a record id (UUID)", ff->name);
		return 0;
	default:
		break;
	}
	return fs_error_set(err, -FS_EVALID, "field '%s': not a string field", ff->name);
}

/* A size for a person: "14.0 MB". */
static void megabytes(uint64_t n, char out[32])
{
	snprintf(out, 32, "%.1f MB", (double)n / 1e6);
}

/* An attachment's reference: {"sha256": 64 lower-case hex, "size": its
 * bytes, 1 to max_bytes, "type": one the field accepts}, and nothing
 * else.  The bytes travel apart; this is what the record holds. */
static int check_attachment(const struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(v, "sha256"),
		    *n = cJSON_GetObjectItemCaseSensitive(v, "size"),
		    *t = cJSON_GetObjectItemCaseSensitive(v, "type");
	char got[32], most[32];
	int64_t size = 0;

	if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) != 3 || !cJSON_IsString(h) ||
	    strlen(h->valuestring) != 64 || strspn(h->valuestring, "0123456789abcdef") != 64 ||
	    !json_int64(n, &size) || size < 1 || !cJSON_IsString(t))
		return fs_error_set(
			err, -FS_EVALID,
			"field '%s': must be {\"sha256\", \"size\", \"type\"} of a file", ff->name);
	if (!(ff->accept & (unsigned)sniff_from_name(t->valuestring)))
		return fs_error_set(err, -FS_EVALID,
				    "field '%s': a file of a type it does not take", ff->name);
	if ((uint64_t)size > ff->max_bytes) {
		megabytes((uint64_t)size, got);
		megabytes(ff->max_bytes, most);
		return fs_error_set(err, -FS_EVALID, "%s is %s, the form allows %s", ff->name, got,
				    most);
	}
	return 0;
}

/* A repeat group's rows: an array of objects, each only of the group's
 * fields, given once, each value right by its own rules. */
static int check_rows(const struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	const cJSON *row;
	size_t n = 0;
	int r;

	if (!cJSON_IsArray(v))
		return fs_error_set(err, -FS_EVALID, "field '%s': must be an array of rows",
				    ff->name);
	cJSON_ArrayForEach(row, v)
	{
		if (++n > ff->max_rows)
			return fs_error_set(err, -FS_EVALID, "field '%s': more than %zu rows",
					    ff->name, ff->max_rows);
		if ((r = form_check_members(ff->sub, ff->nsub, row, err)) < 0) {
			fs_error_prefix(err, "field '%s' row %zu", ff->name, n);
			return r;
		}
		for (size_t i = 0; i < ff->nsub; i++) {
			const cJSON *sv = cJSON_GetObjectItemCaseSensitive(row, ff->sub[i].name);

			if ((r = form_check_value(&ff->sub[i], sv, err)) < 0) {
				fs_error_prefix(err, "field '%s' row %zu", ff->name, n);
				return r;
			}
		}
	}
	if (n < ff->min_rows)
		return fs_error_set(err, -FS_EVALID, "field '%s': fewer than %zu rows", ff->name,
				    ff->min_rows);
	return 0;
}

int form_check_type(const struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	if (!v || cJSON_IsNull(v)) {
		if (ff->required && !ff->relevant)
			return fs_error_set(err, -FS_EVALID, "field '%s': required", ff->name);
		return 0;
	}
	switch (ff->type) {
	case FORM_INTEGER:
		return check_integer(ff, v, err);
	case FORM_BOOLEAN:
		return check_boolean(ff, v, err);
	case FORM_MULTI_CHOICE:
		return check_multi(ff, v, err);
	case FORM_REPEAT:
		return check_rows(ff, v, err);
	case FORM_ATTACHMENT:
		return check_attachment(ff, v, err);
	default:
		break;
	}
	if (!cJSON_IsString(v) || !v->valuestring)
		return fs_error_set(err, -FS_EVALID, "field '%s': must be a string", ff->name);
	return check_string(ff, v->valuestring, err);
}

int form_check_value(const struct form_field *ff, const cJSON *v, struct fs_error *err)
{
	struct expr_value ok;
	int r;

	if ((r = form_check_type(ff, v, err)) < 0 || !v || cJSON_IsNull(v) || !ff->constraint_alone)
		return r;
	ok = expr_eval(ff->constraint, NULL, NULL, v, NULL);
	if (!expr_true(&ok))
		return fs_error_set(err, -FS_EVALID, "field '%s': constraint not met", ff->name);
	return 0;
}

int form_validate_value(const struct form *f, const char *field, const cJSON *value,
			struct fs_error *err)
{
	const struct form_field *ff = field_find(f, field, err);

	if (!ff)
		return -FS_EVALID;
	return form_check_value(ff, value, err);
}

int form_check_members(const struct form_field *fields, size_t n, const cJSON *obj,
		       struct fs_error *err)
{
	bool seen[FORM_MAX_FIELDS] = { false };
	const cJSON *m;

	if (!cJSON_IsObject(obj))
		return fs_error_set(err, -FS_EVALID, "fields must be a JSON object");
	cJSON_ArrayForEach(m, obj)
	{
		size_t i;

		for (i = 0; i < n; i++)
			if (m->string && !strcmp(fields[i].name, m->string))
				break;
		if (i == n)
			return unknown_field(m->string, err);
		if (seen[i])
			return fs_error_set(err, -FS_EVALID, "field '%s': given more than once",
					    fields[i].name);
		seen[i] = true;
	}
	return 0;
}

/* ---- values from text ------------------------------------------------- */

static int integer_from_text(const struct form_field *ff, const char *text, cJSON **ret,
			     struct fs_error *err)
{
	const char *p = text + (*text == '-' || *text == '+');
	char *end = NULL;
	long long n;

	/* strtoll would skip leading space and accept what follows. */
	if (*p < '0' || *p > '9')
		return fs_error_set(err, -FS_EVALID, "field '%s': not a whole number", ff->name);
	errno = 0;
	n = strtoll(text, &end, 10);
	if (*end != '\0')
		return fs_error_set(err, -FS_EVALID, "field '%s': not a whole number", ff->name);
	/* A JSON number is a double: refuse what it cannot hold exactly. */
	if (errno == ERANGE || n > (1LL << 53) || n < -(1LL << 53))
		return fs_error_set(err, -FS_EVALID, "field '%s': number too large", ff->name);
	*ret = cJSON_CreateNumber((double)n);
	return 0;
}

static int boolean_from_text(const struct form_field *ff, const char *text, cJSON **ret,
			     struct fs_error *err)
{
	static const char *const yes[] = { "true", "yes", "1" }, *const no[] = { "false", "no",
										 "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (ascii_eq_nocase(text, yes[i])) {
			*ret = cJSON_CreateTrue();
			return 0;
		}
		if (ascii_eq_nocase(text, no[i])) {
			*ret = cJSON_CreateFalse();
			return 0;
		}
	}
	return fs_error_set(err, -FS_EVALID, "field '%s': expected true/false, yes/no or 1/0",
			    ff->name);
}

/* Items split on ',' or ';', spaces and tabs trimmed, empty ones dropped. */
static int multi_from_text(const char *text, cJSON **ret, struct fs_error *err)
{
	char *copy = strdup(text), *p;
	cJSON *arr = cJSON_CreateArray();
	int r = 0;

	if (!copy || !arr) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (p = copy; p;) {
		char *item = p, *sep = strpbrk(p, ",;"), *e;
		cJSON *s;

		if (sep)
			*sep = '\0';
		p = sep ? sep + 1 : NULL;
		while (*item == ' ' || *item == '\t')
			item++;
		for (e = item + strlen(item); e > item && (e[-1] == ' ' || e[-1] == '\t'); e--)
			e[-1] = '\0';
		if (!*item)
			continue;
		s = cJSON_CreateString(item);
		if (!s || !cJSON_AddItemToArray(arr, s)) {
			cJSON_Delete(s);
			r = fs_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	*ret = arr;
	arr = NULL;
out:
	cJSON_Delete(arr);
	free(copy);
	return r;
}

/* A repeat group's rows are given as their JSON array. */
/* A repeat group's rows as a JSON array, or an attachment's reference
 * as a JSON object (as an export gives them). */
static int json_from_text(const struct form_field *ff, const char *text, cJSON **ret,
			  struct fs_error *err)
{
	cJSON *v = cJSON_ParseWithOpts(text, NULL, 1);

	if (ff->type == FORM_REPEAT ? !cJSON_IsArray(v) : !cJSON_IsObject(v)) {
		cJSON_Delete(v);
		return fs_error_set(err, -FS_EVALID,
				    ff->type == FORM_REPEAT
					    ? "field '%s': a repeat group is given as a JSON array "
					      "of rows"
					    : "field '%s': an attachment is given as its JSON "
					      "reference {\"sha256\", \"size\", \"type\"}",
				    ff->name);
	}
	*ret = v;
	return 0;
}

int form_value_from_text(const struct form *f, const char *field, const char *text,
			 cJSON **ret_value, struct fs_error *err)
{
	const struct form_field *ff = field_find(f, field, err);
	cJSON *v = NULL;
	int r = 0;

	if (!ff)
		return -FS_EVALID;
	if (!text || !ret_value)
		return fs_error_set(err, -FS_EUSAGE, "field '%s': no text", ff->name);
	if (!*text)
		v = cJSON_CreateNull();
	else if (ff->type == FORM_INTEGER)
		r = integer_from_text(ff, text, &v, err);
	else if (ff->type == FORM_BOOLEAN)
		r = boolean_from_text(ff, text, &v, err);
	else if (ff->type == FORM_MULTI_CHOICE)
		r = multi_from_text(text, &v, err);
	else if (ff->type == FORM_REPEAT || ff->type == FORM_ATTACHMENT)
		r = json_from_text(ff, text, &v, err);
	else
		v = cJSON_CreateString(text);
	if (r < 0)
		return r;
	if (!v)
		return fs_error_set(err, -ENOMEM, "out of memory");
	*ret_value = v;
	return 0;
}
