/* refusal.c - how HQ's request handlers say no (hq/refusal.h). */
#include "hq/refusal.h"

#include <stdarg.h>
#include <stdio.h>

int refusal_set(int *status, const char **error, char *message, size_t cap, int http_status,
		const char *code, const char *fmt, ...)
{
	va_list ap;

	*status = http_status;
	*error = code;
	va_start(ap, fmt);
	vsnprintf(message, cap, fmt, ap);
	va_end(ap);
	return 0;
}
