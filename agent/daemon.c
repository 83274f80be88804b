/* daemon.c - the agent's event loop and its worker thread.  The control
 * connections are agent/client.h; the commands they carry, agent/cmd.h.
 *
 * Sections: state; the worker thread; scheduling; unlocking; requests;
 * the loop.
 */
#include "agent/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <sodium.h>

#include "agent/attempt.h"
#include "agent/backoff.h"
#include "agent/client.h"
#include "agent/cmd.h"
#include "agent/ctl.h"
#include "agent/enroll.h"
#include "agent/keystore.h"
#include "agent/netframe.h"
#include "agent/netproc.h"
#include "agent/netwatch.h"
#include "agent/synclog.h"
#include "crypto/bytes.h"
#include "crypto/secmem.h"
#include "sync/hlc.h"
#include "sync/log.h"

/* ---- state --------------------------------------------------------------- */

#define NET_SETTLE_MS 250 /* after a netlink event, before pushing */
#define NEVER UINT64_MAX

/* A forwarded command on the worker thread (request_job()). */
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

/* When to push next, and what `status` says of the pushes so far. */
struct push_schedule {
	uint64_t next_push; /* monotonic ms; NEVER: nothing scheduled */
	unsigned failures;  /* in a row */
	int halted;	    /* HQ revoked this device */
	/* Wall clock ms (0: never). */
	uint64_t last_attempt, last_success, next_wall;
	char last_error[512];	       /* an fs_error message */
	uint64_t wd_interval, next_wd; /* the systemd watchdog, monotonic ms */
};

struct agent {
	struct cli *c;
	char sock[CTL_PATH_MAX];     /* where it listens, fixed until it stops */
	struct store *store;	     /* NULL: locked */
	int nfd, sfd, efd;	     /* netlink, signals, push done */
	struct client_table clients; /* the listening socket, its connections */
	int stopping;

	/* The worker thread runs one job at a time: a push attempt, or a
	 * forwarded command that talks to HQ or runs long (request_job(); never on this
	 * loop).  While running, only it touches wstore, opt, res and the
	 * job_ fields. */
	pthread_t thread;
	int running;
	int pull_only; /* the job in flight pulls without pushing */
	enum { JOB_PUSH, JOB_COMMAND } job;
	_Atomic int cancel;
	struct store *wstore;
	struct attempt_options opt; /* built on the loop, read by the job */
	struct attempt_result res;
	int res_code;
	unsigned long want_max; /* --max-changes of a waiting `sync` */
	int want_pull;		/* a waiting `sync` or `pull`: ATTEMPT_PULL_* */
	uint64_t gen;		/* attempts started so far */
	struct command_job cmd; /* JOB_COMMAND: the request it runs */
	struct push_schedule sched;
};

static uint32_t uniform(uint32_t n)
{
	return randombytes_uniform(n);
}

static void notify_status(struct agent *a)
{
	uint64_t now = hlc_mono_ms();
	char text[160];

	if (!a->store)
		snprintf(text, sizeof(text), "STATUS=locked: run 'fieldsync unlock'");
	else if (a->sched.halted)
		snprintf(text, sizeof(text), "STATUS=revoked by HQ; not pushing");
	else if (a->running)
		snprintf(text, sizeof(text), "STATUS=pushing to HQ");
	else if (a->sched.next_push != NEVER)
		snprintf(text, sizeof(text), "STATUS=next push in %llus%s",
			 (unsigned long long)(a->sched.next_push > now
						      ? (a->sched.next_push - now + 999) / 1000
						      : 0),
			 a->sched.failures ? " (HQ unreachable)" : "");
	else
		snprintf(text, sizeof(text), "STATUS=idle; everything sent");
	sd_notify(0, text);
}

/* ---- the worker thread ------------------------------------------------- */

/* Runs a forwarded command (request_job()) with its own connection and
 * output; its options were parsed on the loop. */
