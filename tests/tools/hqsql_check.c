/* hqsql_check.c - hq/hqsql.h on both backends: the same statements, the
 * same answers.  Run by tests/cli/test_pg_sql.sh, which starts a real
 * PostgreSQL and passes its connection; not a unit test of fstest, since
 * it needs that server.
 *
 * Usage: hqsql_check SQLITE_FILE CONNINFO PASSWORD_FILE
 * Exits 0 when every check passes on both, else 1 naming the first
 * failure.  Not installed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "hq/hqsql.h"
#include "hq/pgdb.h"

static const char *backend_name;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "hqsql_check: %s: line %d: %s\n", backend_name, __LINE__,  \
				#cond);                                                            \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static void ok(int r, const struct fs_error *err)
{
	if (r < 0) {
		fprintf(stderr, "hqsql_check: %s: %s\n", backend_name, err->msg);
		exit(1);
	}
}

static void put(struct hqsql *db, const char *id, int64_t n, const void *b, size_t blen,
		const char *s, int want)
{
	struct fs_error err = { 0 };
	struct hqsql_stmt *st = NULL;
	int r;

	ok(hqsql_prepare(db, "INSERT INTO t(id, n, b, s) VALUES (?1, ?2, ?3, ?4)", &st, &err),
	   &err);
	hqsql_bind_text(st, 1, id);
	hqsql_bind_int64(st, 2, n);
	if (b)
		hqsql_bind_blob(st, 3, b, blen);
	else
		hqsql_bind_null(st, 3);
	if (s)
		hqsql_bind_text(st, 4, s);
	else
		hqsql_bind_null(st, 4);
	r = hqsql_step(st);
	if (want == HQSQL_DONE && r < 0)
		ok(hqsql_fail(db, "insert", &err), &err);
	CHECK(r == want);
	hqsql_finalize(st);
}

static int count(struct hqsql *db)
{
	struct fs_error err = { 0 };
	struct hqsql_stmt *st = NULL;
	int n;

	ok(hqsql_prepare(db, "SELECT count(*) FROM t", &st, &err), &err);
	CHECK(hqsql_step(st) == HQSQL_ROW);
	n = (int)hqsql_column_int64(st, 0);
	hqsql_finalize(st);
	return n;
}

/* Every check that must give the same answer on both backends. */
static void same_answers(struct hqsql *db)
{
	static const unsigned char blob[] = { 0, 1, 2, 0xff, 0, '\\', 'x', 0x80 };
	const char *name = "Ружичић Ђорђе, Ružičić Đorđe";
	struct fs_error err = { 0 };
	struct hqsql_stmt *st = NULL;
	const unsigned char *got;
	size_t len;
	int r;

	ok(hqsql_exec(db, "CREATE TABLE t(id TEXT PRIMARY KEY, n BIGINT, b BYTEA, s TEXT)",
		      "create", &err),
	   &err);
	put(db, "a", INT64_MAX, blob, sizeof(blob), name, HQSQL_DONE);
	put(db, "b", INT64_MIN + 1, NULL, 0, NULL, HQSQL_DONE);
	/* A taken key is -EEXIST on both. */
	put(db, "a", 1, NULL, 0, NULL, -EEXIST);
	/* Placeholders out of order, and a '?' inside a literal. */
	ok(hqsql_prepare(db,
			 "SELECT id, n, b, s, '?1 and ''?2''' FROM t WHERE n = ?2 OR id = ?1 "
			 "ORDER BY id",
			 &st, &err),
	   &err);
	hqsql_bind_text(st, 1, "b");
	hqsql_bind_int64(st, 2, INT64_MAX);
	CHECK(hqsql_step(st) == HQSQL_ROW);
	CHECK(!strcmp(hqsql_column_text(st, 0), "a"));
	CHECK(hqsql_column_int64(st, 1) == INT64_MAX);
	got = hqsql_column_blob(st, 2);
	len = hqsql_column_bytes(st, 2);
	CHECK(got && len == sizeof(blob) && !memcmp(got, blob, len));
	/* Asked again, the same bytes. */
	CHECK(hqsql_column_blob(st, 2) == got && hqsql_column_bytes(st, 2) == len);
	CHECK(!strcmp(hqsql_column_text(st, 3), name));
	CHECK(!strcmp(hqsql_column_text(st, 4), "?1 and '?2'"));
	CHECK(hqsql_step(st) == HQSQL_ROW);
	CHECK(!strcmp(hqsql_column_text(st, 0), "b"));
	CHECK(hqsql_column_int64(st, 1) == INT64_MIN + 1);
	CHECK(hqsql_column_is_null(st, 2) && hqsql_column_is_null(st, 3));
	CHECK(!hqsql_column_is_null(st, 1));
	CHECK(hqsql_step(st) == HQSQL_DONE);
	/* Run again with other bindings. */
	hqsql_reset(st);
	hqsql_bind_text(st, 1, "none");
	hqsql_bind_int64(st, 2, 7);
	CHECK(hqsql_step(st) == HQSQL_DONE);
	hqsql_finalize(st);
	/* Rows changed. */
	ok(hqsql_prepare(db, "UPDATE t SET n = n - 1 WHERE id IN ('a', 'b', 'c')", &st, &err),
	   &err);
	CHECK(hqsql_step(st) == HQSQL_DONE);
	CHECK(hqsql_changes(st) == 2);
	hqsql_finalize(st);
	/* Transactions: a rollback leaves nothing, a commit keeps. */
	CHECK(!hqsql_in_transaction(db));
	ok(hqsql_begin(db, HQSQL_WRITE, &err), &err);
	CHECK(hqsql_in_transaction(db));
	ok(hqsql_lock(db, "device 0a0a", &err), &err);
	put(db, "c", 3, NULL, 0, "x", HQSQL_DONE);
	hqsql_rollback(db);
	CHECK(!hqsql_in_transaction(db));
	CHECK(count(db) == 2);
	ok(hqsql_begin(db, HQSQL_WRITE, &err), &err);
	put(db, "c", 3, NULL, 0, "x", HQSQL_DONE);
	ok(hqsql_commit(db, &err), &err);
	CHECK(count(db) == 3);
	/* A bad statement is an error naming the database. */
	r = hqsql_prepare(db, "SELECT nope FROM t", &st, &err);
	if (r == 0) {
		r = hqsql_step(st);
		if (r < 0)
			hqsql_fail(db, "select a column that is not there", &err);
		hqsql_finalize(st);
	}
	CHECK(r < 0);
	CHECK(strstr(err.msg, "nope") != NULL);
}

