/* commands.h - what runs a fieldsync command: its context (struct cli),
 * the configuration, how a failure is printed, and the store's secret.
 * The commands themselves and their table are agent/cmd.h.
 *
 * The CLI (agent/cli.c) runs a command itself, or, when an agent is
 * running, forwards it over the control socket (agent/ctl.h) and the
 * agent runs the same code with the store it holds unlocked.  So there
 * is one implementation of every command, whichever process runs it,
 * and a field worker types no passphrase per command.
 *
 * Output goes to c->out and c->err, never straight to stdout or stderr:
 * inside the agent those are memory streams sent back to the client.
 * Input files named on the command line are opened by the client and
 * passed as descriptors (c->inputs), because the agent runs as another
 * user that cannot, and should not, open a field worker's files.
 *
 * One command at a time per struct cli; commands parse their options
 * without global state (sync/opts.h), so two struct cli may run
 * commands on two threads.
 */
#ifndef FS_COMMANDS_H
#define FS_COMMANDS_H

#include <stdio.h>
#include <cjson/cJSON.h>

#include "agent/config.h"
#include "agent/keystore.h"
#include "agent/store.h"
#include "crypto/fserr.h"

/* A file argument the client opened: argv string -> descriptor. */
struct cli_input {
	const char *arg; /* the argv pointer the command sees */
	int fd;		 /* readable; borrowed */
};

struct cli {
	struct agent_config cfg;	/* file values, then command-line overrides */
	const char *config_path;	/* NULL: default, not required to exist */
	FILE *out, *err;		/* where the command writes; not owned */
	struct store *store;		/* agent: its open store, borrowed; NULL when
					   locked.  CLI: NULL, opened per command */
	int in_agent;			/* running inside the agent for a client */
	const struct cli_input *inputs; /* agent: descriptors for file arguments */
	size_t n_inputs;
	int wrote;		   /* set when a command committed a write */
	const cJSON *agent;	   /* agent: its state for `status`; borrowed */
	const _Atomic int *cancel; /* agent: abandons enroll's HTTP, or an import, when set */
};

/* The global usage text. */
extern const char commands_main_usage[];

/* Load the configuration (c->config_path, $FIELDSYNC_CONFIG or the
 * default) and apply overrides: data dir, passphrase file, key file,
 * forms dir, each NULL when not given. */
int commands_load_config(struct cli *c, char *const overrides[4], struct fs_error *err) FS_WUR;

/* The store secret from the configured key or passphrase file, or asked
 * on the terminal with question. */
int commands_secret(const struct cli *c, const char *question, struct keystore_secret **ret,
		    struct fs_error *err) FS_WUR;

/* The secret from a key file, else a passphrase file, else asked on the
 * terminal with question (twice when confirm). */
int commands_secret_from(const char *passphrase_file, const char *key_file, const char *question,
			 int confirm, struct keystore_secret **ret, struct fs_error *err) FS_WUR;

/* Print e to c->err; returns its exit status. */
int commands_fail(struct cli *c, const struct fs_error *e);
/* The exit status for an error code, HQ's refusals included. */
int commands_exit_code(int code);
int commands_usage_error(struct cli *c, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
