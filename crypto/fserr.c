/* fserr.c - error codes and messages shared by every module. */
#include "crypto/fserr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fs_error_set(struct fs_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int fs_error_prefix(struct fs_error *e, const char *fmt, ...)
{
	char old[sizeof(e->msg)];
	size_t n;
	va_list ap;

	if (!e)
		return 0;
	memcpy(old, e->msg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	/* Truncation is fine: the head says what failed, the tail why. */
	if (n + 2 < sizeof(e->msg)) {
		memcpy(e->msg + n, ": ", 2);
		memcpy(e->msg + n + 2, old, sizeof(e->msg) - n - 3);
		e->msg[sizeof(e->msg) - 1] = '\0';
	}
	return e->code;
}

const char *fs_error_token(const char *s, char buf[FS_TOKEN_MAX + 3])
{
	size_t n;

	if (!s || !*s)
		return "(empty)";
	for (n = 0; s[n]; n++) {
		char c = s[n];

		if (n == FS_TOKEN_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return "(not shown)";
	}
	snprintf(buf, FS_TOKEN_MAX + 3, "'%s'", s);
	return buf;
}

int fs_exit_code(int code)
{
	switch (-code) {
	case 0:
		return FS_EXIT_OK;
	case FS_EUSAGE:
		return FS_EXIT_USAGE;
	case FS_EVALID:
	case FS_ENOTFOUND:
	case FS_EEXIST:
	case FS_EFORMAT:
	case FS_ELIMIT:
		return FS_EXIT_DATA;
	case FS_EKEY:
	case FS_EAUTH:
	case FS_ECORRUPT:
	case FS_EKEYPERM:
		return FS_EXIT_KEY;
	default:
		return FS_EXIT_IO;
	}
}

const char *fs_strerror(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
	case 0:
		return "success";
	case FS_EAUTH:
		return "authentication failed";
	case FS_EKEY:
		return "wrong passphrase or key";
	case FS_EFORMAT:
		return "malformed or unsupported format";
	case FS_EKEYPERM:
		return "key file is accessible to other users";
	case FS_EVALID:
		return "validation failed";
	case FS_ENOTFOUND:
		return "not found";
	case FS_EEXIST:
		return "already exists";
	case FS_ESTORE:
		return "database error";
	case FS_ECORRUPT:
		return "corrupted or altered data";
	case FS_EUSAGE:
		return "invalid usage";
	case FS_ELIMIT:
		return "over a size limit";
	default:
		break;
	}
	if (code > 0 && code < FS_EBASE)
		return strerror(code);
	return "unknown error";
}
