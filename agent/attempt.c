/* attempt.c - pack one set ahead of the push, push, log.
 *
 * Sections: progress; delivering; the attempt.
 */
#include "agent/attempt.h"
#include "agent/report.h"

#include <errno.h>
#include <string.h>

#include "agent/attach.h"
#include "agent/enroll.h"
#include "agent/netproc.h"
#include "agent/pack.h"
#include "agent/synclog.h"
#include "sync/hlc.h"

/* Sets at most this large while the disk is full: each step of the
 * delivery then needs only a little room. */
#define ATTEMPT_TIGHT_CHANGES 100

/* ---- progress ------------------------------------------------------------ */

/* Sets are packed as the push needs them, so the total is an estimate
 * made at the start: sets already packed plus those the outbox will fill. */
struct progress {
	push_progress_fn fn;
	void *ctx;
	unsigned long long before, total;
};

static void progress_step(unsigned long long done, unsigned long long total, void *ctx)
{
	struct progress *p = ctx;

	(void)total;
	if (p->before + done > p->total)
		p->total = p->before + done;
	p->fn(p->before + done, p->total, p->ctx);
}

/* ---- delivering ------------------------------------------------------------ */

struct delivery {
	struct store *s;
	const struct enrolment *en;
	const struct attempt_options *opt;
	struct hqlink *t;
	struct progress progress;
	int tight; /* the room kept on disk is ours: small sets, drop what HQ holds */
};

/* Give the WAL's room back to the disk.  Best effort: busy (a reader on
 * another connection) or a failure only means the WAL stays until the
 * next checkpoint, and every set it logged is already durable. */
static void checkpoint(struct store *s)
{
	struct fs_error ignored;

	if (store_checkpoint(s, &ignored) < 0)
		return;
}

static int transport(struct delivery *d, struct attempt_result *res)
{
	int r;

	if (d->t)
		return 0;
	if ((r = netproc_hqlink(&d->t, d->opt->cancel, d->opt->connect_timeout_s,
				d->opt->stall_timeout_s, &res->err)) < 0)
		return r;
	res->pushed = 1;
	return 0;
}

/* Push what is packed; then pack one more set and push it, until the
 * outbox is empty.  While HQ is away this leaves at most one set packed:
 * pending changes are stored once, in the outbox. */
static int deliver(struct delivery *d, struct attempt_result *res)
{
	size_t max = d->opt->max_changes;
	unsigned long long pending, before;
	int r, made;

	if (d->tight && (max == 0 || max > ATTEMPT_TIGHT_CHANGES))
		max = ATTEMPT_TIGHT_CHANGES;
	for (;;) {
		if ((r = push_count(d->s, &pending, NULL, &res->err)) < 0)
			return r;
		if (pending == 0) {
			if ((r = pack_next(d->s, d->en->hq_box_pk, max, 0, &made, &res->err)) < 0)
				return r;
			if (!made)
				return 0;
			res->packed++;
		}
		if ((r = transport(d, res)) < 0)
			return r;
		before = res->stats.sets;
		d->progress.before = before;
		r = push_pending(d->s, &d->en->target, d->t, d->progress.fn ? progress_step : NULL,
				 &d->progress, &res->stats, &res->err);
		if (r < 0)
			return r;
		/* The bodies HQ signed for pay for the next set's. */
		if (d->tight && res->stats.sets > before) {
			if ((r = push_drop_acked(d->s, &res->err)) < 0)
				return r;
			checkpoint(d->s);
		}
	}
}

/* ---- reporting --------------------------------------------------------------- */

/* Whether r is HQ's answer (hqlink_answer_error) rather than no link. */
static int hq_answered(int r)
{
	return r == 0 || r == -EACCES || r == -EPERM || r == -EBADMSG || r == -FS_ELIMIT ||
	       r == -EBUSY || r == -EPROTO;
}

/* Tell HQ how this device is, last thing in an attempt that reached it
 * (agent/report.h): what is still unsent after it, and how it ended.
 * Best effort: an HQ that does not take it changes nothing here, and
 * with no link there is no one to tell. */
static void report(struct delivery *d, int r)
{
	struct fs_error ignored = { 0 };

	if (d->t && hq_answered(r))
		(void)!report_send(d->s, d->en, d->opt->forms_dir, d->t, &ignored);
}

/* ---- pulling ---------------------------------------------------------------- */

/* Write e with the result of r; a failure to write it is the outcome
 * (in *err) only when r was a success. */
static int log_row(struct store *s, struct synclog_entry *e, int r, struct fs_error *err)
{
	struct fs_error logerr = { 0 };

	e->result = synclog_result(r);
	if (synclog_add(s, e, &logerr) < 0 && r == 0) {
		*err = logerr;
		r = logerr.code;
	}
	return r;
}

/* The row of a step that began at t0 (monotonic) and ended with r:
 * what it moved, and the error's message when it failed. */
static int log_step(struct store *s, struct synclog_entry *e, uint64_t t0, unsigned long long sets,
		    unsigned long long changes, unsigned long long bytes, int r,
		    struct fs_error *err)
{
	e->duration_ms = hlc_mono_ms() - t0;
	e->sets = sets;
	e->changes = changes;
	e->bytes = bytes;
	e->detail = r < 0 ? err->msg : NULL;
	return log_row(s, e, r, err);
}

