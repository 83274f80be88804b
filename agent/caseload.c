/* caseload.c - searching the caseload, one household (agent/caseload.h). */
#include "agent/caseload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sync/fold.h"

/* Slots 48..52 (agent/store.h). */
#define SLOT_SEARCH 48
#define SLOT_HOUSEHOLD 49
#define SLOT_VISITS 50
#define SLOT_CONFLICTS 51
#define SLOT_ROW 52

/* ?1..?8 the folded words, ?9 the folded municipality, ?10 the status,
 * ?11 and ?12 the last visit's range, ?13 never visited, ?14 the limit.
 *
 * record_search alone is read: the words, the sort key and the deleted
 * flag are in it, so no record's JSON is read unless a filter asks for
 * a field (FIELD_OF) or the household is returned (ROW_SQL).  The visit
 * subqueries run only when a visit filter is set (OR short-circuits).
 * They seek records_visits_by_household by comparing with +s.id, not
 * s.id: the column's TEXT affinity would not match the index's
 * expression, and SQLite then scanned every visit for each household. */
/* The team of the device that wrote record r, when HQ has said it
 * (device_teams) or it is this device (its enrolment's team); ?9 is this
 * device's id. */
#define TEAM_OF(r)                                                                                 \
	"coalesce((SELECT t.team FROM device_teams t WHERE t.device = " r ".author),"              \
	" (SELECT m.value FROM meta m WHERE m.key = 'team' AND " r ".author = ?9))"
#define VISITS_OF(id)                                                                              \
	"FROM records v WHERE v.collection = 'visits' AND v.deleted = 0"                           \
	" AND fs_field(v.fields, 'beneficiary_id') = " id
#define LAST_VISIT "(SELECT max(json_extract(v.fields, '$.visit_date')) " VISITS_OF("+s.id") ")"
#define FIELD_OF(name)                                                                             \
	"json_extract((SELECT r.fields FROM records r WHERE r.id = s.id), '$." name "')"
#define WORD(n) " AND (?" #n " IS NULL OR instr(s.words, ?" #n ") > 0)"
/* clang-format off */
static const char SEARCH_SQL[] =
	"SELECT s.id, count(*) OVER () FROM record_search s"
	" WHERE s.collection = 'beneficiaries' AND s.deleted = 0"
	WORD(1) WORD(2) WORD(3) WORD(4) WORD(5) WORD(6) WORD(7) WORD(8)
	" AND (?9 IS NULL OR fs_fold(" FIELD_OF("municipality") ") = ?9)"
	" AND (?10 IS NULL OR " FIELD_OF("status") " = ?10)"
	" AND (?11 IS NULL OR " LAST_VISIT " >= ?11)"
	" AND (?12 IS NULL OR " LAST_VISIT " <= ?12)"
	" AND (?13 = 0 OR NOT EXISTS (SELECT 1 " VISITS_OF("+s.id") "))"
	" ORDER BY s.name, s.id LIMIT ?14";
/* One household found: its record, its last visit and visit count. */
static const char ROW_SQL[] =
	"SELECT r.fields, r.author,"
	" (SELECT max(json_extract(v.fields, '$.visit_date')) " VISITS_OF("?1") "),"
	" (SELECT count(*) " VISITS_OF("?1") ")"
	" FROM records r WHERE r.id = ?1";
/* clang-format on */

static int oom(struct fs_error *err)
{
	return fs_error_set(err, -ENOMEM, "caseload: out of memory");
}

/* YYYY-MM-DD, or NULL. */
static int date_ok(const char *d)
{
	if (!d)
		return 1;
	if (strlen(d) != 10 || d[4] != '-' || d[7] != '-')
		return 0;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9'))
			return 0;
	return 1;
}

/* Bind the folded words of text to ?1..?8, each after a space: it
 * matches where a word of the household's starts ("ana" finds Ana, not
 * Dragana).  More words are -FS_EUSAGE.  *key holds what the bindings
 * point into. */
