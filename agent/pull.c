/* pull.c - see pull.h.
 *
 * Sections: forms; the chain; merging one field; conflicts; purging;
 * applying a down-set; asking HQ.
 */
#include "agent/pull.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/devforms.h"
#include "agent/drafts.h"
#include "agent/hqhistory.h"
#include "agent/records.h"
#include "sync/downset.h"
#include "sync/log.h"
#include "sync/merge.h"
#include "sync/scoperule.h"

#define FORMS_CACHED 16

_Static_assert(PULL_SCOPE_MAX > DOWNSET_MAX_SCOPE * (2 * DOWNSET_MAX_SCOPE_NAME + 3) + 2,
	       "a scope must fit in the buffers that read it back");

/* store_stmt() slots (agent/store.h). */
enum {
	SLOT_CLOCK = 32,
	SLOT_RECORD,
	SLOT_UPDATE,
	SLOT_INSERT,
	SLOT_SET_CLOCK,
	SLOT_CONFLICT,
	SLOT_VALUE,
	SLOT_PURGE, /* and the three after it */
	SLOT_TEAM = SLOT_PURGE + 4,
};
_Static_assert(SLOT_TEAM <= 43, "pull's store_stmt() slots are 32..43");

/* ---- forms ---------------------------------------------------------------- */

struct forms {
	struct store *s;
	const char *dir;
	struct form *f[FORMS_CACHED];
	size_t n;
};

static const struct form *form_of(void *ctx, const char *collection)
{
	struct forms *fs = ctx;
	struct fs_error ignored = { 0 };
	struct form *f = NULL;

	for (size_t i = 0; i < fs->n; i++)
		if (!strcmp(form_collection(fs->f[i]), collection))
			return fs->f[i];
	/* A collection this device has no form for is in every scope. */
	if (fs->n == FORMS_CACHED || devforms_load(fs->s, fs->dir, collection, &f, &ignored) < 0)
		return NULL;
	fs->f[fs->n++] = f;
	return f;
}

static void forms_free(struct forms *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		form_free(fs->f[i]);
}

/* ---- the chain -------------------------------------------------------------- */

struct chain {
	uint64_t seq; /* last down-set applied; 0: none */
	uint8_t hash[CHANGESET_HASH_BYTES];
};

static int chain_load(struct store *s, struct chain *c, struct fs_error *err)
{
	char text[2 * CHANGESET_HASH_BYTES + 1];
	int found = 0, r;

	memset(c, 0, sizeof(*c));
	if ((r = store_meta_get(s, "down_seq", text, sizeof(text), &found, err)) < 0 || !found)
		return r;
	c->seq = strtoull(text, NULL, 10);
	if ((r = store_meta_get(s, "down_hash", text, sizeof(text), &found, err)) < 0)
		return r;
	if (!found ||
	    sodium_hex2bin(c->hash, sizeof(c->hash), text, strlen(text), NULL, NULL, NULL) < 0)
		return fs_error_set(err, -FS_ECORRUPT,
				    "store: the last down-set's hash is damaged");
	return 0;
}

static int chain_save(struct store *s, uint64_t seq, const uint8_t hash[CHANGESET_HASH_BYTES],
		      struct fs_error *err)
{
	char text[2 * CHANGESET_HASH_BYTES + 1], n[24], at[24];
	int r;

	snprintf(n, sizeof(n), "%llu", (unsigned long long)seq);
	snprintf(at, sizeof(at), "%llu", (unsigned long long)store_wall_ms(s));
	sodium_bin2hex(text, sizeof(text), hash, CHANGESET_HASH_BYTES);
	if ((r = store_meta_put(s, "down_seq", n, err)) < 0 ||
	    (r = store_meta_put(s, "last_pull", at, err)) < 0)
		return r;
	return store_meta_put(s, "down_hash", text, err);
}

