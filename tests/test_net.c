/* test_net.c - the network helper: its frames (agent/netframe.h), its
 * sandbox (agent/sandbox.h) and the agent's side of it (agent/netproc.h),
 * with the real fieldsync-net the build made and a loopback HTTP server.
 *
 * Sections: frames; the sandbox; the helper.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/netframe.h"
#include "agent/netproc.h"
#include "agent/sandbox.h"
#include "tests/fixture.h"
#include "tests/test.h"

/* ---- frames ---------------------------------------------------------------- */

static const uint8_t token_body[] = "{\"token\":\"FS1-not-a-real-token\"}";

static uint8_t *sample_request(size_t *len)
{
	const struct netframe_request q = { .url = "https://hq.example:8443/v1/enroll",
					    .content_type = "application/json",
					    .tls_pin = "sha256//AAAA",
					    .body = token_body,
					    .len = sizeof(token_body) - 1,
					    .connect_s = 15,
					    .stall_s = 60,
					    .wall_ms = 1798675200123ULL };
	struct fs_error err = { 0 };
	uint8_t *f = NULL;

	ASSERT_OK(netframe_request_encode(&q, &f, len, &err));
	return f;
}

TEST(net_frames_round_trip)
{
	struct hqlink_response in = { .status = 200, .retry_after = 7 }, out = { 0 };
	struct netframe_request_buf q;
	struct fs_error err = { 0 }, failed = { 0 };
	uint8_t *f, *a = NULL;
	size_t len, alen;

	f = sample_request(&len);
	ASSERT_EQ(netframe_header_check(f, "Q", NETFRAME_REQUEST_MAX), len - NETFRAME_HEADER);
	ASSERT_OK(netframe_request_decode(f + NETFRAME_HEADER, len - NETFRAME_HEADER, &q, &err));
	ASSERT_STR_EQ(q.q.url, "https://hq.example:8443/v1/enroll");
	ASSERT_STR_EQ(q.q.content_type, "application/json");
	ASSERT_STR_EQ(q.q.tls_pin, "sha256//AAAA");
	ASSERT_EQ(q.q.len, sizeof(token_body) - 1);
	ASSERT_MEM_EQ(q.q.body, token_body, q.q.len);
	ASSERT_EQ(q.q.connect_s, 15);
	ASSERT_EQ(q.q.stall_s, 60);
	ASSERT_EQ(q.q.wall_ms, 1798675200123ULL);
	free(f);

	in.body = strdup("{\"ok\":true}");
	in.len = strlen(in.body);
	in.checkpoint = strdup("Q0hFQ0s=");
	ASSERT_OK(netframe_answer_encode(0, &in, NULL, &a, &alen));
	ASSERT_OK(netframe_answer_decode(a + NETFRAME_HEADER, alen - NETFRAME_HEADER, &out, &err));
	ASSERT_EQ(out.status, 200);
	ASSERT_EQ(out.retry_after, 7);
	ASSERT_STR_EQ(out.body, "{\"ok\":true}");
	ASSERT_STR_EQ(out.checkpoint, "Q0hFQ0s=");
	hqlink_response_clear(&out);
	free(a);

	/* A failure carries its code and its message. */
	fs_error_set(&failed, -EHOSTUNREACH, "HQ unreachable at http://127.0.0.1:1: refused");
	ASSERT_OK(netframe_answer_encode(-EHOSTUNREACH, &in, &failed, &a, &alen));
	ASSERT_EQ(netframe_answer_decode(a + NETFRAME_HEADER, alen - NETFRAME_HEADER, &out, &err),
		  -EHOSTUNREACH);
	ASSERT_STR_EQ(err.msg, failed.msg);
	ASSERT_TRUE(out.body == NULL);
	free(a);
	hqlink_response_clear(&in);
}

