/* test_form.c - form definitions and field validation (sync/form.c).
 *
 * Every failing check asserts the field name is in the message and the
 * offending value is not: values are personal data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sync/form.h"
#include "tests/fixture.h"
#include "tests/test.h"

/* ---- helpers ---------------------------------------------------------- */

static cJSON *parse(const char *json)
{
	cJSON *o = cJSON_Parse(json);

	if (!o)
		TEST_FAIL("test JSON does not parse: %s", json);
	return o;
}

static void expect_valid(const struct form *f, const char *json)
{
	struct fs_error err = { 0 };
	cJSON *o = parse(json);
	int r = form_validate(f, o, NULL, &err);

	if (r != 0)
		TEST_FAIL("expected valid, got %d (%s) for %s", r, err.msg, json);
	cJSON_Delete(o);
}

/* The record must fail, naming field and rule, never showing secret. */
static void expect_invalid_obj(const struct form *f, const cJSON *o, const char *field,
			       const char *rule, const char *secret)
{
	struct fs_error err = { 0 };

	ASSERT_EQ(form_validate(f, o, NULL, &err), -FS_EVALID);
	ASSERT_EQ(err.code, -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, field);
	if (rule)
		ASSERT_STR_CONTAINS(err.msg, rule);
	if (secret && strstr(err.msg, secret))
		TEST_FAIL("message shows the value \"%s\": %s", secret, err.msg);
}

static void expect_invalid(const struct form *f, const char *json, const char *field,
			   const char *rule, const char *secret)
{
	cJSON *o = parse(json);

	expect_invalid_obj(f, o, field, rule, secret);
	cJSON_Delete(o);
}

/* A valid beneficiary with member name set to the JSON text value. */
static cJSON *person_with(const char *name, const char *value)
{
	cJSON *o = parse("{\"full_name\":\"Jovana Petrović\",\"municipality\":\"Šabac\","
			 "\"status\":\"refugee\",\"household_size\":3,\"consent\":true}");
	cJSON *v;

	if (!name)
		return o;
	v = parse(value);
	cJSON_DeleteItemFromObjectCaseSensitive(o, name);
	ASSERT_TRUE(cJSON_AddItemToObject(o, name, v));
	return o;
}

static void person_invalid(const struct form *f, const char *name, const char *value,
			   const char *rule, const char *secret)
{
	cJSON *o = person_with(name, value);

	expect_invalid_obj(f, o, name, rule, secret);
	cJSON_Delete(o);
}

static void person_valid(const struct form *f, const char *name, const char *value)
{
	struct fs_error err = { 0 };
	cJSON *o = person_with(name, value);
	int r = form_validate(f, o, NULL, &err);

	if (r != 0)
		TEST_FAIL("%s = %s: expected valid, got %d (%s)", name, value, r, err.msg);
	cJSON_Delete(o);
}

/* A valid visit with member name set to the JSON text value. */
static cJSON *visit_with(const char *name, const char *value)
{
	cJSON *o = parse("{\"beneficiary_id\":\"0193a1b2-c3d4-7abc-8def-0123456789ab\","
			 "\"visit_date\":\"2026-03-14\",\"visit_type\":\"legal_assistance\"}");

	cJSON_DeleteItemFromObjectCaseSensitive(o, name);
	ASSERT_TRUE(cJSON_AddItemToObject(o, name, parse(value)));
	return o;
}

static void visit_invalid(const struct form *f, const char *name, const char *value,
			  const char *rule, const char *secret)
{
	cJSON *o = visit_with(name, value);

	expect_invalid_obj(f, o, name, rule, secret);
	cJSON_Delete(o);
}

static void visit_valid(const struct form *f, const char *name, const char *value)
{
	struct fs_error err = { 0 };
	cJSON *o = visit_with(name, value);
	int r = form_validate(f, o, NULL, &err);

	if (r != 0)
		TEST_FAIL("%s = %s: expected valid, got %d (%s)", name, value, r, err.msg);
	cJSON_Delete(o);
}

/* A text field set to raw bytes (cJSON keeps them unchecked). */
static void text_bytes_invalid(const struct form *f, const char *bytes)
{
	cJSON *o = person_with(NULL, NULL);

	cJSON_DeleteItemFromObjectCaseSensitive(o, "full_name");
	ASSERT_TRUE(cJSON_AddItemToObject(o, "full_name", cJSON_CreateString(bytes)));
	expect_invalid_obj(f, o, "full_name", "UTF-8", bytes);
	cJSON_Delete(o);
}

static void definition_broken(const char *json, const char *what)
{
	struct fs_error err = { 0 };
	struct form *f = NULL;
	int r = form_load_json(json, strlen(json), "conf/forms/test.json", &f, &err);

	if (r != -FS_EFORMAT)
		TEST_FAIL("expected -FS_EFORMAT, got %d (%s) for %s", r, err.msg, json);
	ASSERT_TRUE(f == NULL);
	ASSERT_STR_CONTAINS(err.msg, "conf/forms/test.json");
	ASSERT_STR_CONTAINS(err.msg, what);
}

