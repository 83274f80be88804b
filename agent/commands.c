/* commands.c - what fieldsync's CLI and the commands share: how a
 * failure is printed and which exit status it gives, the configuration,
 * and the store's secret.  The commands and their table are in
 * agent/cmd.h.
 *
 * Sections: output and exit codes; configuration; secrets.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>

#include "agent/commands.h"
#include "agent/config.h"
#include "agent/keystore.h"
#include "sync/prompt.h"
#include "agent/store.h"
#include "sync/clierr.h"
#include "sync/ini.h"
#include "crypto/secmem.h"

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

int commands_usage_error(struct cli *c, const char *cmd, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = clierr_usagev(c->err, "fieldsync", cmd, fmt, ap);
	va_end(ap);
	return r;
}

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
	"  find [WORDS] [--municipality M]...  search the households, in either script\n"
	"  import beneficiaries|visits FILE.csv\n"
	"  enroll URL TOKEN            register this device with HQ (token from HQ)\n"
	"  sync [--max-changes N]      send pending changes to HQ, then pull\n"
	"  pull                        fetch the merged records of this device's scope\n"
	"  conflicts [--json]          fields HQ found edited concurrently, and which won\n"
	"  forms [--json]              the form each collection is validated with\n"
	"  attachment get HASH         write a file attached to a record to stdout\n"
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

/* ---- configuration -------------------------------------------------------- */

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

/* ---- secrets ---------------------------------------------------------------- */

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
	return commands_secret_from(c->cfg.passphrase_file, c->cfg.key_file, question, 0, ret, err);
}

int commands_secret_from(const char *passphrase_file, const char *key_file, const char *question,
			 int confirm, struct keystore_secret **ret, struct fs_error *err)
{
	if (key_file)
		return keystore_secret_from_key_file(key_file, ret, err);
	if (passphrase_file)
		return keystore_secret_from_passphrase_file(passphrase_file, ret, err);
	return ask(question, confirm, ret, err);
}