static void run_command_job(struct agent *a)
{
	FILE *out = open_memstream(&a->cmd.out, &a->cmd.olen);
	FILE *err = open_memstream(&a->cmd.err, &a->cmd.elen);
	struct cli jc = {
		.cfg = a->c->cfg, /* shallow and read-only: never freed here */
		.out = out,
		.err = err,
		.store = a->wstore,
		.in_agent = 1,
		.inputs = a->cmd.inputs,
		.n_inputs = a->cmd.ninputs,
		.cancel = &a->cancel,
		.agent = a->cmd.state,
	};

	a->cmd.status = FS_EXIT_IO;
	a->cmd.wrote = 0;
	if (out && err) {
		a->cmd.status = cmd_call_run(&jc, a->cmd.call);
		a->cmd.wrote = jc.wrote;
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

	if (a->job == JOB_COMMAND)
		run_command_job(a);
	else
		a->res_code = attempt_run(a->wstore, &a->opt, NULL, NULL, &a->res);
	/* An eventfd write of 1 cannot fail short of a closed fd. */
	(void)!write(a->efd, &one, sizeof(one));
	return NULL;
}

static int job_start(struct agent *a, int job)
{
	struct fs_error err = { 0 };
	int r;

	if (!a->wstore && (r = store_reopen(a->store, &a->wstore, &err)) < 0) {
		log_msg(LOG_ERR, "push: %s", err.msg);
		return r;
	}
	a->job = job;
	a->cancel = 0;
	/* The job reads these, not the config SIGHUP may rewrite. */
	a->opt = (struct attempt_options){
		.max_changes = a->want_max ? a->want_max : a->c->cfg.max_changes,
		.connect_timeout_s = a->c->cfg.connect_timeout,
		.stall_timeout_s = a->c->cfg.stall_timeout,
		.cancel = &a->cancel,
		/* The agent pulls after every push that delivered; a person's
		 * `sync` or `pull` asks for it whatever there is to send. */
		.pull = a->want_pull ? a->want_pull : ATTEMPT_PULL_AFTER_PUSH,
		.forms_dir = a->c->cfg.forms_dir,
	};
	a->pull_only = job == JOB_PUSH && a->want_pull == ATTEMPT_PULL_ONLY;
	if (job == JOB_PUSH) {
		a->want_max = 0;
		a->want_pull = 0;
		a->gen++;
		a->sched.last_attempt = hlc_wall_ms();
	}
	if ((r = pthread_create(&a->thread, NULL, job_thread, a)) != 0) {
		log_msg(LOG_ERR, "cannot start a thread: %s", strerror(r));
		if (job == JOB_PUSH)
			a->gen--;
		return -r;
	}
	a->running = 1;
	notify_status(a);
	return 0;
}

static void command_finished(struct agent *a);

/* Answer every client parked for a push that will not come. */
static void answer_parked(struct agent *a, const char *msg, int status)
{
	for (size_t i = 0; i < CLIENT_MAX; i++) {
		struct client *cl = &a->clients.slot[i];

		if (cl->fd >= 0 && cl->wait_gen) {
			cl->wait_gen = 0;
			client_answer(cl, NULL, msg, status);
		}
	}
}

static void lock(struct agent *a);

/* HQ revoked this device and the configuration asks for crypto-shredding:
 * say so first, then close the store and destroy its only key. */
static void wipe_after_revoke(struct agent *a)
{
	struct fs_error err = { 0 };

	log_msg(LOG_CRIT, "HQ revoked this device; wipe_on_revoke = yes: destroying the store key "
			  "now; the records on this laptop become unreadable");
	lock(a);
	if (store_shred_key(a->c->cfg.data_dir, &err) < 0)
		log_msg(LOG_CRIT, "wipe_on_revoke failed: %s", err.msg);
	else
		log_msg(LOG_CRIT, "store key destroyed: %s/store.key", a->c->cfg.data_dir);
}

/* A failed push: remember why and decide when to try again; a revoked
 * device stops, and wipes its key when configured to. */
static void push_failed(struct agent *a, int r)
{
	const struct attempt_result *res = &a->res;
	const struct cli *c = a->c;
	uint64_t delay;

	snprintf(a->sched.last_error, sizeof(a->sched.last_error), "%s", res->err.msg);
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
	const struct attempt_result *res = &a->res;

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

		if (cl->fd < 0 || !cl->wait_gen || cl->wait_gen > a->gen)
			continue;
		cl->wait_gen = 0;
		if (r == 0) {
			cmd_sync_format(&a->res, a->pull_only, line, sizeof(line));
			client_answer(cl, line, NULL, FS_EXIT_OK);
		} else {
			snprintf(line, sizeof(line), "fieldsync: %s\n",
				 a->res.err.msg[0] ? a->res.err.msg : fs_strerror(r));
			client_answer(cl, NULL, line, commands_exit_code(r));
		}
	}
	if (a->sched.halted) {
		snprintf(line, sizeof(line), "fieldsync: %s\n", a->sched.last_error);
		answer_parked(a, line, FS_EXIT_DATA);
	}
}

/* The thread ended: record the outcome, answer `sync` clients, and
 * decide when to try again. */
