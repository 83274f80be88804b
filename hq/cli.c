/* cli.c - the `fieldsync-hq` command line: init, serve and the admin
 * commands.
 *
 * Sections: output and exit codes; options and configuration; init;
 * serve; enroll-token; devices, revoke, conflicts; export; dispatch.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/secmem.h"
#include "hq/admin.h"
#include "hq/audit.h"
#include "hq/cmd_review.h"
#include "hq/cmd_user.h"
#include "hq/console.h"
#include "hq/cmd_files.h"
#include "hq/export.h"
#include "hq/hqconfig.h"
#include "sync/clierr.h"
#include "sync/ini.h"
#include "sync/log.h"
#include "hq/downsync.h"
#include "hq/formpub.h"
#include "hq/hqdb.h"
#include "hq/scope.h"
#include "hq/hqenroll.h"
#include "hq/hqforms.h"
#include "hq/hqkeys.h"
#include "hq/migrate.h"
#include "hq/pgdb.h"
#include "hq/server.h"
#include "hq/tlspin.h"
#include "sync/hlc.h"

/* ---- output and exit codes -------------------------------------------- */

static int fail(const struct fs_error *e)
{
	return clierr_fail(stderr, "fieldsync-hq", e);
}

#define usage_error(...) clierr_usage(stderr, "fieldsync-hq", __VA_ARGS__)

static const char main_usage[] =
	"Usage: fieldsync-hq [OPTIONS] COMMAND [ARGS]\n"
	"Headquarters: receive signed change sets, merge them, export the records.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE      configuration (default " HQCONFIG_DEFAULT_PATH ",\n"
	"                         or $FIELDSYNC_HQ_CONFIG)\n"
	"      --data-dir DIR     data directory (default " HQCONFIG_DEFAULT_DATA_DIR ")\n"
	"      --forms-dir DIR    form definitions <collection>.json (default: the\n"
	"                         forms built into fieldsync-hq)\n"
	"  -h, --help             show this help\n"
	"  -V, --version          show the version\n"
	"\n"
	"Commands:\n"
	"  init                   create HQ's keys and database\n"
	"  serve [--listen ADDR:PORT]\n"
	"                         run the sync server until SIGTERM or SIGINT\n"
	"  enroll-token --team NAME --municipality NAME [--scope A,B] [--expires 24h]\n"
	"                         print a one-time enrolment token (last line)\n"
	"  devices [--json]       list enrolled devices\n"
	"  revoke DEVICE [--reason TEXT]\n"
	"                         refuse every further push from DEVICE\n"
	"  scope DEVICE --municipality A,B\n"
	"                         set whose records DEVICE may write\n"
	"  export beneficiaries|visits --format csv|jsonl [--since TIME]\n"
	"                         write merged records to stdout\n"
	"  conflicts [--json]     list fields edited concurrently\n"
	"  resolve CONFLICT --keep a|b | --value TEXT\n"
	"                         settle a conflict; the value flows to the devices\n"
	"  quarantine [--json]    list changes kept but not merged, and why\n"
	"  release|reject DEVICE SEQ INDEX --reason TEXT\n"
	"                         merge or drop a change in quarantine\n"
	"  review [--json]        list deletes, and changes by another team\n"
	"  audit list|verify|export|checkpoint ...\n"
	"                         the tamper-evident audit log (see audit --help)\n"
	"  attachment get HASH | list | sweep\n"
	"                         attached files HQ received (see attachment --help)\n"
	"  user add|passwd|remove|list ...\n"
	"                         accounts for HQ's console (see user --help)\n"
	"  migrate --to postgresql CONNINFO\n"
	"                         copy this SQLite HQ into a PostgreSQL database\n"
	"\n"
	"Exit status: 0 ok, 1 usage, 2 data, 3 key or crypto, 4 I/O.\n";

static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

/* ---- options and configuration ---------------------------------------- */

enum {
	OPT_DATA_DIR = 256,
	OPT_FORMS_DIR,
	OPT_LISTEN,
	OPT_TEAM,
	OPT_MUNICIPALITY,
	OPT_EXPIRES,
	OPT_FORMAT,
	OPT_SINCE,
	OPT_JSON,
	OPT_REASON,
	OPT_DEVICE,
	OPT_EVENT,
	OPT_SCOPE
};