int pull_state(struct store *s, struct pull_state *ret, struct fs_error *err)
{
	char n[24];
	int found = 0, r;

	memset(ret, 0, sizeof(*ret));
	if ((r = store_meta_get(s, "down_seq", n, sizeof(n), &found, err)) < 0)
		return r;
	if (found)
		ret->seq = strtoull(n, NULL, 10);
	if ((r = store_meta_get(s, "last_pull", n, sizeof(n), &found, err)) < 0)
		return r;
	if (found)
		ret->at_ms = strtoull(n, NULL, 10);
	return store_meta_get(s, "scope", ret->scope, sizeof(ret->scope), &found, err);
}

/* ---- merging one field ---------------------------------------------------- */

/* The clock of the value the store holds for (record, field): a pulled
 * one, or this device's latest write.  0 when there is none, and when
 * that latest write is one HQ quarantined: the value it left is not one
 * HQ holds, so HQ's value, which HQ sends again (hq/downsync.h), is
 * taken whatever its clock. */
static int local_clock(struct store *s, const char *self, const char *id, const char *field,
		       hlc_t *hlc, char *dev, size_t cap, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r, rc, refused = 0;

	*hlc = 0;
	dev[0] = '\0';
	if ((r = store_stmt(s, SLOT_CLOCK,
			    "SELECT hlc, device, 0 FROM field_clocks WHERE "
			    "record_id = ?1 AND field = ?2 UNION ALL SELECT * FROM (SELECT "
			    "hlc, ?3, quarantined FROM outbox WHERE record_id = ?1 AND "
			    "field = ?2 ORDER BY seq DESC LIMIT 1)",
			    &st, err)) < 0)
		return r;
	/* store_stmt statements are cached: bind each time. */
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, field, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, self, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		hlc_t h = (hlc_t)sqlite3_column_int64(st, 0);
		const char *d = (const char *)sqlite3_column_text(st, 1);

		refused |= sqlite3_column_int(st, 2);
		if (sqlite3_column_type(st, 0) == SQLITE_NULL || !d)
			continue;
		if (!dev[0] || merge_compare(h, d, *hlc, dev) > 0) {
			*hlc = h;
			snprintf(dev, cap, "%s", d);
		}
	}
	r = rc == SQLITE_DONE ? 0 : store_fail(s, "read a field's clock in", err);
	sqlite3_reset(st);
	if (refused) {
		*hlc = 0;
		dev[0] = '\0';
	}
	return r;
}

