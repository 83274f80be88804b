/* test_push.c - agent/push.c and agent/enroll.c behind a fake transport.
 *
 * The fake plays HQ: it opens what it is sent and answers with canned
 * statuses and real receipts signed by a test HQ key (or a wrong one).
 * Only the network is fake; receipt, JSON and store handling are real.
 *
 * Sections: helpers; the fake HQ; push tests; enrolment tests; the
 * libcurl transport on a real socket.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/enroll.h"
#include "agent/hqcurl.h"
#include "agent/hqhistory.h"
#include "agent/pack.h"
#include "agent/push.h"
#include "agent/records.h"
#include "agent/store.h"
#include "sync/changeset.h"
#include "sync/merkle.h"
#include "sync/note.h"
#include "sync/receipt.h"
#include "sync/token.h"
#include "tests/fixture.h"
#include "tests/test.h"

/* ---- helpers ---------------------------------------------------------- */

static void ph_add(struct store *s, int n)
{
	struct fs_error err = { 0 };
	struct form *f = fixture_form("beneficiaries");

	ASSERT_OK(store_begin(s, &err));
	for (int i = 0; i < n; i++) {
		char id[UUID_TEXT_LEN + 1];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "full_name", i % 2 ? "Ружичић Ђорђе" : "Ružičić Đorđe");
		cJSON_AddStringToObject(o, "municipality", "Bujanovac");
		cJSON_AddTrueToObject(o, "consent");
		if (records_add(s, f, o, NULL, id, &err) < 0)
			TEST_FAIL("records_add: %s", err.msg);
		cJSON_Delete(o);
	}
	ASSERT_OK(store_commit(s, &err));
	form_free(f);
}

/* ---- the fake HQ ------------------------------------------------------- */

enum fake_mode {
	FAKE_OK,	 /* 200 with a receipt signed by the HQ key */
	FAKE_WRONG_KEY,	 /* 200 with a receipt signed by another key */
	FAKE_WRONG_SEQ,	 /* 200, HQ key, but the receipt names seq + 1 */
	FAKE_REVOKED,	 /* 403 */
	FAKE_OVERLOADED, /* 503 */
	FAKE_DOWN,	 /* the transport cannot connect */
	FAKE_QUARANTINE, /* 200, change 0 of every set quarantined */
	FAKE_GAP_AHEAD,	 /* 409, expecting a sequence beyond any we sent */
};

struct fake_hq {
	struct hqlink base; /* first: the seam */
	enum fake_mode mode;
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], sign_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t other_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES], box_sk[crypto_box_SECRETKEYBYTES];
	uint64_t next_seq;    /* the sequence HQ expects; gaps get 409 */
	uint64_t seen[64];    /* sequences posted, in order */
	uint8_t versions[64]; /* and their change set versions */
	int names_version;    /* "changeset_version" in 200 answers; 0: none */
	int calls;
	char url[256], type[64];
};

static void fake_answer(struct hqlink_response *ret, long status, const char *body)
{
	ret->status = status;
	ret->body = strdup(body);
	ASSERT_TRUE(ret->body != NULL);
	ret->len = strlen(body);
}

static int fake_post(struct hqlink *t, const char *url, const char *content_type,
		     const uint8_t *body, size_t len, const char *tls_pin,
		     struct hqlink_response *ret, struct fs_error *err)
{
	struct fake_hq *hq = (struct fake_hq *)t;
	struct changeset_header h;
	struct receipt rc = { 0 };
	uint32_t q0 = 0;
	uint8_t *rbuf = NULL;
	size_t rlen = 0;
	char b64[4096], json[4400];

