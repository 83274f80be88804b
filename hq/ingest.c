/* ingest.c - one change set in, in one transaction: checks, merge,
 * conflicts, quarantine, receipt, event.
 *
 * Sections: results; statements; checks before the merge; per-change
 * validation; merging one change; storing the set; entry point.
 */
#include "hq/ingest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/downsync.h"
#include "hq/formpub.h"
#include "hq/audit.h"
#include "hq/hqsql.h"
#include "hq/scope.h"
#include "hq/refusal.h"
#include "sync/changeset.h"
#include "sync/downset.h"
#include "sync/filewire.h"
#include "sync/status.h"
#include "sync/merge.h"
#include "sync/receipt.h"

#define HASH_HEX (2 * CHANGESET_HASH_BYTES + 1)

/* ---- results ------------------------------------------------------------ */

/* Append {"index","field","reason"} to the answer's quarantine list. */
static int qlist_add(cJSON *list, uint32_t idx, const char *field, const char *reason)
{
	cJSON *q = cJSON_CreateObject();

	if (!q)
		return -ENOMEM;
	if (!cJSON_AddItemToArray(list, q)) {
		cJSON_Delete(q);
		return -ENOMEM;
	}
	if (!cJSON_AddNumberToObject(q, "index", idx) ||
	    !cJSON_AddStringToObject(q, "field", field) ||
	    !cJSON_AddStringToObject(q, "reason", reason))
		return -ENOMEM;
	return 0;
}

void ingest_result_clear(struct ingest_result *r)
{
	if (!r)
		return;
	free(r->receipt);
	cJSON_Delete(r->quarantined);
	memset(r, 0, sizeof(*r));
}

/* ---- statements --------------------------------------------------------- */

enum {
	ST_STATE,
	ST_RECORD_NEW,
	ST_RECORD_TOUCH,
	ST_RECORD_DELETED,
	ST_RECORD_MERGED,
	ST_FIELD_PUT,
	ST_WRITE_PUT,
	ST_WRITE_RIVALS,
	ST_CONFLICT_PUT,
	ST_QUARANTINE_PUT,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	/* What merging one change needs, read at once (struct before):
	 * one round trip per change on PostgreSQL, where the rest is sent
	 * ahead (hqsql_step_later).  A device's writes to a field are
	 * unique by HLC, so the latest write joins as one row. */
	[ST_STATE] = "SELECT r.collection, r.created_at, r.updated_hlc, r.updated_device, "
		     "r.scope_key, f.hlc, f.device, w.value, w.hlc "
		     "FROM (SELECT ?1 AS id) AS k "
		     "LEFT JOIN records r ON r.id = k.id "
		     "LEFT JOIN fields f ON f.record_id = k.id AND f.field = ?2 "
		     "LEFT JOIN field_writes w ON w.record_id = k.id AND w.field = ?2 "
		     "AND w.device = ?3 AND w.hlc = (SELECT max(hlc) FROM field_writes "
		     "WHERE record_id = ?1 AND field = ?2 AND device = ?3)",
	[ST_RECORD_NEW] = "INSERT INTO records(id, collection, created_at, updated_hlc, "
			  "updated_device) VALUES (?1, ?2, ?3, ?3, ?4)",
	[ST_RECORD_TOUCH] = "UPDATE records SET created_at = ?2, updated_hlc = ?3, "
			    "updated_device = ?4 WHERE id = ?1",
	[ST_RECORD_DELETED] = "UPDATE records SET deleted = 1 WHERE id = ?1",
	[ST_RECORD_MERGED] = "UPDATE records SET merged_at = ?2 WHERE id = ?1",
	/* As a replaced row: revision 0 and no key until downsync stamps
	 * it.  A move's held_from (hq/downsync.c) reads the record's lowest
	 * revision, and counts on this one being 0 then, so that every
	 * device that held the old key learns the record left. */
	[ST_FIELD_PUT] = "INSERT INTO fields(record_id, field, value, hlc, device) "
			 "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (record_id, field) DO UPDATE SET "
			 "value = excluded.value, hlc = excluded.hlc, device = excluded.device, "
			 "rev = 0, scope_key = NULL",
	[ST_WRITE_PUT] = "INSERT INTO field_writes(record_id, field, device, value, "
			 "hlc, base_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
	[ST_WRITE_RIVALS] = "SELECT device, value, hlc FROM field_writes WHERE record_id = ?1 "
			    "AND field = ?2 AND device <> ?3 AND base_value = ?4 AND value <> ?5 "
			    "ORDER BY device",
	/* No row back: the pair was recorded before. */
	[ST_CONFLICT_PUT] = "INSERT INTO conflicts(record_id, field, value_a, device_a, "
			    "hlc_a, value_b, device_b, hlc_b, winner, detected_at) "
			    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?9) "
			    "ON CONFLICT DO NOTHING RETURNING id",
	[ST_QUARANTINE_PUT] = "INSERT INTO quarantine(device, seq, idx, record_id, field, reason) "
			      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
};

/* Published forms a run keeps, other than HQ's current ones. */
#define OLD_FORMS_MAX 16

struct run {
	const struct ingest_ctx *ctx;
	struct hqsql_stmt *st[ST_COUNT];
	const char *device; /* hex id of the sending device */
	uint64_t seq;
	uint64_t now_ms;
	uint64_t future_base_ms;	 /* HLCs up to this + HLC_MAX_FUTURE_MS merge */
	char stamped[UUID_TEXT_LEN + 1]; /* last record given merged_at */
	struct scope *scope;		 /* what the device may write */
	struct scope_set *scope_set;	 /* this set's scope values */
	struct downsync_writer *down;	 /* revisions and scope keys */
	struct form *old[OLD_FORMS_MAX]; /* published forms other than HQ's current */
	size_t nold;
	struct fs_error *err;
};

/* Idempotent: called before a commit (SQLite refuses to commit while a
 * statement that wrote is still active) and again on the way out. */
static void run_finalize(struct run *run)
{
	for (int i = 0; i < ST_COUNT; i++) {
		hqsql_finalize(run->st[i]);
		run->st[i] = NULL;
	}
	for (size_t i = 0; i < run->nold; i++)
		form_free(run->old[i]);
	run->nold = 0;
	downsync_writer_free(run->down);
	run->down = NULL;
}

static int run_prepare(struct run *run)
{
	for (int i = 0; i < ST_COUNT; i++) {
		int r = hqsql_prepare(run->ctx->db, stmt_sql[i], &run->st[i], run->err);

		if (r < 0)
			return r;
	}
	return 0;
}

/* Reset and clear bindings of a statement, then return it. */
static struct hqsql_stmt *use(struct run *run, int which)
{
	hqsql_reset(run->st[which]);
	hqsql_clear_bindings(run->st[which]);
	return run->st[which];
}