/* A definition of one field, given as the JSON object text. */
static void field_broken(const char *field_json, const char *what)
{
	char json[1024];

	snprintf(json, sizeof(json),
		 "{\"format\":\"fieldsync-form/1\",\"collection\":\"t\",\"fields\":["
		 "{\"name\":\"ok\",\"type\":\"date\"},%s]}",
		 field_json);
	definition_broken(json, what);
}

static cJSON *from_text(const struct form *f, const char *field, const char *text)
{
	struct fs_error err = { 0 };
	cJSON *v = NULL;

	if (form_value_from_text(f, field, text, &v, &err) != 0)
		TEST_FAIL("form_value_from_text %s: %s", field, err.msg);
	ASSERT_TRUE(v != NULL);
	return v;
}

static void from_text_fails(const struct form *f, const char *field, const char *text)
{
	struct fs_error err = { 0 };
	cJSON *v = (cJSON *)&err; /* must stay untouched */

	ASSERT_EQ(form_value_from_text(f, field, text, &v, &err), -FS_EVALID);
	ASSERT_TRUE(v == (cJSON *)&err);
	ASSERT_STR_CONTAINS(err.msg, field);
	if (strstr(err.msg, text))
		TEST_FAIL("message shows the text \"%s\": %s", text, err.msg);
}

/* ---- loading ---------------------------------------------------------- */

TEST(form_shipped_forms_load)
{
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits");
	int i;

	ASSERT_STR_EQ(form_collection(b), "beneficiaries");
	ASSERT_EQ(form_field_count(b), 8);
	ASSERT_STR_EQ(form_field_name(b, 0), "full_name");
	ASSERT_EQ(form_field_type(b, 0), FORM_TEXT);
	ASSERT_EQ(form_field_index(b, "consent"), 7);
	ASSERT_EQ(form_field_type(b, 7), FORM_BOOLEAN);
	ASSERT_EQ(form_field_type(b, (size_t)form_field_index(b, "household_members")),
		  FORM_REPEAT);
	ASSERT_EQ(form_field_type(b, (size_t)form_field_index(b, "vulnerabilities")),
		  FORM_MULTI_CHOICE);
	ASSERT_EQ(form_field_type(b, (size_t)form_field_index(b, "household_size")), FORM_INTEGER);
	ASSERT_EQ(form_field_index(b, "id"), -FS_ENOTFOUND);
	ASSERT_EQ(form_field_index(b, "Full_Name"), -FS_ENOTFOUND);
	ASSERT_TRUE(form_field_ref(b, 0) == NULL);
	ASSERT_EQ(form_scope_field(b), form_field_index(b, "municipality"));

	ASSERT_STR_EQ(form_collection(v), "visits");
	ASSERT_EQ(form_field_count(v), 10);
	i = form_field_index(v, "beneficiary_id");
	ASSERT_EQ(i, 0);
	ASSERT_EQ(form_field_type(v, 0), FORM_REF);
	ASSERT_STR_EQ(form_field_ref(v, 0), "beneficiaries");
	ASSERT_EQ(form_field_type(v, (size_t)form_field_index(v, "gps")), FORM_GPS);
	ASSERT_EQ(form_field_type(v, (size_t)form_field_index(v, "next_visit")), FORM_DATE);
	{
		/* The visit's photo: scaled to 2048 px, its location dropped. */
		unsigned side = 0, quality = 0;
		int keep = 1;

		i = form_field_index(v, "photo");
		ASSERT_EQ(form_field_type(v, (size_t)i), FORM_ATTACHMENT);
		form_field_image(v, (size_t)i, &side, &quality, &keep);
		ASSERT_EQ(side, 2048);
		ASSERT_EQ(quality, 85);
		ASSERT_EQ(keep, 0);
	}
	ASSERT_TRUE(form_field_ref(v, 1) == NULL);
	ASSERT_EQ(form_scope_field(v), 0);
	ASSERT_TRUE(form_free(b) == NULL);
	ASSERT_TRUE(form_free(v) == NULL);
	ASSERT_TRUE(form_free(NULL) == NULL);
}

