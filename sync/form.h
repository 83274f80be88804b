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
 * "fieldsync-form/2" is /1 with words for people and with logic.  A /1
 * definition with any of the following is refused, so an older reader
 * never half understands a /2 form.
 *
 * Words for people, per language (a tag such as "sr-Latn", "sr-Cyrl",
 * "en"; at most 16 languages, each text 1 to 1000 bytes of UTF-8 without
 * control characters); they change nothing that is validated:
 *   "title": {lang: text} on the form, and on any field
 *   "label": {lang: text}, "hint": {lang: text}, and on choice and
 *   multi_choice fields "choice_labels": {value: {lang: text}}.
 *
 * Logic, written in the expression language of sync/expr.h (XLSForm's
 * habits), evaluated here and nowhere else:
 *   relevant     the field is asked only when this holds.  A field not
 *                asked has no value: form_settle clears it, and
 *                form_validate refuses a record that gives one.
 *   required     true, false, or an expression: required when it holds
 *                (and the field is asked).
 *   constraint   must hold for a given value, '.' being that value;
 *   constraint_message {lang: text}: what the worker is told when not.
 *   calculate    the value, computed by form_settle (text, integer,
 *                boolean and date fields).  The result is turned into
 *                the field's type: integer rounds to the nearest whole
 *                number, boolean takes the truth of it, text takes text
 *                or a number's shortest form, date takes a valid
 *                'YYYY-MM-DD'; anything else, and null, leaves it absent.
 *   default      a value of the field's type, given to a new record that
 *                lacks the field (form_apply_defaults).  Top-level
 *                fields only; a row starts empty.
 *   choice_filter  on choice and multi_choice: a value is offered, and
 *                allowed, only when this holds, '.' being the value and
 *                choice('key') its entry in
 *   choice_data  {value: {key: text}}: e.g. each settlement's
 *                municipality, for ${municipality} = choice('municipality').
 *
 * Reach and order.  ${name} names a field of the form; inside a repeat
 * group, also one of the same row (a row's names are distinct from the
 * form's).  relevant, calculate and choice_filter may name only fields
 * defined before theirs (in a row: earlier fields of the row, or the
 * form's fields before the group), so one pass in definition order
 * settles a record exactly; constraint and required may name any.
 *
 * Repeat groups: type "repeat" with "fields" (a row's fields, any type
 * but ref and repeat) and "min_rows" (default 0), "max_rows" (default
 * FORM_DEFAULT_MAX_ROWS, at most FORM_MAX_ROWS).  Its JSON value is an
 * array of row objects.  A group is one value for merging: two devices
 * that change the same group's rows conflict as any field does.
 *   count-selected(${members}) counts a group's rows.
 *
 * Attachments (/2 only): type "attachment" with "max_bytes" (default
 * FORM_DEFAULT_MAX_BYTES, at most FORM_MAX_MAX_BYTES) and "accept", the
 * content types taken, decided by the file's first bytes (sync/sniff.h:
 * image/jpeg, image/png, application/pdf; default all).  Its JSON value
 * is the file's reference, {"sha256": 64 lower-case hex digits, "size":
 * bytes, "type": the content type}; the bytes travel apart.  No default,
 * calculate or constraint; not in a repeat group.  Too large reads
 * "photo is 14.0 MB, the form allows 10.0 MB".  For a JPEG, the device
 * first strips its metadata (EXIF with the camera's GPS position, XMP,
 * IPTC, comments) unless "keep_location" is true, and with "max_side"
 * (FORM_MIN_SIDE to FORM_MAX_SIDE pixels) scales it down so its longest
 * side is at most that, at "quality" (1 to 100, default
 * FORM_DEFAULT_QUALITY): agent/photo.h.  The size is checked after.
 *
 * What HQ checks.  A change is checked against its field's own rules
 * (form_validate_value): type, bounds, values, "required": true of a
 * field without "relevant", and a constraint that reads nothing but '.'
 * (such as string-length(.) >= 2), in rows too.  Rules that read other
 * fields or today() cannot be checked per change, since merges combine
 * fields from different devices and days; they are checked on the
 * device, where the record is written, so a record valid on the device
 * is never quarantined at HQ.
 *
 * Field attributes:
 *   name        [a-z][a-z0-9_]{0,63}; "id" and names starting with "_"
 *               are reserved
 *   type        text | integer | boolean | date | choice | multi_choice
 *               | gps | ref | repeat (/2)
 *   required    bool, default false (in /2 also an expression)
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
#include "sync/formtype.h"

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
/* An attachment's photo rules: longest side (0: none), JPEG quality,
 * whether the location stays. */
void form_field_image(const struct form *f, size_t i, unsigned *max_side, unsigned *quality,
		      int *keep_location);
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

/* The local date now, 'YYYY-MM-DD', for today(). */
void form_today(char buf[FORM_DATE_SIZE]);

/* Check a whole record: fields must be an object; every member a known
 * field with a valid value; every required field present and not null;
 * the logic above (relevant, required, constraint, choice_filter) holds,
 * in rows too.  Reports the first failure in definition order, unknown
 * fields first.  today: 'YYYY-MM-DD', or NULL for form_today's. */
int form_validate(const struct form *f, const cJSON *fields, const char *today,
		  struct fs_error *err) FS_WUR;

/* Give a new record's absent fields their "default". */
int form_apply_defaults(const struct form *f, cJSON *fields, struct fs_error *err) FS_WUR;

/* Settle a record before it is checked and written: in definition
 * order, clear what is not asked (relevant) and compute what is
 * calculated, in rows too.  A member the form does not know, or one
 * given twice, is -FS_EVALID, as form_validate says it. */
int form_settle(const struct form *f, cJSON *fields, const char *today,
		struct fs_error *err) FS_WUR;

/* What the field app shows while a worker types: for the record as it
 * stands (settle it first), an object
 *   { "valid": bool,
 *     "fields": { name: { "relevant": bool, "required": bool,
 *                         "error": { "rule": R, "detail": text,
 *                                    "message": {lang: text} }, (if any)
 *                         "choices": [values offered], (choice fields
 *                                                       with a filter)
 *                         "rows": [ { name: {...} }, ... ] (repeats) } } }
 * R is "relevant" (answered but not asked), "required",
 * "type" (the field's own rules), "choice" (filtered out), "rows" or
 * "constraint"; detail is form_validate's message, which names the field
 * and rule but never a value; message the form's constraint_message.
 * A member of the record the form does not know, or one given twice, is
 * -FS_EVALID (the page never sends one); a malformed row is reported as
 * its group's "type" error.  *ret is the caller's (cJSON_Delete). */
int form_report(const struct form *f, const cJSON *fields, const char *today, cJSON **ret,
		struct fs_error *err) FS_WUR;

#endif
