/* config.c - agent.conf through libinih, strict about unknown keys. */
#include "agent/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ini.h>

struct parse_ctx {
	struct agent_config *cfg;
	const char *path;
	int code;       /* 0, or why the handler stopped */
	char why[256];  /* message for code; inih supplies the line */
};

static char **config_slot(struct agent_config *cfg, const char *section, const char *name)
{
	if (!strcmp(section, "store")) {
		if (!strcmp(name, "data_dir"))
			return &cfg->data_dir;
		if (!strcmp(name, "passphrase_file"))
			return &cfg->passphrase_file;
		if (!strcmp(name, "key_file"))
			return &cfg->key_file;
		if (!strcmp(name, "kdf_profile"))
			return &cfg->kdf_profile;
	} else if (!strcmp(section, "forms")) {
		if (!strcmp(name, "dir"))
			return &cfg->forms_dir;
	}
	return NULL;
}

int config_set(char **slot, const char *value)
{
	char *dup = strdup(value);

	if (!dup)
		return -ENOMEM;
	free(*slot);
	*slot = dup;
	return 0;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	char **slot = config_slot(ctx->cfg, section, name);

	if (!slot) {
		ctx->code = -FS_EFORMAT;
		snprintf(ctx->why, sizeof(ctx->why), "unknown key '%.64s' in section [%.64s]", name,
			 section);
		return 0;
	}
	if (!value[0]) {
		ctx->code = -FS_EFORMAT;
		snprintf(ctx->why, sizeof(ctx->why), "[%s] %s is empty", section, name);
		return 0;
	}
	if (config_set(slot, value) < 0) {
		ctx->code = -ENOMEM;
		snprintf(ctx->why, sizeof(ctx->why), "out of memory");
		return 0;
	}
	return 1;
}

int config_load(const char *path, struct agent_config *cfg, struct fs_error *err)
{
	struct parse_ctx ctx = {.cfg = cfg, .path = path};
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

void config_free(struct agent_config *cfg)
{
	free(cfg->data_dir);
	free(cfg->passphrase_file);
	free(cfg->key_file);
	free(cfg->kdf_profile);
	free(cfg->forms_dir);
	memset(cfg, 0, sizeof(*cfg));
}