static void job_finished(struct agent *a)
{
	uint64_t v;
	int r;

	pthread_join(a->thread, NULL);
	(void)!read(a->efd, &v, sizeof(v)); /* clear it; may already be */
	a->running = 0;
	if (a->job == JOB_COMMAND) {
		command_finished(a);
		return;
	}
	r = a->res_code; /* only now: the thread wrote it */
	push_outcome(a, r);
	answer_waiting(a, r);
	/* A command to HQ that waited for this push goes now (not while
	 * stopping or locking: push_stop's callers deal with it). */
	if (a->cmd.client && !a->cancel && a->store && job_start(a, JOB_COMMAND) < 0) {
		a->cmd.status = FS_EXIT_IO;
		a->cmd.wrote = 0;
		command_finished(a);
	}
	notify_status(a);
}

/* Cancel a push in flight and wait for it; its `sync` clients are
 * answered that it was abandoned. */
static void push_stop(struct agent *a)
{
	if (!a->running)
		return;
	a->cancel = 1;
	job_finished(a);
	a->cancel = 0;
}

/* ---- scheduling ------------------------------------------------------------ */

static void schedule(struct agent *a, uint64_t delay_ms)
{
	uint64_t at = hlc_mono_ms() + delay_ms;

	if (!a->store || a->sched.halted || a->stopping)
		return;
	if (a->sched.next_push == NEVER || at < a->sched.next_push) {
		a->sched.next_push = at;
		a->sched.next_wall = hlc_wall_ms() + delay_ms;
	}
}

/* ---- unlocking -------------------------------------------------------------- */

static int unlock_with(struct agent *a, const struct keystore_secret *secret, struct fs_error *err)
{
	struct store_options opt = { .ballast_bytes = (uint64_t)a->c->cfg.disk_reserve_mib << 20 };
	int r = store_open(a->c->cfg.data_dir, secret, &opt, &a->store, err);

	if (r < 0)
		return r;
	a->c->store = a->store;
	log_msg(LOG_INFO, "store %s/store.db unlocked", a->c->cfg.data_dir);
	/* Whatever was left from before goes up, and what HQ holds comes
	 * down. */
	if (!a->want_pull)
		a->want_pull = ATTEMPT_PULL_ALWAYS;
	schedule(a, 0);
	notify_status(a);
	return 0;
}

/* A command to HQ still waiting for a push to end will not run. */
static void drop_queued_command(struct agent *a, const char *msg, int status)
{
	if (!a->cmd.client)
		return;
	a->cmd.status = status;
	a->cmd.wrote = 0;
	a->cmd.err = strdup(msg);
	a->cmd.elen = a->cmd.err ? strlen(a->cmd.err) : 0;
	command_finished(a);
}

static void lock(struct agent *a)
{
	push_stop(a);
	drop_queued_command(a,
			    "fieldsync: the agent's store was locked; the request to HQ did "
			    "not run\n",
			    FS_EXIT_KEY);
	answer_parked(a, "fieldsync: the agent's store was locked; nothing more was sent\n",
		      FS_EXIT_KEY);
	a->wstore = store_close(a->wstore);
	a->store = store_close(a->store);
	a->c->store = NULL;
	a->sched.next_push = NEVER;
	a->sched.next_wall = 0;
	log_msg(LOG_INFO, "store locked; the key is wiped from memory");
	notify_status(a);
}

/* The secret at start: a systemd credential, then the configured file. */
static void unlock_at_start(struct agent *a)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	struct keystore_secret *secret = NULL;
	struct fs_error err = { 0 };
	char path[4096];
	int r = 1;

	if (creds) {
		snprintf(path, sizeof(path), "%s/fieldsync-store-key", creds);
		if (access(path, F_OK) == 0) {
			r = keystore_secret_from_key_file(path, &secret, &err);
		} else {
			snprintf(path, sizeof(path), "%s/fieldsync-store-passphrase", creds);
			if (access(path, F_OK) == 0)
				r = keystore_secret_from_passphrase_file(path, &secret, &err);
		}
	}
	if (r == 1 && a->c->cfg.key_file)
		r = keystore_secret_from_key_file(a->c->cfg.key_file, &secret, &err);
	else if (r == 1 && a->c->cfg.passphrase_file)
		r = keystore_secret_from_passphrase_file(a->c->cfg.passphrase_file, &secret, &err);
	if (r == 1) {
		log_msg(LOG_NOTICE, "no credential or secret file: store locked until "
				    "'fieldsync unlock'");
		return;
	}
	if (r == 0)
		r = unlock_with(a, secret, &err);
	keystore_secret_free(secret);
	if (r < 0)
		log_msg(LOG_ERR, "%s; store stays locked until 'fieldsync unlock'", err.msg);
}

