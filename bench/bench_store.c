/* bench_store.c - what page encryption costs the local store.
 *
 * One workload runs against two databases: one opened through the
 * encrypting VFS (agent/vfs.h) and one through plain SQLite, with the same
 * schema, the same pragmas, the same page size and the same reserved bytes
 * per page, so that only the sealing differs.  Each database lives in its
 * own fresh temp directory.  The order is plain then encrypted, twice over;
 * the faster of the two runs counts.  Each phase is timed from opening the
 * connection to closing it, so the schema load on open and the checkpoint
 * on close are counted.  Speed is reported, never asserted: the exit status
 * says only whether every step worked.
 *
 * Phases: insert, read all, point reads, and mixed (reads, scans and
 * edits at random over a store several times the page cache).
 *
 * FS_BENCH_STORE_VARIANT=encrypted or plain runs that variant alone, so
 * that a profiler (perf record) sees one: what the encryption adds is the
 * difference of two such profiles.
 *
 * Sections: workload; databases and runs; phases; one run; report; main.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>

#include "agent/store.h"
#include "agent/vfs.h"
#include "crypto/secmem.h"
#include "sync/uuid.h"

#define DEFAULT_VISITS 100000
#define MAX_VISITS 10000000	 /* a cap on what argv[1] may ask for */
#define BATCH 1000		 /* visits per transaction */
#define ROUNDS 2		 /* each variant runs this often; the best run counts */
#define NFIELDS 5		 /* fields per visit, one outbox row each */
#define FIELDS_CAP 320		 /* bytes reserved per visit's JSON, NUL included */
#define AUTHOR_HEXLEN 32	 /* a device id is 16 bytes in hex */
#define BASE_MS 1767225600000ULL /* 2026-01-01T00:00:00Z: first visit time */
#define SEED 0x5eed0f1e1d5eedULL /* fixed, so every run reads in the same order */

enum { PHASE_INSERT, PHASE_READ_ALL, PHASE_POINT, PHASE_MIXED, PHASES };
enum { VARIANT_ENCRYPTED, VARIANT_PLAIN, VARIANTS };

static const char *const phase_names[PHASES] = { "insert", "read all", "point reads", "mixed" };

/* The mixed phase: MIXED_OPS operations over the whole store, in
 * transactions of MIXED_TX: of every 10, 6 point reads, 1 scan of
 * MIXED_SCAN records in id order from a random one, and 3 edits (the
 * record rewritten, one outbox row added), as a field laptop's day
 * mixes lookups, lists and edits.  Its working set is the whole store,
 * several times the page cache; the page cache is the store's own
 * (store_setup_connection()). */
#define MIXED_OPS 60000
#define MIXED_TX 20
#define MIXED_SCAN 100

/* ---- workload --------------------------------------------------------- */

static const char *const field_names[NFIELDS] = { "beneficiary_id", "visit_date", "visit_type",
						  "notes", "gps" };

/* One synthetic visit; the outbox values are slices of fields. */
struct visit {
	char id[UUID_TEXT_LEN + 1]; /* UUIDv7, increasing with the index */
	char *fields;		    /* JSON object text, inside workload.arena */
	int len;		    /* strlen(fields) */
	int val_off[NFIELDS];	    /* where each field's JSON value starts in fields */
	int val_len[NFIELDS];	    /* and its length */
};

/* Everything both variants must see identically, made once up front. */
struct workload {
	size_t n;			/* visits */
	struct visit *visits;		/* n, in id order */
	char *arena;			/* n * FIELDS_CAP bytes of JSON text */
	size_t *order;			/* n indexes; the first points are the point reads */
	size_t points;			/* point reads */
	uint64_t checksum;		/* expected read-all checksum */
	uint64_t bytes;			/* expected read-all byte count */
	char author[AUTHOR_HEXLEN + 1]; /* the device id every record carries */
};

/* splitmix64: small, fast and fixed, so the data and order never vary. */
static uint64_t prng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t prng_below(uint64_t *state, size_t bound)
{
	return (size_t)(prng_next(state) % bound);
}

/* FNV-1a, folded over every byte read back. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ c[i]) * 0x100000001b3ULL;
	return h;
}

#define FNV_BASIS 0xcbf29ce484222325ULL

/* Bounded appending into one visit's JSON text. */
struct text {
	char *p;    /* FIELDS_CAP bytes */
	size_t len; /* bytes used, NUL excluded */
};

