/* config.h - the agent's INI configuration (parsed with libinih).
 *
 * Keys (all optional; see conf/agent.conf for the documented example):
 *
 *   [store] data_dir         data directory (default /var/lib/fieldsync)
 *   [store] passphrase_file  file whose first line is the passphrase
 *   [store] key_file         key file made by `fieldsync keygen`
 *   [store] kdf_profile      interactive | moderate | sensitive, used when
 *                            a passphrase wraps a new key (default moderate)
 *   [forms] dir              directory of <collection>.json definitions
 *
 * An unknown section or key is an error naming the line, so a typo never
 * silently falls back to a default (sync/ini.h).  Command-line overrides
 * replace values with ini_set().  Strings are owned by the config and
 * freed by config_free().
 */
#ifndef FS_CONFIG_H
#define FS_CONFIG_H

#include "crypto/fserr.h"

#define CONFIG_DEFAULT_PATH FS_SYSCONF_DIR "/agent.conf"
#define CONFIG_DEFAULT_DATA_DIR "/var/lib/fieldsync"

struct agent_config {
	char *data_dir;
	char *passphrase_file;
	char *key_file;
	char *kdf_profile;
	char *forms_dir;
};

/* Load path into cfg (which must be zeroed or previously loaded; keys set
 * in the file replace earlier values).  A missing file is -ENOENT, and is
 * an error only when the caller treats it as one. */
int config_load(const char *path, struct agent_config *cfg, struct fs_error *err) FS_WUR;

void config_free(struct agent_config *cfg);

#endif
