/* hqconfig.h - HQ's INI configuration (parsed with libinih).
 *
 * Keys (all optional; conf/hq.conf documents each):
 *
 *   [server] listen        ADDR:PORT to listen on (default 127.0.0.1:8443);
 *                          plain HTTP only on a loopback address
 *   [server] tls_cert      PEM certificate chain; with tls_key, serve HTTPS
 *   [server] tls_key       PEM private key of tls_cert
 *   [server] threads       worker threads, 1..256 (default 4)
 *   [server] max_inflight  requests processed at once before 503, 1..65536
 *                          (default 64)
 *   [server] reserved_for_devices  of those, slots only uploads naming an
 *                          enrolled device may take (default max_inflight/4;
 *                          less than max_inflight)
 *   [server] max_connections  open connections, 1..1048576 (default 1024)
 *   [server] per_peer_connections  open connections from one address,
 *                          1..65536 (default 16)
 *   [server] enroll_rate   enrolment attempts one address may make in a
 *                          burst, and then per minute, 1..1000000
 *                          (default 10)
 *   [server] pull_batch    entries (changed fields, conflicts) per down-set
 *                          at most (default DOWNSYNC_DEFAULT_BATCH)
 *   [server] proof_rate    POST /v1/audit/consistency requests one address
 *                          may make in a burst, and then per minute,
 *                          1..1000000 (default 60)
 *   [server] accept_unbound_sets  yes (default): read version 1 change sets
 *                          from devices that have sent no version 2; no:
 *                          refuse them all
 *   [server] min_upload_rate  bytes per second a request body must keep up
 *                          on average after SERVER_UPLOAD_GRACE_S, or the
 *                          connection is closed, 1..1048576 (default 1024)
 *   [server] file_quota_mib  MiB of attached files one device may hold at
 *                          HQ, counting those it sent first and its uploads
 *                          in progress, 1..4194304 (default 10240)
 *   [server] upload_idle_days  an upload no chunk reached for this long is
 *                          dropped with its chunks (the device begins it
 *                          again), 1..3650 (default 30)
 *   [server] device_changeset_version  the change set version HQ's answers
 *                          tell devices to write: 5 (default; rows by
 *                          column), 4 (rows grouped by record) or 3; the
 *                          highest every HQ process that may still answer
 *                          reads (docs/DEPLOY.md)
 *   [store] data_dir       data directory (default /var/lib/fieldsync-hq)
 *   [store] backend        sqlite (default) or postgresql (hq/pgdb.h)
 *   [store] postgresql     a libpq connection string, without a password
 *   [store] postgresql_password_file  file whose first line is the
 *                          password (mode 0600); else the credential
 *                          PGDB_CREDENTIAL, else libpq's ~/.pgpass
 *   [store] postgresql_statement_timeout_ms  1..3600000 (default
 *                          PGDB_DEFAULT_STATEMENT_TIMEOUT_MS)
 *   [forms] dir            directory of <collection>.json form definitions
 *   [audit] checkpoint_every    sign a checkpoint at least every N entries
 *                               (default 100)
 *   [audit] checkpoint_minutes  ... or every M minutes while serving
 *                               (default 10)
 *   [console] enabled      yes (default) or no: serve the console (hq/console.h)
 *   [console] listen       ADDR:PORT (default 127.0.0.1:8760); plain HTTP only
 *                          on a loopback address, else [server] tls_cert
 *   [console] host         the name people reach it by over HTTPS
 *                          (hq.example.org); its Host header is accepted
 *   [console] dir          its pages (default: beside the program, else
 *                          installed)
 *   [console] idle_minutes a session ends after this long unused, 1..1440
 *                          (default 15)
 *   [console] login_tries  failed logins of one account before a pause,
 *                          1..1000 (default 5)
 *   [console] login_address_tries  ... from one address (default 20)
 *   [console] login_pause_minutes  the window and the pause, 1..1440
 *                          (default 15)
 *   [console] red_unseen_hours  a device not seen for longer is flagged,
 *                          1..8760 (default 72)
 *   [console] red_backlog_hours  ... or one whose oldest unsent change is
 *                          older, 1..8760 (default 24)
 *   [console] metrics_token_file  a file (mode 0600) whose first line is the
 *                          token Prometheus sends as "Authorization:
 *                          Bearer TOKEN" for GET /metrics; unset: no
 *                          /metrics
 *
 * An unknown section or key, an empty value or a number out of range is
 * an error naming the line, so a typo never falls back to a default.
 * Strings are owned by the config and freed by hqconfig_free().  Not
 * thread-safe while loading; a finished config is read-only.
 */
