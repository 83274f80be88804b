/* faultproxy.c - a TCP proxy that breaks connections on purpose.
 *
 *   faultproxy --listen ADDR:PORT --to ADDR:PORT [--seed N] [--mode MODE]
 *              [--connect] [--log FILE] [--stall-ms MS] [--stall-forever]
 *              [--max-bytes N] [--slice-bytes N]
 *
 * The CLI tests put it between the agent and fieldsync-hq to prove that
 * every change reaches HQ exactly once however the link fails.  Each
 * accepted connection gets one fault:
 *
 *   pass      forward both ways unchanged
 *   cut-up    after N bytes client->server, close both sides (FIN)
 *   cut-down  after N bytes server->client, close both sides (FIN)
 *   stall     after N bytes one way, forward nothing for --stall-ms
 *             (default 3000), or never again with --stall-forever
 *   reset     after N bytes one way, close both sides with RST
 *   slice     forward in chunks of 1-7 bytes, 0-5 ms apart; only the
 *             first --slice-bytes each way when given, as slicing runs at
 *             about 1.5 kB/s and a test has a time budget
 *
 * N is uniform in [1, --max-bytes] (default 2048); a connection that
 * ends before N bytes passed was never touched ("fired no" in the log).
 * --mode names one fault for every connection, or "mixed" (the default):
 * connections draw from a shuffled deck of 15 (5 pass, 2 of each fault),
 * so about a third pass and every fault shows up within 15 connections.
 * Everything random comes from --seed (printed when not given), so a
 * failing run can be replayed.
 *
 * --connect makes it an HTTP CONNECT proxy: it reads "CONNECT HOST:PORT
 * HTTP/1.x" and its headers, refuses any target but --to with 403 (502
 * when --to is down), answers "200 Connection established" and tunnels,
 * the fault applying to the tunnel's bytes.
 *
 * It prints "listening on ADDR:PORT" on stderr once bound (port 0 picks
 * one), and with --log appends a line per connection when it ends:
 *
 *   conn N fault NAME up BYTES down BYTES fired yes|no [connect TARGET |
 *   refused TARGET] [upstream-down]
 *
 * up and down count bytes forwarded each way.  SIGTERM or SIGINT print
 * the totals and exit 0.  One process, one poll(2) loop, libc only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SESSIONS_MAX 64
#define BUF_SIZE 16384
#define HEAD_MAX 4096 /* a CONNECT request with its headers */
#define TARGET_MAX 96
#define PUMP_ROUNDS 16 /* buffers per wake-up, so one session cannot starve others */
#define NEVER UINT64_MAX

enum fault { F_PASS, F_CUT_UP, F_CUT_DOWN, F_STALL, F_RESET, F_SLICE, F_COUNT };
#define F_MIXED F_COUNT

static const char *const fault_names[F_COUNT] = { "pass",  "cut-up", "cut-down",
						  "stall", "reset",  "slice" };

enum { UP, DOWN }; /* client->server, server->client */

enum state { S_FREE, S_HEAD, S_CONNECTING, S_OPEN };

/* One direction of a session: bytes read from its source not yet
 * written to its destination. */
struct flow {
	uint8_t buf[BUF_SIZE];
	size_t off, len;
	int eof;		  /* the source sent FIN */
	int shut;		  /* ... and we passed it on */
	unsigned long long bytes; /* forwarded */
	uint64_t next_ms;	  /* slice: no chunk before this */
};

struct session {
	enum state state;
	int cfd, sfd; /* client, server; -1 when closed */
	unsigned long long id;
	enum fault fault;
	int fault_dir;		     /* UP or DOWN */
	unsigned long long fault_at; /* fire when fault_dir has forwarded this; 0: never */
	int fired;
	unsigned long long slice_bytes; /* slice each way up to this many bytes */
	uint64_t stall_until;		/* 0: not stalled */
	char head[HEAD_MAX + 1];	/* CONNECT request, NUL-terminated */
	size_t head_len;
	char target[TARGET_MAX]; /* CONNECT target, printable */
	int refused;
	int upstream_down;
	struct flow flow[2];
};

struct options {
	const char *listen, *to, *log;
	uint64_t seed;
	int mode; /* a fault, or F_MIXED */
	int connect;
	unsigned stall_ms;
	int stall_forever;
	unsigned max_bytes;
	unsigned long long slice_bytes; /* 0: slice everything */
};

