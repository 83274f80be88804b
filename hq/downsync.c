/* downsync.c - see downsync.h.
 *
 * Sections: keeping scope keys and revisions; reindex;
 * making a down-set; answering a pull.
 */
#include "hq/downsync.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bytes.h"
#include "hq/audit.h"
#include "hq/hqenroll.h"
#include "hq/hqsql.h"
#include "hq/refusal.h"
#include "sync/downset.h"
#include "sync/fold.h"
#include "sync/scoperule.h"

/* A ref chain longer than the rule follows is not followed here. */
#define MAX_DEPTH SCOPERULE_MAX_DEPTH

static const uint8_t zero_hash[CHANGESET_HASH_BYTES];
/* ---- keeping scope keys and revisions ----------------------------------- */

enum {
	W_NEXT_REV,
	W_RECORD_KEY,
	W_SET_KEY,
	W_SET_PARENT,
	W_STAMP,
	W_PARTS,
	W_MOVE,
	W_STAMP_CONFLICT,
	W_COUNT
};

static const char *const writer_sql[W_COUNT] = {
	[W_NEXT_REV] = "UPDATE counters SET value = value + ?1 WHERE name = 'rev' RETURNING value",
	[W_RECORD_KEY] = "SELECT scope_key FROM records WHERE id = ?1",
	[W_SET_KEY] = "UPDATE records SET scope_key = ?2 WHERE id = ?1",
	[W_SET_PARENT] = "UPDATE records SET scope_parent = ?2 WHERE id = ?1",
	[W_STAMP] =
		"UPDATE fields SET rev = ?3, scope_key = ?4 WHERE record_id = ?1 AND field = ?2",
	/* What a rekey touches, read at once: the record's lowest revision
	 * ('m'), its fields ('f'), its conflicts ('c') and the records
	 * scoped through it ('r').  None of them changes while it works. */
	[W_PARTS] = "SELECT 'm' AS kind, NULL AS name, coalesce(min(rev), 0) AS num FROM fields "
		    "WHERE record_id = ?1 "
		    "UNION ALL SELECT 'f', field, 0 FROM fields WHERE record_id = ?1 "
		    "UNION ALL SELECT 'c', NULL, id FROM conflicts WHERE record_id = ?1 "
		    "UNION ALL SELECT 'r', id, 0 FROM records WHERE scope_parent = ?1 "
		    "ORDER BY 1, 3, 2",
	[W_MOVE] =
		"INSERT INTO scope_moves(rev, record_id, from_key, held_from) VALUES (?1,?2,?3,?4)",
	[W_STAMP_CONFLICT] = "UPDATE conflicts SET rev = ?2 WHERE id = ?1",
};

/* Revisions are taken from the counter in blocks, the first this big,
 * each next one twice the last, up to REV_BLOCK_MAX: one statement for
 * many writes, and few numbers left unused when the run ends.  Numbers
 * skipped are harmless: a cursor only needs revisions to grow in the
 * order writers commit, and one writer at a time takes them. */
#define REV_BLOCK_MIN 16
#define REV_BLOCK_MAX 1024

struct downsync_writer {
	struct hqsql *db;
	const struct hq_forms *forms;
	struct hqsql_stmt *st[W_COUNT];
	int64_t rev_next, rev_end; /* the block in hand: next to give, last */
	int64_t rev_block;	   /* the size of the next block */
};

void downsync_writer_free(struct downsync_writer *w)
{
	if (!w)
		return;
	for (int i = 0; i < W_COUNT; i++)
		hqsql_finalize(w->st[i]);
	free(w);
}

int downsync_writer_new(struct hqsql *db, const struct hq_forms *forms,
			struct downsync_writer **ret, struct fs_error *err)
{
	struct downsync_writer *w = calloc(1, sizeof(*w));
	int r = 0;

