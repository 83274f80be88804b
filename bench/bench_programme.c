/* bench_programme.c - the console's programme view (hq/programme.h) on a
 * caseload of 20,000 households and 100,000 visits: each chart counted,
 * drawn as SVG and written as CSV, against the plain GROUP BY that
 * counts the same rows with no municipality, no label and no drawing,
 * on the same database in the same run.  The rows are written straight
 * into HQ's schema (the merge is bench_ingest's to measure).
 *
 *   bench_programme [HOUSEHOLDS]
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hq/chart.h"
#include "hq/hqdb.h"
#include "hq/hqforms.h"
#include "hq/programme.h"

#define RUNS 5
#define DAY_MS 86400000ull

static const char *const munis[] = { "Sjenica", "Tutin", "Preševo", "Bujanovac", "Kikinda" };
static const char *const statuses[] = { "refugee", "idp", "asylum_seeker", "host_community" };
static const char *const types[] = { "needs_assessment",    "housing_construction",
				     "prefab_installation", "sme_grant_followup",
				     "vocational_training", "legal_assistance" };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_programme: %s: %s\n", what, why);
	exit(1);
}

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die(sql, msg ? msg : "?");
}

/* One record and its fields, as ingest leaves them. */
static void put(sqlite3_stmt *rec, sqlite3_stmt *fld, const char *id, const char *collection,
		const char *parent, const char *const *kv, size_t n)
{
	sqlite3_reset(rec);
	sqlite3_bind_text(rec, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(rec, 2, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(rec, 3, parent, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(rec) != SQLITE_DONE)
		die("insert record", sqlite3_errmsg(sqlite3_db_handle(rec)));
	for (size_t i = 0; i < n; i += 2) {
		sqlite3_reset(fld);
		sqlite3_bind_text(fld, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(fld, 2, kv[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(fld, 3, kv[i + 1], -1, SQLITE_TRANSIENT);
		if (sqlite3_step(fld) != SQLITE_DONE)
			die("insert field", sqlite3_errmsg(sqlite3_db_handle(fld)));
	}
}

static void fill(sqlite3 *db, int households, uint64_t now_ms)
{
	sqlite3_stmt *rec = NULL, *fld = NULL, *ev = NULL;
	unsigned seed = 7;

	exec_sql(db, "BEGIN");
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO records(id, collection, created_at, updated_hlc, "
			       "updated_device, scope_parent) VALUES (?1, ?2, 0, 0, 'bench', ?3)",
			       -1, &rec, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO fields(record_id, field, value, hlc, device) "
			       "VALUES (?1, ?2, ?3, 0, 'bench')",
			       -1, &fld, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO events(id, at, type, device, detail) VALUES (?1, ?2, "
			       "'push', ?3, ?4)",
			       -1, &ev, NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(db));
	for (int i = 0; i < (int)(sizeof(munis) / sizeof(munis[0])); i++) {
		char sql[256];

		snprintf(sql, sizeof(sql),
			 "INSERT INTO devices(id, sign_pk, box_pk, team, municipality, "
			 "enrolled_at) VALUES ('dev%d', x'00', x'00', 'Tim %s', '%s', 0)",
			 i, munis[i], munis[i]);
		exec_sql(db, sql);
	}
	for (int h = 0; h < households; h++) {
		char hid[40], muni[40], status[40], date[40], type[40], vid[40];
		const char *hkv[4] = { "municipality", muni, "status", status };

		snprintf(hid, sizeof(hid), "h%08d", h);
		snprintf(muni, sizeof(muni), "\"%s\"", munis[h % 5]);
		snprintf(status, sizeof(status), "\"%s\"", statuses[rand_r(&seed) % 4]);
		put(rec, fld, hid, "beneficiaries", NULL, hkv, 4);
		for (int v = 0; v < 5; v++) {
			const char *vkv[4] = { "visit_date", date, "visit_type", type };
			time_t t = (time_t)((now_ms - (uint64_t)(rand_r(&seed) % 120) * DAY_MS) /
					    1000);
			struct tm tm;

			gmtime_r(&t, &tm);
			strftime(date, sizeof(date), "\"%Y-%m-%d\"", &tm);
			snprintf(type, sizeof(type), "\"%s\"", types[rand_r(&seed) % 6]);
			snprintf(vid, sizeof(vid), "v%08d-%d", h, v);
			put(rec, fld, vid, "visits", hid, vkv, 4);
		}
	}
	/* A push entry per set of 50 changes over the last 40 days. */
	for (int e = 1; e <= households; e++) {
		char dev[16], detail[96];

		snprintf(dev, sizeof(dev), "dev%d", e % 5);
		snprintf(detail, sizeof(detail),
			 "{\"result\":\"accepted\",\"seq\":%d,\"changes\":50,\"merged\":50}", e);
		sqlite3_reset(ev);
		sqlite3_bind_int(ev, 1, e);
		sqlite3_bind_int64(
			ev, 2, (sqlite3_int64)(now_ms - (uint64_t)(rand_r(&seed) % 40) * DAY_MS));
		sqlite3_bind_text(ev, 3, dev, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ev, 4, detail, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(ev) != SQLITE_DONE)
			die("insert event", sqlite3_errmsg(db));
	}
	sqlite3_finalize(rec);
	sqlite3_finalize(fld);
	sqlite3_finalize(ev);
	exec_sql(db, "COMMIT; ANALYZE");
}

static int sees_all(void *cls, const char *m)
{
	(void)cls;
	(void)m;
	return 1;
}

/* The Tutin viewer's: the filter the console applies. */
static int sees_tutin(void *cls, const char *m)
{
	(void)cls;
	return m && !strcmp(m, "Tutin");
}

/* One chart counted, drawn and written; its total in *total. */
static double programme_once(struct hqsql *db, const struct hq_forms *forms, const char *name,
			     int (*sees)(void *, const char *), uint64_t now_ms, long long *total)
{
	struct fs_error err = { 0 };
	struct chart *c = NULL;
	char *svg = NULL, *csv = NULL;
	size_t len;
	double t0 = now_s(), t;

	if (programme_chart(db, forms, name, sees, NULL, now_ms, &c, &err) < 0)
		die(name, err.msg);
	if (chart_svg(c, 720, &svg, &len) < 0 || chart_csv(c, &csv, &len) < 0)
		die(name, "out of memory");
	t = now_s() - t0;
	*total = chart_total(c);
	free(svg);
	free(csv);
	chart_free(c);
	return t;
}

static double baseline_once(sqlite3 *db, const char *sql, long long *total)
{
	sqlite3_stmt *st = NULL;
	double t0 = now_s(), t;

	*total = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die(sql, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW)
		*total += sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	t = now_s() - t0;
	return t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v)
{
	qsort(v, RUNS, sizeof(*v), cmp_double);
	return v[RUNS / 2];
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name, *baseline;
	} charts[] = {
		{ "visits-by-week", "SELECT value, count(*) FROM fields WHERE field = 'visit_date' "
				    "AND value >= ?1 GROUP BY value" },
		{ "visit-types",
		  "SELECT value, count(*) FROM fields WHERE field = 'visit_type' GROUP BY value" },
		{ "households-by-status",
		  "SELECT value, count(*) FROM fields WHERE field = 'status' GROUP BY value" },
		{ "merged-by-day", "SELECT at / 86400000, sum(json_extract(detail, '$.merged')) "
				   "FROM events WHERE type = 'push' AND at >= ?1 GROUP BY 1" },
	};
	int households = argc > 1 ? atoi(argv[1]) : 20000;
	char dir[] = "/tmp/bench_programme-XXXXXX";
	struct fs_error err = { 0 };
	struct hq_forms *forms = NULL;
	struct hqsql *db = NULL;
	uint64_t now_ms = (uint64_t)time(NULL) * 1000;

	if (households < 1 || !mkdtemp(dir))
		die("set up", "bad size or no temporary directory");
	if (hqdb_open(dir, HQDB_CREATE, &db, &err) < 0 || hqforms_load(NULL, &forms, &err) < 0)
		die("open HQ", err.msg);
	fill(hqsql_sqlite(db), households, now_ms);
	printf("programme view: %d households, %d visits, %d push entries\n", households,
	       households * 5, households);
	printf("%-22s %12s %12s %8s %10s\n", "chart", "HQ (ms)", "GROUP BY", "ratio", "viewer");
	for (size_t i = 0; i < sizeof(charts) / sizeof(charts[0]); i++) {
		double hq[RUNS], base[RUNS], viewer[RUNS];
		long long total = 0, btotal = 0, vtotal = 0;
		char sql[512];

		/* The baseline with its cut-off inlined, as the chart's own. */
		snprintf(sql, sizeof(sql), "%s", charts[i].baseline);
		if (strstr(sql, "?1")) {
			char cut[64], *p = strstr(sql, "?1"), rest[512];

			if (i == 0) {
				/* The chart's first week: the Monday 11 weeks before
				 * this week's (1970-01-01 was a Thursday; HQ's local
				 * day, taken as UTC's here). */
				long long today = (long long)(now_ms / DAY_MS),
					  first = today - (today % 7 + 3) % 7 - 7 * 11;
				time_t t = (time_t)(first * 86400);
				struct tm tm;

				gmtime_r(&t, &tm);
				strftime(cut, sizeof(cut), "'\"%Y-%m-%d\"'", &tm);
			} else {
				snprintf(cut, sizeof(cut), "%llu",
					 (unsigned long long)(now_ms - 31 * DAY_MS));
			}
			snprintf(rest, sizeof(rest), "%s", p + 2);
			snprintf(p, sizeof(sql) - (size_t)(p - sql), "%s%s", cut, rest);
		}
		for (int r = 0; r < RUNS; r++) {
			hq[r] = programme_once(db, forms, charts[i].name, sees_all, now_ms, &total);
			base[r] = baseline_once(hqsql_sqlite(db), sql, &btotal);
			viewer[r] = programme_once(db, forms, charts[i].name, sees_tutin, now_ms,
						   &vtotal);
		}
		printf("%-22s %12.2f %12.2f %7.2fx %9.2f   (counted %lld, GROUP BY %lld, "
		       "Tutin %lld)\n",
		       charts[i].name, median(hq) * 1e3, median(base) * 1e3,
		       median(hq) / median(base), median(viewer) * 1e3, total, btotal, vtotal);
	}
	hqdb_close(db);
	hqforms_free(forms);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