#ifndef FS_HQCONFIG_H
#define FS_HQCONFIG_H

#include "crypto/fserr.h"
#include "hq/audit.h"

#define HQCONFIG_DEFAULT_PATH FS_SYSCONF_DIR "/hq.conf"
#define HQCONFIG_DEFAULT_LISTEN "127.0.0.1:8443"
#define HQCONFIG_DEFAULT_DATA_DIR "/var/lib/fieldsync-hq"
#define HQCONFIG_DEFAULT_THREADS 4
#define HQCONFIG_DEFAULT_MAX_INFLIGHT 64
#define HQCONFIG_DEFAULT_MAX_CONNECTIONS 1024
#define HQCONFIG_DEFAULT_PER_PEER 16
#define HQCONFIG_DEFAULT_MIN_UPLOAD_RATE 1024
#define HQCONFIG_DEFAULT_ENROLL_RATE 10
#define HQCONFIG_DEFAULT_PROOF_RATE 60
#define HQCONFIG_DEFAULT_FILE_QUOTA_MIB 10240
#define HQCONFIG_DEFAULT_UPLOAD_IDLE_DAYS 30
#define HQCONFIG_DEFAULT_DEVICE_CHANGESET_VERSION 5 /* CHANGESET_VERSION_COLUMNS */
#define HQCONFIG_DEFAULT_CONSOLE_LISTEN "127.0.0.1:8760"
#define HQCONFIG_DEFAULT_CONSOLE_IDLE_MIN 15
#define HQCONFIG_DEFAULT_LOGIN_TRIES 5
#define HQCONFIG_DEFAULT_LOGIN_ADDRESS_TRIES 20
#define HQCONFIG_DEFAULT_LOGIN_PAUSE_MIN 15
#define HQCONFIG_DEFAULT_RED_UNSEEN_H 72
#define HQCONFIG_DEFAULT_RED_BACKLOG_H 24

struct hq_config {
	char *listen;		   /* ADDR:PORT */
	char *tls_cert;		   /* NULL: no TLS */
	char *tls_key;		   /* NULL: no TLS */
	char *data_dir;		   /* hq.db and hq.key live here */
	char *forms_dir;	   /* form definitions; NULL: the built-in forms */
	unsigned threads;	   /* MHD thread pool size */
	unsigned max_inflight;	   /* concurrent requests before 503 */
	unsigned reserved;	   /* of those, only for uploads from enrolled devices */
	unsigned max_connections;  /* open connections */
	unsigned per_peer;	   /* open connections from one address */
	unsigned min_upload_rate;  /* bytes/s a body must average after the grace */
	char *accept_unbound;	   /* "yes" (NULL) or "no" */
	unsigned enroll_rate;	   /* enrolment attempts per address: burst, and per minute */
	unsigned proof_rate;	   /* proof requests per address: burst, and per minute */
	unsigned pull_batch;	   /* entries per down-set at most */
	unsigned file_quota_mib;   /* attached files per device at HQ */
	unsigned upload_idle_days; /* uploads idle this long are dropped */
	unsigned device_changeset_version; /* what answers tell devices to write */
	char *backend;			   /* "sqlite" (NULL) or "postgresql" */
	char *postgresql;		   /* libpq connection string */
	char *pg_password_file;		   /* NULL: the credential, or libpq's ways */
	unsigned pg_statement_timeout_ms;  /* 0: the default */
	struct audit_policy audit;	   /* when to sign an audit checkpoint */
	struct {
		char *enabled;		  /* "yes" (NULL) or "no" */
		char *listen;		  /* ADDR:PORT */
		char *host;		  /* NULL: only the address and localhost */
		char *dir;		  /* NULL: beside the program, else installed */
		char *metrics_token_file; /* NULL: no /metrics */
		unsigned idle_minutes, login_tries, login_address_tries, login_pause_minutes;
		unsigned red_unseen_hours, red_backlog_hours;
	} console;
};

/* Load path into cfg (zeroed or previously loaded; keys in the file
 * replace earlier values).  A missing file is -ENOENT, an error only
 * when the caller treats it as one; a bad file is -FS_EFORMAT. */
int hqconfig_load(const char *path, struct hq_config *cfg, struct fs_error *err) FS_WUR;

/* Fill unset strings and numbers with their defaults; -ENOMEM. */
int hqconfig_finish(struct hq_config *cfg, struct fs_error *err) FS_WUR;

/* NULL-safe; zeroes cfg. */
void hqconfig_free(struct hq_config *cfg);

/* Is the backend PostgreSQL? */
int hqconfig_postgresql(const struct hq_config *cfg);

#endif
