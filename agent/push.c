/* push.c - pushing change sets, and keeping HQ's receipts.
 *
 * Sections: reading outgoing; one set; the loop.
 */
#include "agent/push.h"
#include "agent/hqhistory.h"
#include "agent/pack.h"
#include "agent/skew.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/changeset.h"
#include "sync/downset.h"
#include "sync/receipt.h"

/* Statement slots in the store's cache (0-1 store.c, 2-15 records.c,
 * 16-19 pack.c). */
enum {
	SLOT_NEXT_SET = 20,
	SLOT_STORE_RECEIPT,
	SLOT_HAVE_SEQ,
	SLOT_COUNT_SETS,
	SLOT_BACKLOG = 29, /* 24..28: enroll.c, synclog.c */
	SLOT_DROP_ACKED = 31,
	SLOT_QUARANTINED = 47,
};

/* How often one push may rewind to an earlier sequence HQ asks for. */
#define PUSH_MAX_REWINDS 3

/* ---- reading outgoing ------------------------------------------------------ */

/* One set to send, copied out so no statement stays open across I/O. */
struct outgoing_set {
	uint64_t seq;
	uint8_t hash[CHANGESET_HASH_BYTES];
	uint8_t *body; /* malloc'd */
	size_t len;
	unsigned long long changes;
};

/* The first set at or after from that has no receipt, or any set below
 * resend_below (HQ asked for those again).  ret->body NULL: none left. */
static int next_set(struct store *s, uint64_t from, uint64_t resend_below, struct outgoing_set *ret,
		    struct fs_error *err)
{
	sqlite3_stmt *st;
	int r, rc;

	memset(ret, 0, sizeof(*ret));
	r = store_stmt(s, SLOT_NEXT_SET,
		       "SELECT seq, hash, body, changes FROM outgoing"
		       " WHERE seq >= ?1 AND (receipt IS NULL OR seq < ?2) ORDER BY seq LIMIT 1",
		       &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)resend_below);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int len = sqlite3_column_bytes(st, 2);

		if (len == 0 && sqlite3_column_int64(st, 0) > 0 &&
		    (uint64_t)sqlite3_column_int64(st, 0) < resend_below) {
			/* push_drop_acked() made room on a full disk. */
			r = fs_error_set(err, -EBADMSG,
					 "HQ asks again for change set %lld, which it had "
					 "acknowledged and this device no longer holds (dropped to "
					 "make room on a full disk)",
					 (long long)sqlite3_column_int64(st, 0));
		} else if (sqlite3_column_int64(st, 0) <= 0 ||
			   sqlite3_column_bytes(st, 1) != CHANGESET_HASH_BYTES || len <= 0 ||
			   len > CHANGESET_MAX_BYTES) {
			r = fs_error_set(err, -FS_ECORRUPT,
					 "read outgoing change sets in %s: "
					 "malformed row",
					 store_path(s));
		} else if (!(ret->body = malloc((size_t)len))) {
			r = fs_error_set(err, -ENOMEM, "read outgoing change sets: out of memory");
		} else {
			ret->seq = (uint64_t)sqlite3_column_int64(st, 0);
			memcpy(ret->hash, sqlite3_column_blob(st, 1), CHANGESET_HASH_BYTES);
			memcpy(ret->body, sqlite3_column_blob(st, 2), (size_t)len);
			ret->len = (size_t)len;
			ret->changes = (unsigned long long)sqlite3_column_int64(st, 3);
		}
	} else if (rc != SQLITE_DONE) {
		r = store_fail(s, "read outgoing change sets in", err);
	}
	sqlite3_reset(st);
	return r;
}

static int have_seq(struct store *s, uint64_t seq, int *ret_have, struct fs_error *err)
{
	sqlite3_stmt *st;
	int r, rc;

	r = store_stmt(s, SLOT_HAVE_SEQ, "SELECT 1 FROM outgoing WHERE seq = ?1", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		*ret_have = rc == SQLITE_ROW;
	else
		r = store_fail(s, "read outgoing change sets in", err);
	sqlite3_reset(st);
	return r;
}

int push_count(struct store *s, unsigned long long *ret_pending, unsigned long long *ret_acked,
	       struct fs_error *err)
{
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s, SLOT_COUNT_SETS,
		       "SELECT count(*) FILTER (WHERE receipt IS NULL),"
		       " count(*) FILTER (WHERE receipt IS NOT NULL) FROM outgoing",
		       &st, err);
	if (r < 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*ret_pending = (unsigned long long)sqlite3_column_int64(st, 0);
		if (ret_acked)
			*ret_acked = (unsigned long long)sqlite3_column_int64(st, 1);
	} else {
		r = store_fail(s, "count outgoing change sets in", err);
	}
	sqlite3_reset(st);
	return r;
}

