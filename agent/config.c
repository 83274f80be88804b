/* config.c - agent.conf: its keys, loaded strictly by sync/ini.c. */
#include "agent/config.h"

#include <stdlib.h>
#include <string.h>

#include "sync/ini.h"

int config_load(const char *path, struct agent_config *cfg, struct fs_error *err)
{
	int r;

	const struct ini_key keys[] = {
		{ "store", "data_dir", &cfg->data_dir, NULL, 0 },
		{ "store", "passphrase_file", &cfg->passphrase_file, NULL, 0 },
		{ "store", "key_file", &cfg->key_file, NULL, 0 },
		{ "store", "kdf_profile", &cfg->kdf_profile, NULL, 0 },
		{ "store", "disk_reserve_mib", NULL, &cfg->disk_reserve_mib, 4096 },
		{ "forms", "dir", &cfg->forms_dir, NULL, 0 },
		{ "agent", "socket", &cfg->socket, NULL, 0 },
		{ "agent", "socket_group", &cfg->socket_group, NULL, 0 },
		{ "agent", "wipe_on_revoke", &cfg->wipe_on_revoke, NULL, 0 },
		{ "sync", "push_delay_ms", NULL, &cfg->push_delay_ms, 60000 },
		{ "sync", "retry_min", NULL, &cfg->retry_min, 3600 },
		{ "sync", "retry_max", NULL, &cfg->retry_max, 86400 },
		{ "sync", "max_changes", NULL, &cfg->max_changes, 20000 },
		{ "sync", "connect_timeout", NULL, &cfg->connect_timeout, 600 },
		{ "sync", "stall_timeout", NULL, &cfg->stall_timeout, 3600 },
	};

	r = ini_load(path, keys, sizeof(keys) / sizeof(keys[0]), err);
	if (r == 0 && cfg->wipe_on_revoke && strcmp(cfg->wipe_on_revoke, "yes") &&
	    strcmp(cfg->wipe_on_revoke, "no"))
		r = fs_error_set(err, -FS_EFORMAT,
				 "config %s: [agent] wipe_on_revoke must be yes "
				 "or no",
				 path);
	return r;
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
	if (cfg->retry_max < cfg->retry_min)
		cfg->retry_max = cfg->retry_min;
}