/* Decoding p with byte i set to v must fail. */
static void request_refused_with(const uint8_t *f, size_t len, size_t i, uint8_t v)
{
	struct netframe_request_buf q;
	struct fs_error err = { 0 };
	uint8_t *c = malloc(len);

	ASSERT_TRUE(c != NULL);
	memcpy(c, f, len);
	c[i] = v;
	if (netframe_header_check(c, "Q", NETFRAME_REQUEST_MAX) == (long)(len - NETFRAME_HEADER) &&
	    netframe_request_decode(c + NETFRAME_HEADER, len - NETFRAME_HEADER, &q, &err) == 0)
		TEST_FAIL("byte %zu set to 0x%02x was accepted", i, v);
	free(c);
}

TEST(net_frames_refuse_what_does_not_add_up)
{
	struct netframe_request_buf q;
	struct hqlink_response out = { 0 };
	struct fs_error err = { 0 };
	uint8_t ans[NETFRAME_HEADER + 20 + 8] = { 0 };
	size_t len;
	uint8_t *f = sample_request(&len);
	const size_t p = NETFRAME_HEADER;

	/* Every shorter payload, and one byte more. */
	for (size_t n = 0; n < len - p; n++)
		ASSERT_EQ(netframe_request_decode(f + p, n, &q, &err), -EBADMSG);
	/* Header: magic, kind, zero bytes, a length over the limit. */
	request_refused_with(f, len, 0, 'X');
	request_refused_with(f, len, 4, 'A');
	request_refused_with(f, len, 5, 1);
	request_refused_with(f, len, 8, 0x7f);
	/* Lengths that do not add up, the zero bytes, a NUL or a newline in
	 * the URL (a header injection), a body over the limit. */
	request_refused_with(f, len, p + 9, 0xff);  /* url_len */
	request_refused_with(f, len, p + 11, 0x00); /* type_len 0 */
	request_refused_with(f, len, p + 13, 0x20); /* pin_len */
	request_refused_with(f, len, p + 15, 1);    /* reserved */
	request_refused_with(f, len, p + 16, 0x10); /* body_len */
	request_refused_with(f, len, p + NETFRAME_REQUEST_FIXED + 3, '\0');
	request_refused_with(f, len, p + NETFRAME_REQUEST_FIXED + 3, '\n');
	free(f);
	ASSERT_EQ(netframe_header_check((const uint8_t *)"FSN1C\0\0\0\0\0\0\1", "QC", 100),
		  -EBADMSG); /* a close frame has no payload */

	/* Answers: an unknown code, a failure with a body, a status below 100. */
	memcpy(ans, "FSN1A\0\0\0\0\0\0\x1c", NETFRAME_HEADER);
	ans[p + 0] = 0xff, ans[p + 1] = 0xff, ans[p + 2] = 0xff, ans[p + 3] = 0xfe; /* -2 */
	ans[p + 13] = 8;
	memcpy(ans + p + 20, "refused!", 8);
	ASSERT_EQ(netframe_answer_decode(ans + p, 28, &out, &err), -EBADMSG);
	memset(ans + p, 0, 4);
	ans[p + 5] = 99; /* status 99, and an error text with success */
	ASSERT_EQ(netframe_answer_decode(ans + p, 28, &out, &err), -EBADMSG);
	ans[p + 13] = 0;
	ans[p + 19] = 8; /* body of 8, status 99 */
	ASSERT_EQ(netframe_answer_decode(ans + p, 28, &out, &err), -EBADMSG);
	ans[p + 5] = 200;
	ASSERT_OK(netframe_answer_decode(ans + p, 28, &out, &err));
	ASSERT_STR_EQ(out.body, "refused!");
	hqlink_response_clear(&out);
	ans[p + 19] = 9; /* one byte more than there is */
	ASSERT_EQ(netframe_answer_decode(ans + p, 28, &out, &err), -EBADMSG);
}

/* ---- the sandbox ------------------------------------------------------------ */

/* Fork, enter the sandbox, run fn; returns the child's wait status. */
static int sandboxed(int (*fn)(const char *dir), const char *dir)
{
	pid_t pid = fork();
	int st = 0;

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct sandbox_report rep;
		struct fs_error err = { 0 };

		if (sandbox_enter(&rep, &err) < 0) {
			fprintf(stderr, "sandbox_enter: %s\n", err.msg);
			_exit(100);
		}
		_exit(fn(dir));
	}
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

