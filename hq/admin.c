/* admin.c - `devices`, `conflicts` and `revoke` for administrators.
 *
 * Sections: output helpers; listings; devices; conflicts; quarantine;
 * revoke.
 */
#include "hq/admin.h"

#include <errno.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "hq/audit.h"
#include "hq/health.h"
#include "hq/hqsql.h"
#include "sync/hlc.h"

/* ---- output helpers ------------------------------------------------------ */

static void iso_ms(struct hqsql_stmt *st, int col, char out[HLC_TIME_LEN + 1])
{
	if (hqsql_column_is_null(st, col))
		snprintf(out, HLC_TIME_LEN + 1, "never");
	else
		hlc_format_time((hlc_t)hqsql_column_int64(st, col) << 16, out);
}

static const char *col_text(struct hqsql_stmt *st, int col)
{
	const unsigned char *t = (const unsigned char *)hqsql_column_text(st, col);

	return t ? (const char *)t : "";
}

/* Print arr (consumed) as one line of JSON. */
static int print_json(FILE *out, cJSON *arr, struct fs_error *err)
{
	char *text = cJSON_PrintUnformatted(arr);

	cJSON_Delete(arr);
	if (!text)
		return fs_error_set(err, -ENOMEM, "out of memory");
	fprintf(out, "%s\n", text);
	cJSON_free(text);
	return 0;
}

/* A listing: run sql, and hand each row to row(), which prints it to out
 * or, when arr is not NULL, adds it to arr as a JSON object.  With json
 * the whole array is printed as one line at the end. */
typedef int (*row_fn)(struct hqsql_stmt *st, cJSON *arr, FILE *out);

