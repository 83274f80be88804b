/* cmd.c - see cmd.h.  Sections: the store and input files; the table;
 * parsing and dispatch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "agent/cmd.h"
#include "agent/keystore.h"

/* ---- the store and input files ----------------------------------------------- */

int cmd_open_store(const struct cli *c, struct store **ret, struct fs_error *err)
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

	r = commands_secret_from(c->cfg.passphrase_file, c->cfg.key_file, "Store passphrase: ", 0,
				 &secret, err);
	if (r < 0)
		return r;
	r = store_open(
		c->cfg.data_dir, secret,
		&(struct store_options){ .ballast_bytes = (uint64_t)c->cfg.disk_reserve_mib << 20,
					 .cache_mib = c->cfg.cache_mib },
		ret, err);
	keystore_secret_free(secret);
	return r;
}

void cmd_release_store(const struct cli *c, struct store *s)
{
	if (s && s != c->store)
		store_close(s);
}

int cmd_open_input(const struct cli *c, const char *path, FILE **ret, struct fs_error *err)
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

/* ---- the table ---------------------------------------------------------------- */

/* Every command, with what the agent and the CLI need to know about it
 * before it runs.  FORWARDABLE: uses the store and needs no new secret
 * (init and passwd make or change the secret; keygen touches no store). */
static const struct command table[] = {
	{ "init", cmd_init, cmd_init_options, 0, NULL },
	{ "keygen", cmd_keygen, NULL, CMD_NO_CONFIG, NULL },
	{ "passwd", cmd_passwd, cmd_passwd_options, 0, NULL },
	{ "beneficiary", cmd_record, cmd_record_options, CMD_FORWARDABLE, cmd_record_flags },
	{ "visit", cmd_record, cmd_record_options, CMD_FORWARDABLE, cmd_record_flags },
	{ "import", cmd_import, NULL, CMD_FORWARDABLE | CMD_RUNS_LONG | CMD_WRITES, NULL },
	{ "enroll", cmd_enroll, NULL, CMD_FORWARDABLE | CMD_TALKS_TO_HQ | CMD_ENROLLS, NULL },
	{ "sync", cmd_sync, cmd_sync_options, CMD_FORWARDABLE | CMD_STARTS_ATTEMPT, NULL },
	{ "pull", cmd_sync, NULL, CMD_FORWARDABLE | CMD_STARTS_ATTEMPT, NULL },
	{ "status", cmd_status, cmd_status_options, CMD_FORWARDABLE, cmd_status_flags },
	{ "check", cmd_check, NULL, CMD_FORWARDABLE, NULL },
	{ "log", cmd_log, cmd_log_options, CMD_FORWARDABLE, NULL },
	{ "conflicts", cmd_conflicts, cmd_json_options, CMD_FORWARDABLE, NULL },
	{ "forms", cmd_forms, cmd_json_options, CMD_FORWARDABLE, NULL },
	{ "find", cmd_find, cmd_find_options, CMD_FORWARDABLE, NULL },
	{ "attachment", cmd_attachment, NULL, CMD_FORWARDABLE, NULL },
};

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcmp(table[i].name, name))
			return &table[i];
	return NULL;
}

unsigned cmd_flags(const char *name)
{
	const struct command *cmd = find(name);

	return cmd ? cmd->flags : 0;
}

/* ---- parsing and dispatch --------------------------------------------------- */

int cmd_parse(struct cli *c, int argc, char **argv, struct command_call **ret)
{
	const struct command *cmd = find(argv[0]);
	char tok[FS_TOKEN_MAX + 3], why[96];
	struct command_call *call;
	int r;

	*ret = NULL;
	if (!cmd)
		return usage_error(NULL, "unknown command %s", fs_error_token(argv[0], tok));
	if (c->in_agent && !(cmd->flags & CMD_FORWARDABLE))
		return usage_error(NULL, "command %s cannot run through the agent", cmd->name);
	if (!(call = calloc(1, sizeof(*call))))
		return usage_error(NULL, "out of memory");
	call->cmd = cmd;
	r = opts_parse(cmd->options, argc - 1, argv + 1, &call->o, why, sizeof(why));
	if (r < 0) {
		free(call);
		return r == -ENOMEM ? usage_error(NULL, "out of memory")
				    : usage_error(cmd->name, "%s", why);
	}
	*ret = call;
	return EXIT_OK;
}

unsigned cmd_call_flags(const struct command_call *call)
{
	unsigned flags = call->cmd->flags;

	/* Help is printed at once, wherever the command would run. */
	if (call->o.help)
		return flags & (CMD_FORWARDABLE | CMD_NO_CONFIG);
	if (call->cmd->flags_for)
		flags |= call->cmd->flags_for(&call->o);
	return flags;
}

const char *cmd_call_name(const struct command_call *call)
{
	return call->cmd->name;
}

int cmd_call_run(struct cli *c, const struct command_call *call)
{
	return call->cmd->run(c, call);
}

void cmd_call_free(struct command_call *call)
{
	if (!call)
		return;
	opts_free(&call->o);
	free(call);
}

int cmd_run(struct cli *c, int argc, char **argv)
{
	struct command_call *call = NULL;
	int r = cmd_parse(c, argc, argv, &call);

	if (call)
		r = cmd_call_run(c, call);
	cmd_call_free(call);
	return r;
}
