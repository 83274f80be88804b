/* attempt.h - one sync attempt: pack pending changes, push them, log it.
 *
 * The same steps whether the agent runs them in its push thread or
 * `fieldsync sync` runs them in the foreground: send every set without a
 * receipt (agent/push.h), then pack the next set from the outbox
 * (agent/pack.h) and send it, until the outbox is empty; then checkpoint
 * the WAL and write one row to the sync log (agent/synclog.h) with the
 * outcome.  Packing one set ahead of the push means that while HQ is
 * unreachable at most one set is packed and pending changes are stored
 * once.  Killed at any point, the next attempt resumes: packing and each
 * receipt are transactions, and HQ answers a set it already has with its
 * stored receipt.
 *
 * A full disk (-ENOSPC) on the way takes the room the store keeps for
 * delivery (store_room_take(), agent/ballast.h) and tries again with sets
 * of at most 100 changes, dropping the bodies of acknowledged sets
 * (push_drop_acked()) and checkpointing after each, so that each step
 * needs only a little room; the room is given back when the attempt
 * ends, as far as the disk allows.
 *
 * Then, as opt->pull says, it pulls HQ's down-sets (agent/pull.h) and
 * writes a "pull" row to the sync log when something came down or the
 * pull failed.  A failed pull after a good push is reported in
 * res->pull_code, and is the attempt's result only with
 * ATTEMPT_PULL_ALWAYS or ATTEMPT_PULL_ONLY (a person asked for it).
 *
 * Last, when the attempt went well so far, it sends the attached files
 * HQ does not hold yet (agent/upload.h), after the records, and writes
 * a "files" row to the sync log (sets: files HQ now holds; changes:
 * chunks sent) when it sent something or failed.  opt->yield, raised
 * when new records wait, stops it between two chunks; res->files_left
 * then says files remain.  A failure is the attempt's result.
 *
 * Not thread-safe per store; the agent gives its push thread its own
 * store connection (store_reopen).
 */
#ifndef FS_ATTEMPT_H
#define FS_ATTEMPT_H

#include "agent/pull.h"
#include "agent/push.h"
#include "agent/upload.h"
#include "agent/skew.h"
#include "agent/store.h"
#include "crypto/fserr.h"

/* How to attempt; zero-initialise for the defaults. */
struct attempt_options {
	unsigned long max_changes;  /* per change set; 0: default */
	unsigned connect_timeout_s; /* 0: HQLINK_CONNECT_TIMEOUT_S */
	unsigned stall_timeout_s;   /* 0: HQLINK_LOW_SPEED_TIME_S */
	const _Atomic int *cancel;  /* abandon the transfer once set (-ECANCELED) */
	/* Two-way sync (agent/pull.h): ATTEMPT_PULL_AFTER_PUSH pulls once a
	 * push delivered something, ATTEMPT_PULL_ALWAYS also with nothing to
	 * push, ATTEMPT_PULL_ONLY pulls without pushing. */
	int pull;
	const char *forms_dir;	  /* for the scope rule; NULL: built in */
	uint32_t chunk_size;	  /* attached files' chunks; 0: the default */
	const _Atomic int *yield; /* stop sending files once set (records wait) */
};

enum { ATTEMPT_PULL_NEVER = 0, ATTEMPT_PULL_AFTER_PUSH, ATTEMPT_PULL_ALWAYS, ATTEMPT_PULL_ONLY };

struct attempt_result {
	struct push_stats stats;	      /* what HQ acknowledged */
	unsigned long long packed;	      /* sets packed */
	int pushed;			      /* got as far as talking to HQ */
	uint64_t started_ms;		      /* wall clock, Unix ms */
	uint64_t duration_ms;		      /* monotonic */
	struct fs_error err;		      /* when the attempt failed */
	char clock_warning[SKEW_WARNING_MAX]; /* skew_warning(), or "" */
	struct pull_stats pull;		      /* what HQ sent down */
	int pulled;			      /* a pull was tried */
	int pull_code;			      /* its outcome: 0 or an error (pull_err) */
	struct fs_error pull_err;
	struct upload_stats files; /* attached files sent */
	int files_left;		   /* files remain to send (yielded) */
};

/* Run one attempt (opt may be NULL for the defaults).  The
 * sync log row is written even when the attempt failed; a failure to
 * write it is reported only if the attempt itself succeeded.  Returns 0
 * or the attempt's error (also in res->err).  With nothing to send it
 * returns 0 at once, res->pushed 0, and logs nothing; so with no file
 * to send. */
int attempt_run(struct store *s, const struct attempt_options *opt, push_progress_fn progress,
		void *ctx, struct attempt_result *res);

#endif