/* ---- one set ------------------------------------------------------------------ */

/* Verify HQ's 200 answer o (parsed; may be NULL) for set and keep its
 * receipt. */
/* skew: this device's clock minus HQ's from this answer, or NULL. */
static int accept_receipt(struct store *s, const struct hqlink_target *target,
			  const struct outgoing_set *set, const cJSON *o, const int64_t *skew,
			  unsigned long long *ret_quarantined, struct fs_error *err)
{
	uint8_t device[CHANGESET_DEVICE_BYTES], *buf = NULL;
	const char *hex = store_identity(s)->id;
	struct receipt rc = { 0 };
	sqlite3_stmt *st;
	size_t len = 0;
	int r;

	if (sodium_hex2bin(device, sizeof(device), hex, strlen(hex), NULL, &len, NULL) != 0 ||
	    len != sizeof(device))
		return fs_error_set(err, -FS_ECORRUPT, "push: bad device id in %s", store_path(s));
	buf = malloc(RECEIPT_MAX_BYTES);
	if (!buf)
		return fs_error_set(err, -ENOMEM, "push: out of memory");
	if (!cJSON_IsObject(o) ||
	    hqlink_json_base64(o, "receipt", buf, RECEIPT_MAX_BYTES, 0, &len) < 0) {
		r = fs_error_set(err, -EPROTO,
				 "HQ at %s: change set %llu: answer 200 without a "
				 "readable receipt",
				 target->url, (unsigned long long)set->seq);
		goto out;
	}
	if (receipt_verify(buf, len, target->hq_sign_pk, &rc) < 0) {
		r = fs_error_set(
			err, -FS_EAUTH,
			"HQ at %s: change set %llu: receipt signature does "
			"not verify with the HQ key pinned at enrolment; not marked as sent",
			target->url, (unsigned long long)set->seq);
		goto out;
	}
	if (memcmp(rc.device, device, sizeof(device)) != 0 || rc.seq != set->seq ||
	    memcmp(rc.hash, set->hash, CHANGESET_HASH_BYTES) != 0) {
		r = fs_error_set(err, -FS_EAUTH,
				 "HQ at %s: change set %llu: receipt is for a "
				 "different device, sequence or hash; not marked as sent",
				 target->url, (unsigned long long)set->seq);
		goto out;
	}
	if ((r = store_begin(s, err)) < 0)
		goto out;
	r = store_stmt(s, SLOT_STORE_RECEIPT,
		       "UPDATE outgoing SET receipt = ?1, acked_at = ?2 WHERE seq = ?3", &st, err);
	if (r == 0) {
		sqlite3_bind_blob(st, 1, buf, (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)store_wall_ms(s));
		sqlite3_bind_int64(st, 3, (sqlite3_int64)set->seq);
		if (sqlite3_step(st) != SQLITE_DONE)
			r = store_fail(s, "store receipt in", err);
		else if (sqlite3_changes(store_db(s)) != 1)
			r = fs_error_set(err, -FS_ECORRUPT,
					 "store receipt in %s: change set %llu "
					 "is gone",
					 store_path(s), (unsigned long long)set->seq);
		sqlite3_reset(st);
	}
	/* The changes HQ quarantined, by their place in the set (the set's
	 * outbox rows in order, agent/pack.c). */
	for (uint32_t i = 0; r == 0 && i < rc.quarantined; i++) {
		r = store_stmt(s, SLOT_QUARANTINED,
			       "UPDATE outbox SET quarantined = 1 WHERE seq = (SELECT seq FROM "
			       "outbox WHERE changeset = ?1 ORDER BY seq LIMIT 1 OFFSET ?2)",
			       &st, err);
		if (r < 0)
			break;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)set->seq);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)rc.index[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			r = store_fail(s, "note quarantined changes in", err);
		else if (sqlite3_changes(store_db(s)) != 1)
			r = fs_error_set(
				err, -EPROTO,
				"HQ at %s: change set %llu: the receipt quarantines change "
				"%u, which the set does not have",
				target->url, (unsigned long long)set->seq, rc.index[i] + 1);
		sqlite3_reset(st);
	}
	if (r == 0) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "changeset_version");

		r = pack_follow_hq(s, cJSON_IsNumber(v) ? v->valuedouble : 0, err);
	}
	if (skew)
		skew_follow_hq(s, *skew, &rc.accepted_ms);
	else
		store_hlc_observe(s, rc.accepted_ms);
	if (r == 0 && skew)
		r = skew_save(s, *skew, err);
	if (r == 0)
		r = store_commit(s, err);
	else
		store_rollback(s);
	if (r == 0)
		*ret_quarantined = rc.quarantined;
