/* commands.c - the fieldsync commands, for the CLI and inside the agent.
 *
 * Sections: output and exit codes; options and configuration; unlocking
 * the store; record commands; import; enroll and sync; init, keygen,
 * passwd, status, check, log; dispatch.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>

#include "agent/commands.h"
#include "agent/config.h"
#include "agent/csvimport.h"
#include "agent/devforms.h"
#include "agent/enroll.h"
#include "agent/hqhistory.h"
#include "agent/keystore.h"
#include "agent/netproc.h"
#include "agent/pack.h"
#include "agent/prompt.h"
#include "agent/pull.h"
#include "agent/push.h"
#include "agent/skew.h"
#include "agent/records.h"
#include "agent/store.h"
#include "agent/synclog.h"
#include "agent/attempt.h"
#include "agent/ballast.h"
#include "sync/clierr.h"
#include "sync/ini.h"
#include "crypto/secmem.h"
#include "sync/changeset.h"
#include "sync/form.h"
#include "sync/formsrc.h"
#include "sync/token.h"

/* ---- output and exit codes -------------------------------------------- */

int commands_fail(struct cli *c, const struct fs_error *e)
{
	clierr_print(c->err, "fieldsync", e);
	return commands_exit_code(e->code);
}

int commands_exit_code(int code)
{
	/* Talking to HQ adds codes (agent/push.h): HQ revoked or refused this
	 * device or a set (-EACCES, -EPERM, -EBADMSG), a data problem, not I/O. */
	return code == -EACCES || code == -EPERM || code == -EBADMSG ? EXIT_DATA
								     : fs_exit_code(code);
}

#define fail(e) commands_fail(c, (e))

int commands_usage_error(struct cli *c, const char *cmd, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = clierr_usagev(c->err, "fieldsync", cmd, fmt, ap);
	va_end(ap);
	return r;
}

#define usage_error(...) commands_usage_error(c, __VA_ARGS__)
#define PUTS(text) fprintf(c->out, "%s\n", (text))

const char commands_main_usage[] =
	"Usage: fieldsync [OPTIONS] COMMAND [ARGS]\n"
	"Record beneficiaries and visits offline in an encrypted store.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE           configuration (default " CONFIG_DEFAULT_PATH ",\n"
	"                              or $FIELDSYNC_CONFIG)\n"
	"      --data-dir DIR          data directory (default " CONFIG_DEFAULT_DATA_DIR ")\n"
	"      --passphrase-file FILE  unlock with the passphrase in FILE\n"
	"      --key-file FILE         unlock with a key file (see keygen)\n"
	"      --forms-dir DIR         form definitions <collection>.json (default: the\n"
	"                              forms built into fieldsync)\n"
	"  -h, --help                  show this help\n"
	"  -V, --version               show the version\n"
	"\n"
	"Commands:\n"
	"  init                        create the device identity and the encrypted store\n"
	"  keygen FILE                 write a new random key file (mode 0600)\n"
	"  passwd                      change the passphrase or key file\n"
	"  beneficiary add|list|show|edit|delete ...\n"
	"  visit add|list|show|edit|delete ...\n"
	"  import beneficiaries|visits FILE.csv\n"
	"  enroll URL TOKEN            register this device with HQ (token from HQ)\n"
	"  sync [--max-changes N]      send pending changes to HQ, then pull\n"
	"  pull                        fetch the merged records of this device's scope\n"
	"  conflicts [--json]          fields HQ found edited concurrently, and which won\n"
	"  forms [--json]              the form each collection is validated with\n"
	"  status [--json]             records, pending changes and the agent's state\n"
	"  log [--json]                the local sync log: each attempt to reach HQ\n"
	"  check                       verify the store's integrity and outbox\n"
	"  agent                       run the background sync agent (systemd runs it)\n"
	"  unlock                      give the running agent the store passphrase\n"
	"  lock                        make the running agent forget the store key\n"
	"\n"
	"When an agent runs, commands go through it and need no passphrase.\n"
	"Otherwise, with no passphrase or key file configured, fieldsync asks on\n"
	"the terminal.\n"
	"Exit status: 0 ok, 1 usage, 2 validation or data, 3 key or crypto, 4 I/O.\n";

/* ---- options and configuration ---------------------------------------- */

enum {
	OPT_DATA_DIR = 256,
	OPT_PASSPHRASE_FILE,
	OPT_KEY_FILE,
	OPT_FORMS_DIR,
	OPT_JSON,
	OPT_KDF,
	OPT_NEW_PASSPHRASE_FILE,
	OPT_NEW_KEY_FILE,
	OPT_MAX_CHANGES,
	OPT_LIMIT
};

int commands_load_config(struct cli *c, char *const overrides[4], struct fs_error *err)
{
	const char *path = c->config_path ? c->config_path : getenv("FIELDSYNC_CONFIG");
	char **slots[4] = { &c->cfg.data_dir, &c->cfg.passphrase_file, &c->cfg.key_file,
			    &c->cfg.forms_dir };
	int r;

	r = config_load(path ? path : CONFIG_DEFAULT_PATH, &c->cfg, err);
	/* The default file is optional; a file the user named is not. */
	if (r == -ENOENT && !path)
		r = 0;
	if (r < 0)
		return r;
	if (overrides[1] && overrides[2])
		return fs_error_set(err, -FS_EUSAGE,
				    "give --passphrase-file or --key-file, not both");
	for (int i = 0; i < 4; i++)
		if (overrides[i] && ini_set(slots[i], overrides[i]) < 0)
			return fs_error_set(err, -ENOMEM, "out of memory");
	/* A secret named on the command line replaces the configured one,
	 * whichever kind that was. */
	if (overrides[1]) {
		free(c->cfg.key_file);
		c->cfg.key_file = NULL;
	} else if (overrides[2]) {
		free(c->cfg.passphrase_file);
		c->cfg.passphrase_file = NULL;
	}
	if (!c->cfg.data_dir && ini_set(&c->cfg.data_dir, CONFIG_DEFAULT_DATA_DIR) < 0)
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (c->cfg.passphrase_file && c->cfg.key_file)
		return fs_error_set(err, -FS_EUSAGE,
				    "both a passphrase file and a key file are "
				    "configured; use one");
	return 0;
}

