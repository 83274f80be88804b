/* opts.h - command-line options, parsed without global state.
 *
 * getopt keeps its state in globals (optind, optarg), so two threads, or
 * a command parsed while another runs, step on each other.  The agent
 * runs commands for clients on two threads; its commands are parsed here,
 * before they are dispatched (agent/commands.h), into a struct of their
 * own.
 *
 * What it accepts, as GNU getopt_long does for the same table:
 *   --name              a flag, or an optional value left out
 *   --name=VALUE        a value (required or optional)
 *   --name VALUE        a required value
 *   -h, --help          help (every command has it)
 *   --                  the end of options: the rest are arguments
 * Options and arguments may come in any order; "-" alone is an argument
 * (standard input).  Unlike getopt: no abbreviations (--max is not
 * --max-changes) and no short options but -h.
 *
 * Reentrant; the strings in a result point into argv.  Errors: -EINVAL
 * with why naming the option (never its value: it may be a name), or
 * -ENOMEM.
 */
#ifndef FS_OPTS_H
#define FS_OPTS_H

#include <stddef.h>

#include "crypto/fserr.h"

enum opts_kind {
	OPTS_FLAG,	     /* --name */
	OPTS_VALUE,	     /* --name VALUE, --name=VALUE */
	OPTS_OPTIONAL_VALUE, /* --name, --name=VALUE */
};

/* One option; a table ends with a NULL name.  Its index in the table is
 * its index in struct opts' value[]. */
struct opts_spec {
	const char *name; /* without the dashes */
	enum opts_kind kind;
};

#define OPTS_MAX 8 /* options in one table */

struct opts {
	const char *value[OPTS_MAX]; /* NULL: not given; "" a flag, or a bare optional */
	int help;		     /* -h or --help */
	int nargs;
	char **args; /* the arguments, in order; malloc'd (opts_free) */
};

int opts_parse(const struct opts_spec *spec, int argc, char *const *argv, struct opts *ret,
	       char *why, size_t cap) FS_WUR;

void opts_free(struct opts *o);

#endif
