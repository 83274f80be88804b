/* metrics.c - HQ's numbers for Prometheus (hq/metrics.h). */
#include "hq/metrics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "hq/admin.h"
#include "hq/health.h"
#include "sync/hlc.h"

/* The statuses the device API answers with; the rest count as "other". */
static const unsigned STATUSES[] = {
	200, 204, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503, 507
};
#define NSTATUS (sizeof(STATUSES) / sizeof(STATUSES[0]))
/* Upper bounds of the ingest histogram, microseconds. */
static const uint64_t BUCKETS_US[] = { 1000,   2500,   5000,   10000,	25000,	 50000,
				       100000, 250000, 500000, 1000000, 2500000, 5000000 };
#define NBUCKET (sizeof(BUCKETS_US) / sizeof(BUCKETS_US[0]))

static _Atomic uint64_t responses[NSTATUS + 1];
static _Atomic uint64_t sets[3];
static _Atomic uint64_t ingest_bucket[NBUCKET + 1]; /* the last: +Inf */
static _Atomic uint64_t ingest_sum_us;

void metrics_response(unsigned status)
{
	size_t i;

	for (i = 0; i < NSTATUS; i++)
		if (STATUSES[i] == status)
			break;
	atomic_fetch_add(&responses[i], 1);
}

void metrics_changeset(enum metrics_outcome outcome, uint64_t duration_us)
{
	size_t i;

	atomic_fetch_add(&sets[outcome], 1);
	if (outcome != METRICS_ACCEPTED)
		return;
	for (i = 0; i < NBUCKET; i++)
		if (duration_us <= BUCKETS_US[i])
			break;
	atomic_fetch_add(&ingest_bucket[i], 1);
	atomic_fetch_add(&ingest_sum_us, duration_us);
}

/* One number from the database. */
static int scalar(struct hqsql *db, const char *sql, int64_t *ret, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r = hqsql_prepare(db, sql, &st, err);

	if (r < 0)
		return r;
	if (hqsql_step(st) == HQSQL_ROW)
		*ret = hqsql_column_is_null(st, 0) ? 0 : hqsql_column_int64(st, 0);
	else
		r = hqsql_fail(db, "read a metric", err);
	hqsql_finalize(st);
	return r;
}

static int devices_red(struct hqsql *db, const struct hq_config *cfg, int64_t *ret,
		       struct fs_error *err)
{
	uint64_t now = hlc_wall_ms();
	cJSON *all = NULL, *d;
	int r;

	*ret = 0;
	if ((r = admin_devices_array(db, &all, err)) < 0)
		return r;
	cJSON_ArrayForEach(d, all)
	{
		const cJSON *state = cJSON_GetObjectItemCaseSensitive(d, "state");
		const char *why;

		/* A revoked laptop is not a health problem to chase. */
		if (cJSON_IsString(state) && !strcmp(state->valuestring, "revoked"))
			continue;
		*ret += health_red(d, now, cfg->console.red_unseen_hours,
				   cfg->console.red_backlog_hours, &why);
	}
	cJSON_Delete(all);
	return 0;
}

int metrics_render(struct hqsql *db, const struct hq_config *cfg, char **ret, struct fs_error *err)
{
	int64_t quarantine = 0, conflicts = 0, red = 0, audit = 0;
	uint64_t cumulative = 0;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	if ((r = scalar(db, "SELECT count(*) FROM quarantine", &quarantine, err)) < 0 ||
	    (r = scalar(db,
			"SELECT count(*) FROM conflicts c LEFT JOIN fields f ON "
			"f.record_id = c.record_id AND f.field = c.field WHERE NOT EXISTS "
			"(SELECT 1 FROM resolutions s WHERE s.conflict_id = c.id) AND "
			"(f.hlc IS NULL OR f.hlc <= c.hlc_b)",
			&conflicts, err)) < 0 ||
	    (r = scalar(db, "SELECT max(id) FROM events", &audit, err)) < 0 ||
	    (r = devices_red(db, cfg, &red, err)) < 0)
		return r;
	if (!(f = open_memstream(&text, &len)))
		return fs_error_set(err, -ENOMEM, "out of memory");
	fprintf(f, "# HELP fieldsync_http_responses_total Answers of the device API, by status.\n"
		   "# TYPE fieldsync_http_responses_total counter\n");
	for (size_t i = 0; i < NSTATUS; i++)
		fprintf(f, "fieldsync_http_responses_total{status=\"%u\"} %llu\n", STATUSES[i],
			(unsigned long long)atomic_load(&responses[i]));
	fprintf(f, "fieldsync_http_responses_total{status=\"other\"} %llu\n",
		(unsigned long long)atomic_load(&responses[NSTATUS]));
	fprintf(f, "# HELP fieldsync_changesets_total Change sets received, by outcome.\n"
		   "# TYPE fieldsync_changesets_total counter\n");
	fprintf(f, "fieldsync_changesets_total{outcome=\"accepted\"} %llu\n",
		(unsigned long long)atomic_load(&sets[METRICS_ACCEPTED]));
	fprintf(f, "fieldsync_changesets_total{outcome=\"duplicate\"} %llu\n",
		(unsigned long long)atomic_load(&sets[METRICS_DUPLICATE]));
	fprintf(f, "fieldsync_changesets_total{outcome=\"rejected\"} %llu\n",
		(unsigned long long)atomic_load(&sets[METRICS_REJECTED]));
	fprintf(f, "# HELP fieldsync_ingest_seconds Time to check, merge and sign for an "
		   "accepted change set.\n"
		   "# TYPE fieldsync_ingest_seconds histogram\n");
	for (size_t i = 0; i <= NBUCKET; i++) {
		cumulative += atomic_load(&ingest_bucket[i]);
		if (i < NBUCKET)
			fprintf(f, "fieldsync_ingest_seconds_bucket{le=\"%g\"} %llu\n",
				(double)BUCKETS_US[i] / 1e6, (unsigned long long)cumulative);
		else
			fprintf(f, "fieldsync_ingest_seconds_bucket{le=\"+Inf\"} %llu\n",
				(unsigned long long)cumulative);
	}
	fprintf(f, "fieldsync_ingest_seconds_sum %.6f\n",
		(double)atomic_load(&ingest_sum_us) / 1e6);
	fprintf(f, "fieldsync_ingest_seconds_count %llu\n", (unsigned long long)cumulative);
	fprintf(f,
		"# HELP fieldsync_quarantine_changes Changes kept but not merged.\n"
		"# TYPE fieldsync_quarantine_changes gauge\n"
		"fieldsync_quarantine_changes %lld\n"
		"# HELP fieldsync_conflicts Open conflicts: not resolved, and no later edit holds "
		"the field.\n"
		"# TYPE fieldsync_conflicts gauge\n"
		"fieldsync_conflicts %lld\n"
		"# HELP fieldsync_devices_red Active devices the console flags red.\n"
		"# TYPE fieldsync_devices_red gauge\n"
		"fieldsync_devices_red %lld\n"
		"# HELP fieldsync_audit_entries Entries in the audit log.\n"
		"# TYPE fieldsync_audit_entries gauge\n"
		"fieldsync_audit_entries %lld\n",
		(long long)quarantine, (long long)conflicts, (long long)red, (long long)audit);
	if (fclose(f) != 0 || !text) {
		free(text);
		return fs_error_set(err, -ENOMEM, "out of memory");
	}
	*ret = text;
	return 0;
}
