/* cmd_keys.c - init, keygen and passwd (agent/cmd.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "agent/cmd.h"
#include "agent/keystore.h"

/* The KDF profile named by flag (NULL: the configured one, or moderate). */
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

const struct opts_spec cmd_init_options[] = { { "kdf", OPTS_VALUE }, { NULL, 0 } };
const struct opts_spec cmd_passwd_options[] = { { "kdf", OPTS_VALUE },
						{ "new-passphrase-file", OPTS_VALUE },
						{ "new-key-file", OPTS_VALUE },
						{ NULL, 0 } };
enum { OPT_KDF, OPT_NEW_PASSPHRASE_FILE, OPT_NEW_KEY_FILE };

int cmd_init(struct cli *c, const struct command_call *call)
{
	struct keystore_secret *secret = NULL;
	enum pwhash_profile profile;
	struct fs_error err = { 0 };
	int r;

	if (call->o.help) {
		PUTS("Usage: fieldsync init [--kdf interactive|moderate|sensitive]\n"
		     "Create the device identity and the encrypted store in the data\n"
		     "directory, unlocked by the configured passphrase file or key file,\n"
		     "or by a passphrase asked on the terminal.");
		return EXIT_OK;
	}
	if (call->o.nargs != 0)
		return usage_error("init", "unexpected argument");
	if ((r = kdf_profile(c, call->o.value[OPT_KDF], &profile, &err)) < 0 ||
	    (r = commands_secret_from(c->cfg.passphrase_file, c->cfg.key_file,
				      "New store passphrase: ", 1, &secret, &err)) < 0 ||
	    (r = store_create(c->cfg.data_dir, secret, profile, NULL, &err)) < 0)
		goto out;
	fprintf(c->out, "created encrypted store in %s\n", c->cfg.data_dir);
out:
	keystore_secret_free(secret);
	return r < 0 ? fail(&err) : EXIT_OK;
}

int cmd_keygen(struct cli *c, const struct command_call *call)
{
	struct fs_error err = { 0 };

	if (call->o.help) {
		PUTS("Usage: fieldsync keygen FILE\n"
		     "Write a new random key file (mode 0600) that can unlock a store with\n"
		     "--key-file or [store] key_file.  Never replaces an existing file.");
		return EXIT_OK;
	}
	if (call->o.nargs != 1)
		return usage_error("keygen", "expected one FILE");
	if (keystore_keygen(call->o.args[0], &err) < 0)
		return fail(&err);
	fprintf(c->out, "wrote key file %s\n", call->o.args[0]);
	return EXIT_OK;
}

int cmd_passwd(struct cli *c, const struct command_call *call)
{
	const char *new_pass = call->o.value[OPT_NEW_PASSPHRASE_FILE];
	const char *new_key = call->o.value[OPT_NEW_KEY_FILE], *kdf = call->o.value[OPT_KDF];
	struct keystore_secret *old_secret = NULL, *new_secret = NULL;
	enum pwhash_profile profile;
	struct fs_error err = { 0 };
	int r;

	if (call->o.help) {
		PUTS("Usage: fieldsync passwd [--new-passphrase-file FILE | --new-key-file FILE]\n"
		     "                        [--kdf interactive|moderate|sensitive]\n"
		     "Re-wrap the store's data key under a new passphrase or key file.\n"
		     "The database itself is not rewritten, so this is instant.  The\n"
		     "current secret comes from the usual options; with no new secret\n"
		     "given, the new passphrase is asked on the terminal.  A backup of\n"
		     "the old store.key still opens the store with the old secret.");
		return EXIT_OK;
	}
	if (call->o.nargs != 0 || (new_pass && new_key))
		return usage_error("passwd", "give at most one new secret");
	if ((r = kdf_profile(c, kdf, &profile, &err)) < 0 ||
	    (r = commands_secret_from(c->cfg.passphrase_file, c->cfg.key_file,
				      "Current passphrase: ", 0, &old_secret, &err)) < 0 ||
	    (r = commands_secret_from(new_pass, new_key, "New passphrase: ", 1, &new_secret,
				      &err)) < 0 ||
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