static int kdf_profile(const struct cli *c, const char *flag, enum pwhash_profile *ret,
		       struct fs_error *err)
{
	const char *name = flag ? flag : c->cfg.kdf_profile ? c->cfg.kdf_profile : "moderate";

	if (pwhash_profile_parse(name, ret) < 0)
		return fs_error_set(err, -FS_EUSAGE,
				    "unknown KDF profile (use interactive, "
				    "moderate or sensitive)");
	return 0;
}

/* ---- unlocking the store ---------------------------------------------- */

static int secret_from(const char *passphrase_file, const char *key_file, const char *question,
		       int confirm, struct keystore_secret **ret, struct fs_error *err);

static int ask(const char *question, int confirm, struct keystore_secret **ret,
	       struct fs_error *err)
{
	char *a = NULL, *b = NULL;
	size_t alen, blen;
	int r;

	if (!isatty(STDIN_FILENO))
		return fs_error_set(err, -FS_EKEY,
				    "no passphrase: use --passphrase-file or "
				    "--key-file, or run on a terminal");
	if ((r = prompt_passphrase(question, &a, &alen, err)) < 0)
		return r;
	if (confirm) {
		r = prompt_passphrase("Repeat it: ", &b, &blen, err);
		if (r == 0 && (alen != blen || memcmp(a, b, alen) != 0))
			r = fs_error_set(err, -FS_EUSAGE, "the passphrases differ");
		if (r == 0 && alen < 8)
			r = fs_error_set(err, -FS_EUSAGE,
					 "a passphrase needs at least 8 characters");
	}
	if (r == 0 && keystore_secret_from_passphrase(a, alen, ret) < 0)
		r = fs_error_set(err, -ENOMEM, "out of secure memory");
	secmem_free(a);
	secmem_free(b);
	return r;
}

int commands_secret(const struct cli *c, const char *question, struct keystore_secret **ret,
		    struct fs_error *err)
{
	return secret_from(c->cfg.passphrase_file, c->cfg.key_file, question, 0, ret, err);
}

static int secret_from(const char *passphrase_file, const char *key_file, const char *question,
		       int confirm, struct keystore_secret **ret, struct fs_error *err)
{
	if (key_file)
		return keystore_secret_from_key_file(key_file, ret, err);
	if (passphrase_file)
		return keystore_secret_from_passphrase_file(passphrase_file, ret, err);
	return ask(question, confirm, ret, err);
}

/* The store for a command: the agent's, borrowed, or opened here.  Give
 * it back with release_store(). */
static int open_store(const struct cli *c, struct store **ret, struct fs_error *err)
{
	struct keystore_secret *secret = NULL;
	int r;

	if (c->in_agent) {
		if (!c->store)
			return fs_error_set(err, -FS_EKEY,
					    "the agent's store is locked; run "
					    "'fieldsync unlock'");
		*ret = c->store;
		return 0;
	}

	r = secret_from(c->cfg.passphrase_file, c->cfg.key_file, "Store passphrase: ", 0, &secret,
			err);
	if (r < 0)
		return r;
	r = store_open(
		c->cfg.data_dir, secret,
		&(struct store_options){ .ballast_bytes = (uint64_t)c->cfg.disk_reserve_mib << 20 },
		ret, err);
	keystore_secret_free(secret);
	return r;
}

static void release_store(const struct cli *c, struct store *s)
{
	if (s && s != c->store)
		store_close(s);
}

/* Open a file argument for reading: the descriptor the client passed
 * (in the agent), standard input for "-", or the named file. */
static int open_input(const struct cli *c, const char *path, FILE **ret, struct fs_error *err)
{
	FILE *fp = NULL;
	struct stat st;

	if (c->in_agent) {
		for (size_t i = 0; i < c->n_inputs; i++) {
			int fd;

			const char *arg = c->inputs[i].arg;

			/* path is the argument or, for --json=FILE, inside it. */
			if (path < arg || path > arg + strlen(arg))
				continue;
			/* A client that is not our CLI could pass a pipe and
			 * never write: the agent reads regular files only (the
			 * CLI copies anything else into a memfd). */
			if (fstat(c->inputs[i].fd, &st) < 0 || !S_ISREG(st.st_mode))
				return fs_error_set(err, -FS_EUSAGE, "read %s: not a regular file",
						    path);
			fd = dup(c->inputs[i].fd);
			fp = fd < 0 ? NULL : fdopen(fd, "r");
			if (!fp) {
				if (fd >= 0)
					close(fd);
				return fs_error_set(err, -errno, "read %s: %s", path,
						    strerror(errno));
			}
			*ret = fp;
			return 0;
		}
		return fs_error_set(err, -FS_EUSAGE, "read %s: the client did not pass this file",
				    path);
	}
	if (!strcmp(path, "-")) {
		int fd = dup(STDIN_FILENO);

		fp = fd < 0 ? NULL : fdopen(fd, "r");
		if (!fp && fd >= 0)
			close(fd);
	} else {
		fp = fopen(path, "re");
	}
	if (!fp)
		return fs_error_set(err, -errno, "read %s: %s", path, strerror(errno));
	*ret = fp;
	return 0;
}

/* ---- record commands -------------------------------------------------- */

/* Parse FIELD=VALUE arguments into a JSON object of typed values. */
static int fields_from_args(const struct form *f, int argc, char **argv, cJSON **ret,
			    struct fs_error *err)
{
	cJSON *o = cJSON_CreateObject();
	int r = 0;