static int text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->p + t->len, FIELDS_CAP - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= FIELDS_CAP - t->len)
		return -1;
	t->len += (size_t)n;
	return 0;
}

/* About 100 bytes of note text from a fixed word list. */
static int notes_add(struct text *t, uint64_t *rng)
{
	static const char *const words[] = { "household", "visited",  "water",	  "supply",
					     "adequate",  "children", "school",	  "attending",
					     "referred",  "clinic",   "follow",	  "up",
					     "needed",	  "shelter",  "repaired", "food",
					     "ration",	  "received", "no",	  "concerns",
					     "reported",  "hygiene",  "kit",	  "delivered",
					     "mother",	  "present",  "elderly",  "member",
					     "unwell",	  "next",     "week" };
	size_t target = 80 + prng_below(rng, 46), start = t->len;

	while (t->len - start < target)
		if (text_add(t, "%s%s", t->len == start ? "" : " ",
			     words[prng_below(rng, sizeof(words) / sizeof(words[0]))]) < 0)
			return -1;
	return 0;
}

/* Value i of visit v, as JSON, recording where it sits. */
static int value_add(struct text *t, struct visit *v, int i, uint64_t *rng)
{
	static const char *const types[] = { "home", "clinic", "distribution", "follow_up",
					     "referral" };
	char ben[UUID_TEXT_LEN + 1];
	size_t off = t->len;
	int r = 0;

	switch (i) {
	case 0:
		uuid_v7_new(BASE_MS - 86400000ULL - prng_below(rng, 86400000), ben);
		r = text_add(t, "\"%s\"", ben);
		break;
	case 1:
		r = text_add(t, "\"2026-%02d-%02d\"", 1 + (int)prng_below(rng, 12),
			     1 + (int)prng_below(rng, 28));
		break;
	case 2:
		r = text_add(t, "\"%s\"", types[prng_below(rng, sizeof(types) / sizeof(types[0]))]);
		break;
	case 3:
		r = text_add(t, "\"") < 0 || notes_add(t, rng) < 0 || text_add(t, "\"") < 0 ? -1
											    : 0;
		break;
	default:
		r = text_add(t, "\"%.5f,%.5f\"", -4.0 + (double)prng_below(rng, 800000) / 1e5,
			     29.0 + (double)prng_below(rng, 800000) / 1e5);
		break;
	}
	v->val_off[i] = (int)off;
	v->val_len[i] = (int)(t->len - off);
	return r;
}

static int visit_make(struct visit *v, char *slot, size_t index, uint64_t *rng)
{
	struct text t = { slot, 0 };

	/* One millisecond apart, so ids strictly increase with the index. */
	uuid_v7_new(BASE_MS + index, v->id);
	if (text_add(&t, "{") < 0)
		return -1;
	for (int i = 0; i < NFIELDS; i++)
		if (text_add(&t, "%s\"%s\":", i ? "," : "", field_names[i]) < 0 ||
		    value_add(&t, v, i, rng) < 0)
			return -1;
	if (text_add(&t, "}") < 0)
		return -1;
	v->fields = slot;
	v->len = (int)t.len;
	return 0;
}

static void workload_free(struct workload *w)
{
	free(w->visits);
	free(w->arena);
	free(w->order);
	memset(w, 0, sizeof(*w));
}

