/* job.c - the agent's worker thread: starting a push or a forwarded
 * command on it, and acting on how it ended (agent/agentd.h). */
#include "agent/agentd.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "agent/backoff.h"
#include "agent/synclog.h"
#include "sync/hlc.h"
#include "sync/log.h"

static uint32_t uniform(uint32_t n)
{
	return randombytes_uniform(n);
}

/* Runs a forwarded command (job_request_command()) with its own connection and
 * output; its options were parsed on the loop. */
static void run_command_job(struct agent *a)
{
	FILE *out = open_memstream(&a->job.cmd.out, &a->job.cmd.olen);
	FILE *err = open_memstream(&a->job.cmd.err, &a->job.cmd.elen);
	struct cli jc = {
		.cfg = a->c->cfg, /* shallow and read-only: never freed here */
		.out = out,
		.err = err,
		.store = a->job.wstore,
		.in_agent = 1,
		.inputs = a->job.cmd.inputs,
		.n_inputs = a->job.cmd.ninputs,
		.cancel = &a->job.cancel,
		.agent = a->job.cmd.state,
	};

	a->job.cmd.status = FS_EXIT_IO;
	a->job.cmd.wrote = 0;
	if (out && err) {
		a->job.cmd.status = cmd_call_run(&jc, a->job.cmd.call);
		a->job.cmd.wrote = jc.wrote;
	}
	if (out)
		fclose(out);
	if (err)
		fclose(err);
}

static void *job_thread(void *arg)
{
	struct agent *a = arg;
	uint64_t one = 1;

	if (a->job.kind == JOB_COMMAND)
		run_command_job(a);
	else
		a->job.res_code = attempt_run(a->job.wstore, &a->job.opt, NULL, NULL, &a->job.res);
	/* An eventfd write of 1 cannot fail short of a closed fd. */
	(void)!write(a->job.efd, &one, sizeof(one));
	return NULL;
}

int job_start(struct agent *a, int kind)
{
	struct fs_error err = { 0 };
	int r;

	if (!a->job.wstore &&
	    ((r = store_reopen(a->store, &a->job.wstore, &err)) < 0 ||
	     (r = store_set_cache(a->job.wstore, STORE_WORKER_CACHE_MIB, &err)) < 0)) {
		log_msg(LOG_ERR, "push: %s", err.msg);
		a->job.wstore = store_close(a->job.wstore);
		return r;
	}
	a->job.kind = kind;
	a->job.cancel = 0;
	a->job.yield = 0;
	/* The job reads these, not the config SIGHUP may rewrite. */
	a->job.opt = (struct attempt_options){
		.max_changes = a->job.want_max ? a->job.want_max : a->c->cfg.max_changes,
		.connect_timeout_s = a->c->cfg.connect_timeout,
		.stall_timeout_s = a->c->cfg.stall_timeout,
		.cancel = &a->job.cancel,
		/* The agent pulls after every push that delivered; a person's
		 * `sync` or `pull`, and keeping in touch, ask for it whatever
		 * there is to send. */
		.pull = a->job.want_pull ? a->job.want_pull
			: a->sched.touch_at && hlc_mono_ms() >= a->sched.touch_at
				? ATTEMPT_PULL_ALWAYS
				: ATTEMPT_PULL_AFTER_PUSH,
		.forms_dir = a->c->cfg.forms_dir,
		.chunk_size = a->c->cfg.chunk_kib * 1024u,
		.yield = &a->job.yield,
	};
	a->job.pull_only = kind == JOB_PUSH && a->job.want_pull == ATTEMPT_PULL_ONLY;
	if (kind == JOB_PUSH) {
		a->job.want_max = 0;
		a->job.want_pull = 0;
		a->sched.touch_at = 0;
		a->job.gen++;
		a->sched.last_attempt = hlc_wall_ms();
	}
	if ((r = pthread_create(&a->job.thread, NULL, job_thread, a)) != 0) {
		log_msg(LOG_ERR, "cannot start a thread: %s", strerror(r));
		if (kind == JOB_PUSH)
			a->job.gen--;
		return -r;
	}
	a->job.running = 1;
	daemon_notify_status(a);
	return 0;
}

/* Answer every client parked for a push that will not come. */
void job_answer_parked(struct agent *a, const char *msg, int status)
{
	for (size_t i = 0; i < CLIENT_MAX; i++) {
		struct client *cl = &a->clients.slot[i];

		if (cl->fd >= 0 && cl->wait_gen) {
			cl->wait_gen = 0;
			client_answer(cl, NULL, msg, status);
		}
	}
}

/* HQ revoked this device and the configuration asks for crypto-shredding:
 * say so first, then close the store and destroy its only key. */
