/* test_caseload.c - the caseload's search and a household's page
 * (agent/caseload.h): across case, diacritics and Serbian's two scripts,
 * by word start, with the filters a field worker uses, kept up to date
 * by the store's triggers through edits and deletes. */
#include <string.h>

#include <cjson/cJSON.h>

#include "agent/caseload.h"
#include "agent/records.h"
#include "tests/fixture.h"
#include "tests/test.h"

static void visit(struct store *s, const struct form *f, const char *household, const char *date,
		  char id[UUID_TEXT_LEN + 1])
{
	struct fs_error err = { 0 };
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "beneficiary_id", household);
	cJSON_AddStringToObject(o, "visit_date", date);
	cJSON_AddStringToObject(o, "visit_type", "needs_assessment");
	ASSERT_OK(store_begin(s, &err));
	if (records_add(s, f, o, NULL, id, &err) < 0)
		TEST_FAIL("records_add: %s", err.msg);
	ASSERT_OK(store_commit(s, &err));
	cJSON_Delete(o);
}

/* The names the query finds, in order, joined by "|". */
static void names(struct store *s, const struct caseload_query *q, char *out, size_t cap)
{
	struct fs_error err = { 0 };
	cJSON *res = NULL;
	const cJSON *h;

	if (caseload_search(s, q, &res, &err) < 0)
		TEST_FAIL("caseload_search: %s", err.msg);
	out[0] = '\0';
	cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(res, "households"))
	{
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(h, "fields");

		if (out[0])
			strncat(out, "|", cap - strlen(out) - 1);
		strncat(out, cJSON_GetObjectItemCaseSensitive(f, "full_name")->valuestring,
			cap - strlen(out) - 1);
	}
	cJSON_Delete(res);
}

static void expect(struct store *s, const char *text, const char *want)
{
	struct caseload_query q = { .text = text };
	char got[1024];

	names(s, &q, got, sizeof(got));
	if (strcmp(got, want) != 0)
		TEST_FAIL("search '%s' found '%s', expected '%s'", text, got, want);
}

TEST(caseload_search_across_case_diacritics_and_scripts)
{
	struct form *b = fixture_form("beneficiaries");
	struct store *s = fixture_store(NULL, NULL, 1);
	char id[UUID_TEXT_LEN + 1];

	fixture_person(s, b, "Đorđević Dragana", "Vranje", "refugee", id);
	fixture_person(s, b, "Јовановић Милан", "Vranje", "refugee", id);
	fixture_person(s, b, "Jovanović Ana", "Vranje", "idp", id);
	fixture_person(s, b, "Petrović Đorđe", "Vranje", "refugee", id);
	fixture_person(s, b, "Stojanović Marko", "Бујановац", "idp", id);

	/* "djordje" finds Đorđe, and Đorđević, whose name starts so. */
	expect(s, "djordje", "Đorđević Dragana|Petrović Đorđe");
	/* Latin without diacritics finds Cyrillic, and the Latin too. */
	expect(s, "Jovanovic", "Jovanović Ana|Јовановић Милан");
	/* Cyrillic, in capitals, finds Latin. */
	expect(s, "ПЕТРОВИЋ", "Petrović Đorđe");
	expect(s, "ђорђе", "Đorđević Dragana|Petrović Đorđe");
	/* Every word must appear, each where a word starts: "ana" is Ana's
	 * name, not the end of Dragana's. */
	expect(s, "ana", "Jovanović Ana");
	expect(s, "јовановић ана", "Jovanović Ana");
	expect(s, "jovanovic milan", "Јовановић Милан");
	expect(s, "ovic", "");
	expect(s, "nobody", "");
	/* Any text value is searched: the municipality too. */
	expect(s, "bujanovac", "Stojanović Marko");
	/* No words: all of them, by name folded. */
	expect(s, "",
	       "Đorđević Dragana|Jovanović Ana|Јовановић Милан|Petrović Đorđe|Stojanović Marko");
	{
		struct fs_error err = { 0 };

		ASSERT_OK(store_check(s, &err));
	}
	store_close(s);
	form_free(b);
}

