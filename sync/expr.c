/* expr.c - parsing and evaluating form expressions (sync/expr.h). */
#include "sync/expr.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/utf8.h"

enum op {
	N_NUM,
	N_STR,
	N_TRUE,
	N_FALSE,
	N_NULL,
	N_FIELD,
	N_SELF,
	N_OR,
	N_AND,
	N_NOT,
	N_EQ,
	N_NE,
	N_LT,
	N_LE,
	N_GT,
	N_GE,
	N_ADD,
	N_SUB,
	N_MUL,
	N_DIV,
	N_MOD,
	N_NEG,
	N_IF,
	N_SELECTED,
	N_COUNT_SELECTED,
	N_LENGTH,
	N_TODAY,
	N_DAYS,
	N_COALESCE,
	N_INT,
	N_ROUND,
	N_CHOICE,
};

static const struct {
	const char *name;
	enum op op;
	int nargs;
} FUNCS[] = {
	{ "if", N_IF, 3 },
	{ "selected", N_SELECTED, 2 },
	{ "count-selected", N_COUNT_SELECTED, 1 },
	{ "string-length", N_LENGTH, 1 },
	{ "today", N_TODAY, 0 },
	{ "days-between", N_DAYS, 2 },
	{ "coalesce", N_COALESCE, 2 },
	{ "int", N_INT, 1 },
	{ "round", N_ROUND, 1 },
	{ "count", N_COUNT_SELECTED, 1 },
	{ "choice", N_CHOICE, 1 },
	{ "not", N_NOT, 1 },
};

struct node {
	enum op op;
	int kid[3]; /* children, by index; -1: none */
	double n;
	char *s; /* N_STR, N_FIELD: owned */
};

struct expr {
	struct node node[EXPR_MAX_NODES];
	int n, root;
};

struct parser {
	const char *text, *p;
	struct expr *e;
	int depth;
	struct fs_error *err;
};

/* ---- parsing ----------------------------------------------------------- */

static int fail(struct parser *ps, const char *why)
{
	return fs_error_set(ps->err, -FS_EFORMAT, "expression: %s at character %d", why,
			    (int)(ps->p - ps->text) + 1);
}