	if (!o)
		return fs_error_set(err, -ENOMEM, "out of memory");
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '='), name[FORM_MAX_NAME + 1];
		cJSON *v = NULL;
		size_t len;

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
		if ((r = form_value_from_text(f, name, eq + 1, &v, err)) < 0)
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

	if ((r = open_input(c, path, &fp, err)) < 0)
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

static int cmd_record(struct cli *c, const char *collection, const char *noun, int argc,
		      char **argv)
{
	static const struct option opts[] = { { "json", optional_argument, NULL, OPT_JSON },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	char new_id[UUID_TEXT_LEN + 1], tok[FS_TOKEN_MAX + 3];
	struct fs_error err = { 0 };
	struct form *f = NULL;
	struct store *s = NULL;
	cJSON *fields = NULL, *rec = NULL;
	const char *verb, *json_path = NULL;
	int json = 0, opt, r, nargs;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(c->out, record_usage, noun, formsrc_describe(c->cfg.forms_dir), collection);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	verb = argv[1];
	optind = 0; /* glibc: 0 re-initialises getopt for a new argument vector */
	while ((opt = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
		if (opt == 'h') {
			fprintf(c->out, record_usage, noun, formsrc_describe(c->cfg.forms_dir),
				collection);
			return EXIT_OK;
		} else if (opt == OPT_JSON) {
			json = 1;
			json_path = optarg;
		} else {
			return usage_error(noun, "bad option");
		}
	}
	argv += 1 + optind;
	nargs = argc - 1 - optind;
	/* "add --json FILE": getopt binds an optional argument only as
	 * --json=FILE, so take the lone non-FIELD=VALUE argument. */
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
	if ((r = open_store(c, &s, &err)) < 0 ||
	    (r = devforms_load(s, c->cfg.forms_dir, collection, &f, &err)) < 0)
		goto fail;
	if (!strcmp(verb, "add"))
		r = json_path ? fields_from_json(c, json_path, &fields, &err)
			      : fields_from_args(f, nargs, argv, &fields, &err);
	else if (!strcmp(verb, "edit"))
		r = fields_from_args(f, nargs - 1, argv + 1, &fields, &err);
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
	r = fail(&err);
out:
	cJSON_Delete(rec);
	cJSON_Delete(fields);
	release_store(c, s);
	form_free(f);
	return r;
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

static int cmd_import(struct cli *c, int argc, char **argv)
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
	struct fs_error err = { 0 };
	struct store *s = NULL;
	struct form *f = NULL;
	FILE *fp = NULL;
	int r, tty = !c->in_agent && isatty(STDERR_FILENO);

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, c->out);
		return EXIT_OK;
	}
	if (argc != 3)
		return usage_error("import", "expected a collection and a CSV file");
	if (strcmp(argv[1], "beneficiaries") && strcmp(argv[1], "visits"))
		return usage_error("import", "unknown collection %s", fs_error_token(argv[1], tok));
	if (tty)
		hooks.progress = import_progress;
	if ((r = open_input(c, argv[2], &fp, &err)) < 0 || (r = open_store(c, &s, &err)) < 0 ||
	    (r = devforms_load(s, c->cfg.forms_dir, argv[1], &f, &err)) < 0)
		goto out;
	r = csvimport_run(s, f, fp, argv[2], &hooks, &rows, &err);
	if (tty && hooks.progress)
		fputc('\n', c->err);
	if (r == 0) {
		c->wrote = 1;
		fprintf(c->out, "imported %llu %s\n", rows, argv[1]);
	}
out:
	if (fp)
		fclose(fp);
	release_store(c, s);
	form_free(f);
	return r < 0 ? fail(&err) : EXIT_OK;
}

/* ---- enroll and sync --------------------------------------------------- */

/* Read a token from standard input into secure memory: its first line. */
static int token_from_stdin(const struct cli *c, const char *arg, char **ret, struct fs_error *err)
{
	char *buf;
	size_t n = 0;
	FILE *fp;
	int ch, r;

	if ((r = open_input(c, arg, &fp, err)) < 0)
		return r;
	/* stdio buffers what it reads; the token is a secret, so no buffer. */
	setvbuf(fp, NULL, _IONBF, 0);
	buf = secmem_alloc(TOKEN_TEXT_MAX + 2);
	if (!buf) {
		fclose(fp);
		return fs_error_set(err, -ENOMEM, "out of secure memory");
	}
	while ((ch = getc(fp)) != EOF && ch != '\n')
		if (n < TOKEN_TEXT_MAX + 1)
			buf[n++] = (char)ch;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	fclose(fp);
	*ret = buf;
	return 0;
}

static int cmd_enroll(struct cli *c, int argc, char **argv)
{
	static const char usage[] =
		"Usage: fieldsync enroll URL TOKEN|-\n"
		"Register this device with HQ using a one-time token from\n"
		"'fieldsync-hq enroll-token' (TOKEN - reads it from standard input).\n"
		"The token names HQ's keys, so none is trusted on first use; a token\n"
		"with a TLS pin also pins HQ's TLS key.  URL is https://..., or\n"
		"http://... on a loopback address.  A device enrols once.\n";
	struct hqlink *t = NULL;
	struct fs_error err = { 0 };
	struct store *s = NULL;
	struct enrolment e;
	char *token = NULL;
	int r;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, c->out);
		return EXIT_OK;
	}
	if (argc != 3)
		return usage_error("enroll", "expected URL and TOKEN");
	if (!strcmp(argv[2], "-"))
		r = token_from_stdin(c, argv[2], &token, &err);
	else
		r = secmem_dup(argv[2], strlen(argv[2]) + 1, (unsigned char **)&token) < 0
			    ? fs_error_set(&err, -ENOMEM, "out of secure memory")
			    : 0;
	/* Keep the token out of /proc/PID/cmdline from here on. */
	sodium_memzero(argv[2], strlen(argv[2]));
	if (r < 0 || (r = open_store(c, &s, &err)) < 0 ||
	    (r = netproc_hqlink(&t, c->cancel, 0, 0, &err)) < 0)
		goto out;
	if ((r = enroll_device(s, argv[1], token, t, &e, &err)) < 0)
		goto out;
	c->wrote = 1;
	fprintf(c->out, "enrolled with HQ at %s: team %s, municipality %s%s\n", e.target.url,
		e.team, e.municipality, e.target.tls_pin[0] ? "; TLS key pinned" : "");
