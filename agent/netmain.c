/* netmain.c - fieldsync-net, the agent's network helper.
 *
 * The agent (and the CLI, when it runs a command itself) starts this
 * program with one end of a socketpair as descriptor 3 and nothing else
 * open but standard error (agent/netproc.h).  It holds no key: it never
 * sees the store, the device key or the passphrase.  It loads libcurl,
 * confines itself (agent/sandbox.h), and then, for each request frame
 * (agent/netframe.h), makes one HTTP POST to HQ and sends the answer
 * back.  It ends when the agent closes its end, and at the first frame
 * it cannot parse.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <sys/stat.h>

#include "agent/hqcurl.h"
#include "agent/netframe.h"
#include "agent/sandbox.h"

#define NET_FD 3

static const char usage[] =
	"usage: fieldsync-net\n"
	"\n"
	"The network helper of the fieldsync agent; not run by hand.  The agent\n"
	"starts it with a socket as descriptor 3 and sends it the requests to HQ,\n"
	"so that the process that speaks TLS to the network holds no key.\n";

/* One request: decode, post, answer.  Returns 0, or a negative code when
 * the conversation is over. */
static int serve_one(struct hqlink *t, const uint8_t *p, size_t len)
{
	struct netframe_request_buf q;
	struct hqlink_response resp = { 0 };
	struct fs_error err = { 0 };
	uint8_t *answer = NULL;
	size_t alen = 0;
	int r, result;

	if ((r = netframe_request_decode(p, len, &q, &err)) < 0) {
		fprintf(stderr, "fieldsync-net: %s\n", err.msg);
		return r;
	}
	hqcurl_timeouts(t, q.q.connect_s, q.q.stall_s);
	hqcurl_wall_clock(t, q.q.wall_ms);
	result = t->post(t, q.q.url, q.q.content_type, q.q.body, q.q.len,
			 q.q.tls_pin[0] ? q.q.tls_pin : NULL, &resp, &err);
	r = netframe_answer_encode(result, &resp, &err, &answer, &alen);
	hqlink_response_clear(&resp);
	if (r == 0)
		r = netframe_write(NET_FD, answer, alen, &err);
	else
		fprintf(stderr, "fieldsync-net: cannot frame the answer: %s\n", fs_strerror(r));
	if (answer)
		sodium_memzero(answer, alen);
	free(answer);
	return r;
}

/* A new libcurl handle: the old one's connections close with it. */
static int fresh_handle(struct hqlink **t)
{
	struct hqlink *n = NULL;
	struct fs_error err = { 0 };

	/* The new one first, so that libcurl stays initialised. */
	if (hqcurl_new(&n, &err) < 0) {
		fprintf(stderr, "fieldsync-net: %s\n", err.msg);
		return -ENOMEM;
	}
	hqlink_free(*t);
	*t = n;
	return 0;
}

int main(int argc, char **argv)
{
	struct sandbox_report rep;
	struct hqlink *t = NULL;
	struct fs_error err = { 0 };
	struct stat st;
	char line[NETFRAME_READY_MAX];
	uint8_t *ready = NULL;
	size_t rlen = 0;
	int r;

	if (argc > 1) {
		int help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");

		fputs(usage, help ? stdout : stderr);
		return help ? 0 : 1;
	}
	if (fstat(NET_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "fieldsync-net: descriptor 3 is not a socket: started by hand?\n%s",
			usage);
		return 1;
	}
	/* libcurl reads its configuration (OpenSSL's too) before the doors
	 * close. */
	if (sodium_init() < 0 || hqcurl_new(&t, &err) < 0 || sandbox_enter(&rep, &err) < 0) {
		fprintf(stderr, "fieldsync-net: %s\n", err.msg[0] ? err.msg : "libsodium");
		hqlink_free(t);
		return 1;
	}
	/* Tell the agent we are in the sandbox, and how. */
	sandbox_describe(&rep, line, sizeof(line));
	if (netframe_ready_encode(line, &ready, &rlen) < 0 ||
	    netframe_write(NET_FD, ready, rlen, &err) < 0) {
		fprintf(stderr, "fieldsync-net: cannot tell the agent it is ready\n");
		free(ready);
		hqlink_free(t);
		return 1;
	}
	free(ready);
	for (;;) {
		uint8_t *p = NULL;
		size_t len = 0;

		char kind = 0;

		r = netframe_read(NET_FD, "QC", NETFRAME_REQUEST_MAX, NULL, &p, &len, &kind, &err);
		if (r == 0 && kind == NETFRAME_CLOSE) {
			r = fresh_handle(&t);
		} else if (r == 0) {
			r = serve_one(t, p, len);
			/* The request may carry an enrolment token. */
			sodium_memzero(p, len);
		} else if (r != -EPIPE) {
			fprintf(stderr, "fieldsync-net: %s\n", err.msg);
		}
		free(p);
		if (r < 0)
			break;
	}
	hqlink_free(t);
	return r == -EPIPE ? 0 : 2;
}
