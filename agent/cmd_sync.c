/* cmd_sync.c - enroll, sync and pull (agent/cmd.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "agent/cmd.h"
#include "agent/attempt.h"
#include "agent/enroll.h"
#include "agent/netproc.h"
#include "agent/skew.h"
#include "crypto/secmem.h"
#include "sync/changeset.h"
#include "sync/token.h"

/* ---- enroll and sync --------------------------------------------------- */

/* Read a token from standard input into secure memory: its first line. */
static int token_from_stdin(const struct cli *c, const char *arg, char **ret, struct fs_error *err)
{
	char *buf;
	size_t n = 0;
	FILE *fp;
	int ch, r;

	if ((r = cmd_open_input(c, arg, &fp, err)) < 0)
		return r;
	/* stdio buffers what it reads; the token is a secret, so no buffer. */
	setvbuf(fp, NULL, _IONBF, 0);
	buf = secmem_alloc(TOKEN_TEXT_MAX + 2);
	if (!buf) {
		fclose(fp);
		return fs_error_set(err, -ENOMEM, "out of secure memory");
	}
	while ((ch = getc(fp)) != EOF && ch != '\n')
		if (n < TOKEN_TEXT_MAX + 1)
			buf[n++] = (char)ch;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	fclose(fp);
	*ret = buf;
	return 0;
}

int cmd_enroll(struct cli *c, const struct command_call *call)
{
	static const char usage[] =
		"Usage: fieldsync enroll URL TOKEN|-\n"
		"Register this device with HQ using a one-time token from\n"
		"'fieldsync-hq enroll-token' (TOKEN - reads it from standard input).\n"
		"The token names HQ's keys, so none is trusted on first use; a token\n"
		"with a TLS pin also pins HQ's TLS key.  URL is https://..., or\n"
		"http://... on a loopback address.  A device enrols once.\n";
	struct hqlink *t = NULL;
	struct fs_error err = { 0 };
	struct store *s = NULL;
	struct enrolment e;
	char *token = NULL, *const *args = call->o.args;
	int r;

	if (call->o.help) {
		fputs(usage, c->out);
		return EXIT_OK;
	}
	if (call->o.nargs != 2)
		return usage_error("enroll", "expected URL and TOKEN");
	if (!strcmp(args[1], "-"))
		r = token_from_stdin(c, args[1], &token, &err);
	else
		r = secmem_dup(args[1], strlen(args[1]) + 1, (unsigned char **)&token) < 0
			    ? fs_error_set(&err, -ENOMEM, "out of secure memory")
			    : 0;
	/* Keep the token out of /proc/PID/cmdline from here on. */
	sodium_memzero(args[1], strlen(args[1]));
	if (r < 0 || (r = cmd_open_store(c, &s, &err)) < 0 ||
	    (r = netproc_hqlink(&t, c->cancel, 0, 0, &err)) < 0)
		goto out;
	if ((r = enroll_device(s, args[0], token, t, &e, &err)) < 0)
		goto out;
	c->wrote = 1;
	fprintf(c->out, "enrolled with HQ at %s: team %s, municipality %s%s\n", e.target.url,
		e.team, e.municipality, e.target.tls_pin[0] ? "; TLS key pinned" : "");
out:
	secmem_free(token);
	hqlink_free(t);
	cmd_release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}

static void sync_progress(unsigned long long done, unsigned long long total, void *ctx)
{
	struct cli *c = ctx;

	fprintf(c->err, "\rsending: %llu of %llu change sets", done, total);
	fflush(c->err);
}

static const char pull_usage[] =
	"Usage: fieldsync pull\n"
	"Fetch the merged records of this device's scope from HQ: every\n"
	"down-set after the last one applied, each signed by the HQ key pinned\n"
	"at enrolment and sealed to this device.  A field takes HQ's value when\n"
	"HQ's write is the later one; changes not yet sent are kept and sent.\n"
	"Records that left the scope are removed, unless they have changes HQ\n"
	"has not acknowledged.  `sync` pulls too, after it pushes.\n"
	"\n"
	"HQ's form definitions come the same way; from then on this device\n"
	"validates what it records with HQ's version (see 'fieldsync forms').\n"
	"\n"
	"Prints 'received N down-sets (M changes), K records left the scope',\n"
	"and 'took N form definitions from HQ' when HQ sent any.\n"
	"Exit status: 0 ok, 2 HQ refused (e.g. device revoked), 3 key or crypto\n"
	"(a down-set not signed by HQ's key), 4 I/O (HQ unreachable).\n";

const struct opts_spec cmd_sync_options[] = { { "max-changes", OPTS_VALUE }, { NULL, 0 } };
enum { OPT_MAX_CHANGES };