static int bind_words(sqlite3_stmt *st, const char *text, char **key, struct fs_error *err)
{
	char *folded = NULL, *p, *next;
	int n = 0, r;
	size_t len;

	*key = NULL;
	if (!text || !text[0])
		return 0;
	if ((r = fold_text(text, strlen(text), &folded)) < 0)
		return r == -ENOMEM
			       ? oom(err)
			       : fs_error_set(err, -FS_EUSAGE, "search: the words are not UTF-8");
	/* " w1 w2...": each word is bound with the space before it, and
	 * ended where the next space was. */
	len = strlen(folded);
	if (!(*key = malloc(len + 2))) {
		free(folded);
		return oom(err);
	}
	(*key)[0] = ' ';
	memcpy(*key + 1, folded, len + 1);
	sodium_memzero(folded, len);
	free(folded);
	for (p = *key; *p; p = next) {
		if (!(next = strchr(p + 1, ' ')))
			next = p + strlen(p);
		if (++n > CASELOAD_MAX_WORDS)
			return fs_error_set(err, -FS_EUSAGE, "search: at most %d words",
					    CASELOAD_MAX_WORDS);
		sqlite3_bind_text(st, n, p, (int)(next - p), SQLITE_STATIC);
	}
	return 0;
}

/* The JSON text col of st as an object member name; NULL text is null. */
static int add_json(cJSON *o, const char *name, sqlite3_stmt *st, int col)
{
	const char *text = (const char *)sqlite3_column_text(st, col);
	cJSON *v = text ? cJSON_Parse(text) : cJSON_CreateNull();

	if (!v)
		return 0;
	if (!cJSON_AddItemToObject(o, name, v)) {
		cJSON_Delete(v);
		return 0;
	}
	return 1;
}

static int add_text(cJSON *o, const char *name, sqlite3_stmt *st, int col)
{
	const char *text = (const char *)sqlite3_column_text(st, col);

	return (text ? cJSON_AddStringToObject(o, name, text) : cJSON_AddNullToObject(o, name)) !=
	       NULL;
}

static int mine(struct store *s, sqlite3_stmt *st, int col)
{
	const char *author = (const char *)sqlite3_column_text(st, col);

	return author && !strcmp(author, store_identity(s)->id);
}

/* Household id's fields, whether it is this device's, its last visit's
 * date (or null) and its number of visits, into h. */
static int add_row(struct store *s, const char *id, cJSON *h, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = store_stmt(s, SLOT_ROW, ROW_SQL, &st, err)) < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		return store_fail(s, "read a household in", err);
	if (!add_json(h, "fields", st, 0) || !cJSON_AddBoolToObject(h, "mine", mine(s, st, 1)) ||
	    !add_text(h, "last_visit", st, 2) ||
	    !cJSON_AddNumberToObject(h, "visits", sqlite3_column_int(st, 3)))
		r = oom(err);
	sqlite3_reset(st);
	return r;
}

int caseload_search(struct store *s, const struct caseload_query *q, cJSON **ret,
		    struct fs_error *err)
{
	cJSON *o = cJSON_CreateObject(), *list = cJSON_CreateArray();
	char *words = NULL, *muni = NULL;
	sqlite3_stmt *st = NULL;
	long long total = 0;
	int r, rc;

	*ret = NULL;
	if (!o || !list || !cJSON_AddItemToObject(o, "households", list)) {
		cJSON_Delete(list);
		r = oom(err);
		goto out;
	}
	if (!date_ok(q->visited_from) || !date_ok(q->visited_to)) {
		r = fs_error_set(err, -FS_EUSAGE, "search: a visit date is not YYYY-MM-DD");
		goto out;
	}
	if ((r = store_stmt(s, SLOT_SEARCH, SEARCH_SQL, &st, err)) < 0 ||
	    (r = bind_words(st, q->text, &words, err)) < 0)
		goto out;
	if (q->municipality && q->municipality[0]) {
		if ((r = fold_text(q->municipality, strlen(q->municipality), &muni)) < 0) {
			r = r == -ENOMEM ? oom(err)
					 : fs_error_set(err, -FS_EUSAGE,
							"search: the municipality is not UTF-8");
			goto out;
		}
		sqlite3_bind_text(st, 9, muni, -1, SQLITE_STATIC);
	}
	if (q->status && q->status[0])
		sqlite3_bind_text(st, 10, q->status, -1, SQLITE_STATIC);
	if (q->visited_from)
		sqlite3_bind_text(st, 11, q->visited_from, -1, SQLITE_STATIC);
	if (q->visited_to)
		sqlite3_bind_text(st, 12, q->visited_to, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 13, !!q->never_visited);
	sqlite3_bind_int(
		st, 14,
		(int)(q->limit && q->limit < CASELOAD_MAX_ROWS ? q->limit : CASELOAD_MAX_ROWS));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *h = cJSON_CreateObject();