/* Set the field of the record (created when missing) to HQ's value. */
static int take(struct store *s, const struct downset_change *c, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	cJSON *fields = NULL;
	int r, rc, deleted = 0, exists = 0;
	hlc_t created = c->c.hlc, updated = c->c.hlc;
	char *text = NULL;

	if ((r = store_stmt(s, SLOT_RECORD,
			    "SELECT collection, fields, deleted, created_hlc, updated_hlc "
			    "FROM records WHERE id = ?1",
			    &st, err)) < 0)
		return r;
	sqlite3_bind_text(st, 1, c->c.record_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		exists = 1;
		if (strcmp((const char *)sqlite3_column_text(st, 0), c->c.collection))
			r = fs_error_set(err, -EPROTO,
					 "HQ sent record %s as %s, which this device "
					 "holds in another collection",
					 c->c.record_id, c->c.collection);
		else if (!(fields = cJSON_Parse((const char *)sqlite3_column_text(st, 1))))
			r = fs_error_set(err, -FS_ECORRUPT, "record %s: stored fields are damaged",
					 c->c.record_id);
		deleted = sqlite3_column_int(st, 2);
		created = (hlc_t)sqlite3_column_int64(st, 3);
		updated = (hlc_t)sqlite3_column_int64(st, 4);
	} else if (rc != SQLITE_DONE) {
		r = store_fail(s, "read a record in", err);
	}
	sqlite3_reset(st);
	if (r < 0)
		goto out;
	if (!fields && !(fields = cJSON_CreateObject())) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (!strcmp(c->c.field, RECORDS_DELETED_FIELD)) {
		deleted = 1;
	} else {
		cJSON_DeleteItemFromObjectCaseSensitive(fields, c->c.field);
		if (!cJSON_IsNull(c->c.value)) {
			cJSON *v = cJSON_Duplicate(c->c.value, 1);

			if (!v || !cJSON_AddItemToObject(fields, c->c.field, v)) {
				cJSON_Delete(v);
				r = fs_error_set(err, -ENOMEM, "out of memory");
				goto out;
			}
		}
	}
	if (!(text = cJSON_PrintUnformatted(fields))) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (c->c.hlc < created)
		created = c->c.hlc;
	if (c->c.hlc > updated)
		updated = c->c.hlc;
	if ((r = exists ? store_stmt(s, SLOT_UPDATE,
				     "UPDATE records SET fields = ?2, deleted = ?3, "
				     "created_hlc = ?4, updated_hlc = ?5 WHERE id = ?1",
				     &st, err)
			: store_stmt(s, SLOT_INSERT,
				     "INSERT INTO records(id, fields, deleted, "
				     "created_hlc, updated_hlc, author, collection) "
				     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
				     &st, err)) < 0)
		goto out;
	sqlite3_bind_text(st, 1, c->c.record_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, deleted);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)created);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)updated);
	if (!exists) {
		sqlite3_bind_text(st, 6, c->device, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, c->c.collection, -1, SQLITE_STATIC);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		r = store_fail(s, "write a pulled record in", err);
		goto out;
	}
	if ((r = store_stmt(s, SLOT_SET_CLOCK,
			    "INSERT INTO field_clocks(record_id, field, hlc, device) "
			    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(record_id, field) DO UPDATE "
			    "SET hlc = ?3, device = ?4",
			    &st, err)) < 0)
		goto out;
	sqlite3_bind_text(st, 1, c->c.record_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->c.field, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)c->c.hlc);
	sqlite3_bind_text(st, 4, c->device, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		r = store_fail(s, "write a field's clock in", err);
out:
	if (text) {
		sodium_memzero(text, strlen(text));
		cJSON_free(text);
	}
	cJSON_Delete(fields);
	return r;
}

/* 1 when HQ's write was taken, 0 when the store's is later. */
static int merge_one(struct store *s, const char *self, const struct downset_change *c,
		     struct fs_error *err)
{
	char dev[2 * CHANGESET_DEVICE_BYTES + 1];
	hlc_t hlc;
	int r;

	if ((r = local_clock(s, self, c->c.record_id, c->c.field, &hlc, dev, sizeof(dev), err)) < 0)
		return r;
	store_hlc_observe(s, hlc_physical_ms(c->c.hlc));
	if (dev[0] && merge_compare(c->c.hlc, c->device, hlc, dev) <= 0)
		return 0;
	if ((r = take(s, c, err)) < 0)
		return r;
	return 1;
}

/* ---- conflicts ------------------------------------------------------------ */

static int keep_conflict(struct store *s, const struct downset_conflict *c, struct fs_error *err)
{
	char *a = cJSON_PrintUnformatted(c->value_a), *b = cJSON_PrintUnformatted(c->value_b);
	sqlite3_stmt *st = NULL;
	int r;

	if (!a || !b) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = store_stmt(s, SLOT_CONFLICT,
			    "INSERT OR IGNORE INTO hq_conflicts(record_id, field, device_a, "
			    "hlc_a, value_a, device_b, hlc_b, value_b) VALUES (?1, ?2, ?3, ?4, "
			    "?5, ?6, ?7, ?8)",
			    &st, err)) < 0)
		goto out;
	sqlite3_bind_text(st, 1, c->record_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->field, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->device_a, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)c->hlc_a);
	sqlite3_bind_text(st, 5, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, c->device_b, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)c->hlc_b);
	sqlite3_bind_text(st, 8, b, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		r = store_fail(s, "keep a conflict in", err);
	sqlite3_reset(st);
out:
	cJSON_free(a);
	cJSON_free(b);
	return r;
}

/* ---- purging ---------------------------------------------------------------- */