/* ---- requests ------------------------------------------------------------------ */

static cJSON *agent_state(const struct agent *a)
{
	cJSON *o = cJSON_CreateObject();
	char t[HLC_TIME_LEN + 1];

	if (!o || !cJSON_AddBoolToObject(o, "running", 1) ||
	    !cJSON_AddBoolToObject(o, "locked", !a->store) ||
	    !cJSON_AddBoolToObject(o, "pushing", a->running) ||
	    !cJSON_AddBoolToObject(o, "revoked", a->sched.halted) ||
	    !cJSON_AddNumberToObject(o, "failures", a->sched.failures))
		goto fail;
	if (a->sched.last_attempt) {
		hlc_format_time(a->sched.last_attempt << 16, t);
		if (!cJSON_AddStringToObject(o, "last_attempt", t))
			goto fail;
	}
	if (a->sched.last_success) {
		hlc_format_time(a->sched.last_success << 16, t);
		if (!cJSON_AddStringToObject(o, "last_success", t))
			goto fail;
	}
	if (a->sched.next_push != NEVER && !a->running) {
		hlc_format_time(a->sched.next_wall << 16, t);
		if (!cJSON_AddStringToObject(o, "next_attempt", t))
			goto fail;
	}
	if (a->sched.last_error[0] &&
	    !cJSON_AddStringToObject(o, "last_error", a->sched.last_error))
		goto fail;
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

/* A parsed sync or pull: push now (sync) and pull; the client's answer
 * comes when an attempt that started after this request ends.  Returns
 * -1 when the client now waits, else the exit status. */
static int request_attempt(struct agent *a, struct client *cl, const struct command_call *call)
{
	unsigned long max;
	int pull, r;

	if ((r = cmd_sync_request(a->c, call, &max, &pull)) >= 0)
		return r;
	if (!a->store) {
		fprintf(a->c->err, "fieldsync: the agent's store is locked; run 'fieldsync "
				   "unlock'\n");
		return FS_EXIT_KEY;
	}
	a->sched.halted = 0; /* an explicit request tries again */
	cl->wait_gen = a->gen + 1;
	a->want_max = max;
	/* sync and pull both pull; only sync pushes too. */
	if (a->want_pull != ATTEMPT_PULL_ALWAYS)
		a->want_pull = pull;
	schedule(a, 0);
	return -1;
}

/* A command for the worker thread (it talks to HQ, or may run long): the
 * client parked meanwhile, after the push in flight if there is one.
 * Returns -1 when the job owns call, argv and state now, else the exit
 * status. */
static int request_job(struct agent *a, struct client *cl, struct command_call *call, char **argv,
		       const struct cli_input *inputs, cJSON *state)
{
	if (a->cmd.client) {
		fprintf(a->c->err, "fieldsync: the agent is busy with another long request (an "
				   "import, or a request to HQ); try again when it ends\n");
		return FS_EXIT_IO;
	}
	log_msg(LOG_INFO, "%s: on the worker thread", cmd_call_name(call));
	a->cmd.client = cl;
	a->cmd.call = call;
	a->cmd.argv = argv;
	memcpy(a->cmd.inputs, inputs, sizeof(a->cmd.inputs));
	a->cmd.ninputs = cl->nfds;
	a->cmd.out = a->cmd.err = NULL;
	cl->in_job = 1;
	a->cmd.state = state;
	if (a->running || job_start(a, JOB_COMMAND) == 0)
		return -1;
	a->cmd.state = NULL;
	a->cmd.call = NULL;
	a->cmd.argv = NULL;
	cl->in_job = 0;
	a->cmd.client = NULL;
	fprintf(a->c->err, "fieldsync: the agent could not start the request; see its log\n");
	return FS_EXIT_IO;
}

/* Whether an import runs on the worker thread: it holds the store's
 * write lock until it ends. */
static int import_running(const struct agent *a)
{
	return a->cmd.client && a->cmd.call && (cmd_call_flags(a->cmd.call) & CMD_RUNS_LONG);
}

/* Run a forwarded command with its output in memory.  Its options are
 * parsed here, on the loop, whichever thread runs it (agent/commands.h). */
static void run_command(struct agent *a, struct client *cl)
{
	struct cli_input inputs[CTL_MAX_FILES];
	unsigned idx[CTL_MAX_FILES];
	char *obuf = NULL, *ebuf = NULL, **argv = NULL;
	struct command_call *call = NULL;
	size_t olen = 0, elen = 0;
	struct cli *c = a->c;
	FILE *out = NULL, *err = NULL;
	cJSON *state = NULL;
	unsigned flags;
	int argc, status;

	if (ctl_parse_command(cl->in + CTL_HEADER, cl->in_len - CTL_HEADER, cl->nfds, &argc, &argv,
			      idx) < 0) {
		client_answer(cl, NULL, "fieldsync: malformed request to the agent\n",
			      FS_EXIT_USAGE);
		return;
	}
	out = open_memstream(&obuf, &olen);
	err = open_memstream(&ebuf, &elen);
	state = agent_state(a);
	if (!out || !err || !state) {
		client_answer(cl, NULL, "fieldsync: the agent is out of memory\n", FS_EXIT_IO);
		goto out;
	}
	for (size_t i = 0; i < cl->nfds; i++)
		inputs[i] = (struct cli_input){ .arg = argv[idx[i]], .fd = cl->fds[i] };
	c->out = out;
	c->err = err;
	c->in_agent = 1;
	c->inputs = inputs;
	c->n_inputs = cl->nfds;
	c->wrote = 0;
	c->agent = state;
	if ((status = cmd_parse(c, argc, argv, &call)) != 0 || !call)
		goto answer;
	flags = cmd_call_flags(call);
	if (flags & CMD_STARTS_ATTEMPT) {
		if ((status = request_attempt(a, cl, call)) < 0)
			goto out;
	} else if ((flags & CMD_WRITES) && import_running(a)) {
		/* Waiting for the import here would stall every other client. */
		fprintf(err, "fieldsync: an import is running; nothing was changed: try again "
			     "when it ends\n");
		status = FS_EXIT_IO;
	} else if (a->store && (flags & (CMD_TALKS_TO_HQ | CMD_RUNS_LONG))) {
		if ((status = request_job(a, cl, call, argv, inputs, state)) < 0) {
			call = NULL; /* the job owns these now */
			argv = NULL;
			state = NULL;
			goto out;
		}
	} else {
		status = cmd_call_run(c, call);
		if (c->wrote)
			schedule(a, c->cfg.push_delay_ms);
	}
answer:
	fflush(out);
	fflush(err);
	client_answer(cl, obuf, ebuf, status);
out:
	c->inputs = NULL;
	c->n_inputs = 0;
	c->agent = NULL;
	c->out = stdout;
	c->err = stderr;
	if (out)
		fclose(out);
	if (err)
		fclose(err);
	/* Output may hold field values: wipe before it goes back to malloc. */
	if (obuf)
		sodium_memzero(obuf, olen);
	if (ebuf)
		sodium_memzero(ebuf, elen);
	free(obuf);
	free(ebuf);
	cmd_call_free(call);
	free(argv);
	cJSON_Delete(state);
}

static void command_finished(struct agent *a)
{
	struct client *cl = a->cmd.client;
	int enrolled = a->cmd.wrote && a->cmd.call && (cmd_call_flags(a->cmd.call) & CMD_ENROLLS);

	client_answer(cl, a->cmd.out, a->cmd.err, a->cmd.status);
	/* The output names the team; the request held the token. */
	if (a->cmd.out)
		sodium_memzero(a->cmd.out, a->cmd.olen);
	if (a->cmd.err)
		sodium_memzero(a->cmd.err, a->cmd.elen);
	free(a->cmd.out);
	free(a->cmd.err);
	cmd_call_free(a->cmd.call);
	free(a->cmd.argv);
	cJSON_Delete(a->cmd.state);
	a->cmd.out = a->cmd.err = NULL;
	a->cmd.call = NULL;
	a->cmd.argv = NULL;
	a->cmd.state = NULL;
	cl->in_job = 0;
	if (cl->in) {
		sodium_memzero(cl->in, CTL_REQUEST_MAX);
		cl->in_len = 0;
	}
	a->cmd.client = NULL;
	if (enrolled) {
		log_msg(LOG_INFO, "enrolled with HQ");
		a->sched.halted = 0;
		schedule(a, 0);
	} else if (a->cmd.wrote) {
		schedule(a, a->c->cfg.push_delay_ms); /* an import: push what it added */
	}
	notify_status(a);
}

static void run_unlock(struct agent *a, struct client *cl)
{
	const uint8_t *p = cl->in + CTL_HEADER;
	size_t len = cl->in_len - CTL_HEADER;
	struct keystore_secret *secret = NULL;
	struct fs_error err = { 0 };
	char msg[sizeof(((struct fs_error *)0)->msg) + 16];
	int r;

	if (a->store) {
		client_answer(cl, "the agent's store is already unlocked\n", NULL, FS_EXIT_OK);
		return;
	}
	if (len < 1 || len > 1 + CTL_SECRET_MAX || (p[0] != 1 && p[0] != 2)) {
		client_answer(cl, NULL, "fieldsync: malformed unlock request\n", FS_EXIT_USAGE);
		return;
	}
	r = p[0] == 1 ? keystore_secret_from_passphrase((const char *)p + 1, len - 1, &secret)
		      : keystore_secret_from_wrapkey(p + 1, len - 1, &secret);
	if (r < 0)
		fs_error_set(&err, r, "unlock: %s",
			     r == -ENOMEM ? "out of secure memory" : "not a key file's key");
	else
		r = unlock_with(a, secret, &err);
	keystore_secret_free(secret);
	if (r < 0) {
		log_msg(LOG_WARNING, "unlock refused: %s", err.msg);
		snprintf(msg, sizeof(msg), "fieldsync: %s\n", err.msg);
		client_answer(cl, NULL, msg, commands_exit_code(r));
		return;
	}
	client_answer(cl, "store unlocked; the agent holds the key\n", NULL, FS_EXIT_OK);
}

/* A whole request from a client (client_table's callback). */
static void client_request(void *ctx, struct client *cl)
{
	struct agent *a = ctx;

	switch (cl->in[0]) {
	case CTL_COMMAND:
		run_command(a, cl);
		break;
	case CTL_UNLOCK:
		run_unlock(a, cl);
		break;
	case CTL_POKE:
		schedule(a, a->c->cfg.push_delay_ms);
		client_answer(cl, NULL, NULL, FS_EXIT_OK);
		break;
	case CTL_LOCK:
		if (a->store) {
			lock(a);
			client_answer(cl, "store locked; the agent no longer holds the key\n", NULL,
				      FS_EXIT_OK);
		} else {
			client_answer(cl, "the agent's store is already locked\n", NULL,
				      FS_EXIT_OK);
		}
		break;
	default:
		client_answer(cl, NULL, "fieldsync: unknown request to the agent\n", FS_EXIT_USAGE);
	}
	/* The request may hold a passphrase or a token: wipe it now, unless
	 * the worker thread still reads it (command_finished wipes it then),
	 * or the client is gone already. */
	if (cl->in && !cl->in_job) {
		sodium_memzero(cl->in, CTL_REQUEST_MAX);
		cl->in_len = 0;
	}
}

/* ---- the loop ------------------------------------------------------------------ */

static void reload(struct agent *a)
{
	struct cli fresh = { .config_path = a->c->config_path, .out = stdout, .err = stderr };
	char *none[4] = { NULL, NULL, NULL, NULL };
	struct fs_error err = { 0 };
	struct agent_config *cur = &a->c->cfg;

	if (commands_load_config(&fresh, none, &err) < 0) {
		log_msg(LOG_ERR, "reload: %s; keeping the running configuration", err.msg);
		config_free(&fresh.cfg);
		return;
	}
	/* Timings change at once; where things live needs a restart. */
	cur->push_delay_ms = fresh.cfg.push_delay_ms;
	cur->retry_min = fresh.cfg.retry_min;
	cur->retry_max = fresh.cfg.retry_max;
	cur->max_changes = fresh.cfg.max_changes;
	cur->connect_timeout = fresh.cfg.connect_timeout;
	cur->stall_timeout = fresh.cfg.stall_timeout;
	if (strcmp(fresh.cfg.data_dir, cur->data_dir) != 0 ||
	    strcmp(fresh.cfg.socket ? fresh.cfg.socket : a->sock, a->sock) != 0)
		log_msg(LOG_WARNING, "reload: data_dir and socket take effect on restart");
	config_free(&fresh.cfg);
	config_default_timings(&a->c->cfg);
	log_msg(LOG_INFO, "configuration reloaded");
}

static int setup(struct agent *a, gid_t *ret_group, struct fs_error *err)
{
	const char *path = a->sock;
	const char *gname = a->c->cfg.socket_group;
	struct group *g = getgrnam(gname ? gname : CONFIG_DEFAULT_SOCKET_GROUP);
	sigset_t mask;
	uint64_t usec = 0;
	int r;

	*ret_group = g ? g->gr_gid : (gid_t)-1;
	if (a->c->cfg.socket) {
		if (strlen(a->c->cfg.socket) >= sizeof(a->sock))
			return fs_error_set(err, -ENAMETOOLONG,
					    "agent socket %s: path longer than "
					    "%zu bytes",
					    a->c->cfg.socket, sizeof(a->sock) - 1);
		memcpy(a->sock, a->c->cfg.socket, strlen(a->c->cfg.socket) + 1);
	} else if ((r = ctl_default_socket(a->sock, err)) < 0) {
		return r;
	}
	if (!g && gname)
		return fs_error_set(err, -ENOENT, "agent socket group %s: no such group", gname);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (a->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return fs_error_set(err, -errno, "signalfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd < 0)
		return fs_error_set(err, -errno, "eventfd: %s", strerror(errno));
	if ((r = netwatch_open(err)) < 0)
		return r;
	a->nfd = r;
	/* The group only matters if we may hand the socket to it. */
	/* Without the right to give it away (EPERM; EINVAL in a user
	 * namespace that does not map the group), keep our own group,
	 * unless a group was configured. */
	if ((r = ctl_listen(path, *ret_group == getegid() ? (gid_t)-1 : *ret_group, err)) < 0 &&
	    (r == -EPERM || r == -EINVAL) && !gname)
		r = ctl_listen(path, (gid_t)-1, err);
	if (r < 0)
		return r;
	a->clients.lfd = r;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		a->sched.wd_interval = usec / 2000; /* ping at half the timeout */
		a->sched.next_wd = hlc_mono_ms() + a->sched.wd_interval;
	}
	log_msg(LOG_INFO, "listening on %s", path);
	return 0;
}

static void shut_down(struct agent *a)
{
	const char *path = a->sock;
	char how[64];
	int listening;

	a->stopping = 1;
	sd_notify(0, "STOPPING=1");
	if (a->running)
		log_msg(LOG_INFO, "stopping: abandoning the push in flight");
	push_stop(a);
	drop_queued_command(a, "fieldsync: the agent is stopping; the request to HQ did not run\n",
			    FS_EXIT_IO);
	answer_parked(a,
		      "fieldsync: the agent is stopping; the push resumes when it starts again\n",
		      FS_EXIT_IO);
	listening = a->clients.lfd >= 0;
	client_table_close(&a->clients);
	a->wstore = store_close(a->wstore);
	a->store = store_close(a->store);
	a->c->store = NULL;
	netproc_stop(how, sizeof(how));
	if (strcmp(how, "exit status 0") != 0 && strcmp(how, "not running") != 0)
		log_msg(LOG_WARNING, "network helper: %s", how);
	if (listening)
		unlink(path);
	if (a->nfd >= 0)
		close(a->nfd);
	if (a->sfd >= 0)
		close(a->sfd);
	if (a->efd >= 0)
		close(a->efd);
}

static int handle_signals(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			sd_notify(0, "RELOADING=1");
			reload(a);
			sd_notify(0, "READY=1");
			notify_status(a);
			continue;
		}
		log_msg(LOG_INFO, "signal %u: stopping", si.ssi_signo);
		return 1;
	}
	return 0;
}

