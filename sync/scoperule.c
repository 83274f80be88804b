/* scoperule.c - see scoperule.h. */
#include "sync/scoperule.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync/fold.h"

static int resolve(const struct scoperule_lookup *l, const char *collection, const char *id,
		   int depth, char **ret, struct fs_error *err);

/* value is what the scope field of a record of form f holds. */
static int follow(const struct scoperule_lookup *l, const struct form *f, const char *value,
		  int depth, char **ret, struct fs_error *err)
{
	size_t si = (size_t)form_scope_field(f);

	if (form_field_type(f, si) != FORM_REF) {
		if (!(*ret = strdup(value)))
			return fs_error_set(err, -ENOMEM, "out of memory");
		return SCOPERULE_VALUE;
	}
	if (depth >= SCOPERULE_MAX_DEPTH)
		return SCOPERULE_UNKNOWN;
	return resolve(l, form_field_ref(f, si), value, depth + 1, ret, err);
}

static int resolve(const struct scoperule_lookup *l, const char *collection, const char *id,
		   int depth, char **ret, struct fs_error *err)
{
	const struct form *f = l->form(l->ctx, collection);
	char *v = NULL;
	int r;

	if (!f || form_scope_field(f) < 0)
		return SCOPERULE_FREE;
	if ((r = l->value(l->ctx, id, form_field_name(f, (size_t)form_scope_field(f)), &v, err)) <=
	    0)
		return r < 0 ? r : SCOPERULE_UNKNOWN;
	r = follow(l, f, v, depth, ret, err);
	free(v);
	return r;
}

int scoperule_resolve(const struct scoperule_lookup *l, const char *collection,
		      const char *record_id, char **ret_value, struct fs_error *err)
{
	*ret_value = NULL;
	return resolve(l, collection, record_id, 0, ret_value, err);
}

int scoperule_resolve_value(const struct scoperule_lookup *l, const struct form *f,
			    const char *value, char **ret_value, struct fs_error *err)
{
	*ret_value = NULL;
	if (!f || form_scope_field(f) < 0)
		return SCOPERULE_FREE;
	return follow(l, f, value, 0, ret_value, err);
}

int scoperule_holds(const char *const *names, size_t n, const char *value)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], SCOPERULE_ALL) || fold_equal(names[i], value) == 1)
			return 1;
	return 0;
}