out:
	receipt_clear(&rc);
	free(buf);
	return r;
}

/* What HQ's refusal means; *ret_rewind is set for a gap we can fill. */
static int refusal(struct store *s, const struct hqlink_target *target,
		   const struct outgoing_set *set, const struct hqlink_response *resp,
		   uint64_t *ret_rewind, struct fs_error *err)
{
	unsigned long long seq = (unsigned long long)set->seq;
	char why[200], what[48];
	cJSON *o = NULL;
	const cJSON *code, *exp;
	int r, have = 0;

	if (resp->status != 409) {
		snprintf(what, sizeof(what), "change set %llu", seq);
		return hqlink_answer_error(target->url, what, resp, err);
	}
	hqlink_error_text(resp, why, sizeof(why));
	o = resp->body ? cJSON_ParseWithLength(resp->body, resp->len) : NULL;
	code = cJSON_GetObjectItemCaseSensitive(o, "error");
	exp = cJSON_GetObjectItemCaseSensitive(o, "expected_seq");
	if (!cJSON_IsString(code) || strcmp(code->valuestring, "sequence_gap") != 0) {
		r = fs_error_set(err, -EBADMSG, "HQ at %s refused change set %llu (%s)",
				 target->url, seq, why);
		goto out;
	}
	if (!cJSON_IsNumber(exp) || exp->valuedouble < 1 || exp->valuedouble > 9e15 ||
	    (double)(uint64_t)exp->valuedouble != exp->valuedouble) {
		r = fs_error_set(err, -EPROTO,
				 "HQ at %s: sequence gap at change set %llu without "
				 "a valid expected_seq",
				 target->url, seq);
		goto out;
	}
	if ((uint64_t)exp->valuedouble < set->seq &&
	    (r = have_seq(s, (uint64_t)exp->valuedouble, &have, err)) < 0)
		goto out;
	if (!have) {
		r = fs_error_set(err, -EBADMSG,
				 "HQ at %s expects change set %llu from this device, "
				 "but its next is %llu and it cannot send that one; was the store "
				 "or HQ restored from a backup?",
				 target->url, (unsigned long long)exp->valuedouble, seq);
		goto out;
	}
	*ret_rewind = (uint64_t)exp->valuedouble;
	r = 0;
out:
	cJSON_Delete(o);
	return r;
}

/* ---- the loop --------------------------------------------------------------------- */

int push_pending(struct store *s, const struct hqlink_target *target, struct hqlink *t,
		 push_progress_fn progress, void *ctx, struct push_stats *stats,
		 struct fs_error *err)
{
	char url[HQLINK_URL_MAX + 32];
	unsigned long long total = 0, done = 0;
	uint64_t from = 1, resend_below = 0;
	char *checked = NULL; /* the last checkpoint note hqhistory accepted */
	int r, rewinds = 0;

