/* config.h - the agent's INI configuration (parsed with libinih).
 *
 * Keys (all optional; see conf/agent.conf for the documented example):
 *
 *   [store] data_dir         data directory (default /var/lib/fieldsync)
 *   [store] passphrase_file  file whose first line is the passphrase
 *   [store] key_file         key file made by `fieldsync keygen`
 *   [store] kdf_profile      interactive | moderate | sensitive, used when
 *                            a passphrase wraps a new key (default moderate)
 *   [store] disk_reserve_mib room kept on the data directory's disk so that
 *                            what was recorded can be delivered when the
 *                            disk is full, MiB (default 8, at most 1/8 of
 *                            the file system; agent/ballast.h)
 *   [store] cache_mib        SQLite's page cache of the connection serving
 *                            the field app and commands (the worker keeps
 *                            STORE_WORKER_CACHE_MIB), MiB: a page that
 *                            misses it is read and decrypted
 *                            (default STORE_DEFAULT_CACHE_MIB, 1..1024)
 *   [forms] dir              directory of <collection>.json definitions
 *   [agent] socket           control socket (default: ctl_default_socket())
 *   [agent] socket_group     group allowed to use it (default fieldsync, when
 *                            that group exists)
 *   [agent] wipe_on_revoke   yes: when HQ says this device is revoked,
 *                            destroy the store key (default no)
 *   [sync]  push_delay_ms    wait after a local write before pushing, so a
 *                            burst of writes goes in one set (default 200)
 *   [sync]  retry_min        first retry after a failure, seconds (default 1)
 *   [sync]  retry_max        cap on the retry delay, seconds (default 4: HQ back
 *                            means merged within 5 s)
 *   [sync]  max_changes      changes per change set (default 1000)
 *   [sync]  report_minutes   with nothing to send, pull and tell HQ how this
 *                            device is (agent/report.h) this often
 *                            (default 360; from 1 s, fractions allowed, to
 *                            10080)
 *   [sync]  chunk_kib        attached files travel in chunks of this many
 *                            KiB, 16 to 960 (default 256; agent/upload.h)
 *   [sync]  connect_timeout  seconds to connect to HQ (default 15)
 *   [sync]  stall_timeout    a transfer below 64 bytes/s for this many
 *                            seconds is abandoned (default 60)
 *   [web]   enabled          yes | no: serve the field app (default yes)
 *   [web]   listen           its loopback ADDR:PORT (default 127.0.0.1:8750;
 *                            port 0: the kernel picks one); any other
 *                            address is an error
 *   [web]   idle_lock_minutes a session ends after this long without use,
 *                            and a store the app unlocked locks again
 *                            (default 15; a fraction is allowed: 0.5 is 30 s)
 *   [web]   dir              the app's pages (default: share/fieldsync/web
 *                            beside the program, then FS_WEB_DIR)
 *
 * An unknown section or key is an error naming the line, so a typo never
 * silently falls back to a default (sync/ini.h).  Command-line overrides
 * replace values with ini_set().  Strings are owned by the config and
 * freed by config_free().
 */
#ifndef FS_CONFIG_H
#define FS_CONFIG_H

#include <stdint.h>

#include "crypto/fserr.h"

#define CONFIG_DEFAULT_PATH FS_SYSCONF_DIR "/agent.conf"
#define CONFIG_DEFAULT_DATA_DIR "/var/lib/fieldsync"

struct agent_config {
	char *data_dir;
	char *passphrase_file;
	char *key_file;
	char *kdf_profile;
	char *forms_dir;
	char *socket;
	char *socket_group;
	char *wipe_on_revoke;	   /* "yes" or "no" (NULL: no) */
	unsigned disk_reserve_mib; /* 0: not set, BALLAST_DEFAULT_BYTES */
	unsigned cache_mib;	   /* 0: not set, STORE_DEFAULT_CACHE_MIB */
	unsigned push_delay_ms;	   /* 0 in the struct: not set, use the default */
	unsigned retry_min;
	unsigned retry_max;
	char *report_text;  /* [sync] report_minutes as written */
	uint64_t report_ms; /* and in ms; 0 in the struct: the default */
	unsigned max_changes;
	unsigned chunk_kib; /* 0: FILEWIRE_CHUNK_DEFAULT */
	unsigned connect_timeout;
	unsigned stall_timeout;
	char *web_enabled; /* "yes" or "no" (NULL: yes) */
	char *web_listen;
	char *web_idle_lock; /* minutes, as text */
	char *web_dir;
	uint64_t web_idle_ms; /* web_idle_lock parsed; 0: not set, the default */
};

#define CONFIG_DEFAULT_PUSH_DELAY_MS 200
#define CONFIG_DEFAULT_RETRY_MIN 1
#define CONFIG_DEFAULT_RETRY_MAX 4
#define CONFIG_DEFAULT_REPORT_MIN 360
#define CONFIG_DEFAULT_SOCKET_GROUP "fieldsync"
#define CONFIG_DEFAULT_WEB_LISTEN "127.0.0.1:8750"
#define CONFIG_DEFAULT_WEB_IDLE_MIN 15

/* Load path into cfg (which must be zeroed or previously loaded; keys set
 * in the file replace earlier values).  A missing file is -ENOENT, and is
 * an error only when the caller treats it as one. */
int config_load(const char *path, struct agent_config *cfg, struct fs_error *err) FS_WUR;

/* Whether the field app is on (web_enabled is not "no"). */
int config_web_enabled(const struct agent_config *cfg);

/* Fill the [sync] timings not set in the file with their defaults. */
void config_default_timings(struct agent_config *cfg);

void config_free(struct agent_config *cfg);

#endif