static int workload_make(struct workload *w, size_t n)
{
	uint64_t rng = SEED;
	uint8_t dev[AUTHOR_HEXLEN / 2];

	memset(w, 0, sizeof(*w));
	w->n = n;
	w->points = n / 10 ? n / 10 : 1;
	w->visits = calloc(n, sizeof(*w->visits));
	w->arena = malloc(n * FIELDS_CAP);
	w->order = malloc(n * sizeof(*w->order));
	if (!w->visits || !w->arena || !w->order) {
		fprintf(stderr, "bench_store: make workload of %zu visits: out of memory\n", n);
		goto fail;
	}
	randombytes_buf(dev, sizeof(dev));
	sodium_bin2hex(w->author, sizeof(w->author), dev, sizeof(dev));
	w->checksum = FNV_BASIS;
	for (size_t i = 0; i < n; i++) {
		struct visit *v = &w->visits[i];

		if (visit_make(v, w->arena + i * FIELDS_CAP, i, &rng) < 0) {
			fprintf(stderr, "bench_store: make visit %zu: fields exceed %d bytes\n", i,
				FIELDS_CAP);
			goto fail;
		}
		w->checksum = fnv1a(w->checksum, v->id, UUID_TEXT_LEN);
		w->checksum = fnv1a(w->checksum, v->fields, (size_t)v->len);
		w->bytes += UUID_TEXT_LEN + (uint64_t)v->len;
	}
	/* Partial Fisher-Yates: the first points entries are distinct, random. */
	for (size_t i = 0; i < n; i++)
		w->order[i] = i;
	for (size_t i = 0; i < w->points && i + 1 < n; i++) {
		size_t j = i + prng_below(&rng, n - i), tmp = w->order[i];

		w->order[i] = w->order[j];
		w->order[j] = tmp;
	}
	return 0;
fail:
	workload_free(w);
	return -1;
}

/* ---- databases and runs ----------------------------------------------- */

/* One variant's database for one round. */
struct run {
	const char *label;   /* "encrypted" or "plain" */
	struct fsvfs *vfs;   /* the encrypting VFS, or NULL for plain SQLite */
	char dir[PATH_MAX];  /* fresh temp directory, "" until made */
	char path[PATH_MAX]; /* dir/store.db */
	sqlite3 *db;	     /* open connection, or NULL */
	unsigned cache_opt;  /* page cache to set, MiB (the store's default) */
	double db_mib;	     /* the mixed phase: the store's size */
	double cache_mib;    /* and its page cache */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Say which step failed, with SQLite's reason and the VFS's, if any. */
static int run_fail(struct run *r, const char *step)
{
	const char *fault = r->vfs ? fsvfs_last_fault(r->vfs) : NULL;

	if (r->db)
		fprintf(stderr, "bench_store: %s: %s %s: %s (extended code %d)\n", r->label, step,
			r->path, sqlite3_errmsg(r->db), sqlite3_extended_errcode(r->db));
	else
		fprintf(stderr, "bench_store: %s: %s %s: out of memory\n", r->label, step, r->path);
	if (fault) {
		fprintf(stderr, "bench_store: %s: VFS fault: %s\n", r->label, fault);
		fsvfs_clear_fault(r->vfs);
	}
	return -1;
}

static int run_exec(struct run *r, const char *sql, const char *step)
{
	if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return run_fail(r, step);
	return 0;
}

static int run_prepare(struct run *r, const char *sql, sqlite3_stmt **ret_st, const char *step)
{
	if (sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, ret_st, NULL) !=
	    SQLITE_OK)
		return run_fail(r, step);
	return 0;
}

/* Page size and reserved bytes must be what the store uses, in both. */
static int db_check_layout(struct run *r)
{
	sqlite3_stmt *st = NULL;
	int page_size = 0, reserve = -1, wal = 0;

	if (run_prepare(r, "PRAGMA page_size", &st, "read page size of") < 0)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return run_fail(r, "read page size of");
	}
	page_size = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (run_prepare(r, "PRAGMA journal_mode", &st, "read journal mode of") < 0)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return run_fail(r, "read journal mode of");
	}
	wal = sqlite3_column_text(st, 0) &&
	      !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	if (sqlite3_file_control(r->db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve) != SQLITE_OK)
		return run_fail(r, "read reserved bytes of");
	if (page_size != FSVFS_PAGE_SIZE || reserve != FSVFS_RESERVE || !wal) {
		fprintf(stderr,
			"bench_store: %s: %s has page size %d, %d reserved bytes, %s; "
			"expected %d, %d, WAL\n",
			r->label, r->path, page_size, reserve, wal ? "WAL" : "not WAL",
			FSVFS_PAGE_SIZE, FSVFS_RESERVE);
		return -1;
	}
	return 0;
}

/* Open through the run's VFS with the store's own connection setup. */
static int db_open(struct run *r, int create)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX |
		    SQLITE_OPEN_NOFOLLOW;

	if (create)
		flags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(r->path, &r->db, flags, r->vfs ? fsvfs_name(r->vfs) : NULL) !=
	    SQLITE_OK)
		return run_fail(r, "open");
	sqlite3_extended_result_codes(r->db, 1);
	sqlite3_busy_timeout(r->db, 5000);
	if (store_setup_connection(r->db, create) != SQLITE_OK ||
	    store_cache_size(r->db, r->cache_opt) != SQLITE_OK)
		return run_fail(r, "set up connection to");
	return 0;
}

