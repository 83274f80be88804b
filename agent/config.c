/* config.c - agent.conf: its keys, loaded strictly by sync/ini.c. */
#include "agent/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/store.h"
#include "sync/ini.h"
#include "web/listen.h"

static int yes_or_no(const char *v)
{
	return !v || !strcmp(v, "yes") || !strcmp(v, "no");
}

/* A number of minutes, fractions allowed, from 1 s to max: in ms. */
static int minutes_ms(const char *text, double max, uint64_t *ret)
{
	char *end;
	double min;

	errno = 0;
	min = strtod(text, &end);
	if (errno || end == text || *end || !(min * 60 >= 1) || min > max)
		return -1;
	*ret = (uint64_t)(min * 60000);
	return 0;
}

/* [web]: the listen address must be loopback, whether or not the app is
 * on now (a later `enabled = yes` must not open it wider), and the idle
 * time a number of minutes, from 1 s to a day; and [sync]
 * report_minutes, from 1 s to a week. */
static int web_check(const char *path, struct agent_config *cfg, struct fs_error *err)
{
	struct sockaddr_storage addr;
	socklen_t alen;
	int loopback = 0, r;

	if (cfg->web_listen) {
		struct fs_error why = { 0 };

		if ((r = web_listen_parse(cfg->web_listen, &addr, &alen, &loopback, &why)) < 0)
			return fs_error_set(err, -FS_EFORMAT, "config %s: [web] %s", path, why.msg);
		if (!loopback)
			return fs_error_set(err, -FS_EFORMAT,
					    "config %s: [web] listen %s: the field app listens on "
					    "a loopback address only (127.0.0.1 or ::1)",
					    path, cfg->web_listen);
	}
	if (cfg->web_idle_lock && minutes_ms(cfg->web_idle_lock, 1440, &cfg->web_idle_ms) < 0)
		return fs_error_set(err, -FS_EFORMAT,
				    "config %s: [web] idle_lock_minutes must be a number "
				    "of minutes from 1 s to 1440",
				    path);
	if (cfg->report_text && minutes_ms(cfg->report_text, 10080, &cfg->report_ms) < 0)
		return fs_error_set(err, -FS_EFORMAT,
				    "config %s: [sync] report_minutes must be a number of minutes "
				    "from 1 s to 10080",
				    path);
	return 0;
}

int config_load(const char *path, struct agent_config *cfg, struct fs_error *err)
{
	int r;

	const struct ini_key keys[] = {
		{ "store", "data_dir", &cfg->data_dir, NULL, 0 },
		{ "store", "passphrase_file", &cfg->passphrase_file, NULL, 0 },
		{ "store", "key_file", &cfg->key_file, NULL, 0 },
		{ "store", "kdf_profile", &cfg->kdf_profile, NULL, 0 },
		{ "store", "disk_reserve_mib", NULL, &cfg->disk_reserve_mib, 4096 },
		{ "store", "cache_mib", NULL, &cfg->cache_mib, STORE_MAX_CACHE_MIB },
		{ "forms", "dir", &cfg->forms_dir, NULL, 0 },
		{ "agent", "socket", &cfg->socket, NULL, 0 },
		{ "agent", "socket_group", &cfg->socket_group, NULL, 0 },
		{ "agent", "wipe_on_revoke", &cfg->wipe_on_revoke, NULL, 0 },
		{ "sync", "push_delay_ms", NULL, &cfg->push_delay_ms, 60000 },
		{ "sync", "retry_min", NULL, &cfg->retry_min, 3600 },
		{ "sync", "retry_max", NULL, &cfg->retry_max, 86400 },
		{ "sync", "report_minutes", &cfg->report_text, NULL, 0 },
		{ "sync", "max_changes", NULL, &cfg->max_changes, 20000 },
		{ "sync", "chunk_kib", NULL, &cfg->chunk_kib, 960 },
		{ "sync", "connect_timeout", NULL, &cfg->connect_timeout, 600 },
		{ "sync", "stall_timeout", NULL, &cfg->stall_timeout, 3600 },
		{ "web", "enabled", &cfg->web_enabled, NULL, 0 },
		{ "web", "listen", &cfg->web_listen, NULL, 0 },
		{ "web", "idle_lock_minutes", &cfg->web_idle_lock, NULL, 0 },
		{ "web", "dir", &cfg->web_dir, NULL, 0 },
	};

	r = ini_load(path, keys, sizeof(keys) / sizeof(keys[0]), err);
	if (r == 0 && !yes_or_no(cfg->wipe_on_revoke))
		r = fs_error_set(err, -FS_EFORMAT,
				 "config %s: [agent] wipe_on_revoke must be yes or no", path);
	if (r == 0 && !yes_or_no(cfg->web_enabled))
		r = fs_error_set(err, -FS_EFORMAT, "config %s: [web] enabled must be yes or no",
				 path);
	if (r == 0 && cfg->chunk_kib && cfg->chunk_kib < 16)
		r = fs_error_set(err, -FS_EFORMAT, "config %s: [sync] chunk_kib must be 16 to 960",
				 path);
	if (r == 0)
		r = web_check(path, cfg, err);
	return r;
}

int config_web_enabled(const struct agent_config *cfg)
{
	return !cfg->web_enabled || strcmp(cfg->web_enabled, "no") != 0;
}

void config_free(struct agent_config *cfg)
{
	free(cfg->data_dir);
	free(cfg->passphrase_file);
	free(cfg->key_file);
	free(cfg->kdf_profile);
	free(cfg->forms_dir);
	free(cfg->socket);
	free(cfg->socket_group);
	free(cfg->wipe_on_revoke);
	free(cfg->web_enabled);
	free(cfg->web_listen);
	free(cfg->web_idle_lock);
	free(cfg->report_text);
	free(cfg->web_dir);
	memset(cfg, 0, sizeof(*cfg));
}

void config_default_timings(struct agent_config *cfg)
{
	if (!cfg->push_delay_ms)
		cfg->push_delay_ms = CONFIG_DEFAULT_PUSH_DELAY_MS;
	if (!cfg->retry_min)
		cfg->retry_min = CONFIG_DEFAULT_RETRY_MIN;
	if (!cfg->retry_max)
		cfg->retry_max = CONFIG_DEFAULT_RETRY_MAX;
	if (!cfg->report_ms)
		cfg->report_ms = CONFIG_DEFAULT_REPORT_MIN * 60000ull;
	if (cfg->retry_max < cfg->retry_min)
		cfg->retry_max = cfg->retry_min;
}