	if (!w)
		return fs_error_set(err, -ENOMEM, "out of memory");
	w->db = db;
	w->forms = forms;
	for (int i = 0; i < W_COUNT && r == 0; i++)
		r = hqsql_prepare(db, writer_sql[i], &w->st[i], err);
	if (r < 0) {
		downsync_writer_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

static struct hqsql_stmt *use(struct downsync_writer *w, int which)
{
	hqsql_reset(w->st[which]);
	hqsql_clear_bindings(w->st[which]);
	return w->st[which];
}

static int step(struct downsync_writer *w, struct hqsql_stmt *st, const char *what,
		struct fs_error *err)
{
	int rc = hqsql_step(st);

	if (rc != HQSQL_DONE && rc != HQSQL_ROW)
		return hqsql_fail(w->db, what, err);
	return rc == HQSQL_ROW;
}

static int next_rev(struct downsync_writer *w, int64_t *ret, struct fs_error *err)
{
	struct hqsql_stmt *st;
	int r;

	if (w->rev_next && w->rev_next <= w->rev_end) {
		*ret = w->rev_next++;
		return 0;
	}
	w->rev_block = w->rev_block ? w->rev_block * 2 : REV_BLOCK_MIN;
	if (w->rev_block > REV_BLOCK_MAX)
		w->rev_block = REV_BLOCK_MAX;
	st = use(w, W_NEXT_REV);
	hqsql_bind_int64(st, 1, w->rev_block);
	if ((r = step(w, st, "take revisions", err)) < 0)
		return r;
	if (r == 0)
		return fs_error_set(err, -FS_ECORRUPT, "the revision counter is missing");
	w->rev_end = hqsql_column_int64(st, 0);
	hqsql_reset(st);
	w->rev_next = w->rev_end - w->rev_block + 1;
	*ret = w->rev_next++;
	return 0;
}

/* The record's scope key: 1 with *ret malloc'd, 0 when NULL or no record. */
static int record_key(struct downsync_writer *w, const char *id, char **ret, struct fs_error *err)
{
	struct hqsql_stmt *st = use(w, W_RECORD_KEY);
	int r;

	*ret = NULL;
	hqsql_bind_text(st, 1, id);
	if ((r = step(w, st, "read a record's scope", err)) <= 0)
		return r;
	if (hqsql_column_is_null(st, 0))
		r = 0;
	else if (!(*ret = strdup(hqsql_column_text(st, 0))))
		r = fs_error_set(err, -ENOMEM, "out of memory");
	hqsql_reset(st);
	return r;
}

static int stamp(struct downsync_writer *w, const char *id, const char *field, const char *key,
		 struct fs_error *err)
{
	struct hqsql_stmt *st;
	int64_t rev = 0;
	int r;

	if ((r = next_rev(w, &rev, err)) < 0)
		return r;
	st = use(w, W_STAMP);
	hqsql_bind_text(st, 1, id);
	hqsql_bind_text(st, 2, field);
	hqsql_bind_int64(st, 3, rev);
	if (key)
		hqsql_bind_text(st, 4, key);
	return hqsql_step_later(st, "stamp a field", err);
}

int downsync_field_resend(struct downsync_writer *w, const char *record_id, const char *field,
			  struct fs_error *err)
{
	char *key = NULL;
	int r;

	/* A field HQ does not hold is stamped in no row: nothing to send. */
	if ((r = record_key(w, record_id, &key, err)) >= 0)
		r = stamp(w, record_id, field, key, err);
	free(key);
	return r;
}

int downsync_conflict_recorded(struct downsync_writer *w, int64_t id, struct fs_error *err)
{
	struct hqsql_stmt *st;
	int64_t rev = 0;
	int r;

	if ((r = next_rev(w, &rev, err)) < 0)
		return r;
	st = use(w, W_STAMP_CONFLICT);
	hqsql_bind_int64(st, 1, id);
	hqsql_bind_int64(st, 2, rev);
	return hqsql_step_later(st, "stamp a conflict", err);
}

/* A record's parts (W_PARTS). */
struct parts {
	int64_t held_from;
	char **fields, **children;
	size_t nfields, nchildren;
	int64_t *conflicts;
	size_t nconflicts;
};

static void parts_free(struct parts *p)
{
	for (size_t i = 0; i < p->nfields; i++)
		free(p->fields[i]);
	for (size_t i = 0; i < p->nchildren; i++)
		free(p->children[i]);
	free(p->fields);
	free(p->children);
	free(p->conflicts);
	memset(p, 0, sizeof(*p));
}

static int list_add(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return -ENOMEM;
	++*n;
	return 0;
}

static int parts_read(struct downsync_writer *w, const char *id, struct parts *p,
		      struct fs_error *err)
{
	struct hqsql_stmt *st = use(w, W_PARTS);
	int r;

	memset(p, 0, sizeof(*p));
	hqsql_bind_text(st, 1, id);
	while ((r = step(w, st, "read a record's fields and dependants", err)) == 1) {
		const char *kind = hqsql_column_text(st, 0), *name = hqsql_column_text(st, 1);
		int64_t num = hqsql_column_int64(st, 2), *nc;

		if (kind[0] == 'm') {
			p->held_from = num;
		} else if (kind[0] == 'c') {
			if (!(nc = realloc(p->conflicts, (p->nconflicts + 1) * sizeof(*nc))))
				r = -ENOMEM;
			else
				(p->conflicts = nc)[p->nconflicts++] = num;
		} else {
			r = kind[0] == 'f' ? list_add(&p->fields, &p->nfields, name)
					   : list_add(&p->children, &p->nchildren, name);
		}
		if (r < 0) {
			r = fs_error_set(err, -ENOMEM, "out of memory");
			break;
		}
	}
	hqsql_reset(st);
	if (r < 0)
		parts_free(p);
	return r < 0 ? r : 0;
}

static int same_key(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* The record's scope key goes from old to key: every field of it gets
 * the key and a new revision, the old key a move, and so do the records
 * scoped through it. */
static int rekey(struct downsync_writer *w, const char *id, const char *old, const char *key,
		 int depth, struct fs_error *err)
{
	struct parts p;
	struct hqsql_stmt *st;
	int r;

	/* p.held_from: the record's earliest revision under the old key: a
	 * device whose cursor for that key has not reached it never held the
	 * record, and is not told it left (that would show it the new scope
	 * value). */
	if ((r = parts_read(w, id, &p, err)) < 0)
		return r;
	st = use(w, W_SET_KEY);
	hqsql_bind_text(st, 1, id);
	if (key)
		hqsql_bind_text(st, 2, key);
	r = hqsql_step_later(st, "set a record's scope", err);
	for (size_t i = 0; i < p.nfields && r == 0; i++)
		r = stamp(w, id, p.fields[i], key, err);
	/* Its conflicts go with it. */
	for (size_t i = 0; i < p.nconflicts && r == 0; i++)
		r = downsync_conflict_recorded(w, p.conflicts[i], err);
	if (r == 0 && old) {
		int64_t rev = 0;

		if ((r = next_rev(w, &rev, err)) == 0) {
			st = use(w, W_MOVE);
			hqsql_bind_int64(st, 1, rev);
			hqsql_bind_text(st, 2, id);
			hqsql_bind_text(st, 3, old);
			hqsql_bind_int64(st, 4, p.held_from);
			r = hqsql_step_later(st, "record a move", err);
		}
	}
	for (size_t i = 0; i < p.nchildren && r == 0 && depth < MAX_DEPTH; i++) {
		char *child_old = NULL;

		if ((r = record_key(w, p.children[i], &child_old, err)) >= 0) {
			r = same_key(child_old, key)
				    ? 0
				    : rekey(w, p.children[i], child_old, key, depth + 1, err);
		}
		free(child_old);
	}
	parts_free(&p);
	return r;
}

int downsync_field_merged(struct downsync_writer *w, const char *collection, const char *record_id,
			  const char *field, const char *value_json, const char *old,
			  struct fs_error *err)
{
	const struct form *f = hqforms_find(w->forms, collection);
	int si = f ? form_scope_field(f) : -1, r;
	char *key = NULL;
	cJSON *v = NULL;

	if (si < 0) {
		/* In every scope: key "". */
		r = same_key(old, "") ? stamp(w, record_id, field, "", err)
				      : rekey(w, record_id, NULL, "", 0, err);
		goto out;
	}
	if (strcmp(field, form_field_name(f, (size_t)si))) {
		r = stamp(w, record_id, field, old, err);
		goto out;
	}
	/* The scope field itself: where does the record go? */
	v = cJSON_Parse(value_json);
	if (cJSON_IsString(v) && form_field_type(f, (size_t)si) == FORM_REF) {
		struct hqsql_stmt *st = use(w, W_SET_PARENT);

		hqsql_bind_text(st, 1, record_id);
		hqsql_bind_text(st, 2, v->valuestring);
		if ((r = hqsql_step_later(st, "set a record's parent", err)) < 0 ||
		    (r = record_key(w, v->valuestring, &key, err)) < 0)
			goto out;
	} else if (cJSON_IsString(v)) {
		if ((r = fold_text(v->valuestring, strlen(v->valuestring), &key)) < 0) {
			r = fs_error_set(err, r, "record %s: scope value is not text", record_id);
			goto out;
		}
	}
	r = same_key(old, key) ? stamp(w, record_id, field, old, err)
			       : rekey(w, record_id, old, key, 0, err);
out:
	cJSON_Delete(v);
	free(key);
	return r;
}

/* ---- reindex ------------------------------------------------------------ */

/* Run one SQL statement with up to two text parameters. */
static int exec_bound(struct hqsql *db, const char *sql, const char *a, const char *b,
		      struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(db, sql, &st, err)) < 0)
		return r;
	if (a)
		hqsql_bind_text(st, 1, a);
	if (b)
		hqsql_bind_text(st, 2, b);
	r = hqsql_step(st) == HQSQL_DONE ? 0 : hqsql_fail(db, "index scopes", err);
	hqsql_finalize(st);
	return r;
}

/* The records of coll without a scope key (or, refs, without a parent)
 * and their scope field's merged value, set from that value: its fold
 * (sync/fold.h) as the key, or, refs, the id it names as the parent.
 * Done here, not in SQL, so that one fold serves both engines.  The
 * rows are read first: a statement must not see its own updates. */
static int place_from_values(struct hqsql *db, const char *coll, const char *field, int refs,
			     struct fs_error *err)
{
	struct hqsql_stmt *st = NULL, *up = NULL;
	char **ids = NULL, **vals = NULL;
	size_t n = 0;
	int r, rc;