static void skip_space(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

/* A new node; its index, or < 0. */
static int add(struct parser *ps, enum op op, int a, int b, int c)
{
	struct node *nd;

	if (ps->e->n >= EXPR_MAX_NODES)
		return fail(ps, "too long an expression");
	nd = &ps->e->node[ps->e->n];
	*nd = (struct node){ .op = op, .kid = { a, b, c } };
	return ps->e->n++;
}

static int is_name_start(char c)
{
	return c >= 'a' && c <= 'z';
}

static int is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A bare word at p (a keyword or a function name): its length. */
static size_t word_at(const char *p)
{
	size_t n = 0;

	if (!is_name_start(*p))
		return 0;
	while (is_name_char(p[n]))
		n++;
	return n;
}

/* Whether the next token is the keyword kw (a whole word); consumed. */
static int keyword(struct parser *ps, const char *kw)
{
	size_t n;

	skip_space(ps);
	n = word_at(ps->p);
	if (n != strlen(kw) || strncmp(ps->p, kw, n) != 0)
		return 0;
	ps->p += n;
	return 1;
}

static int punct(struct parser *ps, const char *tok)
{
	size_t n = strlen(tok);

	skip_space(ps);
	if (strncmp(ps->p, tok, n) != 0)
		return 0;
	/* "<" is not the start of "<=", nor "!" of "!=". */
	if (n == 1 && (tok[0] == '<' || tok[0] == '>') && ps->p[1] == '=')
		return 0;
	ps->p += n;
	return 1;
}

static int parse_or(struct parser *ps);

static char *copy(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static int parse_call(struct parser *ps, const char *name, size_t len)
{
	int args[3] = { -1, -1, -1 }, nargs = 0, i, want = -1;
	enum op op = N_NULL;

	for (size_t f = 0; f < sizeof(FUNCS) / sizeof(FUNCS[0]); f++)
		if (strlen(FUNCS[f].name) == len && !strncmp(FUNCS[f].name, name, len)) {
			op = FUNCS[f].op;
			want = FUNCS[f].nargs;
		}
	if (want < 0)
		return fail(ps, "unknown function");
	if (!punct(ps, ")")) {
		do {
			if (nargs == 3)
				return fail(ps, "too many arguments");
			if ((i = parse_or(ps)) < 0)
				return i;
			args[nargs++] = i;
		} while (punct(ps, ","));
		if (!punct(ps, ")"))
			return fail(ps, "expected ')'");
	}
	if (nargs != want)
		return fail(ps, "wrong number of arguments");
	return add(ps, op, args[0], args[1], args[2]);
}

static int parse_primary(struct parser *ps)
{
	const char *start;
	size_t n;
	int i;

	skip_space(ps);
	start = ps->p;
	if (*ps->p == '\'' || *ps->p == '"') {
		const char *end = strchr(ps->p + 1, *ps->p);

		if (!end)
			return fail(ps, "unterminated string");
		if ((i = add(ps, N_STR, -1, -1, -1)) < 0)
			return i;
		if (!(ps->e->node[i].s = copy(ps->p + 1, (size_t)(end - ps->p - 1))))
			return -ENOMEM;
		if (!utf8_valid(ps->e->node[i].s))
			return fail(ps, "a string that is not UTF-8");
		ps->p = end + 1;
		return i;
	}
	if ((*ps->p >= '0' && *ps->p <= '9') ||
	    (*ps->p == '.' && ps->p[1] >= '0' && ps->p[1] <= '9')) {
		char *end;
		double v = strtod(ps->p, &end);

		if (end == ps->p || !isfinite(v))
			return fail(ps, "a bad number");
		ps->p = end;
		if ((i = add(ps, N_NUM, -1, -1, -1)) >= 0)
			ps->e->node[i].n = v;
		return i;
	}
	if (ps->p[0] == '$' && ps->p[1] == '{') {
		const char *name = ps->p + 2, *end = name;

		while (is_name_char(*end) && *end != '-')
			end++;
		if (end == name || !is_name_start(*name) || *end != '}' || end - name > 64)
			return fail(ps, "a bad field reference");
		if ((i = add(ps, N_FIELD, -1, -1, -1)) < 0)
			return i;
		if (!(ps->e->node[i].s = copy(name, (size_t)(end - name))))
			return -ENOMEM;
		ps->p = end + 1;
		return i;
	}
	if (*ps->p == '.') {
		ps->p++;
		return add(ps, N_SELF, -1, -1, -1);
	}
	if (punct(ps, "(")) {
		if ((i = parse_or(ps)) < 0)
			return i;
		if (!punct(ps, ")"))
			return fail(ps, "expected ')'");
		return i;
	}
	if ((n = word_at(ps->p)) > 0) {
		if (keyword(ps, "true"))
			return add(ps, N_TRUE, -1, -1, -1);
		if (keyword(ps, "false"))
			return add(ps, N_FALSE, -1, -1, -1);
		if (keyword(ps, "null"))
			return add(ps, N_NULL, -1, -1, -1);
		ps->p += n;
		if (!punct(ps, "(")) {
			ps->p = start;
			return fail(ps, "a bare word (write a field as ${name}, text in quotes)");
		}
		return parse_call(ps, start, n);
	}
	return fail(ps, *ps->p ? "unexpected character" : "unexpected end");
}

static int parse_unary(struct parser *ps)
{
	int i;

	if (++ps->depth > EXPR_MAX_DEPTH)
		return fail(ps, "nested too deep");
	if (punct(ps, "-")) {
		if ((i = parse_unary(ps)) < 0)
			return i;
		i = add(ps, N_NEG, i, -1, -1);
	} else {
		i = parse_primary(ps);
	}
	ps->depth--;
	return i;
}

static int parse_mul(struct parser *ps)
{
	int a = parse_unary(ps), b;
	enum op op;

	while (a >= 0) {
		if (punct(ps, "*"))
			op = N_MUL;
		else if (punct(ps, "/") || keyword(ps, "div"))
			op = N_DIV;
		else if (keyword(ps, "mod"))
			op = N_MOD;
		else
			break;
		if ((b = parse_unary(ps)) < 0)
			return b;
		a = add(ps, op, a, b, -1);
	}
	return a;
}

static int parse_add(struct parser *ps)
{
	int a = parse_mul(ps), b;
	enum op op;

	while (a >= 0) {
		if (punct(ps, "+"))
			op = N_ADD;
		else if (punct(ps, "-"))
			op = N_SUB;
		else
			break;
		if ((b = parse_mul(ps)) < 0)
			return b;
		a = add(ps, op, a, b, -1);
	}
	return a;
}

static int parse_cmp(struct parser *ps)
{
	static const struct {
		const char *tok;
		enum op op;
	} CMP[] = { { "!=", N_NE }, { "<=", N_LE }, { ">=", N_GE },
		    { "=", N_EQ },  { "<", N_LT },  { ">", N_GT } };
	int a = parse_add(ps), b;

	if (a < 0)
		return a;
	for (size_t k = 0; k < sizeof(CMP) / sizeof(CMP[0]); k++)
		if (punct(ps, CMP[k].tok)) {
			if ((b = parse_add(ps)) < 0)
				return b;
			return add(ps, CMP[k].op, a, b, -1);
		}
	return a;
}

static int parse_and(struct parser *ps)
{
	int a = parse_cmp(ps), b;

	while (a >= 0 && keyword(ps, "and")) {
		if ((b = parse_cmp(ps)) < 0)
			return b;
		a = add(ps, N_AND, a, b, -1);
	}
	return a;
}

static int parse_or(struct parser *ps)
{
	int a, b;

	if (++ps->depth > EXPR_MAX_DEPTH)
		return fail(ps, "nested too deep");
	a = parse_and(ps);
	while (a >= 0 && keyword(ps, "or")) {
		if ((b = parse_and(ps)) < 0)
			return b;
		a = add(ps, N_OR, a, b, -1);
	}
	ps->depth--;
	return a;
}

int expr_parse(const char *text, struct expr **ret, struct fs_error *err)
{
	struct parser ps = { .text = text, .p = text, .err = err };
	int r;

	*ret = NULL;
	if (!text)
		return fs_error_set(err, -FS_EUSAGE, "expression: none given");
	if (strlen(text) > EXPR_MAX_TEXT)
		return fs_error_set(err, -FS_EFORMAT, "expression: longer than %d bytes",
				    EXPR_MAX_TEXT);
	if (!(ps.e = calloc(1, sizeof(*ps.e))))
		return fs_error_set(err, -ENOMEM, "expression: out of memory");
	r = parse_or(&ps);
	if (r >= 0) {
		skip_space(&ps);
		if (*ps.p)
			r = fail(&ps, "unexpected text after the expression");
	}
	if (r == -ENOMEM)
		fs_error_set(err, -ENOMEM, "expression: out of memory");
	if (r < 0) {
		expr_free(ps.e);
		return r;
	}
	ps.e->root = r;
	*ret = ps.e;
	return 0;
}

struct expr *expr_free(struct expr *e)
{
	if (!e)
		return NULL;
	for (int i = 0; i < e->n; i++)
		free(e->node[i].s);
	free(e);
	return NULL;
}

int expr_refs(const struct expr *e, int (*fn)(const char *name, void *ctx), void *ctx)
{
	int r;

	for (int i = 0; i < e->n; i++)
		if (e->node[i].op == N_FIELD && (r = fn(e->node[i].s, ctx)) != 0)
			return r;
	return 0;
}

int expr_reads_only_self(const struct expr *e)
{
	for (int i = 0; i < e->n; i++)
		if (e->node[i].op == N_FIELD || e->node[i].op == N_TODAY ||
		    e->node[i].op == N_CHOICE)
			return 0;
	return 1;
}

/* ---- evaluating --------------------------------------------------------- */

struct env {
	const struct expr *e;
	expr_lookup_fn lookup;
	void *ctx;
	const cJSON *self;
	const cJSON *choice; /* a choice filter's choice_data entry */
	const char *today;
};

static const struct expr_value NUL_VALUE = { .kind = EXPR_NULL };

static struct expr_value number(double n)
{
	if (!isfinite(n))
		return NUL_VALUE;
	return (struct expr_value){ .kind = EXPR_NUMBER, .n = n };
}

static struct expr_value boolean(int b)
{
	return (struct expr_value){ .kind = EXPR_BOOL, .b = !!b };
}

static struct expr_value text(const char *s)
{
	return (struct expr_value){ .kind = EXPR_TEXT, .text = s };
}

static struct expr_value from_json(const cJSON *v)
{
	if (!v || cJSON_IsNull(v))
		return NUL_VALUE;
	if (cJSON_IsBool(v))
		return boolean(cJSON_IsTrue(v));
	if (cJSON_IsNumber(v))
		return number(v->valuedouble);
	if (cJSON_IsString(v))
		return text(v->valuestring);
	if (cJSON_IsArray(v))
		return (struct expr_value){ .kind = EXPR_LIST, .list = v };
	return NUL_VALUE;
}

int expr_true(const struct expr_value *v)
{
	switch (v->kind) {
	case EXPR_BOOL:
		return v->b;
	case EXPR_NUMBER:
		return v->n != 0;
	case EXPR_TEXT:
		return v->text[0] != '\0';
	case EXPR_LIST:
		return cJSON_GetArraySize(v->list) > 0;
	default:
		return 0;
	}
}

/* A text that is a whole number, as a number. */
static int as_number(const struct expr_value *v, double *ret)
{
	char *end;

	if (v->kind == EXPR_NUMBER) {
		*ret = v->n;
		return 1;
	}
	if (v->kind != EXPR_TEXT || !v->text[0])
		return 0;
	*ret = strtod(v->text, &end);
	return *end == '\0' && isfinite(*ret);
}

static int empty(const struct expr_value *v)
{
	return v->kind == EXPR_NULL || (v->kind == EXPR_TEXT && !v->text[0]);
}

static int equal(const struct expr_value *a, const struct expr_value *b)
{
	double x, y;

	if (empty(a) || empty(b))
		return empty(a) && empty(b);
	if ((a->kind == EXPR_NUMBER || b->kind == EXPR_NUMBER) && as_number(a, &x) &&
	    as_number(b, &y))
		return x == y;
	if (a->kind != b->kind)
		return 0;
	if (a->kind == EXPR_BOOL)
		return a->b == b->b;
	if (a->kind == EXPR_TEXT)
		return strcmp(a->text, b->text) == 0;
	return 0; /* lists are not compared */
}

/* <0, 0, >0, or 2 when the two do not order. */
static int order(const struct expr_value *a, const struct expr_value *b)
{
	double x, y;

	if (a->kind == EXPR_NUMBER || b->kind == EXPR_NUMBER) {
		if (!as_number(a, &x) || !as_number(b, &y))
			return 2;
		return (x > y) - (x < y);
	}
	if (a->kind == EXPR_TEXT && b->kind == EXPR_TEXT) {
		int c = strcmp(a->text, b->text);

		return (c > 0) - (c < 0);
	}
	return 2;
}

/* Days since 1970-01-01 of a 'YYYY-MM-DD' text (a proleptic Gregorian
 * count); 0 when it is not one. */
static int day_number(const struct expr_value *v, long *ret)
{
	int y, m, d;
	long era, yoe, doy, doe;
	char tail;

	if (v->kind != EXPR_TEXT || sscanf(v->text, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 ||
	    strlen(v->text) != 10 || m < 1 || m > 12 || d < 1 || d > 31)
		return 0;
	/* Howard Hinnant's days_from_civil. */
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	*ret = era * 146097 + doe - 719468;
	return 1;
}

static struct expr_value eval(const struct env *env, int i)
{
	const struct node *nd = &env->e->node[i];
	struct expr_value a, b;
	double x, y;
	long d1, d2;

	switch (nd->op) {
	case N_NUM:
		return number(nd->n);
	case N_STR:
		return text(nd->s);
	case N_TRUE:
	case N_FALSE:
		return boolean(nd->op == N_TRUE);
	case N_NULL:
		return NUL_VALUE;
	case N_FIELD:
		return from_json(env->lookup ? env->lookup(nd->s, env->ctx) : NULL);
	case N_SELF:
		return from_json(env->self);
	case N_OR:
		a = eval(env, nd->kid[0]);
		return boolean(expr_true(&a) || (b = eval(env, nd->kid[1]), expr_true(&b)));
	case N_AND:
		a = eval(env, nd->kid[0]);
		return boolean(expr_true(&a) && (b = eval(env, nd->kid[1]), expr_true(&b)));
	case N_NOT:
		a = eval(env, nd->kid[0]);
		return boolean(!expr_true(&a));
	case N_IF:
		a = eval(env, nd->kid[0]);
		return eval(env, expr_true(&a) ? nd->kid[1] : nd->kid[2]);
	case N_COALESCE:
		a = eval(env, nd->kid[0]);
		return empty(&a) ? eval(env, nd->kid[1]) : a;
	default:
		break;
	}
	/* today() has no operand; the unary ones no second. */
	a = nd->kid[0] >= 0 ? eval(env, nd->kid[0]) : NUL_VALUE;
	b = nd->kid[1] >= 0 ? eval(env, nd->kid[1]) : NUL_VALUE;
	switch (nd->op) {
	case N_EQ:
		return boolean(equal(&a, &b));
	case N_NE:
		return boolean(!equal(&a, &b));
	case N_LT:
		return boolean(order(&a, &b) == -1);
	case N_LE: {
		int c = order(&a, &b);

		return boolean(c == -1 || c == 0);
	}
	case N_GT:
		return boolean(order(&a, &b) == 1);
	case N_GE: {
		int c = order(&a, &b);

		return boolean(c == 1 || c == 0);
	}
	case N_NEG:
		return as_number(&a, &x) ? number(-x) : NUL_VALUE;
	case N_INT:
		return as_number(&a, &x) ? number(trunc(x)) : NUL_VALUE;
	case N_ROUND:
		return as_number(&a, &x) ? number(round(x)) : NUL_VALUE;
	case N_SELECTED: {
		const cJSON *item;

		if (a.kind != EXPR_LIST || b.kind != EXPR_TEXT)
			return boolean(a.kind == EXPR_TEXT && b.kind == EXPR_TEXT &&
				       !strcmp(a.text, b.text));
		cJSON_ArrayForEach(
			item, a.list) if (cJSON_IsString(item) &&
					  !strcmp(item->valuestring, b.text)) return boolean(1);
		return boolean(0);
	}
	case N_COUNT_SELECTED:
		return a.kind == EXPR_LIST ? number(cJSON_GetArraySize(a.list)) : number(0);
	case N_LENGTH: {
		size_t n = 0;

		if (a.kind != EXPR_TEXT)
			return number(0);
		for (const unsigned char *p = (const unsigned char *)a.text; *p; p++)
			n += (*p & 0xC0) != 0x80;
		return number((double)n);
	}
	case N_TODAY:
		return env->today ? text(env->today) : NUL_VALUE;
	case N_CHOICE:
		if (a.kind != EXPR_TEXT)
			return NUL_VALUE;
		return from_json(cJSON_GetObjectItemCaseSensitive(env->choice, a.text));
	case N_DAYS:
		if (!day_number(&a, &d1) || !day_number(&b, &d2))
			return NUL_VALUE;
		return number((double)(d2 - d1));
	default:
		break;
	}
	if (!as_number(&a, &x) || !as_number(&b, &y))
		return NUL_VALUE;
	switch (nd->op) {
	case N_ADD:
		return number(x + y);
	case N_SUB:
		return number(x - y);
	case N_MUL:
		return number(x * y);
	case N_DIV:
		return y == 0 ? NUL_VALUE : number(x / y);
	case N_MOD:
		return y == 0 ? NUL_VALUE : number(fmod(x, y));
	default:
		return NUL_VALUE;
	}
}

struct expr_value expr_eval(const struct expr *e, expr_lookup_fn lookup, void *ctx,
			    const cJSON *self, const char *today)
{
	return expr_eval_choice(e, lookup, ctx, self, NULL, today);
}

struct expr_value expr_eval_choice(const struct expr *e, expr_lookup_fn lookup, void *ctx,
				   const cJSON *self, const cJSON *data, const char *today)
{
	struct env env = { e, lookup, ctx, self, data, today };

	return eval(&env, e->root);
}
