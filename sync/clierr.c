/* clierr.c - see clierr.h. */
#include <stdarg.h>

#include "sync/clierr.h"

void clierr_print(FILE *f, const char *program, const struct fs_error *e)
{
	fprintf(f, "%s: %s\n", program, e->msg[0] ? e->msg : fs_strerror(e->code));
}

int clierr_fail(FILE *f, const char *program, const struct fs_error *e)
{
	clierr_print(f, program, e);
	return fs_exit_code(e->code);
}

int clierr_usagev(FILE *f, const char *program, const char *cmd, const char *fmt, va_list ap)
{
	fprintf(f, "%s%s%s: ", program, cmd ? " " : "", cmd ? cmd : "");
	vfprintf(f, fmt, ap);
	fprintf(f, "\nTry '%s %s%s--help'.\n", program, cmd ? cmd : "", cmd ? " " : "");
	return EXIT_USAGE;
}

int clierr_usage(FILE *f, const char *program, const char *cmd, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = clierr_usagev(f, program, cmd, fmt, ap);
	va_end(ap);
	return r;
}