/* Statements whose results are read later (hqsql_step_later): what they
 * wrote is there for the next read, and a failure among them fails the
 * transaction, named, and never commits. */
static void later(struct hqsql *db)
{
	struct fs_error err = { 0 };
	struct hqsql_stmt *st = NULL, *get = NULL;
	int before = count(db), r;
	char id[8];

	ok(hqsql_prepare(db, "INSERT INTO t(id, n) VALUES (?1, ?2)", &st, &err), &err);
	ok(hqsql_prepare(db, "SELECT n FROM t WHERE id = ?1", &get, &err), &err);
	ok(hqsql_begin(db, HQSQL_WRITE, &err), &err);
	/* More than a pipeline holds at once. */
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "l%d", i);
		hqsql_reset(st);
		hqsql_bind_text(st, 1, id);
		hqsql_bind_int64(st, 2, i);
		ok(hqsql_step_later(st, "insert a row later", &err), &err);
	}
	hqsql_reset(get);
	hqsql_bind_text(get, 1, "l299");
	CHECK(hqsql_step(get) == HQSQL_ROW);
	CHECK(hqsql_column_int64(get, 0) == 299);
	hqsql_reset(st);
	hqsql_bind_text(st, 1, "l300");
	hqsql_bind_int64(st, 2, 300);
	ok(hqsql_step_later(st, "insert a row later", &err), &err);
	ok(hqsql_commit(db, &err), &err);
	CHECK(count(db) == before + 301);
	/* A taken key among them: the commit fails and names it. */
	ok(hqsql_begin(db, HQSQL_WRITE, &err), &err);
	hqsql_reset(st);
	hqsql_bind_text(st, 1, "l0");
	hqsql_bind_int64(st, 2, 0);
	r = hqsql_step_later(st, "insert a taken key", &err);
	if (r == 0) {
		hqsql_reset(st);
		hqsql_bind_text(st, 1, "l301");
		hqsql_bind_int64(st, 2, 301);
		r = hqsql_step_later(st, "insert after it", &err);
		/* The pipeline stopped at the failure: nothing after it ran. */
		CHECK(r == 0 || r == -EEXIST);
		if (r == 0)
			r = hqsql_commit(db, &err);
	}
	CHECK(r == -EEXIST);
	CHECK(strstr(err.msg, "insert a taken key") != NULL);
	hqsql_rollback(db);
	CHECK(!hqsql_in_transaction(db));
	CHECK(count(db) == before + 301);
	/* A read behind the failed write fails too. */
	ok(hqsql_begin(db, HQSQL_WRITE, &err), &err);
	hqsql_reset(st);
	hqsql_bind_text(st, 1, "l1");
	hqsql_bind_int64(st, 2, 1);
	if (hqsql_step_later(st, "insert a taken key", &err) == 0) {
		hqsql_reset(get);
		hqsql_bind_text(get, 1, "l1");
		CHECK(hqsql_step(get) == -EEXIST);
	}
	hqsql_rollback(db);
	/* And the connection is fit for the next transaction. */
	ok(hqsql_begin(db, HQSQL_WRITE, &err), &err);
	hqsql_reset(get);
	hqsql_bind_text(get, 1, "l7");
	CHECK(hqsql_step(get) == HQSQL_ROW && hqsql_column_int64(get, 0) == 7);
	ok(hqsql_commit(db, &err), &err);
	CHECK(hqsql_usable(db));
	hqsql_finalize(st);
	hqsql_finalize(get);
	ok(hqsql_exec(db, "DELETE FROM t WHERE id LIKE 'l%'", "delete", &err), &err);
}

