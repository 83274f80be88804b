/* ini.c - table-driven, strict loading of INI files with libinih. */
#include "sync/ini.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ini.h>

struct parse_ctx {
	const struct ini_key *keys;
	size_t n;
	int code;      /* 0, or why the handler stopped */
	char why[256]; /* message for code; inih supplies the line */
};

int ini_set(char **slot, const char *value)
{
	char *dup = strdup(value);

	if (!dup)
		return -ENOMEM;
	free(*slot);
	*slot = dup;
	return 0;
}

static int stop(struct parse_ctx *ctx, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int stop(struct parse_ctx *ctx, int code, const char *fmt, ...)
{
	va_list ap;

	ctx->code = code;
	va_start(ap, fmt);
	vsnprintf(ctx->why, sizeof(ctx->why), fmt, ap);
	va_end(ap);
	return 0;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	const struct ini_key *k = NULL;
	unsigned long v;
	char *end;

	for (size_t i = 0; i < ctx->n && !k; i++)
		if (!strcmp(ctx->keys[i].section, section) && !strcmp(ctx->keys[i].name, name))
			k = &ctx->keys[i];
	if (!k)
		return stop(ctx, -FS_EFORMAT, "unknown key '%.64s' in section [%.64s]", name,
			    section);
	if (!value[0])
		return stop(ctx, -FS_EFORMAT, "[%.64s] %.64s is empty", section, name);
	if (k->text)
		return ini_set(k->text, value) < 0 ? stop(ctx, -ENOMEM, "out of memory") : 1;
	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno || *end || value[0] == '-' || v < 1 || v > k->max)
		return stop(ctx, -FS_EFORMAT, "[%.64s] %.64s must be a number from 1 to %u",
			    section, name, k->max);
	*k->number = (unsigned)v;
	return 1;
}

int ini_load(const char *path, const struct ini_key *keys, size_t n, struct fs_error *err)
{
	struct parse_ctx ctx = { .keys = keys, .n = n };
	FILE *f = fopen(path, "re");
	int line;

	if (!f)
		return fs_error_set(err, -errno, "config %s: %s", path, strerror(errno));
	line = ini_parse_file(f, on_entry, &ctx);
	fclose(f);
	if (line == 0)
		return 0;
	if (line < 0)
		return fs_error_set(err, -ENOMEM, "config %s: out of memory", path);
	if (ctx.code)
		return fs_error_set(err, ctx.code, "config %s: line %d: %s", path, line, ctx.why);
	return fs_error_set(err, -FS_EFORMAT, "config %s: line %d: syntax error", path, line);
}