	(void)tls_pin;
	snprintf(hq->url, sizeof(hq->url), "%s", url);
	snprintf(hq->type, sizeof(hq->type), "%s", content_type);
	if (hq->mode == FAKE_DOWN)
		return fs_error_set(err, -EHOSTUNREACH, "HQ unreachable at %s: refused", url);
	ASSERT_OK(changeset_parse(body, len, &h, NULL));
	ASSERT_LT(hq->calls, 64);
	hq->versions[hq->calls] = h.version;
	hq->seen[hq->calls++] = h.seq;
	/* Whatever version it came in, HQ reads the changes. */
	{
		struct change *ch = NULL;
		size_t n = 0;

		ASSERT_OK(changeset_open(body, len, hq->box_pk, hq->box_sk, &ch, &n, NULL));
		ASSERT_EQ(n, h.count);
		changes_free(ch, n);
	}
	if (hq->mode == FAKE_REVOKED) {
		fake_answer(ret, 403, "{\"error\":\"revoked\",\"message\":\"device revoked\"}");
		return 0;
	}
	if (hq->mode == FAKE_OVERLOADED) {
		fake_answer(ret, 503, "{\"error\":\"overloaded\",\"message\":\"busy\"}");
		ret->retry_after = 7;
		return 0;
	}
	if (hq->mode == FAKE_GAP_AHEAD)
		hq->next_seq = h.seq + 5;
	if (h.seq != hq->next_seq && (h.seq > hq->next_seq || hq->mode == FAKE_GAP_AHEAD)) {
		snprintf(json, sizeof(json),
			 "{\"error\":\"sequence_gap\",\"message\":\"gap\","
			 "\"expected_seq\":%llu}",
			 (unsigned long long)hq->next_seq);
		fake_answer(ret, 409, json);
		return 0;
	}
	if (h.seq == hq->next_seq)
		hq->next_seq++;
	memcpy(rc.device, h.device, sizeof(rc.device));
	rc.seq = h.seq + (hq->mode == FAKE_WRONG_SEQ);
	changeset_hash(body, len, rc.hash);
	rc.accepted_ms = 1700000000000ULL;
	rc.merged = h.count;
	if (hq->mode == FAKE_QUARANTINE) {
		rc.quarantined = 1;
		rc.index = &q0;
		rc.merged--;
	}
	ASSERT_OK(receipt_encode(&rc, hq->mode == FAKE_WRONG_KEY ? hq->other_sk : hq->sign_sk,
				 &rbuf, &rlen));
	sodium_bin2base64(b64, sizeof(b64), rbuf, rlen, sodium_base64_VARIANT_ORIGINAL);
	free(rbuf);
	snprintf(json, sizeof(json),
		 "{\"receipt\":\"%s\",\"seq\":%llu,\"merged\":%u,"
		 "\"quarantined\":[]%s%.0d}",
		 b64, (unsigned long long)h.seq, rc.merged,
		 hq->names_version ? ",\"changeset_version\":" : "", hq->names_version);
	fake_answer(ret, 200, json);
	return 0;
}

static void fake_destroy(struct hqlink *t)
{
	(void)t;
}

static void fake_init(struct fake_hq *hq, enum fake_mode mode)
{
	uint8_t other_pk[crypto_sign_PUBLICKEYBYTES];

	memset(hq, 0, sizeof(*hq));
	hq->base.post = fake_post;
	hq->base.destroy = fake_destroy;
	hq->mode = mode;
	hq->next_seq = 1;
	crypto_sign_keypair(hq->sign_pk, hq->sign_sk);
	crypto_sign_keypair(other_pk, hq->other_sk);
	crypto_box_keypair(hq->box_pk, hq->box_sk);
}

static void fake_target(const struct fake_hq *hq, struct hqlink_target *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->url, sizeof(t->url), "http://127.0.0.1:9");
	memcpy(t->hq_sign_pk, hq->sign_pk, sizeof(t->hq_sign_pk));
}

/* A store with n people packed into sets of 4 changes for hq. */
static struct store *ph_packed(const struct fake_hq *hq, int n, unsigned long long *ret_sets)
{
	struct fs_error err = { 0 };
	struct store *s = fixture_store(NULL, NULL, 1);

	ph_add(s, n);
	ASSERT_OK(pack_outbox(s, hq->box_pk, 4, 0, ret_sets, &err));
	return s;
}

/* ---- push tests -------------------------------------------------------- */

static long long sqlite_heap_peak_since(long long *ret_now)
{
	sqlite3_int64 cur = 0, hi = 0;

	ASSERT_EQ(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, 1), SQLITE_OK);
	*ret_now = cur;
	return hi;
}

/* What is not yet signed for is counted and dated without holding the
 * matching rows in memory: a status or a report during a big push
 * costs no more than the pages it reads (a count over an OR of the two
 * halves held 24 bytes per pending change: 9.7 MiB at 400,000). */
