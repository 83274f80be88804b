/* test_drafts.c - the field app's drafts (agent/drafts.h): kept in the
 * encrypted store as typed, never in the outbox, finalised into a record
 * and its changes in one transaction, or not at all. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "agent/attach.h"
#include "agent/drafts.h"
#include "agent/records.h"
#include "tests/fixture.h"
#include "tests/test.h"

static cJSON *parse(const char *json)
{
	cJSON *o = cJSON_Parse(json);

	if (!o)
		TEST_FAIL("test JSON does not parse: %s", json);
	return o;
}

/* A visit to household hh on date, half typed: the stage of works,
 * which a needs assessment does not ask, and a row without its required
 * name. */
static void half_visit(char *json, size_t cap, const char *hh, const char *date)
{
	snprintf(json, cap,
		 "{\"beneficiary_id\":\"%s\",\"visit_date\":\"%s\","
		 "\"visit_type\":\"needs_assessment\",\"construction_stage\":\"roof\","
		 "\"people_present\":[{\"role\":\"relative\"}]}",
		 hh, date);
}

static void save(struct store *s, const struct form *f, const char *id, const char *json,
		 char ret[UUID_TEXT_LEN + 1])
{
	struct fs_error err = { 0 };
	cJSON *o = parse(json);

	if (drafts_save(s, f, id, o, ret, NULL, &err) < 0)
		TEST_FAIL("drafts_save: %s", err.msg);
	cJSON_Delete(o);
}

TEST(drafts_kept_as_typed_never_queued)
{
	struct store *s = fixture_store(NULL, NULL, 1);
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits");
	char hh[UUID_TEXT_LEN + 1], id[UUID_TEXT_LEN + 1], again[UUID_TEXT_LEN + 1];
	char collection[FORM_MAX_NAME + 1];
	struct fs_error err = { 0 };
	cJSON *fields = NULL, *list = NULL, *bad;
	long long queued;

	fixture_person(s, b, "Ђорђевић Драгана", "Vranje", "idp", hh);
	queued = fixture_count(s, "SELECT count(*) FROM outbox");
	/* A visit half typed, in the future too: kept as it is. */
	{
		char json[512];

		half_visit(json, sizeof(json), hh, "2099-01-01");
		save(s, v, NULL, json, id);
	}
	ASSERT_OK(drafts_load(s, id, collection, sizeof(collection), &fields, &err));
	ASSERT_STR_EQ(collection, "visits");
	/* Not settled: the stage, not asked for this type, is still there. */
	ASSERT_STR_EQ(cJSON_GetObjectItem(fields, "construction_stage")->valuestring, "roof");
	cJSON_Delete(fields);
	save(s, v, id, "{\"notes\":\"Кров прокишњава\"}", again);
	ASSERT_STR_EQ(again, id);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM drafts"), 1);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox"), queued);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM records WHERE collection = 'visits'"), 0);
	ASSERT_OK(drafts_list(s, &list, &err));
	ASSERT_EQ(cJSON_GetArraySize(list), 1);
	cJSON_Delete(list);
	/* Bad input: a field the form lacks, another form's draft, no id. */
	bad = parse("{\"nickname\":\"x\"}");
	ASSERT_EQ(drafts_save(s, v, id, bad, again, NULL, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "unknown field");
	cJSON_Delete(bad);
	bad = parse("{\"full_name\":\"Ana\"}");
	ASSERT_EQ(drafts_save(s, b, id, bad, again, NULL, &err), -FS_ENOTFOUND);
	cJSON_Delete(bad);
	ASSERT_EQ(drafts_load(s, "not-a-uuid", collection, sizeof(collection), &fields, &err),
		  -FS_EUSAGE);
	/* An id the store did not give is not a way to a new draft (nor
	 * past DRAFTS_MAX). */
	bad = parse("{\"notes\":\"x\"}");
	ASSERT_EQ(drafts_save(s, v, "0193a1b2-c3d4-7abc-8def-0123456789ab", bad, again, NULL, &err),
		  -FS_ENOTFOUND);
	cJSON_Delete(bad);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM drafts"), 1);
	ASSERT_OK(drafts_discard(s, id, &err));
	ASSERT_EQ(drafts_discard(s, id, &err), -FS_ENOTFOUND);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM drafts"), 0);
	form_free(b);
	form_free(v);
	store_close(s);
}

