/* netframe.h - the frames between the agent and its network helper.
 *
 * The agent holds the store key and the device key; it never runs
 * libcurl or TLS itself.  It hands each HTTP request to fieldsync-net
 * (agent/netproc.h), a process that holds no key, over a socketpair,
 * and gets the answer back.  Both sides check every frame here before
 * they act on it, as OpenBSD's daemons check each imsg: the helper
 * parses HQ's bytes, so the agent treats whatever comes back from it as
 * hostile.  docs/PROTOCOL.md section 9 gives the layout byte by byte:
 *
 *   header   "FSN1" | kind (1: 'R' ready, 'Q' request, 'A' answer,
 *            'C' close) |
 *            3 zero bytes | length (4, big-endian) of the payload that
 *            follows
 *   ready    (helper to agent, once, first) what confines it, as text:
 *            the helper is in its sandbox and takes requests
 *   close    no payload, no answer: the transport that made the requests
 *            is done; the helper closes its connections to HQ, as the
 *            agent's own libcurl handle did when it was freed
 *   request  connect_s (4) | stall_s (4) | url_len (2) | type_len (2) |
 *            pin_len (2) | 2 zero bytes | body_len (4) | wall_ms (8) |
 *            url | content type | pin | body
 *   answer   result (4, signed) | status (2) | 2 zero bytes |
 *            retry_after (4) | error_len (2) | checkpoint_len (2) |
 *            body_len (4) | error | checkpoint | body
 *
 * Every length is checked against its limit below and the lengths must
 * add up to the payload exactly; the text fields are printable ASCII.
 * Anything else is -EBADMSG, and the agent then stops the helper.
 *
 * Pure functions, no state: thread-safe.  Errors are negative codes with
 * err naming what was wrong (never the bytes: a body may be a token).
 */
#ifndef FS_NETFRAME_H
#define FS_NETFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "agent/hqlink.h"
#include "crypto/fserr.h"
#include "sync/downset.h"

#define NETFRAME_HEADER 12
#define NETFRAME_TYPE_MAX 64
#define NETFRAME_ERROR_MAX (sizeof(((struct fs_error *)0)->msg) - 1)
/* A request body is a sealed change set at most, or smaller JSON. */
#define NETFRAME_BODY_MAX (1024 * 1024)
#define NETFRAME_REQUEST_FIXED 28
#define NETFRAME_REQUEST_MAX                                                                       \
	(NETFRAME_REQUEST_FIXED + HQLINK_URL_MAX + NETFRAME_TYPE_MAX + HQLINK_PIN_MAX +            \
	 NETFRAME_BODY_MAX)
#define NETFRAME_ANSWER_MAX                                                                        \
	(20 + NETFRAME_ERROR_MAX + NETFRAME_CHECKPOINT_MAX + HQLINK_RESPONSE_MAX)
/* hqlink keeps an overlong checkpoint header cut one byte past the limit,
 * so that the pull refuses it by name; the frame carries it as is. */
#define NETFRAME_CHECKPOINT_MAX (DOWNSET_CHECKPOINT_MAX + 1)

/* One request, as the transport seam (hqlink.h) takes it. */
struct netframe_request {
	const char *url, *content_type, *tls_pin; /* tls_pin "" when none */
	const uint8_t *body;
	size_t len;
	uint32_t connect_s, stall_s; /* 0: the transport's default */
	/* The agent's wall clock for the Fieldsync-Time header: the device's
	 * time is the agent's, whatever the helper's process sees. */
	uint64_t wall_ms;
};

/* Encode q into a malloc'd frame (*ret, *ret_len).  -FS_ELIMIT when a
 * field is over its limit, -EINVAL for text that is not printable. */
int netframe_request_encode(const struct netframe_request *q, uint8_t **ret, size_t *ret_len,
			    struct fs_error *err) FS_WUR;

/* A decoded request: the strings copied out of the frame, NUL-terminated;
 * q.body points into the payload, which must outlive it. */
struct netframe_request_buf {
	struct netframe_request q;
	char url[HQLINK_URL_MAX], content_type[NETFRAME_TYPE_MAX + 1], tls_pin[HQLINK_PIN_MAX];
};
/* Check and decode a request's payload (the bytes after the header). */
int netframe_request_decode(const uint8_t *p, size_t len, struct netframe_request_buf *ret,
			    struct fs_error *err) FS_WUR;

/* Encode an answer: result 0 with the response r, or a negative code
 * with the message e->msg (r ignored). */
int netframe_answer_encode(int result, const struct hqlink_response *r, const struct fs_error *e,
			   uint8_t **ret, size_t *ret_len) FS_WUR;

/* Check and decode an answer's payload.  Returns the helper's result:
 * 0 with *ret filled (body and checkpoint malloc'd), or one of hqlink.h's
 * transport codes with err holding the helper's message; -EBADMSG when
 * the frame is malformed. */
int netframe_answer_decode(const uint8_t *p, size_t len, struct hqlink_response *ret,
			   struct fs_error *err) FS_WUR;

#define NETFRAME_REQUEST 'Q'
#define NETFRAME_ANSWER 'A'
#define NETFRAME_CLOSE 'C'
#define NETFRAME_READY 'R'
#define NETFRAME_READY_MAX 256

/* The ready frame: text (printable, at most NETFRAME_READY_MAX bytes). */
int netframe_ready_encode(const char *text, uint8_t **ret, size_t *ret_len) FS_WUR;
/* Check a ready frame's payload and copy its text into out (cap bytes). */
int netframe_ready_decode(const uint8_t *p, size_t len, char *out, size_t cap) FS_WUR;

/* Check a header: the magic, a kind among kinds, zero bytes and a payload
 * length of at most max (0 for a close).  Returns the payload length, or
 * -EBADMSG. */
long netframe_header_check(const uint8_t h[NETFRAME_HEADER], const char *kinds, size_t max);

/* The close frame, a header alone. */
int netframe_close_encode(uint8_t out[NETFRAME_HEADER]);

/* Read one frame of one of the kinds from fd (blocking): header, then
 * payload into a malloc'd buffer; its kind in *ret_kind (may be NULL).
 * When cancel is not NULL, looks at it at least once a second while
 * waiting and returns -ECANCELED once it is set.  -EPIPE at end of file,
 * -EBADMSG for a bad header. */
int netframe_read(int fd, const char *kinds, size_t max, const _Atomic int *cancel, uint8_t **ret,
		  size_t *ret_len, char *ret_kind, struct fs_error *err) FS_WUR;

/* Write all of buf to fd; -EPIPE when the peer is gone (no SIGPIPE). */
int netframe_write(int fd, const uint8_t *buf, size_t len, struct fs_error *err) FS_WUR;

#endif
