/* bench_ingest.c - bytes on the wire per visit, against the baselines
 * measured in the same run: the raw JSON of the same visits, and one
 * OpenRosa-style XML submission per visit (what ODK, KoboToolbox and
 * CommCare send).  Change sets are built by the real encoder
 * (sync/changeset.c: canonical JSON, zstd, sealed box, signature).
 * Then HQ's merge throughput: the real ingest (verify, open, validate,
 * merge per field, receipt, in one transaction per set) against
 * inserting the same field rows into plain SQLite with the same pragmas
 * and transaction sizes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftw.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "bench/synthvisit.h"
#include "crypto/identity.h"
#include "crypto/secmem.h"
#include "hq/hqdb.h"
#include "hq/hqforms.h"
#include "hq/hqkeys.h"
#include "hq/ingest.h"
#include "hq/pgdb.h"
#include "hq/scope.h"
#include "sync/changeset.h"

#define FIELDS SYNTHVISIT_FIELDS

/* --postgresql CONNINFO --pg-password-file FILE: HQ on PostgreSQL, and
 * the raw insert there too (CONNINFO names an empty database). */
static struct pgdb_config pg_conf;

/* One OpenRosa instance document, as a form submission carries it (the
 * multipart envelope around it is not counted, in its favour). */
static size_t openrosa_len(const struct synthvisit *v)
{
	char buf[2048];

	return (size_t)snprintf(
		buf, sizeof(buf),
		"<?xml version='1.0' ?><data id=\"visits\" version=\"2026112401\" "
		"xmlns:jr=\"http://openrosa.org/javarosa\" "
		"xmlns:orx=\"http://openrosa.org/xforms\"><beneficiary_id>%s</beneficiary_id>"
		"<visit_date>%s</visit_date><visit_type>%s</visit_type><notes>%s</notes>"
		"<gps>%s 0 0</gps><next_visit>%s</next_visit><meta><instanceID>uuid:%s"
		"</instanceID></meta></data>",
		v->beneficiary, v->date, v->type, v->notes, v->gps, v->next, v->id);
}

static int measure(size_t batch, size_t nsets, uint8_t version, const uint8_t *box_pk,
		   const uint8_t *sign_sk)
{
	struct changeset_header h = { .version = version, .seq = 1 };
	size_t wire = 0, raw = 0, xml = 0, visits = batch * nsets;
	struct change *c = calloc(batch * FIELDS, sizeof(*c));
	struct synthvisit v;
	uint64_t ms = 1795000000000ULL;
	int r = -1;

	if (!c)
		return -1;
	for (size_t s = 0; s < nsets; s++, h.seq++) {
		struct fs_error err = { 0 };
		uint8_t *buf = NULL;
		size_t len;

		for (size_t i = 0; i < batch; i++) {
			synthvisit_make(&v, ms = synthvisit_later(ms), (int)i);
			raw += synthvisit_raw_json_len(&v);
			xml += openrosa_len(&v);
			if (synthvisit_changes(&v, c + i * FIELDS) < 0)
				goto out;
		}
		if (changeset_encode(&h, c, batch * FIELDS, box_pk, sign_sk, &buf, &len, &err) <
		    0) {
			fprintf(stderr, "bench_ingest: %s\n", err.msg);
			goto out;
		}
		if (buf[4] != version) {
			fprintf(stderr, "bench_ingest: version %u written as %u\n", version,
				buf[4]);
			free(buf);
			goto out;
		}
		changeset_hash(buf, len, h.prev);
		wire += len;
		free(buf);
		for (size_t i = 0; i < batch * FIELDS; i++) {
			cJSON_Delete(c[i].value);
			c[i].value = NULL;
		}
	}
	printf("wire bytes per visit, batch %zu, version %u: change set %.1f B, raw JSON %.1f B, "
	       "ratio %.3f; OpenRosa XML %.1f B, ratio %.3f\n",
	       batch, version, (double)wire / visits, (double)raw / visits, (double)wire / raw,
	       (double)xml / visits, (double)wire / xml);
	if (batch >= 100) {
		printf("row\twire bytes per visit, sets of %zu, version %u: vs raw JSON\t%.1f "
		       "B\t%.1f B\t%.3f\n",
		       batch, version, (double)wire / visits, (double)raw / visits,
		       (double)wire / raw);
		printf("row\twire bytes per visit, sets of %zu, version %u: vs OpenRosa XML\t%.1f "
		       "B\t%.1f B\t%.3f\n",
		       batch, version, (double)wire / visits, (double)xml / visits,
		       (double)wire / xml);
	}
	r = 0;
out:
	for (size_t i = 0; i < batch * FIELDS; i++)
		cJSON_Delete(c[i].value);
	free(c);
	return r;
}

