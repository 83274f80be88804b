/* hqsql.c - see hqsql.h.  Sections: connections; SQLite; PostgreSQL;
 * statements (dispatching to the two). */
#include "hq/hqsql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/pgdb.h"
#include "sync/dberr.h"

/* PostgreSQL type oids (server/catalog/pg_type_d.h, stable since 7.x). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

/* The advisory lock every PostgreSQL writer takes (hqsql_begin): an
 * arbitrary constant, "fsHQ". */
#define WRITER_LOCK 0x66734851
/* PostgreSQL statements kept prepared on a connection, by their SQL:
 * HQ runs the same few dozen for every request, and preparing one is a
 * round trip to the server, as is deallocating it. */
#define PG_CACHE 128
/* Statements sent ahead (hqsql_step_later) before their results are
 * read: a bound, so neither side's buffers fill while the other waits
 * (a write's result is a few dozen bytes). */
#define PG_AHEAD 256

struct pg_cached {
	char *sql;     /* with $N placeholders; malloc'd */
	char name[24]; /* the server-side name */
};

struct hqsql {
	enum hqsql_backend backend;
	sqlite3 *lite;
	PGconn *pg;
	unsigned prepared; /* PostgreSQL statement names handed out */
	char where[512];   /* the database, for messages */
	int last;	   /* the last failure's code; 0: none */
	char reason[512];  /* ... and the engine's reason */
	struct pg_cached cache[PG_CACHE];
	unsigned ncache;
	/* Sent ahead in pipeline mode, results not yet read: what each is
	 * (static strings, for the message when one failed). */
	const char *ahead[PG_AHEAD];
	unsigned nahead;
	int ahead_failed; /* a sent-ahead statement failed: its code, until reported */
};

struct hqsql_stmt {
	struct hqsql *db;
	sqlite3_stmt *lite;
	/* PostgreSQL */
	char *sql;		     /* with $N placeholders */
	char name[24];		     /* "" until prepared */
	int nparams;		     /* highest placeholder number */
	uint64_t used;		     /* bit N-1: $N appears in sql */
	int cached;		     /* name belongs to the connection's cache */
	char *val[HQSQL_MAX_PARAMS]; /* malloc'd text or bytes, NULL for NULL */
	int len[HQSQL_MAX_PARAMS];
	int fmt[HQSQL_MAX_PARAMS];	/* 0 text, 1 binary */
	unsigned oid[HQSQL_MAX_PARAMS]; /* from the first bindings */
	PGresult *res;
	int row, rows;
	int64_t changes;
	unsigned char *blob[HQSQL_MAX_COLUMNS]; /* this row's bytea, decoded */
	size_t blen[HQSQL_MAX_COLUMNS];
};

/* ---- connections ---------------------------------------------------------- */

int hqsql_wrap_sqlite(sqlite3 *db, struct hqsql **ret, struct fs_error *err)
{
	struct hqsql *h = calloc(1, sizeof(*h));
	const char *file = sqlite3_db_filename(db, "main");

	if (!h)
		return fs_error_set(err, -ENOMEM, "out of memory");
	h->backend = HQSQL_SQLITE;
	h->lite = db;
	snprintf(h->where, sizeof(h->where), "%s", file && *file ? file : "(memory)");
	*ret = h;
	return 0;
}

int hqsql_wrap_pg(PGconn *db, struct hqsql **ret, struct fs_error *err)
{
	struct hqsql *h = calloc(1, sizeof(*h));

	if (!h)
		return fs_error_set(err, -ENOMEM, "out of memory");
	h->backend = HQSQL_POSTGRESQL;
	h->pg = db;
	snprintf(h->where, sizeof(h->where), "PostgreSQL ");
	pgdb_describe(db, h->where + strlen(h->where), sizeof(h->where) - strlen(h->where));
	*ret = h;
	return 0;
}

struct hqsql *hqsql_close(struct hqsql *db)
{
	if (!db)
		return NULL;
	if (db->lite)
		sqlite3_close(db->lite);
	if (db->pg)
		PQfinish(db->pg);
	for (unsigned i = 0; i < db->ncache; i++)
		free(db->cache[i].sql);
	free(db);
	return NULL;
}

enum hqsql_backend hqsql_backend(const struct hqsql *db)
{
	return db->backend;
}

/* ---- SQLite ------------------------------------------------------------------ */