/* The rule's lookup: a string field of a record in the store. */
struct local {
	struct store *s;
	struct forms *forms;
};

static int local_value(void *ctx, const char *id, const char *field, char **ret,
		       struct fs_error *err)
{
	struct local *l = ctx;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = store_stmt(l->s, SLOT_VALUE,
			    "SELECT json_extract(fields, '$.' || ?2) FROM records WHERE "
			    "id = ?1",
			    &st, err)) < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, field, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT)
		r = (*ret = strdup((const char *)sqlite3_column_text(st, 0)))
			    ? 1
			    : fs_error_set(err, -ENOMEM, "out of memory");
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = store_fail(l->s, "read a record's scope in", err);
	sqlite3_reset(st);
	return r;
}

static const struct form *local_form(void *ctx, const char *collection)
{
	return form_of(((struct local *)ctx)->forms, collection);
}

static int purge_record(struct store *s, const char *id, struct fs_error *err)
{
	static const char *const sql[] = {
		"DELETE FROM outbox WHERE record_id = ?1",
		"DELETE FROM field_clocks WHERE record_id = ?1",
		"DELETE FROM hq_conflicts WHERE record_id = ?1",
		"DELETE FROM records WHERE id = ?1",
	};

	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *st = NULL;
		int r, rc;

		if ((r = store_stmt(s, SLOT_PURGE + (int)i, sql[i], &st, err)) < 0)
			return r;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_fail(s, "purge a record in", err);
	}
	return 0;
}

/* Is the record, as the store holds it, outside scope[0..n)?  1 when it
 * must go, 0 when it stays (in scope, in every scope, or without its own
 * scope value yet: the rest of it comes in the next down-set). */
static int outside(struct local *ctx, const struct scoperule_lookup *l, const char *id,
		   const char *collection, char *const *scope, size_t n, struct fs_error *err)
{
	const struct form *f = form_of(ctx->forms, collection);
	int si = f ? form_scope_field(f) : -1, where;
	char *v = NULL;

	if (si < 0)
		return 0;
	if ((where = local_value(ctx, id, form_field_name(f, (size_t)si), &v, err)) <= 0)
		return where;
	free(v);
	v = NULL;
	/* A scope value naming a record this device no longer holds (a visit
	 * to a household that left) goes too. */
	where = scoperule_resolve(l, collection, id, &v, err);
	if (where >= 0)
		where = where == SCOPERULE_UNKNOWN ||
			(where == SCOPERULE_VALUE &&
			 !scoperule_holds((const char *const *)scope, n, v));
	free(v);
	return where;
}

/* Purge the records that left scope[0..n) and have nothing HQ has not yet
 * acknowledged: of only[0..nonly) when only is not NULL, else of all.
 * Records placed by their own value first, then those placed through a
 * ref, so that a visit follows a household purged in the same pass.
 * *any is set when a record went. */
static int purge(struct store *s, struct forms *forms, char *const *scope, size_t n,
		 char *const *only, size_t nonly, unsigned long long *purged, int *any,
		 struct fs_error *err)
{
	struct local ctx = { s, forms };
	const struct scoperule_lookup l = { local_form, local_value, &ctx };
	sqlite3_stmt *st = NULL;
	char **ids = NULL, **colls = NULL;
	size_t count = 0, cap = 0, k = 0;
	int r = 0, rc;