/* ---- HQ merge throughput ---------------------------------------------- */

#define MERGE_SETS 40
#define MERGE_BATCH 100 /* visits per change set */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

struct set {
	uint8_t *body;
	size_t len;
	struct change *c; /* MERGE_BATCH * FIELDS, kept for the baseline */
};

static int make_sets(struct set *sets, const struct identity *dev, const uint8_t *hq_box_pk)
{
	struct changeset_header h = { .seq = 1 };
	uint64_t ms = 1795000000000ULL;
	struct synthvisit v;

	if (sodium_hex2bin(h.device, sizeof(h.device), dev->id, IDENTITY_ID_HEXLEN, NULL, NULL,
			   NULL) != 0)
		return -1;
	for (int s = 0; s < MERGE_SETS; s++, h.seq++) {
		struct fs_error err = { 0 };

		sets[s].c = calloc(MERGE_BATCH * FIELDS, sizeof(struct change));
		if (!sets[s].c)
			return -1;
		for (int i = 0; i < MERGE_BATCH; i++) {
			synthvisit_make(&v, ms += 60000, i);
			if (synthvisit_changes(&v, sets[s].c + i * FIELDS) < 0)
				return -1;
		}
		if (changeset_encode(&h, sets[s].c, MERGE_BATCH * FIELDS, hq_box_pk, dev->sign_sk,
				     &sets[s].body, &sets[s].len, &err) < 0) {
			fprintf(stderr, "bench_ingest: %s\n", err.msg);
			return -1;
		}
		changeset_hash(sets[s].body, sets[s].len, h.prev);
	}
	return 0;
}

/* A device of every municipality (scope SCOPE_ALL): the synthetic
 * visits name households HQ does not hold, which a device scoped to a
 * municipality may not write. */
static int enrol_device(struct hqsql *db, const struct identity *dev)
{
	struct hqsql_stmt *st = NULL;
	cJSON *all = NULL;
	int rc;

	if (hqsql_prepare(
		    db,
		    "INSERT INTO devices(id, sign_pk, box_pk, team, municipality, enrolled_at) "
		    "VALUES(?1, ?2, ?3, 'Bench', 'Vranje', 0)",
		    &st, NULL) < 0)
		return -1;
	hqsql_bind_text(st, 1, dev->id);
	hqsql_bind_blob(st, 2, dev->sign_pk, sizeof(dev->sign_pk));
	hqsql_bind_blob(st, 3, dev->box_pk, sizeof(dev->box_pk));
	rc = hqsql_step(st);
	hqsql_finalize(st);
	if (rc != HQSQL_DONE || scope_parse(SCOPE_ALL, &all, NULL) < 0)
		return -1;
	rc = scope_store(db, dev->id, all, NULL);
	cJSON_Delete(all);
	return rc < 0 ? -1 : 0;
}

/* HQ's database: SQLite in dir, or PostgreSQL with HQ's schema made
 * there when schema is set (the raw insert makes its own table). */
static int open_db(const char *dir, int schema, struct hqsql **ret, struct fs_error *err)
{
	PGconn *pg = NULL;
	int r;

	if (!pg_conf.conninfo)
		return schema ? hqdb_open(dir, HQDB_CREATE, ret, err) : -ENOTSUP;
	if ((r = pgdb_connect(&pg_conf, &pg, err)) < 0)
		return r;
	if ((schema && (r = pgdb_create_schema(pg, err)) < 0) ||
	    (r = hqsql_wrap_pg(pg, ret, err)) < 0)
		pgdb_close(pg);
	return r;
}