/* PostgreSQL: two connections, one writer at a time; named locks. */
static void one_writer(struct hqsql *a, struct hqsql *b)
{
	struct fs_error err = { 0 };

	ok(hqsql_exec(b, "SET lock_timeout = 200", "set lock_timeout", &err), &err);
	ok(hqsql_begin(a, HQSQL_WRITE, &err), &err);
	/* While a writes, b cannot begin to: it waits, then gives up. */
	CHECK(hqsql_begin(b, HQSQL_WRITE, &err) == -EBUSY);
	hqsql_rollback(b);
	/* A reader is not held up. */
	ok(hqsql_begin(b, HQSQL_READ, &err), &err);
	CHECK(count(b) == 3);
	hqsql_rollback(b);
	ok(hqsql_commit(a, &err), &err);
	ok(hqsql_begin(b, HQSQL_WRITE, &err), &err);
	ok(hqsql_commit(b, &err), &err);
	/* A named lock excludes the same name only. */
	ok(hqsql_begin(a, HQSQL_READ, &err), &err);
	ok(hqsql_lock(a, "device 0a0a", &err), &err);
	ok(hqsql_begin(b, HQSQL_READ, &err), &err);
	CHECK(hqsql_lock(b, "device 0a0a", &err) == -EBUSY);
	hqsql_rollback(b);
	ok(hqsql_begin(b, HQSQL_READ, &err), &err);
	ok(hqsql_lock(b, "device 0b0b", &err), &err);
	hqsql_rollback(b);
	hqsql_rollback(a);
}

int main(int argc, char **argv)
{
	const struct pgdb_config pc = { argc == 4 ? argv[2] : NULL, argc == 4 ? argv[3] : NULL, 0 };
	struct fs_error err = { 0 };
	struct hqsql *lite = NULL, *pg = NULL, *pg2 = NULL;
	PGconn *c1 = NULL, *c2 = NULL;
	sqlite3 *l = NULL;

	if (argc != 4) {
		fprintf(stderr, "usage: hqsql_check SQLITE_FILE CONNINFO PASSWORD_FILE\n");
		return 2;
	}
	/* The password is read into libsodium's secure memory. */
	if (sodium_init() < 0)
		return 1;
	backend_name = "sqlite";
	CHECK(sqlite3_open(argv[1], &l) == SQLITE_OK);
	ok(hqsql_wrap_sqlite(l, &lite, &err), &err);
	CHECK(hqsql_backend(lite) == HQSQL_SQLITE);
	same_answers(lite);
	later(lite);
	backend_name = "postgresql";
	ok(pgdb_connect(&pc, &c1, &err), &err);
	ok(hqsql_wrap_pg(c1, &pg, &err), &err);
	ok(pgdb_connect(&pc, &c2, &err), &err);
	ok(hqsql_wrap_pg(c2, &pg2, &err), &err);
	CHECK(hqsql_backend(pg) == HQSQL_POSTGRESQL);
	same_answers(pg);
	later(pg);
	one_writer(pg, pg2);
	hqsql_close(lite);
	hqsql_close(pg);
	hqsql_close(pg2);
	printf("hqsql_check: the same answers on SQLite and PostgreSQL\n");
	return 0;
}