	/* The candidates first: purging while stepping would skip rows. */
#define UNSENT_NONE                                                                                \
	"NOT EXISTS (SELECT 1 FROM outbox o WHERE o.record_id = r.id"                              \
	" AND " STORE_OUTBOX_UNPACKED ") AND NOT EXISTS (SELECT 1 FROM outbox o"                   \
	" WHERE o.record_id = r.id AND " STORE_OUTBOX_UNACKED ")"
	/* Two statements, not "?1 IS NULL OR id = ?1": that one scans the
	 * table for every id. */
	if (sqlite3_prepare_v2(
		    store_db(s),
		    only ? "SELECT id, collection FROM records r WHERE id = ?1 AND " UNSENT_NONE
			 : "SELECT id, collection FROM records r WHERE " UNSENT_NONE,
		    -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "list records in", err);
#undef UNSENT_NONE
	do {
		sqlite3_reset(st);
		if (only)
			sqlite3_bind_text(st, 1, only[k], -1, SQLITE_STATIC);
		while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (count == cap) {
				size_t nc = cap ? 2 * cap : 256;
				char **ni = realloc(ids, nc * sizeof(*ni)), **nl;

				if (ni)
					ids = ni;
				nl = ni ? realloc(colls, nc * sizeof(*nl)) : NULL;
				if (!nl) {
					r = fs_error_set(err, -ENOMEM, "out of memory");
					break;
				}
				colls = nl;
				cap = nc;
			}
			ids[count] = strdup((const char *)sqlite3_column_text(st, 0));
			colls[count] = strdup((const char *)sqlite3_column_text(st, 1));
			count++;
			if (!ids[count - 1] || !colls[count - 1])
				r = fs_error_set(err, -ENOMEM, "out of memory");
		}
		if (r == 0 && rc != SQLITE_DONE)
			r = store_fail(s, "list records in", err);
	} while (r == 0 && only && ++k < nonly);
	sqlite3_finalize(st);
	for (int by_ref = 0; by_ref <= 1 && r == 0; by_ref++) {
		for (size_t i = 0; i < count && r == 0; i++) {
			const struct form *f = form_of(forms, colls[i]);
			int si = f ? form_scope_field(f) : -1;

			if (si < 0 || (form_field_type(f, (size_t)si) == FORM_REF) != by_ref)
				continue;
			if ((r = outside(&ctx, &l, ids[i], colls[i], scope, n, err)) > 0 &&
			    (r = purge_record(s, ids[i], err)) == 0) {
				(*purged)++;
				*any = 1;
			}
		}
	}
	for (size_t i = 0; i < count; i++) {
		free(ids[i]);
		free(colls[i]);
	}
	free(ids);
	free(colls);
	return r < 0 ? r : 0;
}

/* ---- applying a down-set -------------------------------------------------- */

/* Which team a device is (down-set version 2): the latest word wins. */
static int keep_team(struct store *s, const struct downset_team *t, struct fs_error *err)
{
	sqlite3_stmt *st;
	int r = store_stmt(s, SLOT_TEAM,
			   "INSERT INTO device_teams(device, team) VALUES (?1, ?2)"
			   " ON CONFLICT(device) DO UPDATE SET team = excluded.team",
			   &st, err);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, t->device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, t->team, -1, SQLITE_STATIC);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail(s, "keep a device's team in", err);
	sqlite3_reset(st);
	return r;
}

/* The drafts (agent/drafts.h) that name a record this device no longer
 * holds. */
static int drop_orphan_drafts(struct store *s, struct forms *forms, struct fs_error *err)
{
	size_t n = 0;
	int r = drafts_drop_orphans(s, form_of, forms, &n, err);

	if (r == 0 && n)
		log_msg(LOG_INFO, "dropped %zu drafts: what they name left this device's scope", n);
	return r;
}

/* The scope as stored in meta: a JSON array of names. */
static char *scope_json(const struct downset *d)
{
	cJSON *a = cJSON_CreateStringArray((const char *const *)d->scope, (int)d->nscope);
	char *text = a ? cJSON_PrintUnformatted(a) : NULL;

	cJSON_Delete(a);
	return text;
}

static int apply_open(struct store *s, struct forms *forms, const struct downset *d,
		      struct pull_stats *st, struct fs_error *err)
{
	const char *self = store_identity(s)->id;
	char *old = malloc(PULL_SCOPE_MAX), **moved = NULL;
	char *scope = scope_json(d);
	size_t nmoved = 0;
	int r = 0, found = 0, rescope = 0, any = 0;