/* Exit codes name the first thing that was wrong. */
static int confined(const char *dir)
{
	char path[4096];
	int fd;

	/* What the helper needs: the resolver's files, the CAs, IP sockets. */
	if ((fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC)) < 0)
		return 1;
	close(fd);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 2;
	close(fd);
	/* What it must not: a Unix socket (the agent's), writing a file,
	 * reading a file outside the list (the data directory). */
	if (socket(AF_UNIX, SOCK_STREAM, 0) >= 0 || errno != EPERM)
		return 3;
	snprintf(path, sizeof(path), "%s/written", dir);
	if (open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) >= 0)
		return 4;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		/* Only a kernel without Landlock lets it through. */
		long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1);

		close(fd);
		if (abi > 0)
			return 5;
	}
	return 0;
}

static int runs_a_program(const char *dir)
{
	char *const argv[] = { "true", NULL };

	(void)dir;
	execv("/bin/true", argv);
	return 0; /* not reached when the filter kills us */
}

TEST(net_sandbox_refuses_what_the_helper_never_needs)
{
	char path[4096];
	int fd, st;

	snprintf(path, sizeof(path), "%s/store.db", test_tmpdir());
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "SQLite", 6), 6);
	close(fd);
	/* The test may run as root: the store must still be out of reach. */
	ASSERT_OK(chmod(test_tmpdir(), 0755));
	st = sandboxed(confined, test_tmpdir());
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		TEST_FAIL("confined child: %s %d", WIFEXITED(st) ? "exit" : "signal",
			  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	/* A new program is a tripwire: the process dies on the spot. */
	st = sandboxed(runs_a_program, test_tmpdir());
	ASSERT_TRUE(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), SIGSYS);
}

/* ---- the helper -------------------------------------------------------------- */

static int status_has(pid_t pid, const char *line)
{
	char path[64], buf[256];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return 0;
	while (!found && fgets(buf, sizeof(buf), f))
		found = !strcmp(buf, line);
	fclose(f);
	return found;
}

TEST(net_helper_posts_from_its_sandbox)
{
	static const char *const answers[] = {
		"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/x\r\nContent-Length: 0\r\n"
		"Connection: close\r\n\r\n",
		"HTTP/1.1 503 Busy\r\nRetry-After: 9\r\nContent-Length: 8\r\n"
		"Connection: close\r\n\r\n{\"x\":1}\n",
	};
	struct hqlink *t = NULL;
	struct hqlink_response resp = { 0 };
	struct fs_error err = { 0 };
	char url[128], log[4096], how[64];
	int ls = fixture_http_listen(url, sizeof(url), "/v1/changesets"), st;
	pid_t srv, helper;

	snprintf(log, sizeof(log), "%s/requests", test_tmpdir());
	srv = fork();
	ASSERT_GE(srv, 0);
	if (srv == 0)
		fixture_http_serve(ls, answers, 2, log);
	close(ls);
	netproc_set_program(FS_NET_BIN);
	ASSERT_OK(netproc_start(&err));
	helper = netproc_pid();
	ASSERT_GT(helper, 0);
	ASSERT_TRUE(status_has(helper, "NoNewPrivs:\t1\n"));
	ASSERT_TRUE(status_has(helper, "Seccomp:\t2\n"));
	ASSERT_OK(netproc_hqlink(&t, NULL, 5, 5, &err));
	ASSERT_OK(t->post(t, url, "application/json", token_body, sizeof(token_body) - 1, NULL,
			  &resp, &err));
	ASSERT_EQ(resp.status, 302); /* an answer, not followed */
	hqlink_response_clear(&resp);
	ASSERT_OK(t->post(t, url, "application/json", token_body, sizeof(token_body) - 1, NULL,
			  &resp, &err));
	ASSERT_EQ(resp.status, 503);
	ASSERT_EQ(resp.retry_after, 9);
	ASSERT_STR_EQ(resp.body, "{\"x\":1}\n");
	hqlink_response_clear(&resp);
	ASSERT_EQ(waitpid(srv, &st, 0), srv);
	/* The helper's own failure comes back as its code and message, and
	 * the helper stays. */
	ASSERT_EQ(t->post(t, url, "application/json", token_body, 3, NULL, &resp, &err),
		  -EHOSTUNREACH);
	ASSERT_STR_CONTAINS(err.msg, "HQ unreachable at ");
	ASSERT_EQ(netproc_pid(), helper);
	hqlink_free(t);
	/* Told nothing more, it ends by itself (and, in a sanitizer build,
	 * has checked itself for leaks). */
	netproc_stop(how, sizeof(how));
	ASSERT_STR_EQ(how, "exit status 0");
	ASSERT_EQ(netproc_pid(), 0);
	ASSERT_TRUE(kill(helper, 0) < 0);
}