static int load_config(const char *config_path, char *const overrides[2], struct hq_config *cfg,
		       struct fs_error *err)
{
	const char *path = config_path ? config_path : getenv("FIELDSYNC_HQ_CONFIG");
	int r = hqconfig_load(path ? path : HQCONFIG_DEFAULT_PATH, cfg, err);

	/* The default file is optional; a file the user named is not. */
	if (r == -ENOENT && !path)
		r = 0;
	if (r < 0)
		return r;
	if ((overrides[0] && ini_set(&cfg->data_dir, overrides[0]) < 0) ||
	    (overrides[1] && ini_set(&cfg->forms_dir, overrides[1]) < 0))
		return fs_error_set(err, -ENOMEM, "out of memory");
	return hqconfig_finish(cfg, err);
}

static int open_db(const struct hq_config *cfg, struct hqsql **ret, struct fs_error *err)
{
	return hqdb_connect(cfg, ret, err);
}

/* ---- init ----------------------------------------------------------- */

static int cmd_init(struct hq_config *cfg, int argc, char **argv)
{
	struct fs_error err = { 0 };
	struct identity *hq = NULL;
	uint8_t fp[TOKEN_FP_BYTES];
	char fp_hex[2 * TOKEN_FP_BYTES + 1], where[512];
	struct hqsql *db = NULL;
	PGconn *pg = NULL;
	int r;

	if (wants_help(argc, argv)) {
		puts("Usage: fieldsync-hq init\n"
		     "Create HQ's Ed25519 and X25519 keys (DATA_DIR/hq.key, mode 0600) and its\n"
		     "database (DATA_DIR/hq.db), or with [store] backend = postgresql HQ's\n"
		     "schema in the PostgreSQL database [store] postgresql names.  Never\n"
		     "replaces existing keys or data.");
		return EXIT_OK;
	}
	if (argc != 1)
		return usage_error("init", "unexpected argument");
	if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST)
		return fs_error_set(&err, -errno, "data directory %s: %s", cfg->data_dir,
				    strerror(errno)),
		       fail(&err);
	if (getenv("CREDENTIALS_DIRECTORY") && getenv("CREDENTIALS_DIRECTORY")[0]) {
		char cred[4096];

		snprintf(cred, sizeof(cred), "%s/%s", getenv("CREDENTIALS_DIRECTORY"),
			 HQKEYS_CREDENTIAL);
		if (access(cred, F_OK) == 0)
			return fs_error_set(&err, -FS_EEXIST,
					    "init: HQ's key is already given as "
					    "the credential %s; init would make another",
					    cred),
			       fail(&err);
	}
	if (hqconfig_postgresql(cfg)) {
		struct pgdb_config pc;

		/* The database first: a wrong password or a missing database
		 * is found before any key is made. */
		hqdb_pg_config(cfg, cfg->postgresql, &pc);
		if ((r = hqdb_check_dir(cfg->data_dir, &err)) < 0 ||
		    (r = pgdb_connect(&pc, &pg, &err)) < 0 ||
		    (r = pgdb_create_schema(pg, &err)) < 0 ||
		    (r = hqkeys_create(cfg->data_dir, &err)) < 0 ||
		    (r = hqkeys_load(cfg->data_dir, &hq, &err)) < 0)
			goto out;
		pgdb_describe(pg, where, sizeof(where));
		token_hq_fingerprint(hq->sign_pk, hq->box_pk, fp);
		sodium_bin2hex(fp_hex, sizeof(fp_hex), fp, sizeof(fp));
		printf("created HQ keys in %s and HQ's schema in PostgreSQL %s\nHQ fingerprint "
		       "%s\n",
		       cfg->data_dir, where, fp_hex);
		goto out;
	}
	if ((r = hqdb_check_dir(cfg->data_dir, &err)) < 0 ||
	    (r = hqkeys_create(cfg->data_dir, &err)) < 0 ||
	    (r = hqdb_open(cfg->data_dir, HQDB_CREATE, &db, &err)) < 0 ||
	    (r = hqkeys_load(cfg->data_dir, &hq, &err)) < 0)
		goto out;
	token_hq_fingerprint(hq->sign_pk, hq->box_pk, fp);
	sodium_bin2hex(fp_hex, sizeof(fp_hex), fp, sizeof(fp));
	printf("created HQ keys and database in %s\nHQ fingerprint %s\n", cfg->data_dir, fp_hex);
