/* cmd_find.c - `fieldsync find`: the caseload's search (agent/caseload.h)
 * from the command line, the same search the field app asks for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "agent/caseload.h"
#include "agent/cmd.h"

#define fail(e) commands_fail(c, (e))
#define usage_error(...) commands_usage_error(c, __VA_ARGS__)

const struct opts_spec cmd_find_options[] = {
	{ "municipality", OPTS_VALUE }, { "status", OPTS_VALUE },
	{ "visited-from", OPTS_VALUE }, { "visited-to", OPTS_VALUE },
	{ "never-visited", OPTS_FLAG }, { "limit", OPTS_VALUE },
	{ "json", OPTS_FLAG },		{ NULL, 0 },
};
enum { OPT_MUNI, OPT_STATUS, OPT_FROM, OPT_TO, OPT_NEVER, OPT_LIMIT, OPT_JSON };

static const char usage[] =
	"Usage: fieldsync find [WORDS...] [--municipality NAME] [--status STATUS]\n"
	"                      [--visited-from DATE] [--visited-to DATE] [--never-visited]\n"
	"                      [--limit N] [--json]\n"
	"Search the caseload's households.  Every word must appear in one of a\n"
	"household's text values, whatever the case, the diacritics or the\n"
	"script: \"djordjevic\" finds Đorđević and Ђорђевић.  DATE is YYYY-MM-DD:\n"
	"the last visit on or after --visited-from and on or before --visited-to.\n"
	"Prints id, name, municipality, status and last visit per line, then how\n"
	"many matched; --json prints the answer as one JSON object.\n";

/* One household, tab-separated. */
static void print_household(FILE *out, const cJSON *h)
{
	const cJSON *fields = cJSON_GetObjectItemCaseSensitive(h, "fields");
	static const char *const shown[] = { "full_name", "municipality", "status" };
	const cJSON *last = cJSON_GetObjectItemCaseSensitive(h, "last_visit");

	fputs(cJSON_GetObjectItemCaseSensitive(h, "id")->valuestring, out);
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, shown[i]);

		fprintf(out, "\t%s", cJSON_IsString(v) ? v->valuestring : "");
	}
	fprintf(out, "\t%s\n", cJSON_IsString(last) ? last->valuestring : "never visited");
}

int cmd_find(struct cli *c, const struct command_call *call)
{
	const char *const *v = call->o.value;
	struct caseload_query q = {
		.municipality = v[OPT_MUNI],
		.status = v[OPT_STATUS],
		.visited_from = v[OPT_FROM],
		.visited_to = v[OPT_TO],
		.never_visited = v[OPT_NEVER] != NULL,
	};
	struct fs_error err = { 0 };
	struct store *s = NULL;
	cJSON *res = NULL;
	char *words = NULL, *text = NULL, *end;
	size_t len = 0;
	int r;

	if (call->o.help) {
		fputs(usage, c->out);
		return EXIT_OK;
	}
	if (v[OPT_LIMIT]) {
		unsigned long n;

		errno = 0;
		n = strtoul(v[OPT_LIMIT], &end, 10);
		if (errno || *end || !v[OPT_LIMIT][0] || n < 1 || n > CASELOAD_MAX_ROWS)
			return usage_error("find", "--limit must be a number from 1 to %d",
					   CASELOAD_MAX_ROWS);
		q.limit = (unsigned)n;
	}
	for (int i = 0; i < call->o.nargs; i++)
		len += strlen(call->o.args[i]) + 1;
	if (len && !(words = calloc(1, len))) {
		fs_error_set(&err, -ENOMEM, "find: out of memory");
		return fail(&err);
	}
	for (int i = 0; i < call->o.nargs; i++) {
		if (i)
			strcat(words, " ");
		strcat(words, call->o.args[i]);
	}
	q.text = words;
	if ((r = cmd_open_store(c, &s, &err)) < 0 || (r = caseload_search(s, &q, &res, &err)) < 0) {
		r = r == -FS_EUSAGE ? usage_error("find", "%s", err.msg) : fail(&err);
		goto out;
	}
	if (v[OPT_JSON]) {
		if (!(text = cJSON_PrintUnformatted(res))) {
			fs_error_set(&err, -ENOMEM, "find: out of memory");
			r = fail(&err);
			goto out;
		}
		fprintf(c->out, "%s\n", text);
	} else {
		const cJSON *h;

		cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(res, "households"))
			print_household(c->out, h);
		fprintf(c->out, "%d of %.0f households\n",
			cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(res, "households")),
			cJSON_GetObjectItemCaseSensitive(res, "total")->valuedouble);
	}
	r = EXIT_OK;
out:
	if (text) {
		sodium_memzero(text, strlen(text));
		cJSON_free(text);
	}
	if (words) {
		sodium_memzero(words, len);
		free(words);
	}
	cJSON_Delete(res);
	cmd_release_store(c, s);
	return r;
}
