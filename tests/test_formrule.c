/* test_formrule.c - the logic of fieldsync-form/2 (sync/formrule.c):
 * skip logic, conditional required, constraints with messages,
 * calculations, defaults, choice filters and repeat groups, on the form
 * in tests/forms/logic.json; and what a definition may not say.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sync/form.h"
#include "sync/sniff.h"
#include "tests/test.h"

#define TODAY "2026-11-20"

static struct form *logic_form(void)
{
	struct fs_error err = { 0 };
	struct form *f = NULL;

	if (form_load_file(FS_SOURCE_DIR "/tests/forms/logic.json", &f, &err) < 0)
		TEST_FAIL("load logic.json: %s", err.msg);
	return f;
}

static cJSON *parse(const char *json)
{
	cJSON *o = cJSON_Parse(json);

	if (!o)
		TEST_FAIL("test JSON does not parse: %s", json);
	return o;
}

/* Settle json, then expect it valid; returns the settled record. */
static cJSON *settled_valid(const struct form *f, const char *json)
{
	struct fs_error err = { 0 };
	cJSON *o = parse(json);

	ASSERT_OK(form_settle(f, o, TODAY, &err));
	if (form_validate(f, o, TODAY, &err) != 0)
		TEST_FAIL("expected valid, got (%s) for %s", err.msg, json);
	return o;
}

/* Settle json; it must fail naming the field and rule, never secret. */
static void settled_invalid(const struct form *f, const char *json, const char *want,
			    const char *secret)
{
	struct fs_error err = { 0 };
	cJSON *o = parse(json);
	int r;

	/* Settling refuses what it cannot settle (an unknown or repeated
	 * member); validating, the rest. */
	r = form_settle(f, o, TODAY, &err);
	if (r == 0)
		r = form_validate(f, o, TODAY, &err);
	ASSERT_EQ(r, -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, want);
	if (secret && strstr(err.msg, secret))
		TEST_FAIL("message shows the value \"%s\": %s", secret, err.msg);
	cJSON_Delete(o);
}