	if (!old || !scope || !(moved = calloc(d->nchanges + 1, sizeof(*moved)))) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = store_meta_get(s, "scope", old, PULL_SCOPE_MAX, &found, err)) < 0)
		goto out;
	/* A new scope places every record again. */
	rescope = found && strcmp(old, scope);
	/* HQ's forms first: the scope rule below already places records by
	 * them.  The cache is empty until this loop is done. */
	for (size_t i = 0; i < d->nforms && r == 0; i++) {
		char *def = cJSON_PrintUnformatted(d->forms[i].definition);

		r = def ? devforms_accept(s, d->forms[i].collection, d->forms[i].version, def, err)
			: fs_error_set(err, -ENOMEM, "out of memory");
		cJSON_free(def);
		if (r < 0)
			fs_error_prefix(err, "down-set %llu", (unsigned long long)d->h.seq);
	}
	st->forms += d->nforms;
	for (size_t i = 0; i < d->nchanges && r == 0; i++) {
		const struct form *f = form_of(forms, d->changes[i].c.collection);
		int si = f ? form_scope_field(f) : -1;

		if ((r = merge_one(s, self, &d->changes[i], err)) > 0) {
			st->applied++;
			/* Where the record is changed: it may have left. */
			if (si >= 0 &&
			    !strcmp(d->changes[i].c.field, form_field_name(f, (size_t)si)))
				moved[nmoved++] = (char *)d->changes[i].c.record_id;
			r = 0;
		}
	}
	for (size_t i = 0; i < d->nconflicts && r == 0; i++)
		r = keep_conflict(s, &d->conflicts[i], err);
	for (size_t i = 0; i < d->nteams && r == 0; i++)
		r = keep_team(s, &d->teams[i], err);
	if (r == 0 && (rescope || nmoved))
		r = purge(s, forms, d->scope, d->nscope, rescope ? NULL : moved, nmoved,
			  &st->purged, &any, err);
	/* A household that went takes its visits: look at everything. */
	if (r == 0 && any && !rescope)
		r = purge(s, forms, d->scope, d->nscope, NULL, 0, &st->purged, &any, err);
	/* And the drafts begun for it. */
	if (r == 0 && any)
		r = drop_orphan_drafts(s, forms, err);
	if (r == 0)
		r = store_meta_put(s, "scope", scope, err);
	st->changes += d->nchanges;
	st->conflicts += d->nconflicts;
out:
	free(old);
	free(moved);
	cJSON_free(scope);
	return r;
}

int pull_apply(struct store *s, const struct enrolment *en, const char *forms_dir,
	       const uint8_t *buf, size_t len, struct pull_stats *st, struct fs_error *err)
{
	const struct identity *id = store_identity(s);
	struct forms forms = { .s = s, .dir = forms_dir };
	struct downset_header h;
	struct downset d = { 0 };
	struct chain c;
	uint8_t self[CHANGESET_DEVICE_BYTES], hash[CHANGESET_HASH_BYTES];
	int r;

	if ((r = downset_parse(buf, len, &h, err)) < 0)
		return r;
	if (downset_verify(buf, len, en->target.hq_sign_pk) < 0)
		return fs_error_set(err, -FS_EAUTH,
				    "down-set %llu is not signed by the HQ key "
				    "pinned at enrolment",
				    (unsigned long long)h.seq);
	if (sodium_hex2bin(self, sizeof(self), id->id, strlen(id->id), NULL, NULL, NULL) < 0 ||
	    sodium_memcmp(self, h.device, sizeof(self)) != 0)
		return fs_error_set(err, -FS_EAUTH, "down-set %llu is for another device",
				    (unsigned long long)h.seq);
	if ((r = store_begin(s, err)) < 0)
		return r;
	if ((r = chain_load(s, &c, err)) < 0)
		goto out;
	/* Another pull on this store (the agent's, a person's) applied it
	 * first: nothing to do, and the caller asks again from there. */
	if (h.seq <= c.seq) {
		r = -EALREADY;
		goto out;
	}
	if (h.seq != c.seq + 1 || sodium_memcmp(h.prev, c.hash, sizeof(c.hash)) != 0) {
		r = fs_error_set(err, -EBADMSG,
				 "down-set %llu does not follow down-set %llu, the "
				 "last this device applied",
				 (unsigned long long)h.seq, (unsigned long long)c.seq);
		goto out;
	}
	if ((r = downset_open(buf, len, id->box_pk, id->box_sk, &d, err)) < 0)
		goto out;
	changeset_hash(buf, len, hash);
	if ((r = apply_open(s, &forms, &d, st, err)) < 0 ||
	    (r = chain_save(s, h.seq, hash, err)) < 0)
		goto out;
	r = store_commit(s, err);
	if (r == 0) {
		st->sets++;
		st->bytes += len;
	}
out:
	if (r < 0)
		store_rollback(s);
	downset_clear(&d);
	forms_free(&forms);
	return r;
}

