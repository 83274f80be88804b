/* cmd_status.c - status and check (agent/cmd.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "agent/cmd.h"
#include "agent/attach.h"
#include "agent/attempt.h"
#include "agent/ballast.h"
#include "agent/enroll.h"
#include "agent/hqhistory.h"
#include "agent/netproc.h"
#include "agent/pack.h"
#include "agent/push.h"
#include "agent/records.h"
#include "agent/skew.h"
#include "agent/synclog.h"
#include "sync/hlc.h"

static int status_clock(struct cli *c, struct store *s, cJSON *o, int json, struct fs_error *err)
{
	char text[SKEW_TEXT_MAX], when[HLC_TIME_LEN + 1], warning[SKEW_WARNING_MAX];
	uint64_t at = 0;
	int64_t skew = 0;
	int r, found = 0;

	if ((r = skew_load(s, &skew, &at, &found, err)) < 0)
		return r;
	if (!found)
		return 0;
	hlc_format_time(hlc_from_ms(at), when);
	if (!cJSON_AddNumberToObject(o, "clock_skew_ms", (double)skew) ||
	    !cJSON_AddStringToObject(o, "clock_checked_at", when))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (json)
		return 0;
	skew_text(skew, text);
	fprintf(c->out, "clock       %s (measured %s)\n", text, when);
	if (skew_warning(skew, warning))
		fprintf(c->out, "warning     %s\n", warning);
	return 0;
}

/* Enrolment, change sets and the backlog, for status. */
static int status_sync(struct cli *c, struct store *s, cJSON *o, int json, struct fs_error *err)
{
	unsigned long long pending = 0, acked = 0, changes = 0, bytes = 0, files = 0,
			   file_bytes = 0;
	char when[HLC_TIME_LEN + 1] = "never";
	struct pull_state ps;
	struct enrolment e;
	cJSON *scope = NULL;
	int r, enrolled;

	r = enroll_load(s, &e, err);
	if (r < 0 && r != -FS_ENOTFOUND)
		return r;
	enrolled = r == 0;
	if ((r = push_count(s, &pending, &acked, err)) < 0 ||
	    (r = push_backlog(s, &changes, &bytes, err)) < 0 || (r = pull_state(s, &ps, err)) < 0 ||
	    (r = attach_unsent(s, &files, &file_bytes, err)) < 0)
		return r;
	if (ps.at_ms)
		hlc_format_time((hlc_t)ps.at_ms << 16, when);
	/* HQ's word on the scope, once a down-set told it. */
	if (ps.scope[0] &&
	    (!(scope = cJSON_Parse(ps.scope)) || !cJSON_AddItemToObject(o, "scope", scope))) {
		cJSON_Delete(scope);
		return fs_error_set(err, -ENOMEM, "out of memory");
	}
	if (!cJSON_AddNumberToObject(o, "down_sets_applied", (double)ps.seq) ||
	    !(ps.at_ms ? cJSON_AddStringToObject(o, "last_pull", when)
		       : cJSON_AddNullToObject(o, "last_pull")))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (!cJSON_AddBoolToObject(o, "enrolled", enrolled) ||
	    (enrolled && (!cJSON_AddStringToObject(o, "hq_url", e.target.url) ||
			  !cJSON_AddStringToObject(o, "team", e.team) ||
			  !cJSON_AddStringToObject(o, "municipality", e.municipality))) ||
	    !cJSON_AddNumberToObject(o, "change_sets_pending", (double)pending) ||
	    !cJSON_AddNumberToObject(o, "change_sets_sent", (double)acked) ||
	    !cJSON_AddNumberToObject(o, "pending_changes", (double)changes) ||
	    !cJSON_AddNumberToObject(o, "pending_bytes", (double)bytes) ||
	    !cJSON_AddNumberToObject(o, "files_pending", (double)files) ||
	    !cJSON_AddNumberToObject(o, "files_pending_bytes", (double)file_bytes))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (json)
		return 0;
	if (enrolled)
		fprintf(c->out, "hq          %s (team %s, %s)\n", e.target.url, e.team,
			e.municipality);
	else
		fprintf(c->out, "hq          not enrolled (fieldsync enroll URL TOKEN)\n");
	fprintf(c->out, "pending     %llu changes, %llu bytes, not yet acknowledged by HQ\n",
		changes, bytes);
	fprintf(c->out, "change sets %llu waiting to be sent, %llu acknowledged by HQ\n", pending,
		acked);
	fprintf(c->out, "files       %llu attached files waiting to be sent, %llu bytes\n", files,
		file_bytes);
	if (scope) {
		const cJSON *it;

		fprintf(c->out, "scope       ");
		cJSON_ArrayForEach(it, scope)
		{
			fprintf(c->out, "%s%s", it->valuestring, it->next ? ", " : "\n");
		}
	}
	fprintf(c->out, "pulled      %llu down-sets from HQ, the last %s\n",
		(unsigned long long)ps.seq, when);
	return 0;
}