struct proxy {
	struct options o;
	struct sockaddr_storage to;
	socklen_t to_len;
	int lfd, logfd;
	uint64_t rng;
	int deck[15];
	int deck_left;
	unsigned long long conns, chosen[F_COUNT], fired[F_COUNT];
	struct session *sess; /* SESSIONS_MAX of them */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* splitmix64: small, good enough, and the same sequence on every libc. */
static uint64_t rnd(struct proxy *p)
{
	uint64_t z = (p->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned rnd_below(struct proxy *p, unsigned n)
{
	return (unsigned)(rnd(p) % n);
}

static enum fault draw_fault(struct proxy *p)
{
	if (p->o.mode != F_MIXED)
		return (enum fault)p->o.mode;
	if (!p->deck_left) {
		int n = 0;

		for (int i = 0; i < 5; i++)
			p->deck[n++] = F_PASS;
		for (int f = F_CUT_UP; f < F_COUNT; f++) {
			p->deck[n++] = f;
			p->deck[n++] = f;
		}
		for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
			int j = (int)rnd_below(p, (unsigned)i + 1), t = p->deck[i];

			p->deck[i] = p->deck[j];
			p->deck[j] = t;
		}
		p->deck_left = n;
	}
	return (enum fault)p->deck[--p->deck_left];
}

/* "HOST:PORT" or "[V6]:PORT", numeric only. */
static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	size_t hlen;
	char *end;
	unsigned long port;

	if (!colon || colon == s)
		return -1;
	hlen = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hlen < 3 || s[hlen - 1] != ']')
			return -1;
		s++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons((uint16_t)port);
			*len = sizeof(*a4);
			return 0;
		}
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons((uint16_t)port);
			*len = sizeof(*a6);
			return 0;
		}
	}
	return -1;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
		snprintf(out, cap, "[%s]:%u", host, ntohs(a6->sin6_port));
	} else {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
		snprintf(out, cap, "%s:%u", host, ntohs(a4->sin_port));
	}
}

static void set_nodelay(int fd)
{
	int one = 1;

	/* Without it the kernel would glue the slices back together; a
	 * failure only makes slicing coarser. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Close with FIN.  Unread input would turn close() into a RST, which is
 * the reset fault's job, so send FIN first and drop what is queued. */
static void close_fin(int fd)
{
	char sink[4096];

	if (fd < 0)
		return;
	(void)shutdown(fd, SHUT_WR); /* fails only if already gone */
	for (int i = 0; i < 64 && read(fd, sink, sizeof(sink)) > 0; i++)
		;
	close(fd);
}

/* Close with RST: SO_LINGER with a zero timeout aborts the connection. */
static void close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		fprintf(stderr, "faultproxy: SO_LINGER: %s\n", strerror(errno));
	close(fd);
}

static void log_session(struct proxy *p, const struct session *s)
{
	char line[256];
	int n;

	n = snprintf(line, sizeof(line), "conn %llu fault %s up %llu down %llu fired %s%s%s%s\n",
		     s->id, fault_names[s->fault], s->flow[UP].bytes, s->flow[DOWN].bytes,
		     s->fired ? "yes" : "no",
		     s->target[0] ? (s->refused ? " refused " : " connect ") : "", s->target,
		     s->upstream_down ? " upstream-down" : "");
	if (n < 0 || p->logfd < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	/* One write per line with O_APPEND: a reader never sees half a line. */
	if (write(p->logfd, line, (size_t)n) != n) {
		fprintf(stderr, "faultproxy: cannot write %s: %s; not logging any more\n", p->o.log,
			strerror(errno));
		close(p->logfd);
		p->logfd = -1;
	}
}

/* End a session that was not ended by its fault: both sides get FIN. */
static void session_end(struct proxy *p, struct session *s)
{
	close_fin(s->cfd);
	close_fin(s->sfd);
	s->cfd = s->sfd = -1;
	if (s->fired)
		p->fired[s->fault]++;
	log_session(p, s);
	s->state = S_FREE;
}

/* Answer a CONNECT request with an error and no body. */
static void send_status(const struct session *s, const char *status)
{
	char msg[128];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);

	/* A fresh socket's send buffer takes these few bytes at once; if
	 * not, the client just sees the connection closed. */
	(void)!send(s->cfd, msg, (size_t)n, MSG_NOSIGNAL);
}

/* HQ is down: the client sees its connection closed, as it would with a
 * dead link beyond the proxy, or a CONNECT client gets 502 as from a
 * real proxy. */
