/* test_expr.c - the form expression language (sync/expr.h): its
 * grammar, its value rules, and its refusals. */
#include <math.h>
#include <string.h>

#include "sync/expr.h"
#include "tests/test.h"

static cJSON *rec;

static const cJSON *lookup(const char *name, void *ctx)
{
	(void)ctx;
	return cJSON_GetObjectItemCaseSensitive(rec, name);
}

/* Evaluate text over rec with "." = self; its result as text:
 * "null", "true"/"false", a number with %g, or 'text', or "list". */
static void eval_as(const char *text, const cJSON *self, char *out, size_t cap)
{
	struct fs_error err = { 0 };
	struct expr *e = NULL;
	struct expr_value v;

	if (expr_parse(text, &e, &err) < 0)
		TEST_FAIL("'%s' does not parse: %s", text, err.msg);
	v = expr_eval(e, lookup, NULL, self, "2026-12-06");
	switch (v.kind) {
	case EXPR_NULL:
		snprintf(out, cap, "null");
		break;
	case EXPR_BOOL:
		snprintf(out, cap, "%s", v.b ? "true" : "false");
		break;
	case EXPR_NUMBER:
		snprintf(out, cap, "%g", v.n);
		break;
	case EXPR_TEXT:
		snprintf(out, cap, "'%s'", v.text);
		break;
	case EXPR_LIST:
		snprintf(out, cap, "list");
		break;
	}
	expr_free(e);
}

static void expect(const char *text, const char *want)
{
	char got[256];

	eval_as(text, NULL, got, sizeof(got));
	if (strcmp(got, want) != 0)
		TEST_FAIL("'%s' gave %s, expected %s", text, got, want);
}

TEST(expr_values_and_operators)
{
	rec = cJSON_Parse("{\"age\":42,\"size\":\"5\",\"name\":\"Ђорђевић Драгана\",\"phone\":\"\","
			  "\"vul\":[\"elderly\",\"disability\"],\"consent\":true,"
			  "\"visit_date\":\"2026-11-20\",\"gone\":null}");
	ASSERT_TRUE(rec != NULL);
	/* Literals and precedence. */
	expect("1 + 2 * 3", "7");
	expect("(1 + 2) * 3", "9");
	expect("7 div 2", "3.5");
	expect("7 / 2", "3.5");
	expect("7 mod 3", "1");
	expect("-3 - -4", "1");
	expect("1 div 0", "null");
	expect("'a' or false and false", "true");
	expect("not(1 = 1) or 2 > 1 and 3 < 2", "false");
	/* Fields: absent and null are null, which equals ''. */
	expect("${age} >= 18 and ${age} <= 120", "true");
	expect("${missing}", "null");
	expect("${gone} = ''", "true");
	expect("${phone} = ${missing}", "true");
	expect("${phone} != ''", "false");
	expect("${missing} + 1", "null");
	expect("${missing} < 5", "false");
	expect("${missing} >= 5", "false");
	/* A number and a numeric text compare as numbers. */
	expect("${size} = 5", "true");
	expect("${size} * 2", "10");
	expect("${size} = '5.0'", "false");
	expect("'10' < '9'", "true");
	expect("10 < '9'", "false");
	/* Dates compare as text, and count days. */
	expect("${visit_date} < today()", "true");
	expect("days-between(${visit_date}, today())", "16");
	expect("days-between('2024-02-28', '2024-03-01')", "2");
	expect("days-between('2026-13-01', today())", "null");
	/* Functions. */
	expect("selected(${vul}, 'elderly')", "true");
	expect("selected(${vul}, 'pregnant_or_lactating')", "false");
	expect("count-selected(${vul})", "2");
	expect("count-selected(${missing})", "0");
	expect("string-length(${name})", "16");
	expect("if(${consent}, 'yes', 'no')", "'yes'");
	expect("coalesce(${phone}, 'none')", "'none'");
	expect("coalesce(${missing}, ${age})", "42");
	expect("int(-3.7)", "-3");
	expect("round(2.5)", "3");
	expect("today()", "'2026-12-06'");
	expect("${vul}", "list");
	cJSON_Delete(rec);
}

static int count_refs(const char *name, void *ctx)
{
	ASSERT_TRUE(!strcmp(name, "a") || !strcmp(name, "b"));
	(*(int *)ctx)++;
	return 0;
}

TEST(expr_self_and_references)
{
	struct fs_error err = { 0 };
	struct expr *e = NULL;
	cJSON *self = cJSON_CreateNumber(130);
	char got[64];
	int n = 0;

	rec = cJSON_Parse("{}");
	eval_as(". >= 0 and . <= 120", self, got, sizeof(got));
	ASSERT_STR_EQ(got, "false");
	cJSON_SetNumberValue(self, 7);
	eval_as(". >= 0 and . <= 120", self, got, sizeof(got));
	ASSERT_STR_EQ(got, "true");
	ASSERT_OK(expr_parse("${a} + ${b} * ${a}", &e, &err));
	ASSERT_OK(expr_refs(e, count_refs, &n));
	ASSERT_EQ(n, 3);
	cJSON_Delete(self);
	cJSON_Delete(rec);
	expr_free(e);
}

static void refused(const char *text, const char *why)
{
	struct fs_error err = { 0 };
	struct expr *e = NULL;

	if (expr_parse(text, &e, &err) == 0)
		TEST_FAIL("'%s' parsed", text);
	ASSERT_EQ(err.code, -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, why);
	ASSERT_TRUE(e == NULL);
}

TEST(expr_refuses_what_is_not_the_language)
{
	char deep[200], chain[4000];
	size_t i;

	refused("", "unexpected end");
	refused("1 +", "unexpected end");
	refused("age > 3", "a bare word");
	refused("${Age} > 3", "a bad field reference");
	refused("${age > 3", "a bad field reference");
	refused("'open", "unterminated string");
	refused("(1 + 2", "expected ')'");
	refused("1 2", "unexpected text after");
	refused("system('rm')", "unknown function");
	refused("if(1, 2)", "wrong number of arguments");
	refused("today(1, 2, 3, 4)", "too many arguments");
	refused("1 ! 2", "unexpected text after");
	refused("1e999", "a bad number");
	/* Nesting and size are bounded. */
	for (i = 0; i < 60; i++)
		deep[i] = '(';
	deep[i++] = '1';
	for (size_t j = 0; j < 60; j++)
		deep[i++] = ')';
	deep[i] = '\0';
	refused(deep, "nested too deep");
	for (i = 0; i + 4 < sizeof(chain) && i < 2100; i += 2)
		memcpy(chain + i, "1+", 2);
	strcpy(chain + i, "1");
	refused(chain, "longer than");
	for (i = 0; i < 1000; i += 2)
		memcpy(chain + i, "1+", 2);
	strcpy(chain + i, "1");
	refused(chain, "too long an expression");
}