out:
	secmem_free(token);
	hqlink_free(t);
	release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}

static void sync_progress(unsigned long long done, unsigned long long total, void *ctx)
{
	struct cli *c = ctx;

	fprintf(c->err, "\rsending: %llu of %llu change sets", done, total);
	fflush(c->err);
}

static const char pull_usage[] =
	"Usage: fieldsync pull\n"
	"Fetch the merged records of this device's scope from HQ: every\n"
	"down-set after the last one applied, each signed by the HQ key pinned\n"
	"at enrolment and sealed to this device.  A field takes HQ's value when\n"
	"HQ's write is the later one; changes not yet sent are kept and sent.\n"
	"Records that left the scope are removed, unless they have changes HQ\n"
	"has not acknowledged.  `sync` pulls too, after it pushes.\n"
	"\n"
	"HQ's form definitions come the same way; from then on this device\n"
	"validates what it records with HQ's version (see 'fieldsync forms').\n"
	"\n"
	"Prints 'received N down-sets (M changes), K records left the scope',\n"
	"and 'took N form definitions from HQ' when HQ sent any.\n"
	"Exit status: 0 ok, 2 HQ refused (e.g. device revoked), 3 key or crypto\n"
	"(a down-set not signed by HQ's key), 4 I/O (HQ unreachable).\n";

int commands_parse_sync(struct cli *c, int argc, char **argv, unsigned long *ret_max, int *ret_pull,
			int *ret_exit)
{
	static const struct option opts[] = { { "max-changes", required_argument, NULL,
						OPT_MAX_CHANGES },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	static const char usage[] =
		"Usage: fieldsync sync [--max-changes N]\n"
		"Pack pending changes into signed change sets sealed to HQ, then send\n"
		"every unacknowledged set in order.  A set counts as sent only when\n"
		"HQ's receipt verifies with the HQ key pinned at enrolment.  Killed at\n"
		"any moment, the next run resumes without losing or repeating changes.\n"
		"\n"
		"  --max-changes N   at most N changes per change set (1 to 20000,\n"
		"                    default 1000)\n"
		"\n"
		"Then pull what HQ holds for this device's scope (see pull --help).\n"
		"\n"
		"Prints 'sent N change sets (M changes), K quarantined at HQ', and\n"
		"'received N down-sets (M changes), K records left the scope'.\n"
		"Exit status: 0 ok, 2 HQ refused (e.g. device revoked), 3 key or crypto\n"
		"(receipt signature, TLS pin), 4 I/O (HQ unreachable or overloaded).\n";
	unsigned long max = 0;
	char *end;
	int opt;

	*ret_max = 0;
	*ret_pull = ATTEMPT_PULL_ALWAYS;
	if (!strcmp(argv[0], "pull")) {
		*ret_pull = ATTEMPT_PULL_ONLY;
		if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			fputs(pull_usage, c->out);
			*ret_exit = EXIT_OK;
			return -1;
		}
		if (argc != 1) {
			*ret_exit = usage_error("pull", "unexpected argument");
			return -1;
		}
		return 0;
	}
	optind = 0; /* glibc: 0 re-initialises getopt for a new argument vector */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'h') {
			fputs(usage, c->out);
			*ret_exit = EXIT_OK;
			return -1;
		}
		if (opt != OPT_MAX_CHANGES) {
			*ret_exit = usage_error("sync", "bad option");
			return -1;
		}
		errno = 0;
		max = strtoul(optarg, &end, 10);
		if (errno || *end || end == optarg || max < 1 || max > CHANGESET_MAX_CHANGES) {
			*ret_exit = usage_error("sync", "--max-changes takes a number from 1 to %d",
						CHANGESET_MAX_CHANGES);
			return -1;
		}
	}
	if (optind != argc) {
		*ret_exit = usage_error("sync", "unexpected argument");
		return -1;
	}
	*ret_max = max;
	return 0;
}

static int cmd_sync(struct cli *c, int argc, char **argv)
{
	struct attempt_result res;
	struct store *s = NULL;
	unsigned long max = 0;
	int r, code, pull, tty = isatty(STDERR_FILENO);

	if (commands_parse_sync(c, argc, argv, &max, &pull, &code) < 0)
		return code;
	if ((r = open_store(c, &s, &res.err)) < 0)
		return fail(&res.err);
	r = attempt_run(s,
			&(struct attempt_options){ .max_changes = max ? max : c->cfg.max_changes,
						   .connect_timeout_s = c->cfg.connect_timeout,
						   .stall_timeout_s = c->cfg.stall_timeout,
						   .pull = pull,
						   .forms_dir = c->cfg.forms_dir },
			tty ? sync_progress : NULL, c, &res);
	if (tty && res.stats.sets)
		fputc('\n', c->err);
	if (r == 0 || res.pushed) {
		char line[COMMANDS_SYNC_LINE];

		commands_format_sync(&res, pull == ATTEMPT_PULL_ONLY, line, sizeof(line));
		fputs(line, c->out);
	}
	release_store(c, s);
	return r < 0 ? fail(&res.err) : EXIT_OK;
}

