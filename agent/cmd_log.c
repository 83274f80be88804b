/* cmd_log.c - log, conflicts and forms (agent/cmd.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "agent/cmd.h"
#include "agent/devforms.h"
#include "agent/pull.h"
#include "agent/synclog.h"
#include "sync/formsrc.h"

struct log_ctx {
	FILE *out;
	int json;
};

static int print_log_entry(const cJSON *e, void *data)
{
	const struct log_ctx *lc = data;
	const cJSON *detail = cJSON_GetObjectItemCaseSensitive(e, "detail");
	const cJSON *repeats = cJSON_GetObjectItemCaseSensitive(e, "repeats");
	const cJSON *last = cJSON_GetObjectItemCaseSensitive(e, "last_at");
	char *text;

	if (lc->json) {
		text = cJSON_PrintUnformatted(e);
		if (!text)
			return -ENOMEM;
		fprintf(lc->out, "%s\n", text);
		cJSON_free(text);
		return 0;
	}
	fprintf(lc->out, "%s  %-5s %-11s %4.0f sets %6.0f changes %9.0f bytes %7.0f ms%s%s\n",
		cJSON_GetObjectItemCaseSensitive(e, "at")->valuestring,
		cJSON_GetObjectItemCaseSensitive(e, "event")->valuestring,
		cJSON_GetObjectItemCaseSensitive(e, "result")->valuestring,
		cJSON_GetObjectItemCaseSensitive(e, "sets")->valuedouble,
		cJSON_GetObjectItemCaseSensitive(e, "changes")->valuedouble,
		cJSON_GetObjectItemCaseSensitive(e, "bytes")->valuedouble,
		cJSON_GetObjectItemCaseSensitive(e, "duration_ms")->valuedouble,
		cJSON_IsString(detail) ? "  " : "",
		cJSON_IsString(detail) ? detail->valuestring : "");
	if (cJSON_IsNumber(repeats) && cJSON_IsString(last))
		fprintf(lc->out, "%24s  ... %.0f attempts like this one, the last at %s\n", "",
			repeats->valuedouble, last->valuestring);
	return 0;
}

struct conflicts_ctx {
	FILE *out;
	const char *self;
	int json;
};

static int print_conflict(const cJSON *o, void *arg)
{
	struct conflicts_ctx *cc = arg;
	const char *da = cJSON_GetObjectItem(o, "device_a")->valuestring,
		   *db = cJSON_GetObjectItem(o, "device_b")->valuestring;
	char *va, *vb;

	if (cc->json) {
		char *text = cJSON_PrintUnformatted(o);

		if (!text)
			return -ENOMEM;
		fprintf(cc->out, "%s\n", text);
		cJSON_free(text);
		return 0;
	}
	va = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "value_a"));
	vb = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "value_b"));
	if (va && vb)
		fprintf(cc->out,
			"record %s, field %s\n  device %.8s%s set %s\n  device %.8s%s set %s\n",
			cJSON_GetObjectItem(o, "record")->valuestring,
			cJSON_GetObjectItem(o, "field")->valuestring, da,
			strcmp(da, cc->self) ? "" : " (this device)", va, db,
			strcmp(db, cc->self) ? "" : " (this device)", vb);
	if (va && vb && cJSON_IsTrue(cJSON_GetObjectItem(o, "superseded")))
		fputs("  settled since: a later write holds the field (HQ's decision or a "
		      "later edit; see the record)\n",
		      cc->out);
	else if (va && vb)
		fprintf(cc->out, "  kept: %s, the later edit\n", vb);
	cJSON_free(va);
	cJSON_free(vb);
	return va && vb ? 0 : -ENOMEM;
}

const struct opts_spec cmd_json_options[] = { { "json", OPTS_FLAG }, { NULL, 0 } };
const struct opts_spec cmd_log_options[] = { { "json", OPTS_FLAG },
					     { "limit", OPTS_VALUE },
					     { NULL, 0 } };
enum { OPT_JSON, OPT_LIMIT };

int cmd_conflicts(struct cli *c, const struct command_call *call)
{
	struct conflicts_ctx cc = { .out = c->out, .json = !!call->o.value[OPT_JSON] };
	struct fs_error err = { 0 };
	struct store *s = NULL;
	int r;

	if (call->o.help) {
		PUTS("Usage: fieldsync conflicts [--json]\n"
		     "List the fields HQ found edited concurrently on records in this\n"
		     "device's scope, as the last pull told it: both devices, both values\n"
		     "and which was kept (the later edit, the same everywhere).  Values\n"
		     "are shown here only; they are never logged.");
		return EXIT_OK;
	}
	if (call->o.nargs != 0)
		return usage_error("conflicts", "unexpected argument");
	if ((r = cmd_open_store(c, &s, &err)) < 0)
		return fail(&err);
	cc.self = store_identity(s)->id;
	r = pull_conflicts(s, print_conflict, &cc, &err);
	if (r == -ENOMEM)
		r = fs_error_set(&err, r, "out of memory");
	cmd_release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}

struct forms_ctx {
	FILE *out;
	const char *dir;
	int json;
};

static int print_form(const char *collection, uint32_t version, int from_hq, void *arg)
{
	struct forms_ctx *fc = arg;

	if (fc->json)
		fprintf(fc->out, "{\"collection\":\"%s\",\"version\":%u,\"from\":\"%s\"}\n",
			collection, version, from_hq ? "hq" : "device");
	else if (from_hq)
		fprintf(fc->out, "%-16s version %u, from HQ\n", collection, version);
	else
		fprintf(fc->out, "%-16s this device's own (%s); HQ has sent none\n", collection,
			formsrc_describe(fc->dir));
	return 0;
}

int cmd_forms(struct cli *c, const struct command_call *call)
{
	struct forms_ctx fc = { .out = c->out,
				.dir = c->cfg.forms_dir,
				.json = !!call->o.value[OPT_JSON] };
	struct fs_error err = { 0 };
	struct store *s = NULL;
	int r;

	if (call->o.help) {
		PUTS("Usage: fieldsync forms [--json]\n"
		     "List the form each collection's records are validated with: HQ's\n"
		     "version, once a pull brought one (signed by the HQ key pinned at\n"
		     "enrolment), else this device's own ([forms] dir, or the built-in\n"
		     "forms).  Every change records the version it was made under, and\n"
		     "HQ checks it against that version.\n"
		     "\n"
		     "  --json   one JSON object per line: collection, version, from\n"
		     "           (\"hq\" or \"device\"; version 0 for the device's own)");
		return EXIT_OK;
	}
	if (call->o.nargs != 0)
		return usage_error("forms", "unexpected argument");
	if ((r = cmd_open_store(c, &s, &err)) < 0)
		return fail(&err);
	r = devforms_list(s, c->cfg.forms_dir, print_form, &fc, &err);
	cmd_release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}

int cmd_log(struct cli *c, const struct command_call *call)
{
	struct log_ctx lc = { .out = c->out, .json = !!call->o.value[OPT_JSON] };
	const char *v = call->o.value[OPT_LIMIT];
	struct fs_error err = { 0 };
	struct store *s = NULL;
	unsigned long limit = 50;
	char *end;
	int r;

	if (call->o.help) {
		PUTS("Usage: fieldsync log [--json] [--limit N]\n"
		     "Show the local sync log, oldest first: each attempt to reach HQ (by\n"
		     "the agent or 'fieldsync sync'), its result, the change sets, "
		     "changes\n"
		     "and bytes HQ acknowledged, how long it took, and why it failed.\n"
		     "Times are UTC.  Results: accepted, unreachable, busy, refused, "
		     "revoked,\n"
		     "key, abandoned, error.\n"
		     "\n"
		     "  --json      one JSON object per line\n"
		     "  --limit N   the newest N attempts (default 50; 0 for all)");
		return EXIT_OK;
	}
	if (v) {
		errno = 0;
		limit = strtoul(v, &end, 10);
		if (errno || *end || end == v || limit > SYNCLOG_KEEP)
			return usage_error("log", "--limit takes a number from 0 to %d",
					   SYNCLOG_KEEP);
	}
	if (call->o.nargs != 0)
		return usage_error("log", "unexpected argument");
	if ((r = cmd_open_store(c, &s, &err)) < 0)
		return fail(&err);
	r = synclog_list(s, (unsigned)limit, print_log_entry, &lc, &err);
	cmd_release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}
