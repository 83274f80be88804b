/* test_pull.c - agent/pull.c: applying down-sets to a real store.
 *
 * The down-sets are made here with a test HQ key and sealed to the
 * store's own identity, as HQ makes them; the store, the merge and the
 * checks are the real ones.  Sections: helpers; tests.
 */
#include <errno.h>
#include <stdlib.h>

#include "agent/caseload.h"
#include "agent/devforms.h"
#include "agent/drafts.h"
#include "agent/pull.h"
#include "agent/records.h"
#include "agent/store.h"
#include "sync/downset.h"
#include "sync/formsrc.h"
#include "tests/fixture.h"
#include "tests/test.h"

/* ---- helpers ---------------------------------------------------------- */

#define REC "0193a1b2-c3d4-7abc-8def-0123456789ab"
#define HQDEV "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"

struct world {
	struct store *s;
	struct enrolment en;
	uint8_t hq_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t device[CHANGESET_DEVICE_BYTES];
	uint64_t seq;			    /* last down-set made */
	uint8_t hash[CHANGESET_HASH_BYTES]; /* its hash */
	struct downset_form *forms;	    /* HQ's forms for the next make() */
	size_t nforms;
	struct downset_team *teams; /* for the next make(): version 2 */
	size_t nteams;
};

static void world_open(struct world *w)
{
	memset(w, 0, sizeof(*w));
	w->s = fixture_store(NULL, NULL, 1);
	crypto_sign_keypair(w->en.target.hq_sign_pk, w->hq_sk);
	snprintf(w->en.target.url, sizeof(w->en.target.url), "http://127.0.0.1:9");
	ASSERT_OK(sodium_hex2bin(w->device, sizeof(w->device), store_identity(w->s)->id,
				 IDENTITY_ID_HEXLEN, NULL, NULL, NULL));
}

/* One change: field of REC (a beneficiary) set to the JSON text value,
 * written by device at hlc. */
static struct downset_change change(const char *field, const char *value, hlc_t hlc,
				    const char *device)
{
	struct downset_change c;

	memset(&c, 0, sizeof(c));
	snprintf(c.c.record_id, sizeof(c.c.record_id), "%s", REC);
	snprintf(c.c.collection, sizeof(c.c.collection), "beneficiaries");
	snprintf(c.c.field, sizeof(c.c.field), "%s", field);
	c.c.value = cJSON_Parse(value);
	c.c.hlc = hlc;
	snprintf(c.device, sizeof(c.device), "%s", device);
	ASSERT_TRUE(c.c.value != NULL);
	return c;
}

/* Make down-set seq (prev: the world's chain, or a wrong hash) with the
 * changes, signed with sign_sk, sealed to box_pk; the world's chain
 * moves on when advance is set. */
static void make(struct world *w, uint64_t seq, const struct downset_change *ch, size_t n,
		 const uint8_t *sign_sk, const uint8_t *box_pk, int wrong_prev, uint8_t **buf,
		 size_t *len)
{
	static char sjenica[] = "Sjenica";
	char *scope[] = { sjenica };
	struct downset d;
	struct fs_error err = { 0 };

	memset(&d, 0, sizeof(d));
	d.h.seq = seq;
	memcpy(d.h.device, w->device, sizeof(w->device));
	if (seq > 1)
		memcpy(d.h.prev, w->hash, sizeof(w->hash));
	if (wrong_prev)
		d.h.prev[0] ^= 1;
	d.scope = scope;
	d.nscope = 1;
	d.changes = (struct downset_change *)ch;
	d.nchanges = n;
	d.forms = w->forms;
	d.nforms = w->nforms;
	d.teams = w->teams;
	d.nteams = w->nteams;
	d.h.version = w->nteams ? 2 : 1;
	if (downset_encode(&d, box_pk, sign_sk, buf, len, &err) < 0)
		TEST_FAIL("encode: %s", err.msg);
}

static int apply(struct world *w, const uint8_t *buf, size_t len, struct fs_error *err)
{
	struct pull_stats st = { 0 };
	int r = pull_apply(w->s, &w->en, NULL, buf, len, &st, err);

	if (r == 0) {
		w->seq++;
		changeset_hash(buf, len, w->hash);
	}
	return r;
}