static void print_bytes(char *out, size_t cap, uint64_t n)
{
	if (n >= 10u << 20)
		snprintf(out, cap, "%llu MiB", (unsigned long long)(n >> 20));
	else if (n >= 1u << 20)
		snprintf(out, cap, "%.1f MiB", (double)n / (1u << 20));
	else
		snprintf(out, cap, "%llu KiB", (unsigned long long)(n >> 10));
}

/* The data directory's disk and the room kept on it for delivery. */
static int status_disk(struct cli *c, struct store *s, cJSON *o, int json, struct fs_error *err)
{
	struct ballast_state b;
	char free_text[32], target_text[32], held_text[32];
	int full;

	if (store_room_state(s, &b, err) < 0) {
		/* Not worth failing status for: say what is known. */
		if (!json)
			fprintf(c->out, "disk        unknown: %s\n", err->msg);
		memset(err, 0, sizeof(*err));
		return 0;
	}
	/* Full: the reserve is in use, or short with no room to make it up
	 * (a store that never wrote has no reserve yet, and is not full). */
	full = b.in_use || (b.held < b.target && b.disk_free < b.target - b.held);
	if (!cJSON_AddNumberToObject(o, "disk_free_bytes", (double)b.disk_free) ||
	    !cJSON_AddNumberToObject(o, "disk_reserve_bytes", (double)b.target) ||
	    !cJSON_AddNumberToObject(o, "disk_reserve_held_bytes", (double)b.held) ||
	    !cJSON_AddBoolToObject(o, "disk_reserve_in_use", b.in_use) ||
	    !cJSON_AddBoolToObject(o, "disk_full", full))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (json)
		return 0;
	print_bytes(free_text, sizeof(free_text), b.disk_free);
	print_bytes(target_text, sizeof(target_text), b.target);
	print_bytes(held_text, sizeof(held_text), b.held);
	if (b.in_use)
		fprintf(c->out,
			"disk        full: the %s kept for sending to HQ is in use now; "
			"new records are refused until there is space\n",
			target_text);
	else if (full)
		fprintf(c->out,
			"disk        full: %s free, %s of the %s kept for sending to HQ "
			"held; new records are refused: free some space\n",
			free_text, held_text, target_text);
	else
		fprintf(c->out, "disk        %s free, and %s kept for sending to HQ\n", free_text,
			target_text);
	return 0;
}

/* --verify-hq: HQ's history against the checkpoint this device holds. */
static int status_verify_hq(struct cli *c, struct store *s, cJSON *o, int json,
			    struct fs_error *err)
{
	struct hqlink *t = NULL;
	struct hqhistory_result res;
	struct enrolment e;
	int r;

	if ((r = enroll_load(s, &e, err)) < 0 || (r = netproc_hqlink(&t, c->cancel, 0, 0, err)) < 0)
		return r;
	r = hqhistory_verify(s, &e.target, t, &res, err);
	hqlink_free(t);
	/* HQ's answer also says its time: the way to set the store's clock
	 * back after the wall clock was set right, before recording more. */
	if (r == 0 && res.has_time)
		r = skew_check(s, res.skew_ms, err);
	if (r < 0)
		return r;
	if (!cJSON_AddNumberToObject(o, "hq_checkpoint_size", (double)res.new_size) ||
	    !cJSON_AddBoolToObject(o, "hq_history_consistent", 1))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (!json) {
		if (res.checked)
			fprintf(c->out,
				"hq history  consistent: HQ's signed log of %llu entries "
				"extends the %llu this device saw\n",
				(unsigned long long)res.new_size, (unsigned long long)res.old_size);
		else
			fprintf(c->out, "hq history  first checkpoint held: %llu entries\n",
				(unsigned long long)res.new_size);
	}
	return 0;
}

/* The agent's own state (c->agent), or that no agent answered. */
static void status_agent(struct cli *c, int json, cJSON *o)
{
	static const char *const keys[] = { "last_attempt", "last_success", "next_attempt",
					    "last_error" };
	static const char *const labels[] = { "last try", "succeeded", "next try", "last error" };
	const cJSON *a = c->agent;

	if (json) {
		cJSON *copy = a ? cJSON_Duplicate(a, 1) : cJSON_CreateObject();

		if (copy && !a)
			cJSON_AddBoolToObject(copy, "running", 0);
		if (copy && !cJSON_AddItemToObject(o, "agent", copy))
			cJSON_Delete(copy);
		return;
	}
	if (!a) {
		fprintf(c->out, "agent       not running\n");
		return;
	}
	fprintf(c->out, "agent       running, store %s%s%s\n",
		cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "locked")) ? "locked" : "unlocked",
		cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "pushing")) ? ", pushing now" : "",
		cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "revoked")) ? ", revoked by HQ"
									     : "");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, keys[i]);

		if (cJSON_IsString(v))
			fprintf(c->out, "%-11s %s\n", labels[i], v->valuestring);
	}
}

