/* client.h - the agent's control connections; agent/ctl.h is what they
 * carry.
 *
 * A table of at most CLIENT_MAX connections.  Each reads one request
 * frame (with the descriptors that come with it), then holds its answer
 * frames until the socket has taken them.  On accept the peer is checked
 * (SO_PEERCRED): root, the agent's own user or a member of the socket's
 * group, and never the network helper (agent/netproc.h), which runs as
 * the agent's user.  One user holds at most CLIENT_PER_UID connections;
 * idle ones (its own first) make room before anyone is refused, so
 * connections that send nothing never lock anybody out.  A connection
 * that sends no whole request within CLIENT_TIMEOUT_MS, or takes no whole
 * answer within CLIENT_ANSWER_TIMEOUT_MS, is dropped.
 *
 * The loop's, not thread-safe.  A client whose request runs on the
 * worker thread (in_job), or that waits for a push (wait_gen), is left
 * alone until the agent answers it; a hang-up frees a waiting one.
 * Request buffers are secure memory: they may hold a passphrase or a
 * token.
 */
#ifndef FS_CLIENT_H
#define FS_CLIENT_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/ctl.h"

#define CLIENT_MAX 16
#define CLIENT_PER_UID 4
/* To send a whole request after connecting.  The CLI reads its input (a
 * typed token, a pipe) and asks for a passphrase before it connects, then
 * sends at once (cli.c), so only a stuck or hostile client waits this long. */
#define CLIENT_TIMEOUT_MS 10000
#define CLIENT_ANSWER_TIMEOUT_MS 30000 /* to take a whole answer */

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

/* Called with a whole request in cl->in (header first, cl->in_len bytes). */
typedef void client_request_fn(void *ctx, struct client *cl);

struct client_table {
	struct client slot[CLIENT_MAX];
	int lfd;     /* the listening socket; -1 none */
	gid_t group; /* the socket's group; (gid_t)-1 none */
	client_request_fn *on_request;
	void *ctx;
};

/* An empty table, no socket yet. */
void client_table_init(struct client_table *t, client_request_fn *on_request, void *ctx);

/* Accept a connection on t->lfd, or refuse it (logged). */
void client_table_accept(struct client_table *t);

/* Add the connections to watch to pfd from index n (slot[i] is the
 * client of pfd[i]), bring *wake down to their nearest deadline (monotonic
 * ms); returns the new count. */
size_t client_table_poll(struct client_table *t, struct pollfd *pfd, struct client **slot, size_t n,
			 uint64_t *wake);

/* Read, write or let go of each client pfd[from..n) names. */
void client_table_serve(struct client_table *t, const struct pollfd *pfd,
			struct client *const *slot, size_t from, size_t n);

/* At the end: one best-effort write of each queued answer, then close
 * every connection and the listening socket. */
void client_table_close(struct client_table *t);

/* Queue the whole answer: standard output, standard error (either may be
 * NULL) and the exit status; the loop sends it as the socket takes it. */
void client_answer(struct client *cl, const char *out, const char *err, int status);
/* The same with out_len bytes of output, which may hold any byte (a file
 * written to standard output). */
void client_answer_bytes(struct client *cl, const char *out, size_t out_len, const char *err,
			 int status);

/* Close one connection and free its slot. */
void client_close(struct client *cl);

#endif
