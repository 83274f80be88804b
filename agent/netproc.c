/* netproc.c - see netproc.h.  Sections: finding and starting the helper;
 * stopping it; the transport. */
#include "agent/netproc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "agent/netframe.h"
#include "sync/hlc.h"
#include "sync/selfpath.h"

#ifndef FS_LIBEXEC_DIR
#define FS_LIBEXEC_DIR "/usr/libexec/fieldsync"
#endif
#define HELPER "fieldsync-net"

/* The one helper of this process.  pid is atomic so that the loop can
 * read it for the peer check while a request holds the lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic pid_t helper_pid;
static int helper_fd = -1;
static pid_t owner; /* the process that started it: a fork has none */
static char program[PATH_MAX];
static char confinement[NETFRAME_READY_MAX + 1]; /* what its ready frame said */

/* What the helper may inherit from our environment: where a proxy is,
 * which CAs to trust, and how the sanitizers report. */
static const char *const passed_env[] = { "https_proxy",   "HTTPS_PROXY",   "all_proxy",
					  "ALL_PROXY",	   "no_proxy",	    "NO_PROXY",
					  "SSL_CERT_FILE", "SSL_CERT_DIR",  "CURL_CA_BUNDLE",
					  "ASAN_OPTIONS",  "UBSAN_OPTIONS", "LSAN_OPTIONS" };
#define N_ENV (sizeof(passed_env) / sizeof(passed_env[0]))

/* ---- finding and starting the helper ------------------------------------- */

void netproc_set_program(const char *path)
{
	pthread_mutex_lock(&lock);
	snprintf(program, sizeof(program), "%s", path);
	pthread_mutex_unlock(&lock);
}

static int find_program(struct fs_error *err)
{
	if (program[0])
		return 0;
	if (selfpath_beside(HELPER, program, sizeof(program)) == 0 && access(program, X_OK) == 0)
		return 0;
	snprintf(program, sizeof(program), "%s", FS_LIBEXEC_DIR "/" HELPER);
	if (access(program, X_OK) == 0)
		return 0;
	program[0] = '\0';
	return fs_error_set(err, -ENOENT,
			    "start the network helper: no %s beside this program or in %s", HELPER,
			    FS_LIBEXEC_DIR);
}

/* "NAME=value" strings for the variables we pass on; they point into
 * environ, which we do not change meanwhile. */
static size_t helper_env(char *out[N_ENV + 1], char store[N_ENV][1024])
{
	size_t n = 0;

	for (size_t i = 0; i < N_ENV; i++) {
		const char *v = getenv(passed_env[i]);

		if (v && (size_t)snprintf(store[n], sizeof(store[n]), "%s=%s", passed_env[i], v) <
				 sizeof(store[n]))
			out[n] = store[n], n++;
	}
	out[n] = NULL;
	return n;
}

/* After fork() the child has its parent's helper, which it must neither
 * talk to nor kill: it starts its own. */
static void forget_inherited(void)
{
	if (helper_pid <= 0 || owner == getpid())
		return;
	if (helper_fd >= 0)
		close(helper_fd);
	helper_fd = -1;
	helper_pid = 0;
}

static void stop_locked(char *how, size_t cap);

/* The helper's first frame says it is confined; until then it is not
 * asked anything. */
static int await_ready(struct fs_error *err)
{
	uint8_t *p = NULL;
	size_t len = 0;
	char how[64];
	int r;

	r = netframe_read(helper_fd, "R", NETFRAME_READY_MAX, NULL, &p, &len, NULL, err);
	if (r == 0)
		r = netframe_ready_decode(p, len, confinement, sizeof(confinement));
	free(p);
	if (r == 0)
		return 0;
	stop_locked(how, sizeof(how));
	return fs_error_set(err, r == -EBADMSG ? -EPROTO : -EHOSTUNREACH,
			    "start the network helper %s: it ended (%s) before it was confined; "
			    "see its message above",
			    program, how);
}