	if ((size_t)snprintf(url, sizeof(url), "%s/v1/changesets", target->url) >= sizeof(url))
		return fs_error_set(err, -FS_EUSAGE, "HQ URL too long");
	if ((r = push_count(s, &total, NULL, err)) < 0)
		return r;
	for (;;) {
		struct hqlink_response resp = { 0 };
		struct hqhistory_result hist;
		struct outgoing_set set;
		cJSON *answer = NULL;
		unsigned long long q = 0;
		uint64_t rewind = 0, sent_ms;
		const cJSON *note;
		int64_t skew = 0;
		int acked = 0, have_skew = 0;

		if ((r = next_set(s, from, resend_below, &set, err)) < 0 || !set.body)
			break;
		sent_ms = store_wall_ms(s);
		r = t->post(t, url, PUSH_CHANGESET_TYPE, set.body, set.len,
			    target->tls_pin[0] ? target->tls_pin : NULL, &resp, err);
		if (r == 0 && resp.status == 200) {
			answer = resp.body ? cJSON_ParseWithLength(resp.body, resp.len) : NULL;
			have_skew = skew_from_answer(answer, sent_ms, &skew);
			acked = (r = accept_receipt(s, target, &set, answer,
						    have_skew ? &skew : NULL, &q, err)) == 0;
			if (acked && have_skew) {
				stats->clock_checked = 1;
				stats->clock_skew_ms = skew;
			}
		} else if (r == 0)
			r = refusal(s, target, &set, &resp, &rewind, err);
		if (r == -EBUSY)
			stats->retry_after = resp.retry_after;
		if (acked) {
			/* Counted as soon as the receipt is stored, whatever the
			 * history check below says. */
			stats->sets++;
			stats->changes += set.changes;
			stats->quarantined += q;
			stats->bytes += set.len;
			from = set.seq + 1;
			if (set.seq >= resend_below && done < total)
				done++;
			/* The checkpoint that came with the receipt. */
			note = cJSON_GetObjectItemCaseSensitive(answer, "checkpoint");
			/* Sets in a row mostly carry the checkpoint just checked. */
			if (cJSON_IsString(note) &&
			    !(checked && !strcmp(checked, note->valuestring))) {
				r = hqhistory_observe(s, target, t, note->valuestring, &hist, err);
				free(checked);
				checked = r == 0 ? strdup(note->valuestring) : NULL;
			}
		}
		cJSON_Delete(answer);
		hqlink_response_clear(&resp);
		free(set.body);
		if (r < 0)
			break;
		if (rewind) {
			/* HQ lost sets it had acknowledged: send them again. */
			if (++rewinds > PUSH_MAX_REWINDS) {
				r = fs_error_set(err, -EBADMSG,
						 "HQ at %s keeps asking for earlier "
						 "change sets; giving up",
						 target->url);
				break;
			}
			resend_below = set.seq > resend_below ? set.seq : resend_below;
			from = rewind;
			continue;
		}
		if (progress)
			progress(done, total, ctx);
	}
	free(checked);
	return r;
}

int push_drop_acked(struct store *s, struct fs_error *err)
{
	sqlite3_stmt *st;
	int r;

	if ((r = store_begin(s, err)) < 0)
		return r;
	r = store_stmt(
		s, SLOT_DROP_ACKED,
		"UPDATE outgoing SET body = x'' WHERE receipt IS NOT NULL AND length(body) > 0",
		&st, err);
	if (r == 0 && sqlite3_step(st) != SQLITE_DONE)
		r = store_fail(s, "make room in", err);
	if (r == 0)
		sqlite3_reset(st);
	if (r == 0)
		return store_commit(s, err);
	store_rollback(s);
	return r;
}

int push_backlog(struct store *s, unsigned long long *ret_changes, unsigned long long *ret_bytes,
		 struct fs_error *err)
{
	sqlite3_stmt *st;
	int r;

	/* Unpacked changes count their text; packed ones their set's bytes. */
	r = store_stmt(s, SLOT_BACKLOG,
		       "SELECT (SELECT count(*) FROM outbox WHERE changeset IS NULL)"
		       "     + (SELECT coalesce(sum(changes), 0) FROM outgoing"
		       "        WHERE receipt IS NULL),"
		       "       (SELECT coalesce(sum(length(record_id) + length(field)"
		       "                            + coalesce(length(value), 0)), 0)"
		       "        FROM outbox WHERE changeset IS NULL)"
		       "     + (SELECT coalesce(sum(length(body)), 0) FROM outgoing"
		       "        WHERE receipt IS NULL)",
		       &st, err);
	if (r < 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*ret_changes = (unsigned long long)sqlite3_column_int64(st, 0);
		*ret_bytes = (unsigned long long)sqlite3_column_int64(st, 1);
	} else {
		r = store_fail(s, "count pending changes in", err);
	}
	sqlite3_reset(st);
	return r;
}

int push_oldest_unsent(struct store *s, uint64_t *ret_ms, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	*ret_ms = 0;
	/* Once per attempt, for the status report: not worth a cached slot. */
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT min(m) FROM (SELECT min(hlc) AS m FROM outbox "
			       "WHERE " STORE_OUTBOX_UNPACKED
			       " UNION ALL SELECT min(hlc) FROM outbox WHERE " STORE_OUTBOX_UNACKED
			       ")",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "read the backlog in", err);
	if (sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			*ret_ms = (uint64_t)sqlite3_column_int64(st, 0) >> 16;
	} else {
		r = store_fail(s, "read the backlog in", err);
	}
	sqlite3_finalize(st);
	return r;
}