/* Run sql, handing each row to row() with arr and out. */
static int run_rows(struct hqsql *db, const char *sql, const char *what, row_fn row, cJSON *arr,
		    FILE *out, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int rc, r;

	if ((r = hqsql_prepare(db, sql, &st, err)) < 0)
		return r;
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		if (row(st, arr, out) < 0) {
			r = fs_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	if (rc != HQSQL_DONE)
		r = hqsql_fail(db, what, err);
out:
	hqsql_finalize(st);
	return r;
}

static int list_rows(struct hqsql *db, const char *sql, const char *what, row_fn row, int json,
		     FILE *out, struct fs_error *err)
{
	cJSON *arr = json ? cJSON_CreateArray() : NULL;
	int r;

	if (json && !arr)
		return fs_error_set(err, -ENOMEM, "out of memory");
	if ((r = run_rows(db, sql, what, row, arr, out, err)) < 0 || !json) {
		cJSON_Delete(arr);
		return r;
	}
	return print_json(out, arr, err);
}

/* The rows as a JSON array, into *ret (the caller's). */
static int rows_array(struct hqsql *db, const char *sql, const char *what, row_fn row, cJSON **ret,
		      struct fs_error *err)
{
	cJSON *arr = cJSON_CreateArray();
	int r;

	if (!arr)
		return fs_error_set(err, -ENOMEM, "out of memory");
	if ((r = run_rows(db, sql, what, row, arr, NULL, err)) < 0) {
		cJSON_Delete(arr);
		return r;
	}
	*ret = arr;
	return 0;
}

/* A new object in arr; NULL when out of memory. */
static cJSON *row_object(cJSON *arr)
{
	cJSON *o = cJSON_CreateObject();

	if (o && !cJSON_AddItemToArray(arr, o)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ---- devices ----------------------------------------------------------- */

static int device_row(struct hqsql_stmt *st, cJSON *arr, FILE *out)
{
	char seen[HLC_TIME_LEN + 1];
	cJSON *o;

	iso_ms(st, 3, seen);
	if (!arr) {
		fprintf(out, "%-32s  %-24s  %-24s  %-24s  %8lld  %-8s  %s%s%s\n", col_text(st, 0),
			col_text(st, 1), col_text(st, 2), seen,
			(long long)hqsql_column_int64(st, 4), col_text(st, 5), col_text(st, 7),
			col_text(st, 6)[0] ? "; revoked: " : "", col_text(st, 6));
		return 0;
	}
	if (!(o = row_object(arr)) || !cJSON_AddStringToObject(o, "id", col_text(st, 0)) ||
	    !cJSON_AddStringToObject(o, "team", col_text(st, 1)) ||
	    !cJSON_AddStringToObject(o, "municipality", col_text(st, 2)) ||
	    !(hqsql_column_is_null(st, 3) ? cJSON_AddNullToObject(o, "last_seen")
					  : cJSON_AddStringToObject(o, "last_seen", seen)) ||
	    !(hqsql_column_is_null(st, 3)
		      ? cJSON_AddNullToObject(o, "last_seen_ms")
		      : cJSON_AddNumberToObject(o, "last_seen_ms",
						(double)hqsql_column_int64(st, 3))) ||
	    !cJSON_AddNumberToObject(o, "last_seq", (double)hqsql_column_int64(st, 4)) ||
	    !cJSON_AddStringToObject(o, "state", col_text(st, 5)) ||
	    (col_text(st, 6)[0] && !cJSON_AddStringToObject(o, "revoked_reason", col_text(st, 6))))
		return -ENOMEM;
	/* The scope as a list, not the text shown to a person. */
	if (!cJSON_AddItemToObject(o, "scope", cJSON_Parse(col_text(st, 8))))
		return -ENOMEM;
	/* What the device last said of itself (hq/health.h). */
	return health_add_facts(o, hqsql_column_is_null(st, 9) ? NULL : col_text(st, 9),
				hqsql_column_is_null(st, 10) ? -1 : hqsql_column_int64(st, 10),
				hlc_wall_ms());
}

/* The scope's names in key order, as text and as a JSON array: each
 * engine has its own aggregates for that. */
static const char *devices_sql(struct hqsql *db)
{
	return hqsql_backend(db) == HQSQL_POSTGRESQL
		       ? "SELECT id, team, municipality, last_seen, last_seq, state, "
			 "revoked_reason, (SELECT string_agg(name, ', ' ORDER BY key) FROM "
			 "device_scopes WHERE device = d.id), (SELECT coalesce(json_agg(name "
			 "ORDER BY key), '[]') FROM device_scopes WHERE device = d.id), "
			 "health, health_at FROM devices d ORDER BY team, id"
		       : "SELECT id, team, municipality, last_seen, last_seq, state, "
			 "revoked_reason, (SELECT group_concat(name, ', ') FROM (SELECT "
			 "name FROM device_scopes WHERE device = d.id ORDER BY key)), "
			 "(SELECT json_group_array(name) FROM (SELECT name FROM "
			 "device_scopes WHERE device = d.id ORDER BY key)), "
			 "health, health_at FROM devices d ORDER BY team, id";
}

int admin_devices(struct hqsql *db, int json, FILE *out, struct fs_error *err)
{
	if (!json)
		fprintf(out, "%-32s  %-24s  %-24s  %-24s  %8s  %-8s  %s\n", "DEVICE", "TEAM",
			"MUNICIPALITY", "LAST SEEN", "LAST SEQ", "STATE", "SCOPE");
	return list_rows(db, devices_sql(db), "list devices", device_row, json, out, err);
}

int admin_devices_array(struct hqsql *db, cJSON **ret, struct fs_error *err)
{
	return rows_array(db, devices_sql(db), "list devices", device_row, ret, err);
}

/* ---- conflicts ---------------------------------------------------------- */

/* A device's team, or "an unknown device" for one HQ has no row for. */
static const char *team_or(struct hqsql_stmt *st, int col)
{
	return hqsql_column_is_null(st, col) ? "an unknown device" : col_text(st, col);
}

const char *admin_resolution_words(const char *choice)
{
	return !strcmp(choice, "a")   ? "kept a's value"
	       : !strcmp(choice, "b") ? "kept b's value"
				      : "entered a new value";
}

static int conflict_row(struct hqsql_stmt *st, cJSON *arr, FILE *out)
{
	char ha[HLC_TIME_LEN + 1], hb[HLC_TEXT_LEN + 1], ta[HLC_TIME_LEN + 1], tb[HLC_TIME_LEN + 1];
	cJSON *o, *va, *vb, *res;

	if (!arr) {
		int b_won = !strcmp(col_text(st, 8), col_text(st, 6));

		/* Teams by name (the device id, shortened, tells two laptops
		 * of one team apart); the edit kept is the later one in HLC
		 * order, the same on every replica. */
		hlc_format_time((hlc_t)hqsql_column_int64(st, 4), ta);
		hlc_format_time((hlc_t)hqsql_column_int64(st, 7), tb);
		fprintf(out,
			"conflict %lld: record %s, field %s\n  a: %s (device %.8s) set %s at %s\n"
			"  b: %s (device %.8s) set %s at %s\n  kept: %s from %s, the later edit\n",
			(long long)hqsql_column_int64(st, 11), col_text(st, 0), col_text(st, 1),
			team_or(st, 9), col_text(st, 3), col_text(st, 2), ta, team_or(st, 10),
			col_text(st, 6), col_text(st, 5), tb, col_text(st, b_won ? 5 : 2),
			team_or(st, b_won ? 10 : 9));
		if (hqsql_column_is_null(st, 13) && hqsql_column_int64(st, 17))
			fputs("  changed since: a later edit holds the field\n", out);
		if (!hqsql_column_is_null(st, 13)) {
			iso_ms(st, 16, ta);
			fprintf(out, "  resolved by %s at %s (conflict %lld: %s)\n",
				col_text(st, 15), ta, (long long)hqsql_column_int64(st, 13),
				admin_resolution_words(col_text(st, 14)));
		}
		return 0;
	}
	if (!(o = row_object(arr)))
		return -ENOMEM;
	hlc_format((hlc_t)hqsql_column_int64(st, 4), ha);
	hlc_format((hlc_t)hqsql_column_int64(st, 7), hb);
	va = cJSON_Parse(col_text(st, 2));
	vb = cJSON_Parse(col_text(st, 5));
	if (!va || !vb || !cJSON_AddStringToObject(o, "record", col_text(st, 0)) ||
	    !cJSON_AddStringToObject(o, "field", col_text(st, 1))) {
		cJSON_Delete(va);
		cJSON_Delete(vb);
		return -ENOMEM;
	}
	cJSON_AddItemToObject(o, "value_a", va);
	hlc_format_time((hlc_t)hqsql_column_int64(st, 4), ta);
	hlc_format_time((hlc_t)hqsql_column_int64(st, 7), tb);
	if (!cJSON_AddStringToObject(o, "device_a", col_text(st, 3)) ||
	    !cJSON_AddStringToObject(o, "hlc_a", ha) || !cJSON_AddStringToObject(o, "at_a", ta) ||
	    !cJSON_AddStringToObject(o, "at_b", tb)) {
		cJSON_Delete(vb);
		return -ENOMEM;
	}
	cJSON_AddItemToObject(o, "value_b", vb);
	if (!cJSON_AddStringToObject(o, "device_b", col_text(st, 6)) ||
	    !cJSON_AddStringToObject(o, "hlc_b", hb) ||
	    !cJSON_AddStringToObject(o, "winner", col_text(st, 8)) ||
	    !(hqsql_column_is_null(st, 9)
		      ? cJSON_AddNullToObject(o, "team_a")
		      : cJSON_AddStringToObject(o, "team_a", col_text(st, 9))) ||
	    !(hqsql_column_is_null(st, 10)
		      ? cJSON_AddNullToObject(o, "team_b")
		      : cJSON_AddStringToObject(o, "team_b", col_text(st, 10))) ||
	    !cJSON_AddNumberToObject(o, "id", (double)hqsql_column_int64(st, 11)) ||
	    !(hqsql_column_is_null(st, 12)
		      ? cJSON_AddNullToObject(o, "scope_key")
		      : cJSON_AddStringToObject(o, "scope_key", col_text(st, 12))))
		return -ENOMEM;
	/* A write later than both holds the field: an administrator's
	 * decision, or an edit since (then there is nothing to decide). */
	if (!cJSON_AddBoolToObject(o, "superseded", hqsql_column_int64(st, 17) != 0))
		return -ENOMEM;
	if (hqsql_column_is_null(st, 13))
		return cJSON_AddNullToObject(o, "resolved") ? 0 : -ENOMEM;
	if (!(res = cJSON_AddObjectToObject(o, "resolved")))
		return -ENOMEM;
	iso_ms(st, 16, ha);
	if (!cJSON_AddNumberToObject(res, "conflict", (double)hqsql_column_int64(st, 13)) ||
	    !cJSON_AddStringToObject(res, "choice", col_text(st, 14)) ||
	    !cJSON_AddStringToObject(res, "by", col_text(st, 15)) ||
	    !cJSON_AddStringToObject(res, "at", ha) ||
	    !cJSON_AddNumberToObject(res, "at_ms", (double)hqsql_column_int64(st, 16)))
		return -ENOMEM;
	return 0;
}

/* Columns 0 to 10 as conflict_row's first lines read them; then the
 * conflict's id, its record's scope key, its resolution if any, and
 * whether a write later than both holds the field. */
#define CONFLICTS_SQL                                                                              \
	"SELECT c.record_id, c.field, c.value_a, c.device_a, c.hlc_a, "                            \
	"c.value_b, c.device_b, c.hlc_b, c.winner, da.team, db.team, c.id, r.scope_key, "          \
	"s.settled_by, s.choice, s.resolved_by, s.resolved_at, "                                   \
	"CASE WHEN f.hlc > c.hlc_b THEN 1 ELSE 0 END "                                             \
	"FROM conflicts c JOIN records r ON r.id = c.record_id "                                   \
	"LEFT JOIN fields f ON f.record_id = c.record_id AND f.field = c.field "                   \
	"LEFT JOIN devices da ON da.id = c.device_a "                                              \
	"LEFT JOIN devices db ON db.id = c.device_b "                                              \
	"LEFT JOIN resolutions s ON s.conflict_id = c.id "                                         \
	"ORDER BY c.record_id, c.field, c.hlc_a, c.device_a, c.hlc_b, c.device_b"

int admin_conflicts(struct hqsql *db, int json, FILE *out, struct fs_error *err)
{
	return list_rows(db, CONFLICTS_SQL, "list conflicts", conflict_row, json, out, err);
}

int admin_conflicts_array(struct hqsql *db, cJSON **ret, struct fs_error *err)
{
	return rows_array(db, CONFLICTS_SQL, "list conflicts", conflict_row, ret, err);
}

/* ---- quarantine --------------------------------------------------------- */

static int quarantine_row(struct hqsql_stmt *st, cJSON *arr, FILE *out)
{
	char at[HLC_TIME_LEN + 1];
	cJSON *o;

	iso_ms(st, 6, at);
	if (!arr) {
		fprintf(out, "%-32s  %6lld  %5lld  %-36s  %-20s  %-24s  %s\n", col_text(st, 0),
			(long long)hqsql_column_int64(st, 1), (long long)hqsql_column_int64(st, 2),
			col_text(st, 3), col_text(st, 4), at, col_text(st, 5));
		return 0;
	}
	if (!(o = row_object(arr)) || !cJSON_AddStringToObject(o, "device", col_text(st, 0)) ||
	    !cJSON_AddNumberToObject(o, "seq", (double)hqsql_column_int64(st, 1)) ||
	    !cJSON_AddNumberToObject(o, "index", (double)hqsql_column_int64(st, 2)) ||
	    !cJSON_AddStringToObject(o, "record", col_text(st, 3)) ||
	    !cJSON_AddStringToObject(o, "field", col_text(st, 4)) ||
	    !cJSON_AddStringToObject(o, "reason", col_text(st, 5)) ||
	    !cJSON_AddStringToObject(o, "received", at) ||
	    !cJSON_AddStringToObject(o, "team", col_text(st, 7)) ||
	    !cJSON_AddStringToObject(o, "municipality", col_text(st, 8)) ||
	    !(hqsql_column_is_null(st, 9)
		      ? cJSON_AddNullToObject(o, "scope_key")
		      : cJSON_AddStringToObject(o, "scope_key", col_text(st, 9))))
		return -ENOMEM;
	return 0;
}

/* With the sending device's team and municipality, and the record's
 * scope key when HQ holds the record, for the console. */
#define QUARANTINE_SQL                                                                             \
	"SELECT q.device, q.seq, q.idx, q.record_id, q.field, q.reason, c.received_at, d.team, "   \
	"d.municipality, r.scope_key FROM quarantine q JOIN changesets c ON c.device = q.device "  \
	"AND c.seq = q.seq JOIN devices d ON d.id = q.device LEFT JOIN records r ON r.id = "       \
	"q.record_id ORDER BY q.device, q.seq, q.idx"

int admin_quarantine(struct hqsql *db, int json, FILE *out, struct fs_error *err)
{
	if (!json)
		fprintf(out, "%-32s  %6s  %5s  %-36s  %-20s  %-24s  %s\n", "DEVICE", "SEQ", "INDEX",
			"RECORD", "FIELD", "RECEIVED", "REASON");
	return list_rows(db, QUARANTINE_SQL, "list quarantine", quarantine_row, json, out, err);
}

int admin_quarantine_array(struct hqsql *db, cJSON **ret, struct fs_error *err)
{
	return rows_array(db, QUARANTINE_SQL, "list quarantine", quarantine_row, ret, err);
}

/* ---- review ------------------------------------------------------------- */

/* Columns: record, collection, field, hlc, writer device, writer team,
 * owner device, owner team, kept (the write is the merged value). */
static int review_row(struct hqsql_stmt *st, cJSON *arr, FILE *out)
{
	char when[HLC_TIME_LEN + 1], hlc[HLC_TEXT_LEN + 1];
	int deleted = !strcmp(col_text(st, 2), "_deleted"), kept = (int)hqsql_column_int64(st, 8);
	cJSON *o;

	hlc_format_time((hlc_t)hqsql_column_int64(st, 3), when);
	if (!arr) {
		if (deleted)
			fprintf(out,
				"%s  record %s (%s) deleted by %s (device %.8s); registered by "
				"%s%s\n",
				when, col_text(st, 0), col_text(st, 1), team_or(st, 5),
				col_text(st, 4), team_or(st, 7), kept ? "" : "; not kept");
		else
			fprintf(out,
				"%s  record %s (%s), field %s changed by %s (device %.8s); "
				"registered by %s; %s\n",
				when, col_text(st, 0), col_text(st, 1), col_text(st, 2),
				team_or(st, 5), col_text(st, 4), team_or(st, 7),
				kept ? "kept" : "a later edit was kept");
		return 0;
	}
	hlc_format((hlc_t)hqsql_column_int64(st, 3), hlc);
	if (!(o = row_object(arr)) || !cJSON_AddStringToObject(o, "record", col_text(st, 0)) ||
	    !cJSON_AddStringToObject(o, "collection", col_text(st, 1)) ||
	    !cJSON_AddStringToObject(o, "field", col_text(st, 2)) ||
	    !cJSON_AddStringToObject(o, "hlc", hlc) ||
	    !cJSON_AddStringToObject(o, "device", col_text(st, 4)) ||
	    !cJSON_AddStringToObject(o, "team", team_or(st, 5)) ||
	    !cJSON_AddStringToObject(o, "owner_device", col_text(st, 6)) ||
	    !cJSON_AddStringToObject(o, "owner_team", team_or(st, 7)) ||
	    !cJSON_AddBoolToObject(o, "kept", kept))
		return -ENOMEM;
	return 0;
}

int admin_review(struct hqsql *db, int json, FILE *out, struct fs_error *err)
{
	/* The owner is the team whose write came first by the merge order:
	 * the one that registered the household.  Values are compared, never
	 * printed. */
	return list_rows(
		db,
		"WITH owners AS (SELECT record_id, device FROM (SELECT record_id, device, "
		"row_number() OVER (PARTITION BY record_id ORDER BY hlc, device) AS n "
		"FROM field_writes) AS w1 WHERE n = 1) "
		"SELECT w.record_id, r.collection, w.field, w.hlc, w.device, dw.team, "
		"o.device, dc.team, CASE WHEN f.hlc = w.hlc AND f.device = w.device THEN 1 "
		"ELSE 0 END "
		"FROM field_writes w JOIN records r ON r.id = w.record_id "
		"JOIN owners o ON o.record_id = w.record_id "
		"LEFT JOIN devices dw ON dw.id = w.device "
		"LEFT JOIN devices dc ON dc.id = o.device "
		"LEFT JOIN fields f ON f.record_id = w.record_id AND f.field = w.field "
		"WHERE (w.field = '_deleted' OR dw.team IS DISTINCT FROM dc.team) "
		/* A write that leaves the value as the write before it
		 * (in merge order) had it changes nothing: an import of
		 * the same caseload list is not news. */
		"AND w.value IS DISTINCT FROM (SELECT p.value FROM field_writes p "
		"WHERE p.record_id = w.record_id AND p.field = w.field AND "
		"(p.hlc < w.hlc OR (p.hlc = w.hlc AND p.device < w.device)) "
		"ORDER BY p.hlc DESC, p.device DESC LIMIT 1) "
		"ORDER BY w.hlc, w.device, w.record_id, w.field",
		"list writes to review", review_row, json, out, err);
}

/* ---- revoke ------------------------------------------------------------- */

int admin_revoke(struct hqsql *db, const char *device, const char *reason, uint64_t now_ms,
		 struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	char tok[FS_TOKEN_MAX + 3];
	int r;

	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		return r;
	if ((r = hqsql_prepare(db,
			       "UPDATE devices SET state = 'revoked', revoked_reason = ?2 "
			       "WHERE id = ?1 AND state = 'active'",
			       &st, err)) < 0)
		goto out;
	hqsql_bind_text(st, 1, device);
	hqsql_bind_text(st, 2, reason);
	if (hqsql_step(st) != HQSQL_DONE) {
		r = hqsql_fail(db, "revoke device", err);
		goto out;
	}
	if (hqsql_changes(st) != 1) {
		r = fs_error_set(err, -FS_ENOTFOUND, "device %s: not enrolled or already revoked",
				 fs_error_token(device, tok));
		goto out;
	}
	if ((r = audit_append_strings(db, now_ms, "revoke", device, err, "reason", reason,
				      (const char *)NULL)) < 0)
		goto out;
	r = hqsql_commit(db, err);
out:
	hqsql_finalize(st);
	hqsql_rollback(db);
	return r;
}
