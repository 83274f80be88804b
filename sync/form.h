/* form.h - form definitions and validation of record fields.
 *
 * A form definition (conf/forms/<collection>.json) says which fields a
 * collection has, their types, which are required and their allowed
 * values, so a programme can add a field without a rebuild.  Format:
 *
 *   { "format": "fieldsync-form/1",
 *     "collection": "beneficiaries",
 *     "scope": "municipality",
 *     "fields": [ { "name": "full_name", "type": "text",
 *                   "required": true, "max_length": 200 }, ... ] }
 *
 * "scope" (optional) names the field that says whose caseload a record
 * is in: a required text or choice field, whose value is matched against
 * a device's scope (hq/scope.h); or a required ref field, when a record
 * is in the scope of the record it names (a visit, its beneficiary's).
 * A collection without one is in every device's scope.
 *
 * "fieldsync-form/2" is /1 with words for people, per language (a tag
 * such as "sr-Latn", "sr-Cyrl", "en"; at most 16 languages, each text 1
 * to 1000 bytes of UTF-8 without control characters):
 *   "title": {lang: text} on the form, and on any field
 *   "label": {lang: text}, "hint": {lang: text}, and on choice and
 *   multi_choice fields "choice_labels": {value: {lang: text}}.
 * They change nothing that is validated: the field app shows them.  A /1
 * definition with any of them is refused, so an older reader never half
 * understands a /2 form.  (Expressions for skip logic and constraints,
 * sync/expr.h, are next.)
 *
 * Field attributes:
 *   name        [a-z][a-z0-9_]{0,63}; "id" and names starting with "_"
 *               are reserved
 *   type        text | integer | boolean | date | choice | multi_choice
 *               | gps | ref
 *   required    bool, default false
 *   max_length  text: maximum length in bytes (default 10000)
 *   format      text: "phone" allows only digits, spaces and + - ( )
 *   min, max    integer bounds (inclusive)
 *   values      choice, multi_choice: the allowed strings
 *   must_be     boolean: the only accepted value (consent must be true)
 *   collection  ref: the collection the id must name
 *
 * JSON value per type: text, date ("YYYY-MM-DD", a real calendar date),
 * choice and gps ("lat,lon", decimal degrees in range) are strings;
 * integer is a JSON number with no fraction; boolean is true/false;
 * multi_choice is an array of distinct allowed strings; ref is a
 * UUID string.  JSON null means "absent" and is allowed only for fields
 * that are not required.  Text must be valid UTF-8 without NUL.
 *
 * Error behaviour: a value or record that breaks its form is -FS_EVALID;
 * a broken or oversized definition is -FS_EFORMAT; form_load_file also
 * returns -errno when the file cannot be read, any function -ENOMEM, and
 * NULL arguments -FS_EUSAGE.  err gets a message that names the field and
 * the rule, never the value, since values are personal data.  A member
 * given twice in one object is refused: cJSON would check one copy and
 * store both.  Integers beyond +-2^53 are refused from text, since a
 * JSON number would round them.
 * Thread safety: a loaded form is immutable and may be shared.
 */
#ifndef FS_FORM_H
#define FS_FORM_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto/fserr.h"

#define FORM_MAX_FIELDS 128
#define FORM_MAX_NAME 64
#define FORM_DEFAULT_MAX_LENGTH 10000
#define FORM_MAX_DEFINITION_BYTES (256 * 1024)

enum form_type {
	FORM_TEXT,
	FORM_INTEGER,
	FORM_BOOLEAN,
	FORM_DATE,
	FORM_CHOICE,
	FORM_MULTI_CHOICE,
	FORM_GPS,
	FORM_REF,
};

struct form;

/* Parse a definition; origin (a path) is used in error messages. */
int form_load_json(const char *json, size_t len, const char *origin, struct form **ret_form,
		   struct fs_error *err) FS_WUR;
int form_load_file(const char *path, struct form **ret_form, struct fs_error *err) FS_WUR;

/* NULL-safe; returns NULL. */
struct form *form_free(struct form *f);

const char *form_collection(const struct form *f);
/* The definition as canonical JSON (cJSON, without spaces): what HQ
 * publishes, and compares to tell a changed definition. */
const char *form_definition(const struct form *f);
/* The version HQ published this definition as (from 1), or 0 for a form
 * HQ did not publish: the device's own, before it has HQ's.  Set once,
 * before the form is shared; changes made under it carry it
 * (PROTOCOL.md, change set version 3). */
uint32_t form_version(const struct form *f);
void form_set_version(struct form *f, uint32_t version);
size_t form_field_count(const struct form *f);
/* i < form_field_count(f), in definition order. */
const char *form_field_name(const struct form *f, size_t i);
enum form_type form_field_type(const struct form *f, size_t i);
/* Index of a field by name, or -FS_ENOTFOUND. */
int form_field_index(const struct form *f, const char *name);
/* For a ref field, the target collection; NULL for other types. */
const char *form_field_ref(const struct form *f, size_t i);
/* Index of the scope field, or -FS_ENOTFOUND when the form has none. */
int form_scope_field(const struct form *f);

/* Convert text typed on a command line or read from CSV into the field's
 * JSON value:
 *   integer       decimal, optional sign
 *   boolean       true/false, yes/no, 1/0 (any case)
 *   multi_choice  items separated by ',' or ';', spaces trimmed
 *   others        the text itself (date, gps, ref checked by validation)
 * An empty text yields JSON null (the field is cleared).  Unknown field
 * or unconvertible text is -FS_EVALID.  *ret_value written on success
 * only; the caller owns it (cJSON_Delete). */
int form_value_from_text(const struct form *f, const char *field, const char *text,
			 cJSON **ret_value, struct fs_error *err) FS_WUR;

/* Check one value against its field (null passes unless required). */
int form_validate_value(const struct form *f, const char *field, const cJSON *value,
			struct fs_error *err) FS_WUR;

/* Check a whole record: fields must be an object; every member a known
 * field with a valid value; every required field present and not null.
 * Reports the first failure in definition order, unknown fields first. */
int form_validate(const struct form *f, const cJSON *fields, struct fs_error *err) FS_WUR;

#endif
