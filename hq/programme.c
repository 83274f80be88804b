/* programme.c - the programme view's counts (hq/programme.h).
 *
 * SQL groups by the stored JSON text of each value, so the database does
 * the counting and C only decodes one label per group.
 */
#include "hq/programme.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "sync/fold.h"
#include "sync/form.h"

#define VISITS "visits"
#define HOUSEHOLDS "beneficiaries"
#define DAY_MS 86400000ull

/* ---- labels --------------------------------------------------------------- */

/* The field's definition in HQ's form of collection, or NULL; in *def,
 * which the caller frees. */
static const cJSON *field_def(const struct hq_forms *forms, const char *collection,
			      const char *field, cJSON **def)
{
	const struct form *f = hqforms_find(forms, collection);
	const cJSON *it;

	*def = f ? cJSON_Parse(form_definition(f)) : NULL;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(*def, "fields"))
	{
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");

		if (cJSON_IsString(n) && !strcmp(n->valuestring, field))
			return it;
	}
	return NULL;
}

/* A choice's English label in fdef, else the value itself. */
static const char *choice_label(const cJSON *fdef, const char *value)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(fdef, "choice_labels"), value),
		"en");

	return cJSON_IsString(l) ? l->valuestring : value;
}

/* The text a stored JSON value holds, into buf; "" when it is not text. */
static const char *json_text(const char *json, char *buf, size_t cap)
{
	cJSON *v = json ? cJSON_Parse(json) : NULL;

	snprintf(buf, cap, "%s", cJSON_IsString(v) ? v->valuestring : "");
	cJSON_Delete(v);
	return buf;
}

/* ---- dates ---------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (the
 * civil calendar algorithms of H. Hinnant). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, char out[11])
{
	long long era, y;
	unsigned doe, yoe, doy, mp, d, m;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = (long long)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	/* Years 0 to 9999: the dates a form accepts. */
	y += m <= 2;
	snprintf(out, 11, "%04u-%02u-%02u",
		 (unsigned)(y < 0      ? 0
			    : y > 9999 ? 9999
				       : y) %
			 10000u,
		 m % 100u, d % 100u);
}

/* The Monday on or before day z (1970-01-01 was a Thursday). */
static long long monday_of(long long z)
{
	return z - ((z % 7 + 7 + 3) % 7);
}

/* HQ's local date of a Unix time in ms. */
static void local_day(uint64_t ms, char out[11])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	strftime(out, 11, "%Y-%m-%d", &tm);
}

static long long local_days(uint64_t ms)
{
	char d[11];
	unsigned y, m, dd;

	local_day(ms, d);
	return sscanf(d, "%u-%u-%u", &y, &m, &dd) == 3 ? days_from_civil(y, m, dd) : 0;
}

/* ---- the charts -------------------------------------------------------- */

struct run {
	struct hqsql *db;
	const struct hq_forms *forms;
	int (*sees)(void *, const char *);
	void *cls;
	uint64_t now_ms;
	struct chart *c;
	cJSON *names; /* folded municipality -> the spelling shown */
	struct fs_error *err;
};

/* The series a municipality is counted in: one per folded name
 * (sync/fold.h), so "Tutin" and "Тутин" are one, shown as first seen. */
static int series_of(struct run *run, const char *muni, const char **ret)
{
	const cJSON *seen;
	char *key = NULL;

	if (!muni[0]) {
		*ret = "(no municipality)";
		return 0;
	}
	/* A name that is not UTF-8 folds to nothing: it is its own key. */
	if (fold_text(muni, strlen(muni), &key) == -FS_EFORMAT)
		key = strdup(muni);
	if (!key)
		return -ENOMEM;
	if (!(seen = cJSON_GetObjectItemCaseSensitive(run->names, key)))
		seen = cJSON_AddStringToObject(run->names, key, muni);
	free(key);
	if (!seen)
		return -ENOMEM;
	*ret = seen->valuestring;
	return 0;
}

/* Run sql (one text parameter, p1, may be NULL) and hand each row to
 * row(). */