static void upstream_failed(struct proxy *p, struct session *s)
{
	s->upstream_down = 1;
	if (p->o.connect)
		send_status(s, "502 Bad Gateway");
	session_end(p, s);
}

static void session_start_upstream(struct proxy *p, struct session *s)
{
	int fd = socket(p->to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		fprintf(stderr, "faultproxy: socket: %s\n", strerror(errno));
		upstream_failed(p, s);
		return;
	}
	set_nodelay(fd);
	s->sfd = fd;
	if (connect(fd, (struct sockaddr *)&p->to, p->to_len) < 0 && errno != EINPROGRESS) {
		upstream_failed(p, s);
		return;
	}
	s->state = S_CONNECTING;
}

static void session_accept(struct proxy *p, int cfd)
{
	struct session *s = NULL;

	for (int i = 0; i < SESSIONS_MAX; i++)
		if (p->sess[i].state == S_FREE) {
			s = &p->sess[i];
			break;
		}
	if (!s) { /* the listener is not polled when full; belt and braces */
		close(cfd);
		return;
	}
	memset(s, 0, sizeof(*s));
	s->cfd = cfd;
	s->sfd = -1;
	s->id = ++p->conns;
	s->fault = draw_fault(p);
	p->chosen[s->fault]++;
	switch (s->fault) {
	case F_CUT_UP:
		s->fault_dir = UP;
		break;
	case F_CUT_DOWN:
		s->fault_dir = DOWN;
		break;
	default:
		s->fault_dir = (int)rnd_below(p, 2);
		break;
	}
	if (s->fault != F_PASS && s->fault != F_SLICE)
		s->fault_at = 1 + rnd_below(p, p->o.max_bytes);
	if (s->fault == F_SLICE)
		s->slice_bytes = p->o.slice_bytes ? p->o.slice_bytes : ULLONG_MAX;
	set_nodelay(cfd);
	if (p->o.connect) {
		s->state = S_HEAD;
		return;
	}
	session_start_upstream(p, s);
}

static void head_refuse(struct proxy *p, struct session *s, const char *status)
{
	send_status(s, status);
	s->refused = 1;
	session_end(p, s);
}

/* Read the CONNECT request; once the blank line is in, check it. */
static void head_step(struct proxy *p, struct session *s)
{
	char *end, *line_end, *sp;
	size_t tlen;
	ssize_t n;

	n = read(s->cfd, s->head + s->head_len, HEAD_MAX - s->head_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		session_end(p, s);
		return;
	}
	s->head_len += (size_t)n;
	s->head[s->head_len] = '\0';
	/* The request carries no NUL; one would hide the blank line from
	 * strstr and is refused below as malformed. */
	end = strstr(s->head, "\r\n\r\n");
	if (!end) {
		if (s->head_len == HEAD_MAX || strlen(s->head) != s->head_len)
			head_refuse(p, s, "400 Bad Request");
		return;
	}
	line_end = strstr(s->head, "\r\n");
	if (strncmp(s->head, "CONNECT ", 8)) {
		head_refuse(p, s, "405 Method Not Allowed");
		return;
	}
	sp = memchr(s->head + 8, ' ', (size_t)(line_end - (s->head + 8)));
	if (!sp || strncmp(sp, " HTTP/1.", 8)) {
		head_refuse(p, s, "400 Bad Request");
		return;
	}
	/* Keep the target for the log, printable characters only. */
	tlen = (size_t)(sp - (s->head + 8));
	for (size_t i = 0; i < tlen && i < TARGET_MAX - 1; i++) {
		char ch = s->head[8 + i];

		s->target[i] = ch > ' ' && ch < 127 ? ch : '?';
	}
	if (tlen != strlen(p->o.to) || memcmp(s->head + 8, p->o.to, tlen)) {
		head_refuse(p, s, "403 Forbidden");
		return;
	}
	/* Bytes after the blank line already belong to the tunnel. */
	end += 4;
	s->flow[UP].len = s->head_len - (size_t)(end - s->head);
	memcpy(s->flow[UP].buf, end, s->flow[UP].len);
	session_start_upstream(p, s);
}

static void connecting_step(struct proxy *p, struct session *s)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(s->sfd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
		upstream_failed(p, s);
		return;
	}
	if (p->o.connect && send(s->cfd, ok, sizeof(ok) - 1, MSG_NOSIGNAL) != sizeof(ok) - 1) {
		session_end(p, s);
		return;
	}
	s->state = S_OPEN;
}

