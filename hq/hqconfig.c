/* hqconfig.c - hq.conf: its keys and defaults, loaded strictly by
 * sync/ini.c. */
#include "hq/hqconfig.h"
#include "hq/downsync.h"
#include "sync/changeset.h"
#include "sync/downset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync/ini.h"

int hqconfig_load(const char *path, struct hq_config *cfg, struct fs_error *err)
{
	const struct ini_key keys[] = {
		{ "server", "listen", &cfg->listen, NULL, 0 },
		{ "server", "tls_cert", &cfg->tls_cert, NULL, 0 },
		{ "server", "tls_key", &cfg->tls_key, NULL, 0 },
		{ "server", "threads", NULL, &cfg->threads, 256 },
		{ "server", "max_inflight", NULL, &cfg->max_inflight, 65536 },
		{ "server", "reserved_for_devices", NULL, &cfg->reserved, 65535 },
		{ "server", "max_connections", NULL, &cfg->max_connections, 1048576 },
		{ "server", "per_peer_connections", NULL, &cfg->per_peer, 65536 },
		{ "server", "min_upload_rate", NULL, &cfg->min_upload_rate, 1048576 },
		{ "server", "accept_unbound_sets", &cfg->accept_unbound, NULL, 0 },
		{ "server", "enroll_rate", NULL, &cfg->enroll_rate, 1000000 },
		{ "server", "proof_rate", NULL, &cfg->proof_rate, 1000000 },
		{ "server", "pull_batch", NULL, &cfg->pull_batch, DOWNSET_MAX_ENTRIES },
		{ "server", "file_quota_mib", NULL, &cfg->file_quota_mib, 4194304 },
		{ "server", "upload_idle_days", NULL, &cfg->upload_idle_days, 3650 },
		{ "server", "device_changeset_version", NULL, &cfg->device_changeset_version,
		  CHANGESET_VERSION_COLUMNS },
		{ "store", "data_dir", &cfg->data_dir, NULL, 0 },
		{ "store", "backend", &cfg->backend, NULL, 0 },
		{ "store", "postgresql", &cfg->postgresql, NULL, 0 },
		{ "store", "postgresql_password_file", &cfg->pg_password_file, NULL, 0 },
		{ "store", "postgresql_statement_timeout_ms", NULL, &cfg->pg_statement_timeout_ms,
		  3600000 },
		{ "forms", "dir", &cfg->forms_dir, NULL, 0 },
		{ "audit", "checkpoint_every", NULL, &cfg->audit.every, 1000000 },
		{ "audit", "checkpoint_minutes", NULL, &cfg->audit.minutes, 10080 },
		{ "console", "enabled", &cfg->console.enabled, NULL, 0 },
		{ "console", "listen", &cfg->console.listen, NULL, 0 },
		{ "console", "host", &cfg->console.host, NULL, 0 },
		{ "console", "dir", &cfg->console.dir, NULL, 0 },
		{ "console", "metrics_token_file", &cfg->console.metrics_token_file, NULL, 0 },
		{ "console", "idle_minutes", NULL, &cfg->console.idle_minutes, 1440 },
		{ "console", "login_tries", NULL, &cfg->console.login_tries, 1000 },
		{ "console", "login_address_tries", NULL, &cfg->console.login_address_tries,
		  100000 },
		{ "console", "login_pause_minutes", NULL, &cfg->console.login_pause_minutes, 1440 },
		{ "console", "red_unseen_hours", NULL, &cfg->console.red_unseen_hours, 8760 },
		{ "console", "red_backlog_hours", NULL, &cfg->console.red_backlog_hours, 8760 },
	};

	return ini_load(path, keys, sizeof(keys) / sizeof(keys[0]), err);
}