/* The poll set: these first, then one slot per client that waits for
 * something (slot[] says which). */
enum poll_slot { POLL_SIGNALS, POLL_JOB, POLL_NETWORK, POLL_LISTEN, POLL_CLIENTS };

/* Start a push that is due and feed the watchdog; returns when the loop
 * must wake next for them. */
static uint64_t timers_run(struct agent *a, uint64_t now)
{
	uint64_t wake = NEVER;

	if (a->sched.next_push != NEVER && !a->running && now >= a->sched.next_push) {
		a->sched.next_push = NEVER;
		a->sched.next_wall = 0;
		if (a->store && !a->sched.halted && job_start(a, JOB_PUSH) < 0) {
			answer_parked(a,
				      "fieldsync: the agent could not start a push; "
				      "see its log\n",
				      FS_EXIT_IO);
			schedule(a, (uint64_t)a->c->cfg.retry_max * 1000);
		}
	}
	if (a->sched.wd_interval && now >= a->sched.next_wd) {
		sd_notify(0, "WATCHDOG=1");
		a->sched.next_wd = now + a->sched.wd_interval;
	}
	if (!a->running && a->sched.next_push < wake)
		wake = a->sched.next_push;
	if (a->sched.wd_interval && a->sched.next_wd < wake)
		wake = a->sched.next_wd;
	return wake;
}