void commands_format_sync(const struct attempt_result *res, int pull_only, char *out, size_t cap)
{
	const struct push_stats *st = &res->stats;
	char warning[SKEW_WARNING_MAX];
	int n = 0;

	out[0] = '\0';
	if (!pull_only)
		n = snprintf(out, cap,
			     "sent %llu change sets (%llu changes), %llu quarantined at "
			     "HQ\n",
			     st->sets, st->changes, st->quarantined);
	if (n >= 0 && (size_t)n < cap && res->pulled && res->pull_code == 0)
		n += snprintf(out + n, cap - (size_t)n,
			      "received %llu down-sets (%llu changes), %llu records left the "
			      "scope\n",
			      res->pull.sets, res->pull.changes, res->pull.purged);
	if (n >= 0 && (size_t)n < cap && res->pulled && res->pull_code == 0 && res->pull.forms)
		n += snprintf(out + n, cap - (size_t)n,
			      "took %llu form definitions from HQ (see 'fieldsync forms')\n",
			      res->pull.forms);
	if (n > 0 && (size_t)n < cap && st->clock_checked &&
	    skew_warning(st->clock_skew_ms, warning))
		snprintf(out + n, cap - (size_t)n, "warning: %s\n", warning);
}

/* ---- init, keygen, passwd, status, check ------------------------------ */

static int cmd_init(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = { { "kdf", required_argument, NULL, OPT_KDF },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct keystore_secret *secret = NULL;
	enum pwhash_profile profile;
	struct fs_error err = { 0 };
	const char *kdf = NULL;
	int opt, r;

	optind = 0; /* glibc: 0 re-initialises getopt for a new argument vector */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'h') {
			PUTS("Usage: fieldsync init [--kdf interactive|moderate|sensitive]\n"
			     "Create the device identity and the encrypted store in the data\n"
			     "directory, unlocked by the configured passphrase file or key file,\n"
			     "or by a passphrase asked on the terminal.");
			return EXIT_OK;
		}
		if (opt != OPT_KDF)
			return usage_error("init", "bad option");
		kdf = optarg;
	}
	if (optind != argc)
		return usage_error("init", "unexpected argument");
	if ((r = kdf_profile(c, kdf, &profile, &err)) < 0 ||
	    (r = secret_from(c->cfg.passphrase_file, c->cfg.key_file, "New store passphrase: ", 1,
			     &secret, &err)) < 0 ||
	    (r = store_create(c->cfg.data_dir, secret, profile, NULL, &err)) < 0)
		goto out;
	fprintf(c->out, "created encrypted store in %s\n", c->cfg.data_dir);
out:
	keystore_secret_free(secret);
	return r < 0 ? fail(&err) : EXIT_OK;
}

static int cmd_keygen(struct cli *c, int argc, char **argv)
{
	struct fs_error err = { 0 };

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		PUTS("Usage: fieldsync keygen FILE\n"
		     "Write a new random key file (mode 0600) that can unlock a store with\n"
		     "--key-file or [store] key_file.  Never replaces an existing file.");
		return EXIT_OK;
	}
	if (argc != 2)
		return usage_error("keygen", "expected one FILE");
	if (keystore_keygen(argv[1], &err) < 0)
		return fail(&err);
	fprintf(c->out, "wrote key file %s\n", argv[1]);
	return EXIT_OK;
}

static int cmd_passwd(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "new-passphrase-file", required_argument, NULL, OPT_NEW_PASSPHRASE_FILE },
		{ "new-key-file", required_argument, NULL, OPT_NEW_KEY_FILE },
		{ "kdf", required_argument, NULL, OPT_KDF },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct keystore_secret *old_secret = NULL, *new_secret = NULL;
	const char *new_pass = NULL, *new_key = NULL, *kdf = NULL;
	enum pwhash_profile profile;
	struct fs_error err = { 0 };
	int opt, r;

	optind = 0; /* glibc: 0 re-initialises getopt for a new argument vector */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			PUTS("Usage: fieldsync passwd [--new-passphrase-file FILE | --new-key-file "
			     "FILE]\n"
			     "                        [--kdf interactive|moderate|sensitive]\n"
			     "Re-wrap the store's data key under a new passphrase or key file.\n"
			     "The database itself is not rewritten, so this is instant.  The\n"
			     "current secret comes from the usual options; with no new secret\n"
			     "given, the new passphrase is asked on the terminal.  A backup of\n"
			     "the old store.key still opens the store with the old secret.");
			return EXIT_OK;
		case OPT_NEW_PASSPHRASE_FILE:
			new_pass = optarg;
			break;
		case OPT_NEW_KEY_FILE:
			new_key = optarg;
			break;
		case OPT_KDF:
			kdf = optarg;
			break;
		default:
			return usage_error("passwd", "bad option");
		}
	}
	if (optind != argc || (new_pass && new_key))
		return usage_error("passwd", "give at most one new secret");
	if ((r = kdf_profile(c, kdf, &profile, &err)) < 0 ||
	    (r = secret_from(c->cfg.passphrase_file, c->cfg.key_file, "Current passphrase: ", 0,
			     &old_secret, &err)) < 0 ||
	    (r = secret_from(new_pass, new_key, "New passphrase: ", 1, &new_secret, &err)) < 0 ||
	    (r = store_passwd(c->cfg.data_dir, old_secret, new_secret, profile, &err)) < 0)
		goto out;
	fprintf(c->out, "store key re-wrapped; the old %s no longer opens this store.key\n",
		old_secret->method == KEYSTORE_PASSPHRASE ? "passphrase" : "key file");
out:
	keystore_secret_free(old_secret);
	keystore_secret_free(new_secret);
	return r < 0 ? fail(&err) : EXIT_OK;
}

/* This device's clock against HQ's, as last measured by a push. */
static int status_clock(struct cli *c, struct store *s, cJSON *o, int json, struct fs_error *err)
{
	char text[SKEW_TEXT_MAX], when[HLC_TIME_LEN + 1], warning[SKEW_WARNING_MAX];
	uint64_t at = 0;
	int64_t skew = 0;
	int r, found = 0;

	if ((r = skew_load(s, &skew, &at, &found, err)) < 0)
		return r;
	if (!found)
		return 0;
	hlc_format_time(hlc_from_ms(at), when);
	if (!cJSON_AddNumberToObject(o, "clock_skew_ms", (double)skew) ||
	    !cJSON_AddStringToObject(o, "clock_checked_at", when))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (json)
		return 0;
	skew_text(skew, text);
	fprintf(c->out, "clock       %s (measured %s)\n", text, when);
	if (skew_warning(skew, warning))
		fprintf(c->out, "warning     %s\n", warning);
	return 0;
}