/* Close, reporting failure; the connection is gone either way. */
static int db_close(struct run *r)
{
	int rc;

	if (!r->db)
		return 0;
	rc = sqlite3_close(r->db);
	if (rc != SQLITE_OK) {
		run_fail(r, "close");
		sqlite3_close_v2(r->db); /* statements are finalized; let it go */
	}
	r->db = NULL;
	return rc == SQLITE_OK ? 0 : -1;
}

/* ---- phases ----------------------------------------------------------- */

/* The outbox row for field i of v. */
static int outbox_add(struct run *r, sqlite3_stmt *chg, const struct visit *v, int i,
		      sqlite3_int64 hlc)
{
	sqlite3_bind_text(chg, 1, v->id, UUID_TEXT_LEN, SQLITE_STATIC);
	sqlite3_bind_text(chg, 2, "visits", -1, SQLITE_STATIC);
	sqlite3_bind_text(chg, 3, field_names[i], -1, SQLITE_STATIC);
	sqlite3_bind_text(chg, 4, v->fields + v->val_off[i], v->val_len[i], SQLITE_STATIC);
	sqlite3_bind_int64(chg, 5, hlc);
	if (sqlite3_step(chg) != SQLITE_DONE) {
		sqlite3_reset(chg);
		return run_fail(r, "insert outbox row into");
	}
	sqlite3_reset(chg);
	return 0;
}

static int insert_visit(struct run *r, sqlite3_stmt *rec, sqlite3_stmt *chg, const struct visit *v,
			const char *author, sqlite3_int64 hlc)
{
	sqlite3_bind_text(rec, 1, v->id, UUID_TEXT_LEN, SQLITE_STATIC);
	sqlite3_bind_text(rec, 2, "visits", -1, SQLITE_STATIC);
	sqlite3_bind_text(rec, 3, v->fields, v->len, SQLITE_STATIC);
	sqlite3_bind_int64(rec, 4, hlc);
	sqlite3_bind_text(rec, 5, author, AUTHOR_HEXLEN, SQLITE_STATIC);
	if (sqlite3_step(rec) != SQLITE_DONE) {
		sqlite3_reset(rec);
		return run_fail(r, "insert record into");
	}
	sqlite3_reset(rec);
	for (int i = 0; i < NFIELDS; i++)
		if (outbox_add(r, chg, v, i, hlc) < 0)
			return -1;
	return 0;
}

