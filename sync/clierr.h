/* clierr.h - how both command-line programs end: fieldsync's and
 * fieldsync-hq's exit statuses, and their two ways of failing.
 *
 * A failure prints "PROGRAM: what failed, the object and why" (the
 * fs_error's message) and ends with its status; a usage error prints
 * "PROGRAM CMD: why" and a pointer to --help, and ends with EXIT_USAGE.
 * Messages go to the stream the caller gives (a client's, in the
 * agent); they never carry a secret or a field value, by the rule every
 * fs_error follows.  Thread-safe as stdio is.
 */
#ifndef FS_CLIERR_H
#define FS_CLIERR_H

#include <stdarg.h>
#include <stdio.h>

#include "crypto/fserr.h"

/* Exit statuses: fs_exit_code() in crypto/fserr.h maps errors to them. */
enum exit_code {
	EXIT_OK = FS_EXIT_OK,
	EXIT_USAGE = FS_EXIT_USAGE,
	EXIT_DATA = FS_EXIT_DATA,
	EXIT_KEY = FS_EXIT_KEY,
	EXIT_IO = FS_EXIT_IO,
};

/* Print e as PROGRAM's failure. */
void clierr_print(FILE *f, const char *program, const struct fs_error *e);
/* The same, and the exit status its code calls for (fs_exit_code). */
int clierr_fail(FILE *f, const char *program, const struct fs_error *e);

/* Print a usage error of PROGRAM (and its command cmd, or NULL); returns
 * EXIT_USAGE. */
int clierr_usage(FILE *f, const char *program, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int clierr_usagev(FILE *f, const char *program, const char *cmd, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

#endif