static int pull_and_log(struct delivery *d, struct attempt_result *res)
{
	struct synclog_entry e = { .event = "pull" };
	uint64_t t0 = hlc_mono_ms();
	int r;

	res->pulled = 1;
	e.at_ms = store_wall_ms(d->s);
	if ((r = transport(d, res)) == 0)
		r = pull_run(d->s, d->en, d->opt->forms_dir, d->t, &res->pull, &res->pull_err);
	else
		res->pull_err = res->err;
	res->pull_code = r;
	/* Nothing new is not worth a row: the agent asks after every push. */
	if (r == 0 && res->pull.sets == 0)
		return 0;
	return res->pull_code = log_step(d->s, &e, t0, res->pull.sets, res->pull.changes,
					 res->pull.bytes, r, &res->pull_err);
}

/* ---- attached files ---------------------------------------------------------- */

/* After the records: the files HQ lacks.  A row in the sync log when
 * something went, or it failed; nothing pending is no row. */
static int files_and_log(struct delivery *d, struct attempt_result *res)
{
	struct synclog_entry e = { .event = "files" };
	unsigned long long files = 0, bytes = 0;
	uint64_t t0 = hlc_mono_ms();
	int r;

	if ((r = attach_unsent(d->s, &files, &bytes, &res->err)) < 0 || files == 0)
		return r;
	e.at_ms = store_wall_ms(d->s);
	if ((r = transport(d, res)) == 0)
		r = upload_pending(d->s, d->en, d->t, d->opt->chunk_size, d->opt->yield,
				   &res->files, &res->err);
	res->files_left = res->files.yielded;
	if (r == 0 && res->files.chunks == 0 && res->files.files == 0)
		return 0;
	return log_step(d->s, &e, t0, res->files.files, res->files.chunks, res->files.bytes, r,
			&res->err);
}

/* ---- the attempt ------------------------------------------------------------- */

int attempt_run(struct store *s, const struct attempt_options *opt, push_progress_fn progress,
		void *ctx, struct attempt_result *res)
{
	static const struct attempt_options defaults;
	struct synclog_entry e = { .event = "push" };
	unsigned long long pending = 0, unpacked = 0, per;
	struct delivery d = { .s = s, .opt = opt ? opt : &defaults };
	struct enrolment en;
	uint64_t t0 = hlc_mono_ms();
	int r;

	memset(res, 0, sizeof(*res));
	res->started_ms = store_wall_ms(s);
	if ((r = enroll_load(s, &en, &res->err)) < 0) {
		if (r == -FS_ENOTFOUND)
			r = fs_error_set(&res->err, r,
					 "not enrolled with HQ (fieldsync enroll URL "
					 "TOKEN)");
		return r; /* nothing to log: there is no HQ to talk to */
	}
	d.en = &en;
	if (d.opt->pull != ATTEMPT_PULL_ONLY &&
	    ((r = push_count(s, &pending, NULL, &res->err)) < 0 ||
	     (r = pack_unpacked(s, &unpacked, &res->err)) < 0))
		goto log;
	/* Nothing to send is not an attempt: the agent checks after every
	 * network event, and the log would fill with empty rows.  A pull
	 * asked for (ATTEMPT_PULL_ALWAYS, ATTEMPT_PULL_ONLY) still goes. */
	if (d.opt->pull == ATTEMPT_PULL_ONLY || (pending == 0 && unpacked == 0)) {
		r = 0;
		if (d.opt->pull == ATTEMPT_PULL_ALWAYS || d.opt->pull == ATTEMPT_PULL_ONLY) {
			r = pull_and_log(&d, res);
			res->err = res->pull_err;
		}
		/* Files wait for nothing but records: with none to push, they
		 * go now. */
		if (r == 0 && d.opt->pull != ATTEMPT_PULL_ONLY)
			r = files_and_log(&d, res);
		report(&d, r);
		hqlink_free(d.t);
		return r;
	}
	per = d.opt->max_changes ? d.opt->max_changes : PACK_DEFAULT_CHANGES;
	d.progress = (struct progress){ .fn = progress,
					.ctx = ctx,
					.total = pending + (unpacked + per - 1) / per };
	r = deliver(&d, res);
	if (r == -ENOSPC) {
		/* The disk is full: what was recorded must still go out.  The
		 * room kept for this is ours until the attempt ends; a set HQ
		 * acknowledged but whose receipt did not fit is acknowledged
		 * again. */
		struct fs_error full = res->err;

		if (store_room_take(s, &res->err) < 0) {
			res->err = full;
		} else {
			d.tight = 1;
			r = deliver(&d, res);
		}
	}
	if (res->stats.sets > 0)
		checkpoint(s);
log:
	res->duration_ms = hlc_mono_ms() - t0;
	e.at_ms = res->started_ms;
	e.duration_ms = res->duration_ms;
	e.sets = res->stats.sets;
	e.changes = res->stats.changes;
	e.bytes = res->stats.bytes;
	if (res->stats.clock_checked)
		(void)skew_warning(res->stats.clock_skew_ms, res->clock_warning);
	e.detail = r < 0 ? res->err.msg : res->clock_warning[0] ? res->clock_warning : NULL;
	r = log_row(s, &e, r, &res->err);
	if (d.tight)
		store_room_give_back(s);
	/* HQ merged what came up; what it holds comes down. */
	if (r == 0 && d.opt->pull != ATTEMPT_PULL_NEVER &&
	    (res->stats.sets > 0 || d.opt->pull == ATTEMPT_PULL_ALWAYS)) {
		int pr = pull_and_log(&d, res);

		if (d.opt->pull == ATTEMPT_PULL_ALWAYS && pr < 0) {
			r = pr;
			res->err = res->pull_err;
		}
	}
	if (r == 0)
		r = files_and_log(&d, res);
	report(&d, r);
	hqlink_free(d.t);
	return r;
}