/* Create the store and write every visit, BATCH to a transaction. */
static int phase_insert(struct run *r, const struct workload *w, double *ret_s)
{
	sqlite3_stmt *rec = NULL, *chg = NULL;
	double t0 = now_s();
	int ret = -1;

	if (db_open(r, 1) < 0 || run_exec(r, store_schema_sql, "create schema in") < 0 ||
	    db_check_layout(r) < 0)
		goto out;
	if (run_prepare(r,
			"INSERT INTO records(id, collection, fields, created_hlc, updated_hlc,"
			" author) VALUES(?1, ?2, ?3, ?4, ?4, ?5)",
			&rec, "prepare record insert in") < 0 ||
	    run_prepare(r,
			"INSERT INTO outbox(record_id, collection, field, value, hlc)"
			" VALUES(?1, ?2, ?3, ?4, ?5)",
			&chg, "prepare outbox insert in") < 0)
		goto out;
	for (size_t i = 0; i < w->n; i += BATCH) {
		size_t end = i + BATCH < w->n ? i + BATCH : w->n;

		if (run_exec(r, "BEGIN IMMEDIATE", "begin transaction on") < 0)
			goto out;
		for (size_t j = i; j < end; j++)
			if (insert_visit(r, rec, chg, &w->visits[j], w->author,
					 (sqlite3_int64)((BASE_MS + j) << 16)) < 0)
				goto out;
		if (run_exec(r, "COMMIT", "commit transaction on") < 0)
			goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(rec);
	sqlite3_finalize(chg);
	if (db_close(r) < 0)
		ret = -1;
	*ret_s = now_s() - t0;
	return ret;
}

/* Scan every record in id order, folding every byte into a checksum. */
static int phase_read_all(struct run *r, const struct workload *w, double *ret_s)
{
	uint64_t sum = FNV_BASIS, bytes = 0;
	sqlite3_stmt *st = NULL;
	size_t rows = 0;
	double t0 = now_s();
	int ret = -1, rc;

	if (db_open(r, 0) < 0 || run_prepare(r, "SELECT id, fields FROM records ORDER BY id", &st,
					     "prepare scan of") < 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *id = sqlite3_column_text(st, 0);
		int id_len = sqlite3_column_bytes(st, 0);
		const unsigned char *fields = sqlite3_column_text(st, 1);
		int fields_len = sqlite3_column_bytes(st, 1);

		if (!id || !fields) {
			run_fail(r, "read row from");
			goto out;
		}
		sum = fnv1a(sum, id, (size_t)id_len);
		sum = fnv1a(sum, fields, (size_t)fields_len);
		bytes += (uint64_t)id_len + (uint64_t)fields_len;
		rows++;
	}
	if (rc != SQLITE_DONE) {
		run_fail(r, "scan records in");
		goto out;
	}
	if (rows != w->n || bytes != w->bytes || sum != w->checksum) {
		fprintf(stderr,
			"bench_store: %s: scan of %s read %zu rows, %llu bytes, checksum "
			"%016llx; wrote %zu rows, %llu bytes, checksum %016llx\n",
			r->label, r->path, rows, (unsigned long long)bytes, (unsigned long long)sum,
			w->n, (unsigned long long)w->bytes, (unsigned long long)w->checksum);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	if (db_close(r) < 0)
		ret = -1;
	*ret_s = now_s() - t0;
	return ret;
}

/* Look up w->points records by id in the fixed random order. */
static int phase_point_reads(struct run *r, const struct workload *w, double *ret_s)
{
	sqlite3_stmt *st = NULL;
	double t0 = now_s();
	int ret = -1;

	if (db_open(r, 0) < 0 || run_prepare(r, "SELECT fields FROM records WHERE id = ?1", &st,
					     "prepare lookup in") < 0)
		goto out;
	for (size_t i = 0; i < w->points; i++) {
		const struct visit *v = &w->visits[w->order[i]];
		const void *fields;
		int rc;

		sqlite3_bind_text(st, 1, v->id, UUID_TEXT_LEN, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			if (rc == SQLITE_DONE)
				fprintf(stderr, "bench_store: %s: record %zu missing from %s\n",
					r->label, w->order[i], r->path);
			else
				run_fail(r, "look up record in");
			goto out;
		}
		fields = sqlite3_column_text(st, 0);
		if (!fields || sqlite3_column_bytes(st, 0) != v->len ||
		    memcmp(fields, v->fields, (size_t)v->len) != 0) {
			fprintf(stderr,
				"bench_store: %s: record %zu in %s does not match what was "
				"written\n",
				r->label, w->order[i], r->path);
			goto out;
		}
		sqlite3_reset(st);
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	if (db_close(r) < 0)
		ret = -1;
	*ret_s = now_s() - t0;
	return ret;
}

/* Point read of v, checked against what was written. */
static int mixed_read(struct run *r, sqlite3_stmt *st, const struct visit *v)
{
	const void *fields;
	int rc, ok;

	sqlite3_bind_text(st, 1, v->id, UUID_TEXT_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fields = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	ok = fields && sqlite3_column_bytes(st, 0) == v->len &&
	     memcmp(fields, v->fields, (size_t)v->len) == 0;
	sqlite3_reset(st);
	if (!ok) {
		if (rc == SQLITE_ROW || rc == SQLITE_DONE)
			fprintf(stderr,
				"bench_store: %s: record %s in %s is not what was written\n",
				r->label, v->id, r->path);
		else
			run_fail(r, "look up record in");
		return -1;
	}
	return 0;
}

/* MIXED_SCAN records in id order from v: as many as there are. */
static int mixed_scan(struct run *r, sqlite3_stmt *st, const struct workload *w, size_t from)
{
	size_t rows = 0, want = w->n - from < MIXED_SCAN ? w->n - from : MIXED_SCAN;
	int rc;

	sqlite3_bind_text(st, 1, w->visits[from].id, UUID_TEXT_LEN, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, MIXED_SCAN);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (sqlite3_column_bytes(st, 1) == w->visits[from + rows].len)
			rows++;
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return run_fail(r, "scan records in");
	if (rows != want) {
		fprintf(stderr, "bench_store: %s: scan from record %zu in %s read %zu of %zu\n",
			r->label, from, r->path, rows, want);
		return -1;
	}
	return 0;
}

/* The record v rewritten (same fields, a later clock), as an edit. */
static int mixed_edit(struct run *r, sqlite3_stmt *upd, sqlite3_stmt *chg, const struct visit *v,
		      sqlite3_int64 hlc)
{
	sqlite3_bind_text(upd, 1, v->fields, v->len, SQLITE_STATIC);
	sqlite3_bind_int64(upd, 2, hlc);
	sqlite3_bind_text(upd, 3, v->id, UUID_TEXT_LEN, SQLITE_STATIC);
	if (sqlite3_step(upd) != SQLITE_DONE || sqlite3_changes(r->db) != 1) {
		sqlite3_reset(upd);
		return run_fail(r, "edit record in");
	}
	sqlite3_reset(upd);
	return outbox_add(r, chg, v, 3, hlc);
}

/* The store's size on disk and its connection's page cache, in MiB. */
static int working_set(struct run *r)
{
	sqlite3_stmt *st = NULL;
	struct stat sb;
	double cache = 0;

	if (stat(r->path, &sb) < 0) {
		fprintf(stderr, "bench_store: %s: stat %s: %s\n", r->label, r->path,
			strerror(errno));
		return -1;
	}
	if (run_prepare(r, "PRAGMA cache_size", &st, "read the page cache of") < 0)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		cache = (double)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/* Negative: KiB; positive: pages. */
	r->cache_mib = cache < 0 ? -cache / 1024 : cache * FSVFS_PAGE_SIZE / (1024.0 * 1024);
	r->db_mib = (double)sb.st_size / (1024.0 * 1024);
	return 0;
}

/* Random reads, scans and edits over the whole store (MIXED_OPS). */
static int phase_mixed(struct run *r, const struct workload *w, double *ret_s)
{
	sqlite3_stmt *get = NULL, *scan = NULL, *upd = NULL, *chg = NULL;
	uint64_t rng = SEED ^ 0x6d69786564ULL;
	double t0 = now_s();
	int ret = -1;

	if (db_open(r, 0) < 0 ||
	    run_prepare(r, "SELECT fields FROM records WHERE id = ?1", &get, "prepare lookup in") <
		    0 ||
	    run_prepare(r, "SELECT id, fields FROM records WHERE id >= ?1 ORDER BY id LIMIT ?2",
			&scan, "prepare scan of") < 0 ||
	    run_prepare(r, "UPDATE records SET fields = ?1, updated_hlc = ?2 WHERE id = ?3", &upd,
			"prepare edit in") < 0 ||
	    run_prepare(r,
			"INSERT INTO outbox(record_id, collection, field, value, hlc)"
			" VALUES(?1, ?2, ?3, ?4, ?5)",
			&chg, "prepare outbox insert in") < 0 ||
	    working_set(r) < 0)
		goto out;
	for (size_t op = 0; op < MIXED_OPS; op++) {
		size_t i = prng_below(&rng, w->n), kind = op % 10;
		int rc;

		if (op % MIXED_TX == 0 &&
		    run_exec(r, "BEGIN IMMEDIATE", "begin transaction on") < 0)
			goto out;
		if (kind < 6)
			rc = mixed_read(r, get, &w->visits[i]);
		else if (kind == 6)
			rc = mixed_scan(r, scan, w, i);
		else
			rc = mixed_edit(r, upd, chg, &w->visits[i],
					(sqlite3_int64)((BASE_MS + w->n + op) << 16));
		if (rc < 0)
			goto out;
		if ((op + 1) % MIXED_TX == 0 && run_exec(r, "COMMIT", "commit transaction on") < 0)
			goto out;
	}
	ret = 0;
out:
	if (ret < 0 && r->db && !sqlite3_get_autocommit(r->db))
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(get);
	sqlite3_finalize(scan);
	sqlite3_finalize(upd);
	sqlite3_finalize(chg);
	if (db_close(r) < 0)
		ret = -1;
	*ret_s = now_s() - t0;
	return ret;
}

/* ---- one run ---------------------------------------------------------- */

static int run_mkdir(struct run *r)
{
	const char *base = getenv("TMPDIR");

	if (!base || !*base)
		base = "/tmp";
	if ((size_t)snprintf(r->dir, sizeof(r->dir), "%s/bench_store.XXXXXX", base) >=
	    sizeof(r->dir)) {
		fprintf(stderr, "bench_store: temp directory under %s: path too long\n", base);
		r->dir[0] = '\0';
		return -1;
	}
	if (!mkdtemp(r->dir)) {
		fprintf(stderr, "bench_store: create temp directory %s: %s\n", r->dir,
			strerror(errno));
		r->dir[0] = '\0';
		return -1;
	}
	if ((size_t)snprintf(r->path, sizeof(r->path), "%s/store.db", r->dir) >= sizeof(r->path)) {
		fprintf(stderr, "bench_store: database in %s: path too long\n", r->dir);
		rmdir(r->dir);
		r->dir[0] = '\0';
		return -1;
	}
	return 0;
}

/* Remove the store's files and the directory; missing files are fine. */
static int run_rmdir(struct run *r)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char file[PATH_MAX + 16];
	int ret = 0;

	if (!r->dir[0])
		return 0;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(file, sizeof(file), "%s%s", r->path, suffixes[i]);
		if (unlink(file) < 0 && errno != ENOENT) {
			fprintf(stderr, "bench_store: remove %s: %s\n", file, strerror(errno));
			ret = -1;
		}
	}
	if (rmdir(r->dir) < 0) {
		fprintf(stderr, "bench_store: remove directory %s: %s\n", r->dir, strerror(errno));
		ret = -1;
	}
	r->dir[0] = '\0';
	return ret;
}

/* Every phase on a fresh database; times[] written on success. */
static int run_variant(const char *label, struct fsvfs *vfs, const struct workload *w,
		       unsigned cache_mib, double times[PHASES], double *ret_db_mib,
		       double *ret_cache_mib)
{
	struct run r = { .label = label, .vfs = vfs, .cache_opt = cache_mib };
	double t[PHASES];
	int ret = -1;

	if (run_mkdir(&r) < 0)
		return -1;
	if (phase_insert(&r, w, &t[PHASE_INSERT]) < 0 ||
	    phase_read_all(&r, w, &t[PHASE_READ_ALL]) < 0 ||
	    phase_point_reads(&r, w, &t[PHASE_POINT]) < 0 ||
	    phase_mixed(&r, w, &t[PHASE_MIXED]) < 0)
		goto out;
	*ret_db_mib = r.db_mib;
	*ret_cache_mib = r.cache_mib;
	memcpy(times, t, sizeof(t));
	ret = 0;
out:
	if (run_rmdir(&r) < 0)
		ret = -1;
	return ret;
}

/* ---- report ----------------------------------------------------------- */

static void print_header(const struct workload *w)
{
	const char *base = getenv("TMPDIR");
	struct utsname u;

	if (uname(&u) < 0)
		snprintf(u.machine, sizeof(u.machine), "unknown");
	printf("bench_store: N=%zu visits (%d per transaction, fields %.0f bytes on average, "
	       "%zu point reads), SQLite %s, %s, %ld CPUs, best of %d runs, in %s\n",
	       w->n, BATCH, (double)(w->bytes - (uint64_t)w->n * UUID_TEXT_LEN) / (double)w->n,
	       w->points, sqlite3_libversion(), u.machine, sysconf(_SC_NPROCESSORS_ONLN), ROUNDS,
	       base && *base ? base : "/tmp");
}

static void print_results(double best[VARIANTS][PHASES], int only)
{
	/* One variant, for a profiler: its times, and no ratio or row. */
	if (only >= 0) {
		for (int p = 0; p < PHASES; p++)
			printf("%s: %s %.3f s (only this variant ran)\n", phase_names[p],
			       only == VARIANT_ENCRYPTED ? "encrypted" : "plain", best[only][p]);
		return;
	}
	for (int p = 0; p < PHASES; p++) {
		double enc = best[VARIANT_ENCRYPTED][p], plain = best[VARIANT_PLAIN][p];

		if (plain > 0)
			printf("%s: encrypted %.3f s, plain %.3f s, ratio %.2f\n", phase_names[p],
			       enc, plain, enc / plain);
		else
			printf("%s: encrypted %.3f s, plain %.3f s, ratio n/a\n", phase_names[p],
			       enc, plain);
		/* One row of `make bench`'s table (scripts/bench.sh). */
		printf("row\tstore, %s: encrypted\t%.3f s\tplain SQLite %.3f s\t%.2f\n",
		       phase_names[p], enc, plain, plain > 0 ? enc / plain : 0.0);
	}
	printf("target (issue 18): ratio <= 1.10 in every phase\n");
}

/* ---- main ------------------------------------------------------------- */

/* A whole number from 1 to max in text, or -1 with what it is for said. */
static long long parse_number(const char *text, unsigned long long max, const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v < 1 || v > max) {
		fprintf(stderr, "bench_store: %s must be a number from 1 to %llu\n", what, max);
		return -1;
	}
	return (long long)v;
}

/* bench_store [VISITS [CACHE_MIB]] */
static int parse_args(int argc, char **argv, size_t *ret_n, unsigned *ret_cache)
{
	long long v;

	*ret_n = DEFAULT_VISITS;
	*ret_cache = STORE_DEFAULT_CACHE_MIB;
	if (argc > 3) {
		fprintf(stderr, "usage: bench_store [visits [page cache MiB]]\n");
		return -1;
	}
	if (argc > 1) {
		if ((v = parse_number(argv[1], MAX_VISITS, "visits")) < 0)
			return -1;
		*ret_n = (size_t)v;
	}
	if (argc > 2) {
		if ((v = parse_number(argv[2], STORE_MAX_CACHE_MIB, "the page cache (MiB)")) < 0)
			return -1;
		*ret_cache = (unsigned)v;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const labels[VARIANTS] = { "encrypted", "plain" };
	uint8_t db_id[FSVFS_DBID_BYTES], *key = NULL;
	double best[VARIANTS][PHASES] = { { 0 } }, t[PHASES], db_mib = 0, cache_mib = 0;
	struct workload w = { 0 };
	struct fsvfs *vfs = NULL;
	const char *only_text = getenv("FS_BENCH_STORE_VARIANT");
	unsigned cache_opt;
	size_t n;
	int ret = 1, r, only = -1;

	if (parse_args(argc, argv, &n, &cache_opt) < 0)
		return 2;
	if (only_text && (only = !strcmp(only_text, "encrypted") ? VARIANT_ENCRYPTED
				 : !strcmp(only_text, "plain")	 ? VARIANT_PLAIN
								 : -2) == -2) {
		fprintf(stderr, "bench_store: FS_BENCH_STORE_VARIANT must be encrypted or plain\n");
		return 2;
	}
	if (secmem_init() < 0) {
		fprintf(stderr, "bench_store: cannot start libsodium\n");
		return 1;
	}
	key = secmem_alloc(AEAD_KEYBYTES);
	if (!key) {
		fprintf(stderr, "bench_store: allocate data key: out of memory\n");
		goto out;
	}
	randombytes_buf(key, AEAD_KEYBYTES);
	randombytes_buf(db_id, sizeof(db_id));
	r = fsvfs_create(key, db_id, NULL, &vfs);
	key = secmem_free(key); /* the VFS keeps its own derived page key */
	if (r < 0) {
		fprintf(stderr, "bench_store: register encrypting VFS: error %d\n", r);
		goto out;
	}
	if (workload_make(&w, n) < 0)
		goto out;
	print_header(&w);
	fflush(stdout);
	for (int round = 0; round < ROUNDS; round++) {
		/* Plain first, then encrypted, in every round. */
		for (int k = VARIANTS - 1; k >= 0; k--) {
			if (only >= 0 && k != only)
				continue;
			if (run_variant(labels[k], k == VARIANT_ENCRYPTED ? vfs : NULL, &w,
					cache_opt, t, &db_mib, &cache_mib) < 0)
				goto out;
			for (int p = 0; p < PHASES; p++)
				if (round == 0 || t[p] < best[k][p])
					best[k][p] = t[p];
		}
	}
	printf("mixed: %d operations over a store of %.0f MiB with a page cache of %.1f MiB\n",
	       MIXED_OPS, db_mib, cache_mib);
	print_results(best, only);
	ret = 0;
out:
	workload_free(&w);
	vfs = fsvfs_destroy(vfs);
	secmem_free(key);
	return ret;
}
