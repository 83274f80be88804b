/* netframe.c - see netframe.h.  Sections: byte order and text checks;
 * requests; answers; reading and writing frames. */
#include "agent/netframe.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

static const uint8_t magic[4] = { 'F', 'S', 'N', '1' };

/* ---- byte order and text checks ------------------------------------------ */

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Printable ASCII, space included, and no NUL: what a URL, a content
 * type, a pin, a checkpoint and our error messages are made of. */
static int printable(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

static uint8_t *frame_new(char kind, size_t payload)
{
	uint8_t *f = malloc(NETFRAME_HEADER + payload);

	if (!f)
		return NULL;
	memcpy(f, magic, 4);
	f[4] = (uint8_t)kind;
	f[5] = f[6] = f[7] = 0;
	put32(f + 8, (uint32_t)payload);
	return f;
}

long netframe_header_check(const uint8_t h[NETFRAME_HEADER], const char *kinds, size_t max)
{
	uint32_t n = get32(h + 8);

	if (memcmp(h, magic, 4) != 0 || !h[4] || !strchr(kinds, h[4]) || h[5] || h[6] || h[7] ||
	    n > max || (h[4] == NETFRAME_CLOSE && n != 0))
		return -EBADMSG;
	return (long)n;
}

int netframe_ready_encode(const char *text, uint8_t **ret, size_t *ret_len)
{
	size_t n = strlen(text);
	uint8_t *f;

	if (n > NETFRAME_READY_MAX || !printable((const uint8_t *)text, n))
		return -EINVAL;
	if (!(f = frame_new(NETFRAME_READY, n)))
		return -ENOMEM;
	memcpy(f + NETFRAME_HEADER, text, n);
	*ret = f;
	*ret_len = NETFRAME_HEADER + n;
	return 0;
}

int netframe_ready_decode(const uint8_t *p, size_t len, char *out, size_t cap)
{
	if (len > NETFRAME_READY_MAX || len >= cap || !printable(p, len))
		return -EBADMSG;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

int netframe_close_encode(uint8_t out[NETFRAME_HEADER])
{
	memcpy(out, magic, 4);
	out[4] = NETFRAME_CLOSE;
	memset(out + 5, 0, NETFRAME_HEADER - 5);
	return 0;
}

/* ---- requests ---------------------------------------------------------------- */

int netframe_request_encode(const struct netframe_request *q, uint8_t **ret, size_t *ret_len,
			    struct fs_error *err)
{
	const char *pin = q->tls_pin ? q->tls_pin : "";
	size_t ul = strlen(q->url), tl = strlen(q->content_type), pl = strlen(pin), payload;
	uint8_t *f, *p;

	if (ul == 0 || ul >= HQLINK_URL_MAX || tl == 0 || tl > NETFRAME_TYPE_MAX ||
	    pl >= HQLINK_PIN_MAX || q->len > NETFRAME_BODY_MAX)
		return fs_error_set(err, -FS_ELIMIT,
				    "request to the network helper: a field is over its limit");
	if (!printable((const uint8_t *)q->url, ul) ||
	    !printable((const uint8_t *)q->content_type, tl) ||
	    !printable((const uint8_t *)pin, pl))
		return fs_error_set(
			err, -EINVAL,
			"request to the network helper: URL, type or pin not printable");
	payload = NETFRAME_REQUEST_FIXED + ul + tl + pl + q->len;
	if (!(f = frame_new(NETFRAME_REQUEST, payload)))
		return fs_error_set(err, -ENOMEM, "request to the network helper: out of memory");
	p = f + NETFRAME_HEADER;
	put32(p, q->connect_s);
	put32(p + 4, q->stall_s);
	put16(p + 8, (uint32_t)ul);
	put16(p + 10, (uint32_t)tl);
	put16(p + 12, (uint32_t)pl);
	put16(p + 14, 0);
	put32(p + 16, (uint32_t)q->len);
	put32(p + 20, (uint32_t)(q->wall_ms >> 32));
	put32(p + 24, (uint32_t)q->wall_ms);
	p += NETFRAME_REQUEST_FIXED;
	memcpy(p, q->url, ul);
	memcpy(p + ul, q->content_type, tl);
	memcpy(p + ul + tl, pin, pl);
	if (q->len)
		memcpy(p + ul + tl + pl, q->body, q->len);
	*ret = f;
	*ret_len = NETFRAME_HEADER + payload;
	return 0;
}

/* Copy n printable bytes at p into out (cap bytes, NUL-terminated). */
static int take_text(const uint8_t *p, size_t n, char *out, size_t cap)
{
	if (n >= cap || !printable(p, n))
		return -EPROTO;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int netframe_request_decode(const uint8_t *p, size_t len, struct netframe_request_buf *ret,
			    struct fs_error *err)
{
	size_t ul, tl, pl, bl;

	memset(ret, 0, sizeof(*ret));
	if (len < NETFRAME_REQUEST_FIXED)
		goto bad;
	ul = get16(p + 8);
	tl = get16(p + 10);
	pl = get16(p + 12);
	bl = get32(p + 16);
	if (get16(p + 14) != 0 || ul == 0 || tl == 0 || bl > NETFRAME_BODY_MAX ||
	    len != NETFRAME_REQUEST_FIXED + ul + tl + pl + bl)
		goto bad;
	ret->q.connect_s = get32(p);
	ret->q.stall_s = get32(p + 4);
	ret->q.wall_ms = (uint64_t)get32(p + 20) << 32 | get32(p + 24);
	p += NETFRAME_REQUEST_FIXED;
	if (take_text(p, ul, ret->url, sizeof(ret->url)) < 0 ||
	    take_text(p + ul, tl, ret->content_type, sizeof(ret->content_type)) < 0 ||
	    take_text(p + ul + tl, pl, ret->tls_pin, sizeof(ret->tls_pin)) < 0)
		goto bad;
	ret->q.url = ret->url;
	ret->q.content_type = ret->content_type;
	ret->q.tls_pin = ret->tls_pin;
	ret->q.body = p + ul + tl + pl;
	ret->q.len = bl;
	return 0;
bad:
	return fs_error_set(err, -EBADMSG, "network helper: malformed request frame");
}

/* ---- answers ---------------------------------------------------------------- */

/* The codes hqlink.h's transport may fail with; anything else from the
 * helper is a malformed answer. */
static int transport_code(int32_t r)
{
	static const int known[] = { -EHOSTUNREACH, -FS_EKEY,	-FS_ELIMIT, -ENOMEM,
				     -ECANCELED,    -FS_EUSAGE, -EPROTO,    -EINVAL };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (r == known[i])
			return 1;
	return 0;
}

int netframe_answer_encode(int result, const struct hqlink_response *r, const struct fs_error *e,
			   uint8_t **ret, size_t *ret_len)
{
	size_t el = 0, cl = 0, bl = 0, payload;
	const char *msg = "";
	uint8_t *f, *p;

	if (result < 0) {
		msg = e && e->msg[0] ? e->msg : "network helper: request failed";
		el = strnlen(msg, NETFRAME_ERROR_MAX);
	} else {
		cl = r->checkpoint ? strnlen(r->checkpoint, NETFRAME_CHECKPOINT_MAX) : 0;
		bl = r->body ? r->len : 0;
		if (bl > HQLINK_RESPONSE_MAX || r->status < 0 || r->status > 999)
			return -FS_ELIMIT;
	}
	payload = 20 + el + cl + bl;
	if (!(f = frame_new(NETFRAME_ANSWER, payload)))
		return -ENOMEM;
	p = f + NETFRAME_HEADER;
	put32(p, (uint32_t)result);
	put16(p + 4, result < 0 ? 0 : (uint32_t)r->status);
	put16(p + 6, 0);
	put32(p + 8, result < 0 || r->retry_after < 0 ? 0 : (uint32_t)r->retry_after);
	put16(p + 12, (uint32_t)el);
	put16(p + 14, (uint32_t)cl);
	put32(p + 16, (uint32_t)bl);
	p += 20;
	memcpy(p, msg, el);
	/* Non-printable bytes become '?': the agent would refuse them. */
	for (size_t i = 0; i < el; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			p[i] = '?';
	if (cl)
		memcpy(p + el, r->checkpoint, cl);
	if (bl)
		memcpy(p + el + cl, r->body, bl);
	*ret = f;
	*ret_len = NETFRAME_HEADER + payload;
	return 0;
}

int netframe_answer_decode(const uint8_t *p, size_t len, struct hqlink_response *ret,
			   struct fs_error *err)
{
	size_t el, cl, bl;
	int32_t result;
	uint32_t status, after;

	memset(ret, 0, sizeof(*ret));
	if (len < 20)
		goto bad;
	result = (int32_t)get32(p);
	status = get16(p + 4);
	after = get32(p + 8);
	el = get16(p + 12);
	cl = get16(p + 14);
	bl = get32(p + 16);
	if (get16(p + 6) != 0 || el > NETFRAME_ERROR_MAX || cl > NETFRAME_CHECKPOINT_MAX ||
	    bl > HQLINK_RESPONSE_MAX || len != 20 + el + cl + bl || after > 86400)
		goto bad;
	p += 20;
	if (result < 0) {
		/* A failure carries its message and nothing else. */
		if (!transport_code(result) || el == 0 || cl || bl || status || after)
			goto bad;
		if (!printable(p, el))
			goto bad;
		fs_error_set(err, result, "%.*s", (int)el, (const char *)p);
		return result;
	}
	if (result != 0 || el || status < 100 || status > 999 || !printable(p + el, cl))
		goto bad;
	if (cl && !(ret->checkpoint = strndup((const char *)p + el, cl)))
		return fs_error_set(err, -ENOMEM, "network helper answer: out of memory");
	if (bl) {
		if (!(ret->body = malloc(bl + 1))) {
			hqlink_response_clear(ret);
			return fs_error_set(err, -ENOMEM, "network helper answer: out of memory");
		}
		memcpy(ret->body, p + el + cl, bl);
		ret->body[bl] = '\0';
		ret->len = bl;
	}
	ret->status = (long)status;
	ret->retry_after = (long)after;
	return 0;
bad:
	return fs_error_set(err, -EBADMSG, "network helper: malformed answer frame");
}

/* ---- reading and writing frames ----------------------------------------- */

/* Wait until fd is readable, looking at *cancel once a second. */
static int wait_readable(int fd, const _Atomic int *cancel)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	for (;;) {
		int n;

		if (cancel && *cancel)
			return -ECANCELED;
		n = poll(&pfd, 1, cancel ? 1000 : -1);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int read_exact(int fd, uint8_t *buf, size_t n, const _Atomic int *cancel)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k;
		int r;

		if ((r = wait_readable(fd, cancel)) < 0)
			return r;
		k = read(fd, buf + got, n - got);
		if (k == 0)
			return -EPIPE;
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		got += (size_t)k;
	}
	return 0;
}

int netframe_read(int fd, const char *kinds, size_t max, const _Atomic int *cancel, uint8_t **ret,
		  size_t *ret_len, char *ret_kind, struct fs_error *err)
{
	uint8_t h[NETFRAME_HEADER], *buf = NULL;
	long n;
	int r;

	if ((r = read_exact(fd, h, sizeof(h), cancel)) < 0)
		goto fail;
	if ((n = netframe_header_check(h, kinds, max)) < 0) {
		r = -EBADMSG;
		goto fail;
	}
	/* One byte more than asked, so that an empty payload is not NULL. */
	if (!(buf = malloc((size_t)n + 1)))
		return fs_error_set(err, -ENOMEM, "network helper frame: out of memory");
	if ((r = read_exact(fd, buf, (size_t)n, cancel)) < 0)
		goto fail;
	*ret = buf;
	*ret_len = (size_t)n;
	if (ret_kind)
		*ret_kind = (char)h[4];
	return 0;
fail:
	free(buf);
	if (r == -ECANCELED)
		return fs_error_set(err, r, "network helper: transfer abandoned");
	if (r == -EPIPE)
		return fs_error_set(err, r, "network helper: it closed the connection");
	if (r == -EBADMSG)
		return fs_error_set(err, r, "network helper: malformed frame header");
	return fs_error_set(err, r, "network helper: read: %s", strerror(-r));
}

int netframe_write(int fd, const uint8_t *buf, size_t len, struct fs_error *err)
{
	while (len > 0) {
		ssize_t k = send(fd, buf, len, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return fs_error_set(err, -EPIPE,
						    "network helper: it closed the connection");
			return fs_error_set(err, -errno, "network helper: write: %s",
					    strerror(errno));
		}
		buf += k;
		len -= (size_t)k;
	}
	return 0;
}