/* ---- asking HQ ---------------------------------------------------------------- */

/* HQ's audit checkpoint from a pull's answer (base64 in a header), held
 * to HQ's history as a receipt's is (agent/hqhistory.h).  No header:
 * HQ has signed no checkpoint yet. */
static int observe_checkpoint(struct store *s, const struct enrolment *en, struct hqlink *t,
			      const char *b64, struct fs_error *err)
{
	struct hqhistory_result hist;
	size_t n = 0, cap;
	char *note;
	int r;

	if (!b64)
		return 0;
	cap = strlen(b64) / 4 * 3 + 1;
	if (strlen(b64) > DOWNSET_CHECKPOINT_MAX || !(note = malloc(cap)))
		return fs_error_set(err, -EPROTO,
				    "HQ at %s sent an overlong checkpoint with a "
				    "down-set",
				    en->target.url);
	if (sodium_base642bin((unsigned char *)note, cap - 1, b64, strlen(b64), NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) < 0 ||
	    memchr(note, '\0', n)) {
		free(note);
		return fs_error_set(err, -EPROTO,
				    "HQ at %s sent a malformed checkpoint with a "
				    "down-set",
				    en->target.url);
	}
	note[n] = '\0';
	r = hqhistory_observe(s, &en->target, t, note, &hist, err);
	free(note);
	return r;
}

int pull_run(struct store *s, const struct enrolment *en, const char *forms_dir, struct hqlink *t,
	     struct pull_stats *st, struct fs_error *err)
{
	const struct identity *id = store_identity(s);
	char url[HQLINK_URL_MAX + 16];
	uint8_t device[CHANGESET_DEVICE_BYTES];
	int r = 0;

	snprintf(url, sizeof(url), "%s/v1/pull", en->target.url);
	if (sodium_hex2bin(device, sizeof(device), id->id, strlen(id->id), NULL, NULL, NULL) < 0)
		return fs_error_set(err, -FS_ECORRUPT, "store: the device id is damaged");
	for (;;) {
		struct hqlink_response resp = { 0 };
		uint8_t req[DOWNSET_PULL_BYTES];
		struct downset_header h;
		struct chain c;

		if ((r = chain_load(s, &c, err)) < 0)
			return r;
		downset_pull_request(device, c.seq, c.seq ? c.hash : NULL, store_wall_ms(s),
				     id->sign_sk, req);
		if ((r = t->post(t, url, PULL_TYPE, req, sizeof(req),
				 en->target.tls_pin[0] ? en->target.tls_pin : NULL, &resp, err)) <
		    0)
			return r;
		if (resp.status == 204) {
			hqlink_response_clear(&resp);
			return 0;
		}
		if (resp.status == 409) {
			struct chain now;

			/* Another pull on this store moved the chain on while
			 * this one asked: ask again from there. */
			if ((r = chain_load(s, &now, err)) < 0) {
				hqlink_response_clear(&resp);
				return r;
			}
			if (now.seq != c.seq) {
				hqlink_response_clear(&resp);
				continue;
			}
		}
		if (resp.status == 409) {
			r = fs_error_set(err, -EBADMSG,
					 "HQ at %s and this device disagree about the "
					 "down-sets applied (409)",
					 en->target.url);
			hqlink_response_clear(&resp);
			return r;
		}
		if (resp.status != 200 || !resp.body) {
			r = hqlink_answer_error(en->target.url, "a pull", &resp, err);
			hqlink_response_clear(&resp);
			return r;
		}
		/* Before anything of it is applied: an HQ that rewrote its
		 * history gets nothing onto this device. */
		if ((r = observe_checkpoint(s, en, t, resp.checkpoint, err)) < 0) {
			hqlink_response_clear(&resp);
			return r;
		}
		r = pull_apply(s, en, forms_dir, (const uint8_t *)resp.body, resp.len, st, err);
		if (r == 0)
			r = downset_parse((const uint8_t *)resp.body, resp.len, &h, err);
		hqlink_response_clear(&resp);
		if (r == -EALREADY)
			continue;
		if (r < 0 || !(h.flags & DOWNSET_FLAG_MORE))
			return r;
	}
}

