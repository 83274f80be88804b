/* bench_caseload.c - the field app's caseload search on 20,000 households
 * (agent/caseload.h), against a plain SQLite LIKE scan of the same rows.
 *
 * The households and a visit for most of them are written through
 * records_add into an encrypted store, as the agent writes them (the
 * search triggers run).  The same rows are copied into a plain SQLite
 * database with no index but the primary key.  Each query runs REPEAT
 * times on each; the median counts.  The baseline finds less: LIKE knows
 * neither Serbian's two scripts nor its diacritics (the counts are
 * printed).  Speed is reported, never asserted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "agent/caseload.h"
#include "agent/keystore.h"
#include "agent/records.h"
#include "agent/store.h"
#include "sync/formsrc.h"

#define DEFAULT_HOUSEHOLDS 20000
#define REPEAT 21
#define SEED 0x5eedca5eULL

/* Surnames and first names, the same in both scripts. */
static const char *const SURNAMES[][2] = {
	{ "Jovanović", "Јовановић" }, { "Petrović", "Петровић" },   { "Nikolić", "Николић" },
	{ "Marković", "Марковић" },   { "Đorđević", "Ђорђевић" },   { "Stojanović", "Стојановић" },
	{ "Ilić", "Илић" },	      { "Stanković", "Станковић" }, { "Pavlović", "Павловић" },
	{ "Milošević", "Милошевић" }, { "Popović", "Поповић" },	    { "Živković", "Живковић" },
	{ "Tomić", "Томић" },	      { "Kovačević", "Ковачевић" }, { "Lazić", "Лазић" },
	{ "Ristić", "Ристић" },
};
static const char *const NAMES[][2] = {
	{ "Ana", "Ана" },	  { "Milan", "Милан" },	  { "Dragana", "Драгана" },
	{ "Đorđe", "Ђорђе" },	  { "Jelena", "Јелена" }, { "Nikola", "Никола" },
	{ "Snežana", "Снежана" }, { "Stefan", "Стефан" }, { "Ljiljana", "Љиљана" },
	{ "Marko", "Марко" },	  { "Željko", "Жељко" },  { "Milica", "Милица" },
};
static const char *const MUNIS[] = { "Vranje", "Bujanovac", "Preševo", "Sremska Mitrovica",
				     "Tutin",  "Sjenica" };
static const char *const STATUS[] = { "refugee", "idp", "asylum_seeker", "host_community" };