/* Is this flow still to be cut into slices? */
static int slicing(const struct session *s, const struct flow *f)
{
	return f->bytes < s->slice_bytes;
}

/* The fault's moment has come.  Returns 1 when the session is gone. */
static int fire(struct proxy *p, struct session *s, uint64_t now)
{
	s->fired = 1;
	switch (s->fault) {
	case F_CUT_UP:
	case F_CUT_DOWN:
		session_end(p, s);
		return 1;
	case F_RESET:
		close_rst(s->cfd);
		close_rst(s->sfd);
		s->cfd = s->sfd = -1;
		session_end(p, s);
		return 1;
	case F_STALL:
		s->stall_until = p->o.stall_forever ? NEVER : now + p->o.stall_ms;
		return 0;
	default:
		return 0;
	}
}

/* Move what can move one way without blocking.  Returns -1 when the
 * session must end (an error on either side), 1 when the fault ended
 * it, else 0. */
static int pump(struct proxy *p, struct session *s, int dir, uint64_t now)
{
	struct flow *f = &s->flow[dir];
	int src = dir == UP ? s->cfd : s->sfd, dst = dir == UP ? s->sfd : s->cfd;

	for (int round = 0; round < PUMP_ROUNDS && !s->stall_until; round++) {
		size_t chunk;
		ssize_t n;

		if (!f->len && !f->eof) {
			n = read(src, f->buf, sizeof(f->buf));
			if (n < 0)
				return errno == EAGAIN || errno == EINTR ? 0 : -1;
			f->off = 0;
			f->len = (size_t)n;
			f->eof = n == 0;
		}
		if (!f->len)
			break;
		chunk = f->len;
		if (slicing(s, f)) {
			if (now < f->next_ms)
				return 0;
			chunk = 1 + rnd_below(p, 7);
			if (chunk > f->len)
				chunk = f->len;
		}
		/* Stop exactly at the fault's byte, so "after N bytes" is true. */
		if (s->fault_at && !s->fired && s->fault_dir == dir &&
		    chunk > s->fault_at - f->bytes)
			chunk = (size_t)(s->fault_at - f->bytes);
		n = send(dst, f->buf + f->off, chunk, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		f->off += (size_t)n;
		f->len -= (size_t)n;
		if (slicing(s, f)) {
			s->fired = 1;
			f->next_ms = now + rnd_below(p, 6);
		}
		f->bytes += (unsigned long long)n;
		if (s->fault_at && !s->fired && s->fault_dir == dir && f->bytes == s->fault_at &&
		    fire(p, s, now))
			return 1;
	}
	if (!f->len && f->eof && !f->shut && !s->stall_until) {
		/* Pass the FIN on; the other way may still have more to say. */
		(void)shutdown(dst, SHUT_WR);
		f->shut = 1;
	}
	return 0;
}

static void open_step(struct proxy *p, struct session *s, short crev, short srev, uint64_t now)
{
	if (s->stall_until) {
		if (s->stall_until != NEVER && now >= s->stall_until) {
			s->stall_until = 0;
		} else {
			/* Stalled: only a side giving up ends it (its POLLRDHUP). */
			if ((crev | srev) & (POLLRDHUP | POLLHUP | POLLERR))
				session_end(p, s);
			return;
		}
	}
	if ((crev | srev) & (POLLERR | POLLNVAL)) {
		session_end(p, s);
		return;
	}
	for (int dir = UP; dir <= DOWN; dir++) {
		int r = pump(p, s, dir, now);

		if (r > 0)
			return;
		if (r < 0) {
			session_end(p, s);
			return;
		}
	}
	if (s->flow[UP].shut && s->flow[DOWN].shut)
		session_end(p, s);
}

/* What to wait for on each side of a session. */
static void session_events(const struct session *s, uint64_t now, short *cev, short *sev,
			   uint64_t *deadline)
{
	*cev = *sev = 0;
	switch (s->state) {
	case S_HEAD:
		*cev = POLLIN;
		return;
	case S_CONNECTING:
		*sev = POLLOUT;
		return;
	case S_OPEN:
		break;
	default:
		return;
	}
	if (s->stall_until) {
		if (s->stall_until != NEVER && s->stall_until < *deadline)
			*deadline = s->stall_until;
		if (!s->flow[UP].eof)
			*cev = POLLRDHUP;
		if (!s->flow[DOWN].eof)
			*sev = POLLRDHUP;
		return;
	}
	for (int dir = UP; dir <= DOWN; dir++) {
		const struct flow *f = &s->flow[dir];
		short *src = dir == UP ? cev : sev, *dst = dir == UP ? sev : cev;

		if (!f->len && !f->eof)
			*src |= POLLIN;
		if (f->len) {
			if (slicing(s, f) && f->next_ms > now) {
				if (f->next_ms < *deadline)
					*deadline = f->next_ms;
			} else {
				*dst |= POLLOUT;
			}
		}
	}
}

static void accept_all(struct proxy *p)
{
	for (;;) {
		int free_slot = 0, fd;

		for (int i = 0; i < SESSIONS_MAX && !free_slot; i++)
			free_slot = p->sess[i].state == S_FREE;
		if (!free_slot)
			return;
		fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "faultproxy: accept: %s\n", strerror(errno));
			return;
		}
		session_accept(p, fd);
	}
}