out:
	pgdb_close(pg);
	hqdb_close(db);
	identity_free(hq);
	return r < 0 ? fail(&err) : EXIT_OK;
}

/* ---- serve ------------------------------------------------------------ */

/* "listening on HOST:PORT" with the port actually bound. */
static void print_listening(const char *listen, uint16_t port)
{
	const char *colon = strrchr(listen, ':');

	fprintf(stderr, "listening on %.*s:%u\n", (int)(colon - listen), listen, (unsigned)port);
	fflush(stderr);
}

static void checkpoint_tick(const struct hq_config *cfg, const struct identity *hq)
{
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;

	if (open_db(cfg, &db, &err) < 0 ||
	    audit_checkpoint(db, hq, &cfg->audit, hlc_wall_ms(), 0, NULL, &err) < 0)
		log_msg(LOG_ERR, "audit checkpoint: %s", err.msg);
	hqdb_close(db);
}

static int cmd_serve(struct hq_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { { "listen", required_argument, NULL, OPT_LISTEN },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct fs_error err = { 0 };
	struct identity *hq = NULL;
	struct hq_forms *forms = NULL;
	struct server *srv = NULL;
	struct console *con = NULL;
	struct hqsql *db = NULL;
	unsigned published = 0;
	sigset_t set;
	int opt, sig, r;

	log_open("fieldsync-hq");
	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			puts("Usage: fieldsync-hq serve [--listen ADDR:PORT]\n"
			     "Run the sync server (POST /v1/enroll, POST /v1/changesets,\n"
			     "POST /v1/pull, GET /v1/health) until SIGTERM or SIGINT.  HTTPS with "
			     "[server]\n"
			     "tls_cert and tls_key; plain HTTP only on a loopback address.\n"
			     "Port 0 picks a free port.  Prints \"listening on ADDR:PORT\" to\n"
			     "stderr once ready.");
			return EXIT_OK;
		case OPT_LISTEN:
			if (ini_set(&cfg->listen, optarg) < 0)
				return fs_error_set(&err, -ENOMEM, "out of memory"), fail(&err);
			break;
		default:
			return usage_error("serve", "bad option");
		}
	}
	if (optind != argc)
		return usage_error("serve", "unexpected argument");
	/* Blocked before the server's threads start, so they inherit the mask
	 * and only sigwait below sees the signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
		r = fs_error_set(&err, -EINVAL, "block signals");
		goto out;
	}
	/* Check the database once before accepting anything. */
	if ((r = open_db(cfg, &db, &err)) < 0 || (r = hqkeys_load(cfg->data_dir, &hq, &err)) < 0 ||
	    (r = hqforms_load(cfg->forms_dir, &forms, &err)) < 0 ||
	    (r = formpub_publish(db, forms, hlc_wall_ms(), &published, &err)) < 0 ||
	    (r = downsync_reindex(db, forms, &err)) < 0 ||
	    (r = server_start(cfg, hq, forms, &srv, &err)) < 0)
		goto out;
	db = hqdb_close(db);
	if (published)
		log_msg(LOG_NOTICE, "published %u new form version%s", published,
			published == 1 ? "" : "s");
	/* The console is for people; the devices come first.  One that
	 * cannot start is said plainly, and HQ serves on without it. */
	{
		struct fs_error cerr = { 0 };
		char url[128];

		if (console_start(cfg, hq, forms, &con, &cerr) < 0) {
			log_msg(LOG_ERR, "%s; serving devices without the console", cerr.msg);
		} else if (!con) {
			log_msg(LOG_INFO, "console off ([console] enabled = no)");
		} else {
			console_url(con, url, sizeof(url));
			log_msg(LOG_INFO, "console on %s", url);
		}
	}
	print_listening(cfg->listen, server_port(srv));
	/* Wake once a minute to sign a checkpoint when one is due by time. */
	for (;;) {
		struct timespec minute = { .tv_sec = 60 };

		sig = sigtimedwait(&set, NULL, &minute);
		if (sig == SIGTERM || sig == SIGINT ||
		    (sig < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (sig < 0 && errno == EAGAIN)
			checkpoint_tick(cfg, hq);
	}
	log_msg(LOG_INFO, "stopping");
out:
	console_stop(con);
	server_stop(srv);
	hqforms_free(forms);
	identity_free(hq);
	hqdb_close(db);
	return r < 0 ? fail(&err) : EXIT_OK;
}

/* ---- enroll-token --------------------------------------------------- */

/* "24h", "30m", "7d", "90s" into milliseconds. */
static int parse_duration(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long n;
	uint64_t unit;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-' || strlen(end) != 1 || n == 0)
		return -FS_EUSAGE;
	switch (*end) {
	case 's':
		unit = 1000;
		break;
	case 'm':
		unit = 60 * 1000;
		break;
	case 'h':
		unit = 3600 * 1000;
		break;
	case 'd':
		unit = 86400 * 1000;
		break;
	default:
		return -FS_EUSAGE;
	}
	if (n > 366ULL * 86400 * 1000 / unit)
		return -FS_EUSAGE;
	*ret = n * unit;
	return 0;
}

static int cmd_enroll_token(struct hq_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { { "team", required_argument, NULL, OPT_TEAM },
					      { "municipality", required_argument, NULL,
						OPT_MUNICIPALITY },
					      { "scope", required_argument, NULL, OPT_SCOPE },
					      { "expires", required_argument, NULL, OPT_EXPIRES },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *team = NULL, *muni = NULL, *expires = "24h", *scope = NULL;
	struct fs_error err = { 0 };
	struct identity *hq = NULL;
	uint8_t pin[TLSPIN_BYTES];
	uint64_t ttl, now = hlc_wall_ms();
	char token[TOKEN_TEXT_MAX], when[HLC_TIME_LEN + 1];
	struct hqsql *db = NULL;
	int opt, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			puts("Usage: fieldsync-hq enroll-token --team NAME --municipality NAME\n"
			     "                                 [--scope A,B] [--expires 24h]\n"
			     "Print a one-time enrolment token on the last line of stdout.  It\n"
			     "carries HQ's key fingerprint and, when [server] tls_cert is set, "
			     "the\n"
			     "SHA-256 pin of its public key.  --expires takes N s|m|h|d (at most\n"
			     "366 days).  Hand the token over privately: it enrols one device.\n"
			     "The device may write the records of its municipality, or of the\n"
			     "municipalities --scope lists (\"*\": all); see `scope --help`.");
			return EXIT_OK;
		case OPT_SCOPE:
			scope = optarg;
			break;
		case OPT_TEAM:
			team = optarg;
			break;
		case OPT_MUNICIPALITY:
			muni = optarg;
			break;
		case OPT_EXPIRES:
			expires = optarg;
			break;
		default:
			return usage_error("enroll-token", "bad option");
		}
	}
	if (optind != argc || !team || !muni)
		return usage_error("enroll-token", "--team and --municipality are required");
	if (parse_duration(expires, &ttl) < 0)
		return usage_error("enroll-token", "--expires takes N followed by s, m, h or d");
	if ((r = open_db(cfg, &db, &err)) < 0 || (r = hqkeys_load(cfg->data_dir, &hq, &err)) < 0 ||
	    (cfg->tls_cert && (r = tlspin_from_cert(cfg->tls_cert, pin, &err)) < 0) ||
	    (r = hqenroll_token_create(db, hq, team, muni, scope, now, now + ttl,
				       cfg->tls_cert ? pin : NULL, token, &err)) < 0)
		goto out;
	hlc_format_time((now + ttl) << 16, when);
	printf("enrolment token for team %s, %s; valid until %s%s\n%s\n", team, muni, when,
	       cfg->tls_cert ? "; pins HQ's TLS key" : "", token);
	sodium_memzero(token, sizeof(token));
out:
	hqdb_close(db);
	identity_free(hq);
	return r < 0 ? fail(&err) : EXIT_OK;
}