	if ((r = hqsql_prepare(db,
			       refs ? "SELECT r.id, f.value FROM records r LEFT JOIN fields f ON "
				      "f.record_id = r.id AND f.field = ?2 WHERE r.collection = "
				      "?1 AND r.scope_parent IS NULL"
				    : "SELECT r.id, f.value FROM records r LEFT JOIN fields f ON "
				      "f.record_id = r.id AND f.field = ?2 WHERE r.collection = "
				      "?1 AND r.scope_key IS NULL",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, coll);
	hqsql_bind_text(st, 2, field);
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		cJSON *v =
			hqsql_column_is_null(st, 1) ? NULL : cJSON_Parse(hqsql_column_text(st, 1));
		char **a = realloc(ids, (n + 1) * sizeof(*a)), **b;
		char *val = NULL;

		if (a)
			ids = a;
		b = a ? realloc(vals, (n + 1) * sizeof(*b)) : NULL;
		if (b)
			vals = b;
		if (cJSON_IsString(v))
			r = refs ? ((val = strdup(v->valuestring)) ? 0 : -ENOMEM)
				 : fold_text(v->valuestring, strlen(v->valuestring), &val);
		cJSON_Delete(v);
		if (!b || !(ids[n] = strdup(hqsql_column_text(st, 0))) || r == -ENOMEM) {
			free(val);
			r = fs_error_set(err, -ENOMEM, "out of memory");
			break;
		}
		/* A value that is not text places the record nowhere, as
		 * before (no key): the scope check refuses its writes. */
		r = 0;
		vals[n++] = val;
	}
	if (r == 0 && rc != HQSQL_DONE)
		r = hqsql_fail(db, "read records to place", err);
	hqsql_finalize(st);
	if (r == 0)
		r = hqsql_prepare(db,
				  refs ? "UPDATE records SET scope_parent = ?2 WHERE id = ?1"
				       : "UPDATE records SET scope_key = ?2 WHERE id = ?1",
				  &up, err);
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!vals[i])
			continue;
		hqsql_reset(up);
		hqsql_bind_text(up, 1, ids[i]);
		hqsql_bind_text(up, 2, vals[i]);
		if (hqsql_step(up) != HQSQL_DONE)
			r = hqsql_fail(db, "place a record", err);
	}
	hqsql_finalize(up);
	for (size_t i = 0; i < n; i++) {
		free(ids[i]);
		free(vals[i]);
	}
	free(ids);
	free(vals);
	return r;
}

/* Root collections (a value or no scope field) first, then those scoped
 * through a ref, one level per pass. */
static int reindex_collection(struct hqsql *db, const struct form *f, int refs,
			      struct fs_error *err)
{
	int si = form_scope_field(f);
	const char *coll = form_collection(f);

	if (si < 0)
		return refs ? 0
			    : exec_bound(db,
					 "UPDATE records SET scope_key = '' WHERE "
					 "collection = ?1 AND scope_key IS NULL",
					 coll, NULL, err);
	if ((form_field_type(f, (size_t)si) == FORM_REF) != refs)
		return 0;
	if (!refs)
		return place_from_values(db, coll, form_field_name(f, (size_t)si), 0, err);
	return place_from_values(db, coll, form_field_name(f, (size_t)si), 1, err) < 0 ||
			       exec_bound(db,
					  "UPDATE records SET scope_key = (SELECT p.scope_key FROM "
					  "records p WHERE p.id = records.scope_parent) WHERE "
					  "collection = ?1 AND scope_key IS NULL",
					  coll, NULL, err) < 0
		       ? -FS_ESTORE
		       : 0;
}

/* The form's scope field as scope_fields keeps it: "" for none. */
static const char *scope_field_name(const struct form *f)
{
	int si = form_scope_field(f);

	return si < 0 ? "" : form_field_name(f, (size_t)si);
}

/* Forget the keys of collections whose scope field changed, keeping the
 * old ones in the temporary table rescoped for the moves. */
static int forget_changed(struct hqsql *db, const struct hq_forms *forms, int *ret_any,
			  struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r;

	*ret_any = 0;
	if ((r = hqsql_exec(db,
			    "CREATE TEMP TABLE IF NOT EXISTS rescoped(id TEXT PRIMARY KEY, "
			    "old TEXT); DELETE FROM rescoped;",
			    "index scopes", err)) < 0 ||
	    (r = hqsql_prepare(db, "SELECT field FROM scope_fields WHERE collection = ?1", &st,
			       err)) < 0)
		return r;
	for (size_t i = 0; i < hqforms_count(forms) && r == 0; i++) {
		const struct form *f = hqforms_at(forms, i);
		int rc;

		hqsql_reset(st);
		hqsql_bind_text(st, 1, form_collection(f));
		rc = hqsql_step(st);
		if (rc != HQSQL_ROW && rc != HQSQL_DONE) {
			r = hqsql_fail(db, "read scope fields", err);
			break;
		}
		if (rc == HQSQL_DONE || !strcmp(hqsql_column_text(st, 0), scope_field_name(f)))
			continue;
		*ret_any = 1;
		if ((r = exec_bound(db,
				    "INSERT INTO rescoped SELECT id, scope_key FROM records "
				    "WHERE collection = ?1 ON CONFLICT DO NOTHING",
				    form_collection(f), NULL, err)) == 0)
			r = exec_bound(db,
				       "UPDATE records SET scope_key = NULL, scope_parent = NULL "
				       "WHERE collection = ?1",
				       form_collection(f), NULL, err);
	}
	hqsql_finalize(st);
	return r;
}

/* Stamp the records whose key the new scope field changed, as a merge
 * that moved them would (rekey): new revisions, moves, dependants. */