/* Enrolment, change sets and the backlog, for status. */
static int status_sync(struct cli *c, struct store *s, cJSON *o, int json, struct fs_error *err)
{
	unsigned long long pending = 0, acked = 0, changes = 0, bytes = 0;
	char when[HLC_TIME_LEN + 1] = "never";
	struct pull_state ps;
	struct enrolment e;
	cJSON *scope = NULL;
	int r, enrolled;

	r = enroll_load(s, &e, err);
	if (r < 0 && r != -FS_ENOTFOUND)
		return r;
	enrolled = r == 0;
	if ((r = push_count(s, &pending, &acked, err)) < 0 ||
	    (r = push_backlog(s, &changes, &bytes, err)) < 0 || (r = pull_state(s, &ps, err)) < 0)
		return r;
	if (ps.at_ms)
		hlc_format_time((hlc_t)ps.at_ms << 16, when);
	/* HQ's word on the scope, once a down-set told it. */
	if (ps.scope[0] &&
	    (!(scope = cJSON_Parse(ps.scope)) || !cJSON_AddItemToObject(o, "scope", scope))) {
		cJSON_Delete(scope);
		return fs_error_set(err, -ENOMEM, "out of memory");
	}
	if (!cJSON_AddNumberToObject(o, "down_sets_applied", (double)ps.seq) ||
	    !(ps.at_ms ? cJSON_AddStringToObject(o, "last_pull", when)
		       : cJSON_AddNullToObject(o, "last_pull")))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (!cJSON_AddBoolToObject(o, "enrolled", enrolled) ||
	    (enrolled && (!cJSON_AddStringToObject(o, "hq_url", e.target.url) ||
			  !cJSON_AddStringToObject(o, "team", e.team) ||
			  !cJSON_AddStringToObject(o, "municipality", e.municipality))) ||
	    !cJSON_AddNumberToObject(o, "change_sets_pending", (double)pending) ||
	    !cJSON_AddNumberToObject(o, "change_sets_sent", (double)acked) ||
	    !cJSON_AddNumberToObject(o, "pending_changes", (double)changes) ||
	    !cJSON_AddNumberToObject(o, "pending_bytes", (double)bytes))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (json)
		return 0;
	if (enrolled)
		fprintf(c->out, "hq          %s (team %s, %s)\n", e.target.url, e.team,
			e.municipality);
	else
		fprintf(c->out, "hq          not enrolled (fieldsync enroll URL TOKEN)\n");
	fprintf(c->out, "pending     %llu changes, %llu bytes, not yet acknowledged by HQ\n",
		changes, bytes);
	fprintf(c->out, "change sets %llu waiting to be sent, %llu acknowledged by HQ\n", pending,
		acked);
	if (scope) {
		const cJSON *it;

		fprintf(c->out, "scope       ");
		cJSON_ArrayForEach(it, scope)
		{
			fprintf(c->out, "%s%s", it->valuestring, it->next ? ", " : "\n");
		}
	}
	fprintf(c->out, "pulled      %llu down-sets from HQ, the last %s\n",
		(unsigned long long)ps.seq, when);
	return 0;
}

static void print_bytes(char *out, size_t cap, uint64_t n)
{
	if (n >= 10u << 20)
		snprintf(out, cap, "%llu MiB", (unsigned long long)(n >> 20));
	else if (n >= 1u << 20)
		snprintf(out, cap, "%.1f MiB", (double)n / (1u << 20));
	else
		snprintf(out, cap, "%llu KiB", (unsigned long long)(n >> 10));
}

/* The data directory's disk and the room kept on it for delivery. */
static int status_disk(struct cli *c, struct store *s, cJSON *o, int json, struct fs_error *err)
{
	struct ballast_state b;
	char free_text[32], target_text[32], held_text[32];
	int full;

	if (store_room_state(s, &b, err) < 0) {
		/* Not worth failing status for: say what is known. */
		if (!json)
			fprintf(c->out, "disk        unknown: %s\n", err->msg);
		memset(err, 0, sizeof(*err));
		return 0;
	}
	/* Full: the reserve is in use, or short with no room to make it up
	 * (a store that never wrote has no reserve yet, and is not full). */
	full = b.in_use || (b.held < b.target && b.disk_free < b.target - b.held);
	if (!cJSON_AddNumberToObject(o, "disk_free_bytes", (double)b.disk_free) ||
	    !cJSON_AddNumberToObject(o, "disk_reserve_bytes", (double)b.target) ||
	    !cJSON_AddNumberToObject(o, "disk_reserve_held_bytes", (double)b.held) ||
	    !cJSON_AddBoolToObject(o, "disk_reserve_in_use", b.in_use) ||
	    !cJSON_AddBoolToObject(o, "disk_full", full))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (json)
		return 0;
	print_bytes(free_text, sizeof(free_text), b.disk_free);
	print_bytes(target_text, sizeof(target_text), b.target);
	print_bytes(held_text, sizeof(held_text), b.held);
	if (b.in_use)
		fprintf(c->out,
			"disk        full: the %s kept for sending to HQ is in use now; "
			"new records are refused until there is space\n",
			target_text);
	else if (full)
		fprintf(c->out,
			"disk        full: %s free, %s of the %s kept for sending to HQ "
			"held; new records are refused: free some space\n",
			free_text, held_text, target_text);
	else
		fprintf(c->out, "disk        %s free, and %s kept for sending to HQ\n", free_text,
			target_text);
	return 0;
}

/* --verify-hq: HQ's history against the checkpoint this device holds. */
static int status_verify_hq(struct cli *c, struct store *s, cJSON *o, int json,
			    struct fs_error *err)
{
	struct hqlink *t = NULL;
	struct hqhistory_result res;
	struct enrolment e;
	int r;