static int run(struct proxy *p, const sigset_t *waitmask)
{
	/* Index 0 is the listener, then two per session (client, server). */
	struct pollfd pfd[1 + 2 * SESSIONS_MAX];

	while (!stop_signal) {
		uint64_t now = now_ms(), deadline = NEVER;
		struct timespec ts, *tsp = NULL;
		int busy = 0;

		for (int i = 0; i < SESSIONS_MAX; i++) {
			struct session *s = &p->sess[i];
			short cev, sev;

			session_events(s, now, &cev, &sev, &deadline);
			busy += s->state != S_FREE;
			/* A negative fd is skipped by poll: no POLLHUP spinning
			 * on a side we want nothing from. */
			pfd[1 + 2 * i] = (struct pollfd){ .fd = cev ? s->cfd : -1, .events = cev };
			pfd[2 + 2 * i] = (struct pollfd){ .fd = sev ? s->sfd : -1, .events = sev };
		}
		pfd[0] = (struct pollfd){ .fd = busy < SESSIONS_MAX ? p->lfd : -1,
					  .events = POLLIN };
		if (deadline != NEVER) {
			uint64_t wait = deadline > now ? deadline - now : 0;

			ts.tv_sec = (time_t)(wait / 1000);
			ts.tv_nsec = (long)(wait % 1000) * 1000000;
			tsp = &ts;
		}
		/* SIGTERM is blocked except inside ppoll: no lost wake-up. */
		if (ppoll(pfd, 1 + 2 * SESSIONS_MAX, tsp, waitmask) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "faultproxy: poll: %s\n", strerror(errno));
			return -1;
		}
		now = now_ms();
		if (pfd[0].revents)
			accept_all(p);
		for (int i = 0; i < SESSIONS_MAX; i++) {
			struct session *s = &p->sess[i];
			short crev = pfd[1 + 2 * i].revents, srev = pfd[2 + 2 * i].revents;

			switch (s->state) {
			case S_HEAD:
				if (crev)
					head_step(p, s);
				break;
			case S_CONNECTING:
				if (srev)
					connecting_step(p, s);
				break;
			case S_OPEN:
				/* Timers (slices, stalls) need no event. */
				open_step(p, s, crev, srev, now);
				break;
			default:
				break;
			}
		}
	}
	return 0;
}

static void print_totals(const struct proxy *p)
{
	fprintf(stderr, "faultproxy: %llu connections:", p->conns);
	for (int f = 0; f < F_COUNT; f++)
		fprintf(stderr, "%s %s %llu (%llu fired)", f ? "," : "", fault_names[f],
			p->chosen[f], p->fired[f]);
	fprintf(stderr, "\n");
}

