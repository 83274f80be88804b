/* agentd.h - the running agent's state, shared by its loop (daemon.c)
 * and its worker thread (job.c) only; nothing else includes it.
 *
 * Threads: the loop owns struct agent.  While job.running is set the
 * worker thread reads job.opt, job.wstore and job.cmd and writes
 * job.res, job.res_code and job.cmd's output; the loop touches none of
 * them until job_finished() has joined the thread.  job.cancel is the
 * one field both sides touch meanwhile.
 */
#ifndef FS_AGENTD_H
#define FS_AGENTD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "agent/attempt.h"
#include "agent/client.h"
#include "agent/cmd.h"
#include "agent/commands.h"
#include "agent/ctl.h"
#include "agent/keystore.h"
#include "web/http.h"
#include "web/session.h"

#define NEVER UINT64_MAX /* no time: nothing scheduled */

/* A forwarded command on the worker thread (job_request_command()). */
struct command_job {
	struct client *client;	   /* who asked; NULL: none */
	struct command_call *call; /* parsed on the loop */
	char **argv;		   /* points into client->in */
	struct cli_input inputs[CTL_MAX_FILES];
	size_t ninputs;
	char *out, *err; /* its output */
	size_t olen, elen;
	int status, wrote;
	cJSON *state; /* the agent's state for its `status` */
};

/* The worker thread runs one job at a time: a push attempt, or a
 * forwarded command that talks to HQ or runs long (never on the loop). */
struct job {
	pthread_t thread;
	int running;
	int efd; /* an eventfd the thread raises when it ends */
	enum { JOB_PUSH, JOB_COMMAND } kind;
	int pull_only; /* the push in flight pulls without pushing */
	_Atomic int cancel;
	_Atomic int yield;	    /* records wait: stop sending files (agent/upload.h) */
	struct store *wstore;	    /* the thread's own connection */
	struct attempt_options opt; /* built on the loop, read by the thread */
	struct attempt_result res;
	int res_code;
	unsigned long want_max; /* --max-changes of a waiting `sync` */
	int want_pull;		/* a waiting `sync` or `pull`: ATTEMPT_PULL_* */
	uint64_t gen;		/* attempts started so far */
	struct command_job cmd; /* JOB_COMMAND: the request it runs */
};

/* The field app's server and sessions (agent/fieldapp.h). */
struct fieldapp {
	struct MHD_Daemon *mhd; /* NULL: not serving */
	int dirfd;		/* the pages; -1 */
	struct web_site site;
	struct web_sessions sessions;
	int unlocked_here;     /* the app unlocked the store: idle locks it */
	unsigned failures;     /* wrong passphrases in a row */
	uint64_t refuse_until; /* monotonic ms: no passphrase tried before */
};

/* When to push next, and what `status` says of the pushes so far. */
struct push_schedule {
	uint64_t next_push; /* monotonic ms; NEVER: nothing scheduled */
	unsigned failures;  /* in a row */
	int halted;	    /* HQ revoked this device */
	/* Wall clock ms (0: never). */
	uint64_t last_attempt, last_success, next_wall;
	char last_error[512];	       /* an fs_error message */
	int last_code;		       /* its code, for synclog_result() */
	uint64_t wd_interval, next_wd; /* the systemd watchdog, monotonic ms */
	/* When a quiet agent next keeps in touch (monotonic ms, 0: not
	 * due): a push that starts from then on pulls and reports whatever
	 * there is to send ([sync] report_minutes). */
	uint64_t touch_at;
};

struct agent {
	struct cli *c;
	char sock[CTL_PATH_MAX];     /* where it listens, fixed until it stops */
	struct store *store;	     /* NULL: locked */
	int nfd, sfd;		     /* netlink, signals */
	struct client_table clients; /* the listening socket, its connections */
	int stopping;
	struct job job;
	struct push_schedule sched;
	struct fieldapp app;
};

/* ---- daemon.c: the loop ---- */

/* Tell systemd what the agent is doing (STATUS=). */
void daemon_notify_status(struct agent *a);
/* Push in delay_ms, or sooner if already due sooner; nothing while
 * locked, revoked or stopping. */
void daemon_schedule(struct agent *a, uint64_t delay_ms);
/* Stop any job, answer whoever waits, close the store: the key is wiped. */
void daemon_lock(struct agent *a);
/* Open the store with secret, and push and pull what waited; 0, or a
 * negative code with err set (-FS_EKEY: a wrong secret). */
int daemon_unlock(struct agent *a, const struct keystore_secret *secret, struct fs_error *err);
/* When the next push will start, wall clock ms; 0: none scheduled (or
 * one runs now). */
uint64_t daemon_next_attempt(const struct agent *a);
/* Add wall_ms to o as name in RFC 3339; when 0, null if null_if_none,
 * else nothing.  0 on success, -ENOMEM. */
int daemon_add_time(cJSON *o, const char *name, uint64_t wall_ms, int null_if_none);
/* Push and pull now, as `fieldsync sync` asks (with no one waiting). */
void daemon_sync_now(struct agent *a);

/* ---- job.c: the worker thread ---- */

/* Start a JOB_PUSH or JOB_COMMAND; 0, or a negative errno (logged). */
int job_start(struct agent *a, int kind);
/* The thread raised job.efd: join it, and act on how it ended. */
void job_finished(struct agent *a);
/* Cancel the job in flight, if any, and wait for it. */
void job_stop(struct agent *a);
/* Answer every client parked for a push that will not come. */
void job_answer_parked(struct agent *a, const char *msg, int status);
/* Park cl for call (which talks to HQ or runs long) on the thread, after
 * the push in flight if any.  Returns -1 when the job owns call, argv and
 * state, else the exit status, with the reason written to a->c->err. */
int job_request_command(struct agent *a, struct client *cl, struct command_call *call, char **argv,
			const struct cli_input *inputs, cJSON *state);
/* Whether an import runs on the thread, holding the store's write lock. */
int job_import_running(const struct agent *a);
/* Answer and free the forwarded command the thread ran. */
void job_command_finished(struct agent *a);
/* A queued command that will not run now: answer it msg and status. */
void job_drop_queued(struct agent *a, const char *msg, int status);

#endif