	if ((r = enroll_load(s, &e, err)) < 0 || (r = netproc_hqlink(&t, c->cancel, 0, 0, err)) < 0)
		return r;
	r = hqhistory_verify(s, &e.target, t, &res, err);
	hqlink_free(t);
	/* HQ's answer also says its time: the way to set the store's clock
	 * back after the wall clock was set right, before recording more. */
	if (r == 0 && res.has_time)
		r = skew_check(s, res.skew_ms, err);
	if (r < 0)
		return r;
	if (!cJSON_AddNumberToObject(o, "hq_checkpoint_size", (double)res.new_size) ||
	    !cJSON_AddBoolToObject(o, "hq_history_consistent", 1))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (!json) {
		if (res.checked)
			fprintf(c->out,
				"hq history  consistent: HQ's signed log of %llu entries "
				"extends the %llu this device saw\n",
				(unsigned long long)res.new_size, (unsigned long long)res.old_size);
		else
			fprintf(c->out, "hq history  first checkpoint held: %llu entries\n",
				(unsigned long long)res.new_size);
	}
	return 0;
}

/* The agent's own state (c->agent), or that no agent answered. */
static void status_agent(struct cli *c, int json, cJSON *o)
{
	static const char *const keys[] = { "last_attempt", "last_success", "next_attempt",
					    "last_error" };
	static const char *const labels[] = { "last try", "succeeded", "next try", "last error" };
	const cJSON *a = c->agent;

	if (json) {
		cJSON *copy = a ? cJSON_Duplicate(a, 1) : cJSON_CreateObject();

		if (copy && !a)
			cJSON_AddBoolToObject(copy, "running", 0);
		if (copy && !cJSON_AddItemToObject(o, "agent", copy))
			cJSON_Delete(copy);
		return;
	}
	if (!a) {
		fprintf(c->out, "agent       not running\n");
		return;
	}
	fprintf(c->out, "agent       running, store %s%s%s\n",
		cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "locked")) ? "locked" : "unlocked",
		cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "pushing")) ? ", pushing now" : "",
		cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "revoked")) ? ", revoked by HQ"
									     : "");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, keys[i]);

		if (cJSON_IsString(v))
			fprintf(c->out, "%-11s %s\n", labels[i], v->valuestring);
	}
}

static int cmd_status(struct cli *c, int argc, char **argv)
{
	static const char *const collections[] = { "beneficiaries", "visits" };
	struct fs_error err = { 0 };
	struct store *s = NULL;
	cJSON *o = NULL;
	int json = 0, verify = 0, r = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--verify-hq")) {
			verify = 1;
			continue;
		}
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			PUTS("Usage: fieldsync status [--json] [--verify-hq]\n"
			     "Show this device's id, its enrolment with HQ, per collection live\n"
			     "and deleted records and changes not yet sent, the changes and bytes\n"
			     "HQ has not acknowledged, and the agent: whether it runs, whether\n"
			     "its store is locked, the last attempt, the last success, the last\n"
			     "error and the next attempt (UTC).\n"
			     "--verify-hq asks HQ for its latest signed audit checkpoint and a "
			     "proof\n"
			     "that it extends the one this device holds; a rewritten HQ history "
			     "is\n"
			     "reported loudly, with exit status 3.  It also measures this "
			     "device's\n"
			     "clock against HQ's: run it right after setting a wrong clock right.");
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--json"))
			return usage_error("status", "unexpected argument");
		json = 1;
	}
	o = cJSON_CreateObject();
	if (!o) {
		r = fs_error_set(&err, -ENOMEM, "out of memory");
		goto out;
	}
	/* A locked agent can still say so, and when it will try again. */
	if (c->in_agent && !c->store) {
		status_agent(c, json, o);
		goto print;
	}
	if ((r = open_store(c, &s, &err)) < 0)
		goto out;
	if (!cJSON_AddStringToObject(o, "device", store_identity(s)->id) ||
	    !cJSON_AddStringToObject(o, "data_dir", c->cfg.data_dir)) {
		r = fs_error_set(&err, -ENOMEM, "out of memory");
		goto out;
	}
	if (!json)
		fprintf(c->out, "device      %s\ndata dir    %s\n", store_identity(s)->id,
			c->cfg.data_dir);
	for (size_t i = 0; i < 2; i++) {
		struct records_stats st;
		cJSON *co;

		if ((r = records_stats(s, collections[i], &st, &err)) < 0)
			goto out;
		co = cJSON_AddObjectToObject(o, collections[i]);
		if (!co || !cJSON_AddNumberToObject(co, "records", (double)st.live) ||
		    !cJSON_AddNumberToObject(co, "deleted", (double)st.deleted) ||
		    !cJSON_AddNumberToObject(co, "pending_changes", (double)st.pending)) {
			r = fs_error_set(&err, -ENOMEM, "out of memory");
			goto out;
		}
		if (!json)
			fprintf(c->out, "%-13s %lld records, %lld deleted, %lld changes pending\n",
				collections[i], st.live, st.deleted, st.pending);
	}
	if ((r = status_sync(c, s, o, json, &err)) < 0 ||
	    (r = status_disk(c, s, o, json, &err)) < 0)
		goto out;
	status_agent(c, json, o);
	if (verify && (r = status_verify_hq(c, s, o, json, &err)) < 0)
		goto out;
	/* After --verify-hq, which measures the clock afresh. */
	if ((r = status_clock(c, s, o, json, &err)) < 0)
		goto out;
print:
	if (json) {
		char *text = cJSON_PrintUnformatted(o);

		if (!text) {
			r = fs_error_set(&err, -ENOMEM, "out of memory");
			goto out;
		}
		PUTS(text);
		cJSON_free(text);
	}
out:
	cJSON_Delete(o);
	release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}