/* Fill the poll set; *wake comes down to the clients' deadlines.
 * Returns its size. */
static nfds_t poll_fill(struct agent *a, struct pollfd *pfd, struct client **slot, uint64_t *wake)
{
	nfds_t n = POLL_CLIENTS;

	pfd[POLL_SIGNALS] = (struct pollfd){ .fd = a->sfd, .events = POLLIN };
	pfd[POLL_JOB] = (struct pollfd){ .fd = a->efd, .events = POLLIN };
	pfd[POLL_NETWORK] = (struct pollfd){ .fd = a->nfd, .events = POLLIN };
	pfd[POLL_LISTEN] = (struct pollfd){ .fd = a->clients.lfd, .events = POLLIN };
	return (nfds_t)client_table_poll(&a->clients, pfd, slot, n, wake);
}

/* poll's timeout for a wake-up at wake: -1 for none, at most an hour. */
static int poll_timeout(uint64_t wake, uint64_t now)
{
	if (wake == NEVER)
		return -1;
	return wake <= now ? 0 : (int)(wake - now > 3600000 ? 3600000 : wake - now);
}

/* The network changed: try soon, and start the backoff again, since what
 * failed before may work now.  With nothing to send the attempt ends
 * before any HTTP. */
static void network_changed(struct agent *a)
{
	a->sched.failures = 0;
	a->sched.next_push = NEVER;
	/* Pull too, once: HQ may hold news for this scope. */
	if (!a->want_pull)
		a->want_pull = ATTEMPT_PULL_ALWAYS;
	schedule(a, NET_SETTLE_MS);
	log_msg(LOG_INFO, "network change: pushing and pulling");
}