/* The field's value on the device, as JSON text ("" when absent). */
static void value_of(struct world *w, const char *field, char *out, size_t cap)
{
	struct fs_error err = { 0 };
	struct form *f = NULL;
	cJSON *rec = NULL, *v;
	char *text;

	ASSERT_OK(formsrc_load(NULL, "beneficiaries", &f, &err));
	out[0] = '\0';
	if (records_get(w->s, f, REC, &rec, &err) == 0) {
		v = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "fields"), field);
		if (v && (text = cJSON_PrintUnformatted(v))) {
			snprintf(out, cap, "%s", text);
			cJSON_free(text);
		}
	}
	cJSON_Delete(rec);
	form_free(f);
}

static void free_changes(struct downset_change *ch, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cJSON_Delete(ch[i].c.value);
}

/* ---- tests ------------------------------------------------------------ */

/* Only a down-set signed by the pinned HQ key, for this device, sealed to
 * it and next in the chain is applied; anything else changes nothing. */
TEST(pull_apply_checks_key_device_seal_and_chain)
{
	uint8_t other_pk[crypto_sign_PUBLICKEYBYTES], other_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t obox_pk[crypto_box_PUBLICKEYBYTES], obox_sk[crypto_box_SECRETKEYBYTES];
	struct downset_change ch[5];
	struct fs_error err = { 0 };
	struct world w;
	uint8_t *buf = NULL, saved[CHANGESET_HASH_BYTES];
	size_t len;
	char v[256];

	world_open(&w);
	crypto_sign_keypair(other_pk, other_sk);
	crypto_box_keypair(obox_pk, obox_sk);
	ch[0] = change("full_name", "\"Ружичић Ђорђе\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[1] = change("municipality", "\"Sjenica\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[2] = change("status", "\"idp\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[3] = change("household_size", "4", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[4] = change("consent", "true", 0x0193a1b2c3d40000ULL, HQDEV);

	/* Another HQ's key. */
	make(&w, 1, ch, 5, other_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_EQ(apply(&w, buf, len, &err), -FS_EAUTH);
	ASSERT_STR_CONTAINS(err.msg, "not signed by the HQ key pinned at enrolment");
	free(buf);
	/* Sealed to another device's key. */
	make(&w, 1, ch, 5, w.hq_sk, obox_pk, 0, &buf, &len);
	ASSERT_EQ(apply(&w, buf, len, &err), -FS_EAUTH);
	free(buf);
	/* Skipping a sequence. */
	make(&w, 2, ch, 5, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_EQ(apply(&w, buf, len, &err), -EBADMSG);
	ASSERT_STR_CONTAINS(err.msg, "does not follow");
	free(buf);
	value_of(&w, "full_name", v, sizeof(v));
	ASSERT_STR_EQ(v, "");
	/* The real one. */
	make(&w, 1, ch, 5, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	value_of(&w, "full_name", v, sizeof(v));
	ASSERT_STR_EQ(v, "\"Ружичић Ђорђе\"");
	/* A household that came from HQ is in the caseload's search, as
	 * another team's (the search triggers run on a pull's writes too). */
	{
		struct caseload_query q = { .text = "ruzicic djordje" };
		cJSON *res = NULL;
		const cJSON *h;

		ASSERT_OK(caseload_search(w.s, &q, &res, &err));
		h = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "households"), 0);
		ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(res, "households")),
			  1);
		ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(h, "id")->valuestring, REC);
		ASSERT_TRUE(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(h, "mine")));
		cJSON_Delete(res);
	}
	/* The same again: already applied, nothing done. */
	memcpy(saved, w.hash, sizeof(saved));
	w.seq = 0;
	ASSERT_EQ(apply(&w, buf, len, &err), -EALREADY);
	memcpy(w.hash, saved, sizeof(saved));
	w.seq = 1;
	free(buf);
	/* The next one on another chain. */
	free_changes(ch, 5);
	ch[0] = change("household_size", "5", 0x0193a1b2c3d50000ULL, HQDEV);
	make(&w, 2, ch, 1, w.hq_sk, store_identity(w.s)->box_pk, 1, &buf, &len);
	ASSERT_EQ(apply(&w, buf, len, &err), -EBADMSG);
	free(buf);
	value_of(&w, "household_size", v, sizeof(v));
	ASSERT_STR_EQ(v, "4");
	ASSERT_OK(store_check(w.s, &err));
	free_changes(ch, 1);
	store_close(w.s);
}