static const char sync_usage[] =
	"Usage: fieldsync sync [--max-changes N]\n"
	"Pack pending changes into signed change sets sealed to HQ, then send\n"
	"every unacknowledged set in order.  A set counts as sent only when\n"
	"HQ's receipt verifies with the HQ key pinned at enrolment.  Killed at\n"
	"any moment, the next run resumes without losing or repeating changes.\n"
	"\n"
	"  --max-changes N   at most N changes per change set (1 to 20000,\n"
	"                    default 1000)\n"
	"\n"
	"Then pull what HQ holds for this device's scope (see pull --help),\n"
	"and last send the attached files HQ does not hold yet, in chunks\n"
	"([sync] chunk_kib); a cut link resumes where it stopped.\n"
	"\n"
	"Prints 'sent N change sets (M changes), K quarantined at HQ',\n"
	"'received N down-sets (M changes), K records left the scope', and\n"
	"'sent N files (M chunks, B bytes)' when files went.\n"
	"Exit status: 0 ok, 2 HQ refused (e.g. device revoked), 3 key or crypto\n"
	"(receipt signature, TLS pin), 4 I/O (HQ unreachable or overloaded).\n";

int cmd_sync_request(struct cli *c, const struct command_call *call, unsigned long *ret_max,
		     int *ret_pull)
{
	const char *v = call->o.value[OPT_MAX_CHANGES];
	int pull = !strcmp(call->cmd->name, "pull");
	char *end;

	*ret_max = 0;
	*ret_pull = pull ? ATTEMPT_PULL_ONLY : ATTEMPT_PULL_ALWAYS;
	if (call->o.help) {
		fputs(pull ? pull_usage : sync_usage, c->out);
		return EXIT_OK;
	}
	if (call->o.nargs != 0)
		return usage_error(call->cmd->name, "unexpected argument");
	if (v) {
		errno = 0;
		*ret_max = strtoul(v, &end, 10);
		if (errno || *end || end == v || *ret_max < 1 || *ret_max > CHANGESET_MAX_CHANGES)
			return usage_error("sync", "--max-changes takes a number from 1 to %d",
					   CHANGESET_MAX_CHANGES);
	}
	return -1; /* not an exit status: go on */
}

int cmd_sync(struct cli *c, const struct command_call *call)
{
	struct attempt_result res;
	struct store *s = NULL;
	unsigned long max = 0;
	int r, pull, tty = isatty(STDERR_FILENO);

	if ((r = cmd_sync_request(c, call, &max, &pull)) >= 0)
		return r;
	if ((r = cmd_open_store(c, &s, &res.err)) < 0)
		return fail(&res.err);
	r = attempt_run(s,
			&(struct attempt_options){ .max_changes = max ? max : c->cfg.max_changes,
						   .connect_timeout_s = c->cfg.connect_timeout,
						   .stall_timeout_s = c->cfg.stall_timeout,
						   .pull = pull,
						   .forms_dir = c->cfg.forms_dir,
						   .chunk_size = c->cfg.chunk_kib * 1024u },
			tty ? sync_progress : NULL, c, &res);
	if (tty && res.stats.sets)
		fputc('\n', c->err);
	/* What went is said also when something else failed after it. */
	if (r == 0 || res.pushed || res.files.files || res.files.chunks) {
		char line[CMD_SYNC_LINE];

		cmd_sync_format(&res, pull == ATTEMPT_PULL_ONLY, line, sizeof(line));
		fputs(line, c->out);
	}
	cmd_release_store(c, s);
	return r < 0 ? fail(&res.err) : EXIT_OK;
}

void cmd_sync_format(const struct attempt_result *res, int pull_only, char *out, size_t cap)
{
	const struct push_stats *st = &res->stats;
	char warning[SKEW_WARNING_MAX];
	int n = 0;

	out[0] = '\0';
	if (!pull_only)
		n = snprintf(out, cap,
			     "sent %llu change sets (%llu changes), %llu quarantined at "
			     "HQ\n",
			     st->sets, st->changes, st->quarantined);
	if (n >= 0 && (size_t)n < cap && res->pulled && res->pull_code == 0)
		n += snprintf(out + n, cap - (size_t)n,
			      "received %llu down-sets (%llu changes), %llu records left the "
			      "scope\n",
			      res->pull.sets, res->pull.changes, res->pull.purged);
	if (n >= 0 && (size_t)n < cap && res->pulled && res->pull_code == 0 && res->pull.forms)
		n += snprintf(out + n, cap - (size_t)n,
			      "took %llu form definitions from HQ (see 'fieldsync forms')\n",
			      res->pull.forms);
	if (n >= 0 && (size_t)n < cap && (res->files.files || res->files.chunks))
		n += snprintf(out + n, cap - (size_t)n,
			      "sent %llu files (%llu chunks, %llu bytes)\n", res->files.files,
			      res->files.chunks, res->files.bytes);
	if (n > 0 && (size_t)n < cap && st->clock_checked &&
	    skew_warning(st->clock_skew_ms, warning))
		snprintf(out + n, cap - (size_t)n, "warning: %s\n", warning);
}
