/* synclog.c - the sync log table (schema in agent/store.c). */
#include "agent/synclog.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { SLOT_LOG_ADD = 26, SLOT_LOG_PRUNE, SLOT_LOG_REPEAT };

const char *synclog_result(int code)
{
	switch (code) {
	case 0:
		return "accepted";
	case -EHOSTUNREACH:
		return "unreachable";
	case -EBUSY:
		return "busy";
	case -EACCES:
		return "revoked";
	case -EPERM:
	case -EBADMSG:
	case -FS_ELIMIT:
	case -EPROTO:
		return "refused";
	case -FS_EKEY:
	case -FS_EAUTH:
		return "key";
	case -ECANCELED:
		return "abandoned";
	default:
		return "error";
	}
}

int synclog_add(struct store *s, const struct synclog_entry *e, struct fs_error *err)
{
	sqlite3_stmt *st;
	int r;

	if ((r = store_begin(s, err)) < 0)
		return r;
	if (strcmp(e->result, "accepted") != 0 && e->sets == 0) {
		/* Fold into the newest row if it is the same failure. */
		r = store_stmt(s, SLOT_LOG_REPEAT,
			       "UPDATE sync_log SET repeats = repeats + 1, last_at = ?1, "
			       "duration_ms = ?2, detail = ?3 "
			       "WHERE id = (SELECT max(id) FROM sync_log) AND event = ?4 "
			       "AND result = ?5 AND sets = 0",
			       &st, err);
		if (r < 0)
			goto fail;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)e->at_ms);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)e->duration_ms);
		if (e->detail)
			sqlite3_bind_text(st, 3, e->detail, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, e->event, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, e->result, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			r = store_fail(s, "write sync log in", err);
			goto fail;
		}
		sqlite3_reset(st);
		if (sqlite3_changes(store_db(s)) == 1)
			return store_commit(s, err);
	}
	r = store_stmt(s, SLOT_LOG_ADD,
		       "INSERT INTO sync_log(at, event, result, sets, changes, bytes, duration_ms, "
		       "detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		       &st, err);
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)e->at_ms);
	sqlite3_bind_text(st, 2, e->event, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->result, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)e->sets);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)e->changes);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)e->bytes);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)e->duration_ms);
	if (e->detail)
		sqlite3_bind_text(st, 8, e->detail, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		r = store_fail(s, "write sync log in", err);
		goto fail;
	}
	sqlite3_reset(st);
	/* Bounded: a device offline for months retries every few minutes. */
	r = store_stmt(s, SLOT_LOG_PRUNE,
		       "DELETE FROM sync_log WHERE id <= (SELECT max(id) FROM sync_log) - ?1", &st,
		       err);
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, SYNCLOG_KEEP);
	if (sqlite3_step(st) != SQLITE_DONE) {
		r = store_fail(s, "prune sync log in", err);
		goto fail;
	}
	sqlite3_reset(st);
	return store_commit(s, err);
fail:
	store_rollback(s);
	return r;
}

static cJSON *entry_json(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	const char *detail = (const char *)sqlite3_column_text(st, 8);
	sqlite3_int64 repeats = sqlite3_column_int64(st, 9);
	char at[HLC_TIME_LEN + 1], last[HLC_TIME_LEN + 1];

	hlc_format_time((hlc_t)sqlite3_column_int64(st, 1) << 16, at);
	if (!o || !cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0)) ||
	    !cJSON_AddStringToObject(o, "at", at) ||
	    !cJSON_AddStringToObject(o, "event", (const char *)sqlite3_column_text(st, 2)) ||
	    !cJSON_AddStringToObject(o, "result", (const char *)sqlite3_column_text(st, 3)) ||
	    !cJSON_AddNumberToObject(o, "sets", (double)sqlite3_column_int64(st, 4)) ||
	    !cJSON_AddNumberToObject(o, "changes", (double)sqlite3_column_int64(st, 5)) ||
	    !cJSON_AddNumberToObject(o, "bytes", (double)sqlite3_column_int64(st, 6)) ||
	    !cJSON_AddNumberToObject(o, "duration_ms", (double)sqlite3_column_int64(st, 7)) ||
	    (detail && !cJSON_AddStringToObject(o, "detail", detail)))
		goto fail;
	if (repeats > 1) {
		hlc_format_time((hlc_t)sqlite3_column_int64(st, 10) << 16, last);
		if (!cJSON_AddNumberToObject(o, "repeats", (double)repeats) ||
		    !cJSON_AddStringToObject(o, "last_at", last))
			goto fail;
	}
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

int synclog_list(struct store *s, unsigned limit, synclog_fn fn, void *ctx, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0, rc;

	/* Not a cached slot: listing is rare and the statement stays open
	 * across the callbacks. */
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT id, at, event, result, sets, changes, bytes, duration_ms, "
			       "detail, repeats, last_at FROM (SELECT * FROM sync_log ORDER BY id "
			       "DESC LIMIT ?1) "
			       "ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "read sync log in", err);
	sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *o = entry_json(st);

		if (!o) {
			r = fs_error_set(err, -ENOMEM, "read sync log: out of memory");
			break;
		}
		r = fn(o, ctx);
		cJSON_Delete(o);
		if (r < 0) {
			fs_error_set(err, r, "read sync log: %s", fs_strerror(r));
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, "read sync log in", err);
	sqlite3_finalize(st);
	return r;
}

int synclog_last_failure(struct store *s, char *out, size_t cap, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	if (sqlite3_prepare_v2(store_db(s), "SELECT result FROM sync_log ORDER BY id DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "read the sync log in", err);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *res = (const char *)sqlite3_column_text(st, 0);

		if (res && strcmp(res, synclog_result(0)))
			snprintf(out, cap, "%s", res);
	}
	sqlite3_finalize(st);
	return 0;
}
