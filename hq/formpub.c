/* formpub.c - see formpub.h. */
#include "hq/formpub.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "hq/audit.h"
#include "hq/hqsql.h"

/* The latest version of collection and its definition: 1 with both set
 * (*def malloc'd), 0 when none was published. */
static int latest(struct hqsql *db, const char *collection, int64_t *version, char **def,
		  struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(db,
			       "SELECT version, definition FROM form_versions WHERE "
			       "collection = ?1 ORDER BY version DESC LIMIT 1",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, collection);
	rc = hqsql_step(st);
	if (rc == HQSQL_ROW) {
		*version = hqsql_column_int64(st, 0);
		r = (*def = strdup(hqsql_column_text(st, 1)))
			    ? 1
			    : fs_error_set(err, -ENOMEM, "out of memory");
	} else if (rc != HQSQL_DONE) {
		r = hqsql_fail(db, "read the published forms", err);
	}
	hqsql_finalize(st);
	return r;
}

/* Store version of f with the next revision, and audit it. */
static int publish_one(struct hqsql *db, const struct form *f, int64_t version, uint64_t now_ms,
		       struct fs_error *err)
{
	const char *def = form_definition(f);
	unsigned char hash[32];
	char hex[65], detail[256];
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(db,
			       "INSERT INTO form_versions(collection, version, definition, "
			       "rev, published_at) VALUES (?1, ?2, ?3, (SELECT value + 1 FROM "
			       "counters WHERE name = 'rev'), ?4)",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, form_collection(f));
	hqsql_bind_int64(st, 2, version);
	hqsql_bind_text(st, 3, def);
	hqsql_bind_int64(st, 4, (int64_t)now_ms);
	r = hqsql_step(st) == HQSQL_DONE ? 0 : hqsql_fail(db, "publish a form", err);
	hqsql_finalize(st);
	if (r < 0 || (r = hqsql_exec(db, "UPDATE counters SET value = value + 1 WHERE name = 'rev'",
				     "publish a form", err)) < 0)
		return r;
	crypto_generichash(hash, sizeof(hash), (const unsigned char *)def, strlen(def), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	snprintf(detail, sizeof(detail), "{\"collection\":\"%s\",\"version\":%lld,\"hash\":\"%s\"}",
		 form_collection(f), (long long)version, hex);
	return audit_append(db, now_ms, "form", NULL, detail, err);
}

int formpub_publish(struct hqsql *db, struct hq_forms *fs, uint64_t now_ms, unsigned *ret_published,
		    struct fs_error *err)
{
	unsigned published = 0;
	int r;

	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		return r;
	for (size_t i = 0; i < hqforms_count(fs) && r == 0; i++) {
		const struct form *f = hqforms_at(fs, i);
		int64_t version = 0;
		char *def = NULL;

		if ((r = latest(db, form_collection(f), &version, &def, err)) < 0)
			break;
		/* Collection names are [a-z][a-z0-9_]*: safe in the detail. */
		if (r == 0 || strcmp(def, form_definition(f))) {
			version++;
			r = publish_one(db, f, version, now_ms, err);
			published++;
		} else {
			r = 0;
		}
		free(def);
		if (r == 0)
			hqforms_set_version(fs, i, (uint32_t)version);
	}
	if (r == 0)
		r = hqsql_commit(db, err);
	if (r < 0) {
		hqsql_rollback(db);
		/* Nothing was published: no form keeps a version it lost. */
		for (size_t i = 0; i < hqforms_count(fs); i++)
			hqforms_set_version(fs, i, 0);
		return r;
	}
	if (ret_published)
		*ret_published = published;
	return 0;
}

int formpub_load(struct hqsql *db, const char *collection, uint32_t version, struct form **ret,
		 struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	char origin[96];
	int r, rc;

	if ((r = hqsql_prepare(db,
			       "SELECT definition FROM form_versions WHERE collection = ?1 "
			       "AND version = ?2",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, collection);
	hqsql_bind_int64(st, 2, version);
	rc = hqsql_step(st);
	if (rc == HQSQL_ROW) {
		snprintf(origin, sizeof(origin), "'%.64s' version %u as published", collection,
			 version);
		if ((r = form_load_json(hqsql_column_text(st, 0),
					(size_t)(int)hqsql_column_bytes(st, 0), origin, ret,
					err)) == 0)
			form_set_version(*ret, version);
	} else if (rc == HQSQL_DONE) {
		r = fs_error_set(err, -ENOENT, "form '%.64s' version %u was never published",
				 collection, version);
	} else {
		r = hqsql_fail(db, "read a published form", err);
	}
	hqsql_finalize(st);
	return r;
}