TEST(form_load_file_errors)
{
	struct fs_error err = { 0 };
	struct form *f = NULL;
	char path[4096];
	char *big;
	int fd;

	snprintf(path, sizeof(path), "%s/missing.json", test_tmpdir());
	ASSERT_EQ(form_load_file(path, &f, &err), -ENOENT);
	ASSERT_STR_CONTAINS(err.msg, "missing.json");
	ASSERT_EQ(form_load_file(test_tmpdir(), &f, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "not a regular file");

	/* Just over the cap, padded with valid JSON whitespace. */
	snprintf(path, sizeof(path), "%s/big.json", test_tmpdir());
	big = malloc(FORM_MAX_DEFINITION_BYTES + 1);
	ASSERT_TRUE(big != NULL);
	memset(big, ' ', FORM_MAX_DEFINITION_BYTES + 1);
	memcpy(big, "{}", 2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, big, FORM_MAX_DEFINITION_BYTES + 1), FORM_MAX_DEFINITION_BYTES + 1);
	ASSERT_OK(close(fd));
	ASSERT_EQ(form_load_file(path, &f, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "big.json");
	ASSERT_STR_CONTAINS(err.msg, "larger than");
	ASSERT_EQ(form_load_json(big, FORM_MAX_DEFINITION_BYTES + 1, "mem", &f, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "larger than");
	ASSERT_TRUE(f == NULL);
	free(big);
}

TEST(form_broken_definitions)
{
	char json[64 + (FORM_MAX_FIELDS + 1) * 40];
	size_t n;

	field_broken("{\"name\":\"x\",\"type\":\"foo\"}", "field 2 'x': unknown type 'foo'");
	field_broken("{\"name\":\"ok\",\"type\":\"text\"}", "repeats field 1");
	field_broken("{\"name\":\"id\",\"type\":\"text\"}", "reserved");
	field_broken("{\"name\":\"_deleted\",\"type\":\"text\"}", "reserved");
	field_broken("{\"name\":\"Full Name\",\"type\":\"text\"}", "must match");
	field_broken("{\"name\":\"x\",\"type\":\"choice\"}", "'values' missing");
	field_broken("{\"name\":\"x\",\"type\":\"choice\",\"values\":[]}", "must not be empty");
	field_broken("{\"name\":\"x\",\"type\":\"multi_choice\",\"values\":[\"a\",\"a\"]}",
		     "repeats");
	field_broken("{\"name\":\"x\",\"type\":\"choice\",\"values\":[\"a\",3]}", "value 2");
	field_broken("{\"name\":\"x\",\"type\":\"multi_choice\",\"values\":[\"a,b\"]}", "';'");
	field_broken("{\"name\":\"x\",\"type\":\"text\",\"must_be\":true}",
		     "'must_be' not allowed for type text");
	field_broken("{\"name\":\"x\",\"type\":\"boolean\",\"must_be\":\"true\"}", "must_be");
	field_broken("{\"name\":\"x\",\"type\":\"integer\",\"min\":5,\"max\":4}", "'min'");
	field_broken("{\"name\":\"x\",\"type\":\"integer\",\"min\":1.5}", "'min'");
	field_broken("{\"name\":\"x\",\"type\":\"text\",\"max_length\":0}", "max_length");
	field_broken("{\"name\":\"x\",\"type\":\"text\",\"format\":\"email\"}", "format 'email'");
	field_broken("{\"name\":\"x\",\"type\":\"ref\"}", "'collection' missing");
	field_broken("{\"name\":\"x\",\"type\":\"ref\",\"collection\":\"../etc\"}", "collection");
	field_broken("{\"name\":\"x\",\"type\":\"text\",\"caption\":\"X\"}",
		     "unknown attribute 'caption'");
	field_broken("{\"name\":\"x\",\"type\":\"text\",\"required\":\"yes\"}", "'required'");
	field_broken("{\"name\":\"x\",\"type\":\"text\",\"type\":\"text\"}", "given twice");
	field_broken("{\"name\":7,\"type\":\"text\"}", "'name' must be a string");
	field_broken("{\"type\":\"text\"}", "'name' missing");
	field_broken("[\"x\",\"text\"]", "field 2: must be an object");
	field_broken("{\"name\":\"x\",\"type\":\"t\\u0001\"}", "unprintable");

	definition_broken("{\"collection\":\"t\",\"fields\":[]}", "'format' missing");
	definition_broken("{\"format\":\"fieldsync-form/3\",\"collection\":\"t\","
			  "\"fields\":[{\"name\":\"a\",\"type\":\"text\"}]}",
			  "unsupported format");
	definition_broken("{\"format\":1,\"collection\":\"t\","
			  "\"fields\":[{\"name\":\"a\",\"type\":\"text\"}]}",
			  "unsupported format");
	definition_broken("{\"format\":\"fieldsync-form/1\",\"collection\":\"t\",\"fields\":{}}",
			  "'fields' must be an array");
	definition_broken("{\"format\":\"fieldsync-form/1\",\"fields\":[]}", "'collection'");
	definition_broken("{\"format\":\"fieldsync-form/1\",\"collection\":\"t\","
			  "\"fields\":[{\"name\":\"a\",\"type\":\"text\"}],\"extra\":1}",
			  "unknown member 'extra'");
	definition_broken("{\"format\":\"fieldsync-form/1\",\"collection\":\"t\","
			  "\"fields\":[{\"name\":\"a\",\"type\":\"text\"}]} x",
			  "not valid JSON");
	definition_broken("[1,2]", "not a JSON object");
	definition_broken("{\"format\":\"fieldsync-form/1\",\"collection\":\"t\",\"scope\":\"b\","
			  "\"fields\":[{\"name\":\"a\",\"type\":\"text\",\"required\":true}]}",
			  "'scope' names no field of the form ('b')");
	definition_broken("{\"format\":\"fieldsync-form/1\",\"collection\":\"t\",\"scope\":1,"
			  "\"fields\":[{\"name\":\"a\",\"type\":\"text\",\"required\":true}]}",
			  "'scope' must be a field name");
	definition_broken("{\"format\":\"fieldsync-form/1\",\"collection\":\"t\",\"scope\":\"a\","
			  "\"fields\":[{\"name\":\"a\",\"type\":\"integer\",\"required\":true}]}",
			  "'scope' field 'a' must be of type text, choice or ref");
	/* A record without a scope value would be in no one's caseload. */
	definition_broken("{\"format\":\"fieldsync-form/1\",\"collection\":\"t\",\"scope\":\"a\","
			  "\"fields\":[{\"name\":\"a\",\"type\":\"text\"}]}",
			  "'scope' field 'a' must be required");
	definition_broken("{\"format\":\"fieldsync-form/1\",\"collection\":\"t\",\"scope\":\"a\","
			  "\"scope\":\"a\",\"fields\":[{\"name\":\"a\",\"type\":\"text\","
			  "\"required\":true}]}",
			  "member 'scope' given twice");

	n = (size_t)snprintf(json, sizeof(json),
			     "{\"format\":\"fieldsync-form/1\",\"collection\":\"t\",\"fields\":[");
	for (int i = 0; i <= FORM_MAX_FIELDS; i++)
		n += (size_t)snprintf(json + n, sizeof(json) - n,
				      "%s{\"name\":\"f%d\",\"type\":\"gps\"}", i ? "," : "", i);
	snprintf(json + n, sizeof(json) - n, "]}");
	definition_broken(json, "more than 128 fields");
}

/* A fieldsync-form/2 definition of one field (JSON object text). */
static void field2_broken(const char *field_json, const char *what)
{
	char json[2048];

	snprintf(json, sizeof(json),
		 "{\"format\":\"fieldsync-form/2\",\"collection\":\"t\",\"fields\":["
		 "{\"name\":\"ok\",\"type\":\"date\"},%s]}",
		 field_json);
	definition_broken(json, what);
}

/* fieldsync-form/2: labels, hints and choice labels per language; /1
 * stays valid and refuses them. */
TEST(form_v2_labels_per_language)
{
	static const char good[] =
		"{\"format\":\"fieldsync-form/2\",\"collection\":\"t\","
		"\"title\":{\"sr-Latn\":\"Domaćinstva\",\"sr-Cyrl\":\"Домаћинства\",\"en\":"
		"\"Households\"},"
		"\"fields\":[{\"name\":\"status\",\"type\":\"choice\",\"values\":[\"refugee\","
		"\"idp\"],"
		"\"label\":{\"sr-Latn\":\"Status\",\"en\":\"Status\"},"
		"\"hint\":{\"en\":\"As the household says it\"},"
		"\"choice_labels\":{\"refugee\":{\"sr-Cyrl\":\"Избеглица\",\"en\":\"Refugee\"}}}]}";
	struct fs_error err = { 0 };
	struct form *f = NULL;

	ASSERT_OK(form_load_json(good, strlen(good), "t.json", &f, &err));
	/* The labels travel in the definition, for the page to show. */
	ASSERT_STR_CONTAINS(form_definition(f), "\"choice_labels\"");
	ASSERT_STR_CONTAINS(form_definition(f), "Избеглица");
	form_free(f);
	/* /1 has no labels. */
	field_broken("{\"name\":\"x\",\"type\":\"text\",\"label\":{\"en\":\"X\"}}",
		     "attribute 'label' needs format \"fieldsync-form/2\"");
	definition_broken(
		"{\"format\":\"fieldsync-form/1\",\"collection\":\"t\","
		"\"title\":{\"en\":\"T\"},\"fields\":[{\"name\":\"a\",\"type\":\"text\"}]}",
		"'title' needs format");
	/* Shapes and language tags. */
	field2_broken("{\"name\":\"x\",\"type\":\"text\",\"label\":\"X\"}",
		      "'label' must be an object of languages");
	field2_broken("{\"name\":\"x\",\"type\":\"text\",\"label\":{}}", "names no language");
	field2_broken("{\"name\":\"x\",\"type\":\"text\",\"label\":{\"Serbian\":\"X\"}}",
		      "is not a language tag");
	field2_broken("{\"name\":\"x\",\"type\":\"text\",\"label\":{\"sr-latn\":\"X\"}}",
		      "is not a language tag");
	field2_broken("{\"name\":\"x\",\"type\":\"text\",\"hint\":{\"en\":\"\"}}",
		      "'hint' in en must be UTF-8 text");
	field2_broken("{\"name\":\"x\",\"type\":\"text\",\"hint\":{\"en\":\"a\\nb\"}}",
		      "control character");
	field2_broken("{\"name\":\"x\",\"type\":\"text\",\"label\":{\"en\":\"A\",\"en\":\"B\"}}",
		      "language en given twice");
	field2_broken("{\"name\":\"x\",\"type\":\"text\",\"choice_labels\":{}}",
		      "'choice_labels' not allowed for type text");
	field2_broken("{\"name\":\"x\",\"type\":\"choice\",\"values\":[\"a\"],"
		      "\"choice_labels\":{\"b\":{\"en\":\"B\"}}}",
		      "which is not one of the values");
	field2_broken("{\"name\":\"x\",\"type\":\"choice\",\"values\":[\"a\"],"
		      "\"choice_labels\":{\"a\":\"A\"}}",
		      "'choice_labels' must be an object of languages");
}

TEST(form_definition_edge_cases)
{
	static const char good[] =
		"{\"format\":\"fieldsync-form/1\",\"collection\":\"t\","
		"\"fields\":[{\"name\":\"n\",\"type\":\"integer\",\"min\":-5,"
		"\"max\":-5},{\"name\":\"b\",\"type\":\"boolean\",\"must_be\":false}]}";
	struct fs_error err = { 0 };
	struct form *f = NULL;
	cJSON *v;

	/* len excludes anything after the definition; a NUL inside is an error. */
	ASSERT_EQ(form_load_json("{\"a\":1}\0junk", 12, "mem", &f, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "NUL");
	ASSERT_OK(form_load_json(good, sizeof(good) - 1, NULL, &f, &err));
	ASSERT_EQ(form_field_count(f), 2);
	/* No "scope": the collection is in every device's scope. */
	ASSERT_EQ(form_scope_field(f), -FS_ENOTFOUND);
	v = cJSON_CreateNumber(-5);
	ASSERT_OK(form_validate_value(f, "n", v, &err));
	cJSON_SetNumberValue(v, -4);
	ASSERT_EQ(form_validate_value(f, "n", v, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "at most -5");
	cJSON_Delete(v);
	v = cJSON_CreateTrue();
	ASSERT_EQ(form_validate_value(f, "b", v, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "must be false");
	ASSERT_EQ(form_validate_value(f, "nope", v, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "unknown field 'nope'");
	ASSERT_OK(form_validate_value(f, "b", NULL, &err));
	cJSON_Delete(v);
	form_free(f);
}

/* ---- whole records ---------------------------------------------------- */

TEST(form_valid_records_pass)
{
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits");

	expect_valid(b, "{\"full_name\":\"Ružičić Đorđe\",\"municipality\":\"Čačak\","
			"\"consent\":true}");
	expect_valid(b, "{\"full_name\":\"Ружичић Ђорђе\",\"municipality\":\"Чачак\","
			"\"status\":\"asylum_seeker\",\"household_size\":50,"
			"\"vulnerabilities\":[\"elderly\",\"no_documents\"],"
			"\"phone\":\"+381 (11) 123-4567\",\"consent\":true}");
	expect_valid(b, "{\"full_name\":\"Amira 😀 Hadžić\",\"municipality\":\"Tutin\","
			"\"status\":null,\"household_size\":null,\"vulnerabilities\":[],"
			"\"phone\":null,\"consent\":true}");
	expect_valid(v, "{\"beneficiary_id\":\"0193A1B2-C3D4-7ABC-8DEF-0123456789AB\","
			"\"visit_date\":\"2024-02-29\",\"visit_type\":\"prefab_installation\","
			"\"notes\":\"Кров завршен.\",\"gps\":\"44.8125,20.4612\","
			"\"next_visit\":\"2026-12-31\"}");
	expect_valid(v, "{\"beneficiary_id\":\"0193a1b2-c3d4-7abc-8def-0123456789ab\","
			"\"visit_date\":\"1900-01-01\",\"visit_type\":\"needs_assessment\"}");
	form_free(b);
	form_free(v);
}

TEST(form_required_and_consent)
{
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits");

	expect_invalid(b, "{\"municipality\":\"Zemunxq\",\"consent\":true}", "field 'full_name'",
		       "required", "Zemunxq");
	person_invalid(b, "full_name", "null", "required", NULL);
	person_invalid(b, "municipality", "null", "required", NULL);
	person_invalid(b, "consent", "false", "must be true", NULL);
	person_invalid(b, "consent", "null", "required", NULL);
	person_invalid(b, "consent", "\"true\"", "true or false", NULL);
	person_invalid(b, "consent", "1", "true or false", NULL);
	expect_invalid(b, "{\"full_name\":\"Ivanaqz\",\"municipality\":\"Niš\"}", "field 'consent'",
		       "required", "Ivanaqz");
	expect_invalid(v, "{\"visit_date\":\"2026-01-02\",\"visit_type\":\"legal_assistance\"}",
		       "beneficiary_id", "required", NULL);
	visit_invalid(v, "visit_type", "null", "required", NULL);
	form_free(b);
	form_free(v);
}

TEST(form_unknown_and_repeated_fields)
{
	struct form *b = fixture_form("beneficiaries");
	char json[512], longname[101];
	struct fs_error err = { 0 };
	cJSON *o;

	/* Unknown fields are reported before the missing required ones. */
	expect_invalid(b, "{\"shoe_size\":\"Kostićqz\"}", "unknown field 'shoe_size'", NULL,
		       "Kostićqz");
	expect_invalid(b,
		       "{\"id\":\"x\",\"full_name\":\"A\",\"municipality\":\"B\",\"consent\":true}",
		       "unknown field 'id'", NULL, NULL);
	/* A key that is not a plain name may be a person's name: not shown. */
	expect_invalid(b, "{\"\\u0001evil\\u001b[2J\":1}", "unknown field (not shown)", NULL,
		       "evil");
	expect_invalid(b, "{\"ime_\\u017e\":1}", "(not shown)", NULL, "ime_");
	expect_invalid(b, "{\"Marko Markovi\\u0107\":1}", "(not shown)", NULL, "Marko");

	memset(longname, 'k', 100);
	longname[100] = '\0';
	snprintf(json, sizeof(json), "{\"%s\":1}", longname);
	o = parse(json);
	ASSERT_EQ(form_validate(b, o, NULL, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "unknown field (not shown)"); /* over 64 bytes */
	cJSON_Delete(o);

	expect_invalid(b,
		       "{\"full_name\":\"A\",\"municipality\":\"B\",\"consent\":true,"
		       "\"consent\":false}",
		       "field 'consent'", "more than once", NULL);

	o = parse("[1]");
	ASSERT_EQ(form_validate(b, o, NULL, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "JSON object");
	ASSERT_EQ(form_validate(b, NULL, NULL, &err), -FS_EVALID);
	cJSON_Delete(o);
	form_free(b);
}

/* ---- field rules ------------------------------------------------------ */

TEST(form_integer_rules)
{
	struct form *b = fixture_form("beneficiaries");

	person_valid(b, "household_size", "1");
	person_valid(b, "household_size", "50");
	person_valid(b, "household_size", "7.0");
	person_invalid(b, "household_size", "0", "at least 1", NULL);
	person_invalid(b, "household_size", "-777", "at least 1", "777");
	person_invalid(b, "household_size", "777", "at most 50", "777");
	person_invalid(b, "household_size", "2.5", "whole number", "2.5");
	person_invalid(b, "household_size", "4.0001", "whole number", "4.0001");
	person_invalid(b, "household_size", "1e300", "whole number", "1e");
	person_invalid(b, "household_size", "9223372036854775808", "whole number", NULL);
	person_invalid(b, "household_size", "\"4\"", "whole number", NULL);
	person_invalid(b, "household_size", "true", "whole number", NULL);
	form_free(b);
}

TEST(form_date_rules)
{
	struct form *v = fixture_form("visits");

	visit_valid(v, "visit_date", "\"2024-02-29\"");
	visit_valid(v, "visit_date", "\"2000-02-29\"");
	visit_valid(v, "next_visit", "\"2200-12-31\"");
	/* A calendar date, but a visit cannot be in the future (form logic). */
	visit_invalid(v, "visit_date", "\"2200-12-31\"", "constraint not met", "2200");
	visit_valid(v, "next_visit", "null");
	visit_invalid(v, "visit_date", "\"2026-02-29\"", "calendar date", "2026-02-29");
	visit_invalid(v, "visit_date", "\"1900-02-29\"", "calendar date", "1900");
	visit_invalid(v, "visit_date", "\"2026-13-01\"", "calendar date", "2026-13");
	visit_invalid(v, "visit_date", "\"2026-04-31\"", "calendar date", "04-31");
	visit_invalid(v, "visit_date", "\"2026-00-10\"", "calendar date", NULL);
	visit_invalid(v, "visit_date", "\"2026-01-00\"", "calendar date", NULL);
	visit_invalid(v, "visit_date", "\"1899-12-31\"", "1900..2200", "1899");
	visit_invalid(v, "visit_date", "\"2201-01-01\"", "1900..2200", "2201");
	visit_invalid(v, "next_visit", "\"2026-1-05\"", "YYYY-MM-DD", "2026-1-05");
	visit_invalid(v, "next_visit", "\"2026-01-05T10:00\"", "YYYY-MM-DD", "T10");
	visit_invalid(v, "next_visit", "\"2026/01/05\"", "YYYY-MM-DD", "2026/");
	visit_invalid(v, "next_visit", "\"+026-01-05\"", "YYYY-MM-DD", NULL);
	visit_invalid(v, "next_visit", "20260105", "must be a string", NULL);
	form_free(v);
}

TEST(form_text_utf8_and_length)
{
	struct form *b = fixture_form("beneficiaries");
	char name[202], muni[128];
	cJSON *o;

	text_bytes_invalid(b, "Mil\xc0\xafica");	 /* overlong '/' */
	text_bytes_invalid(b, "Mil\xe0\x80\xafica");	 /* overlong, 3 bytes */
	text_bytes_invalid(b, "Mil\xed\xa0\x80ica");	 /* surrogate U+D800 */
	text_bytes_invalid(b, "Mil\xf4\x90\x80\x80ica"); /* above U+10FFFF */
	text_bytes_invalid(b, "Mil\xf5\x80\x80\x80ica"); /* F5 lead */
	text_bytes_invalid(b, "Mil\x80ica");		 /* lone continuation */
	text_bytes_invalid(b, "Milica\xe2\x82");	 /* truncated */
	text_bytes_invalid(b, "Mil\xc5ica");		 /* missing continuation */
	text_bytes_invalid(b, "Mil\xffica");

	/* 200 bytes pass, 201 fail; Cyrillic letters are 2 bytes each. */
	memset(name, 'q', 201);
	memcpy(name, "\xd0\x96", 2);
	name[200] = '\0';
	o = person_with(NULL, NULL);
	ASSERT_TRUE(
		cJSON_ReplaceItemInObjectCaseSensitive(o, "full_name", cJSON_CreateString(name)));
	ASSERT_OK(form_validate(b, o, NULL, NULL));
	cJSON_Delete(o);
	name[200] = 'q';
	name[201] = '\0';
	o = person_with(NULL, NULL);
	ASSERT_TRUE(
		cJSON_ReplaceItemInObjectCaseSensitive(o, "full_name", cJSON_CreateString(name)));
	expect_invalid_obj(b, o, "full_name", "longer than 200 bytes", "qqqqqqqq");
	cJSON_Delete(o);

	memset(muni, 'z', 101);
	muni[101] = '\0';
	o = person_with(NULL, NULL);
	ASSERT_TRUE(cJSON_ReplaceItemInObjectCaseSensitive(o, "municipality",
							   cJSON_CreateString(muni)));
	expect_invalid_obj(b, o, "municipality", "longer than 100", "zzzz");
	cJSON_Delete(o);

	person_invalid(b, "full_name", "42", "must be a string", NULL);
	person_invalid(b, "full_name", "[\"a\"]", "must be a string", NULL);
	form_free(b);
}

TEST(form_phone_format)
{
	struct form *b = fixture_form("beneficiaries");

	person_valid(b, "phone", "\"+381 (11) 123-4567\"");
	person_valid(b, "phone", "\"064 123\"");
	person_invalid(b, "phone", "\"12\"", "at least 3 digits", NULL);
	person_invalid(b, "phone", "\"+( )-\"", "at least 3 digits", NULL);
	person_invalid(b, "phone", "\"call 0641234567\"", "only digits", "0641234567");
	person_invalid(b, "phone", "\"0641234567#2\"", "only digits", "0641234567");
	person_invalid(b, "phone", "\"012345678901234567890123456789012\"", "longer than 32",
		       "0123456789");
	form_free(b);
}

TEST(form_choice_rules)
{
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits");

	person_valid(b, "status", "\"host_community\"");
	person_invalid(b, "status", "\"refugeeXQ\"", "allowed values", "refugeeXQ");
	person_invalid(b, "status", "\"Refugee\"", "allowed values", "Refugee");
	person_invalid(b, "status", "\"\"", "allowed values", NULL);
	person_invalid(b, "status", "3", "must be a string", NULL);
	person_invalid(b, "status", "[\"idp\"]", "must be a string", NULL);
	visit_valid(v, "visit_type", "\"sme_grant_followup\"");
	visit_invalid(v, "visit_type", "\"picnic_qz\"", "allowed values", "picnic_qz");
	form_free(b);
	form_free(v);
}

TEST(form_multi_choice_rules)
{
	struct form *b = fixture_form("beneficiaries");

	person_valid(b, "vulnerabilities", "[]");
	person_valid(b, "vulnerabilities",
		     "[\"disability\",\"chronic_illness\",\"elderly\","
		     "\"single_parent\",\"unaccompanied_minor\","
		     "\"pregnant_or_lactating\",\"survivor_of_violence\","
		     "\"no_documents\"]");
	person_invalid(b, "vulnerabilities", "[\"elderly\",\"disability\",\"elderly\"]",
		       "item 3 is repeated", "elderly");
	person_invalid(b, "vulnerabilities", "[\"elderly\",\"blue_eyes_qz\"]",
		       "item 2 is not an allowed value", "blue_eyes_qz");
	person_invalid(b, "vulnerabilities", "[\"elderly\",7]", "item 2 is not a string", NULL);
	person_invalid(b, "vulnerabilities", "\"elderly\"", "list", "elderly");
	person_invalid(b, "vulnerabilities", "{\"elderly\":true}", "list", "elderly");
	form_free(b);
}

TEST(form_gps_rules)
{
	static const char *const good[] = {
		"\"44.8125,20.4612\"",
		"\"44.8125, 20.4612\"",
		"\"-90,180\"",
		"\"90.000,-180.0\"",
		"\"0,0\"",
		"\"-0.5,-179.999999999999999\"",
	};
	static const char *const malformed[] = {
		"\"44.8125 20.4612\"",	"\"44.8125,  20.4612\"",
		"\" 44.8125,20.4612\"", "\"44.8125,20.4612 \"",
		"\"44.8125 ,20.4612\"", "\"0x2C,20\"",
		"\"inf,20\"",		"\"nan,0\"",
		"\"44.,20\"",		"\".5,20\"",
		"\"1e1,20\"",		"\"44.8,20.4,\"",
		"\"+44.8,20.4\"",	"\"44.8\"",
		"\"44,8;20,4\"",	"\"4444,20\"",
		"\"44.8,-\"",		"\"\"",
	};

	struct form *v = fixture_form("visits");

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		visit_valid(v, "gps", good[i]);
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		visit_invalid(v, "gps", malformed[i], "decimal degrees", i < 5 ? "20.4612" : NULL);
	visit_invalid(v, "gps", "\"91.5,20.4612\"", "latitude", "91.5");
	visit_invalid(v, "gps", "\"90.0001,20.4612\"", "latitude", "90.0001");
	visit_invalid(v, "gps", "\"-90.5,20.4612\"", "latitude", "20.4612");
	visit_invalid(v, "gps", "\"44.8125,180.5\"", "longitude", "44.8125");
	visit_invalid(v, "gps", "\"44.8125,-181\"", "longitude", "44.8125");
	visit_invalid(v, "gps", "[44.8,20.4]", "must be a string", NULL);
	form_free(v);
}

TEST(form_ref_rules)
{
	struct form *v = fixture_form("visits");

	visit_valid(v, "beneficiary_id", "\"0193A1B2-c3d4-7abc-8DEF-0123456789ab\"");
	visit_invalid(v, "beneficiary_id", "\"0193a1b2-c3d4-7abc-8def-0123456789a\"", "UUID",
		      "0193a1b2");
	visit_invalid(v, "beneficiary_id", "\"0193a1b2c3d47abc8def0123456789abcdef\"", "UUID",
		      "0193a1b2");
	visit_invalid(v, "beneficiary_id", "\"0193a1b2-c3d4-7abc-8def-0123456789ag\"", "UUID",
		      "0193a1b2");
	visit_invalid(v, "beneficiary_id", "\"Petrović Jovan\"", "UUID", "Petrovi");
	visit_invalid(v, "beneficiary_id", "12345", "must be a string", "12345");
	form_free(v);
}

/* ---- values from text ------------------------------------------------- */

TEST(form_value_from_text_conversions)
{
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits");
	cJSON *x;

	x = from_text(b, "household_size", "42");
	ASSERT_TRUE(cJSON_IsNumber(x));
	ASSERT_EQ(x->valuedouble, 42);
	cJSON_Delete(x);
	x = from_text(b, "household_size", "-3");
	ASSERT_EQ(x->valuedouble, -3);
	cJSON_Delete(x);
	x = from_text(b, "household_size", "+7");
	ASSERT_EQ(x->valuedouble, 7);
	cJSON_Delete(x);
	from_text_fails(b, "household_size", "4.5");
	from_text_fails(b, "household_size", "12abc");
	from_text_fails(b, "household_size", " 4");
	from_text_fails(b, "household_size", "0x10");
	from_text_fails(b, "household_size", "-");
	from_text_fails(b, "household_size", "99999999999999999999");
	from_text_fails(b, "household_size", "9007199254740993");

	x = from_text(b, "consent", "Yes");
	ASSERT_TRUE(cJSON_IsTrue(x));
	cJSON_Delete(x);
	x = from_text(b, "consent", "TRUE");
	ASSERT_TRUE(cJSON_IsTrue(x));
	cJSON_Delete(x);
	x = from_text(b, "consent", "1");
	ASSERT_TRUE(cJSON_IsTrue(x));
	cJSON_Delete(x);
	x = from_text(b, "consent", "nO");
	ASSERT_TRUE(cJSON_IsFalse(x));
	cJSON_Delete(x);
	x = from_text(b, "consent", "0");
	ASSERT_TRUE(cJSON_IsFalse(x));
	cJSON_Delete(x);
	x = from_text(b, "consent", "False");
	ASSERT_TRUE(cJSON_IsFalse(x));
	cJSON_Delete(x);
	from_text_fails(b, "consent", "maybe");
	from_text_fails(b, "consent", "yess");
	from_text_fails(b, "consent", "da");

	x = from_text(b, "vulnerabilities", " elderly; disability ,, no_documents ;");
	ASSERT_TRUE(cJSON_IsArray(x));
	ASSERT_EQ(cJSON_GetArraySize(x), 3);
	ASSERT_STR_EQ(cJSON_GetArrayItem(x, 0)->valuestring, "elderly");
	ASSERT_STR_EQ(cJSON_GetArrayItem(x, 1)->valuestring, "disability");
	ASSERT_STR_EQ(cJSON_GetArrayItem(x, 2)->valuestring, "no_documents");
	cJSON_Delete(x);
	x = from_text(b, "vulnerabilities", " , ;");
	ASSERT_TRUE(cJSON_IsArray(x));
	ASSERT_EQ(cJSON_GetArraySize(x), 0);
	cJSON_Delete(x);

	x = from_text(b, "full_name", " Ružičić ");
	ASSERT_STR_EQ(cJSON_GetStringValue(x), " Ružičić ");
	cJSON_Delete(x);
	x = from_text(v, "visit_date", "2026-02-29"); /* conversion only */
	ASSERT_STR_EQ(cJSON_GetStringValue(x), "2026-02-29");
	cJSON_Delete(x);
	x = from_text(v, "gps", "44.8,20.4");
	ASSERT_STR_EQ(cJSON_GetStringValue(x), "44.8,20.4");
	cJSON_Delete(x);

	/* Empty text clears a field of any type. */
	for (size_t i = 0; i < form_field_count(b); i++) {
		x = from_text(b, form_field_name(b, i), "");
		ASSERT_TRUE(cJSON_IsNull(x));
		cJSON_Delete(x);
	}
	from_text_fails(b, "shoe_size", "44");
	from_text_fails(v, "full_name", "Ружичић");
	form_free(b);
	form_free(v);
}