static const cJSON *member(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* The report's entry for a field, by a path of names and row numbers:
 * "members", "1", "age". */
static const cJSON *entry(const cJSON *report, const char *field)
{
	const cJSON *e = member(member(report, "fields"), field);

	if (!e)
		TEST_FAIL("report has no entry for %s", field);
	return e;
}

static const char *error_rule(const cJSON *e)
{
	const cJSON *r = member(member(e, "error"), "rule");

	return cJSON_IsString(r) ? r->valuestring : NULL;
}

TEST(formrule_skip_logic_and_required)
{
	struct form *f = logic_form();
	cJSON *o;

	/* children is asked only with has_children; then it is required. */
	o = settled_valid(f, "{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
			     "\"has_children\":false,\"children\":4,\"school\":\"OŠ Вук\"}");
	ASSERT_TRUE(!member(o, "children")); /* not asked: cleared */
	ASSERT_TRUE(!member(o, "school"));   /* its condition read the cleared value */
	cJSON_Delete(o);
	settled_invalid(f,
			"{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
			"\"has_children\":true}",
			"field 'children': required", NULL);
	/* required as an expression: school only from three children. */
	o = settled_valid(f, "{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
			     "\"has_children\":true,\"children\":2}");
	cJSON_Delete(o);
	settled_invalid(f,
			"{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
			"\"has_children\":true,\"children\":3}",
			"field 'school': required", NULL);
	/* Unsettled, an answer to a question not asked is refused. */
	{
		struct fs_error err = { 0 };
		cJSON *raw = parse("{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
				   "\"has_children\":false,\"children\":4}");

		ASSERT_EQ(form_validate(f, raw, TODAY, &err), -FS_EVALID);
		ASSERT_STR_CONTAINS(err.msg, "field 'children': answered, but not asked");
		cJSON_Delete(raw);
	}
	form_free(f);
}

TEST(formrule_constraints_calculations_defaults)
{
	struct form *f = logic_form();
	struct fs_error err = { 0 };
	cJSON *o;

	/* today() is the caller's date: the future is refused, by the rule,
	 * without the value in the message. */
	settled_invalid(f, "{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-21\"}",
			"field 'visit_date': constraint not met", "2026-11-21");
	settled_invalid(f,
			"{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-20\","
			"\"next_visit\":\"2026-11-20\"}",
			"field 'next_visit': constraint not met", NULL);
	/* Calculations: integer from arithmetic, text from a condition;
	 * a given value is overwritten, an impossible one leaves it absent. */
	o = settled_valid(f, "{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-20\","
			     "\"has_children\":true,\"children\":2,\"household_size\":5,"
			     "\"adults\":99,\"summary\":\"typed\"}");
	ASSERT_EQ(member(o, "adults")->valuedouble, 3);
	ASSERT_STR_EQ(member(o, "summary")->valuestring, "with children");
	cJSON_Delete(o);
	o = settled_valid(f, "{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-20\"}");
	ASSERT_TRUE(!member(o, "adults")); /* household_size absent: null - 0 */
	ASSERT_STR_EQ(member(o, "summary")->valuestring, "no children");
	cJSON_Delete(o);
	/* A member given twice is refused before settling, so no copy of a
	 * calculated field outlives the calculation. */
	settled_invalid(f,
			"{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-20\","
			"\"summary\":\"a\",\"summary\":\"b\"}",
			"field 'summary': given more than once", NULL);
	/* Defaults fill what a new record lacks, not what it gives. */
	o = parse("{\"has_children\":true}");
	ASSERT_OK(form_apply_defaults(f, o, &err));
	ASSERT_TRUE(cJSON_IsTrue(member(o, "has_children")));
	cJSON_Delete(o);
	o = parse("{\"has_children\":null}");
	ASSERT_OK(form_apply_defaults(f, o, &err));
	ASSERT_TRUE(cJSON_IsFalse(member(o, "has_children")));
	cJSON_Delete(o);
	form_free(f);
}

TEST(formrule_choice_filter)
{
	struct form *f = logic_form();
	struct fs_error err = { 0 };
	cJSON *o, *report = NULL;
	const cJSON *choices;

	o = settled_valid(f, "{\"municipality\":\"Sremska Mitrovica\",\"settlement\":\"laćarak\","
			     "\"visit_date\":\"2026-11-01\"}");
	cJSON_Delete(o);
	settled_invalid(f,
			"{\"municipality\":\"Kraljevo\",\"settlement\":\"laćarak\","
			"\"visit_date\":\"2026-11-01\"}",
			"field 'settlement': not offered for these answers", "laćarak");
	/* The report lists what is offered for the answers so far. */
	o = parse("{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\"}");
	ASSERT_OK(form_report(f, o, TODAY, &report, &err));
	choices = member(entry(report, "settlement"), "choices");
	ASSERT_EQ(cJSON_GetArraySize(choices), 2);
	ASSERT_STR_EQ(cJSON_GetArrayItem(choices, 0)->valuestring, "centar");
	ASSERT_STR_EQ(cJSON_GetArrayItem(choices, 1)->valuestring, "ribnica");
	ASSERT_TRUE(cJSON_IsTrue(member(report, "valid")));
	cJSON_Delete(report);
	cJSON_Delete(o);
	form_free(f);
}

TEST(formrule_repeat_groups)
{
	struct form *f = logic_form();
	struct fs_error err = { 0 };
	cJSON *o, *report = NULL;
	const cJSON *rows, *row;

	/* Within a row, ${age} is the row's own; grade asked from 6 to 18. */
	o = settled_valid(f,
			  "{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
			  "\"household_size\":3,\"members\":["
			  "{\"member_name\":\"Đorđe Petrović\",\"age\":41,\"school_grade\":3},"
			  "{\"member_name\":\"Јована Петровић\",\"age\":9,\"school_grade\":3}]}");
	rows = member(o, "members");
	ASSERT_TRUE(!member(cJSON_GetArrayItem(rows, 0), "school_grade"));
	ASSERT_EQ(member(cJSON_GetArrayItem(rows, 1), "school_grade")->valuedouble, 3);
	cJSON_Delete(o);
	/* A row's rules, named with the row. */
	settled_invalid(f,
			"{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
			"\"members\":[{\"member_name\":\"Ana\"},{\"age\":3}]}",
			"field 'members' row 2: field 'member_name': required", NULL);
	settled_invalid(f,
			"{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
			"\"members\":[{\"member_name\":\"Ž\"}]}",
			"field 'members' row 1: field 'member_name': constraint not met", "Ž");
	settled_invalid(f,
			"{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
			"\"members\":[{\"member_name\":\"Ana\",\"nickname\":\"x\"}]}",
			"unknown field", NULL);
	settled_invalid(f,
			"{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
			"\"members\":[{},{},{},{},{},{}]}",
			"field 'members'", NULL);
	/* count() of rows in another field's constraint. */
	settled_invalid(f,
			"{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
			"\"household_size\":1,\"members\":[{\"member_name\":\"Ana\"},"
			"{\"member_name\":\"Ivan\"}]}",
			"field 'household_size': constraint not met", NULL);
	/* The report goes on past errors, row by row. */
	o = parse("{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-12-01\","
		  "\"members\":[{\"member_name\":\"Ana\",\"age\":7},{\"age\":200}]}");
	ASSERT_OK(form_settle(f, o, TODAY, &err));
	ASSERT_OK(form_report(f, o, TODAY, &report, &err));
	ASSERT_TRUE(cJSON_IsFalse(member(report, "valid")));
	ASSERT_STR_EQ(error_rule(entry(report, "visit_date")), "constraint");
	ASSERT_STR_CONTAINS(
		member(member(member(entry(report, "visit_date"), "error"), "message"), "sr-Cyrl")
			->valuestring,
		"будућности");
	rows = member(entry(report, "members"), "rows");
	ASSERT_EQ(cJSON_GetArraySize(rows), 2);
	row = cJSON_GetArrayItem(rows, 0);
	ASSERT_TRUE(cJSON_IsTrue(member(member(row, "school_grade"), "relevant")));
	ASSERT_TRUE(!error_rule(member(row, "member_name")));
	row = cJSON_GetArrayItem(rows, 1);
	ASSERT_STR_EQ(error_rule(member(row, "member_name")), "required");
	ASSERT_STR_EQ(error_rule(member(row, "age")), "type");
	ASSERT_TRUE(cJSON_IsFalse(member(member(row, "school_grade"), "relevant")));
	ASSERT_TRUE(cJSON_IsFalse(member(entry(report, "children"), "relevant")));
	ASSERT_TRUE(cJSON_IsTrue(member(entry(report, "municipality"), "required")));
	cJSON_Delete(report);
	cJSON_Delete(o);
	/* A group is given as its JSON array on the command line. */
	ASSERT_OK(form_value_from_text(f, "members", "[{\"member_name\":\"Ana\"}]", &o, &err));
	ASSERT_TRUE(cJSON_IsArray(o));
	cJSON_Delete(o);
	ASSERT_EQ(form_value_from_text(f, "members", "Ana", &o, &err), -FS_EVALID);
	form_free(f);
}

/* What HQ checks per change holds for every record valid on a device:
 * a field required only where it is asked is not required alone. */
TEST(formrule_hq_checks_only_a_fields_own_rules)
{
	struct form *f = logic_form();
	struct fs_error err = { 0 };
	cJSON *v = cJSON_CreateNull(), *rows = parse("[{\"member_name\":\"Ana\",\"age\":7}]"),
	      *bad = parse("[{\"age\":7}]"), *date = cJSON_CreateString("2030-01-01");

	ASSERT_OK(form_validate_value(f, "children", v, &err));
	ASSERT_EQ(form_validate_value(f, "municipality", v, &err), -FS_EVALID);
	ASSERT_OK(form_validate_value(f, "members", rows, &err));
	ASSERT_EQ(form_validate_value(f, "members", bad, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "row 1: field 'member_name': required");
	/* A constraint on the value alone is the value's own rule... */
	cJSON_Delete(bad);
	bad = parse("[{\"member_name\":\"Ž\"}]");
	ASSERT_EQ(form_validate_value(f, "members", bad, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "field 'member_name': constraint not met");
	/* ...one that reads today() or other fields is the record's. */
	ASSERT_OK(form_validate_value(f, "visit_date", date, &err));
	cJSON_Delete(v);
	cJSON_Delete(rows);
	cJSON_Delete(bad);
	cJSON_Delete(date);
	form_free(f);
}

static void logic_broken(const char *fields, const char *want)
{
	struct fs_error err = { 0 };
	struct form *f = NULL;
	char def[4096];

	snprintf(def, sizeof(def),
		 "{\"format\":\"fieldsync-form/2\",\"collection\":\"t\",\"fields\":[%s]}", fields);
	if (form_load_json(def, strlen(def), "t.json", &f, &err) != -FS_EFORMAT)
		TEST_FAIL("definition loaded, expected \"%s\": %s", want, def);
	ASSERT_STR_CONTAINS(err.msg, want);
}

TEST(formrule_definitions_refused)
{
	struct fs_error err = { 0 };
	struct form *f = NULL;
	static const char v1[] = "{\"format\":\"fieldsync-form/1\",\"collection\":\"t\","
				 "\"fields\":[{\"name\":\"a\",\"type\":\"text\","
				 "\"relevant\":\"true\"}]}";

	ASSERT_EQ(form_load_json(v1, strlen(v1), "t.json", &f, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "'relevant' needs format");
	logic_broken("{\"name\":\"a\",\"type\":\"text\",\"relevant\":\"${b} = 1\"},"
		     "{\"name\":\"b\",\"type\":\"integer\"}",
		     "'relevant' may name only fields defined before this one ('b' is not)");
	logic_broken("{\"name\":\"a\",\"type\":\"integer\",\"calculate\":\"${a} + 1\"}",
		     "'calculate' may name only fields defined before");
	logic_broken("{\"name\":\"a\",\"type\":\"text\",\"constraint\":\"${nope} = 1\"}",
		     "field 'a': 'constraint' names a field the form does not have");
	logic_broken("{\"name\":\"a\",\"type\":\"text\",\"constraint\":\"(1\"}",
		     "'constraint': expression:");
	logic_broken("{\"name\":\"a\",\"type\":\"text\",\"required\":1}",
		     "'required' must be true, false or an expression");
	logic_broken("{\"name\":\"a\",\"type\":\"text\",\"constraint_message\":{\"en\":\"x\"}}",
		     "without a 'constraint'");
	logic_broken("{\"name\":\"a\",\"type\":\"integer\",\"max\":3,\"default\":4}",
		     "'default' breaks the field's rules");
	logic_broken("{\"name\":\"a\",\"type\":\"gps\",\"calculate\":\"'1,1'\"}",
		     "'calculate' not allowed for type gps");
	logic_broken("{\"name\":\"a\",\"type\":\"choice\",\"values\":[\"x\"],"
		     "\"choice_data\":{\"y\":{\"k\":\"v\"}}}",
		     "not one of the values");
	logic_broken("{\"name\":\"g\",\"type\":\"repeat\",\"fields\":[{\"name\":\"h\","
		     "\"type\":\"repeat\",\"fields\":[{\"name\":\"x\",\"type\":\"text\"}]}]}",
		     "cannot hold another");
	logic_broken("{\"name\":\"g\",\"type\":\"repeat\",\"fields\":[{\"name\":\"r\","
		     "\"type\":\"ref\",\"collection\":\"t\"}]}",
		     "cannot hold a ref");
	logic_broken("{\"name\":\"a\",\"type\":\"text\"},{\"name\":\"g\",\"type\":\"repeat\","
		     "\"fields\":[{\"name\":\"a\",\"type\":\"text\"}]}",
		     "the form has a field of that name");
	logic_broken("{\"name\":\"g\",\"type\":\"repeat\",\"min_rows\":3,\"max_rows\":2,"
		     "\"fields\":[{\"name\":\"x\",\"type\":\"text\"}]}",
		     "'min_rows' is greater than 'max_rows'");
	logic_broken("{\"name\":\"g\",\"type\":\"repeat\",\"fields\":[{\"name\":\"x\","
		     "\"type\":\"text\",\"relevant\":\"${g} != null\"}]}",
		     "may name only fields defined before");
	logic_broken("{\"name\":\"g\",\"type\":\"repeat\",\"fields\":[]}", "'fields' is empty");
	/* HQ places records by the scope field: no logic may hide or make it. */
	{
		static const char scoped[] =
			"{\"format\":\"fieldsync-form/2\",\"collection\":\"t\",\"scope\":\"m\","
			"\"fields\":[{\"name\":\"a\",\"type\":\"boolean\"},{\"name\":\"m\","
			"\"type\":\"text\",\"required\":true,\"relevant\":\"${a}\"}]}";

		ASSERT_EQ(form_load_json(scoped, strlen(scoped), "t.json", &f, &err), -FS_EFORMAT);
		ASSERT_STR_CONTAINS(err.msg, "'scope' field 'm' may not have relevant");
	}
}

/* Attachments (issue 17): the field's rules in the definition, and its
 * value, the file's reference, checked the same on a device and at HQ. */
TEST(formrule_attachment_fields)
{
	static const char def[] =
		"{\"format\":\"fieldsync-form/2\",\"collection\":\"t\",\"fields\":["
		"{\"name\":\"photo\",\"type\":\"attachment\",\"max_bytes\":10000000,"
		"\"accept\":[\"image/jpeg\",\"image/png\"]},"
		"{\"name\":\"scan\",\"type\":\"attachment\"}]}";
	static const char v1[] = "{\"format\":\"fieldsync-form/1\",\"collection\":\"t\","
				 "\"fields\":[{\"name\":\"p\",\"type\":\"attachment\"}]}";
	static const char *const bad[] = {
		/* not an object, members missing or extra */
		"\"photo.jpg\"",
		"{\"sha256\":\""
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
		"\"size\":5}",
		"{\"sha256\":\""
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
		"\"size\":5,\"type\":\"image/png\",\"name\":\"x.png\"}",
		/* a hash that is not 64 lower-case hex digits */
		"{\"sha256\":\""
		"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\","
		"\"size\":5,\"type\":\"image/png\"}",
		"{\"sha256\":\"abc\",\"size\":5,\"type\":\"image/png\"}",
		/* an empty file, a size that is not whole */
		"{\"sha256\":\""
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
		"\"size\":0,\"type\":\"image/png\"}",
		"{\"sha256\":\""
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
		"\"size\":1.5,\"type\":\"image/png\"}",
	};
	struct fs_error err = { 0 };
	struct form *f = NULL;
	cJSON *v;

	ASSERT_OK(form_load_json(def, strlen(def), "t.json", &f, &err));
	v = parse("{\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		  "\",\"size\":9000000,\"type\":\"image/jpeg\"}");
	ASSERT_OK(form_validate_value(f, "photo", v, &err));
	cJSON_Delete(v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = parse(bad[i]);
		if (form_validate_value(f, "photo", v, &err) != -FS_EVALID)
			TEST_FAIL("accepted %s", bad[i]);
		ASSERT_STR_CONTAINS(err.msg, "must be {\"sha256\", \"size\", \"type\"} of a file");
		cJSON_Delete(v);
	}
	/* A PDF where only images are taken; any of the three by default. */
	v = parse("{\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		  "\",\"size\":100,\"type\":\"application/pdf\"}");
	ASSERT_EQ(form_validate_value(f, "photo", v, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "a file of a type it does not take");
	ASSERT_OK(form_validate_value(f, "scan", v, &err));
	cJSON_Delete(v);
	/* Too large, said in a person's words. */
	v = parse("{\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		  "\",\"size\":14000000,\"type\":\"image/png\"}");
	ASSERT_EQ(form_validate_value(f, "photo", v, &err), -FS_EVALID);
	ASSERT_STR_EQ(err.msg, "photo is 14.0 MB, the form allows 10.0 MB");
	/* The default limit is 10 MiB. */
	ASSERT_EQ(form_validate_value(f, "scan", v, &err), -FS_EVALID);
	ASSERT_STR_EQ(err.msg, "scan is 14.0 MB, the form allows 10.5 MB");
	cJSON_Delete(v);
	/* As text: its JSON reference, as an export gives it. */
	ASSERT_EQ(form_value_from_text(f, "photo", "house.jpg", &v, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "an attachment is given as its JSON reference");
	ASSERT_OK(form_value_from_text(f, "photo", "{\"size\":1}", &v, &err));
	ASSERT_TRUE(cJSON_IsObject(v));
	cJSON_Delete(v);
	form_free(f);

	ASSERT_EQ(form_load_json(v1, strlen(v1), "t.json", &f, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "type attachment needs format");
	logic_broken("{\"name\":\"p\",\"type\":\"attachment\",\"max_bytes\":0}",
		     "'max_bytes' must be a whole number 1 to");
	logic_broken("{\"name\":\"p\",\"type\":\"attachment\",\"max_bytes\":4294967297}",
		     "'max_bytes' must be a whole number 1 to");
	logic_broken("{\"name\":\"p\",\"type\":\"attachment\",\"accept\":[]}",
		     "'accept' must be a list of content types");
	logic_broken("{\"name\":\"p\",\"type\":\"attachment\",\"accept\":[\"image/gif\"]}",
		     "each must be image/jpeg, image/png or application/pdf");
	logic_broken("{\"name\":\"p\",\"type\":\"attachment\",\"default\":{}}",
		     "'default' not allowed for type attachment");
	logic_broken("{\"name\":\"p\",\"type\":\"attachment\",\"constraint\":\"true\"}",
		     "'constraint' not allowed for type attachment");
	logic_broken("{\"name\":\"p\",\"type\":\"text\",\"max_bytes\":5}",
		     "'max_bytes' not allowed for type text");
	logic_broken("{\"name\":\"g\",\"type\":\"repeat\",\"fields\":[{\"name\":\"p\","
		     "\"type\":\"attachment\"}]}",
		     "cannot hold an attachment");
	/* What the device does to a photo: a side in range, a quality only
	 * with it, keep_location a boolean. */
	logic_broken("{\"name\":\"p\",\"type\":\"attachment\",\"max_side\":32}",
		     "'max_side' must be a whole number 64 to 16384");
	logic_broken("{\"name\":\"p\",\"type\":\"attachment\",\"max_side\":800,"
		     "\"quality\":101}",
		     "'quality' must be a whole number 1 to 100");
	logic_broken("{\"name\":\"p\",\"type\":\"attachment\",\"quality\":80}",
		     "'quality' applies only with 'max_side'");
	logic_broken("{\"name\":\"p\",\"type\":\"attachment\",\"keep_location\":\"yes\"}",
		     "'keep_location' must be true or false");
	logic_broken("{\"name\":\"p\",\"type\":\"text\",\"max_side\":800}",
		     "'max_side' not allowed for type text");
	{
		static const char img[] =
			"{\"format\":\"fieldsync-form/2\",\"collection\":\"t\",\"fields\":["
			"{\"name\":\"p\",\"type\":\"attachment\",\"max_side\":1600,"
			"\"quality\":70,\"keep_location\":true},"
			"{\"name\":\"q\",\"type\":\"attachment\"}]}";
		unsigned side = 0, quality = 0;
		int keep = 0;

		ASSERT_OK(form_load_json(img, strlen(img), "t.json", &f, &err));
		form_field_image(f, 0, &side, &quality, &keep);
		ASSERT_EQ(side, 1600);
		ASSERT_EQ(quality, 70);
		ASSERT_EQ(keep, 1);
		form_field_image(f, 1, &side, &quality, &keep);
		ASSERT_EQ(side, 0);
		ASSERT_EQ(quality, FORM_DEFAULT_QUALITY);
		ASSERT_EQ(keep, 0);
		form_free(f);
	}
}

/* A file is what its first bytes say (sync/sniff.h), not its name. */
TEST(sniff_by_magic_bytes)
{
	static const struct {
		const char *bytes;
		size_t len;
		enum sniff_type want;
	} cases[] = {
		{ "\xff\xd8\xff\xe0\x00\x10JFIF", 10, SNIFF_JPEG },
		{ "\x89PNG\r\n\x1a\n\x00", 9, SNIFF_PNG },
		{ "%PDF-1.7\n", 9, SNIFF_PDF },
		{ "\xff\xd8", 2, SNIFF_NONE },	      /* too short to tell */
		{ "\x89PNG\r\n\x1a", 7, SNIFF_NONE }, /* one byte short */
		{ "GIF89a", 6, SNIFF_NONE },
		{ "<html>", 6, SNIFF_NONE },
		{ "", 0, SNIFF_NONE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (sniff_bytes((const uint8_t *)cases[i].bytes, cases[i].len) != cases[i].want)
			TEST_FAIL("case %zu: wrong type", i);
	ASSERT_STR_EQ(sniff_name(SNIFF_PNG), "image/png");
	ASSERT_TRUE(sniff_name(SNIFF_JPEG | SNIFF_PNG) == NULL);
	ASSERT_EQ(sniff_from_name("application/pdf"), SNIFF_PDF);
	ASSERT_EQ(sniff_from_name("IMAGE/PNG"), SNIFF_NONE);
	ASSERT_EQ(sniff_from_name(NULL), SNIFF_NONE);
}