/* The event loop, until a signal ends it; the exit status. */
static int loop_run(struct agent *a)
{
	struct pollfd pfd[POLL_CLIENTS + CLIENT_MAX];
	struct client *slot[POLL_CLIENTS + CLIENT_MAX];

	for (;;) {
		uint64_t now = hlc_mono_ms(), wake = timers_run(a, now);
		nfds_t n = poll_fill(a, pfd, slot, &wake);
		int up;

		if (poll(pfd, n, poll_timeout(wake, now)) < 0 && errno != EINTR) {
			log_msg(LOG_ERR, "poll: %s", strerror(errno));
			return FS_EXIT_IO;
		}
		if ((pfd[POLL_SIGNALS].revents & POLLIN) && handle_signals(a))
			return FS_EXIT_OK;
		if ((pfd[POLL_JOB].revents & POLLIN) && a->running)
			job_finished(a);
		if ((pfd[POLL_NETWORK].revents & POLLIN) && netwatch_read(a->nfd, &up) == 0 && up &&
		    a->store && !a->sched.halted)
			network_changed(a);
		if (pfd[POLL_LISTEN].revents & POLLIN)
			client_table_accept(&a->clients);
		client_table_serve(&a->clients, pfd, slot, POLL_CLIENTS, n);
	}
}

