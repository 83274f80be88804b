/* migrate.c - see migrate.h. */
#include "hq/migrate.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hq/audit.h"
#include "hq/hqsql.h"
#include "sync/hlc.h"

/* In an order the foreign keys accept, each with the column that orders
 * its rows (events must go in id order: a trigger checks the numbering). */
static const struct {
	const char *name, *order;
} tables[] = {
	{ "devices", "id" },
	{ "tokens", "secret_hash" },
	{ "changesets", "device, seq" },
	{ "records", "id" },
	{ "fields", "record_id, field" },
	{ "field_writes", "record_id, field, device, hlc" },
	{ "conflicts", "id" },
	{ "quarantine", "device, seq, idx" },
	{ "events", "id" },
	{ "checkpoints", "size" },
	{ "audit_nodes", "level, idx" },
	{ "device_scopes", "device, key" },
	{ "counters", "name" },
	{ "scope_fields", "collection" },
	{ "scope_moves", "rev" },
	{ "down_state", "device" },
	{ "down_cursors", "device, key" },
	{ "form_versions", "collection, version" },
	{ "users", "name" },
	{ "login_failures", "key" },
	{ "resolutions", "conflict_id" },
};

/* The columns of table in the SQLite database, as "a, b, c", and how many. */
static int columns(sqlite3 *db, const char *table, char *out, size_t cap, int *n,
		   struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	char sql[128];
	size_t len = 0;
	int rc;

	*n = 0;
	out[0] = '\0';
	snprintf(sql, sizeof(sql), "SELECT name FROM pragma_table_info('%s') ORDER BY cid", table);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return fs_error_set(err, -FS_ESTORE, "migrate %s: %s", table, sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		len += (size_t)snprintf(out + len, cap - len, "%s%s", *n ? ", " : "",
					(const char *)sqlite3_column_text(st, 0));
		(*n)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || !*n || len >= cap || *n > HQSQL_MAX_PARAMS)
		return fs_error_set(err, -FS_ESTORE, "migrate %s: cannot read its columns", table);
	return 0;
}

static int copy_table(sqlite3 *src, struct hqsql *to, const char *table, const char *order,
		      long long *ret_rows, struct fs_error *err)
{
	char cols[1024], sql[2048], what[96];
	sqlite3_stmt *rd = NULL;
	struct hqsql_stmt *wr = NULL;
	size_t len;
	int n, r, rc;

	*ret_rows = 0;
	snprintf(what, sizeof(what), "migrate %s", table);
	if ((r = columns(src, table, cols, sizeof(cols), &n, err)) < 0)
		return r;
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s", cols, table, order);
	if (sqlite3_prepare_v2(src, sql, -1, &rd, NULL) != SQLITE_OK)
		return fs_error_set(err, -FS_ESTORE, "%s: %s", what, sqlite3_errmsg(src));
	len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s(%s) VALUES (", table, cols);
	for (int i = 1; i <= n; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "?%d%s", i,
					i < n ? ", " : ")");
	if ((r = hqsql_prepare(to, sql, &wr, err)) < 0)
		goto out;
	while ((rc = sqlite3_step(rd)) == SQLITE_ROW) {
		hqsql_reset(wr);
		for (int i = 0; i < n; i++) {
			switch (sqlite3_column_type(rd, i)) {
			case SQLITE_NULL:
				hqsql_bind_null(wr, i + 1);
				break;
			case SQLITE_INTEGER:
				hqsql_bind_int64(wr, i + 1, sqlite3_column_int64(rd, i));
				break;
			case SQLITE_BLOB:
				hqsql_bind_blob(wr, i + 1, sqlite3_column_blob(rd, i),
						(size_t)sqlite3_column_bytes(rd, i));
				break;
			default:
				hqsql_bind_text(wr, i + 1,
						(const char *)sqlite3_column_text(rd, i));
			}
		}
		/* Sent ahead (table names a static string): a failure ends the
		 * transaction, and the commit reports it. */
		if ((r = hqsql_step_later(wr, table, err)) < 0)
			goto out;
		(*ret_rows)++;
	}
	if (rc != SQLITE_DONE)
		r = fs_error_set(err, -FS_ESTORE, "%s: %s", what, sqlite3_errmsg(src));
out:
	hqsql_finalize(wr);
	sqlite3_finalize(rd);
	return r;
}

int migrate_to_postgresql(struct hqsql *from, struct hqsql *to, FILE *out, struct fs_error *err)
{
	sqlite3 *src = hqsql_sqlite(from);
	int r;

	if (!src || hqsql_backend(to) != HQSQL_POSTGRESQL)
		return fs_error_set(err, -FS_EUSAGE, "migrate: from SQLite to PostgreSQL only");
	/* One transaction on each side: a snapshot of SQLite, and all or
	 * nothing in PostgreSQL, the schema included. */
	if ((r = hqsql_begin(from, HQSQL_READ, err)) < 0)
		return r;
	if ((r = hqsql_begin(to, HQSQL_WRITE, err)) < 0 ||
	    (r = pgdb_create_schema_in(hqsql_pg(to), err)) < 0)
		goto out;
	/* The new schema's starting counter gives way to the copied one. */
	if ((r = hqsql_exec(to, "DELETE FROM counters", "migrate counters", err)) < 0)
		goto out;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]) && r == 0; i++) {
		long long rows = 0;

		if ((r = copy_table(src, to, tables[i].name, tables[i].order, &rows, err)) == 0)
			fprintf(out, "%-14s %lld rows\n", tables[i].name, rows);
	}
	/* Conflicts get their ids from an identity: the next one follows the
	 * copied ones. */
	if (r == 0)
		r = hqsql_exec(to,
			       "SELECT setval(pg_get_serial_sequence('conflicts', 'id'), "
			       "coalesce((SELECT max(id) FROM conflicts), 0) + 1, false)",
			       "migrate conflicts", err);
	if (r == 0)
		r = audit_append_strings(to, (uint64_t)hlc_wall_ms(), "admin", NULL, err, "command",
					 "migrate", "to", "postgresql", (const char *)NULL);
	if (r == 0)
		r = hqsql_commit(to, err);
out:
	hqsql_rollback(to);
	hqsql_rollback(from);
	return r;
}