/* Keep SQLite's reason for the failure that just happened. */
static int lite_failed(struct hqsql *db)
{
	int rc = sqlite3_extended_errcode(db->lite);
	struct fs_error e = { 0 };

	db->last =
		dberr_set(db->lite, rc, sqlite3_db_filename(db->lite, "main"), &e, "%s", "sqlite");
	/* One code for "that key is taken" on both backends. */
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
		db->last = -EEXIST;
	/* dberr_set wrote "sqlite: reason"; keep the reason. */
	snprintf(db->reason, sizeof(db->reason), "%s",
		 strncmp(e.msg, "sqlite: ", 8) ? e.msg : e.msg + 8);
	return db->last;
}

int hqsql_fail(struct hqsql *db, const char *what, struct fs_error *err)
{
	int code = db->last ? db->last : -FS_ESTORE;

	/* SQLite's messages from sync/dberr.h already name the file. */
	if (db->backend == HQSQL_SQLITE)
		return fs_error_set(err, code, "%s: %s", what, db->reason);
	return fs_error_set(err, code, "%s: %s: %s", db->where, what, db->reason);
}

/* ---- PostgreSQL ------------------------------------------------------------- */

/* Keep the result's failure: the SQLSTATE decides the code. */
static int pg_failed(struct hqsql *db, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
							      : PQerrorMessage(db->pg);

	pgdb_reason(msg, db->reason, sizeof(db->reason));
	db->last = -FS_ESTORE;
	if (PQstatus(db->pg) == CONNECTION_BAD)
		db->last = -EHOSTUNREACH;
	else if (state && !strcmp(state, "23505"))
		db->last = -EEXIST;
	else if (state &&
		 (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03")))
		db->last = -EBUSY;
	else if (state && !strcmp(state, "53100"))
		db->last = -ENOSPC;
	else if (state && !strcmp(state, "57014"))
		db->last = -ETIMEDOUT;
	return db->last;
}

/* ---- statements sent ahead (pipeline mode) ---- */

/* The failure of a statement sent ahead, kept until a call can report
 * it: 0 when none. */
static int pg_ahead_failure(struct hqsql *db)
{
	int r = db->ahead_failed;

	db->ahead_failed = 0;
	if (r < 0)
		db->last = r;
	return r;
}

/* Read the results of everything sent ahead, in order, keeping the last
 * one in *keep when keep is given (the statement that needed its rows).
 * The first failure becomes the connection's, named by what was sent;
 * those after it were not run (PGRES_PIPELINE_ABORTED).  Leaves pipeline
 * mode.  0 or the first failure's code. */
static int pg_drain(struct hqsql *db, PGresult **keep)
{
	PGresult *res;
	int r = 0;

	if (!db->nahead)
		return 0;
	/* Without the sync point nothing comes back: the connection is
	 * left in pipeline mode, unfit for use (hqsql_usable). */
	if (PQpipelineSync(db->pg) != 1) {
		db->nahead = 0;
		return pg_failed(db, NULL);
	}
	for (unsigned i = 0; i < db->nahead && PQstatus(db->pg) != CONNECTION_BAD; i++) {
		while ((res = PQgetResult(db->pg))) {
			ExecStatusType s = PQresultStatus(res);

			if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
				if (r == 0 && s != PGRES_PIPELINE_ABORTED) {
					char why[sizeof(db->reason)];

					r = pg_failed(db, res);
					memcpy(why, db->reason, sizeof(why));
					/* Cut short if need be: the reason is for people.
					 * The read that needed its rows names itself. */
					if (db->ahead[i] &&
					    snprintf(db->reason, sizeof(db->reason), "%s: %s",
						     db->ahead[i], why) >= (int)sizeof(db->reason))
						db->reason[sizeof(db->reason) - 1] = '\0';
				}
				PQclear(res);
			} else if (keep && i + 1 == db->nahead && !*keep) {
				*keep = res;
			} else {
				PQclear(res);
			}
		}
	}
	/* The sync point's own result. */
	while ((res = PQgetResult(db->pg))) {
		int sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;

		PQclear(res);
		if (sync)
			break;
	}
	db->nahead = 0;
	if (PQexitPipelineMode(db->pg) != 1 && r == 0)
		r = pg_failed(db, NULL);
	if (r < 0 && keep && *keep) {
		PQclear(*keep);
		*keep = NULL;
	}
	return r;
}

/* Wait for everything sent ahead, before a synchronous call: a failure
 * is reported now, or kept for the next call that can report it. */
static void pg_drain_keep(struct hqsql *db)
{
	int r = pg_drain(db, NULL);

	if (r < 0 && !db->ahead_failed)
		db->ahead_failed = r;
}

static int pg_settle(struct hqsql *db)
{
	pg_drain_keep(db);
	return pg_ahead_failure(db);
}

static int pg_command(struct hqsql *db, const char *sql, const char *what, struct fs_error *err)
{
	PGresult *res;
	ExecStatusType s;
	int r;

	if ((r = pg_settle(db)) < 0)
		return hqsql_fail(db, what, err);
	res = PQexec(db->pg, sql);
	s = PQresultStatus(res);
	r = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 : pg_failed(db, res);
	PQclear(res);
	return r < 0 ? hqsql_fail(db, what, err) : 0;
}

/* sql with ?N (and bare ?) as $N, outside quotes; *max the highest N,
 * *used a bit for each N that appears. */
static char *pg_placeholders(const char *sql, int *max, uint64_t *used)
{
	size_t n = strlen(sql);
	char *out = malloc(n * 2 + 1), *o = out, quote = 0;
	int next = 1;

	*max = 0;
	*used = 0;
	if (!out)
		return NULL;
	for (const char *p = sql; *p; p++) {
		if (quote) {
			quote = *p == quote ? 0 : quote;
			*o++ = *p;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
			*o++ = *p;
		} else if (*p == '?') {
			int k = 0;

			while (p[1] >= '0' && p[1] <= '9')
				k = k * 10 + (*++p - '0');
			if (!k)
				k = next;
			next = k + 1;
			if (k > *max)
				*max = k;
			if (k <= 64)
				*used |= 1ULL << (k - 1);
			o += sprintf(o, "$%d", k);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* Prepare st on the connection, once per SQL text (the cache). */
static int pg_prepare_once(struct hqsql_stmt *st)
{
	struct hqsql *db = st->db;
	PGresult *res;
	int r;

	for (unsigned i = 0; !st->name[0] && i < db->ncache; i++)
		if (!strcmp(db->cache[i].sql, st->sql)) {
			memcpy(st->name, db->cache[i].name, sizeof(st->name));
			st->cached = 1;
		}
	if (st->name[0])
		return 0;
	/* Preparing is synchronous: what was sent ahead is read first. */
	if ((r = pg_settle(db)) < 0)
		return r;
	snprintf(st->name, sizeof(st->name), "hq%u", ++db->prepared);
	/* A number the SQL skips ("?2" alone) still counts: it needs a
	 * type, and any will do. */
	for (int i = 0; i < st->nparams; i++)
		if (!(st->used & (1ULL << i)) && !st->oid[i])
			st->oid[i] = OID_TEXT;
	res = PQprepare(db->pg, st->name, st->sql, st->nparams, st->oid);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		r = pg_failed(db, res);
		PQclear(res);
		st->name[0] = '\0';
		return r;
	}
	PQclear(res);
	if (db->ncache < PG_CACHE && (db->cache[db->ncache].sql = strdup(st->sql))) {
		memcpy(db->cache[db->ncache++].name, st->name, sizeof(st->name));
		st->cached = 1;
	}
	return 0;
}

/* Send st in pipeline mode, its result to be read later (pg_drain);
 * what names it in a failure. */
static int pg_send(struct hqsql_stmt *st, const char *what)
{
	struct hqsql *db = st->db;
	int r;

	if ((r = pg_prepare_once(st)) < 0)
		return r;
	if (PQpipelineStatus(db->pg) == PQ_PIPELINE_OFF && PQenterPipelineMode(db->pg) != 1)
		return pg_failed(db, NULL);
	if (PQsendQueryPrepared(db->pg, st->name, st->nparams, (const char *const *)st->val,
				st->len, st->fmt, 0) != 1) {
		r = pg_failed(db, NULL);
		if (!db->nahead)
			PQexitPipelineMode(db->pg);
		return r;
	}
	db->ahead[db->nahead++] = what;
	return 0;
}

static int pg_run(struct hqsql_stmt *st)
{
	struct hqsql *db = st->db;
	ExecStatusType s;
	int r;

	if ((r = pg_ahead_failure(db)) < 0 || (r = pg_prepare_once(st)) < 0)
		return r;
	if (db->nahead) {
		/* Behind statements sent ahead: it joins them, and one round
		 * trip brings every result. */
		if ((r = pg_send(st, NULL)) < 0 || (r = pg_drain(db, &st->res)) < 0)
			return r;
		if (!st->res)
			return pg_failed(db, NULL);
	} else {
		st->res = PQexecPrepared(db->pg, st->name, st->nparams,
					 (const char *const *)st->val, st->len, st->fmt, 0);
	}
	s = PQresultStatus(st->res);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		r = pg_failed(db, st->res);
		PQclear(st->res);
		st->res = NULL;
		return r;
	}
	st->rows = PQntuples(st->res);
	st->row = -1;
	st->changes = atoll(PQcmdTuples(st->res));
	return 0;
}

/* Forget the decoded blobs of the row. */
static void pg_row_free(struct hqsql_stmt *st)
{
	for (int i = 0; i < HQSQL_MAX_COLUMNS; i++) {
		PQfreemem(st->blob[i]);
		st->blob[i] = NULL;
		st->blen[i] = 0;
	}
}

/* ---- statements and transactions --------------------------------------------- */

int hqsql_exec(struct hqsql *db, const char *sql, const char *what, struct fs_error *err)
{
	if (db->backend == HQSQL_POSTGRESQL)
		return pg_command(db, sql, what, err);
	if (sqlite3_exec(db->lite, sql, NULL, NULL, NULL) != SQLITE_OK) {
		lite_failed(db);
		return hqsql_fail(db, what, err);
	}
	return 0;
}

int hqsql_begin(struct hqsql *db, enum hqsql_tx tx, struct fs_error *err)
{
	char sql[128];

	if (db->backend == HQSQL_SQLITE)
		return hqsql_exec(db, tx == HQSQL_WRITE ? "BEGIN IMMEDIATE" : "BEGIN", "begin",
				  err);
	if (tx == HQSQL_READ)
		return pg_command(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "begin",
				  err);
	snprintf(sql, sizeof(sql),
		 "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT "
		 "pg_advisory_xact_lock(%d)",
		 WRITER_LOCK);
	return pg_command(db, sql, "begin", err);
}

int hqsql_commit(struct hqsql *db, struct fs_error *err)
{
	PGresult *res;
	int r;

	if (db->backend == HQSQL_SQLITE)
		return hqsql_exec(db, "COMMIT", "commit", err);
	if ((r = pg_settle(db)) < 0)
		return hqsql_fail(db, "commit", err);
	/* A transaction a failed statement ended answers COMMIT with
	 * ROLLBACK, and no error: that is one. */
	res = PQexec(db->pg, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		r = pg_failed(db, res);
	} else if (strcmp(PQcmdStatus(res), "COMMIT")) {
		db->last = r = -FS_ESTORE;
		snprintf(db->reason, sizeof(db->reason),
			 "the transaction had failed and was "
			 "rolled back");
	}
	PQclear(res);
	return r < 0 ? hqsql_fail(db, "commit", err) : 0;
}

void hqsql_rollback(struct hqsql *db)
{
	if (!hqsql_in_transaction(db))
		return;
	if (db->backend == HQSQL_POSTGRESQL) {
		/* What failed ahead is moot: nothing of it stays. */
		pg_drain(db, NULL);
		db->ahead_failed = 0;
		PQclear(PQexec(db->pg, "ROLLBACK"));
	} else {
		sqlite3_exec(db->lite, "ROLLBACK", NULL, NULL, NULL);
	}
}

int hqsql_in_transaction(const struct hqsql *db)
{
	if (db->backend == HQSQL_POSTGRESQL)
		return db->nahead || PQtransactionStatus(db->pg) != PQTRANS_IDLE;
	return !sqlite3_get_autocommit(db->lite);
}

int hqsql_usable(const struct hqsql *db)
{
	if (hqsql_in_transaction(db))
		return 0;
	return db->backend == HQSQL_SQLITE ||
	       (PQstatus(db->pg) == CONNECTION_OK && PQpipelineStatus(db->pg) == PQ_PIPELINE_OFF);
}

int hqsql_lock(struct hqsql *db, const char *key, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r;

	if (db->backend == HQSQL_SQLITE)
		return 0;
	if ((r = hqsql_prepare(db, "SELECT pg_advisory_xact_lock(hashtextextended(?1, 0))", &st,
			       err)) < 0)
		return r;
	hqsql_bind_text(st, 1, key);
	r = hqsql_step(st);
	if (r < 0)
		r = hqsql_fail(db, "take a lock", err);
	hqsql_finalize(st);
	return r < 0 ? r : 0;
}

sqlite3 *hqsql_sqlite(struct hqsql *db)
{
	return db->lite;
}

PGconn *hqsql_pg(struct hqsql *db)
{
	return db->pg;
}

int hqsql_prepare(struct hqsql *db, const char *sql, struct hqsql_stmt **ret, struct fs_error *err)
{
	struct hqsql_stmt *st = calloc(1, sizeof(*st));

	if (!st)
		return fs_error_set(err, -ENOMEM, "out of memory");
	st->db = db;
	if (db->backend == HQSQL_SQLITE) {
		if (sqlite3_prepare_v2(db->lite, sql, -1, &st->lite, NULL) != SQLITE_OK) {
			free(st);
			lite_failed(db);
			return hqsql_fail(db, "prepare statement", err);
		}
	} else if (!(st->sql = pg_placeholders(sql, &st->nparams, &st->used))) {
		free(st);
		return fs_error_set(err, -ENOMEM, "out of memory");
	} else if (st->nparams > HQSQL_MAX_PARAMS) {
		hqsql_finalize(st);
		return fs_error_set(err, -FS_EUSAGE, "a statement with more than %d parameters",
				    HQSQL_MAX_PARAMS);
	}
	*ret = st;
	return 0;
}

/* Keep a PostgreSQL parameter: a copy of n bytes, its format and type. */
static void pg_bind(struct hqsql_stmt *st, int i, const void *p, size_t n, int fmt, unsigned oid)
{
	if (i < 1 || i > HQSQL_MAX_PARAMS)
		return;
	free(st->val[i - 1]);
	st->val[i - 1] = NULL;
	if (p && (st->val[i - 1] = malloc(n + 1))) {
		memcpy(st->val[i - 1], p, n);
		st->val[i - 1][n] = '\0';
	}
	st->len[i - 1] = (int)n;
	st->fmt[i - 1] = fmt;
	/* The types the statement is prepared with: those of the first
	 * bindings (NULL leaves PostgreSQL to infer it). */
	if (!st->name[0] && oid)
		st->oid[i - 1] = oid;
}

void hqsql_bind_text(struct hqsql_stmt *st, int i, const char *text)
{
	if (st->lite)
		sqlite3_bind_text(st->lite, i, text, -1, SQLITE_TRANSIENT);
	else
		pg_bind(st, i, text, text ? strlen(text) : 0, 0, OID_TEXT);
}

void hqsql_bind_int64(struct hqsql_stmt *st, int i, int64_t v)
{
	char num[24];

	if (st->lite) {
		sqlite3_bind_int64(st->lite, i, v);
		return;
	}
	snprintf(num, sizeof(num), "%lld", (long long)v);
	pg_bind(st, i, num, strlen(num), 0, OID_INT8);
}

void hqsql_bind_blob(struct hqsql_stmt *st, int i, const void *p, size_t n)
{
	if (st->lite)
		sqlite3_bind_blob(st->lite, i, p ? p : "", (int)n, SQLITE_TRANSIENT);
	else
		pg_bind(st, i, p ? p : "", n, 1, OID_BYTEA);
}

void hqsql_bind_null(struct hqsql_stmt *st, int i)
{
	if (st->lite)
		sqlite3_bind_null(st->lite, i);
	else
		pg_bind(st, i, NULL, 0, 0, 0);
}

void hqsql_clear_bindings(struct hqsql_stmt *st)
{
	if (st->lite) {
		sqlite3_clear_bindings(st->lite);
		return;
	}
	for (int i = 0; i < HQSQL_MAX_PARAMS; i++) {
		free(st->val[i]);
		st->val[i] = NULL;
		st->len[i] = 0;
	}
}

int hqsql_step(struct hqsql_stmt *st)
{
	int rc, r;

	if (st->lite) {
		rc = sqlite3_step(st->lite);
		if (rc == SQLITE_ROW)
			return HQSQL_ROW;
		if (rc == SQLITE_DONE) {
			st->changes = sqlite3_changes(st->db->lite);
			return HQSQL_DONE;
		}
		return lite_failed(st->db);
	}
	if (!st->res && (r = pg_run(st)) < 0)
		return r;
	pg_row_free(st);
	return ++st->row < st->rows ? HQSQL_ROW : HQSQL_DONE;
}

int hqsql_step_later(struct hqsql_stmt *st, const char *what, struct fs_error *err)
{
	struct hqsql *db = st->db;
	int r;

	/* Outside a transaction a statement is its own, and reports now. */
	if (st->lite || !hqsql_in_transaction(db))
		r = hqsql_step(st);
	else if ((r = pg_ahead_failure(db)) == 0 && (r = pg_send(st, what)) == 0) {
		st->changes = -1;
		r = db->nahead < PG_AHEAD ? 0 : pg_settle(db);
	}
	return r < 0 ? hqsql_fail(db, what, err) : 0;
}

int hqsql_column_is_null(struct hqsql_stmt *st, int i)
{
	if (st->lite)
		return sqlite3_column_type(st->lite, i) == SQLITE_NULL;
	return !st->res || st->row >= st->rows || PQgetisnull(st->res, st->row, i);
}

const char *hqsql_column_text(struct hqsql_stmt *st, int i)
{
	if (st->lite)
		return (const char *)sqlite3_column_text(st->lite, i);
	return hqsql_column_is_null(st, i) ? NULL : PQgetvalue(st->res, st->row, i);
}

int64_t hqsql_column_int64(struct hqsql_stmt *st, int i)
{
	const char *v;

	if (st->lite)
		return sqlite3_column_int64(st->lite, i);
	if (!(v = hqsql_column_text(st, i)))
		return 0;
	if (PQftype(st->res, i) == OID_BOOL)
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

/* Decode column i of the row when it is a bytea; 0, or -1 when NULL or
 * out of memory. */
static int pg_blob(struct hqsql_stmt *st, int i)
{
	const char *v = hqsql_column_text(st, i);
	size_t n = 0;

	if (!v || i < 0 || i >= HQSQL_MAX_COLUMNS)
		return -1;
	if (st->blob[i] || PQftype(st->res, i) != OID_BYTEA)
		return 0;
	if (!(st->blob[i] = PQunescapeBytea((const unsigned char *)v, &n)))
		return -1;
	st->blen[i] = n;
	return 0;
}

const void *hqsql_column_blob(struct hqsql_stmt *st, int i)
{
	if (st->lite)
		return sqlite3_column_blob(st->lite, i);
	if (pg_blob(st, i) < 0)
		return NULL;
	return st->blob[i] ? (const void *)st->blob[i] : (const void *)hqsql_column_text(st, i);
}

size_t hqsql_column_bytes(struct hqsql_stmt *st, int i)
{
	if (st->lite)
		return (size_t)sqlite3_column_bytes(st->lite, i);
	if (pg_blob(st, i) < 0)
		return 0;
	return st->blob[i] ? st->blen[i] : (size_t)PQgetlength(st->res, st->row, i);
}

int64_t hqsql_changes(struct hqsql_stmt *st)
{
	return st->changes;
}

void hqsql_reset(struct hqsql_stmt *st)
{
	if (st->lite) {
		sqlite3_reset(st->lite);
		return;
	}
	PQclear(st->res);
	st->res = NULL;
	pg_row_free(st);
	st->rows = st->row = 0;
}

void hqsql_finalize(struct hqsql_stmt *st)
{
	char sql[64];

	if (!st)
		return;
	if (st->lite) {
		sqlite3_finalize(st->lite);
		free(st);
		return;
	}
	/* A statement the cache does not hold goes (after what was sent
	 * ahead: DEALLOCATE is synchronous). */
	if (st->name[0] && !st->cached)
		pg_drain_keep(st->db);
	if (st->name[0] && !st->cached && PQstatus(st->db->pg) == CONNECTION_OK &&
	    PQtransactionStatus(st->db->pg) != PQTRANS_INERROR) {
		snprintf(sql, sizeof(sql), "DEALLOCATE %s", st->name);
		PQclear(PQexec(st->db->pg, sql));
	}
	hqsql_reset(st);
	for (int i = 0; i < HQSQL_MAX_PARAMS; i++)
		free(st->val[i]);
	free(st->sql);
	free(st);
}
