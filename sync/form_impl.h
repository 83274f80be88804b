/* form_impl.h - the loaded form's layout, shared by form.c (parsing a
 * definition, checking one value) and formrule.c (the expressions of
 * fieldsync-form/2: skip logic, constraints, calculations, choice
 * filters, repeat groups).  Private to those two files: nothing else
 * includes it.
 */
#ifndef FS_FORM_IMPL_H
#define FS_FORM_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "crypto/fserr.h"
#include "sync/expr.h"
#include "sync/formtype.h"

/* Names and keys are printed in messages up to this many bytes. */
#define PRINT_MAX 64

struct form_field {
	char name[FORM_MAX_NAME + 1]; /* [a-z][a-z0-9_]*, unique in its form */
	enum form_type type;	      /* what JSON value the field holds */
	bool required;		      /* "required": true */
	bool phone;		      /* text: format "phone" */
	size_t max_length;	      /* text: maximum length in bytes */
	int64_t min, max;	      /* integer: inclusive bounds */
	int must_be;		      /* boolean: -1 any, else the only value */
	char **values;		      /* choice, multi_choice: allowed strings */
	size_t nvalues;		      /* number of entries in values */
	char *collection;	      /* ref: target collection, else NULL */
	/* fieldsync-form/2 logic (formrule.c); each NULL when absent. */
	struct expr *relevant;	    /* asked only when it holds */
	struct expr *required_if;   /* "required": an expression */
	struct expr *constraint;    /* must hold for a given value ('.') */
	bool constraint_alone;	    /* it reads '.' only: a rule of the value */
	struct expr *calculate;	    /* the value, computed */
	struct expr *choice_filter; /* which values are offered */
	cJSON *constraint_message;  /* {language: text}, owned */
	cJSON *deflt;		    /* "default": the value, owned */
	cJSON *choice_data;	    /* {value: {key: text}}, owned */
	struct form_field *sub;	    /* repeat: the fields of a row */
	size_t nsub;		    /* entries in sub */
	size_t min_rows, max_rows;  /* repeat: how many rows */
	uint64_t max_bytes;	    /* attachment: the largest file */
	unsigned accept;	    /* attachment: content types (sync/sniff.h) */
	unsigned max_side;	    /* attachment: a photo's longest side; 0: as it is */
	unsigned quality;	    /* attachment: JPEG quality of a resized photo */
	int keep_location;	    /* attachment: a photo's EXIF stays */
};

struct form {
	char *collection;	   /* the collection this form describes */
	struct form_field *fields; /* nfields entries, definition order */
	size_t nfields;		   /* number of fields */
	int scope;		   /* index of the scope field, or -1 */
	char *definition;	   /* the definition as canonical JSON */
	uint32_t version;	   /* HQ's version; 0: not published by HQ */
	int format;		   /* 1 or 2: fieldsync-form/N */
};

/* A field's own rules, without the rest of the record: type, bounds,
 * allowed values, and "required": true unless the field has "relevant"
 * (then it is required only where it is asked, a rule of the record);
 * and a constraint that reads nothing but '.', since it holds for the
 * value wherever it is.  What HQ checks per change, so it holds for any
 * valid record.  form_check_type is the same without the constraint. */
int form_check_value(const struct form_field *ff, const cJSON *v, struct fs_error *err);
int form_check_type(const struct form_field *ff, const cJSON *v, struct fs_error *err);

/* An object holds only the given fields, each at most once. */
int form_check_members(const struct form_field *fields, size_t n, const cJSON *obj,
		       struct fs_error *err);

/* Words for people per language (form.c); what names the attribute. */
int form_parse_words(const cJSON *v, const char *what, struct fs_error *err);

/* The logic attributes of one field (formrule.c), after its type and
 * values are parsed: relevant, required (when an expression),
 * constraint, constraint_message, calculate, default, choice_filter,
 * choice_data.  NULL members are absent. */
struct form_logic_attrs {
	const cJSON *relevant, *required, *constraint, *constraint_message, *calculate, *deflt,
		*choice_filter, *choice_data;
};
int formrule_parse(struct form_field *ff, const struct form_logic_attrs *a, struct fs_error *err);

/* After every field is parsed: each ${name} names a field in reach, and
 * skip logic, calculations and filters look only backwards. */
int formrule_check_refs(const struct form *f, struct fs_error *err);

/* Free what formrule_parse allocated in ff (not ff itself). */
void formrule_free(struct form_field *ff);

#endif