TEST(push_pending_counted_in_bounded_memory)
{
	struct store_options opt = { .cache_mib = 1 };
	struct store *s = fixture_store(NULL, &opt, 1);
	struct fs_error err = { 0 };
	unsigned long long changes = 0, bytes = 0;
	long long before, after, cache0, cache1, peak;
	struct records_stats rs;
	uint64_t oldest = 0;
	int hi = 0, c;

	ph_add(s, 1);
	/* 200,000 changes to that record: the first half packed in set 1,
	 * which HQ has not signed for, the second half not packed yet. */
	ASSERT_EQ(sqlite3_exec(store_db(s),
			       "BEGIN;"
			       "INSERT INTO outgoing(seq, hash, body, changes) VALUES (1, x'00', "
			       "x'00', 100000);"
			       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
			       " WHERE i < 200000) INSERT INTO outbox(record_id, collection, field,"
			       " value, hlc, changeset) SELECT (SELECT id FROM records),"
			       " 'beneficiaries', 'notes', NULL, (1795000000000 + i) << 16,"
			       " CASE WHEN i <= 100000 THEN 1 END FROM n;"
			       "DELETE FROM outbox WHERE field <> 'notes';"
			       "COMMIT;",
			       NULL, NULL, NULL),
		  SQLITE_OK);
	ASSERT_EQ(sqlite3_db_status(store_db(s), SQLITE_DBSTATUS_CACHE_USED, &c, &hi, 0),
		  SQLITE_OK);
	cache0 = c;
	sqlite_heap_peak_since(&before);
	ASSERT_OK(records_stats(s, "beneficiaries", &rs, &err));
	ASSERT_OK(push_oldest_unsent(s, &oldest, &err));
	ASSERT_OK(push_backlog(s, &changes, &bytes, &err));
	peak = sqlite_heap_peak_since(&after);
	ASSERT_EQ(sqlite3_db_status(store_db(s), SQLITE_DBSTATUS_CACHE_USED, &c, &hi, 0),
		  SQLITE_OK);
	cache1 = c;
	ASSERT_EQ(rs.pending, 200000);
	ASSERT_EQ(oldest, 1795000000001ULL);
	ASSERT_EQ(changes, 200000);
	/* The pages read are SQLite's to keep (the cache, 1 MiB here); the
	 * rest is what the statements held while they ran. */
	ASSERT_TRUE(peak > before);
	ASSERT_TRUE(peak - before - (cache1 - cache0) < 512 * 1024);
	/* HQ signs for set 1: half is left, the later half. */
	ASSERT_EQ(sqlite3_exec(store_db(s), "UPDATE outgoing SET receipt = x'01' WHERE seq = 1",
			       NULL, NULL, NULL),
		  SQLITE_OK);
	ASSERT_OK(records_stats(s, "beneficiaries", &rs, &err));
	ASSERT_OK(push_oldest_unsent(s, &oldest, &err));
	ASSERT_EQ(rs.pending, 100000);
	ASSERT_EQ(oldest, 1795000000000ULL + 100001);
	store_close(s);
}

/* Sets are written in the version HQ's last answer named: version 4
 * once HQ says so, 5 (the highest this agent writes) once a later HQ
 * names 6, version 3 before and after an HQ that says nothing. */
TEST(push_writes_the_version_hq_names)
{
	struct fake_hq hq;
	struct hqlink_target tg;
	struct push_stats st = { 0 };
	struct fs_error err = { 0 };
	unsigned long long sets = 0;
	int calls;
	struct store *s;

	fake_init(&hq, FAKE_OK);
	fake_target(&hq, &tg);
	hq.names_version = 4;
	s = ph_packed(&hq, 2, &sets);
	ASSERT_OK(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err));
	ASSERT_EQ(st.sets, sets);
	for (int i = 0; i < hq.calls; i++)
		ASSERT_EQ(hq.versions[i], CHANGESET_VERSION);
	/* HQ named version 4: the next sets are written in it. */
	calls = hq.calls;
	ph_add(s, 2);
	ASSERT_OK(pack_outbox(s, hq.box_pk, 4, 0, &sets, &err));
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outgoing WHERE substr(body, 5, 1) = "
				   "x'04'"),
		  (long long)sets);
	/* A later HQ names 6: what is packed goes as it is, then 5. */
	hq.names_version = 6;
	ASSERT_OK(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err));
	ASSERT_EQ(hq.calls, calls + (int)sets);
	for (int i = calls; i < hq.calls; i++)
		ASSERT_EQ(hq.versions[i], CHANGESET_VERSION_GROUPED);
	calls = hq.calls;
	ph_add(s, 2);
	ASSERT_OK(pack_outbox(s, hq.box_pk, 4, 0, &sets, &err));
	ASSERT_GT(sets, 0);
	/* An HQ rolled back, or set to [server] device_changeset_version = 3,
	 * names 3 or nothing: what is packed goes as it is, then 3 again. */
	hq.names_version = 0;
	ASSERT_OK(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err));
	ASSERT_EQ(hq.calls, calls + (int)sets);
	for (int i = calls; i < hq.calls; i++)
		ASSERT_EQ(hq.versions[i], CHANGESET_VERSION_COLUMNS);
	calls = hq.calls;
	ph_add(s, 1);
	ASSERT_OK(pack_outbox(s, hq.box_pk, 4, 0, &sets, &err));
	ASSERT_OK(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err));
	ASSERT_GT(hq.calls, calls);
	for (int i = calls; i < hq.calls; i++)
		ASSERT_EQ(hq.versions[i], CHANGESET_VERSION);
	store_close(s);
}