static int rekey_changed(struct hqsql *db, const struct hq_forms *forms, struct fs_error *err)
{
	struct downsync_writer *w = NULL;
	struct hqsql_stmt *st = NULL;
	char **ids = NULL, **olds = NULL, **news = NULL;
	size_t n = 0;
	int r, rc;

	if ((r = downsync_writer_new(db, forms, &w, err)) < 0 ||
	    (r = hqsql_prepare(db,
			       "SELECT o.id, o.old, r.scope_key FROM rescoped o JOIN "
			       "records r ON r.id = o.id WHERE o.old IS DISTINCT FROM r.scope_key",
			       &st, err)) < 0)
		goto out;
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		char **a = realloc(ids, (n + 1) * sizeof(*a)), **b, **c;

		if (a)
			ids = a;
		b = a ? realloc(olds, (n + 1) * sizeof(*b)) : NULL;
		if (b)
			olds = b;
		c = b ? realloc(news, (n + 1) * sizeof(*c)) : NULL;
		if (!c) {
			r = fs_error_set(err, -ENOMEM, "out of memory");
			break;
		}
		news = c;
		ids[n] = strdup(hqsql_column_text(st, 0));
		olds[n] = hqsql_column_is_null(st, 1) ? NULL : strdup(hqsql_column_text(st, 1));
		news[n] = hqsql_column_is_null(st, 2) ? NULL : strdup(hqsql_column_text(st, 2));
		n++;
	}
	if (r == 0 && rc != HQSQL_DONE)
		r = hqsql_fail(db, "read re-scoped records", err);
	hqsql_finalize(st);
	st = NULL;
	/* rekey also moves the records scoped through these (a household's
	 * visits), whose own collection's scope field did not change. */
	for (size_t i = 0; i < n && r == 0; i++)
		r = rekey(w, ids[i], olds[i], news[i], 0, err);
out:
	for (size_t i = 0; i < n; i++) {
		free(ids[i]);
		free(olds[i]);
		free(news[i]);
	}
	free(ids);
	free(olds);
	free(news);
	hqsql_finalize(st);
	downsync_writer_free(w);
	return r;
}

static int remember_scope_fields(struct hqsql *db, const struct hq_forms *forms,
				 struct fs_error *err)
{
	int r = 0;

	for (size_t i = 0; i < hqforms_count(forms) && r == 0; i++)
		r = exec_bound(db,
			       "INSERT INTO scope_fields(collection, field) VALUES (?1, ?2) ON "
			       "CONFLICT(collection) DO UPDATE SET field = ?2",
			       form_collection(hqforms_at(forms, i)),
			       scope_field_name(hqforms_at(forms, i)), err);
	return r;
}

int downsync_reindex(struct hqsql *db, const struct hq_forms *forms, struct fs_error *err)
{
	int r, changed = 0;

	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		return r;
	r = forget_changed(db, forms, &changed, err);
	for (int level = 0; level <= MAX_DEPTH && r == 0; level++)
		for (size_t i = 0; i < hqforms_count(forms) && r == 0; i++)
			r = reindex_collection(db, hqforms_at(forms, i), level > 0, err);
	/* Fields and conflicts merged before schema version 4 have revision
	 * 0: number them after everything numbered since, one by one, or a
	 * cursor that passed one would pass them all. */
	if (r == 0 && changed)
		r = rekey_changed(db, forms, err);
	if (r == 0)
		r = remember_scope_fields(db, forms, err);
	if (r == 0)
		r = hqsql_exec(
			db,
			"UPDATE fields SET scope_key = (SELECT scope_key FROM records "
			"WHERE id = fields.record_id) WHERE scope_key IS NULL;"
			"UPDATE fields SET rev = (SELECT value FROM counters WHERE name = "
			"'rev') + n.k FROM (SELECT record_id AS r, field AS f, row_number() "
			"OVER (ORDER BY record_id, field) AS k FROM fields WHERE rev = 0) AS n "
			"WHERE fields.rev = 0 AND fields.record_id = n.r AND fields.field = n.f;"
			"UPDATE counters SET value = (SELECT max(rev) FROM fields) WHERE name = "
			"'rev' AND (SELECT max(rev) FROM fields) > value;"
			"UPDATE conflicts SET rev = (SELECT value FROM counters WHERE name = "
			"'rev') + n.k FROM (SELECT id AS i, row_number() OVER (ORDER BY id) AS k "
			"FROM conflicts WHERE rev = 0) AS n WHERE conflicts.rev = 0 AND "
			"conflicts.id = n.i;"
			"UPDATE counters SET value = (SELECT max(rev) FROM conflicts) WHERE "
			"name = 'rev' AND (SELECT max(rev) FROM conflicts) > value;",
			"index scopes", err);
	if (r == 0)
		r = hqsql_commit(db, err);
	hqsql_rollback(db);
	return r;
}

/* ---- making a down-set -------------------------------------------------- */

struct cursor {
	char *key;     /* a scope key, "" (collections without scope) or "*" */
	int64_t rev;   /* last field revision sent */
	int64_t moved; /* last move sent */
};

struct pull {
	struct hqsql *db;
	const struct hq_forms *forms;
	const char *device;
	struct cursor *cur;
	size_t ncur;
	int all;	  /* scope "*" */
	struct downset d; /* being filled */
	size_t cap;	  /* d.changes allocated */
	int64_t conflict_cursor;
	int64_t form_cursor; /* greatest form revision sent */
	int64_t top;	     /* greatest revision sent */
	unsigned budget;     /* entries left in this set */
	int more;
	int version; /* of the down-set: the pull request's */
	struct fs_error *err;
};

/* Free what a collection made and start again from nothing: only the
 * database, forms, device, version and error stay. */
static void pull_reset(struct pull *p)
{
	struct pull fresh = { .db = p->db,
			      .forms = p->forms,
			      .device = p->device,
			      .version = p->version,
			      .err = p->err };

	for (size_t i = 0; i < p->ncur; i++)
		free(p->cur[i].key);
	free(p->cur);
	downset_clear(&p->d);
	*p = fresh;
}

/* The device's scope names and one cursor per key (-1: nothing sent). */
static int load_scope(struct pull *p)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(p->db,
			       "SELECT s.key, s.name, coalesce(c.rev, -1), "
			       "coalesce(c.moved, -1) FROM device_scopes s LEFT JOIN "
			       "down_cursors c ON c.device = s.device AND c.key = s.key "
			       "WHERE s.device = ?1 UNION ALL SELECT '', NULL, "
			       "coalesce((SELECT rev FROM down_cursors WHERE device = ?1 AND "
			       "key = ''), -1), coalesce((SELECT moved FROM down_cursors WHERE "
			       "device = ?1 AND key = ''), -1) ORDER BY 1",
			       &st, p->err)) < 0)
		return r;
	hqsql_bind_text(st, 1, p->device);
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		const char *key = hqsql_column_text(st, 0);
		struct cursor *nc = realloc(p->cur, (p->ncur + 1) * sizeof(*nc));
		char **ns;

		if (!nc || !(p->cur = nc, nc[p->ncur].key = strdup(key))) {
			r = fs_error_set(p->err, -ENOMEM, "out of memory");
			break;
		}
		nc[p->ncur].rev = hqsql_column_int64(st, 2);
		nc[p->ncur].moved = hqsql_column_int64(st, 3);
		p->ncur++;
		if (!strcmp(key, "*"))
			p->all = 1;
		if (hqsql_column_is_null(st, 1))
			continue;
		if (!(ns = realloc(p->d.scope, (p->d.nscope + 1) * sizeof(*ns))) ||
		    !(p->d.scope = ns, ns[p->d.nscope] = strdup(hqsql_column_text(st, 1)))) {
			r = fs_error_set(p->err, -ENOMEM, "out of memory");
			break;
		}
		p->d.nscope++;
	}
	if (r == 0 && rc != HQSQL_DONE)
		r = hqsql_fail(p->db, "read the device's scope", p->err);
	hqsql_finalize(st);
	if (r == 0 && !p->d.nscope)
		r = fs_error_set(p->err, -FS_ECORRUPT, "device %s has no scope", p->device);
	return r;
}