TEST(drafts_finalise_is_one_transaction)
{
	struct store *s = fixture_store(NULL, NULL, 1);
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits");
	char hh[UUID_TEXT_LEN + 1], id[UUID_TEXT_LEN + 1], rid[UUID_TEXT_LEN + 1], json[512];
	struct fs_error err = { 0 };
	cJSON *fields = NULL;
	long long queued;

	fixture_person(s, b, "Jovanović Ana", "Vranje", "refugee", hh);
	queued = fixture_count(s, "SELECT count(*) FROM outbox");
	half_visit(json, sizeof(json), hh, "2026-11-20");
	save(s, v, NULL, json, id);
	/* Invalid: a row lacks its name.  Nothing is written, the draft stays. */
	ASSERT_EQ(drafts_finalise(s, v, id, rid, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "field 'people_present' row 1: field 'person_name': required");
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM records WHERE collection = 'visits'"), 0);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox"), queued);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM drafts"), 1);
	/* Fixed, it becomes a record, settled as `record add` would: the
	 * stage, not asked for a needs assessment, is left out. */
	{
		cJSON *o = parse(json);

		cJSON_ReplaceItemInObject(
			o, "people_present",
			parse("[{\"person_name\":\"Јована Петровић\",\"role\":\"relative\"}]"));
		ASSERT_OK(drafts_save(s, v, id, o, rid, NULL, &err));
		cJSON_Delete(o);
	}
	ASSERT_OK(drafts_finalise(s, v, id, rid, &err));
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM drafts"), 0);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM records WHERE collection = 'visits'"), 1);
	ASSERT_EQ(
		fixture_count(s, "SELECT count(*) FROM outbox WHERE field = 'construction_stage'"),
		0);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox WHERE field = 'people_present'"),
		  1);
	ASSERT_OK(records_get(s, v, rid, &fields, &err));
	{
		const cJSON *rec = cJSON_GetObjectItem(fields, "fields");

		ASSERT_TRUE(!cJSON_GetObjectItem(rec, "construction_stage"));
		ASSERT_TRUE(cJSON_IsArray(cJSON_GetObjectItem(rec, "people_present")));
	}
	cJSON_Delete(fields);
	ASSERT_EQ(drafts_finalise(s, v, id, rid, &err), -FS_ENOTFOUND);
	form_free(b);
	form_free(v);
	store_close(s);
}

/* A default is given when a draft begins; one the worker then clears
 * stays cleared when the draft is finished. */
TEST(drafts_cleared_default_stays_cleared)
{
	struct store *s = fixture_store(NULL, NULL, 1);
	char id[UUID_TEXT_LEN + 1], rid[UUID_TEXT_LEN + 1], collection[FORM_MAX_NAME + 1];
	struct fs_error err = { 0 };
	struct form *f = NULL;
	cJSON *fields = NULL, *rec = NULL;

	ASSERT_OK(form_load_file(FS_SOURCE_DIR "/tests/forms/logic.json", &f, &err));
	save(s, f, NULL, "{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\"}", id);
	ASSERT_OK(drafts_load(s, id, collection, sizeof(collection), &fields, &err));
	ASSERT_TRUE(cJSON_IsFalse(cJSON_GetObjectItem(fields, "has_children")));
	cJSON_Delete(fields);
	save(s, f, id, "{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\"}", rid);
	ASSERT_OK(drafts_finalise(s, f, id, rid, &err));
	ASSERT_OK(records_get(s, f, rid, &rec, &err));
	ASSERT_TRUE(!cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "fields"), "has_children"));
	ASSERT_TRUE(
		cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "fields"), "summary")));
	cJSON_Delete(rec);
	form_free(f);
	store_close(s);
}

/* A record written from the CLI or an import that answers a question its
 * other answers do not ask, or gives a calculated field, is refused
 * rather than quietly changed. */