static int step_done(struct run *run, struct hqsql_stmt *st, const char *what)
{
	int rc = hqsql_step(st);

	if (rc != HQSQL_DONE && rc != HQSQL_ROW)
		return hqsql_fail(run->ctx->db, what, run->err);
	return 0;
}

/* ---- checks before the merge ------------------------------------------- */

struct device_row {
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES];
	int revoked;
	uint64_t last_seq;
	char last_hash[HASH_HEX]; /* "" before the first set */
};

/* 1: found, 0: unknown device, < 0: error. */
static int device_load(struct hqsql *db, const char *id, struct device_row *ret,
		       struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	struct device_row d = { 0 };
	int r, rc;

	if ((r = hqsql_prepare(db,
			       "SELECT sign_pk, state, last_seq, last_hash FROM devices "
			       "WHERE id = ?1",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, id);
	rc = hqsql_step(st);
	if (rc == HQSQL_DONE) {
		r = 0;
	} else if (rc != HQSQL_ROW) {
		r = hqsql_fail(db, "look up device", err);
	} else if ((int)hqsql_column_bytes(st, 0) != crypto_sign_PUBLICKEYBYTES) {
		r = fs_error_set(err, -FS_ECORRUPT, "device %s: stored key has a bad length", id);
	} else {
		const unsigned char *h = (const unsigned char *)hqsql_column_text(st, 3);

		memcpy(d.sign_pk, hqsql_column_blob(st, 0), crypto_sign_PUBLICKEYBYTES);
		d.revoked = !strcmp(hqsql_column_text(st, 1), "revoked");
		d.last_seq = (uint64_t)hqsql_column_int64(st, 2);
		snprintf(d.last_hash, sizeof(d.last_hash), "%s", h ? (const char *)h : "");
		*ret = d;
		r = 1;
	}
	hqsql_finalize(st);
	return r;
}

int ingest_device_active(struct hqsql *db, const uint8_t *prefix, size_t len, struct fs_error *err)
{
	char id[2 * CHANGESET_DEVICE_BYTES + 1];
	struct device_row d;
	int r;

	/* Bytes 0..23 of a set, of a pull request, of a status report and of
	 * a file's query or chunk:
	 * magic, version, codec or reserved, reserved, device id. */
	if (len < 8 + CHANGESET_DEVICE_BYTES ||
	    (memcmp(prefix, CHANGESET_MAGIC, 4) != 0 &&
	     memcmp(prefix, DOWNSET_PULL_MAGIC, 4) != 0 && memcmp(prefix, STATUS_MAGIC, 4) != 0 &&
	     memcmp(prefix, FILEWIRE_QUERY_MAGIC, 4) != 0 &&
	     memcmp(prefix, FILEWIRE_CHUNK_MAGIC, 4) != 0))
		return 0;
	sodium_bin2hex(id, sizeof(id), prefix + 8, CHANGESET_DEVICE_BYTES);
	if ((r = device_load(db, id, &d, err)) <= 0)
		return r;
	return !d.revoked;
}

/* Rebuild the answer to a duplicate from what was stored with it. */
static int duplicate_answer(const struct ingest_ctx *ctx, const char *device, uint64_t seq,
			    const uint8_t *receipt, size_t len, struct ingest_result *ret,
			    struct fs_error *err)
{
	struct receipt rc = { 0 };
	struct hqsql_stmt *st = NULL;
	int r;

	if (receipt_verify(receipt, len, ctx->hq->sign_pk, &rc) < 0)
		return fs_error_set(err, -FS_ECORRUPT, "stored receipt %s/%llu does not verify",
				    device, (unsigned long long)seq);
	ret->merged = rc.merged;
	receipt_clear(&rc);
	if (!(ret->receipt = malloc(len)) || !(ret->quarantined = cJSON_CreateArray()))
		return fs_error_set(err, -ENOMEM, "out of memory");
	memcpy(ret->receipt, receipt, len);
	ret->receipt_len = len;
	if ((r = hqsql_prepare(ctx->db,
			       "SELECT idx, field, reason FROM quarantine WHERE device = ?1 "
			       "AND seq = ?2 ORDER BY idx",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, device);
	hqsql_bind_int64(st, 2, (int64_t)seq);
	while ((r = hqsql_step(st)) == HQSQL_ROW) {
		if (qlist_add(ret->quarantined, (uint32_t)hqsql_column_int64(st, 0),
			      hqsql_column_text(st, 1), hqsql_column_text(st, 2)) < 0) {
			hqsql_finalize(st);
			return fs_error_set(err, -ENOMEM, "out of memory");
		}
	}
	r = r == HQSQL_DONE ? 0 : hqsql_fail(ctx->db, "read quarantine", err);
	hqsql_finalize(st);
	if (r == 0) {
		ret->status = 200;
		ret->duplicate = 1;
	}
	return r;
}

/* Sequence, duplicate and chain.  0 with ret->status set to reject, or
 * with ret->status 0 to go on; < 0 on error. */
static int check_sequence(const struct ingest_ctx *ctx, const struct changeset_header *h,
			  const struct device_row *d, const char *hash, struct ingest_result *ret,
			  struct fs_error *err)
{
	static const char zero_hash[HASH_HEX] =
		"0000000000000000000000000000000000000000000000000000000000000000";
	char prev[HASH_HEX];
	struct hqsql_stmt *st = NULL;
	int r;

	if (h->seq <= d->last_seq) {
		if ((r = hqsql_prepare(ctx->db,
				       "SELECT hash, receipt FROM changesets "
				       "WHERE device = ?1 AND seq = ?2",
				       &st, err)) < 0)
			return r;
		hqsql_bind_text(st, 1, ret->device);
		hqsql_bind_int64(st, 2, (int64_t)h->seq);
		if (hqsql_step(st) != HQSQL_ROW)
			r = hqsql_fail(ctx->db, "look up stored change set", err);
		else if (!strcmp(hqsql_column_text(st, 0), hash))
			r = duplicate_answer(ctx, ret->device, h->seq, hqsql_column_blob(st, 1),
					     (size_t)(int)hqsql_column_bytes(st, 1), ret, err);
		else
			r = REFUSE(ret, 409, "conflicting_duplicate",
				   "HQ already holds a different change set with sequence %llu",
				   (unsigned long long)h->seq);
		hqsql_finalize(st);
		return r;
	}
	if (h->seq != d->last_seq + 1) {
		ret->expected_seq = d->last_seq + 1;
		return REFUSE(ret, 409, "sequence_gap", "expected sequence %llu, got %llu",
			      (unsigned long long)ret->expected_seq, (unsigned long long)h->seq);
	}
	sodium_bin2hex(prev, sizeof(prev), h->prev, CHANGESET_HASH_BYTES);
	if (strcmp(prev, d->last_seq ? d->last_hash : zero_hash))
		return REFUSE(ret, 409, "chain_mismatch",
			      "previous hash is not the hash of sequence %llu",
			      (unsigned long long)d->last_seq);
	return 0;
}

/* Append the "push" audit entry for res.  fmt and the arguments give the
 * members of its detail object, without braces; the device's clock skew
 * is added when it is over the bound, so the audit shows which device's
 * clock was wrong, by how much, at which push. */
static int push_event(struct hqsql *db, uint64_t now_ms, const struct ingest_result *res,
		      struct fs_error *err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int push_event(struct hqsql *db, uint64_t now_ms, const struct ingest_result *res,
		      struct fs_error *err, const char *fmt, ...)
{
	char detail[256];
	va_list ap;
	int n;

	detail[0] = '{';
	va_start(ap, fmt);
	n = 1 + vsnprintf(detail + 1, sizeof(detail) - 1, fmt, ap);
	va_end(ap);
	if (n < (int)sizeof(detail) && res->skewed)
		n += snprintf(detail + n, sizeof(detail) - (size_t)n, ",\"clock_skew_ms\":%lld",
			      (long long)res->clock_skew_ms);
	if (n + 1 >= (int)sizeof(detail))
		return fs_error_set(err, -FS_ELIMIT, "audit push entry: detail too long");
	memcpy(detail + n, "}", 2);
	return audit_append(db, now_ms, "push", res->device[0] ? res->device : NULL, detail, err);
}

/* ---- per-change validation --------------------------------------------- */

/* The form c was made under: HQ's current one for version 0 (a device's
 * own form, a set before version 3) and for the current version; else
 * the version as published (hq/formpub.h), kept for the rest of the run.
 * *ret NULL with *reason set when there is none. */
static int form_for(struct run *run, const struct change *c, const struct form **ret,
		    const char **reason, char *buf, size_t len)
{
	const struct form *cur = hqforms_find(run->ctx->forms, c->collection);
	struct fs_error lerr = { 0 };
	struct form *f = NULL;
	int r;

	*ret = NULL;
	if (!cur) {
		*reason = "unknown collection";
		return 0;
	}
	if (c->form_version == 0 || c->form_version == form_version(cur)) {
		*ret = cur;
		return 0;
	}
	for (size_t i = 0; i < run->nold; i++)
		if (form_version(run->old[i]) == c->form_version &&
		    !strcmp(form_collection(run->old[i]), c->collection)) {
			*ret = run->old[i];
			return 0;
		}
	if ((r = formpub_load(run->ctx->db, c->collection, c->form_version, &f, &lerr)) ==
	    -ENOENT) {
		snprintf(buf, len, "made under form version %u, which HQ has not published",
			 c->form_version);
		*reason = buf;
		return 0;
	}
	if (r < 0)
		return fs_error_set(run->err, r, "%s", lerr.msg);
	/* A set is at most a few collections and versions; past the cache,
	 * the form is read again for each change rather than kept. */
	if (run->nold == OLD_FORMS_MAX)
		form_free(run->old[--run->nold]);
	run->old[run->nold++] = f;
	*ret = f;
	return 0;
}

/* *reason NULL when the change may be merged, else the reason it is
 * quarantined (written to buf when it needs one). */
static int change_problem(struct run *run, const struct change *c, const char **reason, char *buf,
			  size_t len)
{
	const struct form *f = NULL;
	struct fs_error verr = { 0 };
	int r;

	*reason = NULL;
	if ((r = form_for(run, c, &f, reason, buf, len)) < 0 || !f)
		return r;
	if (!strcmp(c->field, "_deleted")) {
		if (!cJSON_IsTrue(c->value))
			*reason = "_deleted must be true";
	} else if (form_validate_value(f, c->field, c->value, &verr) < 0) {
		/* form.h: the message names the field and the rule, never the value. */
		snprintf(buf, len, "%s", verr.msg[0] ? verr.msg : "invalid value");
		*reason = buf;
	}
	if (!*reason && hlc_physical_ms(c->hlc) > run->future_base_ms + HLC_MAX_FUTURE_MS)
		*reason = "timestamp too far in the future";
	return 0;
}

/* ---- merging one change -------------------------------------------------- */

/* The state a change merges into, read before it (ST_STATE).  Strings
 * are malloc'd; NULL when the row or the value is not there. */
struct before {
	int record;	  /* HQ holds the record */
	char *collection; /* its collection */
	hlc_t created, updated;
	char updated_dev[IDENTITY_ID_HEXLEN + 1];
	char *key; /* its scope key */
	int field; /* HQ holds the field */
	hlc_t field_hlc;
	char field_dev[IDENTITY_ID_HEXLEN + 1];
	char *write; /* this device's latest write to the field */
	hlc_t write_hlc;
};

static void before_clear(struct before *b)
{
	free(b->collection);
	free(b->key);
	free(b->write);
	memset(b, 0, sizeof(*b));
}

static int dup_column(struct hqsql_stmt *st, int i, char **ret)
{
	if (hqsql_column_is_null(st, i))
		return 0;
	return (*ret = strdup(hqsql_column_text(st, i))) ? 0 : -ENOMEM;
}

static int before_read(struct run *run, const struct change *c, struct before *b)
{
	struct hqsql_stmt *st = use(run, ST_STATE);

	memset(b, 0, sizeof(*b));
	hqsql_bind_text(st, 1, c->record_id);
	hqsql_bind_text(st, 2, c->field);
	hqsql_bind_text(st, 3, run->device);
	if (hqsql_step(st) != HQSQL_ROW)
		return hqsql_fail(run->ctx->db, "look up record", run->err);
	if ((b->record = !hqsql_column_is_null(st, 0))) {
		b->created = (hlc_t)hqsql_column_int64(st, 1);
		b->updated = (hlc_t)hqsql_column_int64(st, 2);
		snprintf(b->updated_dev, sizeof(b->updated_dev), "%s", hqsql_column_text(st, 3));
	}
	if ((b->field = !hqsql_column_is_null(st, 5))) {
		b->field_hlc = (hlc_t)hqsql_column_int64(st, 5);
		snprintf(b->field_dev, sizeof(b->field_dev), "%s", hqsql_column_text(st, 6));
	}
	b->write_hlc = (hlc_t)hqsql_column_int64(st, 8);
	if (dup_column(st, 0, &b->collection) < 0 || dup_column(st, 4, &b->key) < 0 ||
	    dup_column(st, 7, &b->write) < 0) {
		before_clear(b);
		return fs_error_set(run->err, -ENOMEM, "out of memory");
	}
	return 0;
}

/* Create the record on first sight, or widen its clocks: created_at is
 * the lowest HLC merged into it, updated_* the greatest write by the
 * merge order.  Both are independent of arrival order.  *ret_other is set
 * (and nothing written) when the id belongs to another collection. */
static int merge_record(struct run *run, const struct change *c, const struct before *b,
			int *ret_other)
{
	struct hqsql_stmt *st;
	hlc_t created = b->created, updated = b->updated;
	char updated_dev[IDENTITY_ID_HEXLEN + 1];

	*ret_other = 0;
	if (!b->record) {
		st = use(run, ST_RECORD_NEW);
		hqsql_bind_text(st, 1, c->record_id);
		hqsql_bind_text(st, 2, c->collection);
		hqsql_bind_int64(st, 3, (int64_t)c->hlc);
		hqsql_bind_text(st, 4, run->device);
		return hqsql_step_later(st, "create record", run->err);
	}
	if (strcmp(b->collection, c->collection)) {
		*ret_other = 1;
		return 0;
	}
	memcpy(updated_dev, b->updated_dev, sizeof(updated_dev));
	if (c->hlc >= created && merge_compare(c->hlc, run->device, updated, updated_dev) <= 0)
		return 0;
	if (c->hlc < created)
		created = c->hlc;
	if (merge_compare(c->hlc, run->device, updated, updated_dev) > 0) {
		updated = c->hlc;
		snprintf(updated_dev, sizeof(updated_dev), "%s", run->device);
	}
	st = use(run, ST_RECORD_TOUCH);
	hqsql_bind_text(st, 1, c->record_id);
	hqsql_bind_int64(st, 2, (int64_t)created);
	hqsql_bind_int64(st, 3, (int64_t)updated);
	hqsql_bind_text(st, 4, updated_dev);
	return hqsql_step_later(st, "update record", run->err);
}

/* Per (record, field), the last writer wins; _deleted is a field like
 * any other and marks the record deleted when its write wins (it can
 * only be true). */
static int merge_field(struct run *run, const struct change *c, const char *value,
		       const struct before *b)
{
	struct hqsql_stmt *st;
	int r;

	if (b->field && merge_compare(c->hlc, run->device, b->field_hlc, b->field_dev) <= 0)
		return 0;
	st = use(run, ST_FIELD_PUT);
	hqsql_bind_text(st, 1, c->record_id);
	hqsql_bind_text(st, 2, c->field);
	hqsql_bind_text(st, 3, value);
	hqsql_bind_int64(st, 4, (int64_t)c->hlc);
	hqsql_bind_text(st, 5, run->device);
	scope_set_written(run->scope_set, c->record_id, c->field);
	if ((r = hqsql_step_later(st, "write field", run->err)) < 0 ||
	    (r = downsync_field_merged(run->down, c->collection, c->record_id, c->field, value,
				       b->key, run->err)) < 0)
		return r;
	/* One stamp per record per set: a record's changes come together,
	 * and the time is the same for all of them. */
	if (strcmp(run->stamped, c->record_id)) {
		st = use(run, ST_RECORD_MERGED);
		hqsql_bind_text(st, 1, c->record_id);
		hqsql_bind_int64(st, 2, (int64_t)run->now_ms);
		if ((r = hqsql_step_later(st, "stamp record", run->err)) < 0)
			return r;
		memcpy(run->stamped, c->record_id, sizeof(run->stamped));
	}
	if (strcmp(c->field, "_deleted"))
		return 0;
	st = use(run, ST_RECORD_DELETED);
	hqsql_bind_text(st, 1, c->record_id);
	return hqsql_step_later(st, "mark record deleted", run->err);
}

/* Record one conflict between this write and a rival's, the lower write
 * by the merge order as "a" and the higher (the pair's winner) as "b". */
static int conflict_put(struct run *run, const struct change *c, const char *value,
			const char *rival_dev, const char *rival_value, hlc_t rival_hlc)
{
	struct hqsql_stmt *st = use(run, ST_CONFLICT_PUT);
	int mine_wins = merge_compare(c->hlc, run->device, rival_hlc, rival_dev) > 0, r = 0, rc;

	hqsql_bind_text(st, 1, c->record_id);
	hqsql_bind_text(st, 2, c->field);
	hqsql_bind_text(st, 3, mine_wins ? rival_value : value);
	hqsql_bind_text(st, 4, mine_wins ? rival_dev : run->device);
	hqsql_bind_int64(st, 5, (int64_t)(mine_wins ? rival_hlc : c->hlc));
	hqsql_bind_text(st, 6, mine_wins ? value : rival_value);
	hqsql_bind_text(st, 7, mine_wins ? run->device : rival_dev);
	hqsql_bind_int64(st, 8, (int64_t)(mine_wins ? c->hlc : rival_hlc));
	hqsql_bind_int64(st, 9, (int64_t)run->now_ms);
	if ((rc = hqsql_step(st)) != HQSQL_ROW && rc != HQSQL_DONE)
		return hqsql_fail(run->ctx->db, "record conflict", run->err);
	if (rc == HQSQL_DONE ||
	    (r = downsync_conflict_recorded(run->down, hqsql_column_int64(st, 0), run->err)) < 0)
		return r;
	/* Audited by record, field and devices; the values are personal
	 * data and stay in the conflicts table. */
	return audit_append_strings(run->ctx->db, run->now_ms, "conflict", run->device, run->err,
				    "record", c->record_id, "field", c->field, "rival", rival_dev,
				    "winner", mine_wins ? run->device : rival_dev,
				    (const char *)NULL);
}

/* Keep this device's latest write and the value it replaced, and record
 * a conflict with every other device that edited the same base value to
 * a different value (PROTOCOL.md, "Merge rule"). */
static int track_write(struct run *run, const struct change *c, const char *value,
		       const struct before *b)
{
	struct hqsql_stmt *st;
	const char *base = NULL;
	int rc, r = 0;

	if (b->write) {
		/* A device's clock only grows; an older write changes nothing. */
		if (b->write_hlc >= c->hlc)
			return 0;
		base = b->write;
	}
	st = use(run, ST_WRITE_PUT);
	hqsql_bind_text(st, 1, c->record_id);
	hqsql_bind_text(st, 2, c->field);
	hqsql_bind_text(st, 3, run->device);
	hqsql_bind_text(st, 4, value);
	hqsql_bind_int64(st, 5, (int64_t)c->hlc);
	hqsql_bind_text(st, 6, base);
	if ((r = hqsql_step_later(st, "write field history", run->err)) < 0 || !base)
		return r;
	st = use(run, ST_WRITE_RIVALS);
	hqsql_bind_text(st, 1, c->record_id);
	hqsql_bind_text(st, 2, c->field);
	hqsql_bind_text(st, 3, run->device);
	hqsql_bind_text(st, 4, base);
	hqsql_bind_text(st, 5, value);
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		char dev[IDENTITY_ID_HEXLEN + 1], *rival = NULL;
		hlc_t hlc = (hlc_t)hqsql_column_int64(st, 2);

		snprintf(dev, sizeof(dev), "%s", hqsql_column_text(st, 0));
		if (!(rival = strdup(hqsql_column_text(st, 1))))
			return fs_error_set(run->err, -ENOMEM, "out of memory");
		/* conflict_put uses another statement; this one stays stepping. */
		r = conflict_put(run, c, value, dev, rival, hlc);
		free(rival);
		if (r < 0)
			return r;
	}
	if (rc != HQSQL_DONE)
		r = hqsql_fail(run->ctx->db, "look up rival writes", run->err);
	return r;
}

/* ---- storing the set --------------------------------------------------- */

static int quarantine_put(struct run *run, uint32_t idx, const struct change *c, const char *reason,
			  cJSON *list)
{
	struct hqsql_stmt *st = use(run, ST_QUARANTINE_PUT);

	if (qlist_add(list, idx, c->field, reason) < 0)
		return fs_error_set(run->err, -ENOMEM, "out of memory");
	hqsql_bind_text(st, 1, run->device);
	hqsql_bind_int64(st, 2, (int64_t)run->seq);
	hqsql_bind_int64(st, 3, idx);
	hqsql_bind_text(st, 4, c->record_id);
	hqsql_bind_text(st, 5, c->field);
	hqsql_bind_text(st, 6, reason);
	return hqsql_step_later(st, "quarantine change", run->err);
}

/* Merge or quarantine every change; index gets the quarantined ones. */
static int merge_all(struct run *run, const struct change *ch, size_t n, uint32_t *index,
		     uint32_t *ret_q, cJSON *list)
{
	uint32_t q = 0;
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		char buf[sizeof(((struct fs_error *)0)->msg)], *value = NULL;
		const char *reason = NULL;
		int other = 0;

		if ((r = change_problem(run, &ch[i], &reason, buf, sizeof(buf))) < 0)
			break;
		if (!reason &&
		    (r = scope_check(run->scope_set, run->scope, &ch[i], &reason, run->err)) < 0)
			break;
		if (!reason) {
			struct before b;

			if (!(value = cJSON_PrintUnformatted(ch[i].value)))
				return fs_error_set(run->err, -ENOMEM, "out of memory");
			if ((r = before_read(run, &ch[i], &b)) < 0) {
				cJSON_free(value);
				break;
			}
			r = merge_record(run, &ch[i], &b, &other);
			if (r == 0 && other)
				reason = "record id belongs to another collection";
			else if (r == 0 && (r = merge_field(run, &ch[i], value, &b)) == 0)
				r = track_write(run, &ch[i], value, &b);
			before_clear(&b);
			cJSON_free(value);
		}
		if (r == 0 && reason) {
			index[q++] = (uint32_t)i;
			r = quarantine_put(run, (uint32_t)i, &ch[i], reason, list);
			/* The sender holds the refused value: HQ's goes to it
			 * again (not another collection's record of that id). */
			if (r == 0 && !other)
				r = downsync_field_resend(run->down, ch[i].record_id, ch[i].field,
							  run->err);
		}
	}
	*ret_q = q;
	return r;
}

static int store_set(struct run *run, const struct changeset_header *h, const uint8_t *body,
		     size_t len, const char *hash, struct ingest_result *ret)
{
	struct hqsql *db = run->ctx->db;
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(db,
			       "INSERT INTO changesets(device, seq, hash, body, receipt, "
			       "received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			       &st, run->err)) < 0)
		return r;
	hqsql_bind_text(st, 1, run->device);
	hqsql_bind_int64(st, 2, (int64_t)h->seq);
	hqsql_bind_text(st, 3, hash);
	hqsql_bind_blob(st, 4, body, (size_t)((int)len));
	hqsql_bind_blob(st, 5, ret->receipt, (size_t)((int)ret->receipt_len));
	hqsql_bind_int64(st, 6, (int64_t)run->now_ms);
	r = step_done(run, st, "store change set");
	hqsql_finalize(st);
	/* A device's first version 2 set ends its version 1 sets for good. */
	if (r < 0 ||
	    (r = hqsql_prepare(db,
			       "UPDATE devices SET last_seq = ?2, last_hash = ?3, "
			       "last_seen = ?4, unbound_ok = CASE WHEN ?5 = 1 THEN unbound_ok "
			       "ELSE 0 END "
			       "WHERE id = ?1",
			       &st, run->err)) < 0)
		return r;
	hqsql_bind_text(st, 1, run->device);
	hqsql_bind_int64(st, 2, (int64_t)h->seq);
	hqsql_bind_text(st, 3, hash);
	hqsql_bind_int64(st, 4, (int64_t)run->now_ms);
	hqsql_bind_int64(st, 5, h->version == CHANGESET_VERSION_UNBOUND);
	r = step_done(run, st, "update device");
	hqsql_finalize(st);
	if (r < 0)
		return r;
	return push_event(db, run->now_ms, ret, run->err,
			  "\"result\":\"accepted\",\"seq\":%llu,\"hash\":\"%s\",\"changes\":%u,"
			  "\"merged\":%u,\"quarantined\":%d",
			  (unsigned long long)h->seq, hash, h->count, ret->merged,
			  cJSON_GetArraySize(ret->quarantined));
}

/* The time HLC stamps are measured against for quarantine: HQ's clock,
 * or the latest time HQ has put in a receipt if that is later.  Devices
 * move their clocks up to the receipts' time, so after HQ's own clock ran
 * ahead and was set right, their changes still merge. */
static int future_base(struct run *run)
{
	struct hqsql_stmt *st = NULL;
	int r;

	run->future_base_ms = run->now_ms;
	if ((r = hqsql_prepare(run->ctx->db, "SELECT max(last_seen) FROM devices", &st, run->err)) <
	    0)
		return r;
	if (hqsql_step(st) != HQSQL_ROW) {
		r = hqsql_fail(run->ctx->db, "read the latest receipt time", run->err);
	} else if (!hqsql_column_is_null(st, 0) &&
		   (uint64_t)hqsql_column_int64(st, 0) > run->now_ms) {
		run->future_base_ms = (uint64_t)hqsql_column_int64(st, 0);
	}
	hqsql_finalize(st);
	return r;
}

/* Open, merge, sign and store: the part after every check passed. */
static int accept_set(struct run *run, const struct changeset_header *h, const uint8_t *body,
		      size_t len, const uint8_t hash_raw[CHANGESET_HASH_BYTES], const char *hash,
		      struct ingest_result *ret)
{
	const struct identity *hq = run->ctx->hq;
	struct change *ch = NULL;
	struct fs_error oerr = { 0 };
	struct receipt rc = { 0 };
	size_t n = 0;
	uint32_t *index = NULL, q = 0;
	int r;

	if (changeset_open(body, len, hq->box_pk, hq->box_sk, &ch, &n, &oerr) < 0)
		return REFUSE(ret, 400, "malformed", "change set payload: %s", oerr.msg);
	if (!(index = calloc(n ? n : 1, sizeof(*index))) ||
	    !(ret->quarantined = cJSON_CreateArray())) {
		r = fs_error_set(run->err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = run_prepare(run)) < 0 || (r = future_base(run)) < 0 ||
	    (r = scope_load(run->ctx->db, run->device, &run->scope, run->err)) < 0 ||
	    (r = scope_set_build(run->ctx->db, run->ctx->forms, ch, n, &run->scope_set, run->err)) <
		    0 ||
	    (r = downsync_writer_new(run->ctx->db, run->ctx->forms, &run->down, run->err)) < 0 ||
	    (r = merge_all(run, ch, n, index, &q, ret->quarantined)) < 0)
		goto out;
	memcpy(rc.device, h->device, CHANGESET_DEVICE_BYTES);
	rc.seq = h->seq;
	memcpy(rc.hash, hash_raw, CHANGESET_HASH_BYTES);
	rc.accepted_ms = run->now_ms;
	rc.merged = (uint32_t)n - q;
	rc.quarantined = q;
	rc.index = q ? index : NULL;
	if ((r = receipt_encode(&rc, hq->sign_sk, &ret->receipt, &ret->receipt_len)) < 0) {
		r = fs_error_set(run->err, r, "sign receipt: %s", fs_strerror(r));
		goto out;
	}
	ret->merged = rc.merged;
	if ((r = store_set(run, h, body, len, hash, ret)) < 0)
		goto out;
	ret->status = 200;
out:
	run_finalize(run);
	scope_set_free(run->scope_set);
	scope_free(run->scope);
	free(index);
	changes_free(ch, n);
	return r;
}

/* ---- review ------------------------------------------------------------- */

/* The quarantined change (device, seq, idx), opened from its stored set. */
static int quarantined_change(struct run *run, uint32_t idx, struct change **ret_all, size_t *ret_n,
			      struct fs_error *err)
{
	const struct identity *hq = run->ctx->hq;
	struct hqsql_stmt *st = NULL;
	struct fs_error oerr = { 0 };
	int r, rc;

	if ((r = hqsql_prepare(run->ctx->db,
			       "SELECT c.body FROM quarantine q JOIN changesets c ON "
			       "c.device = q.device AND c.seq = q.seq WHERE q.device = ?1 AND "
			       "q.seq = ?2 AND q.idx = ?3",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, run->device);
	hqsql_bind_int64(st, 2, (int64_t)run->seq);
	hqsql_bind_int64(st, 3, (int64_t)idx);
	rc = hqsql_step(st);
	if (rc == HQSQL_DONE)
		r = fs_error_set(err, -FS_ENOTFOUND, "no quarantined change %u of set %llu from %s",
				 idx, (unsigned long long)run->seq, run->device);
	else if (rc != HQSQL_ROW)
		r = hqsql_fail(run->ctx->db, "read a quarantined change", err);
	else if (changeset_open(hqsql_column_blob(st, 0), hqsql_column_bytes(st, 0), hq->box_pk,
				hq->box_sk, ret_all, ret_n, &oerr) < 0)
		r = fs_error_set(err, -FS_ECORRUPT, "stored set %llu from %s: %s",
				 (unsigned long long)run->seq, run->device, oerr.msg);
	else if (idx >= *ret_n)
		r = fs_error_set(err, -FS_ECORRUPT, "stored set %llu from %s has no change %u",
				 (unsigned long long)run->seq, run->device, idx);
	hqsql_finalize(st);
	return r;
}

/* Merge ch, written by run->device, with the steps of a change in a
 * set, so that the outcome is the in-order merge's (a later write still
 * wins): a released change, or HQ's resolution of a conflict. */
static int merge_one(struct run *run, const struct change *ch)
{
	struct before b;
	char *value = cJSON_PrintUnformatted(ch->value);
	int r, other = 0;

	if (!value)
		return fs_error_set(run->err, -ENOMEM, "out of memory");
	if ((r = before_read(run, ch, &b)) == 0) {
		r = merge_record(run, ch, &b, &other);
		if (r == 0 && other)
			r = fs_error_set(run->err, -FS_EVALID,
					 "record %s belongs to another collection: it cannot "
					 "be merged",
					 ch->record_id);
		else if (r == 0 && (r = merge_field(run, ch, value, &b)) == 0)
			r = track_write(run, ch, value, &b);
		before_clear(&b);
	}
	cJSON_free(value);
	return r;
}

int ingest_review(const struct ingest_ctx *ctx, const char *device, uint64_t seq, uint32_t idx,
		  int release, const char *user, const char *reason, struct fs_error *err)
{
	struct run run = { .ctx = ctx, .device = device, .seq = seq, .err = err };
	struct change *ch = NULL;
	struct hqsql_stmt *st = NULL;
	char seqtext[24], idxtext[16];
	size_t n = 0;
	int r;

	run.now_ms = ctx->wall_ms();
	snprintf(seqtext, sizeof(seqtext), "%llu", (unsigned long long)seq);
	snprintf(idxtext, sizeof(idxtext), "%u", idx);
	if ((r = hqsql_begin(ctx->db, HQSQL_WRITE, err)) < 0)
		return r;
	if ((r = quarantined_change(&run, idx, &ch, &n, err)) < 0)
		goto out;
	if (release && ((r = run_prepare(&run)) < 0 || (r = future_base(&run)) < 0 ||
			(r = downsync_writer_new(ctx->db, ctx->forms, &run.down, err)) < 0 ||
			(r = merge_one(&run, &ch[idx])) < 0))
		goto out;
	if ((r = hqsql_prepare(ctx->db,
			       "DELETE FROM quarantine WHERE device = ?1 AND seq = ?2 AND idx = ?3",
			       &st, err)) < 0)
		goto out;
	hqsql_bind_text(st, 1, device);
	hqsql_bind_int64(st, 2, (int64_t)seq);
	hqsql_bind_int64(st, 3, (int64_t)idx);
	if (hqsql_step(st) != HQSQL_DONE) {
		r = hqsql_fail(ctx->db, "take the change out of quarantine", err);
		goto out;
	}
	if ((r = audit_append_strings(ctx->db, run.now_ms, release ? "released" : "rejected",
				      device, err, "seq", seqtext, "idx", idxtext, "record",
				      ch[idx].record_id, "field", ch[idx].field, "user", user,
				      "reason", reason, (const char *)NULL)) < 0)
		goto out;
	hqsql_finalize(st);
	st = NULL;
	run_finalize(&run);
	r = hqsql_commit(ctx->db, err);
out:
	if (r < 0)
		hqsql_rollback(ctx->db);
	hqsql_finalize(st);
	run_finalize(&run);
	changes_free(ch, n);
	return r;
}

/* ---- resolving a conflict ---------------------------------------------- */

/* What ingest_resolve reads of conflict id, in its transaction. */
struct open_conflict {
	struct change ch; /* record, collection, field; value and hlc to come */
	char *value_a, *value_b;
	hlc_t last; /* the latest write HQ holds to the field */
};

static int conflict_read(struct run *run, int64_t id, struct open_conflict *oc)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	/* Every write HQ merged is in field_writes; fields.hlc as well, for
	 * a value merged before HQ kept writes. */
	if ((r = hqsql_prepare(
		     run->ctx->db,
		     "SELECT c.record_id, r.collection, c.field, c.value_a, c.value_b, "
		     "(SELECT count(*) FROM resolutions s WHERE s.conflict_id = c.id), "
		     "(SELECT max(w.hlc) FROM field_writes w WHERE w.record_id = "
		     "c.record_id AND w.field = c.field), (SELECT f.hlc FROM fields f "
		     "WHERE f.record_id = c.record_id AND f.field = c.field), c.hlc_b "
		     "FROM conflicts c JOIN records r ON r.id = c.record_id WHERE c.id = ?1",
		     &st, run->err)) < 0)
		return r;
	hqsql_bind_int64(st, 1, id);
	rc = hqsql_step(st);
	if (rc == HQSQL_DONE) {
		r = fs_error_set(run->err, -FS_ENOTFOUND, "no conflict %lld", (long long)id);
	} else if (rc != HQSQL_ROW) {
		r = hqsql_fail(run->ctx->db, "read the conflict", run->err);
	} else if (hqsql_column_int64(st, 5) > 0) {
		r = fs_error_set(run->err, -FS_EEXIST, "conflict %lld is already resolved",
				 (long long)id);
	} else if (hqsql_column_int64(st, 7) > hqsql_column_int64(st, 8)) {
		/* b is the pair's later write: a later one holds the field, and
		 * a decision between a and b would silently undo it. */
		r = fs_error_set(run->err, -FS_EEXIST,
				 "conflict %lld: the field was changed after it; look at the "
				 "record as it is now",
				 (long long)id);
	} else {
		snprintf(oc->ch.record_id, sizeof(oc->ch.record_id), "%s",
			 hqsql_column_text(st, 0));
		snprintf(oc->ch.collection, sizeof(oc->ch.collection), "%s",
			 hqsql_column_text(st, 1));
		snprintf(oc->ch.field, sizeof(oc->ch.field), "%s", hqsql_column_text(st, 2));
		oc->last = (hlc_t)hqsql_column_int64(st, 6);
		if ((hlc_t)hqsql_column_int64(st, 7) > oc->last)
			oc->last = (hlc_t)hqsql_column_int64(st, 7);
		if (!(oc->value_a = strdup(hqsql_column_text(st, 3))) ||
		    !(oc->value_b = strdup(hqsql_column_text(st, 4))))
			r = fs_error_set(run->err, -ENOMEM, "out of memory");
	}
	hqsql_finalize(st);
	return r;
}

/* The value chosen, as JSON, into oc->ch.value. */
static int resolution_value(struct run *run, struct open_conflict *oc, const char *choice,
			    const char *text)
{
	const struct form *f = hqforms_find(run->ctx->forms, oc->ch.collection);
	struct fs_error verr = { 0 };

	if (!strcmp(choice, "a") || !strcmp(choice, "b")) {
		if (!(oc->ch.value = cJSON_Parse(!strcmp(choice, "a") ? oc->value_a : oc->value_b)))
			return fs_error_set(run->err, -FS_ECORRUPT,
					    "conflict on %s: a stored value is not JSON",
					    oc->ch.field);
		return 0;
	}
	if (!f)
		return fs_error_set(run->err, -FS_EVALID, "HQ has no form for %s",
				    oc->ch.collection);
	if (form_value_from_text(f, oc->ch.field, text, &oc->ch.value, &verr) < 0)
		return fs_error_set(run->err, -FS_EVALID, "%s", verr.msg);
	return 0;
}

int ingest_resolve(const struct ingest_ctx *ctx, int64_t conflict_id, const char *choice,
		   const char *text, const char *user, struct fs_error *err)
{
	struct run run = { .ctx = ctx, .device = ctx->hq->id, .err = err };
	struct open_conflict oc = { 0 };
	struct hqsql_stmt *st = NULL;
	char idtext[24], buf[sizeof(err->msg)];
	const char *reason = NULL;
	int r;

	if (!choice || (strcmp(choice, "a") && strcmp(choice, "b") && strcmp(choice, "new")) ||
	    !strcmp(choice, "new") != (text != NULL))
		return fs_error_set(err, -FS_EUSAGE,
				    "resolve: keep \"a\" or \"b\", or give a new value");
	run.now_ms = ctx->wall_ms();
	snprintf(idtext, sizeof(idtext), "%lld", (long long)conflict_id);
	if ((r = hqsql_begin(ctx->db, HQSQL_WRITE, err)) < 0)
		return r;
	if ((r = conflict_read(&run, conflict_id, &oc)) < 0 || (r = run_prepare(&run)) < 0 ||
	    (r = future_base(&run)) < 0 || (r = resolution_value(&run, &oc, choice, text)) < 0)
		goto out;
	/* After every write HQ holds, so that it wins here and on every
	 * device that has seen them; a later edit still wins over it. */
	oc.ch.hlc = hlc_next(oc.last, run.now_ms);
	if ((r = change_problem(&run, &oc.ch, &reason, buf, sizeof(buf))) < 0)
		goto out;
	if (reason) {
		r = fs_error_set(err, -FS_EVALID, "conflict %s: %s", idtext, reason);
		goto out;
	}
	if ((r = downsync_writer_new(ctx->db, ctx->forms, &run.down, err)) < 0 ||
	    (r = merge_one(&run, &oc.ch)) < 0)
		goto out;
	/* The value settles every open conflict on the field. */
	if ((r = hqsql_prepare(ctx->db,
			       "INSERT INTO resolutions(conflict_id, settled_by, choice, hlc, "
			       "resolved_by, resolved_at) SELECT c.id, ?1, ?2, ?3, ?4, ?5 FROM "
			       "conflicts c WHERE c.record_id = ?6 AND c.field = ?7 AND NOT EXISTS "
			       "(SELECT 1 FROM resolutions s WHERE s.conflict_id = c.id)",
			       &st, err)) < 0)
		goto out;
	hqsql_bind_int64(st, 1, conflict_id);
	hqsql_bind_text(st, 2, choice);
	hqsql_bind_int64(st, 3, (int64_t)oc.ch.hlc);
	hqsql_bind_text(st, 4, user);
	hqsql_bind_int64(st, 5, (int64_t)run.now_ms);
	hqsql_bind_text(st, 6, oc.ch.record_id);
	hqsql_bind_text(st, 7, oc.ch.field);
	if (hqsql_step(st) != HQSQL_DONE) {
		r = hqsql_fail(ctx->db, "record the resolution", err);
		goto out;
	}
	if ((r = audit_append_strings(ctx->db, run.now_ms, "resolved", NULL, err, "conflict",
				      idtext, "record", oc.ch.record_id, "field", oc.ch.field,
				      "choice", choice, "user", user, (const char *)NULL)) < 0)
		goto out;
	hqsql_finalize(st);
	st = NULL;
	run_finalize(&run);
	r = hqsql_commit(ctx->db, err);
out:
	if (r < 0)
		hqsql_rollback(ctx->db);
	hqsql_finalize(st);
	run_finalize(&run);
	cJSON_Delete(oc.ch.value);
	free(oc.value_a);
	free(oc.value_b);
	return r;
}

/* ---- entry point ------------------------------------------------------- */

/* Log a refusal in its own transaction, after the rollback. */
static int log_rejection(const struct ingest_ctx *ctx, const struct ingest_result *res,
			 uint64_t now_ms, struct fs_error *err)
{
	return push_event(ctx->db, now_ms, res, err,
			  "\"result\":\"rejected\",\"seq\":%llu,\"status\":%d,\"error\":\"%s\"",
			  (unsigned long long)res->seq, res->status, res->error);
}

static int log_duplicate(const struct ingest_ctx *ctx, const struct ingest_result *res,
			 uint64_t now_ms, struct fs_error *err)
{
	return push_event(ctx->db, now_ms, res, err, "\"result\":\"duplicate\",\"seq\":%llu",
			  (unsigned long long)res->seq);
}

/* The checks and the merge, inside the transaction. */
/* A version 1 set seals no binding, so whoever is enrolled could present
 * a captured one as its own.  It is read (sets packed before version 2)
 * only from a device enrolled before this HQ moved to version 2
 * (devices.unbound_ok, set by the schema upgrade) that has sent no
 * version 2 set since, and never with ctx->refuse_unbound.  A device
 * enrolled since never may: its software writes version 2.  1: refuse,
 * 0: read, < 0: error. */
static int unbound_refused(struct run *run, const char *device)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if (run->ctx->refuse_unbound)
		return 1;
	if ((r = hqsql_prepare(run->ctx->db, "SELECT unbound_ok FROM devices WHERE id = ?1", &st,
			       run->err)) < 0)
		return r;
	hqsql_bind_text(st, 1, device);
	rc = hqsql_step(st);
	r = rc == HQSQL_ROW ? !(int)hqsql_column_int64(st, 0)
	    : rc == HQSQL_DONE
		    ? 1
		    : hqsql_fail(run->ctx->db, "look up the device's versions", run->err);
	hqsql_finalize(st);
	return r;
}

static int ingest_locked(struct run *run, const struct changeset_header *h, const uint8_t *body,
			 size_t len, struct ingest_result *ret)
{
	uint8_t hash_raw[CHANGESET_HASH_BYTES];
	char hash[HASH_HEX];
	struct device_row d;
	int r;

	if ((r = device_load(run->ctx->db, ret->device, &d, run->err)) < 0)
		return r;
	if (r == 0)
		return REFUSE(ret, 401, "unknown_device", "device %s is not enrolled", ret->device);
	if (changeset_verify(body, len, d.sign_pk) < 0)
		return REFUSE(ret, 401, "bad_signature",
			      "the signature does not verify with the enrolled key");
	/* Only what a device really sent is worth an event; the rest is
	 * anyone's noise, and must not grow the database. */
	ret->authenticated = 1;
	if (d.revoked)
		return REFUSE(ret, 403, "revoked", "device %s has been revoked", ret->device);
	changeset_hash(body, len, hash_raw);
	sodium_bin2hex(hash, sizeof(hash), hash_raw, sizeof(hash_raw));
	if ((r = check_sequence(run->ctx, h, &d, hash, ret, run->err)) < 0 || ret->status)
		return r;
	if (h->version == CHANGESET_VERSION_UNBOUND && (r = unbound_refused(run, ret->device)) != 0)
		return r < 0 ? r
			     : REFUSE(ret, 400, "malformed",
				      "change set version 1 (unbound) is not accepted from device "
				      "%s (enrolled since version 2, or it has sent version 2)",
				      ret->device);
	return accept_set(run, h, body, len, hash_raw, hash, ret);
}

int ingest_changeset(const struct ingest_ctx *ctx, const uint8_t *body, size_t len,
		     struct ingest_result *ret, struct fs_error *err)
{
	struct ingest_result res = { 0 };
	struct changeset_header h;
	struct fs_error perr = { 0 };
	struct run run = { .ctx = ctx, .err = err, .now_ms = ctx->wall_ms() };
	int r;

	if (changeset_parse(body, len, &h, &perr) < 0) {
		REFUSE(&res, 400, "malformed", "change set: %s", perr.msg);
		goto rejected;
	}
	sodium_bin2hex(res.device, sizeof(res.device), h.device, CHANGESET_DEVICE_BYTES);
	res.seq = h.seq;
	if (ctx->device_time_ms) {
		res.clock_skew_ms = (int64_t)ctx->device_time_ms -
				    (int64_t)(ctx->request_ms ? ctx->request_ms : run.now_ms);
		res.skewed = res.clock_skew_ms > (int64_t)INGEST_SKEW_REPORT_MS ||
			     res.clock_skew_ms < -(int64_t)INGEST_SKEW_REPORT_MS;
	}
	run.device = res.device;
	run.seq = h.seq;
	if ((r = hqsql_begin(ctx->db, HQSQL_WRITE, err)) < 0)
		goto fail;
	r = ingest_locked(&run, &h, body, len, &res);
	if (r == 0 && res.status == 200 && !res.duplicate)
		r = hqsql_commit(ctx->db, err);
	/* Refused, a repeat, or COMMIT failed or never ran: nothing
	 * half-done stays (a no-op after a commit). */
	hqsql_rollback(ctx->db);
	if (r < 0)
		goto fail;
	if (res.status == 200) {
		/* A repeat is audited too: who sent what, even twice. */
		if (res.duplicate && (r = log_duplicate(ctx, &res, run.now_ms, err)) < 0)
			goto fail;
		*ret = res;
		return 0;
	}
rejected:
	if (res.authenticated && (r = log_rejection(ctx, &res, run.now_ms, err)) < 0)
		goto fail;
	*ret = res;
	return 0;
fail:
	ingest_result_clear(&res);
	return r;
}