/* Columns 0..5: record, collection, field, value, hlc, device. */
static int add_change(struct pull *p, struct hqsql_stmt *st)
{
	/* Nothing here may be printed: the value is personal data.  The
	 * budget may run out to finish a record (add_fields). */
	struct downset_change *c;

	if (p->d.nchanges == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		struct downset_change *n = realloc(p->d.changes, cap * sizeof(*n));

		if (!n)
			return fs_error_set(p->err, -ENOMEM, "out of memory");
		p->d.changes = n;
		p->cap = cap;
	}
	c = &p->d.changes[p->d.nchanges];
	memset(c, 0, sizeof(*c));
	snprintf(c->c.record_id, sizeof(c->c.record_id), "%s",
		 (const unsigned char *)hqsql_column_text(st, 0));
	snprintf(c->c.collection, sizeof(c->c.collection), "%s",
		 (const unsigned char *)hqsql_column_text(st, 1));
	snprintf(c->c.field, sizeof(c->c.field), "%s",
		 (const unsigned char *)hqsql_column_text(st, 2));
	c->c.hlc = (hlc_t)hqsql_column_int64(st, 4);
	snprintf(c->device, sizeof(c->device), "%s",
		 (const unsigned char *)hqsql_column_text(st, 5));
	if (!(c->c.value = cJSON_Parse(hqsql_column_text(st, 3))))
		return fs_error_set(p->err, -FS_ECORRUPT, "record %s: stored value is not JSON",
				    c->c.record_id);
	p->d.nchanges++;
	if (p->budget)
		p->budget--;
	return 0;
}

#define FIELD_COLUMNS "f.record_id, r.collection, f.field, f.value, f.hlc, f.device, f.rev "

/* Fields of the cursor's key changed since it, in revision order, up to
 * the budget. */
static int add_fields(struct pull *p, struct cursor *c)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(
		     p->db,
		     p->all ? "SELECT " FIELD_COLUMNS "FROM fields f JOIN records r ON "
			      "r.id = f.record_id WHERE f.rev > ?1 AND f.scope_key IS NOT "
			      "NULL ORDER BY f.rev"
			    : "SELECT " FIELD_COLUMNS "FROM fields f JOIN records r ON "
			      "r.id = f.record_id WHERE f.scope_key = ?2 AND f.rev > ?1 "
			      "ORDER BY f.rev",
		     &st, p->err)) < 0)
		return r;
	hqsql_bind_int64(st, 1, c->rev);
	hqsql_bind_text(st, 2, c->key);
	/* No LIMIT: the loop stops at the budget, past it only to finish a
	 * record. */
	(void)0;
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		/* A record's fields merged together (a new household, one that
		 * moved in) stay together: a device never holds half of one
		 * between two down-sets. */
		if (!p->budget &&
		    (!p->d.nchanges || strcmp(p->d.changes[p->d.nchanges - 1].c.record_id,
					      hqsql_column_text(st, 0)))) {
			p->more = 1;
			break;
		}
		if ((r = add_change(p, st)) < 0)
			break;
		c->rev = hqsql_column_int64(st, 6);
		if (c->rev > p->top)
			p->top = c->rev;
	}
	if (r == 0 && rc != HQSQL_ROW && rc != HQSQL_DONE)
		r = hqsql_fail(p->db, "read fields to send", p->err);
	hqsql_finalize(st);
	return r;
}

/* The greatest revision in table (a trusted name), or 0. */
static int max_rev(struct pull *p, const char *sql, int64_t *ret)
{
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(p->db, sql, &st, p->err)) < 0)
		return r;
	if (hqsql_step(st) == HQSQL_ROW)
		*ret = hqsql_column_int64(st, 0);
	else
		r = hqsql_fail(p->db, "read the latest revision", p->err);
	hqsql_finalize(st);
	return r;
}

/* Records that left the cursor's key for one the device does not hold:
 * the device gets each one's scope field as HQ holds it now, and purges
 * the record, since that puts it outside its scope (a visit follows its
 * household there). */
static int add_moves(struct pull *p, struct cursor *c)
{
	struct hqsql_stmt *st = NULL, *field = NULL;
	int64_t top = 0;
	int r, rc, full = 0;

	if ((r = max_rev(p, "SELECT coalesce(max(rev), 0) FROM scope_moves", &top)) < 0)
		return r;
	if ((r = hqsql_prepare(
		     p->db,
		     "SELECT m.rev, m.record_id, r.collection FROM scope_moves m JOIN "
		     "records r ON r.id = m.record_id WHERE m.from_key = ?1 AND m.rev > ?2 "
		     "AND m.held_from <= ?5 "
		     "AND (r.scope_key IS NULL OR r.scope_key NOT IN (SELECT key FROM "
		     "device_scopes WHERE device = ?3)) ORDER BY m.rev LIMIT ?4",
		     &st, p->err)) < 0 ||
	    (r = hqsql_prepare(p->db,
			       "SELECT " FIELD_COLUMNS "FROM fields f JOIN records r ON r.id = "
			       "f.record_id WHERE f.record_id = ?1 AND f.field = ?2",
			       &field, p->err)) < 0)
		goto out;
	hqsql_bind_text(st, 1, c->key);
	hqsql_bind_int64(st, 2, c->moved);
	hqsql_bind_text(st, 3, p->device);
	hqsql_bind_int64(st, 4, (int64_t)p->budget + 1);
	/* What the device holds of this key, this set included. */
	hqsql_bind_int64(st, 5, c->rev);
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		const struct form *f = hqforms_find(p->forms, hqsql_column_text(st, 2));
		int si = f ? form_scope_field(f) : -1;

		if (!p->budget) {
			p->more = full = 1;
			break;
		}
		c->moved = hqsql_column_int64(st, 0);
		if (si < 0)
			continue;
		hqsql_reset(field);
		hqsql_bind_text(field, 1, hqsql_column_text(st, 1));
		hqsql_bind_text(field, 2, form_field_name(f, (size_t)si));
		rc = hqsql_step(field);
		if (rc == HQSQL_ROW && (r = add_change(p, field)) < 0)
			break;
		if (rc != HQSQL_ROW && rc != HQSQL_DONE) {
			r = hqsql_fail(p->db, "read a moved record", p->err);
			break;
		}
	}
	if (r == 0 && rc != HQSQL_ROW && rc != HQSQL_DONE)
		r = hqsql_fail(p->db, "read moves to send", p->err);
	/* Every move of this key up to top was looked at: the others (of
	 * records the device still holds through another key) need not be
	 * looked at again at every pull. */
	if (r == 0 && !full && top > c->moved)
		c->moved = top;
