/* daemon.c - the agent's event loop.  Its state is agent/agentd.h; its
 * worker thread, agent/job.c; the control connections, agent/client.h;
 * the commands they carry, agent/cmd.h.
 *
 * Sections: state; scheduling; unlocking; requests; the loop.
 */
#include "agent/daemon.h"
#include "agent/agentd.h"
#include "agent/fieldapp.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <sodium.h>

#include "agent/attempt.h"
#include "agent/client.h"
#include "agent/cmd.h"
#include "agent/ctl.h"
#include "agent/keystore.h"
#include "agent/netframe.h"
#include "agent/netproc.h"
#include "agent/netwatch.h"
#include "sync/hlc.h"
#include "sync/log.h"

/* ---- state --------------------------------------------------------------- */

#define NET_SETTLE_MS 250 /* after a netlink event, before pushing */

void daemon_notify_status(struct agent *a)
{
	uint64_t now = hlc_mono_ms();
	char text[160];

	if (!a->store)
		snprintf(text, sizeof(text), "STATUS=locked: run 'fieldsync unlock'");
	else if (a->sched.halted)
		snprintf(text, sizeof(text), "STATUS=revoked by HQ; not pushing");
	else if (a->job.running)
		snprintf(text, sizeof(text), "STATUS=pushing to HQ");
	else if (a->sched.next_push != NEVER && a->sched.touch_at &&
		 a->sched.next_push >= a->sched.touch_at)
		/* Only the keep-in-touch pull is due: nothing waits. */
		snprintf(text, sizeof(text),
			 "STATUS=idle; everything sent; next contact with HQ in %llu min",
			 (unsigned long long)(a->sched.next_push > now
						      ? (a->sched.next_push - now) / 60000
						      : 0));
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

/* ---- scheduling ------------------------------------------------------------ */

void daemon_schedule(struct agent *a, uint64_t delay_ms)
{
	uint64_t at = hlc_mono_ms() + delay_ms;

	if (!a->store || a->sched.halted || a->stopping)
		return;
	/* Something new to send: files in flight give way to it. */
	if (a->job.running && a->job.kind == JOB_PUSH)
		a->job.yield = 1;
	if (a->sched.next_push == NEVER || at < a->sched.next_push) {
		a->sched.next_push = at;
		a->sched.next_wall = hlc_wall_ms() + delay_ms;
	}
}

/* ---- unlocking -------------------------------------------------------------- */

int daemon_unlock(struct agent *a, const struct keystore_secret *secret, struct fs_error *err)
{
	struct store_options opt = { .ballast_bytes = (uint64_t)a->c->cfg.disk_reserve_mib << 20,
				     .cache_mib = a->c->cfg.cache_mib };
	int r = store_open(a->c->cfg.data_dir, secret, &opt, &a->store, err);

	if (r < 0)
		return r;
	a->c->store = a->store;
	log_msg(LOG_INFO, "store %s/store.db unlocked", a->c->cfg.data_dir);
	/* Whatever was left from before goes up, and what HQ holds comes
	 * down. */
	if (!a->job.want_pull)
		a->job.want_pull = ATTEMPT_PULL_ALWAYS;
	daemon_schedule(a, 0);
	daemon_notify_status(a);
	return 0;
}

void daemon_lock(struct agent *a)
{
	job_stop(a);
	job_drop_queued(a,
			"fieldsync: the agent's store was locked; the request to HQ did "
			"not run\n",
			FS_EXIT_KEY);
	job_answer_parked(a, "fieldsync: the agent's store was locked; nothing more was sent\n",
			  FS_EXIT_KEY);
	a->job.wstore = store_close(a->job.wstore);
	a->store = store_close(a->store);
	a->c->store = NULL;
	a->sched.next_push = NEVER;
	a->sched.next_wall = 0;
	fieldapp_locked(a);
	log_msg(LOG_INFO, "store locked; the key is wiped from memory");
	daemon_notify_status(a);
}

void daemon_sync_now(struct agent *a)
{
	a->sched.halted = 0; /* a person's request tries again */
	a->job.want_pull = ATTEMPT_PULL_ALWAYS;
	daemon_schedule(a, 0);
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
		r = daemon_unlock(a, secret, &err);
	keystore_secret_free(secret);
	if (r < 0)
		log_msg(LOG_ERR, "%s; store stays locked until 'fieldsync unlock'", err.msg);
}

/* ---- requests ------------------------------------------------------------------ */

uint64_t daemon_next_attempt(const struct agent *a)
{
	return a->sched.next_push != NEVER && !a->job.running ? a->sched.next_wall : 0;
}

int daemon_add_time(cJSON *o, const char *name, uint64_t wall_ms, int null_if_none)
{
	char t[HLC_TIME_LEN + 1];

	if (!wall_ms)
		return !null_if_none || cJSON_AddNullToObject(o, name) ? 0 : -ENOMEM;
	hlc_format_time((hlc_t)wall_ms << 16, t);
	return cJSON_AddStringToObject(o, name, t) ? 0 : -ENOMEM;
}

static cJSON *agent_state(const struct agent *a)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddBoolToObject(o, "running", 1) ||
	    !cJSON_AddBoolToObject(o, "locked", !a->store) ||
	    !cJSON_AddBoolToObject(o, "pushing", a->job.running) ||
	    !cJSON_AddBoolToObject(o, "revoked", a->sched.halted) ||
	    !cJSON_AddNumberToObject(o, "failures", a->sched.failures) ||
	    daemon_add_time(o, "last_attempt", a->sched.last_attempt, 0) < 0 ||
	    daemon_add_time(o, "last_success", a->sched.last_success, 0) < 0 ||
	    daemon_add_time(o, "next_attempt", daemon_next_attempt(a), 0) < 0 ||
	    (a->sched.last_error[0] &&
	     !cJSON_AddStringToObject(o, "last_error", a->sched.last_error))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
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
	cl->wait_gen = a->job.gen + 1;
	a->job.want_max = max;
	/* sync and pull both pull; only sync pushes too. */
	if (a->job.want_pull != ATTEMPT_PULL_ALWAYS)
		a->job.want_pull = pull;
	daemon_schedule(a, 0);
	return -1;
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
	} else if ((flags & CMD_WRITES) && job_import_running(a)) {
		/* Waiting for the import here would stall every other client. */
		fprintf(err, "fieldsync: an import is running (or a file is being kept); "
			     "nothing was changed: try again when it ends\n");
		status = FS_EXIT_IO;
	} else if (a->store && (flags & (CMD_TALKS_TO_HQ | CMD_RUNS_LONG))) {
		if ((status = job_request_command(a, cl, call, argv, inputs, state)) < 0) {
			call = NULL; /* the job owns these now */
			argv = NULL;
			state = NULL;
			goto out;
		}
	} else {
		status = cmd_call_run(c, call);
		if (c->wrote)
			daemon_schedule(a, c->cfg.push_delay_ms);
	}
