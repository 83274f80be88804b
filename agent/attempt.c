/* attempt.c - pack, push, log. */
#include "agent/attempt.h"

#include <string.h>

#include "agent/enroll.h"
#include "agent/pack.h"
#include "agent/synclog.h"
#include "sync/hlc.h"

int attempt_run(struct store *s, const struct attempt_options *opt, push_progress_fn progress,
		void *ctx, struct attempt_result *res)
{
	static const struct attempt_options defaults;
	struct push_transport *t = NULL;
	struct fs_error logerr = {0};
	struct synclog_entry e = {.event = "push"};
	unsigned long long pending = 0;
	struct enrolment en;
	uint64_t t0 = hlc_mono_ms();
	int r;

	if (!opt)
		opt = &defaults;
	memset(res, 0, sizeof(*res));
	res->started_ms = store_wall_ms(s);
	if ((r = enroll_load(s, &en, &res->err)) < 0) {
		if (r == -FS_ENOTFOUND)
			r = fs_error_set(&res->err, r, "not enrolled with HQ (fieldsync enroll URL "
					 "TOKEN)");
		return r; /* nothing to log: there is no HQ to talk to */
	}
	if ((r = pack_outbox(s, en.hq_box_pk, opt->max_changes, 0, &res->packed, &res->err)) < 0 ||
	    (r = push_count(s, &pending, NULL, &res->err)) < 0)
		goto log;
	/* Nothing to send is not an attempt: the agent checks after every
	 * network event, and the log would fill with empty rows. */
	if (pending == 0)
		return 0;
	if ((r = push_transport_curl_new(&t, &res->err)) < 0)
		goto log;
	if (opt->cancel)
		push_transport_curl_cancel_on(t, opt->cancel);
	push_transport_curl_timeouts(t, opt->connect_timeout_s, opt->stall_timeout_s);
	res->pushed = 1;
	r = push_pending(s, &en.target, t, progress, ctx, &res->stats, &res->err);
log:
	push_transport_free(t);
	res->duration_ms = hlc_mono_ms() - t0;
	e.at_ms = res->started_ms;
	e.duration_ms = res->duration_ms;
	e.result = synclog_result(r);
	e.sets = res->stats.sets;
	e.changes = res->stats.changes;
	e.bytes = res->stats.bytes;
	if (res->stats.clock_checked)
		(void)push_skew_warning(res->stats.clock_skew_ms, res->clock_warning);
	e.detail = r < 0 ? res->err.msg : res->clock_warning[0] ? res->clock_warning : NULL;
	if (synclog_add(s, &e, &logerr) < 0 && r == 0) {
		res->err = logerr;
		r = logerr.code;
	}
	return r;
}