TEST(push_marks_only_verified_receipts)
{
	struct fake_hq hq;
	struct hqlink_target tg;
	struct push_stats st = { 0 };
	struct fs_error err = { 0 };
	unsigned long long sets = 0, pending = 0, acked = 0;
	struct store *s;

	fake_init(&hq, FAKE_OK);
	fake_target(&hq, &tg);
	s = ph_packed(&hq, 3, &sets);
	ASSERT_GT(sets, 1);
	if (push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err) < 0)
		TEST_FAIL("push_pending: %s", err.msg);
	ASSERT_EQ(st.sets, sets);
	ASSERT_EQ(st.changes, fixture_count(s, "SELECT count(*) FROM outbox"));
	ASSERT_EQ(st.quarantined, 0);
	ASSERT_EQ(hq.calls, (int)sets);
	for (int i = 0; i < hq.calls; i++)
		ASSERT_EQ(hq.seen[i], i + 1);
	ASSERT_STR_EQ(hq.url, "http://127.0.0.1:9/v1/changesets");
	ASSERT_STR_EQ(hq.type, "application/vnd.fieldsync.changeset");
	ASSERT_EQ(fixture_count(s,
				"SELECT count(*) FROM outgoing WHERE receipt IS NULL OR acked_at "
				"IS NULL"),
		  0);
	ASSERT_OK(push_count(s, &pending, &acked, &err));
	ASSERT_EQ(pending, 0);
	ASSERT_EQ(acked, sets);

	/* A second push sends nothing. */
	memset(&st, 0, sizeof(st));
	ASSERT_OK(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err));
	ASSERT_EQ(st.sets, 0);
	ASSERT_EQ(hq.calls, (int)sets);

	/* Quarantined changes are counted from the signed receipt. */
	ph_add(s, 1);
	ASSERT_OK(pack_outbox(s, hq.box_pk, 4, 0, &sets, &err));
	hq.mode = FAKE_QUARANTINE;
	ASSERT_OK(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err));
	ASSERT_EQ(st.quarantined, st.sets);
	ASSERT_GT(st.sets, 0);
	/* ... and marked in the outbox: the first change of each set. */
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox WHERE quarantined"),
		  (long long)st.sets);
	ASSERT_EQ(fixture_count(
			  s, "SELECT count(*) FROM outbox o WHERE quarantined AND seq != (SELECT "
			     "min(seq) FROM outbox WHERE changeset = o.changeset)"),
		  0);
	store_close(s);
}

TEST(push_rejects_bad_receipts)
{
	static const enum fake_mode modes[] = { FAKE_WRONG_KEY, FAKE_WRONG_SEQ };
	struct hqlink_target tg;
	struct fake_hq hq;

	for (size_t m = 0; m < 2; m++) {
		struct push_stats st = { 0 };
		struct fs_error err = { 0 };
		unsigned long long sets = 0;
		struct store *s;
		char dir[4096];

		fake_init(&hq, modes[m]);
		fake_target(&hq, &tg);
		s = ph_packed(&hq, 2, &sets);
		ASSERT_EQ(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err), -FS_EAUTH);
		ASSERT_STR_CONTAINS(err.msg, "receipt");
		ASSERT_STR_CONTAINS(err.msg, "not marked as sent");
		ASSERT_EQ(hq.calls, 1);
		ASSERT_EQ(st.sets, 0);
		ASSERT_EQ(
			fixture_count(s, "SELECT count(*) FROM outgoing WHERE receipt IS NOT NULL"),
			0);
		store_close(s);
		snprintf(dir, sizeof(dir), "rm -rf '%s'/*", test_tmpdir());
		ASSERT_EQ(system(dir), 0);
	}
}

TEST(push_revoked_overloaded_unreachable)
{
	struct hqlink_target tg;
	struct fake_hq hq;
	struct push_stats st = { 0 };
	struct fs_error err = { 0 };
	unsigned long long sets = 0;
	struct store *s;

	fake_init(&hq, FAKE_REVOKED);
	fake_target(&hq, &tg);
	s = ph_packed(&hq, 2, &sets);
	ASSERT_EQ(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err), -EACCES);
	ASSERT_STR_CONTAINS(err.msg, "revoked");
	ASSERT_EQ(hq.calls, 1); /* stops at the first refusal */

	hq.mode = FAKE_OVERLOADED;
	ASSERT_EQ(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err), -EBUSY);
	ASSERT_STR_CONTAINS(err.msg, "is overloaded; retry later");
	ASSERT_EQ(st.retry_after, 7); /* HQ's Retry-After reaches the caller */

	hq.mode = FAKE_DOWN;
	ASSERT_EQ(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err), -EHOSTUNREACH);
	ASSERT_STR_CONTAINS(err.msg, "unreachable");
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outgoing WHERE receipt IS NOT NULL"), 0);
	ASSERT_EQ(st.sets, 0);

	/* HQ back: everything goes, in order. */
	hq.mode = FAKE_OK;
	hq.calls = 0;
	ASSERT_OK(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err));
	ASSERT_EQ(st.sets, sets);
	store_close(s);
}