static int each_row(struct run *run, const char *sql, const char *p1,
		    int (*row)(struct run *, struct hqsql_stmt *, const void *), const void *arg)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(run->db, sql, &st, run->err)) < 0)
		return r;
	if (p1)
		hqsql_bind_text(st, 1, p1);
	while ((rc = hqsql_step(st)) == HQSQL_ROW)
		if ((r = row(run, st, arg)) < 0) {
			r = fs_error_set(run->err, r, "programme view: out of memory");
			goto out;
		}
	if (rc != HQSQL_DONE)
		r = hqsql_fail(run->db, "count for the programme view", run->err);
out:
	hqsql_finalize(st);
	return r;
}

/* Columns: municipality (JSON), the visit's date (JSON), count. */
static int week_row(struct run *run, struct hqsql_stmt *st, const void *arg)
{
	char muni[256], date[32], monday[11];
	const char *series;
	unsigned y, m, d;

	(void)arg;
	json_text(hqsql_column_text(st, 0), muni, sizeof(muni));
	json_text(hqsql_column_text(st, 1), date, sizeof(date));
	if (!run->sees(run->cls, muni) || sscanf(date, "%u-%u-%u", &y, &m, &d) != 3)
		return 0;
	civil_from_days(monday_of(days_from_civil(y, m, d)), monday);
	if (series_of(run, muni, &series) < 0)
		return -ENOMEM;
	return chart_add(run->c, monday, series, hqsql_column_int64(st, 2));
}

/* Every week (or day) from first, step days apart, up to last: shown when
 * empty too, so that a gap in the work is a gap on the axis. */
static int fill_axis(struct run *run, long long first, long long last, long long step)
{
	struct chart *c = run->c;
	char day[11];

	if (chart_total(c) == 0)
		return 0;
	for (long long z = first; z <= last; z += step) {
		int r;

		civil_from_days(z, day);
		if ((r = chart_category(c, day)) < 0)
			return fs_error_set(run->err, r, "programme view: out of memory");
	}
	return 0;
}

static int visits_by_week(struct run *run)
{
	long long today = local_days(run->now_ms),
		  first = monday_of(today) - 7 * (PROGRAMME_WEEKS - 1);
	char since[16], day[11];
	int r;

	civil_from_days(first, day);
	snprintf(since, sizeof(since), "\"%s\"", day);
	if ((r = each_row(run,
			  "SELECT m.value, d.value, count(*) FROM records r "
			  "JOIN fields d ON d.record_id = r.id AND d.field = 'visit_date' "
			  "LEFT JOIN fields m ON m.record_id = r.scope_parent AND m.field = "
			  "'municipality' WHERE r.collection = '" VISITS "' AND r.deleted = 0 "
			  "AND d.value >= ?1 GROUP BY m.value, d.value",
			  since, week_row, NULL)) < 0)
		return r;
	return fill_axis(run, first, monday_of(today), 7);
}

/* Columns: the choice (JSON), municipality (JSON), count. */
static int choice_row(struct run *run, struct hqsql_stmt *st, const void *fdef)
{
	char value[256], muni[256];

	json_text(hqsql_column_text(st, 0), value, sizeof(value));
	json_text(hqsql_column_text(st, 1), muni, sizeof(muni));
	if (!run->sees(run->cls, muni))
		return 0;
	return chart_add(run->c, value[0] ? choice_label(fdef, value) : "(not given)", "count",
			 hqsql_column_int64(st, 2));
}

/* Counts by a choice field, every choice of the form first, in its order,
 * so that a choice nobody took shows as 0. */
static int by_choice(struct run *run, const char *collection, const char *field, const char *sql)
{
	cJSON *def = NULL;
	const cJSON *fdef = field_def(run->forms, collection, field, &def), *v;
	int r = 0;

	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(fdef, "values"))
	{
		if (cJSON_IsString(v) &&
		    (r = chart_add(run->c, choice_label(fdef, v->valuestring), "count", 0)) < 0)
			break;
	}
	if (r < 0)
		r = fs_error_set(run->err, r, "programme view: out of memory");
	else
		r = each_row(run, sql, NULL, choice_row, fdef);
	cJSON_Delete(def);
	return r;
}

/* Columns: when (ms), the entry's detail (JSON), the device's
 * municipality. */