static void wipe_after_revoke(struct agent *a)
{
	struct fs_error err = { 0 };

	log_msg(LOG_CRIT, "HQ revoked this device; wipe_on_revoke = yes: destroying the store key "
			  "now; the records on this laptop become unreadable");
	daemon_lock(a);
	if (store_shred_key(a->c->cfg.data_dir, &err) < 0)
		log_msg(LOG_CRIT, "wipe_on_revoke failed: %s", err.msg);
	else
		log_msg(LOG_CRIT, "store key destroyed: %s/store.key", a->c->cfg.data_dir);
}

/* A failed push: remember why and decide when to try again; a revoked
 * device stops, and wipes its key when configured to. */
static void push_failed(struct agent *a, int r)
{
	const struct attempt_result *res = &a->job.res;
	const struct cli *c = a->c;
	uint64_t delay;

	snprintf(a->sched.last_error, sizeof(a->sched.last_error), "%s", res->err.msg);
	a->sched.last_code = r;
	if (r == -FS_ENOTFOUND)
		return; /* not enrolled: nothing to do until `fieldsync enroll` */
	if (r == -EACCES) {
		a->sched.halted = 1;
		a->sched.next_push = NEVER;
		log_msg(LOG_ERR, "%s; not pushing again until restarted", res->err.msg);
		if (c->cfg.wipe_on_revoke && !strcmp(c->cfg.wipe_on_revoke, "yes"))
			wipe_after_revoke(a);
		return;
	}
	a->sched.failures++;
	delay = backoff_delay_ms(a->sched.failures, c->cfg.retry_min, c->cfg.retry_max,
				 res->stats.retry_after, uniform);
	a->sched.next_push = hlc_mono_ms() + delay;
	a->sched.next_wall = hlc_wall_ms() + delay;
	/* The first failure of a streak is news; the rest are debug, or an
	 * offline week would flood the journal. */
	log_msg(a->sched.failures == 1 ? LOG_WARNING : LOG_DEBUG,
		"push failed (%s): %s; retry %u in %.1f s", synclog_result(r), res->err.msg,
		a->sched.failures, (double)delay / 1000);
}

/* Record how the push ended (r, its result). */
static void push_outcome(struct agent *a, int r)
{
	const struct attempt_result *res = &a->job.res;

	if (r == -ECANCELED) {
		log_msg(LOG_NOTICE, "push abandoned; it resumes on the next start");
	} else if (r < 0) {
		push_failed(a, r);
	} else {
		a->sched.failures = 0;
		a->sched.last_error[0] = '\0';
		if (res->pushed) {
			a->sched.last_success = hlc_wall_ms();
			log_msg(LOG_INFO,
				"pushed %llu change sets (%llu changes, %llu bytes) in %llu ms",
				res->stats.sets, res->stats.changes, res->stats.bytes,
				(unsigned long long)res->duration_ms);
		}
		if (res->clock_warning[0])
			log_msg(LOG_WARNING, "%s", res->clock_warning);
	}
}

/* Answer the `sync` and `pull` clients this push was for. */
static void answer_waiting(struct agent *a, int r)
{
	char line[600];

	for (size_t i = 0; i < CLIENT_MAX; i++) {
		struct client *cl = &a->clients.slot[i];

		if (cl->fd < 0 || !cl->wait_gen || cl->wait_gen > a->job.gen)
			continue;
		cl->wait_gen = 0;
		if (r == 0) {
			cmd_sync_format(&a->job.res, a->job.pull_only, line, sizeof(line));
			client_answer(cl, line, NULL, FS_EXIT_OK);
		} else {
			snprintf(line, sizeof(line), "fieldsync: %s\n",
				 a->job.res.err.msg[0] ? a->job.res.err.msg : fs_strerror(r));
			client_answer(cl, NULL, line, commands_exit_code(r));
		}
	}
	if (a->sched.halted) {
		snprintf(line, sizeof(line), "fieldsync: %s\n", a->sched.last_error);
		job_answer_parked(a, line, FS_EXIT_DATA);
	}
}

/* The thread ended: record the outcome, answer `sync` clients, and
 * decide when to try again. */
void job_finished(struct agent *a)
{
	uint64_t v;
	int r;

	pthread_join(a->job.thread, NULL);
	(void)!read(a->job.efd, &v, sizeof(v)); /* clear it; may already be */
	a->job.running = 0;
	/* The worker sits idle until the next push: its cache, and what its
	 * thread's malloc arena kept of packing and sealing, go back to the
	 * system (issue 18, the agent's idle memory). */
	store_release_memory(a->job.wstore);
	(void)malloc_trim(0);
	if (a->job.kind == JOB_COMMAND) {
		job_command_finished(a);
		return;
	}
	r = a->job.res_code; /* only now: the thread wrote it */
	push_outcome(a, r);
	answer_waiting(a, r);
	/* With nothing more to send, keep in touch: a pull now and then
	 * brings HQ's news down and tells HQ, in its report, that this
	 * laptop is well and only quiet.  Only the attempt that timer
	 * starts pulls regardless; one a write starts sooner is as ever. */
	/* Files left behind for records go on at once, after them. */
	if (r == 0 && a->job.res.files_left)
		daemon_schedule(a, 0);
	if (r == 0 && !a->sched.halted && a->sched.next_push == NEVER) {
		a->sched.touch_at = hlc_mono_ms() + a->c->cfg.report_ms;
		daemon_schedule(a, a->c->cfg.report_ms);
	}
	/* A command to HQ that waited for this push goes now (not while
	 * stopping or locking: push_stop's callers deal with it). */
	if (a->job.cmd.client && !a->job.cancel && a->store && job_start(a, JOB_COMMAND) < 0) {
		a->job.cmd.status = FS_EXIT_IO;
		a->job.cmd.wrote = 0;
		job_command_finished(a);
	}
	daemon_notify_status(a);
}