static int time_ingest(const char *dir, struct set *sets, double *ret_s)
{
	struct identity *hq = NULL, *dev = NULL;
	struct hq_forms *forms = NULL;
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	double t0;
	int r = -1;

	if (hqkeys_create(dir, &err) < 0 || hqkeys_load(dir, &hq, &err) < 0 ||
	    open_db(dir, 1, &db, &err) < 0 ||
	    hqforms_load(FS_SOURCE_DIR "/conf/forms", &forms, &err) < 0 ||
	    identity_generate(&dev) < 0 || enrol_device(db, dev) < 0 ||
	    make_sets(sets, dev, hq->box_pk) < 0) {
		fprintf(stderr, "bench_ingest: set up HQ in %s: %s\n", dir, err.msg);
		goto out;
	}
	{
		struct ingest_ctx ctx = {
			.db = db, .hq = hq, .forms = forms, .wall_ms = hlc_wall_ms
		};

		t0 = now_s();
		for (int s = 0; s < MERGE_SETS; s++) {
			struct ingest_result res = { 0 };
			int rc = ingest_changeset(&ctx, sets[s].body, sets[s].len, &res, &err);
			int ok = rc == 0 && res.status == 200 && res.merged == MERGE_BATCH * FIELDS;

			if (!ok)
				fprintf(stderr,
					"bench_ingest: set %d: status %d, %u merged: %s %s\n",
					s + 1, res.status, res.merged, res.message, err.msg);
			ingest_result_clear(&res);
			if (!ok)
				goto out;
		}
		*ret_s = now_s() - t0;
	}
	r = 0;
out:
	hqdb_close(db);
	hqforms_free(forms);
	identity_free(hq);
	identity_free(dev);
	return r;
}

/* The same field rows, straight into a plain table of the same engine,
 * one transaction per set: on PostgreSQL sent ahead in pipeline mode,
 * as HQ's own writes are. */
static int time_raw(const char *dir, const struct set *sets, double *ret_s)
{
#define RAW_TABLE(hlc_type, options)                                                               \
	"CREATE TABLE raw_fields(record_id TEXT NOT NULL, field TEXT NOT NULL, value TEXT "        \
	"NOT NULL, hlc " hlc_type " NOT NULL, device TEXT NOT NULL, "                              \
	"PRIMARY KEY (record_id, field))" options
	const char *table = pg_conf.conninfo ? RAW_TABLE("BIGINT", "")
					     : RAW_TABLE("INTEGER", " STRICT, WITHOUT ROWID");
	char path[4096];
	sqlite3 *lite = NULL;
	struct hqsql *db = NULL;
	struct hqsql_stmt *st = NULL;
	struct fs_error err = { 0 };
	double t0;
	int r = -1;

	snprintf(path, sizeof(path), "%s/raw.db", dir);
	if (pg_conf.conninfo) {
		if (open_db(dir, 0, &db, &err) < 0)
			goto out;
	} else if (sqlite3_open(path, &lite) != SQLITE_OK ||
		   sqlite3_exec(lite, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL,
				NULL, NULL) != SQLITE_OK ||
		   hqsql_wrap_sqlite(lite, &db, &err) < 0) {
		fprintf(stderr, "bench_ingest: open %s: %s\n", path, sqlite3_errmsg(lite));
		sqlite3_close(lite);
		return -1;
	}
	if (hqsql_exec(db, table, "create the raw table", &err) < 0 ||
	    hqsql_prepare(db, "INSERT INTO raw_fields VALUES(?1, ?2, ?3, ?4, 'dev')", &st, &err) <
		    0)
		goto out;
	t0 = now_s();
	for (int s = 0; s < MERGE_SETS; s++) {
		if (hqsql_begin(db, HQSQL_WRITE, &err) < 0)
			goto out;
		for (int i = 0; i < MERGE_BATCH * FIELDS; i++) {
			const struct change *c = &sets[s].c[i];
			char *value = cJSON_PrintUnformatted(c->value);

			hqsql_reset(st);
			hqsql_bind_text(st, 1, c->record_id);
			hqsql_bind_text(st, 2, c->field);
			hqsql_bind_text(st, 3, value);
			hqsql_bind_int64(st, 4, (int64_t)c->hlc);
			cJSON_free(value);
			if (hqsql_step_later(st, "insert a row", &err) < 0)
				goto out;
		}
		if (hqsql_commit(db, &err) < 0)
			goto out;
	}
	*ret_s = now_s() - t0;
	r = 0;
out:
	if (r < 0)
		fprintf(stderr, "bench_ingest: raw insert: %s\n", err.msg);
	hqsql_finalize(st);
	hqsql_close(db);
	return r;
}

