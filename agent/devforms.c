/* devforms.c - see devforms.h. */
#include "agent/devforms.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/formsrc.h"

/* store_stmt() slots (agent/store.h). */
enum {
	SLOT_HQ_FORM = 44,
	SLOT_KEEP_FORM,
	SLOT_LIST_FORMS,
};

int devforms_load(struct store *s, const char *dir, const char *collection, struct form **ret,
		  struct fs_error *err)
{
	char origin[96];
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = store_stmt(s, SLOT_HQ_FORM,
			    "SELECT version, definition FROM hq_forms WHERE "
			    "collection = ?1",
			    &st, err)) < 0)
		return r;
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return formsrc_load(dir, collection, ret, err);
	}
	if (rc != SQLITE_ROW) {
		r = store_fail(s, "read HQ's form in", err);
		goto out;
	}
	/* Checked when it was accepted; checked again, since the store is
	 * the only thing between it and every later write. */
	snprintf(origin, sizeof(origin), "from HQ for '%.64s'", collection);
	if ((r = form_load_json((const char *)sqlite3_column_text(st, 1),
				(size_t)sqlite3_column_bytes(st, 1), origin, ret, err)) < 0)
		goto out;
	form_set_version(*ret, (uint32_t)sqlite3_column_int64(st, 0));
out:
	sqlite3_reset(st);
	return r;
}

int devforms_accept(struct store *s, const char *collection, uint32_t version,
		    const char *definition, struct fs_error *err)
{
	struct form *f = NULL;
	sqlite3_stmt *st = NULL;
	char origin[96];
	int r;

	snprintf(origin, sizeof(origin), "'%.64s' version %u from HQ", collection, version);
	if ((r = form_load_json(definition, strlen(definition), origin, &f, err)) < 0)
		return r;
	/* The collection element picks where the form is filed; a
	 * definition naming another would validate the wrong records. */
	if (strcmp(form_collection(f), collection)) {
		r = fs_error_set(err, -FS_EFORMAT,
				 "form %s: the definition is for another "
				 "collection",
				 origin);
		goto out;
	}
	if ((r = store_stmt(s, SLOT_KEEP_FORM,
			    "INSERT INTO hq_forms(collection, version, definition) VALUES "
			    "(?1, ?2, ?3) ON CONFLICT(collection) DO UPDATE SET version = ?2, "
			    "definition = ?3",
			    &st, err)) < 0)
		goto out;
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, version);
	sqlite3_bind_text(st, 3, form_definition(f), -1, SQLITE_STATIC);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail(s, "keep HQ's form in", err);
	sqlite3_reset(st);
out:
	form_free(f);
	return r;
}

struct own {
	char **name;
	size_t n;
};

static int own_add(struct form *f, void *arg)
{
	struct own *o = arg;
	char **n = realloc(o->name, (o->n + 1) * sizeof(*n));
	int r = 0;

	if (!n || !(o->name = n, n[o->n] = strdup(form_collection(f))))
		r = -ENOMEM;
	else
		o->n++;
	form_free(f);
	return r;
}

int devforms_list(struct store *s, const char *dir, devforms_fn fn, void *ctx, struct fs_error *err)
{
	struct own own = { 0 };
	sqlite3_stmt *st = NULL;
	size_t k = 0;
	int r, rc = SQLITE_DONE;

	/* The device's own names, in name order (formsrc.h), merged with
	 * HQ's, also in name order. */
	if ((r = formsrc_load_all(dir, own_add, &own, err)) == -ENOMEM)
		r = fs_error_set(err, r, "out of memory");
	if (r < 0 || (r = store_stmt(s, SLOT_LIST_FORMS,
				     "SELECT collection, version FROM "
				     "hq_forms ORDER BY collection",
				     &st, err)) < 0)
		goto out;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(st, 0);

		for (; r == 0 && k < own.n && strcmp(own.name[k], c) < 0; k++)
			r = fn(own.name[k], 0, 0, ctx);
		if (r == 0 && k < own.n && !strcmp(own.name[k], c))
			k++;
		if (r == 0)
			r = fn(c, (uint32_t)sqlite3_column_int64(st, 1), 1, ctx);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, "list HQ's forms in", err);
	for (; r == 0 && k < own.n; k++)
		r = fn(own.name[k], 0, 0, ctx);
out:
	if (st)
		sqlite3_reset(st);
	for (size_t i = 0; i < own.n; i++)
		free(own.name[i]);
	free(own.name);
	return r;
}