static int merged_row(struct run *run, struct hqsql_stmt *st, const void *arg)
{
	const char *muni = hqsql_column_text(st, 2);
	cJSON *d;
	const cJSON *res, *n;
	char day[11];
	int r = 0;

	(void)arg;
	if (!muni || !run->sees(run->cls, muni))
		return 0;
	d = cJSON_Parse(hqsql_column_text(st, 1));
	res = cJSON_GetObjectItemCaseSensitive(d, "result");
	n = cJSON_GetObjectItemCaseSensitive(d, "merged");
	if (cJSON_IsString(res) && !strcmp(res->valuestring, "accepted") && cJSON_IsNumber(n) &&
	    n->valuedouble > 0) {
		const char *series;

		local_day((uint64_t)hqsql_column_int64(st, 0), day);
		r = series_of(run, muni, &series);
		if (r == 0)
			r = chart_add(run->c, day, series, (long long)n->valuedouble);
	}
	cJSON_Delete(d);
	return r;
}

static int merged_by_day(struct run *run)
{
	long long today = local_days(run->now_ms);
	char since[24];
	int r;

	/* A day early: the local day boundary is not UTC's. */
	snprintf(since, sizeof(since), "%llu",
		 (unsigned long long)(run->now_ms - (PROGRAMME_DAYS + 1) * DAY_MS));
	if ((r = each_row(run,
			  "SELECT e.at, e.detail, d.municipality FROM events e LEFT JOIN "
			  "devices d ON d.id = e.device WHERE e.type = 'push' AND e.at >= "
			  "CAST(?1 AS BIGINT) ORDER BY e.id",
			  since, merged_row, NULL)) < 0)
		return r;
	return fill_axis(run, today - (PROGRAMME_DAYS - 1), today, 1);
}

static int visit_types(struct run *run)
{
	return by_choice(run, VISITS, "visit_type",
			 "SELECT t.value, m.value, count(*) FROM records r "
			 "JOIN fields t ON t.record_id = r.id AND t.field = 'visit_type' "
			 "LEFT JOIN fields m ON m.record_id = r.scope_parent AND m.field = "
			 "'municipality' WHERE r.collection = '" VISITS "' AND r.deleted = 0 "
			 "GROUP BY t.value, m.value");
}

static int households_by_status(struct run *run)
{
	return by_choice(run, HOUSEHOLDS, "status",
			 "SELECT s.value, m.value, count(*) FROM records r "
			 "JOIN fields s ON s.record_id = r.id AND s.field = 'status' "
			 "LEFT JOIN fields m ON m.record_id = r.id AND m.field = "
			 "'municipality' WHERE r.collection = '" HOUSEHOLDS "' AND "
			 "r.deleted = 0 GROUP BY s.value, m.value");
}

/* The charts: name, kind, the CSV's category heading, how to count,
 * and whether the categories (dates) are put in order. */
static const struct {
	const char *name;
	enum chart_kind kind;
	const char *head;
	int (*count)(struct run *);
	int by_date;
} charts[] = {
	{ "visits-by-week", CHART_COLUMNS, "week", visits_by_week, 1 },
	{ "visit-types", CHART_BARS, "visit type", visit_types, 0 },
	{ "households-by-status", CHART_BARS, "status", households_by_status, 0 },
	{ "merged-by-day", CHART_COLUMNS, "day", merged_by_day, 1 },
};

int programme_chart(struct hqsql *db, const struct hq_forms *forms, const char *name,
		    int (*sees)(void *cls, const char *municipality), void *cls, uint64_t now_ms,
		    struct chart **ret, struct fs_error *err)
{
	struct run run = {
		.db = db, .forms = forms, .sees = sees, .cls = cls, .now_ms = now_ms, .err = err
	};
	size_t i = 0;
	int r;

	*ret = NULL;
	while (i < sizeof(charts) / sizeof(charts[0]) && strcmp(charts[i].name, name))
		i++;
	if (i == sizeof(charts) / sizeof(charts[0]))
		return fs_error_set(err, -FS_ENOTFOUND, "no chart of that name");
	if (!(run.names = cJSON_CreateObject()) ||
	    chart_new(charts[i].kind, charts[i].head, &run.c) < 0) {
		cJSON_Delete(run.names);
		return fs_error_set(err, -ENOMEM, "out of memory");
	}
	r = charts[i].count(&run);
	cJSON_Delete(run.names);
	if (r < 0) {
		chart_free(run.c);
		return r;
	}
	if (charts[i].by_date)
		chart_sort(run.c);
	*ret = run.c;
	return 0;
}
