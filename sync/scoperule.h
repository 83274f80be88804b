/* scoperule.h - where a record is: the one rule HQ and the devices apply.
 *
 * A form may name a scope field (sync/form.h).  A record's scope value
 * is that field's value; when the field is a ref, it is the scope value
 * of the record it names, followed at most SCOPERULE_MAX_DEPTH times (a
 * visit is where its household is).  A scope (a list of names, or "*")
 * holds a value when a name folds to the same key (sync/fold.h).
 *
 * The rule does not know where values are kept: HQ reads its merged
 * fields and the change set in hand (hq/scope.c), a device its own store
 * (agent/pull.c), each through a lookup function.  Thread-safe; no I/O
 * but the caller's.
 */
#ifndef FS_SCOPERULE_H
#define FS_SCOPERULE_H

#include <stddef.h>

#include "crypto/fserr.h"
#include "sync/form.h"

#define SCOPERULE_ALL "*"
#define SCOPERULE_MAX_DEPTH 4

enum scoperule_where {
	SCOPERULE_FREE = 0,    /* the form has no scope field: in every scope */
	SCOPERULE_UNKNOWN = 1, /* no value can be found */
	SCOPERULE_VALUE = 2,   /* *ret_value holds it */
};

struct scoperule_lookup {
	/* The form of a collection, or NULL. */
	const struct form *(*form)(void *ctx, const char *collection);
	/* The text of a string field of a record: 1 with *ret malloc'd, 0
	 * when there is none, < 0 on error (err set). */
	int (*value)(void *ctx, const char *record_id, const char *field, char **ret,
		     struct fs_error *err);
	void *ctx;
};

/* Where record_id of collection is: an enum scoperule_where, with
 * *ret_value malloc'd for SCOPERULE_VALUE; < 0 on error. */
int scoperule_resolve(const struct scoperule_lookup *l, const char *collection,
		      const char *record_id, char **ret_value, struct fs_error *err) FS_WUR;

/* The same for a record whose scope field would hold value: where it
 * would be (value itself, or, for a ref, where the named record is). */
int scoperule_resolve_value(const struct scoperule_lookup *l, const struct form *f,
			    const char *value, char **ret_value, struct fs_error *err) FS_WUR;

/* Is value in the scope names[0..n)?  "*" holds everything. */
int scoperule_holds(const char *const *names, size_t n, const char *value);

#endif
