/* cmd_records.c - beneficiary, visit and import (agent/cmd.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "agent/attach.h"
#include "agent/cmd.h"
#include "agent/csvimport.h"
#include "agent/devforms.h"
#include "agent/records.h"
#include "sync/form.h"
#include "sync/formsrc.h"
#include "sync/uuid.h"

/* ---- record commands -------------------------------------------------- */

/* The files a command kept for its attachment fields before it wrote
 * its record: forgotten again when the record is refused. */
#define NEW_FILES_MAX 8
struct new_files {
	char hex[NEW_FILES_MAX][ATTACH_HEX + 1];
	size_t n;
};

/* FIELD=@PATH of an attachment field: keep the file (agent/attach.h),
 * and its reference is the value. */
static int attachment_from_arg(struct cli *c, struct store *s, const struct form *f,
			       const char *name, const char *path, struct new_files *nf,
			       cJSON **ret, struct fs_error *err)
{
	FILE *fp = NULL;
	int r, added = 0;

	if (nf->n == NEW_FILES_MAX)
		return fs_error_set(err, -FS_ELIMIT, "at most %d files in one command",
				    NEW_FILES_MAX);
	if ((r = cmd_open_input(c, path, &fp, err)) < 0)
		return r;
	r = attach_store(s, f, name, fp, path, 0, ret, &added, err);
	fclose(fp);
	if (r == 0 && added)
		memcpy(nf->hex[nf->n++],
		       cJSON_GetObjectItemCaseSensitive(*ret, "sha256")->valuestring,
		       ATTACH_HEX + 1);
	return r;
}

/* Parse FIELD=VALUE arguments into a JSON object of typed values; an
 * attachment field takes FIELD=@PATH, a file kept in the store. */
static int fields_from_args(struct cli *c, struct store *s, const struct form *f, int argc,
			    char **argv, cJSON **ret, struct new_files *nf, struct fs_error *err)
{
	cJSON *o = cJSON_CreateObject();
	int r = 0;

	if (!o)
		return fs_error_set(err, -ENOMEM, "out of memory");
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '='), name[FORM_MAX_NAME + 1];
		const char *file = cmd_record_file_arg(argv[i]);
		cJSON *v = NULL;
		size_t len;
		int idx;

		if (!eq || eq == argv[i]) {
			r = fs_error_set(err, -FS_EUSAGE, "argument %d: expected FIELD=VALUE",
					 i + 1);
			goto out;
		}
		len = (size_t)(eq - argv[i]);
		if (len > FORM_MAX_NAME) {
			r = fs_error_set(err, -FS_EVALID, "argument %d: field name too long",
					 i + 1);
			goto out;
		}
		memcpy(name, argv[i], len);
		name[len] = '\0';
		if (cJSON_GetObjectItemCaseSensitive(o, name)) {
			r = fs_error_set(err, -FS_EUSAGE, "field '%s' given twice", name);
			goto out;
		}
		idx = form_field_index(f, name);
		if (file && idx >= 0 && form_field_type(f, (size_t)idx) == FORM_ATTACHMENT)
			r = attachment_from_arg(c, s, f, name, file, nf, &v, err);
		else
			r = form_value_from_text(f, name, eq + 1, &v, err);
		if (r < 0)
			goto out;
		if (!cJSON_AddItemToObject(o, name, v)) {
			cJSON_Delete(v);
			r = fs_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	*ret = o;
	return 0;
out:
	cJSON_Delete(o);
	return r;
}

#define JSON_INPUT_MAX (1024 * 1024)

static int fields_from_json(const struct cli *c, const char *path, cJSON **ret,
			    struct fs_error *err)
{
	FILE *fp = NULL;
	char *buf = NULL;
	size_t n = 0;
	cJSON *o;
	int r;

	if ((r = cmd_open_input(c, path, &fp, err)) < 0)
		return r;
	buf = malloc(JSON_INPUT_MAX + 1);
	if (!buf) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	n = fread(buf, 1, JSON_INPUT_MAX + 1, fp);
	if (ferror(fp)) {
		r = fs_error_set(err, -EIO, "read %s: read error", path);
		goto out;
	}
	if (n > JSON_INPUT_MAX) {
		r = fs_error_set(err, -FS_ELIMIT, "read %s: more than %d bytes", path,
				 JSON_INPUT_MAX);
		goto out;
	}
	o = cJSON_ParseWithLength(buf, n);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		r = fs_error_set(err, -FS_EVALID, "read %s: not a JSON object", path);
		goto out;
	}
	*ret = o;
