/* caseload.h - the team's households as a field worker looks for them,
 * and one household with its visits and conflicts: the field app's
 * caseload (agent/fieldapp.h) and `fieldsync beneficiary find`.
 *
 * Text is matched by sync/fold.h's rule, the one HQ's scope check uses:
 * case, diacritics and script fold away, so "djordje" finds "Đorđe" and
 * "Jovanovic" finds "Јовановић" (and Cyrillic input finds Latin).  Every
 * word of the query must appear in one of the household's text values.
 * The folded words are kept by triggers in the store (record_search,
 * agent/store.c), so a search reads no JSON it does not return.
 *
 * Results are JSON built for the caller, who owns them; they hold field
 * values, so callers wipe their text before freeing it (as the agent's
 * answers do).  Errors: -FS_EUSAGE for a bad query (named, no value
 * echoed), -FS_ENOTFOUND for an unknown household, store errors.
 * Thread safety: a store's (one thread at a time).
 */
#ifndef FS_CASELOAD_H
#define FS_CASELOAD_H

#include <cjson/cJSON.h>

#include "agent/store.h"

#define CASELOAD_MAX_ROWS 200 /* households in one answer */
#define CASELOAD_MAX_WORDS 8  /* words of a query */

struct caseload_query {
	const char *text;	  /* words that must all appear; NULL or "": any */
	const char *municipality; /* the same municipality, folded; NULL: any */
	const char *status;	  /* this status; NULL: any */
	/* The last visit's date within [from, to] (YYYY-MM-DD, inclusive);
	 * NULL: open.  never_visited: only households with no visit. */
	const char *visited_from, *visited_to;
	int never_visited;
	unsigned limit; /* 0: CASELOAD_MAX_ROWS */
};

/* *ret: {"total": N (matching, beyond limit too), "households": [{"id",
 * "fields": {...}, "last_visit": DATE or null, "visits": N, "mine":
 * bool}]}, by name. */
int caseload_search(struct store *s, const struct caseload_query *q, cJSON **ret,
		    struct fs_error *err) FS_WUR;

/* *ret: {"id", "fields", "mine", "author", "team", "visits": [{"id",
 * "fields", "author", "team", "mine"}] newest first, "conflicts":
 * [{"field", "value_a", "device_a", "value_b", "device_b"}]} (b is the
 * value that won).  "team" is the author's team: this device's own, or
 * as HQ named it in a down-set; null when HQ has not named it yet. */
int caseload_household(struct store *s, const char *id, cJSON **ret, struct fs_error *err) FS_WUR;

#endif