/* ---- devices, revoke, conflicts ---------------------------------------- */

/* Audit an administrator's command that read or wrote HQ's data: what
 * ran, never what it printed.  A failure to record it fails the command,
 * so nothing reads HQ's data unaudited. */
static int audit_admin(struct hqsql *db, const char *event, const char *command, const char *what,
		       struct fs_error *err)
{
	return audit_append_strings(db, hlc_wall_ms(), event, NULL, err, "command", command, "what",
				    what, (const char *)NULL);
}

/* `devices` and `conflicts`: one optional --json. */
static int cmd_listing(struct hq_config *cfg, int argc, char **argv, const char *name,
		       const char *help,
		       int (*list)(struct hqsql *, int, FILE *, struct fs_error *))
{
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	int json = 0, r;

	if (wants_help(argc, argv)) {
		puts(help);
		return EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json"))
			return usage_error(name, "unexpected argument");
		json = 1;
	}
	if ((r = open_db(cfg, &db, &err)) == 0 &&
	    (r = audit_admin(db, "admin", name, NULL, &err)) == 0)
		r = list(db, json, stdout, &err);
	hqdb_close(db);
	return r < 0 ? fail(&err) : EXIT_OK;
}

static int cmd_revoke(struct hq_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { { "reason", required_argument, NULL, OPT_REASON },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *reason = "revoked by an administrator";
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	int opt, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			puts("Usage: fieldsync-hq revoke DEVICE [--reason TEXT]\n"
			     "Mark DEVICE revoked: HQ answers its pushes 403 from now on.  Change\n"
			     "sets already accepted stay.  Do not put personal data in TEXT.");
			return EXIT_OK;
		case OPT_REASON:
			reason = optarg;
			break;
		default:
			return usage_error("revoke", "bad option");
		}
	}
	if (optind + 1 != argc)
		return usage_error("revoke", "expected one DEVICE");
	if ((r = open_db(cfg, &db, &err)) == 0 &&
	    (r = admin_revoke(db, argv[optind], reason, hlc_wall_ms(), &err)) == 0)
		printf("revoked device %s\n", argv[optind]);
	hqdb_close(db);
	return r < 0 ? fail(&err) : EXIT_OK;
}

