/* client.c - see client.h.  Sections: one connection; accepting; the
 * table in the loop. */
#include "agent/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sodium.h>

#include "agent/netproc.h"
#include "crypto/bytes.h"
#include "crypto/secmem.h"
#include "sync/hlc.h"
#include "sync/log.h"

#define NEVER UINT64_MAX

/* ---- one connection ---------------------------------------------------------- */

void client_close(struct client *cl)
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
void client_answer(struct client *cl, const char *out, const char *err, int status)
{
	client_answer_bytes(cl, out, out ? strlen(out) : 0, err, status);
}

void client_answer_bytes(struct client *cl, const char *out, size_t out_len, const char *err,
			 int status)
{
	uint8_t st = (uint8_t)status;

	cl->write_deadline = hlc_mono_ms() + CLIENT_ANSWER_TIMEOUT_MS;
	if ((out && out_len && frame_append(cl, CTL_STDOUT, out, out_len) < 0) ||
	    (err && err[0] && frame_append(cl, CTL_STDERR, err, strlen(err)) < 0) ||
	    frame_append(cl, CTL_EXIT, (const char *)&st, 1) < 0) {
		log_msg(LOG_ERR, "client: out of memory for an answer");
		client_close(cl);
	}
}

/* Read what the client sent; run the request once it is complete. */
static void client_read(struct client_table *t, struct client *cl)
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
	t->on_request(t->ctx, cl);
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

/* ---- accepting ----------------------------------------------------------------- */

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
static struct client *client_idlest(struct client_table *t, uid_t uid, int any)
{
	struct client *best = NULL;

	for (size_t i = 0; i < CLIENT_MAX; i++) {
		struct client *cl = &t->slot[i];

		if (cl->fd < 0 || cl->in_len || cl->in_job || cl->wait_gen || cl->out_len ||
		    (!any && cl->uid != uid))
			continue;
		if (!best || cl->since < best->since)
			best = cl;
	}
	return best;
}

void client_table_accept(struct client_table *t)
{
	struct client *cl = NULL, *idle;
	int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	size_t mine = 0;
	uid_t uid = (uid_t)-1;

	if (fd < 0)
		return;
	if (!peer_allowed(fd, t->group, &uid)) {
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
	for (size_t i = 0; i < CLIENT_MAX; i++)
		mine += t->slot[i].fd >= 0 && t->slot[i].uid == uid;
	if (mine >= CLIENT_PER_UID && (idle = client_idlest(t, uid, 0)))
		client_close(idle);
	else if (mine >= CLIENT_PER_UID)
		goto refuse;
	for (size_t i = 0; i < CLIENT_MAX && !cl; i++)
		if (t->slot[i].fd < 0)
			cl = &t->slot[i];
	if (!cl && (cl = client_idlest(t, uid, 1)))
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

/* ---- the table in the loop --------------------------------------------------- */

/* Read, write or let go of each client in the poll set. */
void client_table_serve(struct client_table *t, const struct pollfd *pfd,
			struct client *const *slot, size_t from, size_t n)
{
	uint64_t now = hlc_mono_ms();

	for (size_t i = from; i < n; i++) {
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
			client_read(t, cl);
		else if (cl->out_len && now >= cl->write_deadline)
			client_close(cl); /* never took its answer */
		else if (!cl->out_len && now >= cl->deadline)
			client_close(cl);
	}
}

void client_table_init(struct client_table *t, client_request_fn *on_request, void *ctx)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < CLIENT_MAX; i++)
		t->slot[i].fd = -1;
	t->lfd = -1;
	t->group = (gid_t)-1;
	t->on_request = on_request;
	t->ctx = ctx;
}

size_t client_table_poll(struct client_table *t, struct pollfd *pfd, struct client **slot, size_t n,
			 uint64_t *wake)
{
	for (size_t i = 0; i < CLIENT_MAX; i++) {
		struct client *cl = &t->slot[i];

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

void client_table_close(struct client_table *t)
{
	for (size_t i = 0; i < CLIENT_MAX; i++) {
		struct client *cl = &t->slot[i];

		if (cl->fd < 0)
			continue;
		/* One best-effort write; a slow client loses its answer. */
		if (cl->out_len)
			client_write(cl);
		client_close(cl);
	}
	if (t->lfd >= 0)
		close(t->lfd);
	t->lfd = -1;
}
