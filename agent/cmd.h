/* cmd.h - fieldsync's commands: one table, options parsed before
 * dispatch, and what the command files share.
 *
 * agent/cmd.c holds the one table that names every command with its
 * flags, and parses a command's options (sync/opts.h) before anything
 * runs it: the CLI (agent/cli.c) and the agent (agent/daemon.c) decide
 * from the flags where it runs.  Each family of commands has its own
 * file: cmd_records.c (beneficiary, visit, import), cmd_sync.c (enroll,
 * sync, pull), cmd_keys.c (init, keygen, passwd), cmd_status.c (status,
 * check) and cmd_log.c (log, conflicts, forms).
 *
 * A command's run function gets the parsed call and never looks at
 * getopt's globals, so the agent may run one on its worker thread while
 * its loop parses the next.  It writes to c->out and c->err only, and
 * returns an exit status (sync/clierr.h).
 */
#ifndef FS_CMD_H
#define FS_CMD_H

#include <stdio.h>

#include "agent/attempt.h"
#include "agent/commands.h"
#include "agent/store.h"
#include "sync/clierr.h"
#include "sync/opts.h"

/* What the agent and the CLI know about a command before it runs.  One
 * table in agent/cmd.c gives each command its flags. */
enum command_flag {
	CMD_FORWARDABLE = 1 << 0,    /* a client may hand it to the agent */
	CMD_NO_CONFIG = 1 << 1,	     /* runs before the configuration is read */
	CMD_TALKS_TO_HQ = 1 << 2,    /* in the agent: on the worker thread */
	CMD_RUNS_LONG = 1 << 3,	     /* a file of any size: on the worker thread too,
					and lock or SIGTERM cancel it */
	CMD_WRITES = 1 << 4,	     /* writes records: refused while an import runs */
	CMD_STARTS_ATTEMPT = 1 << 5, /* sync, pull: the agent runs an attempt and
					answers when it ends */
	CMD_ENROLLS = 1 << 6,	     /* done, the agent pushes and pulls at once */
};

/* The flags of the command named name; 0 when there is none (or it has
 * none: init, passwd). */
unsigned cmd_flags(const char *name);

struct command_call;

/* Find argv[0] and parse its options (sync/opts.h: no global state, so
 * the agent parses on its loop what it may run on its worker thread).
 * Returns 0 with *ret set (free it with cmd_call_free()), or the exit
 * status with *ret NULL and the usage error written to c->err: an
 * unknown command or option, or, in the agent (c->in_agent), a command
 * that may not run there. */
int cmd_parse(struct cli *c, int argc, char **argv, struct command_call **ret) FS_WUR;

/* The command's flags, with those its options add (status --verify-hq
 * talks to HQ; beneficiary add writes).  Help needs nothing. */
unsigned cmd_call_flags(const struct command_call *call);
const char *cmd_call_name(const struct command_call *call);

/* Run it; returns the exit status (FS_EXIT_*).  call is not changed, so
 * another thread may run what this one parsed. */
int cmd_call_run(struct cli *c, const struct command_call *call);

/* NULL-safe. */
void cmd_call_free(struct command_call *call);

/* Parse, run and free: one command (argv[0] is its name). */
int cmd_run(struct cli *c, int argc, char **argv);

/* What a parsed sync or pull asks for: *ret_max (0: the configured
 * maximum) and *ret_pull (agent/attempt.h: ATTEMPT_PULL_ALWAYS for sync,
 * ATTEMPT_PULL_ONLY for pull).  Returns -1 to go on, or the exit status
 * when the command is help (printed) or its options are wrong (the usage
 * error written to c). */
int cmd_sync_request(struct cli *c, const struct command_call *call, unsigned long *ret_max,
		     int *ret_pull) FS_WUR;

/* The lines `sync` and `pull` print, whether they ran here or in the
 * agent. */
#define CMD_SYNC_LINE 512
void cmd_sync_format(const struct attempt_result *res, int pull_only, char *out, size_t cap);

/* A command with its options parsed (cmd_parse()). */
struct command_call {
	const struct command *cmd;
	struct opts o; /* o.args: the arguments after the command's name */
};

struct command {
	const char *name;
	int (*run)(struct cli *c, const struct command_call *call);
	const struct opts_spec *options; /* NULL: none but -h */
	unsigned flags;			 /* CMD_* */
	/* Flags that depend on the options (status --verify-hq talks to
	 * HQ; beneficiary add writes, list does not); may be NULL. */
	unsigned (*flags_for)(const struct opts *o);
};

#define fail(e) commands_fail(c, (e))
#define usage_error(...) commands_usage_error(c, __VA_ARGS__)
#define PUTS(text) fprintf(c->out, "%s\n", (text))

/* The store for a command: the agent's, borrowed, or opened here with
 * the configured secret.  Give it back with cmd_release_store(). */
int cmd_open_store(const struct cli *c, struct store **ret, struct fs_error *err) FS_WUR;
void cmd_release_store(const struct cli *c, struct store *s);

/* A file argument for reading: the descriptor the client passed (in the
 * agent), standard input for "-", or the named file.  path must point
 * into the argument vector the client sent (a value of --json=FILE
 * does). */
int cmd_open_input(const struct cli *c, const char *path, FILE **ret, struct fs_error *err) FS_WUR;

/* The commands, by family. */
int cmd_record(struct cli *c, const struct command_call *call);
unsigned cmd_record_flags(const struct opts *o);
/* The PATH of a FIELD=@PATH argument (an '@' right after the first '='),
 * or NULL: the one reading of it for the CLI and the agent. */
const char *cmd_record_file_arg(const char *arg);
int cmd_import(struct cli *c, const struct command_call *call);
int cmd_enroll(struct cli *c, const struct command_call *call);
int cmd_sync(struct cli *c, const struct command_call *call);
int cmd_init(struct cli *c, const struct command_call *call);
int cmd_keygen(struct cli *c, const struct command_call *call);
int cmd_passwd(struct cli *c, const struct command_call *call);
int cmd_status(struct cli *c, const struct command_call *call);
unsigned cmd_status_flags(const struct opts *o);
int cmd_check(struct cli *c, const struct command_call *call);
int cmd_log(struct cli *c, const struct command_call *call);
int cmd_conflicts(struct cli *c, const struct command_call *call);
int cmd_forms(struct cli *c, const struct command_call *call);
int cmd_attachment(struct cli *c, const struct command_call *call);
int cmd_find(struct cli *c, const struct command_call *call);

/* Their options. */
extern const struct opts_spec cmd_record_options[], cmd_sync_options[], cmd_init_options[],
	cmd_passwd_options[], cmd_status_options[], cmd_json_options[], cmd_log_options[],
	cmd_find_options[];

#endif