static int cmd_check(struct cli *c, int argc, char **argv)
{
	struct fs_error err = { 0 };
	struct store *s = NULL;
	int r;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		PUTS("Usage: fieldsync check\n"
		     "Decrypt and authenticate every page (PRAGMA integrity_check), and check\n"
		     "that every record matches the outbox changes that produced it.");
		return EXIT_OK;
	}
	if (argc != 1)
		return usage_error("check", "unexpected argument");
	if ((r = open_store(c, &s, &err)) < 0 || (r = store_check(s, &err)) < 0 ||
	    (r = records_verify_outbox(s, &err)) < 0)
		goto out;
	fprintf(c->out, "store ok: every page authenticated, records match their outbox\n");
out:
	release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}

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
			"record %s, field %s\n  device %.8s%s set %s\n  device %.8s%s set "
			"%s\n  kept: %s, the later edit\n",
			cJSON_GetObjectItem(o, "record")->valuestring,
			cJSON_GetObjectItem(o, "field")->valuestring, da,
			strcmp(da, cc->self) ? "" : " (this device)", va, db,
			strcmp(db, cc->self) ? "" : " (this device)", vb, vb);
	cJSON_free(va);
	cJSON_free(vb);
	return va && vb ? 0 : -ENOMEM;
}

static int cmd_conflicts(struct cli *c, int argc, char **argv)
{
	struct conflicts_ctx cc = { .out = c->out };
	struct fs_error err = { 0 };
	struct store *s = NULL;
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			PUTS("Usage: fieldsync conflicts [--json]\n"
			     "List the fields HQ found edited concurrently on records in this\n"
			     "device's scope, as the last pull told it: both devices, both values\n"
			     "and which was kept (the later edit, the same everywhere).  Values\n"
			     "are shown here only; they are never logged.");
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--json"))
			return usage_error("conflicts", "unexpected argument");
		cc.json = 1;
	}
	if ((r = open_store(c, &s, &err)) < 0)
		return fail(&err);
	cc.self = store_identity(s)->id;
	r = pull_conflicts(s, print_conflict, &cc, &err);
	if (r == -ENOMEM)
		r = fs_error_set(&err, r, "out of memory");
	release_store(c, s);
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

static int cmd_forms(struct cli *c, int argc, char **argv)
{
	struct forms_ctx fc = { .out = c->out, .dir = c->cfg.forms_dir };
	struct fs_error err = { 0 };
	struct store *s = NULL;
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
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
		if (strcmp(argv[i], "--json"))
			return usage_error("forms", "unexpected argument");
		fc.json = 1;
	}
	if ((r = open_store(c, &s, &err)) < 0)
		return fail(&err);
	r = devforms_list(s, c->cfg.forms_dir, print_form, &fc, &err);
	release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}

static int cmd_log(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, OPT_JSON },
					      { "limit", required_argument, NULL, OPT_LIMIT },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct log_ctx lc = { .out = c->out };
	struct fs_error err = { 0 };
	struct store *s = NULL;
	unsigned long limit = 50;
	char *end;
	int opt, r;

	optind = 0; /* glibc: 0 re-initialises getopt for a new argument vector */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'h') {
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
		if (opt == OPT_JSON) {
			lc.json = 1;
			continue;
		}
		if (opt != OPT_LIMIT)
			return usage_error("log", "bad option");
		errno = 0;
		limit = strtoul(optarg, &end, 10);
		if (errno || *end || end == optarg || limit > SYNCLOG_KEEP)
			return usage_error("log", "--limit takes a number from 0 to %d",
					   SYNCLOG_KEEP);
	}
	if (optind != argc)
		return usage_error("log", "unexpected argument");
	if ((r = open_store(c, &s, &err)) < 0)
		return fail(&err);
	r = synclog_list(s, (unsigned)limit, print_log_entry, &lc, &err);
	release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}

/* ---- dispatch --------------------------------------------------------- */

/* Commands a client may hand to the agent: those that use the store and
 * need no new secret.  init and passwd make or change the secret; keygen
 * touches no store. */
static const char *const forwardable[] = { "beneficiary", "visit",     "import", "enroll",
					   "sync",	  "pull",      "status", "check",
					   "log",	  "conflicts", "forms" };

int commands_forwardable(const char *cmd)
{
	for (size_t i = 0; i < sizeof(forwardable) / sizeof(forwardable[0]); i++)
		if (!strcmp(cmd, forwardable[i]))
			return 1;
	return 0;
}

int commands_run(struct cli *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	char tok[FS_TOKEN_MAX + 3];

	if (c->in_agent && !commands_forwardable(cmd))
		return usage_error(NULL, "command %s cannot run through the agent",
				   fs_error_token(cmd, tok));
	if (!strcmp(cmd, "init"))
		return cmd_init(c, argc, argv);
	if (!strcmp(cmd, "keygen"))
		return cmd_keygen(c, argc, argv);
	if (!strcmp(cmd, "passwd"))
		return cmd_passwd(c, argc, argv);
	if (!strcmp(cmd, "beneficiary"))
		return cmd_record(c, "beneficiaries", "beneficiary", argc, argv);
	if (!strcmp(cmd, "visit"))
		return cmd_record(c, "visits", "visit", argc, argv);
	if (!strcmp(cmd, "import"))
		return cmd_import(c, argc, argv);
	if (!strcmp(cmd, "enroll"))
		return cmd_enroll(c, argc, argv);
	if (!strcmp(cmd, "sync") || !strcmp(cmd, "pull"))
		return cmd_sync(c, argc, argv);
	if (!strcmp(cmd, "status"))
		return cmd_status(c, argc, argv);
	if (!strcmp(cmd, "check"))
		return cmd_check(c, argc, argv);
	if (!strcmp(cmd, "log"))
		return cmd_log(c, argc, argv);
	if (!strcmp(cmd, "conflicts"))
		return cmd_conflicts(c, argc, argv);
	if (!strcmp(cmd, "forms"))
		return cmd_forms(c, argc, argv);
	return usage_error(NULL, "unknown command %s", fs_error_token(cmd, tok));
}