/* The merge rule, per field: HQ's value only when HQ's write is later
 * than the store's; an unsent local edit is never dropped. */
TEST(pull_apply_keeps_later_local_edits_and_the_outbox)
{
	struct downset_change ch[5];
	struct fs_error err = { 0 };
	struct form *f = NULL;
	struct world w;
	cJSON *edit;
	uint8_t *buf = NULL;
	size_t len;
	char v[256];
	long long pending;
	struct records_stats rs;

	world_open(&w);
	ch[0] = change("full_name", "\"Petrović Ana\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[1] = change("municipality", "\"Sjenica\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[2] = change("status", "\"idp\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[3] = change("household_size", "4", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[4] = change("consent", "true", 0x0193a1b2c3d40000ULL, HQDEV);
	make(&w, 1, ch, 5, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	free(buf);
	free_changes(ch, 5);
	/* An edit here, not yet sent: its clock is the store's, now. */
	ASSERT_OK(formsrc_load(NULL, "beneficiaries", &f, &err));
	edit = cJSON_Parse("{\"household_size\":7}");
	ASSERT_OK(store_begin(w.s, &err));
	ASSERT_OK(records_edit(w.s, f, REC, edit, &err));
	ASSERT_OK(store_commit(w.s, &err));
	cJSON_Delete(edit);
	ASSERT_OK(records_stats(w.s, "beneficiaries", &rs, &err));
	pending = rs.pending;
	ASSERT_EQ(pending, 1);
	/* HQ's older write loses; its newer write on another field wins. */
	ch[0] = change("household_size", "5", 0x0193a1b2c3d50000ULL, HQDEV);
	ch[1] = change("status", "\"refugee\"", 0x0193a1b2c3d50000ULL, HQDEV);
	make(&w, 2, ch, 2, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	free(buf);
	free_changes(ch, 2);
	value_of(&w, "household_size", v, sizeof(v));
	ASSERT_STR_EQ(v, "7");
	value_of(&w, "status", v, sizeof(v));
	ASSERT_STR_EQ(v, "\"refugee\"");
	/* HQ's write later than the local one wins, and the local change
	 * still waits to be sent. */
	ch[0] = change("household_size", "9", store_hlc_next(w.s) + (1ULL << 32), HQDEV);
	make(&w, 3, ch, 1, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	free(buf);
	free_changes(ch, 1);
	value_of(&w, "household_size", v, sizeof(v));
	ASSERT_STR_EQ(v, "9");
	ASSERT_OK(records_stats(w.s, "beneficiaries", &rs, &err));
	ASSERT_EQ(rs.pending, pending);
	/* And a later local edit orders after HQ's write. */
	edit = cJSON_Parse("{\"household_size\":3}");
	ASSERT_OK(store_begin(w.s, &err));
	ASSERT_OK(records_edit(w.s, f, REC, edit, &err));
	ASSERT_OK(store_commit(w.s, &err));
	cJSON_Delete(edit);
	ch[0] = change("household_size", "9", 0x0193a1b2c3d60000ULL, HQDEV);
	make(&w, 4, ch, 1, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	free(buf);
	free_changes(ch, 1);
	value_of(&w, "household_size", v, sizeof(v));
	ASSERT_STR_EQ(v, "3");
	ASSERT_OK(store_check(w.s, &err));
	form_free(f);
	store_close(w.s);
}

/* HQ's visits form at version: the built-in one's fields but notes and
 * gps, and a new choice field, roof; named collection. */
static struct downset_form hq_visits(uint32_t version, const char *collection)
{
	struct downset_form f;
	char text[1024];

	memset(&f, 0, sizeof(f));
	snprintf(f.collection, sizeof(f.collection), "visits");
	f.version = version;
	snprintf(text, sizeof(text),
		 "{\"format\":\"fieldsync-form/1\",\"collection\":\"%s\",\"scope\":"
		 "\"beneficiary_id\",\"fields\":[{\"name\":\"beneficiary_id\",\"type\":\"ref\","
		 "\"collection\":\"beneficiaries\",\"required\":true},{\"name\":\"visit_date\","
		 "\"type\":\"date\",\"required\":true},{\"name\":\"visit_type\",\"type\":"
		 "\"choice\",\"required\":true,\"values\":[\"needs_assessment\"]},{\"name\":"
		 "\"roof\",\"type\":\"choice\",\"values\":[\"sound\",\"leaking\"]}]}",
		 collection);
	f.definition = cJSON_Parse(text);
	ASSERT_TRUE(f.definition != NULL);
	return f;
}

static uint32_t form_version_of(struct world *w, const char *collection, const char *field,
				int *has_field)
{
	struct fs_error err = { 0 };
	struct form *f = NULL;
	uint32_t v;

	ASSERT_OK(devforms_load(w->s, NULL, collection, &f, &err));
	v = form_version(f);
	*has_field = form_field_index(f, field) >= 0;
	form_free(f);
	return v;
}

/* A visit to REC under the device's current visits form, with extra
 * FIELD=VALUE text; the outbox's form version of its changes. */
static int add_visit(struct world *w, const char *extra, long long *ret_version,
		     struct fs_error *err)
{
	char id[UUID_TEXT_LEN + 1], text[512];
	struct form *f = NULL;
	sqlite3_stmt *st = NULL;
	cJSON *fields;
	int r;

	snprintf(text, sizeof(text),
		 "{\"beneficiary_id\":\"%s\",\"visit_date\":\"2026-12-01\","
		 "\"visit_type\":\"needs_assessment\"%s}",
		 REC, extra);
	fields = cJSON_Parse(text);
	ASSERT_TRUE(fields != NULL);
	ASSERT_OK(devforms_load(w->s, NULL, "visits", &f, err));
	ASSERT_OK(store_begin(w->s, err));
	r = records_add(w->s, f, fields, NULL, id, err);
	if (r == 0)
		ASSERT_OK(store_commit(w->s, err));
	else
		store_rollback(w->s);
	cJSON_Delete(fields);
	form_free(f);
	if (r < 0)
		return r;
	ASSERT_EQ(sqlite3_prepare_v2(store_db(w->s),
				     "SELECT min(form_version), "
				     "max(form_version) FROM outbox WHERE record_id = ?1",
				     -1, &st, NULL),
		  SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
	ASSERT_EQ(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
	*ret_version = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* HQ's forms come in signed down-sets; from then on the device validates
 * with them, and every change notes the version it was made under.  A
 * forged form, one filed under another collection, or a broken one is
 * refused with its whole down-set, and changes nothing. */
TEST(pull_takes_hq_forms_and_validates_with_them)
{
	uint8_t other_pk[crypto_sign_PUBLICKEYBYTES], other_sk[crypto_sign_SECRETKEYBYTES];
	struct downset_change ch[5];
	struct downset_form form;
	struct fs_error err = { 0 };
	struct world w;
	uint8_t *buf = NULL;
	size_t len;
	long long version = -1;
	int has = 0;

	world_open(&w);
	crypto_sign_keypair(other_pk, other_sk);
	ch[0] = change("full_name", "\"Стојановић Јелена\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[1] = change("municipality", "\"Sjenica\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[2] = change("status", "\"idp\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[3] = change("household_size", "4", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[4] = change("consent", "true", 0x0193a1b2c3d40000ULL, HQDEV);
	make(&w, 1, ch, 5, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	free(buf);
	free_changes(ch, 5);
	/* Before HQ sends one, the device's own form: version 0, no roof. */
	ASSERT_EQ(form_version_of(&w, "visits", "roof", &has), 0u);
	ASSERT_TRUE(!has);
	ASSERT_EQ(add_visit(&w, ",\"roof\":\"sound\"", &version, &err), -FS_EVALID);
	ASSERT_OK(add_visit(&w, ",\"notes\":\"prvi\"", &version, &err));
	ASSERT_EQ(version, 0);

	/* A form in a down-set signed by another key: refused, nothing
	 * taken. */
	form = hq_visits(2, "visits");
	w.forms = &form;
	w.nforms = 1;
	make(&w, 2, NULL, 0, other_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_EQ(apply(&w, buf, len, &err), -FS_EAUTH);
	free(buf);
	ASSERT_EQ(form_version_of(&w, "visits", "roof", &has), 0u);
	cJSON_Delete(form.definition);
	/* Signed by HQ, but the definition is another collection's, or is
	 * not a form: refused, the chain stays where it was. */
	form = hq_visits(2, "beneficiaries");
	make(&w, 2, NULL, 0, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_EQ(apply(&w, buf, len, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "another collection");
	free(buf);
	cJSON_Delete(form.definition);
	form = hq_visits(2, "visits");
	cJSON_ReplaceItemInObject(form.definition, "format", cJSON_CreateString("nonsense/9"));
	make(&w, 2, NULL, 0, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_EQ(apply(&w, buf, len, &err), -FS_EFORMAT);
	free(buf);
	cJSON_Delete(form.definition);
	ASSERT_EQ(form_version_of(&w, "visits", "roof", &has), 0u);

	/* HQ's version 2: roof is a field now, notes is not. */
	form = hq_visits(2, "visits");
	make(&w, 2, NULL, 0, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	free(buf);
	cJSON_Delete(form.definition);
	w.nforms = 0;
	ASSERT_EQ(form_version_of(&w, "visits", "roof", &has), 2u);
	ASSERT_TRUE(has);
	ASSERT_EQ(form_version_of(&w, "beneficiaries", "full_name", &has), 0u);
	ASSERT_TRUE(has);
	ASSERT_OK(add_visit(&w, ",\"roof\":\"leaking\"", &version, &err));
	ASSERT_EQ(version, 2);
	ASSERT_EQ(add_visit(&w, ",\"notes\":\"drugi\"", &version, &err), -FS_EVALID);
	/* A later down-set without forms keeps version 2. */
	make(&w, 3, NULL, 0, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	free(buf);
	ASSERT_EQ(form_version_of(&w, "visits", "roof", &has), 2u);
	/* The store survives a reopen with HQ's form (store_check). */
	ASSERT_OK(store_check(w.s, &err));
	store_close(w.s);
}

/* A local edit HQ's receipt quarantined no longer holds the field
 * against HQ's value: HQ sends its value again, and the device takes it
 * even at the same clock it held before; a later local edit, not
 * quarantined, holds it again. */
TEST(pull_takes_hq_value_over_a_quarantined_edit)
{
	struct downset_change ch[5];
	struct fs_error err = { 0 };
	struct form *f = NULL;
	struct world w;
	cJSON *edit;
	uint8_t *buf = NULL;
	size_t len;
	char v[256];
	const hlc_t t0 = 0x0193a1b2c3d40000ULL;

	world_open(&w);
	ch[0] = change("full_name", "\"Đorđević Luka\"", t0, HQDEV);
	ch[1] = change("municipality", "\"Sjenica\"", t0, HQDEV);
	ch[2] = change("status", "\"idp\"", t0, HQDEV);
	ch[3] = change("household_size", "4", t0, HQDEV);
	ch[4] = change("consent", "true", t0, HQDEV);
	make(&w, 1, ch, 5, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	free(buf);
	free_changes(ch, 5);
	ASSERT_OK(formsrc_load(NULL, "beneficiaries", &f, &err));
	for (int round = 0; round < 3; round++) {
		/* 0: a local edit; 1: HQ quarantined it; 2: a newer edit. */
		if (round != 1) {
			edit = cJSON_Parse(round ? "{\"household_size\":8}"
						 : "{\"household_size\":7}");
			ASSERT_OK(store_begin(w.s, &err));
			ASSERT_OK(records_edit(w.s, f, REC, edit, &err));
			ASSERT_OK(store_commit(w.s, &err));
			cJSON_Delete(edit);
		} else {
			ASSERT_EQ(sqlite3_exec(store_db(w.s),
					       "UPDATE outbox SET quarantined = 1 WHERE "
					       "field = 'household_size'",
					       NULL, NULL, NULL),
				  SQLITE_OK);
		}
		ch[0] = change("household_size", "4", t0, HQDEV);
		make(&w, w.seq + 1, ch, 1, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
		ASSERT_OK(apply(&w, buf, len, &err));
		free(buf);
		free_changes(ch, 1);
		value_of(&w, "household_size", v, sizeof(v));
		ASSERT_STR_EQ(v, round == 0 ? "7" : round == 1 ? "4" : "8");
	}
	ASSERT_OK(store_check(w.s, &err));
	form_free(f);
	store_close(w.s);
}

/* Does text appear in any page of the store, as the store's own VFS
 * decrypts it (after a checkpoint: the WAL is empty)?  What a thief with
 * the key would find, free pages and free space in pages included. */
static int in_decrypted_pages(struct store *s, const char *text)
{
	struct fs_error err = { 0 };
	sqlite3_file *fp = NULL;
	sqlite3_int64 size = 0;
	unsigned char page[4096];
	int found = 0;

	ASSERT_OK(store_checkpoint(s, &err));
	ASSERT_EQ(sqlite3_file_control(store_db(s), "main", SQLITE_FCNTL_FILE_POINTER, &fp),
		  SQLITE_OK);
	ASSERT_EQ(fp->pMethods->xFileSize(fp, &size), SQLITE_OK);
	ASSERT_GT(size, 0);
	for (sqlite3_int64 off = 0; off < size && !found; off += (sqlite3_int64)sizeof(page)) {
		ASSERT_EQ(fp->pMethods->xRead(fp, page, sizeof(page), off), SQLITE_OK);
		found = memmem(page, sizeof(page), text, strlen(text)) != NULL;
	}
	return found;
}

/* A household that leaves the scope is purged for real: no page of the
 * store holds its name afterwards, even decrypted.  The control, the
 * same purge with secure_delete off, leaves the name behind: so the scan
 * would see it. */
TEST(pull_purge_overwrites_the_record)
{
	static const char *const names[2] = { "Purgeović Zlatibor", "Ostavljić Radmila" };
	struct downset_change ch[5];
	struct fs_error err = { 0 };
	struct world w;
	uint8_t *buf = NULL;
	size_t len;
	char v[256];

	world_open(&w);
	for (int control = 0; control < 2; control++) {
		char name[64];
		const hlc_t t = 0x0193a1b2c3d40000ULL + ((hlc_t)control << 20);

		if (control)
			ASSERT_EQ(sqlite3_exec(store_db(w.s), "PRAGMA secure_delete=OFF", NULL,
					       NULL, NULL),
				  SQLITE_OK);
		snprintf(name, sizeof(name), "\"%s\"", names[control]);
		ch[0] = change("full_name", name, t, HQDEV);
		ch[1] = change("municipality", "\"Sjenica\"", t, HQDEV);
		ch[2] = change("status", "\"idp\"", t, HQDEV);
		ch[3] = change("household_size", "4", t, HQDEV);
		ch[4] = change("consent", "true", t, HQDEV);
		make(&w, w.seq + 1, ch, 5, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
		ASSERT_OK(apply(&w, buf, len, &err));
		free(buf);
		free_changes(ch, 5);
		ASSERT_TRUE(in_decrypted_pages(w.s, names[control]));
		/* A visit to it, begun here and not finished. */
		{
			struct form *vf = fixture_form("visits");
			char id[UUID_TEXT_LEN + 1];
			cJSON *o = cJSON_Parse("{\"beneficiary_id\":\"" REC "\"}");

			ASSERT_OK(drafts_save(w.s, vf, NULL, o, id, NULL, &err));
			cJSON_Delete(o);
			form_free(vf);
		}
		ASSERT_EQ(fixture_count(w.s, "SELECT count(*) FROM drafts"), 1);
		/* It moves to Tutin, outside this device's scope. */
		ch[0] = change("municipality", "\"Tutin\"", t + 1, HQDEV);
		make(&w, w.seq + 1, ch, 1, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
		ASSERT_OK(apply(&w, buf, len, &err));
		free(buf);
		free_changes(ch, 1);
		value_of(&w, "full_name", v, sizeof(v));
		ASSERT_STR_EQ(v, "");
		ASSERT_EQ(in_decrypted_pages(w.s, names[control]), control);
		/* The draft that named it went with it. */
		ASSERT_EQ(fixture_count(w.s, "SELECT count(*) FROM drafts"), 0);
	}
	store_close(w.s);
}

/* Down-set version 2 names each writer's team; a household's page shows
 * it beside each visit, this device's own from its enrolment. */
TEST(pull_names_the_team_of_each_writer)
{
	struct downset_change ch[6];
	struct downset_team teams[1];
	struct fs_error err = { 0 };
	struct form *v = fixture_form("visits");
	char vid[UUID_TEXT_LEN + 1];
	const cJSON *visits, *x;
	struct world w;
	cJSON *house = NULL, *mine;
	uint8_t *buf = NULL;
	size_t len;
	int seen = 0;

	world_open(&w);
	ASSERT_OK(store_meta_put(w.s, "team", "Tim Sjenica", &err));
	ch[0] = change("full_name", "\"Petrović Ana\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[1] = change("municipality", "\"Sjenica\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[2] = change("status", "\"idp\"", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[3] = change("household_size", "4", 0x0193a1b2c3d40000ULL, HQDEV);
	ch[4] = change("consent", "true", 0x0193a1b2c3d40000ULL, HQDEV);
	memset(teams, 0, sizeof(teams));
	snprintf(teams[0].device, sizeof(teams[0].device), "%s", HQDEV);
	snprintf(teams[0].team, sizeof(teams[0].team), "Tim Бујановац");
	w.teams = teams;
	w.nteams = 1;
	make(&w, 1, ch, 5, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	free(buf);
	free_changes(ch, 5);
	/* A visit recorded here. */
	mine = cJSON_Parse("{\"beneficiary_id\":\"" REC "\",\"visit_date\":\"2026-11-20\","
			   "\"visit_type\":\"needs_assessment\"}");
	ASSERT_OK(store_begin(w.s, &err));
	ASSERT_OK(records_add(w.s, v, mine, NULL, vid, &err));
	ASSERT_OK(store_commit(w.s, &err));
	cJSON_Delete(mine);
	ASSERT_OK(caseload_household(w.s, REC, &house, &err));
	ASSERT_STR_EQ(cJSON_GetObjectItem(house, "team")->valuestring, "Tim Бујановац");
	visits = cJSON_GetObjectItem(house, "visits");
	cJSON_ArrayForEach(x, visits)
	{
		ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(x, "mine")));
		ASSERT_STR_EQ(cJSON_GetObjectItem(x, "team")->valuestring, "Tim Sjenica");
		seen++;
	}
	ASSERT_EQ(seen, 1);
	cJSON_Delete(house);
	/* HQ renames the team: the latest word wins. */
	snprintf(teams[0].team, sizeof(teams[0].team), "Tim Jug");
	ch[5] = change("status", "\"refugee\"", 0x0193a1b2c3d40001ULL, HQDEV);
	make(&w, 2, &ch[5], 1, w.hq_sk, store_identity(w.s)->box_pk, 0, &buf, &len);
	ASSERT_OK(apply(&w, buf, len, &err));
	free(buf);
	free_changes(&ch[5], 1);
	ASSERT_OK(caseload_household(w.s, REC, &house, &err));
	ASSERT_STR_EQ(cJSON_GetObjectItem(house, "team")->valuestring, "Tim Jug");
	cJSON_Delete(house);
	form_free(v);
	store_close(w.s);
}
