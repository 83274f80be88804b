/* programme.h - the console's programme view: four counts from HQ's
 * merged data, each a chart (hq/chart.h) drawn as SVG or given as CSV.
 *
 *   visits-by-week      visits per municipality per week (the visit's
 *                       visits.visit_date, the week starting on Monday),
 *                       the last PROGRAMME_WEEKS weeks to today
 *   visit-types         visits by visits.visit_type, all time
 *   households-by-status  households by beneficiaries.status
 *   merged-by-day       changes HQ merged per day (HQ's local time), from
 *                       the audit log's push entries, the last
 *                       PROGRAMME_DAYS days
 *
 * They read the fields of the forms fieldsync ships; a deployment whose
 * forms lack one gets that chart empty.  Choices are shown by their
 * English labels in HQ's form.  Deleted records are not counted.  The
 * municipality of a visit is its household's (beneficiaries.municipality),
 * of a merged change its device's.  sees(cls, name) says whether the
 * account may see a municipality's numbers: the others are left out
 * before counting, so a viewer's numbers are its municipalities' only.
 *
 * Thread safety: db is the caller's; forms are read only.
 */
#ifndef FS_PROGRAMME_H
#define FS_PROGRAMME_H

#include <stdint.h>

#include "crypto/fserr.h"
#include "hq/chart.h"
#include "hq/hqforms.h"
#include "hq/hqsql.h"

#define PROGRAMME_WEEKS 12
#define PROGRAMME_DAYS 30

/* The chart named name, or -FS_ENOTFOUND. */
int programme_chart(struct hqsql *db, const struct hq_forms *forms, const char *name,
		    int (*sees)(void *cls, const char *municipality), void *cls, uint64_t now_ms,
		    struct chart **ret, struct fs_error *err) FS_WUR;

#endif