const struct opts_spec cmd_status_options[] = { { "json", OPTS_FLAG },
						{ "verify-hq", OPTS_FLAG },
						{ NULL, 0 } };
enum { OPT_JSON, OPT_VERIFY_HQ };

unsigned cmd_status_flags(const struct opts *o)
{
	return o->value[OPT_VERIFY_HQ] ? CMD_TALKS_TO_HQ : 0;
}

int cmd_status(struct cli *c, const struct command_call *call)
{
	static const char *const collections[] = { "beneficiaries", "visits" };
	int json = !!call->o.value[OPT_JSON], verify = !!call->o.value[OPT_VERIFY_HQ], r = 0;
	struct fs_error err = { 0 };
	struct store *s = NULL;
	cJSON *o = NULL;

	if (call->o.help) {
		PUTS("Usage: fieldsync status [--json] [--verify-hq]\n"
		     "Show this device's id, its enrolment with HQ, per collection live\n"
		     "and deleted records and changes not yet sent, the changes and bytes\n"
		     "HQ has not acknowledged, and the agent: whether it runs, whether\n"
		     "its store is locked, the last attempt, the last success, the last\n"
		     "error and the next attempt (UTC).\n"
		     "--verify-hq asks HQ for its latest signed audit checkpoint and a "
		     "proof\n"
		     "that it extends the one this device holds; a rewritten HQ history "
		     "is\n"
		     "reported loudly, with exit status 3.  It also measures this "
		     "device's\n"
		     "clock against HQ's: run it right after setting a wrong clock right.");
		return EXIT_OK;
	}
	if (call->o.nargs != 0)
		return usage_error("status", "unexpected argument");
	o = cJSON_CreateObject();
	if (!o) {
		r = fs_error_set(&err, -ENOMEM, "out of memory");
		goto out;
	}
	/* A locked agent can still say so, and when it will try again. */
	if (c->in_agent && !c->store) {
		status_agent(c, json, o);
		goto print;
	}
	if ((r = cmd_open_store(c, &s, &err)) < 0)
		goto out;
	if (!cJSON_AddStringToObject(o, "device", store_identity(s)->id) ||
	    !cJSON_AddStringToObject(o, "data_dir", c->cfg.data_dir)) {
		r = fs_error_set(&err, -ENOMEM, "out of memory");
		goto out;
	}
	if (!json)
		fprintf(c->out, "device      %s\ndata dir    %s\n", store_identity(s)->id,
			c->cfg.data_dir);
	for (size_t i = 0; i < 2; i++) {
		struct records_stats st;
		cJSON *co;

		if ((r = records_stats(s, collections[i], &st, &err)) < 0)
			goto out;
		co = cJSON_AddObjectToObject(o, collections[i]);
		if (!co || !cJSON_AddNumberToObject(co, "records", (double)st.live) ||
		    !cJSON_AddNumberToObject(co, "deleted", (double)st.deleted) ||
		    !cJSON_AddNumberToObject(co, "pending_changes", (double)st.pending)) {
			r = fs_error_set(&err, -ENOMEM, "out of memory");
			goto out;
		}
		if (!json)
			fprintf(c->out, "%-13s %lld records, %lld deleted, %lld changes pending\n",
				collections[i], st.live, st.deleted, st.pending);
	}
	if ((r = status_sync(c, s, o, json, &err)) < 0 ||
	    (r = status_disk(c, s, o, json, &err)) < 0)
		goto out;
	status_agent(c, json, o);
	if (verify && (r = status_verify_hq(c, s, o, json, &err)) < 0)
		goto out;
	/* After --verify-hq, which measures the clock afresh. */
	if ((r = status_clock(c, s, o, json, &err)) < 0)
		goto out;
print:
	if (json) {
		char *text = cJSON_PrintUnformatted(o);

		if (!text) {
			r = fs_error_set(&err, -ENOMEM, "out of memory");
			goto out;
		}
		PUTS(text);
		cJSON_free(text);
	}
out:
	cJSON_Delete(o);
	cmd_release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}

int cmd_check(struct cli *c, const struct command_call *call)
{
	struct fs_error err = { 0 };
	struct store *s = NULL;
	int r;

	if (call->o.help) {
		PUTS("Usage: fieldsync check\n"
		     "Decrypt and authenticate every page (PRAGMA integrity_check), and check\n"
		     "that every record matches the outbox changes that produced it.");
		return EXIT_OK;
	}
	if (call->o.nargs != 0)
		return usage_error("check", "unexpected argument");
	if ((r = cmd_open_store(c, &s, &err)) < 0 || (r = store_check(s, &err)) < 0 ||
	    (r = records_verify_outbox(s, &err)) < 0)
		goto out;
	fprintf(c->out, "store ok: every page authenticated, records match their outbox\n");
out:
	cmd_release_store(c, s);
	return r < 0 ? fail(&err) : EXIT_OK;
}