answer:
	fflush(out);
	fflush(err);
	client_answer_bytes(cl, obuf, olen, ebuf, status);
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
		r = daemon_unlock(a, secret, &err);
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
		daemon_schedule(a, a->c->cfg.push_delay_ms);
		client_answer(cl, NULL, NULL, FS_EXIT_OK);
		break;
	case CTL_LOCK:
		if (a->store) {
			daemon_lock(a);
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
	a->job.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->job.efd < 0)
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
	fieldapp_stop(a);
	if (a->job.running)
		log_msg(LOG_INFO, "stopping: abandoning the push in flight");
	job_stop(a);
	job_drop_queued(a, "fieldsync: the agent is stopping; the request to HQ did not run\n",
			FS_EXIT_IO);
	job_answer_parked(
		a, "fieldsync: the agent is stopping; the push resumes when it starts again\n",
		FS_EXIT_IO);
	listening = a->clients.lfd >= 0;
	client_table_close(&a->clients);
	a->job.wstore = store_close(a->job.wstore);
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
	if (a->job.efd >= 0)
		close(a->job.efd);
}

static int handle_signals(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			sd_notify(0, "RELOADING=1");
			reload(a);
			sd_notify(0, "READY=1");
			daemon_notify_status(a);
			continue;
		}
		log_msg(LOG_INFO, "signal %u: stopping", si.ssi_signo);
		return 1;
	}
	return 0;
}