		if (!h || !cJSON_AddItemToArray(list, h)) {
			cJSON_Delete(h);
			r = oom(err);
			goto out;
		}
		if (!add_text(h, "id", st, 0)) {
			r = oom(err);
			goto out;
		}
		if ((r = add_row(s, (const char *)sqlite3_column_text(st, 0), h, err)) < 0)
			goto out;
		total = sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE) {
		r = store_fail(s, "search the caseload in", err);
		goto out;
	}
	if (!cJSON_AddNumberToObject(o, "total", (double)total)) {
		r = oom(err);
		goto out;
	}
	*ret = o;
	o = NULL;
	r = 0;
out:
	if (st)
		sqlite3_reset(st); /* the bindings point into words and muni */
	if (words)
		sodium_memzero(words, strlen(words));
	free(words);
	free(muni);
	cJSON_Delete(o);
	return r;
}

/* Visits of household id, newest first, into list. */
static int add_visits(struct store *s, const char *id, cJSON *list, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = store_stmt(s, SLOT_VISITS,
			    "SELECT v.id, v.fields, v.author, " TEAM_OF("v") " " VISITS_OF(
				    "?1") " ORDER BY json_extract(v.fields, '$.visit_date') DESC, "
					  "v.id DESC",
			    &st, err)) < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, store_identity(s)->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *v = cJSON_CreateObject();

		if (!v || !cJSON_AddItemToArray(list, v)) {
			cJSON_Delete(v);
			return oom(err);
		}
		if (!add_text(v, "id", st, 0) || !add_json(v, "fields", st, 1) ||
		    !add_text(v, "author", st, 2) || !add_text(v, "team", st, 3) ||
		    !cJSON_AddBoolToObject(v, "mine", mine(s, st, 2)))
			return oom(err);
	}
	return rc == SQLITE_DONE ? 0 : store_fail(s, "read the visits in", err);
}

/* HQ's decided conflicts on household id into list. */
static int add_conflicts(struct store *s, const char *id, cJSON *list, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = store_stmt(s, SLOT_CONFLICTS,
			    "SELECT field, value_a, device_a, value_b, device_b FROM hq_conflicts "
			    "WHERE record_id = ?1 ORDER BY field, hlc_b",
			    &st, err)) < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *c = cJSON_CreateObject();

		if (!c || !cJSON_AddItemToArray(list, c)) {
			cJSON_Delete(c);
			return oom(err);
		}
		if (!add_text(c, "field", st, 0) || !add_json(c, "value_a", st, 1) ||
		    !add_text(c, "device_a", st, 2) || !add_json(c, "value_b", st, 3) ||
		    !add_text(c, "device_b", st, 4))
			return oom(err);
	}
	return rc == SQLITE_DONE ? 0 : store_fail(s, "read the conflicts in", err);
}

int caseload_household(struct store *s, const char *id, cJSON **ret, struct fs_error *err)
{
	cJSON *o = cJSON_CreateObject(), *visits = cJSON_CreateArray(),
	      *conflicts = cJSON_CreateArray();
	sqlite3_stmt *st = NULL;
	int r, rc;

	*ret = NULL;
	if (!o || !cJSON_AddItemToObject(o, "visits", visits)) {
		cJSON_Delete(visits);
		cJSON_Delete(conflicts);
		r = oom(err);
		goto out;
	}
	if (!cJSON_AddItemToObject(o, "conflicts", conflicts)) {
		cJSON_Delete(conflicts);
		r = oom(err);
		goto out;
	}
	if ((r = store_stmt(s, SLOT_HOUSEHOLD,
			    "SELECT h.id, h.fields, h.author, " TEAM_OF(
				    "h") " FROM records h"
					 " WHERE h.id = ?1 AND "
					 "collection = 'beneficiaries' AND deleted = 0",
			    &st, err)) < 0)
		goto out;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, store_identity(s)->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = fs_error_set(err, -FS_ENOTFOUND, "household %s: no such household", id);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = store_fail(s, "read the household in", err);
		goto out;
	}
	if (!add_text(o, "id", st, 0) || !add_json(o, "fields", st, 1) ||
	    !add_text(o, "author", st, 2) || !add_text(o, "team", st, 3) ||
	    !cJSON_AddBoolToObject(o, "mine", mine(s, st, 2))) {
		r = oom(err);
		goto out;
	}
	sqlite3_reset(st);
	if ((r = add_visits(s, id, visits, err)) < 0 ||
	    (r = add_conflicts(s, id, conflicts, err)) < 0)
		goto out;
	*ret = o;
	o = NULL;
out:
	cJSON_Delete(o);
	return r;
}