/* ---- conflicts for the person at the device -------------------------------- */

int pull_conflicts(struct store *s, pull_conflict_fn fn, void *ctx, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0, rc;

	if (sqlite3_prepare_v2(
		    store_db(s),
		    "SELECT k.record_id, k.field, k.device_a, k.hlc_a, k.value_a, k.device_b, "
		    "k.hlc_b, k.value_b, (SELECT c.hlc FROM field_clocks c WHERE c.record_id "
		    "= k.record_id AND c.field = k.field), (SELECT max(o.hlc) FROM outbox o "
		    "WHERE o.record_id = k.record_id AND o.field = k.field) "
		    "FROM hq_conflicts k ORDER BY k.hlc_b, k.record_id, k.field",
		    -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "list conflicts in", err);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		char ha[HLC_TEXT_LEN + 1], hb[HLC_TEXT_LEN + 1];
		cJSON *o = cJSON_CreateObject(), *va, *vb;
		/* The field's latest write here, pulled or this device's own:
		 * later than b, it replaced both (an administrator's decision
		 * at HQ, or a later edit). */
		sqlite3_int64 later = sqlite3_column_int64(st, 8) > sqlite3_column_int64(st, 9)
					      ? sqlite3_column_int64(st, 8)
					      : sqlite3_column_int64(st, 9);

		hlc_format((hlc_t)sqlite3_column_int64(st, 3), ha);
		hlc_format((hlc_t)sqlite3_column_int64(st, 6), hb);
		va = cJSON_Parse((const char *)sqlite3_column_text(st, 4));
		vb = cJSON_Parse((const char *)sqlite3_column_text(st, 7));
		if (!o || !va || !vb ||
		    !cJSON_AddStringToObject(o, "record",
					     (const char *)sqlite3_column_text(st, 0)) ||
		    !cJSON_AddStringToObject(o, "field",
					     (const char *)sqlite3_column_text(st, 1)) ||
		    !cJSON_AddStringToObject(o, "device_a",
					     (const char *)sqlite3_column_text(st, 2)) ||
		    !cJSON_AddStringToObject(o, "hlc_a", ha) ||
		    !cJSON_AddItemToObject(o, "value_a", va) ||
		    (va = NULL, !cJSON_AddStringToObject(
					o, "device_b", (const char *)sqlite3_column_text(st, 5))) ||
		    !cJSON_AddStringToObject(o, "hlc_b", hb) ||
		    !cJSON_AddItemToObject(o, "value_b", vb) ||
		    (vb = NULL, !cJSON_AddStringToObject(
					o, "winner", (const char *)sqlite3_column_text(st, 5))) ||
		    !cJSON_AddBoolToObject(o, "superseded", later > sqlite3_column_int64(st, 6)))
			r = fs_error_set(err, -ENOMEM, "out of memory");
		else
			r = fn(o, ctx);
		cJSON_Delete(va);
		cJSON_Delete(vb);
		cJSON_Delete(o);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, "list conflicts in", err);
	sqlite3_finalize(st);
	return r;
}