TEST(push_sequence_gap_resends_what_hq_lost)
{
	struct hqlink_target tg;
	struct fake_hq hq;
	struct push_stats st = { 0 };
	struct fs_error err = { 0 };
	unsigned long long sets = 0, more = 0;
	struct store *s;

	fake_init(&hq, FAKE_OK);
	fake_target(&hq, &tg);
	s = ph_packed(&hq, 6, &sets);
	ASSERT_GE(sets, 4);
	ASSERT_OK(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err));
	/* HQ restored from a backup: it lost every set from 3 on. */
	hq.next_seq = 3;
	hq.calls = 0;
	ph_add(s, 1);
	ASSERT_OK(pack_outbox(s, hq.box_pk, 100, 0, &more, &err));
	ASSERT_EQ(more, 1);
	memset(&st, 0, sizeof(st));
	if (push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err) < 0)
		TEST_FAIL("push_pending: %s", err.msg);
	ASSERT_EQ(hq.seen[0], sets + 1);	 /* refused with a gap ... */
	for (uint64_t q = 3; q <= sets + 1; q++) /* ... then 3 onwards again */
		ASSERT_EQ(hq.seen[q - 2], q);
	ASSERT_EQ(hq.calls, (int)(sets + 1 - 3 + 2));
	ASSERT_EQ(hq.next_seq, sets + 2);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outgoing WHERE receipt IS NULL"), 0);

	/* HQ expecting a set this device never made is an error, not a loop. */
	ph_add(s, 1);
	ASSERT_OK(pack_outbox(s, hq.box_pk, 100, 0, &more, &err));
	hq.mode = FAKE_GAP_AHEAD;
	hq.calls = 0;
	ASSERT_EQ(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err), -EBADMSG);
	ASSERT_STR_CONTAINS(err.msg, "expects change set");
	ASSERT_EQ(hq.calls, 1);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outgoing WHERE receipt IS NULL"), 1);
	store_close(s);
}

TEST(push_drop_acked_keeps_chain_and_receipts)
{
	struct hqlink_target tg;
	struct fake_hq hq;
	struct push_stats st = { 0 };
	struct fs_error err = { 0 };
	unsigned long long sets = 0, more = 0;
	struct store *s;

	fake_init(&hq, FAKE_OK);
	fake_target(&hq, &tg);
	s = ph_packed(&hq, 6, &sets);
	ASSERT_GE(sets, 4);
	/* Nothing acknowledged yet: nothing is dropped. */
	ASSERT_OK(push_drop_acked(s, &err));
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outgoing WHERE length(body) = 0"), 0);
	ASSERT_OK(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err));
	ASSERT_OK(push_drop_acked(s, &err));
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outgoing WHERE length(body) = 0"),
		  (long long)sets);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outgoing WHERE receipt IS NULL OR"
				   " length(hash) != 32"),
		  0);
	/* The chain goes on from the dropped sets' hashes. */
	ph_add(s, 1);
	ASSERT_OK(pack_outbox(s, hq.box_pk, 100, 0, &more, &err));
	ASSERT_EQ(more, 1);
	memset(&st, 0, sizeof(st));
	ASSERT_OK(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err));
	ASSERT_EQ(st.sets, 1);
	/* HQ lost sets it had acknowledged: a dropped one cannot go again,
	 * and the device says why instead of calling its store corrupt. */
	hq.next_seq = 2;
	ph_add(s, 1);
	ASSERT_OK(pack_outbox(s, hq.box_pk, 100, 0, &more, &err));
	ASSERT_EQ(push_pending(s, &tg, &hq.base, NULL, NULL, &st, &err), -EBADMSG);
	ASSERT_STR_CONTAINS(err.msg, "no longer holds");
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outgoing WHERE receipt IS NULL"), 1);
	store_close(s);
}

/* ---- enrolment tests ------------------------------------------------------ */

enum fake_enroll_mode { ENROLL_OK, ENROLL_WRONG_KEYS, ENROLL_BAD_TOKEN };

struct fake_enroll {
	struct hqlink base; /* first: the seam */
	enum fake_enroll_mode mode;
	struct enroll_token tok; /* what HQ issued */
	struct fake_hq hq;	 /* HQ's keys */
	int calls, proof_ok;
	char url[256], pin[HQLINK_PIN_MAX];
};

static int enroll_post(struct hqlink *t, const char *url, const char *content_type,
		       const uint8_t *body, size_t len, const char *tls_pin,
		       struct hqlink_response *ret, struct fs_error *err)
{
	struct fake_enroll *fe = (struct fake_enroll *)t;
	uint8_t spk[crypto_sign_PUBLICKEYBYTES], bpk[crypto_box_PUBLICKEYBYTES];
	uint8_t sig[crypto_sign_BYTES], msg[TOKEN_ENROLL_MSG_BYTES];
	uint8_t other_sign[crypto_sign_PUBLICKEYBYTES], other_sk[crypto_sign_SECRETKEYBYTES];
	char a[64], b[64], json[512], text[TOKEN_TEXT_MAX];
	cJSON *o = cJSON_ParseWithLength((const char *)body, len);
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(o, "device");
	const cJSON *tk = cJSON_GetObjectItemCaseSensitive(o, "token");