static int measure_merge(void)
{
	char dir[] = "/tmp/bench_ingest.XXXXXX";
	struct set sets[MERGE_SETS] = { { 0 } };
	double t_merge = 0, t_raw = 0, n = (double)MERGE_SETS * MERGE_BATCH * FIELDS;
	const char *engine = pg_conf.conninfo ? "PostgreSQL" : "SQLite";
	int r = -1;

	if (!mkdtemp(dir))
		return -1;
	if (time_ingest(dir, sets, &t_merge) < 0 || time_raw(dir, sets, &t_raw) < 0)
		goto out;
	printf("merge: HQ ingest %.0f changes/s, raw %s insert %.0f changes/s, ratio %.2f "
	       "(target >= 0.5)\n",
	       n / t_merge, engine, n / t_raw, (n / t_merge) / (n / t_raw));
	printf("row\tingest at HQ%s (verify, open, merge, receipt)\t%.0f changes/s\traw %s insert "
	       "%.0f changes/s\t%.2f\n",
	       pg_conf.conninfo ? " on PostgreSQL" : "", n / t_merge, engine, n / t_raw,
	       (n / t_merge) / (n / t_raw));
	r = 0;
out:
	for (int s = 0; s < MERGE_SETS; s++) {
		free(sets[s].body);
		if (sets[s].c)
			for (int i = 0; i < MERGE_BATCH * FIELDS; i++)
				cJSON_Delete(sets[s].c[i].value);
		free(sets[s].c);
	}
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return r;
}

int main(int argc, char **argv)
{
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], sign_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES], box_sk[crypto_box_SECRETKEYBYTES];
	static const size_t batches[] = { 1, 10, 100, 1000 };

	if (argc == 5 && !strcmp(argv[1], "--postgresql") &&
	    !strcmp(argv[3], "--pg-password-file")) {
		pg_conf.conninfo = argv[2];
		pg_conf.password_file = argv[4];
	} else if (argc != 1) {
		fprintf(stderr,
			"usage: bench_ingest [--postgresql CONNINFO --pg-password-file FILE]\n"
			"  HQ's ingest against a raw insert of the same rows, on SQLite, or on\n"
			"  PostgreSQL (CONNINFO names an empty database; then the merge only)\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	if (secmem_init() < 0)
		return 1;
	/* On PostgreSQL only the merge: the wire sizes do not depend on HQ's
	 * engine. */
	if (pg_conf.conninfo)
		return measure_merge() < 0 ? 1 : 0;
	crypto_sign_keypair(sign_pk, sign_sk);
	crypto_box_keypair(box_pk, box_sk);
	printf("bench_ingest: synthetic visits, 6 fields each, notes of 10 words; "
	       "target: ratio <= 0.20 against raw JSON for sets of 100 (issue 18)\n");
	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++)
		for (uint8_t v = CHANGESET_VERSION; v <= CHANGESET_VERSION_COLUMNS; v++)
			if (measure(batches[i],
				    batches[i] >= 1000	? 5
				    : batches[i] >= 100 ? 20
							: 50,
				    v, box_pk, sign_sk) < 0)
				return 1;
	sodium_memzero(sign_sk, sizeof(sign_sk));
	sodium_memzero(box_sk, sizeof(box_sk));
	return measure_merge() < 0 ? 1 : 0;
}