static int spawn_locked(struct fs_error *err)
{
	static char env_store[N_ENV][1024];
	char *envp[N_ENV + 1], *argv[] = { HELPER, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int sv[2], r;
	pid_t pid;

	forget_inherited();
	if (helper_pid > 0)
		return 0;
	if ((r = find_program(err)) < 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return fs_error_set(err, -errno, "start the network helper: socketpair: %s",
				    strerror(errno));
	helper_env(envp, env_store);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* Only the socket (as 3) and standard error go across; signals as
	 * a new program expects them, whatever the agent blocks or ignores. */
	r = posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	r = r ? r : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	r = r ? r : posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	r = r ? r : posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	r = r ? r : posix_spawnattr_setsigmask(&attr, &none);
	r = r ? r : posix_spawnattr_setsigdefault(&attr, &all);
	r = r ? r : posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	r = r ? r : posix_spawn(&pid, program, &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(sv[1]);
	if (r != 0) {
		close(sv[0]);
		return fs_error_set(err, -r, "start the network helper %s: %s", program,
				    strerror(r));
	}
	helper_fd = sv[0];
	helper_pid = pid;
	owner = getpid();
	return await_ready(err);
}

int netproc_start(struct fs_error *err)
{
	int r;

	pthread_mutex_lock(&lock);
	r = spawn_locked(err);
	pthread_mutex_unlock(&lock);
	return r;
}

void netproc_confinement(char *out, size_t cap)
{
	pthread_mutex_lock(&lock);
	snprintf(out, cap, "%s", confinement);
	pthread_mutex_unlock(&lock);
}

pid_t netproc_pid(void)
{
	pid_t p = helper_pid;

	return p > 0 ? p : 0;
}

/* ---- stopping it ------------------------------------------------------------ */

/* Reap the helper, killing it unless it ends within grace_ms of its
 * socket closing (an idle helper ends at once, and a sanitizer build
 * then checks it for leaks); how it ended into how (cap bytes). */
static void reap_locked(unsigned grace_ms, char *how, size_t cap)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };
	pid_t pid, got = 0;
	int st = 0;

	if (how && cap)
		snprintf(how, cap, "not running");
	forget_inherited();
	pid = helper_pid;
	if (helper_fd >= 0)
		close(helper_fd);
	helper_fd = -1;
	if (pid <= 0)
		return;
	for (unsigned waited = 0; (got = waitpid(pid, &st, WNOHANG)) == 0 && waited < grace_ms;
	     waited += 10)
		nanosleep(&tick, NULL);
	if (got == 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (how && cap)
			snprintf(how, cap, "stopped");
	} else if (how && cap) {
		if (WIFSIGNALED(st))
			snprintf(how, cap, "killed by signal %d", WTERMSIG(st));
		else
			snprintf(how, cap, "exit status %d", WEXITSTATUS(st));
	}
	helper_pid = 0;
}

/* Dead, cancelled or babbling: no grace. */
static void stop_locked(char *how, size_t cap)
{
	reap_locked(0, how, cap);
}

void netproc_stop(char *how, size_t cap)
{
	pthread_mutex_lock(&lock);
	reap_locked(NETPROC_GRACE_MS, how, cap);
	pthread_mutex_unlock(&lock);
}

/* ---- the transport ------------------------------------------------------------ */

struct helper_link {
	struct hqlink base; /* first: the seam */
	const _Atomic int *cancel;
	unsigned connect_s, stall_s;
};

/* One exchange with the helper, the lock held. */
static int exchange_locked(const struct helper_link *hl, const struct netframe_request *q,
			   struct hqlink_response *ret, struct fs_error *err)
{
	uint8_t *frame = NULL, *answer = NULL;
	size_t flen = 0, alen = 0;
	char how[64];
	int r;

	if ((r = spawn_locked(err)) < 0 || (r = netframe_request_encode(q, &frame, &flen, err)) < 0)
		goto out;
	r = netframe_write(helper_fd, frame, flen, err);
	if (r == 0)
		r = netframe_read(helper_fd, "A", NETFRAME_ANSWER_MAX, hl->cancel, &answer, &alen,
				  NULL, err);
	if (r == 0) {
		r = netframe_answer_decode(answer, alen, ret, err);
		if (r != -EBADMSG)
			goto out; /* an answer, or the helper's own failure */
	}
	/* Dead, cancelled or babbling: it is not asked again.  One that
	 * closed its socket is on its way out: wait to hear how it ended. */
	reap_locked(r == -EPIPE ? NETPROC_GRACE_MS : 0, how, sizeof(how));
	if (r == -ECANCELED)
		r = fs_error_set(err, r, "HQ at %s: transfer abandoned", q->url);
	else if (r == -EBADMSG)
		r = fs_error_set(err, -EPROTO,
				 "HQ at %s: the network helper sent a malformed answer; it was "
				 "stopped",
				 q->url);
	else
		r = fs_error_set(err, -EHOSTUNREACH,
				 "HQ unreachable at %s: the network helper ended (%s) before it "
				 "answered",
				 q->url, how);
out:
	/* The request may carry an enrolment token. */
	if (frame)
		sodium_memzero(frame, flen);
	free(frame);
	free(answer);
	return r;
}

static int helper_post(struct hqlink *t, const char *url, const char *content_type,
		       const uint8_t *body, size_t len, const char *tls_pin,
		       struct hqlink_response *ret, struct fs_error *err)
{
	const struct helper_link *hl = (const struct helper_link *)t;
	const struct netframe_request q = { .url = url,
					    .content_type = content_type,
					    .tls_pin = tls_pin,
					    .body = body,
					    .len = len,
					    .connect_s = hl->connect_s,
					    .stall_s = hl->stall_s,
					    .wall_ms = hlc_wall_ms() };
	int r;

	if (hl->cancel && *hl->cancel)
		return fs_error_set(err, -ECANCELED, "HQ at %s: transfer abandoned", url);
	pthread_mutex_lock(&lock);
	r = exchange_locked(hl, &q, ret, err);
	pthread_mutex_unlock(&lock);
	return r;
}

/* The helper drops its connections to HQ with the transport, as a libcurl
 * handle of our own would: the next transport starts afresh.  A helper
 * that is gone has none. */
static void helper_destroy(struct hqlink *t)
{
	uint8_t frame[NETFRAME_HEADER];
	struct fs_error ignored;

	pthread_mutex_lock(&lock);
	forget_inherited();
	if (helper_pid > 0 && netframe_close_encode(frame) == 0 &&
	    netframe_write(helper_fd, frame, sizeof(frame), &ignored) < 0)
		stop_locked(NULL, 0);
	pthread_mutex_unlock(&lock);
	free(t);
}

int netproc_hqlink(struct hqlink **ret, const _Atomic int *cancel, unsigned connect_s,
		   unsigned stall_s, struct fs_error *err)
{
	struct helper_link *hl = calloc(1, sizeof(*hl));

	if (!hl)
		return fs_error_set(err, -ENOMEM, "network helper: out of memory");
	hl->base.post = helper_post;
	hl->base.destroy = helper_destroy;
	hl->cancel = cancel;
	hl->connect_s = connect_s;
	hl->stall_s = stall_s;
	*ret = &hl->base;
	return 0;
}
