/* expr.h - the expression language of forms (fieldsync-form/2): skip
 * logic, constraints, conditional "required", calculations and choice
 * filters are all written in it, and evaluated here and only here, by
 * the agent as a worker types, by the agent when a record is written, and
 * by HQ when it validates a change.  The browser never evaluates one.
 *
 * Syntax (XLSForm's habits, a small safe subset):
 *
 *   ${name}            the value of field name in the same record
 *   .                  the value being checked (in a constraint)
 *   12  3.5            numbers;  'text'  "text"  strings (no escapes)
 *   true  false  null
 *   a or b   a and b   not(a)             logic, lowest first
 *   a = b  a != b  a < b  a <= b  a > b  a >= b
 *   a + b  a - b       a * b  a div b  a mod b   (/ is div)   -a
 *   ( a )
 *   if(c, a, b)            a when c holds, else b
 *   selected(list, 'v')    a multiple choice holds v
 *   count-selected(list)   how many it holds (a repeat group: its rows);
 *   count(list)            the same
 *   string-length(s)       in characters (UTF-8 code points)
 *   today()                the date the caller gives, 'YYYY-MM-DD'
 *   days-between(d1, d2)   d2 - d1 in days, for 'YYYY-MM-DD' dates
 *   coalesce(a, b)         a unless it is null or '', else b
 *   int(x)  round(x)       toward zero; to the nearest
 *   choice('key')          in a choice filter, the choice's entry key
 *                          (form.h, choice_data); elsewhere null
 *
 * Values are null, booleans, numbers (doubles), text and lists (a
 * multiple choice's array).  An absent field is null.  Rules:
 *   - truth: null, false, 0, '' and the empty list are false;
 *   - = and != : null equals '' (an empty field, as XLSForm users
 *     write it); a number and a text compare as numbers when the text is
 *     one, else as text; otherwise values of different kinds differ;
 *   - < <= > >= : numbers by value, texts byte by byte (so dates in
 *     'YYYY-MM-DD' order as dates); anything else is false;
 *   - arithmetic takes numbers (and texts that are numbers); anything
 *     else, and division by zero, gives null;
 *   - evaluation never fails: a type mismatch gives null, so an
 *     expression's result is the same on every device and at HQ.
 *
 * Limits: EXPR_MAX_TEXT bytes, EXPR_MAX_NODES nodes, EXPR_MAX_DEPTH
 * nesting.  Parse errors are -FS_EFORMAT with a message naming the
 * position; -ENOMEM.  A parsed expression is immutable: share it across
 * threads freely.
 */
#ifndef FS_EXPR_H
#define FS_EXPR_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "crypto/fserr.h"

#define EXPR_MAX_TEXT 2048
#define EXPR_MAX_NODES 256
#define EXPR_MAX_DEPTH 32

struct expr;

enum expr_kind { EXPR_NULL, EXPR_BOOL, EXPR_NUMBER, EXPR_TEXT, EXPR_LIST };

/* A result.  text points into the expression, a field's value or the
 * caller's today: valid while those are. */
struct expr_value {
	enum expr_kind kind;
	int b;
	double n;
	const char *text;
	const cJSON *list; /* EXPR_LIST: a JSON array of strings */
};

int expr_parse(const char *text, struct expr **ret, struct fs_error *err) FS_WUR;
struct expr *expr_free(struct expr *e);

/* The value of a field by name (NULL: absent), for ${name}. */
typedef const cJSON *(*expr_lookup_fn)(const char *name, void *ctx);

/* Evaluate e.  self: the value of "." (NULL: null); today: 'YYYY-MM-DD'. */
struct expr_value expr_eval(const struct expr *e, expr_lookup_fn lookup, void *ctx,
			    const cJSON *self, const char *today);

/* The same for a choice filter: choice('key') reads data, an object of
 * the choice's entries (NULL: none). */
struct expr_value expr_eval_choice(const struct expr *e, expr_lookup_fn lookup, void *ctx,
				   const cJSON *self, const cJSON *data, const char *today);

/* Whether a value holds (the truth rule above). */
int expr_true(const struct expr_value *v);

/* Whether e reads nothing but '.': no field, no today(), no choice(). */
int expr_reads_only_self(const struct expr *e);

/* Call fn with each field name e refers to (${name}); its non-zero
 * return stops the walk and is returned. */
int expr_refs(const struct expr *e, int (*fn)(const char *name, void *ctx), void *ctx);

#endif