TEST(caseload_search_filters_and_limits)
{
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits");
	struct store *s = fixture_store(NULL, NULL, 1);
	char ana[UUID_TEXT_LEN + 1], marko[UUID_TEXT_LEN + 1], id[UUID_TEXT_LEN + 1];
	char got[1024];
	struct fs_error err = { 0 };
	cJSON *res = NULL;

	fixture_person(s, b, "Jovanović Ana", "Vranje", "idp", ana);
	fixture_person(s, b, "Stojanović Marko", "Бујановац", "idp", marko);
	fixture_person(s, b, "Petrović Đorđe", "Vranje", "refugee", id);
	visit(s, v, ana, "2026-11-20", id);
	visit(s, v, ana, "2026-10-01", id);
	visit(s, v, marko, "2026-09-15", id);

	/* Municipality in the other script and case; status. */
	names(s, &(struct caseload_query){ .municipality = "BUJANOVAC" }, got, sizeof(got));
	ASSERT_STR_EQ(got, "Stojanović Marko");
	names(s, &(struct caseload_query){ .municipality = "Врање", .status = "idp" }, got,
	      sizeof(got));
	ASSERT_STR_EQ(got, "Jovanović Ana");
	/* The last visit, not any visit: Ana's last is 2026-11-20. */
	names(s, &(struct caseload_query){ .visited_from = "2026-11-01" }, got, sizeof(got));
	ASSERT_STR_EQ(got, "Jovanović Ana");
	names(s, &(struct caseload_query){ .visited_to = "2026-10-31" }, got, sizeof(got));
	ASSERT_STR_EQ(got, "Stojanović Marko");
	names(s, &(struct caseload_query){ .never_visited = 1 }, got, sizeof(got));
	ASSERT_STR_EQ(got, "Petrović Đorđe");
	/* A limit cuts the list, not the total. */
	ASSERT_OK(caseload_search(s, &(struct caseload_query){ .limit = 1 }, &res, &err));
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(res, "households")), 1);
	ASSERT_EQ((int)cJSON_GetObjectItemCaseSensitive(res, "total")->valuedouble, 3);
	cJSON_Delete(res);
	/* Bad queries are named, never echoed. */
	ASSERT_EQ(caseload_search(s, &(struct caseload_query){ .visited_from = "20.11.2026" }, &res,
				  &err),
		  -FS_EUSAGE);
	ASSERT_STR_CONTAINS(err.msg, "not YYYY-MM-DD");
	ASSERT_EQ(caseload_search(s, &(struct caseload_query){ .text = "a b c d e f g h i" }, &res,
				  &err),
		  -FS_EUSAGE);
	ASSERT_STR_CONTAINS(err.msg, "at most 8 words");
	store_close(s);
	form_free(b);
	form_free(v);
}

TEST(caseload_follows_edits_and_deletes)
{
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits");
	struct store *s = fixture_store(NULL, NULL, 1);
	char ana[UUID_TEXT_LEN + 1], id[UUID_TEXT_LEN + 1], old[UUID_TEXT_LEN + 1];
	struct fs_error err = { 0 };
	cJSON *ch = cJSON_CreateObject(), *hh = NULL;
	const cJSON *visits;

	fixture_person(s, b, "Jovanović Ana", "Vranje", "idp", ana);
	expect(s, "jovanovic", "Jovanović Ana");
	/* A new name: the old one no longer finds her. */
	cJSON_AddStringToObject(ch, "full_name", "Марковић Ана");
	ASSERT_OK(store_begin(s, &err));
	ASSERT_OK(records_edit(s, b, ana, ch, &err));
	ASSERT_OK(store_commit(s, &err));
	expect(s, "jovanovic", "");
	expect(s, "markovic", "Марковић Ана");
	/* Her page: visits newest first, recorded here; a deleted visit is
	 * gone from it and from the last-visit date. */
	visit(s, v, ana, "2026-10-01", old);
	visit(s, v, ana, "2026-11-20", id);
	ASSERT_OK(caseload_household(s, ana, &hh, &err));
	visits = cJSON_GetObjectItemCaseSensitive(hh, "visits");
	ASSERT_EQ(cJSON_GetArraySize(visits), 2);
	ASSERT_STR_EQ(
		cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(visits, 0), "fields"),
			"visit_date")
			->valuestring,
		"2026-11-20");
	ASSERT_TRUE(cJSON_IsTrue(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(visits, 0), "mine")));
	ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hh, "mine")));
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(hh, "conflicts")), 0);
	cJSON_Delete(hh);
	ASSERT_OK(store_begin(s, &err));
	ASSERT_OK(records_delete(s, v, id, &err));
	ASSERT_OK(store_commit(s, &err));
	{
		char got[256];

		names(s, &(struct caseload_query){ .visited_from = "2026-11-01" }, got,
		      sizeof(got));
		ASSERT_STR_EQ(got, "");
		names(s, &(struct caseload_query){ .visited_from = "2026-10-01" }, got,
		      sizeof(got));
		ASSERT_STR_EQ(got, "Марковић Ана");
	}
	/* A deleted household is neither found nor shown. */
	ASSERT_OK(store_begin(s, &err));
	ASSERT_OK(records_delete(s, b, ana, &err));
	ASSERT_OK(store_commit(s, &err));
	expect(s, "markovic", "");
	ASSERT_EQ(caseload_household(s, ana, &hh, &err), -FS_ENOTFOUND);
	ASSERT_OK(store_check(s, &err));
	cJSON_Delete(ch);
	store_close(s);
	form_free(b);
	form_free(v);
}