struct poster {
	struct hqlink *t;
	const char *url;
	int r;
	struct fs_error err;
};

static void *post_thread(void *arg)
{
	struct poster *p = arg;
	struct hqlink_response resp = { 0 };

	p->r = p->t->post(p->t, p->url, "application/json", token_body, 4, NULL, &resp, &p->err);
	hqlink_response_clear(&resp);
	return NULL;
}

/* Wait until the helper has connected to ls (its request is in flight). */
static void await_connection(int ls)
{
	struct pollfd pfd = { .fd = ls, .events = POLLIN };

	ASSERT_EQ(poll(&pfd, 1, (int)test_timeout_ms(30000)), 1);
}

TEST(net_helper_killed_or_cancelled_mid_request_is_replaced)
{
	static const char *const answers[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
	};
	static _Atomic int cancel;
	struct poster p = { 0 };
	struct hqlink_response resp = { 0 };
	char url[128], log[4096];
	int ls = fixture_http_listen(url, sizeof(url), "/v1/changesets");
	pthread_t th;
	pid_t first, second, srv;

	netproc_set_program(FS_NET_BIN);
	ASSERT_OK(netproc_hqlink(&p.t, &cancel, 5, 60, &p.err));
	p.url = url;
	/* Killed while HQ keeps it waiting: the request fails as a lost
	 * link, and says how the helper ended. */
	ASSERT_OK(pthread_create(&th, NULL, post_thread, &p));
	await_connection(ls);
	first = netproc_pid();
	ASSERT_GT(first, 0);
	ASSERT_OK(kill(first, SIGKILL));
	ASSERT_OK(pthread_join(th, NULL));
	ASSERT_EQ(p.r, -EHOSTUNREACH);
	ASSERT_STR_CONTAINS(p.err.msg, "killed by signal 9");
	ASSERT_EQ(netproc_pid(), 0);
	close(ls);

	/* Cancelled (SIGTERM to the agent): within about a second. */
	ls = fixture_http_listen(url, sizeof(url), "/v1/changesets");
	ASSERT_OK(pthread_create(&th, NULL, post_thread, &p));
	await_connection(ls);
	second = netproc_pid();
	ASSERT_TRUE(second > 0 && second != first);
	cancel = 1;
	ASSERT_OK(pthread_join(th, NULL));
	ASSERT_EQ(p.r, -ECANCELED);
	ASSERT_EQ(netproc_pid(), 0);
	ASSERT_TRUE(kill(second, 0) < 0); /* reaped */
	cancel = 0;
	close(ls);
	ls = fixture_http_listen(url, sizeof(url), "/v1/changesets");

	/* The next request starts a new helper and goes through. */
	snprintf(log, sizeof(log), "%s/requests", test_tmpdir());
	srv = fork();
	ASSERT_GE(srv, 0);
	if (srv == 0)
		fixture_http_serve(ls, answers, 1, log);
	close(ls);
	ASSERT_OK(p.t->post(p.t, url, "application/json", token_body, 4, NULL, &resp, &p.err));
	ASSERT_EQ(resp.status, 200);
	ASSERT_STR_EQ(resp.body, "ok");
	ASSERT_TRUE(netproc_pid() > 0 && netproc_pid() != second);
	hqlink_response_clear(&resp);
	hqlink_free(p.t);
	netproc_stop(NULL, 0);
	ASSERT_EQ(waitpid(srv, NULL, 0), srv);
}