/* Cancel a push in flight and wait for it; its `sync` clients are
 * answered that it was abandoned. */
void job_stop(struct agent *a)
{
	if (!a->job.running)
		return;
	a->job.cancel = 1;
	job_finished(a);
	a->job.cancel = 0;
}

/* A command to HQ still waiting for a push to end will not run. */
void job_drop_queued(struct agent *a, const char *msg, int status)
{
	if (!a->job.cmd.client)
		return;
	a->job.cmd.status = status;
	a->job.cmd.wrote = 0;
	a->job.cmd.err = strdup(msg);
	a->job.cmd.elen = a->job.cmd.err ? strlen(a->job.cmd.err) : 0;
	job_command_finished(a);
}

/* A command for the worker thread (it talks to HQ, or may run long): the
 * client parked meanwhile, after the push in flight if there is one.
 * Returns -1 when the job owns call, argv and state now, else the exit
 * status. */
int job_request_command(struct agent *a, struct client *cl, struct command_call *call, char **argv,
			const struct cli_input *inputs, cJSON *state)
{
	if (a->job.cmd.client) {
		fprintf(a->c->err, "fieldsync: the agent is busy with another long request (an "
				   "import, or a request to HQ); try again when it ends\n");
		return FS_EXIT_IO;
	}
	log_msg(LOG_INFO, "%s: on the worker thread", cmd_call_name(call));
	/* It waits for the push in flight: files give way to it, as to a
	 * new record (daemon_schedule()). */
	if (a->job.running && a->job.kind == JOB_PUSH)
		a->job.yield = 1;
	a->job.cmd.client = cl;
	a->job.cmd.call = call;
	a->job.cmd.argv = argv;
	memcpy(a->job.cmd.inputs, inputs, sizeof(a->job.cmd.inputs));
	a->job.cmd.ninputs = cl->nfds;
	a->job.cmd.out = a->job.cmd.err = NULL;
	cl->in_job = 1;
	a->job.cmd.state = state;
	if (a->job.running || job_start(a, JOB_COMMAND) == 0)
		return -1;
	a->job.cmd.state = NULL;
	a->job.cmd.call = NULL;
	a->job.cmd.argv = NULL;
	cl->in_job = 0;
	a->job.cmd.client = NULL;
	fprintf(a->c->err, "fieldsync: the agent could not start the request; see its log\n");
	return FS_EXIT_IO;
}

/* Whether an import runs on the worker thread: it holds the store's
 * write lock until it ends. */
int job_import_running(const struct agent *a)
{
	return a->job.cmd.client && a->job.cmd.call &&
	       (cmd_call_flags(a->job.cmd.call) & CMD_RUNS_LONG);
}

void job_command_finished(struct agent *a)
{
	struct client *cl = a->job.cmd.client;
	int enrolled = a->job.cmd.wrote && a->job.cmd.call &&
		       (cmd_call_flags(a->job.cmd.call) & CMD_ENROLLS);

	client_answer(cl, a->job.cmd.out, a->job.cmd.err, a->job.cmd.status);
	/* The output names the team; the request held the token. */
	if (a->job.cmd.out)
		sodium_memzero(a->job.cmd.out, a->job.cmd.olen);
	if (a->job.cmd.err)
		sodium_memzero(a->job.cmd.err, a->job.cmd.elen);
	free(a->job.cmd.out);
	free(a->job.cmd.err);
	cmd_call_free(a->job.cmd.call);
	free(a->job.cmd.argv);
	cJSON_Delete(a->job.cmd.state);
	a->job.cmd.out = a->job.cmd.err = NULL;
	a->job.cmd.call = NULL;
	a->job.cmd.argv = NULL;
	a->job.cmd.state = NULL;
	cl->in_job = 0;
	if (cl->in) {
		sodium_memzero(cl->in, CTL_REQUEST_MAX);
		cl->in_len = 0;
	}
	a->job.cmd.client = NULL;
	if (enrolled) {
		log_msg(LOG_INFO, "enrolled with HQ");
		a->sched.halted = 0;
		daemon_schedule(a, 0);
	} else if (a->job.cmd.wrote) {
		daemon_schedule(a, a->c->cfg.push_delay_ms); /* an import: push what it added */
	}
	daemon_notify_status(a);
}
