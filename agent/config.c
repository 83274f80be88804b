/* config.c - agent.conf: its keys, loaded strictly by sync/ini.c. */
#include "agent/config.h"

#include <stdlib.h>
#include <string.h>

#include "sync/ini.h"

int config_load(const char *path, struct agent_config *cfg, struct fs_error *err)
{
	const struct ini_key keys[] = {
		{"store", "data_dir", &cfg->data_dir, NULL, 0},
		{"store", "passphrase_file", &cfg->passphrase_file, NULL, 0},
		{"store", "key_file", &cfg->key_file, NULL, 0},
		{"store", "kdf_profile", &cfg->kdf_profile, NULL, 0},
		{"forms", "dir", &cfg->forms_dir, NULL, 0},
	};

	return ini_load(path, keys, sizeof(keys) / sizeof(keys[0]), err);
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