int daemon_run(struct cli *c)
{
	struct agent a = { .c = c, .nfd = -1, .sfd = -1, .efd = -1, .sched.next_push = NEVER };
	struct fs_error err = { 0 };
	gid_t group;
	int status = FS_EXIT_OK;

	log_open("fieldsync-agent");
	client_table_init(&a.clients, client_request, &a);
	/* No core dumps and no ptrace by our own user: the heap holds field
	 * values on their way to clients, not only the key in secure memory. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		log_msg(LOG_WARNING, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	config_default_timings(&c->cfg);
	if (setup(&a, &group, &err) < 0) {
		log_msg(LOG_ERR, "%s", err.msg);
		status = commands_exit_code(err.code);
		goto out;
	}
	/* The network helper starts before any key is in this process
	 * (agent/netproc.h).  Without it the agent still records; every
	 * push says why it cannot run. */
	if (netproc_start(&err) < 0) {
		log_msg(LOG_ERR, "%s; nothing can be sent to HQ", err.msg);
	} else {
		char how[NETFRAME_READY_MAX + 1];

		netproc_confinement(how, sizeof(how));
		log_msg(LOG_INFO, "network helper (pid %d) holds no key: %s", (int)netproc_pid(),
			how);
	}
	unlock_at_start(&a);
	sd_notify(0, "READY=1");
	notify_status(&a);
	a.clients.group = group;
	status = loop_run(&a);
out:
	shut_down(&a);
	log_msg(LOG_INFO, "stopped");
	return status;
}