/* The poll set: these first, then one slot per client that waits for
 * something (slot[] says which). */
enum poll_slot { POLL_SIGNALS, POLL_JOB, POLL_NETWORK, POLL_LISTEN, POLL_WEB, POLL_CLIENTS };

/* Start a push that is due and feed the watchdog; returns when the loop
 * must wake next for them. */
static uint64_t timers_run(struct agent *a, uint64_t now)
{
	uint64_t wake = NEVER;

	if (a->sched.next_push != NEVER && !a->job.running && now >= a->sched.next_push) {
		a->sched.next_push = NEVER;
		a->sched.next_wall = 0;
		if (a->store && !a->sched.halted && job_start(a, JOB_PUSH) < 0) {
			job_answer_parked(a,
					  "fieldsync: the agent could not start a push; "
					  "see its log\n",
					  FS_EXIT_IO);
			daemon_schedule(a, (uint64_t)a->c->cfg.retry_max * 1000);
		}
	}
	if (a->sched.wd_interval && now >= a->sched.next_wd) {
		sd_notify(0, "WATCHDOG=1");
		a->sched.next_wd = now + a->sched.wd_interval;
	}
	if (!a->job.running && a->sched.next_push < wake)
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
	pfd[POLL_JOB] = (struct pollfd){ .fd = a->job.efd, .events = POLLIN };
	pfd[POLL_NETWORK] = (struct pollfd){ .fd = a->nfd, .events = POLLIN };
	pfd[POLL_LISTEN] = (struct pollfd){ .fd = a->clients.lfd, .events = POLLIN };
	pfd[POLL_WEB] = (struct pollfd){ .fd = fieldapp_fd(a), .events = POLLIN };
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
	if (!a->job.want_pull)
		a->job.want_pull = ATTEMPT_PULL_ALWAYS;
	daemon_schedule(a, NET_SETTLE_MS);
	log_msg(LOG_INFO, "network change: pushing and pulling");
}

/* The event loop, until a signal ends it; the exit status. */
static int loop_run(struct agent *a)
{
	struct pollfd pfd[POLL_CLIENTS + CLIENT_MAX];
	struct client *slot[POLL_CLIENTS + CLIENT_MAX];

	for (;;) {
		/* The field app before the timers: a push it asks for is due
		 * to them at once. */
		uint64_t now = hlc_mono_ms(), web = fieldapp_run(a, now), wake = timers_run(a, now);
		nfds_t n;
		int up;

		if (web < wake)
			wake = web;
		n = poll_fill(a, pfd, slot, &wake);

		if (poll(pfd, n, poll_timeout(wake, now)) < 0 && errno != EINTR) {
			log_msg(LOG_ERR, "poll: %s", strerror(errno));
			return FS_EXIT_IO;
		}
		if ((pfd[POLL_SIGNALS].revents & POLLIN) && handle_signals(a))
			return FS_EXIT_OK;
		if ((pfd[POLL_JOB].revents & POLLIN) && a->job.running)
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
	struct agent a = { .c = c,
			   .nfd = -1,
			   .sfd = -1,
			   .job.efd = -1,
			   .sched.next_push = NEVER,
			   .app.dirfd = -1 };
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
	/* Without the app the agent still records and syncs: the CLI works. */
	if (fieldapp_start(&a, &err) < 0)
		log_msg(LOG_ERR, "%s; the field app is not available", err.msg);
	unlock_at_start(&a);
	sd_notify(0, "READY=1");
	daemon_notify_status(&a);
	a.clients.group = group;
	status = loop_run(&a);
out:
	shut_down(&a);
	log_msg(LOG_INFO, "stopped");
	return status;
}
