/* fuzz_expr.c - form expressions (sync/expr.h): any text parses or is
 * refused with an error; what parses evaluates, over a record with a
 * value of every kind, without failing. */
#include <stdlib.h>
#include <string.h>

#include "sync/expr.h"
#include "tests/fuzz/fuzz.h"

static cJSON *record;

static const cJSON *lookup(const char *name, void *ctx)
{
	(void)ctx;
	return cJSON_GetObjectItemCaseSensitive(record, name);
}

static int count_ref(const char *name, void *ctx)
{
	(void)name;
	(*(int *)ctx)++;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	record = cJSON_Parse("{\"age\":42,\"full_name\":\"Ђорђевић Драгана\",\"phone\":\"\","
			     "\"vulnerabilities\":[\"elderly\",\"disability\"],\"consent\":true,"
			     "\"visit_date\":\"2026-11-20\",\"notes\":null}");
	return record ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct fs_error err = { 0 };
	struct expr *e = NULL;
	cJSON *self = cJSON_CreateNumber(7);
	int refs = 0;

	if (!text || !self) {
		free(text);
		cJSON_Delete(self);
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	if (expr_parse(text, &e, &err) == 0) {
		struct expr_value v = expr_eval(e, lookup, NULL, self, "2026-12-06");

		(void)expr_true(&v);
		(void)expr_refs(e, count_ref, &refs);
		/* A result that is text points at something still alive. */
		if (v.kind == EXPR_TEXT && strlen(v.text) > size + 64)
			abort();
		expr_free(e);
	} else if (!err.msg[0]) {
		abort(); /* a refusal always says why */
	}
	cJSON_Delete(self);
	free(text);
	return 0;
}