static int cmd_scope(struct hq_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { { "municipality", required_argument, NULL,
						OPT_MUNICIPALITY },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *list = NULL;
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	int opt, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			puts("Usage: fieldsync-hq scope DEVICE --municipality A,B\n"
			     "Set which municipalities' records DEVICE may write: a list "
			     "separated\n"
			     "by commas, or \"*\" for all.  Names match whatever their case, "
			     "script\n"
			     "and diacritics (\"Bujanovac\" is \"Бујановац\").  A change to a "
			     "record\n"
			     "outside the scope is quarantined, not merged.  The change is in the\n"
			     "audit log with the scope before it.");
			return EXIT_OK;
		case OPT_MUNICIPALITY:
			list = optarg;
			break;
		default:
			return usage_error("scope", "bad option");
		}
	}
	if (optind + 1 != argc || !list)
		return usage_error("scope", "expected DEVICE and --municipality");
	if ((r = open_db(cfg, &db, &err)) == 0 &&
	    (r = scope_change(db, argv[optind], list, hlc_wall_ms(), &err)) == 0)
		printf("device %s may write: %s\n", argv[optind], list);
	hqdb_close(db);
	return r < 0 ? fail(&err) : EXIT_OK;
}

/* ---- export ----------------------------------------------------------- */

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS[.mmm]Z" (UTC) into Unix ms. */
static int parse_time(const char *s, uint64_t *ret)
{
	struct tm tm = { 0 };
	int ms = 0, n = 0, len = (int)strlen(s);
	time_t t;

	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3)
		return -FS_EUSAGE;
	if (n != len) {
		int m = 0;

		if (sscanf(s + n, "T%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &m) != 3)
			return -FS_EUSAGE;
		n += m;
		if (s[n] == '.' && sscanf(s + n, ".%3d%n", &ms, &m) == 1)
			n += m;
		if (strcmp(s + n, "Z"))
			return -FS_EUSAGE;
	}
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || ms < 0 || tm.tm_year < 1970)
		return -FS_EUSAGE;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) < 0)
		return -FS_EUSAGE;
	*ret = (uint64_t)t * 1000 + (uint64_t)ms;
	return 0;
}

/* ---- audit ------------------------------------------------------------ */

static const char audit_usage[] =
	"Usage: fieldsync-hq audit list [--device ID] [--event TYPE] [--since TIME] [--json]\n"
	"       fieldsync-hq audit verify\n"
	"       fieldsync-hq audit export\n"
	"       fieldsync-hq audit checkpoint\n"
	"\n"
	"HQ's audit log: every enrolment, change set accepted or refused (and why),\n"
	"revocation and token, append-only and hash-chained in an RFC 6962 Merkle\n"
	"tree whose heads HQ signs as C2SP tlog-checkpoint notes.\n"
	"  list        entries, oldest first; times in UTC as in 'fieldsync log'\n"
	"  verify      recompute every entry's hash and every checkpoint's root and\n"
	"              signature; exit 3 naming the first altered, removed, inserted\n"
	"              or reordered entry, or the checkpoint that no longer matches\n"
	"  export      JSON Lines with the verifier key, every entry and its leaf\n"
	"              hash, and every checkpoint, to verify offline\n"
	"  checkpoint  sign a checkpoint if the log grew, then print the latest\n"
	"TIME is 2026-11-24 or 2026-11-24T10:00:00Z.";

