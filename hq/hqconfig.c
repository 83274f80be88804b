/* hqconfig.c - hq.conf through libinih, strict about unknown keys and
 * numbers out of range. */
#include "hq/hqconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ini.h>

struct parse_ctx {
	struct hq_config *cfg;
	int code;      /* 0, or why the handler stopped */
	char why[256]; /* message for code; inih supplies the line */
};

static char **hqconfig_slot(struct hq_config *cfg, const char *section, const char *name)
{
	if (!strcmp(section, "server")) {
		if (!strcmp(name, "listen"))
			return &cfg->listen;
		if (!strcmp(name, "tls_cert"))
			return &cfg->tls_cert;
		if (!strcmp(name, "tls_key"))
			return &cfg->tls_key;
	} else if (!strcmp(section, "store")) {
		if (!strcmp(name, "data_dir"))
			return &cfg->data_dir;
	} else if (!strcmp(section, "forms")) {
		if (!strcmp(name, "dir"))
			return &cfg->forms_dir;
	}
	return NULL;
}

static unsigned *hqconfig_number(struct hq_config *cfg, const char *section, const char *name,
				 unsigned *ret_max)
{
	if (strcmp(section, "server"))
		return NULL;
	if (!strcmp(name, "threads")) {
		*ret_max = 256;
		return &cfg->threads;
	}
	if (!strcmp(name, "max_inflight")) {
		*ret_max = 65536;
		return &cfg->max_inflight;
	}
	return NULL;
}

int hqconfig_set(char **slot, const char *value)
{
	char *dup = strdup(value);

	if (!dup)
		return -ENOMEM;
	free(*slot);
	*slot = dup;
	return 0;
}

static int stop(struct parse_ctx *ctx, int code, const char *why)
{
	ctx->code = code;
	snprintf(ctx->why, sizeof(ctx->why), "%s", why);
	return 0;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	char **slot = hqconfig_slot(ctx->cfg, section, name);
	unsigned max = 0, *num = slot ? NULL : hqconfig_number(ctx->cfg, section, name, &max);
	char *end;
	unsigned long v;

	if (!slot && !num) {
		ctx->code = -FS_EFORMAT;
		snprintf(ctx->why, sizeof(ctx->why), "unknown key '%.64s' in section [%.64s]", name,
			 section);
		return 0;
	}
	if (!value[0]) {
		ctx->code = -FS_EFORMAT;
		snprintf(ctx->why, sizeof(ctx->why), "[%.64s] %.64s is empty", section, name);
		return 0;
	}
	if (slot)
		return hqconfig_set(slot, value) < 0 ? stop(ctx, -ENOMEM, "out of memory") : 1;
	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno || *end || value[0] == '-' || v < 1 || v > max) {
		ctx->code = -FS_EFORMAT;
		snprintf(ctx->why, sizeof(ctx->why), "[%.64s] %.64s must be a number from 1 to %u",
			 section, name, max);
		return 0;
	}
	*num = (unsigned)v;
	return 1;
}

int hqconfig_load(const char *path, struct hq_config *cfg, struct fs_error *err)
{
	struct parse_ctx ctx = {.cfg = cfg};
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

int hqconfig_finish(struct hq_config *cfg, const char *default_forms_dir, struct fs_error *err)
{
	if ((!cfg->listen && hqconfig_set(&cfg->listen, HQCONFIG_DEFAULT_LISTEN) < 0) ||
	    (!cfg->data_dir && hqconfig_set(&cfg->data_dir, HQCONFIG_DEFAULT_DATA_DIR) < 0) ||
	    (!cfg->forms_dir && hqconfig_set(&cfg->forms_dir, default_forms_dir) < 0))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (!cfg->threads)
		cfg->threads = HQCONFIG_DEFAULT_THREADS;
	if (!cfg->max_inflight)
		cfg->max_inflight = HQCONFIG_DEFAULT_MAX_INFLIGHT;
	if (!cfg->tls_cert != !cfg->tls_key)
		return fs_error_set(err, -FS_EUSAGE, "[server] tls_cert and tls_key go together");
	return 0;
}

void hqconfig_free(struct hq_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->listen);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->data_dir);
	free(cfg->forms_dir);
	memset(cfg, 0, sizeof(*cfg));
}
