/* cmd_user.c - `fieldsync-hq user`: the console's accounts (hq/users.h). */
#include "hq/cmd_user.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keyfile.h"
#include "crypto/secmem.h"
#include "hq/hqdb.h"
#include "hq/users.h"
#include "sync/clierr.h"
#include "sync/hlc.h"
#include "sync/prompt.h"

static const char usage[] =
	"Usage: fieldsync-hq user add NAME --role admin|viewer [--municipality A,B]\n"
	"                             [--password-file FILE]\n"
	"       fieldsync-hq user passwd NAME [--password-file FILE]\n"
	"       fieldsync-hq user remove NAME\n"
	"       fieldsync-hq user list [--json]\n"
	"Accounts for HQ's console.  An admin sees every municipality and may act;\n"
	"a viewer sees only the municipalities given (--municipality is needed).\n"
	"The password (12 to 1024 bytes) is read from the first line of FILE, which\n"
	"others may not read, or asked for twice on the terminal without echo.\n"
	"It is stored as an Argon2id hash.  Every change is in the audit log.\n";

enum { OPT_ROLE = 256, OPT_MUNI, OPT_PASSWORD_FILE, OPT_JSON };

static int fail(const struct fs_error *e)
{
	return clierr_fail(stderr, "fieldsync-hq", e);
}

/* The password, from a file or asked twice; secure memory. */
static int read_password(const char *file, char **ret, size_t *ret_len, struct fs_error *err)
{
	char *again = NULL;
	size_t len2 = 0;
	int r;

	if (file)
		return keyfile_read_passphrase(file, ret, ret_len, err);
	if ((r = prompt_passphrase("New password: ", ret, ret_len, err)) < 0) {
		if (r == -ENOTTY)
			fs_error_set(err, r,
				     "no terminal to ask for a password: give --password-file");
		return r;
	}
	if ((r = prompt_passphrase("The same again: ", &again, &len2, err)) < 0)
		goto out;
	if (len2 != *ret_len || sodium_memcmp(again, *ret, len2) != 0)
		r = fs_error_set(err, -FS_EUSAGE, "the two passwords differ");
out:
	secmem_free(again);
	if (r < 0) {
		secmem_free(*ret);
		*ret = NULL;
	}
	return r;
}

int hqcli_user(struct hq_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "role", required_argument, NULL, OPT_ROLE },
		{ "municipality", required_argument, NULL, OPT_MUNI },
		{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role_text = NULL, *munis = NULL, *pwfile = NULL, *verb, *name;
	enum users_role role = USERS_VIEWER;
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	char *password = NULL;
	size_t len = 0;
	int opt, json = 0, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(usage, stdout);
			return EXIT_OK;
		case OPT_ROLE:
			role_text = optarg;
			break;
		case OPT_MUNI:
			munis = optarg;
			break;
		case OPT_PASSWORD_FILE:
			pwfile = optarg;
			break;
		case OPT_JSON:
			json = 1;
			break;
		default:
			return clierr_usage(stderr, "fieldsync-hq", "user", "bad option");
		}
	}
	if (optind >= argc)
		return clierr_usage(stderr, "fieldsync-hq", "user",
				    "expected add, passwd, remove or list");
	verb = argv[optind];
	name = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (!strcmp(verb, "list")) {
		if (name || role_text || munis || pwfile)
			return clierr_usage(stderr, "fieldsync-hq", "user",
					    "list takes only --json");
	} else if (!strcmp(verb, "add") || !strcmp(verb, "passwd") || !strcmp(verb, "remove")) {
		if (!name || optind + 2 != argc || json)
			return clierr_usage(stderr, "fieldsync-hq", "user", "%s takes one NAME",
					    verb);
		if (strcmp(verb, "add") && (role_text || munis))
			return clierr_usage(stderr, "fieldsync-hq", "user",
					    "--role and --municipality are for add");
		if (!strcmp(verb, "remove") && pwfile)
			return clierr_usage(stderr, "fieldsync-hq", "user",
					    "remove takes no password");
		if (!strcmp(verb, "add") && users_role_parse(role_text, &role, &err) < 0)
			return clierr_usage(stderr, "fieldsync-hq", "user",
					    "add needs --role admin or "
					    "viewer");
	} else {
		return clierr_usage(stderr, "fieldsync-hq", "user",
				    "expected add, passwd, remove or "
				    "list");
	}
	/* Ask before connecting: a typo in the password costs no database. */
	if ((!strcmp(verb, "add") || !strcmp(verb, "passwd")) &&
	    (r = read_password(pwfile, &password, &len, &err)) < 0)
		return fail(&err);
	if ((r = hqdb_connect(cfg, &db, &err)) < 0)
		goto out;
	if (!strcmp(verb, "add"))
		r = users_add(db, name, role, munis, password, len, hlc_wall_ms(), &err);
	else if (!strcmp(verb, "passwd"))
		r = users_passwd(db, name, password, len, hlc_wall_ms(), &err);
	else if (!strcmp(verb, "remove"))
		r = users_remove(db, name, hlc_wall_ms(), &err);
	else
		r = users_list(db, json, stdout, &err);
	if (r == 0 && strcmp(verb, "list"))
		printf("%s %s\n",
		       !strcmp(verb, "add")	 ? "added account"
		       : !strcmp(verb, "passwd") ? "changed the password of"
						 : "removed account",
		       name);
out:
	secmem_free(password);
	hqdb_close(db);
	return r < 0 ? fail(&err) : EXIT_OK;
}
