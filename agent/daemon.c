/* daemon.c - the agent's event loop, push thread and control clients.
 *
 * Sections: logging; state; the worker thread; scheduling;
 * unlocking; clients; the loop.
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

#define CLIENTS_MAX 16
/* Connections one user may hold at once: a user's idle connections
 * never lock others out (client_accept). */
#define CLIENTS_PER_UID 4
/* To send a whole request after connecting.  The CLI reads its input (a
 * typed token, a pipe) and asks for a passphrase before it connects, then
 * sends at once (cli.c), so only a stuck or hostile client waits this long. */
#define CLIENT_TIMEOUT_MS 10000
#define ANSWER_TIMEOUT_MS 30000 /* to take a whole answer */
#define NET_SETTLE_MS 250	/* after a netlink event, before pushing */
#define NEVER UINT64_MAX

struct client {
	int fd;	     /* -1: free slot */
	uint8_t *in; /* secure memory, CTL_REQUEST_MAX: may hold a secret */
	size_t in_len;
	int fds[CTL_MAX_FILES]; /* received with the request */
	size_t nfds;
	uint8_t *out; /* answer frames */
	size_t out_len, out_off;
	uint64_t deadline;	 /* monotonic ms, while reading the request */
	uint64_t wait_gen;	 /* > 0: answer when attempt wait_gen ends */
	uint64_t write_deadline; /* monotonic ms to take the whole answer */
	int in_job;		 /* its request runs on the worker thread */
	uid_t uid;		 /* the peer's user */
	uint64_t since;		 /* monotonic ms it connected */
};

struct agent {
	struct cli *c;
	char sock[CTL_PATH_MAX]; /* where it listens, fixed until it stops */
	struct store *store;	 /* NULL: locked */
	int lfd, nfd, sfd, efd;	 /* listen, netlink, signals, push done */
	struct client clients[CLIENTS_MAX];
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
	unsigned long want_max;	       /* --max-changes of a waiting `sync` */
	int want_pull;		       /* a waiting `sync` or `pull`: ATTEMPT_PULL_* */
	uint64_t gen;		       /* attempts started so far */
	struct client *job_client;     /* JOB_COMMAND: who asked */
	struct command_call *job_call; /* parsed on the loop */
	char **job_argv;	       /* points into job_client->in */
	struct cli_input job_inputs[CTL_MAX_FILES];
	size_t job_ninputs;
	char *job_out, *job_err; /* its output */
	size_t job_olen, job_elen;
	int job_status, job_wrote;
	cJSON *job_state; /* the agent's state for its `status` */

	/* Scheduling, in monotonic ms. */
	uint64_t next_push; /* NEVER: nothing scheduled */
	unsigned failures;  /* in a row */
	int halted;	    /* HQ revoked this device */

	/* What status shows, wall clock ms (0: never). */
	uint64_t last_attempt, last_success, next_wall;
	char last_error[512]; /* an fs_error message */

	/* systemd watchdog */
	uint64_t wd_interval, next_wd;
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
	else if (a->halted)
		snprintf(text, sizeof(text), "STATUS=revoked by HQ; not pushing");
	else if (a->running)
		snprintf(text, sizeof(text), "STATUS=pushing to HQ");
	else if (a->next_push != NEVER)
		snprintf(text, sizeof(text), "STATUS=next push in %llus%s",
			 (unsigned long long)(a->next_push > now ? (a->next_push - now + 999) / 1000
								 : 0),
			 a->failures ? " (HQ unreachable)" : "");
	else
		snprintf(text, sizeof(text), "STATUS=idle; everything sent");
	sd_notify(0, text);
}

/* ---- the worker thread ------------------------------------------------- */

/* Runs a forwarded command (request_job()) with its own connection and
 * output; its options were parsed on the loop. */
