/* cmd_files.c - `fieldsync-hq attachment get|list|sweep` (hq/cmd_files.h). */
#include "hq/cmd_files.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hq/audit.h"
#include "hq/files.h"
#include "hq/hqdb.h"
#include "hq/hqkeys.h"
#include "hq/upload.h"
#include "sync/clierr.h"
#include "sync/hlc.h"

static const char usage[] =
	"Usage: fieldsync-hq attachment get HASH > FILE\n"
	"       fieldsync-hq attachment list\n"
	"       fieldsync-hq attachment sweep\n"
	"Attached files (photos, scans) HQ received, by their SHA-256 (64 hex\n"
	"digits), as records and exports name them.\n"
	"\n"
	"  get    write the file to standard output, checked against its seal and\n"
	"         its hash as it is read; exit status 2 when it fails the check\n"
	"         (discard what was written).  Audited with the hash and the user.\n"
	"  list   hash, size in bytes, the device that sent it first, and when.\n"
	"  sweep  drop the chunks of uploads no chunk reached for [server]\n"
	"         upload_idle_days (default 30), of revoked devices, and those no\n"
	"         upload names; each is audited as upload_dropped.  A device keeps\n"
	"         its files until HQ holds them, and begins such an upload again.\n"
	"         Safe to run from a timer while HQ serves.\n";

static int fail(const struct fs_error *e)
{
	return clierr_fail(stderr, "fieldsync-hq", e);
}

static int list_files(struct hqsql *db, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	char at[HLC_TIME_LEN + 1];
	int r, rc;

	if ((r = hqsql_prepare(db,
			       "SELECT sha256, size, device, received_at FROM files ORDER BY "
			       "received_at, sha256",
			       &st, err)) < 0)
		return r;
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		hlc_format_time((hlc_t)hqsql_column_int64(st, 3) << 16, at);
		printf("%s %lld %s %s\n", hqsql_column_text(st, 0),
		       (long long)hqsql_column_int64(st, 1), hqsql_column_text(st, 2), at);
	}
	if (rc != HQSQL_DONE)
		r = hqsql_fail(db, "list the files", err);
	hqsql_finalize(st);
	return r;
}

static int sweep(const struct hq_config *cfg, struct hqsql *db, const struct hqfiles *files,
		 struct fs_error *err)
{
	unsigned long long dropped = 0;
	int r;

	if ((r = upload_sweep(db, files, NULL, hlc_wall_ms(),
			      (uint64_t)cfg->upload_idle_days * 86400000, &dropped, err)) == 0)
		printf("dropped %llu uploads\n", dropped);
	return r;
}

int hqcli_attachment(struct hq_config *cfg, int argc, char **argv)
{
	struct passwd *pw = getpwuid(getuid());
	struct fs_error err = { 0 };
	struct identity *hq = NULL;
	struct hqfiles *files = NULL;
	struct hqsql *db = NULL;
	char user[80];
	const char *verb = argc > 1 ? argv[1] : NULL;
	int r;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return FS_EXIT_OK;
		}
	if (!verb || (strcmp(verb, "get") && strcmp(verb, "list") && strcmp(verb, "sweep")))
		return clierr_usage(stderr, "fieldsync-hq", "attachment",
				    "expected get, list or sweep");
	if (strcmp(verb, "get") && argc != 2)
		return clierr_usage(stderr, "fieldsync-hq", "attachment",
				    "list and sweep take no argument");
	if (!strcmp(verb, "get") && (argc != 3 || strlen(argv[2]) != HQFILES_HEX ||
				     strspn(argv[2], "0123456789abcdef") != HQFILES_HEX))
		return clierr_usage(stderr, "fieldsync-hq", "attachment",
				    "get takes one HASH: 64 lower-case hex digits");
	snprintf(user, sizeof(user), "shell:%s", pw ? pw->pw_name : "?");
	if ((r = hqdb_connect(cfg, &db, &err)) < 0)
		goto out;
	if (!strcmp(verb, "list")) {
		if ((r = audit_append_strings(db, hlc_wall_ms(), "admin", NULL, &err, "command",
					      "attachment list", "user", user,
					      (const char *)NULL)) == 0)
			r = list_files(db, &err);
		goto out;
	}
	if ((r = hqkeys_load(cfg->data_dir, &hq, &err)) < 0 ||
	    (r = hqfiles_open(cfg->data_dir, hq, &files, &err)) < 0)
		goto out;
	if (!strcmp(verb, "sweep")) {
		if ((r = audit_append_strings(db, hlc_wall_ms(), "admin", NULL, &err, "command",
					      "attachment sweep", "user", user,
					      (const char *)NULL)) == 0)
			r = sweep(cfg, db, files, &err);
		goto out;
	}
	if (!hqfiles_has(files, argv[2])) {
		r = fs_error_set(&err, -FS_ENOTFOUND, "no attachment %.12s at HQ", argv[2]);
		goto out;
	}
	/* Audited before a byte leaves. */
	if ((r = audit_append_strings(db, hlc_wall_ms(), "attachment_get", NULL, &err, "command",
				      "attachment get", "sha256", argv[2], "user", user,
				      (const char *)NULL)) < 0)
		goto out;
	r = hqfiles_get(files, argv[2], stdout, &err);
	if (r == 0 && fflush(stdout) != 0)
		r = fs_error_set(&err, -EIO, "write attachment %.12s: %s", argv[2],
				 strerror(errno));
out:
	hqfiles_close(files);
	identity_free(hq);
	hqdb_close(db);
	return r < 0 ? fail(&err) : FS_EXIT_OK;
}