	(void)err;
	fe->calls++;
	snprintf(fe->url, sizeof(fe->url), "%s", url);
	snprintf(fe->pin, sizeof(fe->pin), "%s", tls_pin ? tls_pin : "");
	ASSERT_STR_EQ(content_type, "application/json");
	ASSERT_TRUE(cJSON_IsObject(o) && cJSON_IsString(dev) && cJSON_IsString(tk));
	token_format(&fe->tok, text);
	ASSERT_STR_EQ(tk->valuestring, text);
	ASSERT_OK(hqlink_json_base64(o, "sign_pk", spk, sizeof(spk), sizeof(spk), NULL));
	ASSERT_OK(hqlink_json_base64(o, "box_pk", bpk, sizeof(bpk), sizeof(bpk), NULL));
	ASSERT_OK(hqlink_json_base64(o, "proof", sig, sizeof(sig), sizeof(sig), NULL));
	token_enroll_message(fe->tok.secret, spk, bpk, msg);
	fe->proof_ok = crypto_sign_verify_detached(sig, msg, sizeof(msg), spk) == 0;
	{
		char id[IDENTITY_ID_HEXLEN + 1];

		identity_device_id(spk, id);
		fe->proof_ok &= !strcmp(id, dev->valuestring);
	}
	if (fe->mode == ENROLL_BAD_TOKEN || !fe->proof_ok) {
		fake_answer(ret, 401, "{\"error\":\"bad_token\",\"message\":\"unknown token\"}");
		cJSON_Delete(o);
		return 0;
	}
	crypto_sign_keypair(other_sign, other_sk);
	sodium_bin2base64(a, sizeof(a), fe->mode == ENROLL_WRONG_KEYS ? other_sign : fe->hq.sign_pk,
			  crypto_sign_PUBLICKEYBYTES, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b, sizeof(b), fe->hq.box_pk, crypto_box_PUBLICKEYBYTES,
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(json, sizeof(json),
		 "{\"device\":\"%s\",\"team\":\"Tim 3\",\"municipality\":"
		 "\"Бујановац\",\"hq_sign_pk\":\"%s\",\"hq_box_pk\":\"%s\"}",
		 dev->valuestring, a, b);
	fake_answer(ret, 200, json);
	cJSON_Delete(o);
	return 0;
}

static void fake_enroll_init(struct fake_enroll *fe, enum fake_enroll_mode mode, int pin)
{
	memset(fe, 0, sizeof(*fe));
	fake_init(&fe->hq, FAKE_OK);
	fe->base.post = enroll_post;
	fe->base.destroy = fake_destroy;
	fe->mode = mode;
	randombytes_buf(fe->tok.secret, sizeof(fe->tok.secret));
	token_hq_fingerprint(fe->hq.sign_pk, fe->hq.box_pk, fe->tok.hq_fp);
	if (pin) {
		fe->tok.has_tls_pin = 1;
		memset(fe->tok.tls_pin, 0xab, sizeof(fe->tok.tls_pin));
	}
}

TEST(enroll_checks_hq_fingerprint_and_stores_keys)
{
	struct fake_enroll fe;
	struct enrolment e, back;
	struct fs_error err = { 0 };
	char text[TOKEN_TEXT_MAX], secret_b64[64];
	struct store *s = fixture_store(NULL, NULL, 1);

	/* HQ answering with keys other than the token's: nothing stored. */
	fake_enroll_init(&fe, ENROLL_WRONG_KEYS, 0);
	token_format(&fe.tok, text);
	ASSERT_EQ(enroll_device(s, "http://127.0.0.1:8080/", text, &fe.base, &e, &err), -FS_EAUTH);
	ASSERT_STR_CONTAINS(err.msg, "fingerprint");
	ASSERT_TRUE(fe.proof_ok);
	ASSERT_EQ(enroll_load(s, &back, &err), -FS_ENOTFOUND);

	/* A refused token. */
	fake_enroll_init(&fe, ENROLL_BAD_TOKEN, 0);
	token_format(&fe.tok, text);
	ASSERT_EQ(enroll_device(s, "http://127.0.0.1:8080", text, &fe.base, &e, &err), -EACCES);
	ASSERT_EQ(enroll_load(s, &back, &err), -FS_ENOTFOUND);

	/* URLs: plain http only on loopback; a pinned token needs https. */
	fake_enroll_init(&fe, ENROLL_OK, 0);
	token_format(&fe.tok, text);
	ASSERT_EQ(enroll_device(s, "http://hq.example.org", text, &fe.base, &e, &err), -FS_EUSAGE);
	ASSERT_EQ(enroll_device(s, "ftp://127.0.0.1", text, &fe.base, &e, &err), -FS_EUSAGE);
	ASSERT_EQ(enroll_device(s, "http://127.0.0.1:1", "FS1-nonsense", &fe.base, &e, &err),
		  -FS_EFORMAT);
	ASSERT_EQ(fe.calls, 0);
	fake_enroll_init(&fe, ENROLL_OK, 1);
	token_format(&fe.tok, text);
	ASSERT_EQ(enroll_device(s, "http://127.0.0.1:8080", text, &fe.base, &e, &err), -FS_EUSAGE);
	ASSERT_STR_CONTAINS(err.msg, "https");

	/* Success, with the TLS pin from the token. */
	if (enroll_device(s, "https://hq.example.org/", text, &fe.base, &e, &err) < 0)
		TEST_FAIL("enroll_device: %s", err.msg);
	ASSERT_STR_EQ(fe.url, "https://hq.example.org/v1/enroll");
	ASSERT_STR_CONTAINS(fe.pin, "sha256//q6ur");
	ASSERT_OK(enroll_load(s, &back, &err));
	ASSERT_STR_EQ(back.target.url, "https://hq.example.org");
	ASSERT_STR_EQ(back.target.tls_pin, fe.pin);
	ASSERT_STR_EQ(back.team, "Tim 3");
	ASSERT_STR_EQ(back.municipality, "Бујановац");
	ASSERT_MEM_EQ(back.target.hq_sign_pk, fe.hq.sign_pk, crypto_sign_PUBLICKEYBYTES);
	ASSERT_MEM_EQ(back.hq_box_pk, fe.hq.box_pk, crypto_box_PUBLICKEYBYTES);

	/* Twice: refused, and the message never carries the token. */
	ASSERT_EQ(enroll_device(s, "https://hq.example.org", text, &fe.base, &e, &err), -FS_EEXIST);
	ASSERT_STR_CONTAINS(err.msg, "already enrolled");
	ASSERT_TRUE(strstr(err.msg, text + 4) == NULL);
	sodium_bin2base64(secret_b64, sizeof(secret_b64), fe.tok.secret, 12,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	ASSERT_TRUE(strstr(err.msg, secret_b64) == NULL);
	store_close(s);
}

/* ---- the libcurl transport on a real socket ------------------------------- */

TEST(push_curl_transport_no_redirects_and_unreachable)
{
	static const char *const answers[] = {
		"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/x\r\nContent-Length: 0\r\n"
		"Connection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n"
		"Connection: close\r\n\r\n{\"x\":1}\n",
	};
	struct hqlink *t = NULL;
	struct hqlink_response resp = { 0 };
	struct fs_error err = { 0 };
	char url[128], log[4096], seen[16384];
	int ls = fixture_http_listen(url, sizeof(url), "/v1/changesets"), st;
	size_t n;
	FILE *fp;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/requests", test_tmpdir());
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		fixture_http_serve(ls, answers, 2, log);
	close(ls);
	ASSERT_OK(hqcurl_new(&t, &err));
	/* A redirect is an answer, not followed. */
	ASSERT_OK(t->post(t, url, PUSH_CHANGESET_TYPE, (const uint8_t *)"FSCS", 4, NULL, &resp,
			  &err));
	ASSERT_EQ(resp.status, 302);
	hqlink_response_clear(&resp);
	ASSERT_OK(t->post(t, url, PUSH_CHANGESET_TYPE, (const uint8_t *)"FSCS", 4, NULL, &resp,
			  &err));
	ASSERT_EQ(resp.status, 200);
	ASSERT_EQ(resp.len, 8);
	ASSERT_STR_EQ(resp.body, "{\"x\":1}\n");
	hqlink_response_clear(&resp);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fp = fopen(log, "r");
	ASSERT_TRUE(fp != NULL);
	n = fread(seen, 1, sizeof(seen) - 1, fp);
	seen[n] = '\0';
	fclose(fp);
	ASSERT_STR_CONTAINS(seen, "POST /v1/changesets HTTP/1.1");
	ASSERT_STR_CONTAINS(seen, "Content-Type: application/vnd.fieldsync.changeset");
	ASSERT_STR_CONTAINS(seen, "\r\n\r\nFSCS");
	ASSERT_TRUE(strstr(seen, "GET /x") == NULL);

	/* Nobody listening any more: unreachable, naming the URL. */
	ASSERT_EQ(
		t->post(t, url, PUSH_CHANGESET_TYPE, (const uint8_t *)"FSCS", 4, NULL, &resp, &err),
		-EHOSTUNREACH);
	ASSERT_STR_CONTAINS(err.msg, "HQ unreachable at ");
	ASSERT_STR_CONTAINS(err.msg, url);
	/* Only http and https. */
	ASSERT_EQ(t->post(t, "file:///etc/passwd", PUSH_CHANGESET_TYPE, (const uint8_t *)"x", 1,
			  NULL, &resp, &err),
		  -FS_EUSAGE);
	hqlink_free(t);
}

/* ---- holding HQ to its history ------------------------------------------ */

#define LOG_LEAVES 16

/* An HQ log of LOG_LEAVES entries, answering consistency requests from
 * the tree of its first `size` entries, as HQ's POST
 * /v1/audit/consistency does; forged_root, when set, is the root of
 * another history of the same sizes. */
struct fake_log {
	struct hqlink base;
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], sign_sk[crypto_sign_SECRETKEYBYTES];
	merkle_hash leaves[LOG_LEAVES];
	uint64_t size; /* the latest checkpoint's */
	int requests;
};

/* A checkpoint of the first n leaves (of leaves), signed by the log's
 * key; malloc'd. */
static char *log_note(const struct fake_log *lg, const merkle_hash *leaves, uint64_t n)
{
	char origin[NOTE_NAME_MAX + 1], text[512], *note = NULL;
	merkle_hash root;

	checkpoint_origin(lg->sign_pk, origin);
	merkle_root(leaves, n, root);
	ASSERT_OK(checkpoint_format(origin, n, root, text, sizeof(text)));
	ASSERT_OK(note_sign(text, origin, lg->sign_sk, &note));
	return note;
}

static int log_post(struct hqlink *t, const char *url, const char *content_type,
		    const uint8_t *body, size_t len, const char *tls_pin,
		    struct hqlink_response *ret, struct fs_error *err)
{
	struct fake_log *lg = (struct fake_log *)t;
	merkle_hash proof[MERKLE_MAX_PROOF];
	cJSON *req = cJSON_ParseWithLength((const char *)body, len), *o = cJSON_CreateObject(), *a;
	char b64[64], *note, *text;
	size_t n = 0;
	uint64_t from;