int hqconfig_finish(struct hq_config *cfg, struct fs_error *err)
{
	if ((!cfg->listen && ini_set(&cfg->listen, HQCONFIG_DEFAULT_LISTEN) < 0) ||
	    (!cfg->data_dir && ini_set(&cfg->data_dir, HQCONFIG_DEFAULT_DATA_DIR) < 0))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (!cfg->threads)
		cfg->threads = HQCONFIG_DEFAULT_THREADS;
	if (!cfg->max_inflight)
		cfg->max_inflight = HQCONFIG_DEFAULT_MAX_INFLIGHT;
	if (!cfg->reserved)
		cfg->reserved = cfg->max_inflight / 4;
	if (cfg->reserved >= cfg->max_inflight)
		return fs_error_set(err, -FS_EUSAGE,
				    "[server] reserved_for_devices (%u) must be "
				    "less than max_inflight (%u)",
				    cfg->reserved, cfg->max_inflight);
	if (!cfg->max_connections)
		cfg->max_connections = HQCONFIG_DEFAULT_MAX_CONNECTIONS;
	if (!cfg->per_peer)
		cfg->per_peer = HQCONFIG_DEFAULT_PER_PEER;
	if (!cfg->min_upload_rate)
		cfg->min_upload_rate = HQCONFIG_DEFAULT_MIN_UPLOAD_RATE;
	if (!cfg->enroll_rate)
		cfg->enroll_rate = HQCONFIG_DEFAULT_ENROLL_RATE;
	if (!cfg->proof_rate)
		cfg->proof_rate = HQCONFIG_DEFAULT_PROOF_RATE;
	if (!cfg->pull_batch)
		cfg->pull_batch = DOWNSYNC_DEFAULT_BATCH;
	if (!cfg->file_quota_mib)
		cfg->file_quota_mib = HQCONFIG_DEFAULT_FILE_QUOTA_MIB;
	if (!cfg->upload_idle_days)
		cfg->upload_idle_days = HQCONFIG_DEFAULT_UPLOAD_IDLE_DAYS;
	if (!cfg->device_changeset_version)
		cfg->device_changeset_version = HQCONFIG_DEFAULT_DEVICE_CHANGESET_VERSION;
	if (cfg->device_changeset_version < CHANGESET_VERSION ||
	    cfg->device_changeset_version > CHANGESET_VERSION_COLUMNS)
		return fs_error_set(err, -FS_EUSAGE,
				    "[server] device_changeset_version (%u) must be from %d to %d",
				    cfg->device_changeset_version, CHANGESET_VERSION,
				    CHANGESET_VERSION_COLUMNS);
	if (!cfg->console.listen &&
	    ini_set(&cfg->console.listen, HQCONFIG_DEFAULT_CONSOLE_LISTEN) < 0)
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (!cfg->console.idle_minutes)
		cfg->console.idle_minutes = HQCONFIG_DEFAULT_CONSOLE_IDLE_MIN;
	if (!cfg->console.login_tries)
		cfg->console.login_tries = HQCONFIG_DEFAULT_LOGIN_TRIES;
	if (!cfg->console.login_address_tries)
		cfg->console.login_address_tries = HQCONFIG_DEFAULT_LOGIN_ADDRESS_TRIES;
	if (!cfg->console.login_pause_minutes)
		cfg->console.login_pause_minutes = HQCONFIG_DEFAULT_LOGIN_PAUSE_MIN;
	if (!cfg->console.red_unseen_hours)
		cfg->console.red_unseen_hours = HQCONFIG_DEFAULT_RED_UNSEEN_H;
	if (!cfg->console.red_backlog_hours)
		cfg->console.red_backlog_hours = HQCONFIG_DEFAULT_RED_BACKLOG_H;
	if (cfg->console.enabled && strcmp(cfg->console.enabled, "yes") &&
	    strcmp(cfg->console.enabled, "no"))
		return fs_error_set(err, -FS_EUSAGE, "[console] enabled must be yes or no");
	if (cfg->accept_unbound && strcmp(cfg->accept_unbound, "yes") &&
	    strcmp(cfg->accept_unbound, "no"))
		return fs_error_set(err, -FS_EUSAGE,
				    "[server] accept_unbound_sets must be yes or no");
	if (!cfg->tls_cert != !cfg->tls_key)
		return fs_error_set(err, -FS_EUSAGE, "[server] tls_cert and tls_key go together");
	if (cfg->backend && strcmp(cfg->backend, "sqlite") && strcmp(cfg->backend, "postgresql"))
		return fs_error_set(err, -FS_EUSAGE,
				    "[store] backend must be sqlite or postgresql");
	if (hqconfig_postgresql(cfg) && !cfg->postgresql)
		return fs_error_set(err, -FS_EUSAGE,
				    "[store] backend = postgresql needs [store] "
				    "postgresql, a libpq connection string");
	return 0;
}

int hqconfig_postgresql(const struct hq_config *cfg)
{
	return cfg->backend && !strcmp(cfg->backend, "postgresql");
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
	free(cfg->accept_unbound);
	free(cfg->backend);
	free(cfg->postgresql);
	free(cfg->pg_password_file);
	free(cfg->console.enabled);
	free(cfg->console.listen);
	free(cfg->console.host);
	free(cfg->console.dir);
	free(cfg->console.metrics_token_file);
	memset(cfg, 0, sizeof(*cfg));
}