TEST(records_refuse_answers_the_form_would_drop)
{
	struct store *s = fixture_store(NULL, NULL, 1);
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits"), *l = NULL;
	char hh[UUID_TEXT_LEN + 1], id[UUID_TEXT_LEN + 1], json[512];
	struct fs_error err = { 0 };
	cJSON *o;

	fixture_person(s, b, "Petrović Marko", "Vranje", "idp", hh);
	snprintf(json, sizeof(json),
		 "{\"beneficiary_id\":\"%s\",\"visit_date\":\"2026-11-20\","
		 "\"visit_type\":\"needs_assessment\",\"construction_stage\":\"roof\"}",
		 hh);
	o = parse(json);
	ASSERT_OK(store_begin(s, &err));
	ASSERT_EQ(records_add(s, v, o, NULL, id, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "field 'construction_stage': answered, but not asked");
	store_rollback(s);
	cJSON_Delete(o);
	ASSERT_OK(form_load_file(FS_SOURCE_DIR "/tests/forms/logic.json", &l, &err));
	o = parse("{\"municipality\":\"Kraljevo\",\"visit_date\":\"2026-11-01\","
		  "\"summary\":\"typed\"}");
	ASSERT_OK(store_begin(s, &err));
	ASSERT_EQ(records_add(s, l, o, NULL, id, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "field 'summary': the form's logic changes this answer");
	store_rollback(s);
	cJSON_Delete(o);
	form_free(l);
	form_free(b);
	form_free(v);
	store_close(s);
}

/* A PNG of n bytes (kept as it is), written to a memory stream. */
static FILE *png(size_t n, unsigned char fill)
{
	static unsigned char buf[4][4096];
	static int next;
	unsigned char *b = buf[next++ % 4];

	memset(b, fill, sizeof(buf[0]));
	memcpy(b, "\x89PNG\r\n\x1a\n", 8);
	return fmemopen(b, n, "rb");
}

/* The file of n bytes filled with fill, attached as /api/attach does
 * (for_draft) or as the command line does; its reference, owned. */
static cJSON *attach(struct store *s, const struct form *v, size_t n, unsigned char fill,
		     const char *name, int for_draft, int *added)
{
	struct fs_error err = { 0 };
	cJSON *ref = NULL;
	FILE *in = png(n, fill);

	ASSERT_OK(attach_store(s, v, "photo", in, name, for_draft, &ref, added, &err));
	fclose(in);
	return ref;
}

/* Draft id's photo becomes a file of n bytes, and the draft is saved. */
static void draft_photo(struct store *s, const struct form *v, cJSON *fields, size_t n,
			unsigned char fill, const char *id, char *rid)
{
	struct fs_error err = { 0 };
	int added = 0;
	cJSON *ref = attach(s, v, n, fill, "the chosen file", 1, &added);

	if (cJSON_HasObjectItem(fields, "photo"))
		cJSON_ReplaceItemInObject(fields, "photo", ref);
	else
		cJSON_AddItemToObject(fields, "photo", ref);
	ASSERT_OK(drafts_save(s, v, id, fields, rid, NULL, &err));
}

/* A file the field app attached to a draft is not sent until a record
 * names it, and goes when no draft names it any more: a discarded draft
 * or a replaced photo leaves nothing behind to reach HQ. */
TEST(drafts_attachments_sent_only_with_a_record)
{
	struct store *s = fixture_store(NULL, NULL, 1);
	struct form *b = fixture_form("beneficiaries"), *v = fixture_form("visits");
	char hh[UUID_TEXT_LEN + 1], id[UUID_TEXT_LEN + 1], rid[UUID_TEXT_LEN + 1], json[512];
	struct attach_cursor walk = { 0 };
	struct fs_error err = { 0 };
	uint64_t size = 0, first = 0;
	cJSON *fields = NULL;
	int added = 0;

	fixture_person(s, b, "Jovanović Ana", "Vranje", "refugee", hh);
	snprintf(json, sizeof(json),
		 "{\"beneficiary_id\":\"%s\",\"visit_date\":\"2026-11-20\","
		 "\"visit_type\":\"needs_assessment\"}",
		 hh);
	save(s, v, NULL, json, id);
	/* Attached to the draft, as /api/attach does: kept, not to be sent. */
	fields = parse(json);
	draft_photo(s, v, fields, 3000, 'a', id, rid);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM attachments"), 1);
	ASSERT_EQ(attach_next_unsent(s, &walk, &size, &err), 0);
	/* Another photo replaces it: the first stays until the draft ends
	 * (a save may race a file being attached). */
	draft_photo(s, v, fields, 2000, 'b', id, rid);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM attachments"), 2);
	/* Finalised: the record names the second, which is to be sent; the
	 * first, which nothing names, goes. */
	ASSERT_OK(drafts_finalise(s, v, id, rid, &err));
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM attachments"), 1);
	ASSERT_EQ(attach_next_unsent(s, &walk, &size, &err), 1);
	ASSERT_EQ(size, 2000);
	/* The same file given on the command line for a record: a record's. */
	cJSON_Delete(attach(s, v, 2000, 'b', "house.png", 0, &added));
	ASSERT_EQ(added, 0);
	/* A draft discarded with its own photo: nothing left of it; and a
	 * file a draft holds, given for a record on the command line, stays
	 * a record's when the draft goes. */
	save(s, v, NULL, json, id);
	draft_photo(s, v, fields, 500, 'd', id, rid);
	cJSON_Delete(attach(s, v, 500, 'd', "porch.png", 0, &added));
	ASSERT_EQ(
		fixture_count(s, "SELECT count(*) FROM attachments WHERE size = 500 AND draft = 0"),
		1);
	draft_photo(s, v, fields, 1000, 'c', id, rid);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM attachments"), 3);
	ASSERT_OK(drafts_discard(s, id, &err));
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM attachments"), 2);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM attachments WHERE size = 500"), 1);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM attachment_chunks WHERE length(data) = "
				   "1000"),
		  0);
	/* A walk over the files to send passes each once, so one HQ refuses
	 * does not hold back the next. */
	memset(&walk, 0, sizeof(walk));
	ASSERT_EQ(attach_next_unsent(s, &walk, &size, &err), 1);
	first = size;
	ASSERT_EQ(attach_next_unsent(s, &walk, &size, &err), 1);
	ASSERT_TRUE(first != size && first + size == 2500);
	ASSERT_EQ(attach_next_unsent(s, &walk, &size, &err), 0);
	cJSON_Delete(fields);
	form_free(b);
	form_free(v);
	store_close(s);
}