out:
	free(buf);
	fclose(fp);
	return r;
}

static const char record_usage[] =
	"Usage: fieldsync %1$s add FIELD=VALUE... | add --json FILE|-\n"
	"       fieldsync %1$s list [--json]\n"
	"       fieldsync %1$s show ID [--json]\n"
	"       fieldsync %1$s edit ID FIELD=VALUE...   (FIELD= clears a field)\n"
	"       fieldsync %1$s delete ID\n"
	"\n"
	"add prints the new record's id as the last line of standard output.\n"
	"--json lists records as JSON Lines, one object per line.\n"
	"Fields and their allowed values come from the %3$s form in\n"
	"%2$s.\n";

/* Text of one field for human output: strings bare, the rest as JSON. */
static void print_value(FILE *out, const cJSON *v)
{
	char *text;

	if (cJSON_IsString(v)) {
		fputs(v->valuestring, out);
		return;
	}
	text = cJSON_PrintUnformatted(v);
	if (text)
		fputs(text, out);
	cJSON_free(text);
}

struct list_ctx {
	const struct form *f;
	FILE *out;
	int json;
};

static int print_record(const cJSON *rec, void *data)
{
	const struct list_ctx *lc = data;
	const cJSON *fields = cJSON_GetObjectItemCaseSensitive(rec, "fields");
	char *text;

	if (lc->json) {
		text = cJSON_PrintUnformatted(rec);
		if (!text)
			return -ENOMEM;
		fprintf(lc->out, "%s\n", text);
		cJSON_free(text);
		return 0;
	}
	fputs(cJSON_GetObjectItemCaseSensitive(rec, "id")->valuestring, lc->out);
	for (size_t i = 0; i < form_field_count(lc->f) && i < 4; i++) {
		const cJSON *v =
			cJSON_GetObjectItemCaseSensitive(fields, form_field_name(lc->f, i));

		fputc('\t', lc->out);
		if (v)
			print_value(lc->out, v);
	}
	fputc('\n', lc->out);
	return 0;
}

static void print_record_long(FILE *out, const struct form *f, const cJSON *rec)
{
	const cJSON *fields = cJSON_GetObjectItemCaseSensitive(rec, "fields");
	static const char *const meta[] = { "id",      "collection", "created",
					    "updated", "author",     "updated_by" };

	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++)
		fprintf(out, "%-16s %s\n", meta[i],
			cJSON_GetObjectItemCaseSensitive(rec, meta[i])->valuestring);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "deleted")))
		fprintf(out, "%-16s yes\n", "deleted");
	for (size_t i = 0; i < form_field_count(f); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, form_field_name(f, i));

		if (!v)
			continue;
		fprintf(out, "%-16s ", form_field_name(f, i));
		print_value(out, v);
		fputc('\n', out);
	}
}

/* Run one write in its own transaction. */
static int write_record(struct cli *c, struct store *s, const struct form *f, const char *verb,
			const char *id, const cJSON *fields, char new_id[UUID_TEXT_LEN + 1],
			struct fs_error *err)
{
	int r = store_begin_local(s, err);

	if (r < 0)
		return r;
	if (!strcmp(verb, "add"))
		r = records_add(s, f, fields, NULL, new_id, err);
	else if (!strcmp(verb, "edit"))
		r = records_edit(s, f, id, fields, err);
	else
		r = records_delete(s, f, id, err);
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	if ((r = store_commit(s, err)) == 0)
		c->wrote = 1;
	return r;
}

const struct opts_spec cmd_record_options[] = { { "json", OPTS_OPTIONAL_VALUE }, { NULL, 0 } };
enum { OPT_JSON };

static int verb_writes(const char *verb)
{
	return !strcmp(verb, "add") || !strcmp(verb, "edit") || !strcmp(verb, "delete");
}

const char *cmd_record_file_arg(const char *arg)
{
	const char *eq = strchr(arg, '=');

	return eq && eq[1] == '@' ? eq + 2 : NULL;
}