out:
	hqsql_finalize(field);
	hqsql_finalize(st);
	return r;
}

/* Conflicts recorded since the device's conflict cursor on records in
 * its scope. */
static int add_conflicts(struct pull *p)
{
	struct hqsql_stmt *st = NULL;
	int64_t top = 0;
	int r, rc, full = 0;

	if ((r = max_rev(p, "SELECT coalesce(max(rev), 0) FROM conflicts", &top)) < 0)
		return r;
	if ((r = hqsql_prepare(
		     p->db,
		     "SELECT c.rev, c.record_id, c.field, c.device_a, c.hlc_a, c.value_a, "
		     "c.device_b, c.hlc_b, c.value_b FROM conflicts c JOIN records r ON "
		     "r.id = c.record_id WHERE c.rev > ?1 AND r.scope_key IS NOT NULL AND "
		     "(?3 = 1 OR r.scope_key = '' OR r.scope_key IN (SELECT key FROM "
		     "device_scopes WHERE device = ?2)) ORDER BY c.rev LIMIT ?4",
		     &st, p->err)) < 0)
		return r;
	hqsql_bind_int64(st, 1, p->conflict_cursor);
	hqsql_bind_text(st, 2, p->device);
	hqsql_bind_int64(st, 3, p->all);
	hqsql_bind_int64(st, 4, (int64_t)p->budget + 1);
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		struct downset_conflict *c, *n;

		if (!p->budget) {
			p->more = full = 1;
			break;
		}
		if (!(n = realloc(p->d.conflicts, (p->d.nconflicts + 1) * sizeof(*n)))) {
			r = fs_error_set(p->err, -ENOMEM, "out of memory");
			break;
		}
		p->d.conflicts = n;
		c = &n[p->d.nconflicts++];
		memset(c, 0, sizeof(*c));
		snprintf(c->record_id, sizeof(c->record_id), "%s",
			 (const unsigned char *)hqsql_column_text(st, 1));
		snprintf(c->field, sizeof(c->field), "%s",
			 (const unsigned char *)hqsql_column_text(st, 2));
		snprintf(c->device_a, sizeof(c->device_a), "%s",
			 (const unsigned char *)hqsql_column_text(st, 3));
		c->hlc_a = (hlc_t)hqsql_column_int64(st, 4);
		c->value_a = cJSON_Parse(hqsql_column_text(st, 5));
		snprintf(c->device_b, sizeof(c->device_b), "%s",
			 (const unsigned char *)hqsql_column_text(st, 6));
		c->hlc_b = (hlc_t)hqsql_column_int64(st, 7);
		c->value_b = cJSON_Parse(hqsql_column_text(st, 8));
		p->conflict_cursor = hqsql_column_int64(st, 0);
		p->budget--;
		if (!c->value_a || !c->value_b) {
			r = fs_error_set(p->err, -FS_ECORRUPT,
					 "conflict on record %s: stored value "
					 "is not JSON",
					 c->record_id);
			break;
		}
	}
	if (r == 0 && rc != HQSQL_ROW && rc != HQSQL_DONE)
		r = hqsql_fail(p->db, "read conflicts to send", p->err);
	/* Every conflict up to top was looked at: those outside the scope
	 * need not be scanned again at every pull. */
	if (r == 0 && !full && top > p->conflict_cursor)
		p->conflict_cursor = top;
	hqsql_finalize(st);
	return r;
}

/* HQ's forms published since the device's form cursor, the latest
 * version of each (hq/formpub.h).  They go first and whatever the
 * budget: a device validates what it records with them, and there are at
 * most HQFORMS_MAX. */
static int add_forms(struct pull *p)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(p->db,
			       "SELECT collection, version, definition, rev FROM form_versions f "
			       "WHERE rev > ?1 AND version = (SELECT max(version) FROM "
			       "form_versions WHERE collection = f.collection) ORDER BY rev",
			       &st, p->err)) < 0)
		return r;
	hqsql_bind_int64(st, 1, p->form_cursor);
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		struct downset_form *f, *n = realloc(p->d.forms, (p->d.nforms + 1) * sizeof(*n));

		if (!n) {
			r = fs_error_set(p->err, -ENOMEM, "out of memory");
			break;
		}
		p->d.forms = n;
		f = &n[p->d.nforms++];
		memset(f, 0, sizeof(*f));
		snprintf(f->collection, sizeof(f->collection), "%s",
			 (const unsigned char *)hqsql_column_text(st, 0));
		f->version = (uint32_t)hqsql_column_int64(st, 1);
		p->form_cursor = hqsql_column_int64(st, 3);
		if (!(f->definition = cJSON_Parse(hqsql_column_text(st, 2)))) {
			r = fs_error_set(p->err, -FS_ECORRUPT,
					 "form '%s' version %u: the published "
					 "definition is not JSON",
					 f->collection, f->version);
			break;
		}
		if (p->budget)
			p->budget--;
	}
	if (r == 0 && rc != HQSQL_DONE)
		r = hqsql_fail(p->db, "read forms to send", p->err);
	hqsql_finalize(st);
	return r;
}

/* Fill p->d from the cursors, at most batch entries. */
static int collect(struct pull *p, unsigned batch)
{
	int r;

	p->budget = batch;
	if ((r = add_forms(p)) < 0)
		return r;
	for (size_t i = 0; i < p->ncur && r == 0; i++) {
		struct cursor *c = &p->cur[i];

		/* With "*", one cursor covers every key. */
		if (p->all && strcmp(c->key, "*"))
			continue;
		if ((r = add_fields(p, c)) == 0 && !p->all)
			r = add_moves(p, c);
	}
	if (r == 0)
		r = add_conflicts(p);
	return r;
}

/* ---- answering a pull --------------------------------------------------- */

struct state {
	uint64_t seq; /* 0: nothing sent yet */
	uint8_t hash[CHANGESET_HASH_BYTES], prev[CHANGESET_HASH_BYTES];
	uint8_t *body;
	size_t len;
	int64_t conflict_cursor;
	int64_t form_cursor;
	char *scope; /* the scope names the last set carried, as one text */
};