static uint64_t rng = SEED;
static unsigned next(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int die(const char *what, const char *why)
{
	fprintf(stderr, "bench_caseload: %s: %s\n", what, why);
	return 1;
}

/* Fill the store: n households, a visit for three in four. */
static int fill(struct store *s, struct form *b, struct form *v, unsigned n)
{
	struct fs_error err = { 0 };
	char id[UUID_TEXT_LEN + 1], vid[UUID_TEXT_LEN + 1], name[128], date[16];

	if (store_begin(s, &err) < 0)
		return die("begin", err.msg);
	for (unsigned i = 0; i < n; i++) {
		int script = next(2);
		cJSON *o = cJSON_CreateObject();

		snprintf(name, sizeof(name), "%s %s", SURNAMES[next(16)][script],
			 NAMES[next(12)][script]);
		cJSON_AddStringToObject(o, "full_name", name);
		cJSON_AddStringToObject(o, "municipality", MUNIS[next(6)]);
		cJSON_AddStringToObject(o, "status", STATUS[next(4)]);
		cJSON_AddNumberToObject(o, "household_size", 1 + next(8));
		cJSON_AddBoolToObject(o, "consent", 1);
		if (records_add(s, b, o, NULL, id, &err) < 0)
			return die("add a household", err.msg);
		cJSON_Delete(o);
		if (next(4) == 0)
			continue;
		o = cJSON_CreateObject();
		snprintf(date, sizeof(date), "2026-%02u-%02u", 1 + next(11), 1 + next(28));
		cJSON_AddStringToObject(o, "beneficiary_id", id);
		cJSON_AddStringToObject(o, "visit_date", date);
		cJSON_AddStringToObject(o, "visit_type", "needs_assessment");
		if (records_add(s, v, o, NULL, vid, &err) < 0)
			return die("add a visit", err.msg);
		cJSON_Delete(o);
	}
	return store_commit(s, &err) < 0 ? die("commit", err.msg) : 0;
}

/* The same rows in a plain database at path. */
static int copy_plain(struct store *s, const char *path, sqlite3 **ret)
{
	sqlite3_stmt *rd = NULL, *wr = NULL;
	sqlite3 *db = NULL;
	int rc;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "PRAGMA journal_mode=WAL; CREATE TABLE records(id TEXT PRIMARY KEY, "
			 "collection TEXT NOT NULL, fields TEXT NOT NULL) STRICT, WITHOUT ROWID;"
			 "BEGIN",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(store_db(s), "SELECT id, collection, fields FROM records", -1, &rd,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO records VALUES (?1, ?2, ?3)", -1, &wr, NULL) !=
		    SQLITE_OK)
		return die("plain database", sqlite3_errmsg(db));
	while ((rc = sqlite3_step(rd)) == SQLITE_ROW) {
		for (int i = 0; i < 3; i++)
			sqlite3_bind_text(wr, i + 1, (const char *)sqlite3_column_text(rd, i), -1,
					  SQLITE_TRANSIENT);
		if (sqlite3_step(wr) != SQLITE_DONE)
			return die("plain insert", sqlite3_errmsg(db));
		sqlite3_reset(wr);
	}
	sqlite3_finalize(rd);
	sqlite3_finalize(wr);
	if (rc != SQLITE_DONE || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return die("plain copy", sqlite3_errmsg(db));
	*ret = db;
	return 0;
}

/* Median ms of REPEAT runs of q on the store; *found: households found. */
static int time_ours(struct store *s, const struct caseload_query *q, double *ms, int *found)
{
	double t[REPEAT];
	struct fs_error err = { 0 };

	for (int i = 0; i < REPEAT; i++) {
		cJSON *res = NULL;
		double t0 = now_ms();

		if (caseload_search(s, q, &res, &err) < 0)
			return die("caseload_search", err.msg);
		t[i] = now_ms() - t0;
		*found = (int)cJSON_GetObjectItemCaseSensitive(res, "total")->valuedouble;
		cJSON_Delete(res);
	}
	qsort(t, REPEAT, sizeof(t[0]), cmp_double);
	*ms = t[REPEAT / 2];
	return 0;
}

/* Median ms of REPEAT runs of sql on the plain database, reading every
 * row's fields as the search does; *found: rows. */
static int time_plain(sqlite3 *db, const char *sql, double *ms, int *found)
{
	double t[REPEAT];
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return die("plain query", sqlite3_errmsg(db));
	for (int i = 0; i < REPEAT; i++) {
		double t0 = now_ms();
		size_t bytes = 0;

		*found = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *o = cJSON_Parse((const char *)sqlite3_column_text(st, 1));

			bytes += o ? 1 : 0;
			cJSON_Delete(o);
			(*found)++;
		}
		sqlite3_reset(st);
		t[i] = now_ms() - t0;
		(void)bytes;
	}
	sqlite3_finalize(st);
	qsort(t, REPEAT, sizeof(t[0]), cmp_double);
	*ms = t[REPEAT / 2];
	return 0;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : DEFAULT_HOUSEHOLDS;
	char dir[] = "/tmp/bench_caseload.XXXXXX", path[4096], key[4096];
	struct keystore_secret *secret = NULL;
	struct form *b = NULL, *v = NULL;
	struct fs_error err = { 0 };
	struct store *s = NULL;
	sqlite3 *plain = NULL;
	int rc = 1;
	static const struct {
		const char *what;
		struct caseload_query q;
		const char *plain;
	} cases[] = {
		{ "a surname, \"jovanovic\"",
		  { .text = "jovanovic" },
		  "SELECT id, fields FROM records WHERE collection = 'beneficiaries' AND "
		  "fields LIKE '%jovanovi%'" },
		{ "a name in two words, \"djordjevic ana\"",
		  { .text = "djordjevic ana" },
		  "SELECT id, fields FROM records WHERE collection = 'beneficiaries' AND "
		  "fields LIKE '%djordjevi%' AND fields LIKE '%ana%'" },
		{ "everyone, first 200 by name",
		  { .limit = 200 },
		  "SELECT id, fields FROM records WHERE collection = 'beneficiaries' "
		  "ORDER BY json_extract(fields, '$.full_name') LIMIT 200" },
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (n < 1 || n > 1000000 || sodium_init() < 0 || !mkdtemp(dir))
		return die("setup", "bad size, no libsodium, or no temp directory");
	snprintf(key, sizeof(key), "%s/wrap.key", dir);
	snprintf(path, sizeof(path), "%s/data", dir);
	if (keystore_keygen(key, &err) < 0 ||
	    keystore_secret_from_key_file(key, &secret, &err) < 0 ||
	    store_create(path, secret, PWHASH_INTERACTIVE, NULL, &err) < 0 ||
	    store_open(path, secret, NULL, &s, &err) < 0) {
		die("store", err.msg);
		goto out;
	}
	if (formsrc_load(NULL, "beneficiaries", &b, &err) < 0 ||
	    formsrc_load(NULL, "visits", &v, &err) < 0) {
		die("forms", err.msg);
		goto out;
	}
	printf("bench_caseload: %u households (Latin and Cyrillic names), a visit for 3 in 4\n", n);
	double t0 = now_ms();
	if (fill(s, b, v, n) != 0)
		goto out;
	printf("written through records_add in %.0f ms\n", now_ms() - t0);
	snprintf(path, sizeof(path), "%s/plain.db", dir);
	if (copy_plain(s, path, &plain) != 0)
		goto out;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double ours, base;
		int found, base_found;

		if (time_ours(s, &cases[i].q, &ours, &found) != 0 ||
		    time_plain(plain, cases[i].plain, &base, &base_found) != 0)
			goto out;
		printf("%s: %.2f ms, %d found (plain LIKE: %.2f ms, %d found)\n", cases[i].what,
		       ours, found, base, base_found);
		printf("row\tcaseload search, %u households: %s\t%.2f ms\tplain SQLite LIKE scan "
		       "%.2f ms\t%.2f\n",
		       n, cases[i].what, ours, base, ours / base);
	}
	{
		double ms;
		int found;
		struct caseload_query never = { .never_visited = 1 },
				      muni = { .municipality = "БУЈАНОВАЦ", .status = "idp" };

		if (time_ours(s, &never, &ms, &found) != 0)
			goto out;
		printf("never visited: %.2f ms, %d found\n", ms, found);
		if (time_ours(s, &muni, &ms, &found) != 0)
			goto out;
		printf("municipality (other script) and status: %.2f ms, %d found\n", ms, found);
	}
	rc = 0;
out:
	if (plain)
		sqlite3_close(plain);
	store_close(s);
	form_free(b);
	form_free(v);
	keystore_secret_free(secret);
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_caseload: could not remove %s\n", dir);
	}
	return rc;
}