/* A write that keeps files (FIELD=@PATH) reads, hashes and encrypts
 * files of any size: in the agent, on the worker thread, not its loop. */
unsigned cmd_record_flags(const struct opts *o)
{
	unsigned flags = 0;

	if (o->nargs == 0 || !verb_writes(o->args[0]))
		return 0;
	flags = CMD_WRITES;
	for (int i = 1; i < o->nargs; i++)
		if (cmd_record_file_arg(o->args[i]))
			flags |= CMD_RUNS_LONG;
	return flags;
}

int cmd_record(struct cli *c, const struct command_call *call)
{
	const char *noun = call->cmd->name;
	const char *collection = !strcmp(noun, "visit") ? "visits" : "beneficiaries";
	const char *json_path = call->o.value[OPT_JSON], *verb;
	char new_id[UUID_TEXT_LEN + 1], tok[FS_TOKEN_MAX + 3];
	int json = json_path != NULL, r, nargs = call->o.nargs - 1;
	char **argv = call->o.args + 1;
	struct fs_error err = { 0 };
	struct form *f = NULL;
	struct store *s = NULL;
	cJSON *fields = NULL, *rec = NULL;
	struct new_files nf = { .n = 0 };

	if (call->o.help || call->o.nargs == 0) {
		fprintf(c->out, record_usage, noun, formsrc_describe(c->cfg.forms_dir), collection);
		return call->o.help ? EXIT_OK : EXIT_USAGE;
	}
	verb = call->o.args[0];
	if (json_path && !json_path[0])
		json_path = NULL; /* a bare --json */
	/* "add --json FILE": an optional value binds only as --json=FILE,
	 * so take the lone non-FIELD=VALUE argument. */
	if (!strcmp(verb, "add") && json && !json_path && nargs == 1 && !strchr(argv[0], '=')) {
		json_path = argv[0];
		nargs = 0;
	}
	if (!strcmp(verb, "add")) {
		if (json_path ? nargs != 0 : (nargs == 0 || json))
			return usage_error(noun, "add takes FIELD=VALUE... or --json=FILE");
	} else if (!strcmp(verb, "list")) {
		if (nargs != 0 || json_path)
			return usage_error(noun, "list takes no arguments but --json");
	} else if (!strcmp(verb, "show") || !strcmp(verb, "delete")) {
		if (nargs != 1 || json_path || (json && !strcmp(verb, "delete")))
			return usage_error(noun, "%s takes one ID", verb);
	} else if (!strcmp(verb, "edit")) {
		if (nargs < 2 || json)
			return usage_error(noun, "edit takes ID FIELD=VALUE...");
	} else {
		return usage_error(noun, "unknown subcommand %s", fs_error_token(verb, tok));
	}
	/* The store first: it holds HQ's form, when HQ has sent one. */
	if ((r = cmd_open_store(c, &s, &err)) < 0 ||
	    (r = devforms_load(s, c->cfg.forms_dir, collection, &f, &err)) < 0)
		goto fail;
	if (!strcmp(verb, "add")) {
		r = json_path ? fields_from_json(c, json_path, &fields, &err)
			      : fields_from_args(c, s, f, nargs, argv, &fields, &nf, &err);
		/* A new record takes the form's defaults for what it lacks,
		 * as a form begun in the field app does; an import does not. */
		if (r == 0 && cJSON_IsObject(fields))
			r = form_apply_defaults(f, fields, &err);
	} else if (!strcmp(verb, "edit")) {
		r = fields_from_args(c, s, f, nargs - 1, argv + 1, &fields, &nf, &err);
	}
	if (r < 0)
		goto fail;
	if (!strcmp(verb, "list")) {
		struct list_ctx lc = { .f = f, .out = c->out, .json = json };

		r = records_list(s, f, print_record, &lc, &err);
	} else if (!strcmp(verb, "show")) {
		r = records_get(s, f, argv[0], &rec, &err);
		if (r == 0 && json)
			print_record(rec, &(struct list_ctx){ .f = f, .out = c->out, .json = 1 });
		else if (r == 0)
			print_record_long(c->out, f, rec);
	} else {
		r = write_record(c, s, f, verb, nargs ? argv[0] : NULL, fields, new_id, &err);
		if (r == 0 && !strcmp(verb, "add"))
			fprintf(c->out, "%s\n", new_id);
	}
	if (r < 0)
		goto fail;
	r = EXIT_OK;
	goto out;
fail:
	/* Files kept for a record that was not written go again. */
	for (size_t i = 0; i < nf.n; i++) {
		struct fs_error ferr = { 0 };

		if (attach_forget(s, nf.hex[i], &ferr) < 0)
			fprintf(c->err, "fieldsync: %s\n", ferr.msg);
	}
	r = fail(&err);
out:
	cJSON_Delete(rec);
	cJSON_Delete(fields);
	cmd_release_store(c, s);
	form_free(f);
	return r;
}