void downsync_result_clear(struct downsync_result *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static int state_load(struct hqsql *db, const char *device, struct state *s, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	memset(s, 0, sizeof(*s));
	if ((r = hqsql_prepare(db,
			       "SELECT seq, hash, prev_hash, body, conflict_cursor, scope, "
			       "form_cursor FROM down_state WHERE device = ?1",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, device);
	rc = hqsql_step(st);
	if (rc == HQSQL_ROW) {
		s->seq = (uint64_t)hqsql_column_int64(st, 0);
		s->len = (size_t)(int)hqsql_column_bytes(st, 3);
		if ((int)hqsql_column_bytes(st, 1) != CHANGESET_HASH_BYTES ||
		    (int)hqsql_column_bytes(st, 2) != CHANGESET_HASH_BYTES)
			r = fs_error_set(err, -FS_ECORRUPT, "device %s: stored down-set hash",
					 device);
		else if (!(s->body = malloc(s->len ? s->len : 1)) ||
			 !(s->scope = strdup(hqsql_column_text(st, 5))))
			r = fs_error_set(err, -ENOMEM, "out of memory");
		else {
			memcpy(s->hash, hqsql_column_blob(st, 1), CHANGESET_HASH_BYTES);
			memcpy(s->prev, hqsql_column_blob(st, 2), CHANGESET_HASH_BYTES);
			memcpy(s->body, hqsql_column_blob(st, 3), s->len);
			s->conflict_cursor = hqsql_column_int64(st, 4);
			s->form_cursor = hqsql_column_int64(st, 6);
		}
	} else if (rc != HQSQL_DONE) {
		r = hqsql_fail(db, "read the device's down-sets", err);
	}
	hqsql_finalize(st);
	return r;
}

/* The scope names as one text, to tell whether the scope changed. */
static char *scope_joined(const struct downset *d)
{
	size_t n = 1;
	char *s;

	for (size_t i = 0; i < d->nscope; i++)
		n += strlen(d->scope[i]) + 1;
	if (!(s = calloc(1, n)))
		return NULL;
	for (size_t i = 0; i < d->nscope; i++) {
		strcat(s, d->scope[i]);
		strcat(s, "\n");
	}
	return s;
}

static int state_store(struct pull *p, const struct state *old, const uint8_t *body, size_t len,
		       const uint8_t hash[CHANGESET_HASH_BYTES], const char *scope, uint64_t now_ms)
{
	char hex[2 * CHANGESET_HASH_BYTES + 1], detail[256];
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(p->db,
			       "INSERT INTO down_state(device, seq, hash, prev_hash, body, "
			       "conflict_cursor, scope, issued_at, form_cursor) VALUES (?1, ?2, "
			       "?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(device) DO UPDATE SET "
			       "seq = ?2, hash = ?3, prev_hash = ?4, body = ?5, conflict_cursor = "
			       "?6, scope = ?7, issued_at = ?8, form_cursor = ?9",
			       &st, p->err)) < 0)
		return r;
	hqsql_bind_text(st, 1, p->device);
	hqsql_bind_int64(st, 2, (int64_t)(old->seq + 1));
	hqsql_bind_blob(st, 3, hash, (size_t)(CHANGESET_HASH_BYTES));
	hqsql_bind_blob(st, 4, old->seq ? old->hash : zero_hash, (size_t)(CHANGESET_HASH_BYTES));
	hqsql_bind_blob(st, 5, body, (size_t)((int)len));
	hqsql_bind_int64(st, 6, p->conflict_cursor);
	hqsql_bind_text(st, 7, scope);
	hqsql_bind_int64(st, 8, (int64_t)now_ms);
	hqsql_bind_int64(st, 9, p->form_cursor);
	r = hqsql_step(st) == HQSQL_DONE ? 0 : hqsql_fail(p->db, "store the down-set", p->err);
	hqsql_finalize(st);
	if (r < 0 || (r = hqsql_prepare(p->db,
					"INSERT INTO down_cursors(device, key, rev, moved) "
					"VALUES (?1, ?2, ?3, ?4) ON CONFLICT(device, key) DO "
					"UPDATE SET rev = ?3, moved = ?4",
					&st, p->err)) < 0)
		return r;
	for (size_t i = 0; i < p->ncur && r == 0; i++) {
		hqsql_reset(st);
		hqsql_bind_text(st, 1, p->device);
		hqsql_bind_text(st, 2, p->cur[i].key);
		hqsql_bind_int64(st, 3, p->cur[i].rev);
		hqsql_bind_int64(st, 4, p->cur[i].moved);
		if (hqsql_step(st) != HQSQL_DONE)
			r = hqsql_fail(p->db, "store the device's cursors", p->err);
	}
	hqsql_finalize(st);
	if (r < 0)
		return r;
	/* Audited by sequence, hash and counts; values travel sealed only. */
	sodium_bin2hex(hex, sizeof(hex), hash, CHANGESET_HASH_BYTES);
	snprintf(detail, sizeof(detail),
		 "{\"seq\":%llu,\"hash\":\"%s\",\"changes\":%zu,\"conflicts\":%zu,\"forms\":%zu,"
		 "\"more\":%s}",
		 (unsigned long long)(old->seq + 1), hex, p->d.nchanges, p->d.nconflicts,
		 p->d.nforms, p->more ? "true" : "false");
	return audit_append(p->db, now_ms, "pull", p->device, detail, p->err);
}

static int hex_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Version 2: the team of each device the set's changes and conflicts
 * name, once each, so that a field worker sees who recorded what.  HQ's
 * own writes (a conflict an administrator resolved, hq/ingest.h) are
 * "HQ"'s. */
#define DOWNSYNC_HQ_TEAM "HQ"
static int add_teams(struct pull *p, const char *hq_id)
{
	size_t n = 0, cap = p->d.nchanges + 2 * p->d.nconflicts;
	struct hqsql_stmt *st = NULL;
	const char **ids;
	int r = 0;

	if (!cap)
		return 0;
	if (!(ids = calloc(cap, sizeof(*ids))) ||
	    !(p->d.teams = calloc(cap, sizeof(*p->d.teams)))) {
		free(ids);
		return fs_error_set(p->err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < p->d.nchanges; i++)
		ids[n++] = p->d.changes[i].device;
	for (size_t i = 0; i < p->d.nconflicts; i++) {
		ids[n++] = p->d.conflicts[i].device_a;
		ids[n++] = p->d.conflicts[i].device_b;
	}
	qsort(ids, n, sizeof(*ids), hex_cmp);
	if ((r = hqsql_prepare(p->db, "SELECT team FROM devices WHERE id = ?1", &st, p->err)) < 0)
		goto out;
	for (size_t i = 0; i < n && r == 0; i++) {
		int rc;

		if (i && !strcmp(ids[i], ids[i - 1]))
			continue;
		hqsql_reset(st);
		hqsql_bind_text(st, 1, ids[i]);
		rc = hqsql_step(st);
		if (rc != HQSQL_ROW && rc != HQSQL_DONE) {
			r = hqsql_fail(p->db, "look up a device's team", p->err);
		} else if (rc == HQSQL_ROW || !strcmp(ids[i], hq_id)) {
			struct downset_team *t = &p->d.teams[p->d.nteams++];

			snprintf(t->device, sizeof(t->device), "%s", ids[i]);
			snprintf(t->team, sizeof(t->team), "%s",
				 rc == HQSQL_ROW ? hqsql_column_text(st, 0) : DOWNSYNC_HQ_TEAM);
		}
	}
out:
	hqsql_finalize(st);
	free(ids);
	return r;
}

/* The next down-set after old, or 204. */
static int make_next(struct pull *p, const struct identity *hq, const uint8_t *box_pk,
		     const struct state *old, unsigned batch, uint64_t now_ms,
		     struct downsync_result *ret)
{
	uint8_t hash[CHANGESET_HASH_BYTES];
	char *scope = NULL;
	int r;

	for (;;) {
		struct fs_error eerr = { 0 };

		p->conflict_cursor = old->conflict_cursor;
		p->form_cursor = old->form_cursor;
		if ((r = load_scope(p)) < 0 || (r = collect(p, batch)) < 0 ||
		    (p->version >= 2 && (r = add_teams(p, hq->id)) < 0))
			return r;
		if (!(scope = scope_joined(&p->d)))
			return fs_error_set(p->err, -ENOMEM, "out of memory");
		if (old->seq && !p->d.nchanges && !p->d.nconflicts && !p->d.nforms &&
		    !strcmp(scope, old->scope)) {
			ret->status = 204;
			goto out;
		}
		sodium_hex2bin(p->d.h.device, CHANGESET_DEVICE_BYTES, p->device,
			       2 * CHANGESET_DEVICE_BYTES, NULL, NULL, NULL);
		p->d.h.seq = old->seq + 1;
		memcpy(p->d.h.prev, old->seq ? old->hash : zero_hash, CHANGESET_HASH_BYTES);
		p->d.h.cursor = p->top > 0 ? (uint64_t)p->top : 0;
		p->d.h.hq_time_ms = now_ms;
		p->d.h.flags = p->more ? DOWNSET_FLAG_MORE : 0;
		p->d.h.version = (uint8_t)p->version;
		r = downset_encode(&p->d, box_pk, hq->sign_sk, &ret->body, &ret->len, &eerr);
		if (r == 0)
			break;
		if (r != -FS_ELIMIT || batch <= 1) {
			r = fs_error_set(p->err, r, "device %s: make down-set: %s", p->device,
					 eerr.msg);
			goto out;
		}
		/* Too big for one set: the same cursors, half as many. */
		batch /= 2;
		free(scope);
		scope = NULL;
		pull_reset(p);
	}
	changeset_hash(ret->body, ret->len, hash);
	if ((r = state_store(p, old, ret->body, ret->len, hash, scope, now_ms)) < 0)
		goto out;
	ret->status = 200;
out:
	free(scope);
	return r;
}

static int mark_seen(struct hqsql *db, const char *device, uint64_t now_ms, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r = hqsql_prepare(db,
			      "UPDATE devices SET last_seen = CASE WHEN last_seen IS NULL OR "
			      "last_seen < ?2 THEN ?2 ELSE last_seen END WHERE id = ?1",
			      &st, err);

	if (r < 0)
		return r;
	hqsql_bind_text(st, 1, device);
	hqsql_bind_int64(st, 2, (int64_t)now_ms);
	if (hqsql_step(st) != HQSQL_DONE)
		r = hqsql_fail(db, "note when the device was seen", err);
	hqsql_finalize(st);
	return r;
}

int downsync_pull(struct hqsql *db, const struct identity *hq, const struct hq_forms *forms,
		  unsigned batch, const uint8_t *req, size_t len, uint64_t now_ms,
		  struct downsync_result *ret, struct fs_error *err)
{
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], box_pk[crypto_box_PUBLICKEYBYTES];
	struct downsync_result res = { 0 };
	struct pull p = { .db = db, .forms = forms, .err = err };
	struct state old = { 0 };
	uint64_t after;
	int r, revoked = 0;

	if (len != DOWNSET_PULL_BYTES || memcmp(req, DOWNSET_PULL_MAGIC, 4) || req[4] < 1 ||
	    req[4] > DOWNSET_PULL_VERSION || req[5] || req[6] || req[7]) {
		REFUSE(&res, 400, "malformed", "not a pull request (versions 1 to %d)",
		       DOWNSET_PULL_VERSION);
		goto done;
	}
	/* A device reads the down-set version its request names. */
	p.version = req[4];
	sodium_bin2hex(res.device, sizeof(res.device), req + 8, CHANGESET_DEVICE_BYTES);
	p.device = res.device;
	after = bytes_get_be(req + 24, 8);
	if ((r = hqenroll_device_keys(db, res.device, sign_pk, box_pk, &revoked, err)) < 0)
		goto fail;
	if (r == 0) {
		REFUSE(&res, 401, "unknown_device", "device %s is not enrolled", res.device);
		goto done;
	}
	if (crypto_sign_verify_detached(req + 72, req, 72, sign_pk) != 0) {
		REFUSE(&res, 401, "bad_signature",
		       "the signature does not verify with the enrolled "
		       "key");
		goto done;
	}
	if (revoked) {
		REFUSE(&res, 403, "revoked", "device %s has been revoked", res.device);
		goto done;
	}
	/* A pull is contact: the console tells a quiet device from a lost
	 * one by it.  Its own statement, kept whatever the answer. */
	if ((r = mark_seen(db, res.device, now_ms, err)) < 0)
		goto fail;
	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		goto fail;
	if ((r = state_load(db, res.device, &old, err)) < 0)
		goto rollback;
	if (after == old.seq &&
	    !sodium_memcmp(req + 32, old.seq ? old.hash : zero_hash, CHANGESET_HASH_BYTES)) {
		/* Room past the batch to finish a household (add_fields), and
		 * for the forms (add_forms). */
		if (batch > DOWNSET_MAX_ENTRIES - FORM_MAX_FIELDS - 1 - HQFORMS_MAX)
			batch = DOWNSET_MAX_ENTRIES - FORM_MAX_FIELDS - 1 - HQFORMS_MAX;
		if ((r = make_next(&p, hq, box_pk, &old, batch ? batch : 1, now_ms, &res)) < 0)
			goto rollback;
	} else if (old.seq && after + 1 == old.seq &&
		   !sodium_memcmp(req + 32, after ? old.prev : zero_hash, CHANGESET_HASH_BYTES)) {
		/* Its answer was lost: the same bytes again. */
		res.body = old.body;
		res.len = old.len;
		old.body = NULL;
		res.status = 200;
		res.repeat = 1;
	} else {
		res.expected = old.seq;
		REFUSE(&res, 409, "downset_mismatch",
		       "HQ has sent down-set %llu; the device says it applied %llu with another "
		       "hash or sequence",
		       (unsigned long long)old.seq, (unsigned long long)after);
	}
	if (res.status != 200 || res.repeat)
		hqsql_rollback(db);
	else if ((r = hqsql_commit(db, err)) < 0)
		goto rollback;
	goto done;
rollback:
	hqsql_rollback(db);
fail:
	pull_reset(&p);
	free(old.body);
	free(old.scope);
	downsync_result_clear(&res);
	return r;
done:
	pull_reset(&p);
	free(old.body);
	free(old.scope);
	*ret = res;
	return 0;
}
