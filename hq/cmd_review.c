/* cmd_review.c - `fieldsync-hq resolve|release|reject` (hq/cmd_review.h). */
#include "hq/cmd_review.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "hq/admin.h"
#include "hq/hqdb.h"
#include "hq/hqforms.h"
#include "hq/hqkeys.h"
#include "hq/ingest.h"
#include "sync/clierr.h"
#include "sync/hlc.h"

static const char resolve_usage[] =
	"Usage: fieldsync-hq resolve CONFLICT (--keep a|b | --value-file FILE | --value TEXT)\n"
	"Settle conflict CONFLICT (its number in `conflicts`): keep the value a or\n"
	"b, or enter a new one, typed as for `fieldsync beneficiary add` (an\n"
	"integer, yes/no, items separated by commas; empty clears the field): the\n"
	"first line of FILE (- for standard input), or TEXT, which other users\n"
	"of this machine can see in the process list.  HQ writes\n"
	"it as a new edit, later than both, so it reaches every device of the\n"
	"record's municipality with its next pull; an edit made after it still\n"
	"wins.  Every open conflict on the same field is settled with it.  The\n"
	"audit log records who and which choice, never the value.\n";

static const char review_usage[] =
	"Usage: fieldsync-hq release|reject DEVICE SEQ INDEX --reason TEXT\n"
	"Decide on a change in quarantine (see `quarantine`): release merges it\n"
	"as if it had arrived in order (a later edit still wins); reject drops\n"
	"it and keeps HQ's value.  Either way it leaves the quarantine, and the\n"
	"audit log records who and why.  Do not put personal data in TEXT.\n";

enum { OPT_KEEP = 256, OPT_VALUE, OPT_VALUE_FILE, OPT_REASON };

static int fail(const struct fs_error *e)
{
	return clierr_fail(stderr, "fieldsync-hq", e);
}

/* The first line of path ("-": standard input), without its newline, into
 * *ret (malloc'd).  A value is personal data: no part of it goes into an
 * error. */
static int read_line(const char *path, char **ret, struct fs_error *err)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	size_t cap = 0;
	ssize_t n;

	*ret = NULL;
	if (!f)
		return fs_error_set(err, -errno, "value file %s: %s", path, strerror(errno));
	n = getline(ret, &cap, f);
	if (f != stdin)
		fclose(f);
	if (n < 0) {
		free(*ret);
		*ret = NULL;
		return fs_error_set(err, -FS_EUSAGE, "value file %s: empty", path);
	}
	while (n > 0 && ((*ret)[n - 1] == '\n' || (*ret)[n - 1] == '\r'))
		(*ret)[--n] = '\0';
	return 0;
}

/* A decimal number in [min, max], or -1. */
static long long number(const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	return errno || end == s || *end || v < min || v > max ? -1 : v;
}

int hqcli_review(struct hq_config *cfg, const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = { { "keep", required_argument, NULL, OPT_KEEP },
					      { "value", required_argument, NULL, OPT_VALUE },
					      { "value-file", required_argument, NULL,
						OPT_VALUE_FILE },
					      { "reason", required_argument, NULL, OPT_REASON },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	int resolve = !strcmp(cmd, "resolve"), opt, r;
	const char *keep = NULL, *value = NULL, *reason = NULL, *value_file = NULL;
	char *line = NULL;
	struct ingest_ctx ctx = { .wall_ms = hlc_wall_ms };
	const struct passwd *pw = getpwuid(getuid());
	struct identity *hq = NULL;
	struct hq_forms *forms = NULL;
	struct fs_error err = { 0 };
	char user[80];
	long long a = -1, b = -1, c = -1;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(resolve ? resolve_usage : review_usage, stdout);
			return EXIT_OK;
		case OPT_KEEP:
			keep = optarg;
			break;
		case OPT_VALUE:
			value = optarg;
			break;
		case OPT_VALUE_FILE:
			value_file = optarg;
			break;
		case OPT_REASON:
			reason = optarg;
			break;
		default:
			return clierr_usage(stderr, "fieldsync-hq", cmd, "bad option");
		}
	}
	if (resolve) {
		if (optind + 1 != argc || reason ||
		    (a = number(argv[optind], 1, (long long)INT64_MAX)) < 0)
			return clierr_usage(stderr, "fieldsync-hq", cmd,
					    "expected one CONFLICT number");
		if ((!!keep + !!value + !!value_file) != 1 ||
		    (keep && strcmp(keep, "a") && strcmp(keep, "b")))
			return clierr_usage(stderr, "fieldsync-hq", cmd,
					    "give --keep a, --keep b, --value-file FILE or --value "
					    "TEXT");
	} else {
		if (keep || value || value_file || !reason || !*reason)
			return clierr_usage(stderr, "fieldsync-hq", cmd,
					    "give --reason TEXT and nothing else");
		if (optind + 3 != argc ||
		    (b = number(argv[optind + 1], 1, (long long)INT64_MAX)) < 0 ||
		    (c = number(argv[optind + 2], 0, UINT32_MAX)) < 0)
			return clierr_usage(stderr, "fieldsync-hq", cmd,
					    "expected DEVICE SEQ INDEX");
	}
	if (value_file && (r = read_line(value_file, &line, &err)) < 0)
		goto out;
	if (line)
		value = line;
	snprintf(user, sizeof(user), "shell:%s", pw ? pw->pw_name : "?");
	if ((r = hqkeys_load(cfg->data_dir, &hq, &err)) < 0 ||
	    (r = hqforms_load(cfg->forms_dir, &forms, &err)) < 0 ||
	    (r = hqdb_connect(cfg, &ctx.db, &err)) < 0)
		goto out;
	ctx.hq = hq;
	ctx.forms = forms;
	if (resolve)
		r = ingest_resolve(&ctx, a, keep ? keep : "new", value, user, &err);
	else
		r = ingest_review(&ctx, argv[optind], (uint64_t)b, (uint32_t)c,
				  !strcmp(cmd, "release"), user, reason, &err);
	if (r == 0 && resolve)
		printf("resolved conflict %lld: %s\n", a,
		       admin_resolution_words(keep ? keep : "new"));
	else if (r == 0)
		printf("%s change %lld of set %lld from %s\n",
		       !strcmp(cmd, "release") ? "released" : "rejected", c, b, argv[optind]);
out:
	if (line) {
		sodium_memzero(line, strlen(line));
		free(line);
	}
	hqdb_close(ctx.db);
	hqforms_free(forms);
	identity_free(hq);
	return r < 0 ? fail(&err) : EXIT_OK;
}