/* ---- attachments -------------------------------------------------------- */

int cmd_attachment(struct cli *c, const struct command_call *call)
{
	struct fs_error err = { 0 };
	struct store *s = NULL;
	int r;

	if (call->o.help) {
		PUTS("Usage: fieldsync attachment get HASH\n"
		     "Write the file attached to a record (its \"sha256\" in the record) to\n"
		     "standard output, checked against its hash.  Files are attached with\n"
		     "FIELD=@PATH on a form's attachment field, and kept encrypted in the\n"
		     "store; redirect the output to a file you may keep.");
		return EXIT_OK;
	}
	if (call->o.nargs != 2 || strcmp(call->o.args[0], "get"))
		return usage_error("attachment", "expected get HASH");
	if ((r = cmd_open_store(c, &s, &err)) < 0)
		return fail(&err);
	r = attach_write(s, call->o.args[1], c->out, &err);
	cmd_release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}

/* ---- import ----------------------------------------------------------- */

static void import_progress(unsigned long long rows, unsigned long long done,
			    unsigned long long total, void *ctx)
{
	struct cli *c = ctx;

	fprintf(c->err, "\rimporting: %3llu%%  %llu rows", total ? done * 100 / total : 100, rows);
	fflush(c->err);
}

static void import_row_error(unsigned long long line, const struct fs_error *e, void *ctx)
{
	struct cli *c = ctx;

	fprintf(c->err, "fieldsync: import: line %llu: %s\n", line, e->msg);
}

int cmd_import(struct cli *c, const struct command_call *call)
{
	static const char usage[] =
		"Usage: fieldsync import beneficiaries|visits FILE.csv\n"
		"Import records from CSV in one transaction: all rows or none.\n"
		"The header row names form fields; an optional 'id' column keeps the\n"
		"given UUIDs.  Rejected rows are reported with their line numbers.\n";
	struct csvimport_hooks hooks = { .row_error = import_row_error,
					 .ctx = c,
					 .cancel = c->cancel };
	char tok[FS_TOKEN_MAX + 3];
	unsigned long long rows = 0;
	const char *collection, *path;
	struct fs_error err = { 0 };
	struct store *s = NULL;
	struct form *f = NULL;
	FILE *fp = NULL;
	int r, tty = !c->in_agent && isatty(STDERR_FILENO);

	if (call->o.help) {
		fputs(usage, c->out);
		return EXIT_OK;
	}
	if (call->o.nargs != 2)
		return usage_error("import", "expected a collection and a CSV file");
	collection = call->o.args[0];
	path = call->o.args[1];
	if (strcmp(collection, "beneficiaries") && strcmp(collection, "visits"))
		return usage_error("import", "unknown collection %s",
				   fs_error_token(collection, tok));
	if (tty)
		hooks.progress = import_progress;
	if ((r = cmd_open_input(c, path, &fp, &err)) < 0 || (r = cmd_open_store(c, &s, &err)) < 0 ||
	    (r = devforms_load(s, c->cfg.forms_dir, collection, &f, &err)) < 0)
		goto out;
	r = csvimport_run(s, f, fp, path, &hooks, &rows, &err);
	if (tty && hooks.progress)
		fputc('\n', c->err);
	if (r == 0) {
		c->wrote = 1;
		fprintf(c->out, "imported %llu %s\n", rows, collection);
	}
out:
	if (fp)
		fclose(fp);
	cmd_release_store(c, s);
	form_free(f);
	return r < 0 ? fail(&err) : EXIT_OK;
}