static int open_listener(struct proxy *p)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char shown[INET6_ADDRSTRLEN + 8];
	int one = 1, fd;

	if (parse_addr(p->o.listen, &ss, &len) < 0) {
		fprintf(stderr, "faultproxy: --listen %s: expected ADDR:PORT\n", p->o.listen);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "faultproxy: socket: %s\n", strerror(errno));
		return -1;
	}
	/* A test restarts the proxy on the same port at once. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		fprintf(stderr, "faultproxy: %s: %s\n", p->o.listen, strerror(errno));
		close(fd);
		return -1;
	}
	format_addr(&ss, shown, sizeof(shown));
	fprintf(stderr, "faultproxy: seed %" PRIu64 ", mode %s%s\n", p->o.seed,
		p->o.mode == F_MIXED ? "mixed" : fault_names[p->o.mode],
		p->o.connect ? ", CONNECT proxy" : "");
	fprintf(stderr, "listening on %s\n", shown);
	p->lfd = fd;
	return 0;
}

static int parse_uint(const char *opt, const char *s, unsigned long long max,
		      unsigned long long *ret)
{
	char *end;

	errno = 0;
	*ret = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *ret > max) {
		fprintf(stderr, "faultproxy: %s %s: expected a number up to %llu\n", opt, s, max);
		return -1;
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: faultproxy --listen ADDR:PORT --to ADDR:PORT [--seed N] [--mode MODE]\n"
		"                  [--connect] [--log FILE] [--stall-ms MS] [--stall-forever]\n"
		"                  [--max-bytes N] [--slice-bytes N]\n"
		"MODE: mixed (default), pass, cut-up, cut-down, stall, reset, slice\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "connect", no_argument, NULL, 'c' },
		{ "log", required_argument, NULL, 'L' },
		{ "stall-ms", required_argument, NULL, 'S' },
		{ "stall-forever", no_argument, NULL, 'F' },
		{ "max-bytes", required_argument, NULL, 'b' },
		{ "slice-bytes", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long v;
	int opt, seed_set = 0;

	*o = (struct options){ .mode = F_MIXED, .stall_ms = 3000, .max_bytes = 2048 };
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			o->listen = optarg;
			break;
		case 't':
			o->to = optarg;
			break;
		case 's':
			if (parse_uint("--seed", optarg, UINT64_MAX, &v) < 0)
				return -1;
			o->seed = v;
			seed_set = 1;
			break;
		case 'm':
			o->mode = -1;
			if (!strcmp(optarg, "mixed"))
				o->mode = F_MIXED;
			for (int f = 0; f < F_COUNT; f++)
				if (!strcmp(optarg, fault_names[f]))
					o->mode = f;
			if (o->mode < 0) {
				fprintf(stderr, "faultproxy: unknown --mode %s\n", optarg);
				return -1;
			}
			break;
		case 'c':
			o->connect = 1;
			break;
		case 'L':
			o->log = optarg;
			break;
		case 'S':
			if (parse_uint("--stall-ms", optarg, 3600000, &v) < 0)
				return -1;
			o->stall_ms = (unsigned)v;
			break;
		case 'F':
			o->stall_forever = 1;
			break;
		case 'b':
			if (parse_uint("--max-bytes", optarg, 1U << 30, &v) < 0 || !v) {
				fprintf(stderr, "faultproxy: --max-bytes must be at least 1\n");
				return -1;
			}
			o->max_bytes = (unsigned)v;
			break;
		case 'B':
			if (parse_uint("--slice-bytes", optarg, ULLONG_MAX, &v) < 0)
				return -1;
			o->slice_bytes = v;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc || !o->listen || !o->to) {
		usage(stderr);
		return -1;
	}
	if (!seed_set) {
		struct timespec ts;

		/* Printed at start, so a failing run can be replayed. */
		clock_gettime(CLOCK_REALTIME, &ts);
		o->seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct proxy p = { .lfd = -1, .logfd = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, waitmask;
	int rc = 2;

	if (parse_args(argc, argv, &p.o) < 0)
		return 2;
	p.rng = p.o.seed;
	if (parse_addr(p.o.to, &p.to, &p.to_len) < 0) {
		fprintf(stderr, "faultproxy: --to %s: expected ADDR:PORT\n", p.o.to);
		return 2;
	}
	p.sess = calloc(SESSIONS_MAX, sizeof(*p.sess));
	if (!p.sess) {
		fprintf(stderr, "faultproxy: out of memory\n");
		return 1;
	}
	rc = 1;
	if (p.o.log) {
		p.logfd = open(p.o.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (p.logfd < 0) {
			fprintf(stderr, "faultproxy: %s: %s\n", p.o.log, strerror(errno));
			goto out;
		}
	}
	/* Block the stop signals except while in ppoll, so one arriving
	 * between two polls is not missed; a dead peer must not kill us. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, &waitmask) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGINT, &sa, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "faultproxy: signals: %s\n", strerror(errno));
		goto out;
	}
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	if (open_listener(&p) < 0)
		goto out;
	if (run(&p, &waitmask) < 0)
		goto out;
	rc = 0;
out:
	for (int i = 0; i < SESSIONS_MAX; i++)
		if (p.sess[i].state != S_FREE)
			session_end(&p, &p.sess[i]);
	if (p.lfd >= 0) {
		print_totals(&p);
		close(p.lfd);
	}
	if (p.logfd >= 0)
		close(p.logfd);
	free(p.sess);
	return rc;
}