static void run_command_job(struct agent *a)
{
	FILE *out = open_memstream(&a->job_out, &a->job_olen);
	FILE *err = open_memstream(&a->job_err, &a->job_elen);
	struct cli jc = {
		.cfg = a->c->cfg, /* shallow and read-only: never freed here */
		.out = out,
		.err = err,
		.store = a->wstore,
		.in_agent = 1,
		.inputs = a->job_inputs,
		.n_inputs = a->job_ninputs,
		.cancel = &a->cancel,
		.agent = a->job_state,
	};

	a->job_status = FS_EXIT_IO;
	a->job_wrote = 0;
	if (out && err) {
		a->job_status = cmd_call_run(&jc, a->job_call);
		a->job_wrote = jc.wrote;
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
		a->last_attempt = hlc_wall_ms();
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

static void client_answer(struct client *cl, const char *out, const char *err, int status);
static void command_finished(struct agent *a);

/* Answer every client parked for a push that will not come. */
static void answer_parked(struct agent *a, const char *msg, int status)
{
	for (size_t i = 0; i < CLIENTS_MAX; i++) {
		struct client *cl = &a->clients[i];

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

/* The thread ended: record the outcome, answer `sync` clients, and
 * decide when to try again. */
static void job_finished(struct agent *a)
{
	const struct attempt_result *res = &a->res;
	struct cli *c = a->c;
	uint64_t delay, v;
	char line[600];
	int r;

	pthread_join(a->thread, NULL);
	(void)!read(a->efd, &v, sizeof(v)); /* clear it; may already be */
	a->running = 0;
	if (a->job == JOB_COMMAND) {
		command_finished(a);
		return;
	}
	r = a->res_code; /* only now: the thread wrote it */
	if (r == 0) {
		a->failures = 0;
		a->last_error[0] = '\0';
		if (res->pushed) {
			a->last_success = hlc_wall_ms();
			log_msg(LOG_INFO,
				"pushed %llu change sets (%llu changes, %llu bytes) in %llu ms",
				res->stats.sets, res->stats.changes, res->stats.bytes,
				(unsigned long long)res->duration_ms);
		}
		if (res->clock_warning[0])
			log_msg(LOG_WARNING, "%s", res->clock_warning);
	} else if (r == -ECANCELED) {
		log_msg(LOG_NOTICE, "push abandoned; it resumes on the next start");
	} else if (r == -FS_ENOTFOUND) {
		/* Not enrolled: nothing to do until `fieldsync enroll`. */
		snprintf(a->last_error, sizeof(a->last_error), "%s", res->err.msg);
	} else {
		snprintf(a->last_error, sizeof(a->last_error), "%s", res->err.msg);
		if (r == -EACCES) {
			a->halted = 1;
			a->next_push = NEVER;
			log_msg(LOG_ERR, "%s; not pushing again until restarted", res->err.msg);
			if (c->cfg.wipe_on_revoke && !strcmp(c->cfg.wipe_on_revoke, "yes"))
				wipe_after_revoke(a);
		} else {
			a->failures++;
			delay = backoff_delay_ms(a->failures, c->cfg.retry_min, c->cfg.retry_max,
						 res->stats.retry_after, uniform);
			a->next_push = hlc_mono_ms() + delay;
			a->next_wall = hlc_wall_ms() + delay;
			/* The first failure of a streak is news; the rest are
			 * debug, or an offline week would flood the journal. */
			log_msg(a->failures == 1 ? LOG_WARNING : LOG_DEBUG,
				"push failed (%s): %s; retry %u in %.1f s", synclog_result(r),
				res->err.msg, a->failures, (double)delay / 1000);
		}
	}
	for (size_t i = 0; i < CLIENTS_MAX; i++) {
		struct client *cl = &a->clients[i];

		if (cl->fd < 0 || !cl->wait_gen || cl->wait_gen > a->gen)
			continue;
		cl->wait_gen = 0;
		if (r == 0) {
			cmd_sync_format(res, a->pull_only, line, sizeof(line));
			client_answer(cl, line, NULL, FS_EXIT_OK);
		} else {
			snprintf(line, sizeof(line), "fieldsync: %s\n",
				 res->err.msg[0] ? res->err.msg : fs_strerror(r));
			client_answer(cl, NULL, line, commands_exit_code(r));
		}
	}
	if (a->halted) {
		snprintf(line, sizeof(line), "fieldsync: %s\n", a->last_error);
		answer_parked(a, line, FS_EXIT_DATA);
	}
	/* A command to HQ that waited for this push goes now (not while
	 * stopping or locking: push_stop's callers deal with it). */
	if (a->job_client && !a->cancel && a->store && job_start(a, JOB_COMMAND) < 0) {
		a->job_status = FS_EXIT_IO;
		a->job_wrote = 0;
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

	if (!a->store || a->halted || a->stopping)
		return;
	if (a->next_push == NEVER || at < a->next_push) {
		a->next_push = at;
		a->next_wall = hlc_wall_ms() + delay_ms;
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
	if (!a->job_client)
		return;
	a->job_status = status;
	a->job_wrote = 0;
	a->job_err = strdup(msg);
	a->job_elen = a->job_err ? strlen(a->job_err) : 0;
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
	a->next_push = NEVER;
	a->next_wall = 0;
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

/* ---- clients ------------------------------------------------------------------ */

static void client_close(struct client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	for (size_t i = 0; i < cl->nfds; i++)
		close(cl->fds[i]);
	secmem_free(cl->in);
	if (cl->out)
		sodium_memzero(cl->out, cl->out_len);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

static int frame_append(struct client *cl, enum ctl_type type, const char *data, size_t len)
{
	do {
		size_t n = len > CTL_CHUNK ? CTL_CHUNK : len;
		uint8_t *p = realloc(cl->out, cl->out_len + CTL_HEADER + n);

		if (!p)
			return -ENOMEM;
		cl->out = p;
		p += cl->out_len;
		p[0] = (uint8_t)type;
		bytes_put_be(p + 1, n, 4);
		if (n)
			memcpy(p + CTL_HEADER, data, n);
		cl->out_len += CTL_HEADER + n;
		data += n;
		len -= n;
	} while (len > 0);
	return 0;
}

/* Queue the whole answer; the loop sends it as the socket takes it. */
static void client_answer(struct client *cl, const char *out, const char *err, int status)
{
	uint8_t st = (uint8_t)status;

	cl->write_deadline = hlc_mono_ms() + ANSWER_TIMEOUT_MS;
	if ((out && out[0] && frame_append(cl, CTL_STDOUT, out, strlen(out)) < 0) ||
	    (err && err[0] && frame_append(cl, CTL_STDERR, err, strlen(err)) < 0) ||
	    frame_append(cl, CTL_EXIT, (const char *)&st, 1) < 0) {
		log_msg(LOG_ERR, "client: out of memory for an answer");
		client_close(cl);
	}
}

static cJSON *agent_state(const struct agent *a)
{
	cJSON *o = cJSON_CreateObject();
	char t[HLC_TIME_LEN + 1];

	if (!o || !cJSON_AddBoolToObject(o, "running", 1) ||
	    !cJSON_AddBoolToObject(o, "locked", !a->store) ||
	    !cJSON_AddBoolToObject(o, "pushing", a->running) ||
	    !cJSON_AddBoolToObject(o, "revoked", a->halted) ||
	    !cJSON_AddNumberToObject(o, "failures", a->failures))
		goto fail;
	if (a->last_attempt) {
		hlc_format_time(a->last_attempt << 16, t);
		if (!cJSON_AddStringToObject(o, "last_attempt", t))
			goto fail;
	}
	if (a->last_success) {
		hlc_format_time(a->last_success << 16, t);
		if (!cJSON_AddStringToObject(o, "last_success", t))
			goto fail;
	}
	if (a->next_push != NEVER && !a->running) {
		hlc_format_time(a->next_wall << 16, t);
		if (!cJSON_AddStringToObject(o, "next_attempt", t))
			goto fail;
	}
	if (a->last_error[0] && !cJSON_AddStringToObject(o, "last_error", a->last_error))
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
	a->halted = 0; /* an explicit request tries again */
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
	if (a->job_client) {
		fprintf(a->c->err, "fieldsync: the agent is busy with another long request (an "
				   "import, or a request to HQ); try again when it ends\n");
		return FS_EXIT_IO;
	}
	log_msg(LOG_INFO, "%s: on the worker thread", cmd_call_name(call));
	a->job_client = cl;
	a->job_call = call;
	a->job_argv = argv;
	memcpy(a->job_inputs, inputs, sizeof(a->job_inputs));
	a->job_ninputs = cl->nfds;
	a->job_out = a->job_err = NULL;
	cl->in_job = 1;
	a->job_state = state;
	if (a->running || job_start(a, JOB_COMMAND) == 0)
		return -1;
	a->job_state = NULL;
	a->job_call = NULL;
	a->job_argv = NULL;
	cl->in_job = 0;
	a->job_client = NULL;
	fprintf(a->c->err, "fieldsync: the agent could not start the request; see its log\n");
	return FS_EXIT_IO;
}

/* Whether an import runs on the worker thread: it holds the store's
 * write lock until it ends. */
static int import_running(const struct agent *a)
{
	return a->job_client && a->job_call && (cmd_call_flags(a->job_call) & CMD_RUNS_LONG);
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
	struct client *cl = a->job_client;
	int enrolled = a->job_wrote && a->job_call && (cmd_call_flags(a->job_call) & CMD_ENROLLS);

	client_answer(cl, a->job_out, a->job_err, a->job_status);
	/* The output names the team; the request held the token. */
	if (a->job_out)
		sodium_memzero(a->job_out, a->job_olen);
	if (a->job_err)
		sodium_memzero(a->job_err, a->job_elen);
	free(a->job_out);
	free(a->job_err);
	cmd_call_free(a->job_call);
	free(a->job_argv);
	cJSON_Delete(a->job_state);
	a->job_out = a->job_err = NULL;
	a->job_call = NULL;
	a->job_argv = NULL;
	a->job_state = NULL;
	cl->in_job = 0;
	if (cl->in) {
		sodium_memzero(cl->in, CTL_REQUEST_MAX);
		cl->in_len = 0;
	}
	a->job_client = NULL;
	if (enrolled) {
		log_msg(LOG_INFO, "enrolled with HQ");
		a->halted = 0;
		schedule(a, 0);
	} else if (a->job_wrote) {
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

static void client_request(struct agent *a, struct client *cl)
{
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

/* Read what the client sent; run the request once it is complete. */
static void client_read(struct agent *a, struct client *cl)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FILES)];
	} ctrl;
	size_t want = CTL_HEADER;
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (cl->in_len >= CTL_HEADER)
		want = CTL_HEADER + (size_t)bytes_get_be(cl->in + 1, 4);
	iov.iov_base = cl->in + cl->in_len;
	iov.iov_len = want - cl->in_len;
	msg.msg_control = ctrl.buf;
	msg.msg_controllen = sizeof(ctrl.buf);
	n = recvmsg(cl->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(cl);
		return;
	}
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
		size_t k;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (cl->nfds < CTL_MAX_FILES)
				cl->fds[cl->nfds++] = fd;
			else
				close(fd);
		}
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		client_answer(cl, NULL, "fieldsync: too many files passed to the agent\n",
			      FS_EXIT_USAGE);
		return;
	}
	cl->in_len += (size_t)n;
	if (cl->in_len == CTL_HEADER) {
		size_t len = (size_t)bytes_get_be(cl->in + 1, 4);

		if (len > CTL_REQUEST_MAX - CTL_HEADER) {
			client_answer(cl, NULL, "fieldsync: request to the agent too large\n",
				      FS_EXIT_USAGE);
			return;
		}
		if (len > 0)
			return;
	}
	if (cl->in_len < CTL_HEADER || cl->in_len < CTL_HEADER + bytes_get_be(cl->in + 1, 4))
		return;
	cl->deadline = NEVER;
	client_request(a, cl);
}

static void client_write(struct client *cl)
{
	ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		client_close(cl);
		return;
	}
	cl->out_off += (size_t)n;
	if (cl->out_off == cl->out_len)
		client_close(cl);
}

/* Root, the agent's own user, or a member of the socket's group; the
 * peer's uid in *ret_uid. */
static int peer_allowed(int fd, gid_t group, uid_t *ret_uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t groups[256];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	*ret_uid = cred.uid;
	/* The network helper runs as our user, but is never a client. */
	if (netproc_pid() && cred.pid == netproc_pid())
		return 0;
	if (cred.uid == 0 || cred.uid == getuid())
		return 1;
	if (group == (gid_t)-1)
		return 0;
	if (cred.gid == group)
		return 1;
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return 0;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == group)
			return 1;
	return 0;
}

/* The longest-idle connection that has sent nothing yet (of uid, or of
 * anyone when any is set), or NULL: the one to drop for a newcomer. */
static struct client *client_idlest(struct agent *a, uid_t uid, int any)
{
	struct client *best = NULL;

	for (size_t i = 0; i < CLIENTS_MAX; i++) {
		struct client *cl = &a->clients[i];

		if (cl->fd < 0 || cl->in_len || cl->in_job || cl->wait_gen || cl->out_len ||
		    (!any && cl->uid != uid))
			continue;
		if (!best || cl->since < best->since)
			best = cl;
	}
	return best;
}

static void client_accept(struct agent *a, gid_t group)
{
	struct client *cl = NULL, *idle;
	int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	size_t mine = 0;
	uid_t uid = (uid_t)-1;

	if (fd < 0)
		return;
	if (!peer_allowed(fd, group, &uid)) {
		struct ucred cred = { 0 };
		socklen_t len = sizeof(cred);

		getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
		log_msg(LOG_WARNING, "refused a control connection from uid %u",
			(unsigned)cred.uid);
		close(fd);
		return;
	}
	/* A user at its share, or a full table, makes room by dropping an
	 * idle connection (its own first): connections that send nothing
	 * never lock anyone out, however many a user opens. */
	for (size_t i = 0; i < CLIENTS_MAX; i++)
		mine += a->clients[i].fd >= 0 && a->clients[i].uid == uid;
	if (mine >= CLIENTS_PER_UID && (idle = client_idlest(a, uid, 0)))
		client_close(idle);
	else if (mine >= CLIENTS_PER_UID)
		goto refuse;
	for (size_t i = 0; i < CLIENTS_MAX && !cl; i++)
		if (a->clients[i].fd < 0)
			cl = &a->clients[i];
	if (!cl && (cl = client_idlest(a, uid, 1)))
		client_close(cl);
	if (!cl)
		goto refuse;
	cl->in = secmem_alloc(CTL_REQUEST_MAX);
	if (!cl->in) {
		close(fd);
		return;
	}
	cl->fd = fd;
	cl->uid = uid;
	cl->since = hlc_mono_ms();
	cl->deadline = cl->since + CLIENT_TIMEOUT_MS;
	return;
refuse:
	log_msg(LOG_WARNING, "too many control connections from uid %u; refusing one",
		(unsigned)uid);
	close(fd);
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
	a->lfd = r;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		a->wd_interval = usec / 2000; /* ping at half the timeout */
		a->next_wd = hlc_mono_ms() + a->wd_interval;
	}
	log_msg(LOG_INFO, "listening on %s", path);
	return 0;
}

static void shut_down(struct agent *a)
{
	const char *path = a->sock;
	char how[64];

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
	for (size_t i = 0; i < CLIENTS_MAX; i++) {
		struct client *cl = &a->clients[i];

		if (cl->fd < 0)
			continue;
		/* One best-effort write; a slow client loses its answer. */
		if (cl->fd >= 0 && cl->out_len)
			client_write(cl);
		client_close(cl);
	}
	a->wstore = store_close(a->wstore);
	a->store = store_close(a->store);
	a->c->store = NULL;
	netproc_stop(how, sizeof(how));
	if (strcmp(how, "exit status 0") != 0 && strcmp(how, "not running") != 0)
		log_msg(LOG_WARNING, "network helper: %s", how);
	if (a->lfd >= 0) {
		close(a->lfd);
		unlink(path);
	}
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

	if (a->next_push != NEVER && !a->running && now >= a->next_push) {
		a->next_push = NEVER;
		a->next_wall = 0;
		if (a->store && !a->halted && job_start(a, JOB_PUSH) < 0) {
			answer_parked(a,
				      "fieldsync: the agent could not start a push; "
				      "see its log\n",
				      FS_EXIT_IO);
			schedule(a, (uint64_t)a->c->cfg.retry_max * 1000);
		}
	}
	if (a->wd_interval && now >= a->next_wd) {
		sd_notify(0, "WATCHDOG=1");
		a->next_wd = now + a->wd_interval;
	}
	if (!a->running && a->next_push < wake)
		wake = a->next_push;
	if (a->wd_interval && a->next_wd < wake)
		wake = a->next_wd;
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
	pfd[POLL_LISTEN] = (struct pollfd){ .fd = a->lfd, .events = POLLIN };
	for (size_t i = 0; i < CLIENTS_MAX; i++) {
		struct client *cl = &a->clients[i];

		if (cl->fd < 0)
			continue;
		if (cl->in_job) {
			continue; /* the worker thread answers it */
		} else if (cl->out_len) {
			pfd[n] = (struct pollfd){ .fd = cl->fd, .events = POLLOUT };
			if (cl->write_deadline < *wake)
				*wake = cl->write_deadline;
		} else if (!cl->wait_gen) {
			pfd[n] = (struct pollfd){ .fd = cl->fd, .events = POLLIN };
			if (cl->deadline < *wake)
				*wake = cl->deadline;
		} else {
			/* Parked until its push ends; a hang-up frees it. */
			pfd[n] = (struct pollfd){ .fd = cl->fd, .events = 0 };
		}
		slot[n++] = cl;
	}
	return n;
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
	a->failures = 0;
	a->next_push = NEVER;
	/* Pull too, once: HQ may hold news for this scope. */
	if (!a->want_pull)
		a->want_pull = ATTEMPT_PULL_ALWAYS;
	schedule(a, NET_SETTLE_MS);
	log_msg(LOG_INFO, "network change: pushing and pulling");
}

/* Read, write or let go of each client in the poll set. */
static void clients_serve(struct agent *a, const struct pollfd *pfd, struct client *const *slot,
			  nfds_t n)
{
	uint64_t now = hlc_mono_ms();

	for (nfds_t i = POLL_CLIENTS; i < n; i++) {
		struct client *cl = slot[i];

		if (cl->fd < 0 || cl->in_job)
			continue;
		if (cl->wait_gen && (pfd[i].revents & (POLLHUP | POLLERR)))
			client_close(cl);
		else if (cl->wait_gen)
			continue;
		else if (pfd[i].revents & POLLOUT)
			client_write(cl);
		else if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
			client_read(a, cl);
		else if (cl->out_len && now >= cl->write_deadline)
			client_close(cl); /* never took its answer */
		else if (!cl->out_len && now >= cl->deadline)
			client_close(cl);
	}
}

/* The event loop, until a signal ends it; the exit status. */
static int loop_run(struct agent *a, gid_t group)
{
	struct pollfd pfd[POLL_CLIENTS + CLIENTS_MAX];
	struct client *slot[POLL_CLIENTS + CLIENTS_MAX];

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
		    a->store && !a->halted)
			network_changed(a);
		if (pfd[POLL_LISTEN].revents & POLLIN)
			client_accept(a, group);
		clients_serve(a, pfd, slot, n);
	}
}

int daemon_run(struct cli *c)
{
	struct agent a = { .c = c, .lfd = -1, .nfd = -1, .sfd = -1, .efd = -1, .next_push = NEVER };
	struct fs_error err = { 0 };
	gid_t group;
	int status = FS_EXIT_OK;

	log_open("fieldsync-agent");
	for (size_t i = 0; i < CLIENTS_MAX; i++)
		a.clients[i].fd = -1;
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
	status = loop_run(&a, group);
out:
	shut_down(&a);
	log_msg(LOG_INFO, "stopped");
	return status;
}