	(void)content_type, (void)tls_pin, (void)err;
	ASSERT_STR_CONTAINS(url, "/v1/audit/consistency");
	lg->requests++;
	from = (uint64_t)cJSON_GetObjectItem(req, "from")->valuedouble;
	cJSON_Delete(req);
	if (from > lg->size) {
		fake_answer(ret, 409, "{\"error\":\"ahead_of_log\",\"message\":\"shorter\"}");
		cJSON_Delete(o);
		return 0;
	}
	if (from)
		ASSERT_OK(merkle_consistency_proof(lg->leaves, lg->size, from, proof, &n));
	note = log_note(lg, lg->leaves, lg->size);
	a = cJSON_AddArrayToObject(o, "proof");
	for (size_t i = 0; i < n; i++) {
		sodium_bin2base64(b64, sizeof(b64), proof[i], MERKLE_HASH_BYTES,
				  sodium_base64_VARIANT_ORIGINAL);
		cJSON_AddItemToArray(a, cJSON_CreateString(b64));
	}
	cJSON_AddNumberToObject(o, "size", (double)lg->size);
	cJSON_AddStringToObject(o, "checkpoint", note);
	text = cJSON_PrintUnformatted(o);
	fake_answer(ret, 200, text);
	cJSON_free(text);
	free(note);
	cJSON_Delete(o);
	return 0;
}

/* Checkpoints seen out of order (a pull's and a push's answers checked
 * in the other order) are no alarm while HQ proves both are prefixes of
 * its log; an older checkpoint of another history is. */
TEST(hqhistory_older_checkpoint_is_checked_not_feared)
{
	struct fake_log lg = { .base = { .post = log_post, .destroy = fake_destroy } };
	merkle_hash other[LOG_LEAVES];
	struct hqhistory_result res;
	struct fs_error err = { 0 };
	struct hqlink_target tg;
	struct store *s = fixture_store(NULL, NULL, 1);
	char *n8, *n12, *n10, *forged;

	crypto_sign_keypair(lg.sign_pk, lg.sign_sk);
	for (int i = 0; i < LOG_LEAVES; i++) {
		char e[32];

		snprintf(e, sizeof(e), "entry %d", i);
		merkle_leaf_hash(e, strlen(e), lg.leaves[i]);
		snprintf(e, sizeof(e), "entry %d%s", i, i >= 9 ? " rewritten" : "");
		merkle_leaf_hash(e, strlen(e), other[i]);
	}
	memset(&tg, 0, sizeof(tg));
	snprintf(tg.url, sizeof(tg.url), "http://127.0.0.1:9");
	memcpy(tg.hq_sign_pk, lg.sign_pk, sizeof(tg.hq_sign_pk));
	n8 = log_note(&lg, lg.leaves, 8);
	n10 = log_note(&lg, lg.leaves, 10);
	n12 = log_note(&lg, lg.leaves, 12);
	forged = log_note(&lg, other, 10);
	lg.size = 12;
	ASSERT_OK(hqhistory_observe(s, &tg, &lg.base, n8, &res, &err));
	ASSERT_OK(hqhistory_observe(s, &tg, &lg.base, n12, &res, &err));
	ASSERT_EQ(res.new_size, 12u);
	ASSERT_TRUE(res.checked);
	/* The answer with size 10 is checked after the one with 12. */
	ASSERT_OK(hqhistory_observe(s, &tg, &lg.base, n10, &res, &err));
	ASSERT_EQ(res.new_size, 12u);
	/* Another history of size 10, signed by HQ's key: a rewrite. */
	ASSERT_EQ(hqhistory_observe(s, &tg, &lg.base, forged, &res, &err), -FS_EAUTH);
	ASSERT_STR_CONTAINS(err.msg, "REWRITTEN");
	/* And a log that has shrunk below the checkpoint held. */
	lg.size = 11;
	ASSERT_EQ(hqhistory_observe(s, &tg, &lg.base, n10, &res, &err), -FS_EAUTH);
	free(n8);
	free(n10);
	free(n12);
	free(forged);
	store_close(s);
}