static int cmd_audit(struct hq_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { { "device", required_argument, NULL, OPT_DEVICE },
					      { "event", required_argument, NULL, OPT_EVENT },
					      { "since", required_argument, NULL, OPT_SINCE },
					      { "json", no_argument, NULL, OPT_JSON },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct audit_filter f = { 0 };
	struct fs_error err = { 0 };
	struct identity *hq = NULL;
	const char *verb;
	char *note = NULL;
	uint64_t size = 0;
	struct hqsql *db = NULL;
	int json = 0, opt, r;

	if (argc < 2 || wants_help(argc, argv)) {
		puts(audit_usage);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	verb = argv[1];
	optind = 0;
	while ((opt = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_DEVICE:
			f.device = optarg;
			break;
		case OPT_EVENT:
			f.event = optarg;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case OPT_SINCE:
			if (parse_time(optarg, &f.since_ms) < 0)
				return usage_error("audit", "--since takes 2026-11-24 or "
							    "2026-11-24T10:00:00Z");
			break;
		default:
			return usage_error("audit", "bad option");
		}
	}
	if (optind != argc - 1)
		return usage_error("audit", "unexpected argument");
	if (strcmp(verb, "list") && (f.device || f.event || f.since_ms || json))
		return usage_error("audit", "only list takes options");
	if ((r = open_db(cfg, &db, &err)) < 0)
		goto out;
	if (!strcmp(verb, "list")) {
		if ((r = audit_admin(db, "admin", "audit list", NULL, &err)) == 0)
			r = audit_list(db, &f, json, stdout, &err);
	} else if (!strcmp(verb, "verify") || !strcmp(verb, "export") ||
		   !strcmp(verb, "checkpoint")) {
		if ((r = hqkeys_load(cfg->data_dir, &hq, &err)) < 0)
			goto out;
		/* verify first, then record that it ran (and how it ended),
		 * so the entry is not part of what it checked. */
		if (!strcmp(verb, "verify")) {
			struct fs_error aerr = { 0 };

			r = audit_verify(db, hq->sign_pk, stdout, &err);
			if (audit_admin(db, "admin", "audit verify", r < 0 ? "failed" : "ok",
					&aerr) < 0 &&
			    r == 0) {
				err = aerr;
				r = aerr.code;
			}
		} else if (!strcmp(verb, "export")) {
			if ((r = audit_admin(db, "admin", "audit export", NULL, &err)) == 0)
				r = audit_export(db, hq->sign_pk, stdout, &err);
		} else if ((r = audit_checkpoint(db, hq, &cfg->audit, hlc_wall_ms(), 1, NULL,
						 &err)) == 0 &&
			   (r = audit_latest(db, &note, &size, &err)) == 0) {
			if (note)
				fputs(note, stdout);
			else
				r = fs_error_set(&err, -FS_ENOTFOUND, "the audit log is empty");
		}
	} else {
		char tok[FS_TOKEN_MAX + 3];

		r = usage_error("audit", "unknown subcommand %s", fs_error_token(verb, tok));
		goto done;
	}
out:
	r = r < 0 ? fail(&err) : EXIT_OK;
done:
	free(note);
	identity_free(hq);
	hqdb_close(db);
	return r;
}

/* ---- migrate ---------------------------------------------------------- */

static int cmd_migrate(struct hq_config *cfg, int argc, char **argv)
{
	struct pgdb_config pc;
	struct hqsql *from = NULL, *to = NULL;
	struct fs_error err = { 0 };
	PGconn *pg = NULL;
	char where[512];
	int r;

	if (wants_help(argc, argv)) {
		puts("Usage: fieldsync-hq migrate --to postgresql CONNINFO\n"
		     "Copy this HQ's SQLite database (DATA_DIR/hq.db) into a new HQ schema in\n"
		     "the PostgreSQL database CONNINFO names (a libpq connection string\n"
		     "without a password: it comes from [store] postgresql_password_file or\n"
		     "the credential " PGDB_CREDENTIAL "), in one transaction.  The audit log,\n"
		     "its tree and signed checkpoints are copied whole, so `audit verify`\n"
		     "passes there and devices' checkpoints stay consistent.  Stop serve\n"
		     "first; afterwards set [store] backend = postgresql and [store]\n"
		     "postgresql.  hq.db is left as it was.");
		return EXIT_OK;
	}
	if (argc != 4 || strcmp(argv[1], "--to") || strcmp(argv[2], "postgresql"))
		return usage_error("migrate", "expected --to postgresql CONNINFO");
	hqdb_pg_config(cfg, argv[3], &pc);
	if ((r = hqdb_open(cfg->data_dir, HQDB_OPEN, &from, &err)) < 0 ||
	    (r = pgdb_connect(&pc, &pg, &err)) < 0)
		goto out;
	pgdb_describe(pg, where, sizeof(where));
	if ((r = hqsql_wrap_pg(pg, &to, &err)) < 0)
		goto out;
	pg = NULL;
	if ((r = migrate_to_postgresql(from, to, stdout, &err)) == 0)
		printf("copied HQ from %s/%s to PostgreSQL %s\n", cfg->data_dir, HQDB_FILE, where);
out:
	pgdb_close(pg);
	hqdb_close(to);
	hqdb_close(from);
	return r < 0 ? fail(&err) : EXIT_OK;
}

static int cmd_export(struct hq_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { { "format", required_argument, NULL, OPT_FORMAT },
					      { "since", required_argument, NULL, OPT_SINCE },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *format = NULL, *collection;
	struct fs_error err = { 0 };
	struct hq_forms *forms = NULL;
	const struct form *f;
	enum export_format fmt;
	uint64_t since = 0;
	char tok[FS_TOKEN_MAX + 3];
	struct hqsql *db = NULL;
	int opt, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			puts("Usage: fieldsync-hq export COLLECTION --format csv|jsonl [--since "
			     "TIME]\n"
			     "Write the merged, live records of COLLECTION (beneficiaries, "
			     "visits)\n"
			     "to stdout, ordered by id: id, every form field, updated, device, "
			     "team.\n"
			     "CSV is UTF-8 with a BOM and CRLF, for LibreOffice and Excel.  TIME "
			     "is\n"
			     "YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC): records that HQ received "
			     "a\n"
			     "change to since then, by HQ's clock, so visits synced days after\n"
			     "they were recorded are included.");
			return EXIT_OK;
		case OPT_FORMAT:
			format = optarg;
			break;
		case OPT_SINCE:
			if (parse_time(optarg, &since) < 0)
				return usage_error("export", "--since takes YYYY-MM-DD or "
							     "YYYY-MM-DDTHH:MM:SSZ");
			break;
		default:
			return usage_error("export", "bad option");
		}
	}
	if (optind + 1 != argc)
		return usage_error("export", "expected one COLLECTION");
	collection = argv[optind];
	if (!format || (strcmp(format, "csv") && strcmp(format, "jsonl")))
		return usage_error("export", "--format csv or --format jsonl is required");
	fmt = !strcmp(format, "csv") ? EXPORT_CSV : EXPORT_JSONL;
	if ((r = hqforms_load(cfg->forms_dir, &forms, &err)) < 0)
		goto out;
	if (!(f = hqforms_find(forms, collection))) {
		r = fs_error_set(&err, -FS_EUSAGE, "export: unknown collection %s",
				 fs_error_token(collection, tok));
		goto out;
	}
	if ((r = open_db(cfg, &db, &err)) == 0 &&
	    (r = audit_admin(db, "export", "export", collection, &err)) == 0)
		r = export_records(db, f, fmt, since, stdout, &err);
out:
	hqdb_close(db);
	hqforms_free(forms);
	return r < 0 ? fail(&err) : EXIT_OK;
}

/* ---- dispatch --------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
					      { "data-dir", required_argument, NULL, OPT_DATA_DIR },
					      { "forms-dir", required_argument, NULL,
						OPT_FORMS_DIR },
					      { "help", no_argument, NULL, 'h' },
					      { "version", no_argument, NULL, 'V' },
					      { NULL, 0, NULL, 0 } };
	char *overrides[2] = { NULL, NULL }, tok[FS_TOKEN_MAX + 3];
	const char *config_path = NULL, *cmd;
	struct hq_config cfg = { 0 };
	struct fs_error err = { 0 };
	int opt, r;

	if (secmem_init() < 0) {
		fprintf(stderr, "fieldsync-hq: libsodium failed to initialise\n");
		return EXIT_KEY;
	}
	/* Every file HQ makes (database, WAL, keys) is its user's alone,
	 * whatever umask it was started with; and no core dump or ptrace
	 * of another process of the same user reads the keys. */
	umask(077);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fprintf(stderr, "fieldsync-hq: prctl(PR_SET_DUMPABLE): %s\n", strerror(errno));
	while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case OPT_DATA_DIR:
			overrides[0] = optarg;
			break;
		case OPT_FORMS_DIR:
			overrides[1] = optarg;
			break;
		case 'h':
			fputs(main_usage, stdout);
			return EXIT_OK;
		case 'V':
			puts("fieldsync-hq " FS_VERSION);
			return EXIT_OK;
		default:
			return usage_error(NULL, "bad option");
		}
	}
	if (optind >= argc)
		return usage_error(NULL, "no command given");
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (!strcmp(cmd, "help")) {
		fputs(main_usage, stdout);
		return EXIT_OK;
	}
	if (load_config(config_path, overrides, &cfg, &err) < 0) {
		hqconfig_free(&cfg);
		return fail(&err);
	}
	if (!strcmp(cmd, "init"))
		r = cmd_init(&cfg, argc, argv);
	else if (!strcmp(cmd, "serve"))
		r = cmd_serve(&cfg, argc, argv);
	else if (!strcmp(cmd, "enroll-token"))
		r = cmd_enroll_token(&cfg, argc, argv);
	else if (!strcmp(cmd, "devices"))
		r = cmd_listing(&cfg, argc, argv, "devices",
				"Usage: fieldsync-hq devices [--json]\n"
				"List enrolled devices: id, team, municipality, last seen, last\n"
				"sequence, state (active or revoked) and scope.",
				admin_devices);
	else if (!strcmp(cmd, "audit"))
		r = cmd_audit(&cfg, argc, argv);
	else if (!strcmp(cmd, "user"))
		r = hqcli_user(&cfg, argc, argv);
	else if (!strcmp(cmd, "attachment"))
		r = hqcli_attachment(&cfg, argc, argv);
	else if (!strcmp(cmd, "resolve") || !strcmp(cmd, "release") || !strcmp(cmd, "reject"))
		r = hqcli_review(&cfg, cmd, argc, argv);
	else if (!strcmp(cmd, "revoke"))
		r = cmd_revoke(&cfg, argc, argv);
	else if (!strcmp(cmd, "scope"))
		r = cmd_scope(&cfg, argc, argv);
	else if (!strcmp(cmd, "export"))
		r = cmd_export(&cfg, argc, argv);
	else if (!strcmp(cmd, "migrate"))
		r = cmd_migrate(&cfg, argc, argv);
	else if (!strcmp(cmd, "conflicts"))
		r = cmd_listing(
			&cfg, argc, argv, "conflicts",
			"Usage: fieldsync-hq conflicts [--json]\n"
			"List each field that two devices edited concurrently from the same\n"
			"value: record, field, both values, both devices and which won.\n"
			"Values are personal data: keep the output out of logs and tickets.",
			admin_conflicts);
	else if (!strcmp(cmd, "review"))
		r = cmd_listing(
			&cfg, argc, argv, "review",
			"Usage: fieldsync-hq review [--json]\n"
			"List what a team should look at in its caseload: every delete, and\n"
			"every change by a team other than the one that registered the\n"
			"record (the first to write it), with when, which device and team,\n"
			"and whether the change is the value HQ holds now.  Values are not\n"
			"shown.",
			admin_review);
	else if (!strcmp(cmd, "quarantine"))
		r = cmd_listing(
			&cfg, argc, argv, "quarantine",
			"Usage: fieldsync-hq quarantine [--json]\n"
			"List each change HQ kept but did not merge: device, sequence, index\n"
			"in the change set, record, field, when it arrived and why (unknown\n"
			"collection or field, invalid value, a clock too far ahead).  Values\n"
			"are not shown; the change sets are kept whole.",
			admin_quarantine);
	else
		r = usage_error(NULL, "unknown command %s", fs_error_token(cmd, tok));
	hqconfig_free(&cfg);
	return r;
}
