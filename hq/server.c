/* server.c - libmicrohttpd front end: routing, size caps, overload,
 * JSON answers; the work is in ingest.c and hqenroll.c.
 *
 * Sections: state; answers; endpoints; the access handler; start/stop.
 */
#include "hq/server.h"
#include "hq/audit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sodium.h>

#include "crypto/bytes.h"
#include "crypto/secmem.h"
#include "hq/downsync.h"
#include "hq/health.h"
#include "hq/metrics.h"
#include "hq/hqsql.h"
#include "hq/hqpool.h"
#include "hq/hqenroll.h"
#include "hq/ingest.h"
#include "hq/upload.h"
#include "sync/filewire.h"
#include "sync/changeset.h"
#include "sync/downset.h"
#include "sync/log.h"
#include "web/listen.h"
#include "web/request.h"

/* ---- state ------------------------------------------------------------- */

/* Requests per peer address, for the endpoints anyone may call
 * (enrolment, proofs): a token bucket of `rate` requests, refilled at
 * `rate` a minute.  Addresses hash (keyed, so nobody can aim at
 * another's bucket) into a fixed table: memory does not grow with the
 * number of peers. */
#define SERVER_LIMIT_BUCKETS 1024
/* Refused enrolments audited per minute, from all addresses: this many
 * times [server] enroll_rate. */
#define SERVER_AUDIT_REFUSALS_FACTOR 6
/* Pushes one device id may have in the reserved slots at once; a device
 * pushes its sets one after another. */
#define SERVER_DEVICE_RESERVED 1

struct bucket {
	uint64_t at_ms;	 /* monotonic time the tokens were last counted; 0: unused */
	unsigned tokens; /* requests left */
	int reported;	 /* the refusals in a row since it ran dry were reported */
};

struct limiter {
	unsigned rate;	      /* burst, and per minute */
	pthread_mutex_t lock; /* guards buckets */
	struct bucket buckets[SERVER_LIMIT_BUCKETS];
	uint8_t key[crypto_shorthash_KEYBYTES];
};

struct server {
	struct MHD_Daemon *mhd;
	const struct hq_config *cfg;
	const struct identity *hq;
	const struct hq_forms *forms;
	atomic_uint inflight;	 /* requests between first call and completion */
	atomic_uint connections; /* open connections (on_connection) */
	char *tls_cert;		 /* PEM, NUL-terminated; NULL without TLS */
	char *tls_key;		 /* PEM in secure memory; NULL without TLS */
	uint16_t port;
	struct limiter enroll_limit; /* enrolment attempts per address */
	struct limiter proof_limit;  /* proof requests per address */
	struct limiter audit_limit;  /* refused enrolments audited, from all addresses */
	/* Pushes in flight per device id (keyed hash): each id may take at
	 * most SERVER_DEVICE_RESERVED of the reserved slots, so someone who
	 * knows a device id cannot take them all. */
	atomic_uint dev_inflight[SERVER_LIMIT_BUCKETS];
	uint8_t dev_key[crypto_shorthash_KEYBYTES];
	struct hqpool *pool;   /* database connections between requests */
	struct hqfiles *files; /* attached files (hq/files.h) */
};

enum endpoint { EP_HEALTH, EP_ENROLL, EP_CHANGESETS, EP_CONSISTENCY, EP_PULL, EP_STATUS, EP_FILES };

struct request {
	enum endpoint ep;
	uint8_t *body; /* received bytes, at most limit */
	size_t len, cap;
	size_t limit;	     /* cap for this endpoint */
	int by_device;	     /* admitted once the body names its device */
	int answered;	     /* a response was queued */
	int admitted;	     /* holds a request slot (s->inflight) */
	unsigned dev_slot;   /* holds one of its device's reserved places: index + 1 */
	int busy;	     /* refused a slot mid-upload: drain, then 503 */
	int overflow;	     /* a body without Content-Length passed limit */
	size_t discarded;    /* bytes received since, kept for nothing */
	uint64_t started_ms; /* HQ's clock when the headers arrived */
	uint64_t mono_ms;    /* the same on the monotonic clock: upload rate */
};

/* ---- answers ----------------------------------------------------------- */

/* As retry_after: close the connection after the answer, with no
 * Retry-After (a request whose framing cannot be trusted). */
static const char CLOSE_AFTER[] = "";

/* Queue body (malloc'd, consumed; len bytes, may be 0) of type ctype. */
/* checkpoint, when not NULL: the Fieldsync-Checkpoint header's value. */
static enum MHD_Result send_body(struct MHD_Connection *conn, unsigned status, void *body,
				 size_t len, const char *ctype, const char *retry_after,
				 const char *checkpoint)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	const struct server *s = ci ? ci->socket_context : NULL;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	/* Connections are limited (server_start), and an idle keep-alive one
	 * holds its slot until SERVER_TIMEOUT_S: under load, newcomers then
	 * waited unanswered in the listen backlog, with no 503, until their
	 * own timeouts.  So close after answering when more connections are
	 * open than requests may be in progress, and always after a 503: that
	 * client comes back after Retry-After anyway.  A device pushing its
	 * sets one after another keeps its connection while HQ is not busy. */
	int close_after = retry_after || (s && atomic_load(&s->connections) > s->cfg->max_inflight);

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if ((ctype &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES) ||
	    (retry_after && retry_after != CLOSE_AFTER &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after) != MHD_YES) ||
	    (checkpoint &&
	     MHD_add_response_header(resp, DOWNSET_CHECKPOINT_HEADER, checkpoint) != MHD_YES) ||
	    (close_after &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, resp);
	metrics_response(status);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, char *text,
				 const char *retry_after)
{
	return send_body(conn, status, text, strlen(text), "application/json", retry_after, NULL);
}

/* Queue o (consumed) as the JSON answer. */
static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, cJSON *o,
				 const char *retry_after)
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	char *copy = NULL;

	cJSON_Delete(o);
	/* MHD frees with free(); cJSON may use another allocator. */
	if (text)
		copy = strdup(text);
	cJSON_free(text);
	if (!copy)
		return MHD_NO;
	return send_text(conn, status, copy, retry_after);
}

/* {"error": code, "message": message} plus extra (consumed, may be NULL). */
static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *code,
				  const char *message, cJSON *extra, const char *retry_after)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "error", code) ||
	    !cJSON_AddStringToObject(o, "message", message)) {
		cJSON_Delete(o);
		cJSON_Delete(extra);
		return MHD_NO;
	}
	/* Extra members follow error and message. */
	while (extra && extra->child) {
		cJSON *item = extra->child;
		const char *name = item->string;

		cJSON_DetachItemViaPointer(extra, item);
		cJSON_AddItemToObject(o, name, item);
		/* AddItemToObject copied the name; the detached item's own is freed. */
	}
	cJSON_Delete(extra);
	return send_json(conn, status, o, retry_after);
}

static enum MHD_Result send_too_large(struct MHD_Connection *conn, struct request *rq)
{
	cJSON *extra = cJSON_CreateObject();

	rq->answered = 1;
	if (!extra || !cJSON_AddNumberToObject(extra, "limit", (double)rq->limit)) {
		cJSON_Delete(extra);
		return MHD_NO;
	}
	return send_error(conn, 413, "too_large", "the body is larger than this endpoint accepts",
			  extra, NULL);
}

static enum MHD_Result send_internal(struct MHD_Connection *conn, const char *what,
				     const struct fs_error *err)
{
	log_msg(LOG_ERR, "%s: %s", what, err->msg[0] ? err->msg : fs_strerror(err->code));
	/* A database busy with other writers is load, not a fault: the
	 * client should come back, as PROTOCOL.md promises for overload. */
	if (err->code == -EBUSY)
		return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
				  "HQ is busy; retry after the time in Retry-After", NULL,
				  SERVER_RETRY_AFTER_S);
	/* So is a full disk, for the device: nothing was stored, and the set
	 * goes through once an administrator makes room. */
	if (err->code == -ENOSPC)
		return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_storage",
				  "HQ's disk is full; retry after the time in Retry-After", NULL,
				  SERVER_RETRY_AFTER_S);
	/* And so is a database server that went away or answered too slowly
	 * (PostgreSQL, hq/pgdb.h): its transaction died with it, nothing of
	 * the request was stored, and the device keeps its set. */
	if (err->code == -EHOSTUNREACH || err->code == -ETIMEDOUT)
		return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
				  "HQ's database is unavailable; retry after the time in "
				  "Retry-After",
				  NULL, SERVER_RETRY_AFTER_S);
	return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
			  "HQ could not process the request; try again later", NULL, NULL);
}

/* ---- endpoints ---------------------------------------------------------- */

static enum MHD_Result do_health(struct MHD_Connection *conn)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "status", "ok") ||
	    !cJSON_AddStringToObject(o, "version", FS_VERSION)) {
		cJSON_Delete(o);
		return MHD_NO;
	}
	return send_json(conn, MHD_HTTP_OK, o, NULL);
}

/* Header name as a plain decimal number (digits only) into *ret; -1 when
 * absent or anything else. */
static int header_u64(struct MHD_Connection *conn, const char *name, uint64_t *ret)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
	unsigned long long n;
	char *end;

	if (!v || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end)
		return -1;
	*ret = n;
	return 0;
}

/* The device's clock from the Fieldsync-Time header (Unix ms), or 0 when
 * absent or outside the 48-bit HLC range. */
static uint64_t device_time(struct MHD_Connection *conn)
{
	uint64_t ms;

	return header_u64(conn, "Fieldsync-Time", &ms) < 0 || ms >= (1ULL << 48) ? 0 : ms;
}

/* 200 body: {"receipt", "seq", "merged", "quarantined", "hq_time",
 * "changeset_version" and, when skewed, "clock_skew_ms"}; moves
 * res->quarantined into it.  hq_time is HQ's clock when the request's
 * headers arrived, so that a slow upload is not measured as clock skew.
 * changeset_version is the version devices are to write from now on. */
static cJSON *changeset_answer(struct ingest_result *res, uint64_t hq_time, unsigned version)
{
	size_t n = sodium_base64_ENCODED_LEN(res->receipt_len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(n);
	cJSON *o = cJSON_CreateObject();

	if (!b64 || !o)
		goto fail;
	sodium_bin2base64(b64, n, res->receipt, res->receipt_len, sodium_base64_VARIANT_ORIGINAL);
	if (!cJSON_AddStringToObject(o, "receipt", b64) ||
	    !cJSON_AddNumberToObject(o, "seq", (double)res->seq) ||
	    !cJSON_AddNumberToObject(o, "merged", res->merged))
		goto fail;
	cJSON_AddItemToObject(o, "quarantined", res->quarantined);
	res->quarantined = NULL;
	/* HQ's clock, so the device can measure its own skew (the receipt's
	 * time is the first acceptance, which a duplicate repeats). */
	if (!cJSON_AddNumberToObject(o, "hq_time", (double)hq_time) ||
	    !cJSON_AddNumberToObject(o, "changeset_version", version) ||
	    (res->skewed &&
	     !cJSON_AddNumberToObject(o, "clock_skew_ms", (double)res->clock_skew_ms)))
		goto fail;
	free(b64);
	return o;
fail:
	free(b64);
	cJSON_Delete(o);
	return NULL;
}

/* Sign a checkpoint when one is due after a write to the log; the
 * request is done either way, so a failure is logged, not answered. */
static void checkpoint_if_due(const struct server *s, struct hqsql *db)
{
	struct fs_error cerr = { 0 };

	if (audit_checkpoint(db, s->hq, &s->cfg->audit, hlc_wall_ms(), 0, NULL, &cerr) < 0)
		log_msg(LOG_ERR, "audit checkpoint: %s", cerr.msg);
}

/* The latest checkpoint note in base64 (malloc'd), for a header: the
 * note has line breaks and UTF-8.  NULL with r 0 when there is none. */
static int checkpoint_b64(struct hqsql *db, char **ret)
{
	struct fs_error err = { 0 };
	uint64_t size;
	char *note = NULL;
	int r = audit_latest(db, &note, &size, &err);
	size_t cap;

	*ret = NULL;
	if (r < 0 || !note)
		return r;
	cap = sodium_base64_encoded_len(strlen(note), sodium_base64_VARIANT_ORIGINAL);
	if ((*ret = malloc(cap)))
		sodium_bin2base64(*ret, cap, (const unsigned char *)note, strlen(note),
				  sodium_base64_VARIANT_ORIGINAL);
	else
		r = -ENOMEM;
	free(note);
	return r;
}

/* Add the latest checkpoint note to o, when there is one. */
static int add_checkpoint(struct hqsql *db, cJSON *o)
{
	struct fs_error err = { 0 };
	uint64_t size;
	char *note = NULL;
	int r = audit_latest(db, &note, &size, &err);

	if (r == 0 && note && !cJSON_AddStringToObject(o, "checkpoint", note))
		r = -ENOMEM;
	free(note);
	return r;
}

/* POST /v1/audit/consistency {"from": N}: the latest checkpoint and the
 * proof that it extends the tree of size N.  Public data: hashes only. */
static enum MHD_Result do_consistency(struct server *s, struct MHD_Connection *conn,
				      const struct request *rq)
{
	merkle_hash proof[MERKLE_MAX_PROOF];
	struct fs_error err = { 0 };
	cJSON *req = cJSON_ParseWithLength((const char *)rq->body, rq->len), *o = NULL, *arr;
	const cJSON *from = cJSON_GetObjectItemCaseSensitive(req, "from");
	char *note = NULL,
	     b64[sodium_base64_ENCODED_LEN(MERKLE_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	uint64_t size = 0;
	struct hqsql *db = NULL;
	size_t len = 0;
	int r;

	if (!cJSON_IsNumber(from) || from->valuedouble < 0 || from->valuedouble > 9e15 ||
	    (double)(uint64_t)from->valuedouble != from->valuedouble) {
		cJSON_Delete(req);
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
				  "expected {\"from\": tree size}", NULL, NULL);
	}
	r = hqpool_get(s->pool, &db, &err);
	if (r == 0)
		r = audit_consistency(db, (uint64_t)from->valuedouble, &note, &size, proof, &len,
				      &err);
	hqpool_put(s->pool, db);
	cJSON_Delete(req);
	if (r == -ERANGE)
		return send_error(conn, MHD_HTTP_CONFLICT, "ahead_of_log",
				  "no checkpoint of that size; this HQ's log is shorter", NULL,
				  NULL);
	if (r < 0)
		return send_internal(conn, "audit consistency", &err);
	o = cJSON_CreateObject();
	arr = o ? cJSON_AddArrayToObject(o, "proof") : NULL;
	if (!arr || !cJSON_AddNumberToObject(o, "size", (double)size) ||
	    !cJSON_AddNumberToObject(o, "hq_time", (double)rq->started_ms) ||
	    (note && !cJSON_AddStringToObject(o, "checkpoint", note)))
		goto fail;
	for (size_t i = 0; i < len; i++) {
		cJSON *h;

		sodium_bin2base64(b64, sizeof(b64), proof[i], MERKLE_HASH_BYTES,
				  sodium_base64_VARIANT_ORIGINAL);
		if (!(h = cJSON_CreateString(b64)) || !cJSON_AddItemToArray(arr, h)) {
			cJSON_Delete(h);
			goto fail;
		}
	}
	free(note);
	return send_json(conn, MHD_HTTP_OK, o, NULL);
fail:
	free(note);
	cJSON_Delete(o);
	return MHD_NO;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static enum MHD_Result do_changeset(struct server *s, struct MHD_Connection *conn,
				    const struct request *rq)
{
	struct ingest_result res = { 0 };
	uint64_t t0;
	struct fs_error err = { 0 };
	struct ingest_ctx ctx = { .hq = s->hq,
				  .forms = s->forms,
				  .wall_ms = hlc_wall_ms,
				  .device_time_ms = device_time(conn),
				  .request_ms = rq->started_ms,
				  .refuse_unbound = s->cfg->accept_unbound &&
						    !strcmp(s->cfg->accept_unbound, "no") };
	enum MHD_Result ret;
	cJSON *extra = NULL;
	int r;

	if ((r = hqpool_get(s->pool, &ctx.db, &err)) < 0) {
		hqpool_put(s->pool, ctx.db);
		return send_internal(conn, "change set", &err);
	}
	t0 = mono_us();
	if ((r = ingest_changeset(&ctx, rq->body, rq->len, &res, &err)) < 0) {
		hqpool_put(s->pool, ctx.db);
		return send_internal(conn, "change set", &err);
	}
	metrics_changeset(res.status != 200 ? METRICS_REJECTED
			  : res.duplicate   ? METRICS_DUPLICATE
					    : METRICS_ACCEPTED,
			  mono_us() - t0);
	checkpoint_if_due(s, ctx.db);
	/* Only a device that proved itself: anyone can send the header. */
	if (res.skewed && res.authenticated)
		log_msg(LOG_WARNING,
			"device %s: clock is %lld s %s of HQ's (change set seq %" PRIu64 ")",
			res.device, (long long)llabs(res.clock_skew_ms) / 1000,
			res.clock_skew_ms > 0 ? "ahead" : "behind", res.seq);
	/* Nothing may read a transaction left open by a failure above. */
	hqsql_rollback(ctx.db);
	if (res.status == 200) {
		cJSON *answer =
			changeset_answer(&res, rq->started_ms, s->cfg->device_changeset_version);

		/* The latest signed checkpoint rides with every receipt, so
		 * devices hold HQ to its history (docs/PROTOCOL.md). */
		if (answer && add_checkpoint(ctx.db, answer) < 0) {
			cJSON_Delete(answer);
			answer = NULL;
		}
		hqpool_put(s->pool, ctx.db);
		ret = send_json(conn, MHD_HTTP_OK, answer, NULL);
		ingest_result_clear(&res);
		return ret;
	}
	hqpool_put(s->pool, ctx.db);
	log_msg(LOG_NOTICE, "change set from %s seq %" PRIu64 " refused: %d %s",
		res.device[0] ? res.device : "(unparsed)", res.seq, res.status, res.error);
	if (res.expected_seq &&
	    (!(extra = cJSON_CreateObject()) ||
	     !cJSON_AddNumberToObject(extra, "expected_seq", (double)res.expected_seq))) {
		cJSON_Delete(extra);
		ingest_result_clear(&res);
		return MHD_NO;
	}
	ret = send_error(conn, (unsigned)res.status, res.error, res.message, extra, NULL);
	ingest_result_clear(&res);
	return ret;
}

/* A device asks for its next down-set (hq/downsync.h). */
static enum MHD_Result do_pull(struct server *s, struct MHD_Connection *conn,
			       const struct request *rq)
{
	struct downsync_result res = { 0 };
	struct fs_error err = { 0 };
	enum MHD_Result ret;
	cJSON *extra = NULL;
	struct hqsql *db = NULL;
	int r;

	if ((r = hqpool_get(s->pool, &db, &err)) < 0 ||
	    (r = downsync_pull(db, s->hq, s->forms, s->cfg->pull_batch, rq->body, rq->len,
			       hlc_wall_ms(), &res, &err)) < 0) {
		hqpool_put(s->pool, db);
		return send_internal(conn, "pull", &err);
	}
	if (res.status == 200 || res.status == 204) {
		void *body = res.body;
		char *note = NULL;

		/* A down-set is an audit entry, and its answer carries the
		 * latest signed checkpoint, as a receipt does: the device holds
		 * HQ to its history whichever way it talks to it. */
		if (res.status == 200 && !res.repeat)
			checkpoint_if_due(s, db);
		if (res.status == 200 && checkpoint_b64(db, &note) < 0) {
			hqpool_put(s->pool, db);
			downsync_result_clear(&res);
			return MHD_NO;
		}
		hqpool_put(s->pool, db);
		res.body = NULL;
		ret = send_body(conn, (unsigned)res.status, body, res.status == 200 ? res.len : 0,
				res.status == 200 ? "application/vnd.fieldsync.downset" : NULL,
				NULL, note);
		free(note);
		downsync_result_clear(&res);
		return ret;
	}
	hqpool_put(s->pool, db);
	if (res.status == 409 &&
	    (!(extra = cJSON_CreateObject()) ||
	     !cJSON_AddNumberToObject(extra, "expected_seq", (double)res.expected))) {
		cJSON_Delete(extra);
		downsync_result_clear(&res);
		return MHD_NO;
	}
	ret = send_error(conn, (unsigned)res.status, res.error, res.message, extra, NULL);
	downsync_result_clear(&res);
	return ret;
}

/* A device says how it is (hq/health.h): 204, or why not. */
static enum MHD_Result do_status(struct server *s, struct MHD_Connection *conn,
				 const struct request *rq)
{
	struct health_result res = { 0 };
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	int r;

	if ((r = hqpool_get(s->pool, &db, &err)) < 0 ||
	    (r = health_report(db, rq->body, rq->len, hlc_wall_ms(), &res, &err)) < 0) {
		hqpool_put(s->pool, db);
		return send_internal(conn, "status", &err);
	}
	hqpool_put(s->pool, db);
	if (res.status == 204)
		return send_body(conn, 204, NULL, 0, NULL, NULL, NULL);
	return send_error(conn, (unsigned)res.status, res.error, res.message, NULL, NULL);
}

/* A device asks which chunks of a file HQ holds, or sends one
 * (hq/upload.h). */
static enum MHD_Result do_files(struct server *s, struct MHD_Connection *conn,
				const struct request *rq)
{
	struct upload_result res = { 0 };
	struct fs_error err = { 0 };
	struct upload_ctx ctx = { .hq = s->hq,
				  .files = s->files,
				  .quota_bytes = (uint64_t)s->cfg->file_quota_mib << 20,
				  .idle_ms = (uint64_t)s->cfg->upload_idle_days * 86400000,
				  .now_ms = hlc_wall_ms() };
	enum MHD_Result ret;
	int r;

	if ((r = hqpool_get(s->pool, &ctx.db, &err)) < 0 ||
	    (r = upload_handle(&ctx, rq->body, rq->len, &res, &err)) < 0) {
		/* Nothing may read a transaction left open by a failure. */
		if (ctx.db)
			hqsql_rollback(ctx.db);
		hqpool_put(s->pool, ctx.db);
		cJSON_Delete(res.answer);
		return send_internal(conn, "file", &err);
	}
	hqpool_put(s->pool, ctx.db);
	if (res.completed)
		log_msg(LOG_INFO, "device %s: file of %" PRIu64 " bytes received", res.device,
			res.file_size);
	if (res.status == 200)
		return send_json(conn, MHD_HTTP_OK, res.answer, NULL);
	log_msg(LOG_NOTICE, "file message from %s refused: %d %s",
		res.device[0] ? res.device : "(unparsed)", res.status, res.error);
	ret = send_error(conn, (unsigned)res.status, res.error, res.message, NULL, NULL);
	return ret;
}

/* The peer's address as text ("?" when unknown).  Behind a reverse
 * proxy it is the proxy's. */
static void peer_address(struct MHD_Connection *conn, char out[INET6_ADDRSTRLEN])
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	strcpy(out, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  INET6_ADDRSTRLEN);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  out, INET6_ADDRSTRLEN);
}

/* Take one request from peer's bucket: 0, or the seconds until the next
 * one (*ret_report set on the first refusal in a row). */
static unsigned limit_take(struct limiter *l, const char *peer, int *ret_report)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t now = hlc_mono_ms(), n, refill_ms = 60000 / l->rate;
	unsigned burst = l->rate, wait = 0;
	struct bucket *b;

	crypto_shorthash(h, (const unsigned char *)peer, strlen(peer), l->key);
	b = &l->buckets[bytes_get_le(h, 4) % SERVER_LIMIT_BUCKETS];
	*ret_report = 0;
	if (refill_ms == 0)
		refill_ms = 1;
	pthread_mutex_lock(&l->lock);
	if (!b->at_ms) {
		b->at_ms = now;
		b->tokens = burst;
	}
	n = (now - b->at_ms) / refill_ms;
	b->tokens = (unsigned)(b->tokens + n > burst ? burst : b->tokens + n);
	b->at_ms = b->tokens == burst ? now : b->at_ms + n * refill_ms;
	if (b->tokens) {
		b->tokens--;
		b->reported = 0;
	} else {
		wait = (unsigned)((refill_ms - (now - b->at_ms)) / 1000 + 1);
		*ret_report = !b->reported;
		b->reported = 1;
	}
	pthread_mutex_unlock(&l->lock);
	return wait;
}

static void limiter_init(struct limiter *l, unsigned rate)
{
	l->rate = rate;
	pthread_mutex_init(&l->lock, NULL);
	randombytes_buf(l->key, sizeof(l->key));
}

/* Audit a refused enrolment, while the log's share for them lasts; past
 * it, say so on stderr once in a row. */
static void audit_refusal(struct server *s, const char *peer, const char *error)
{
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	int report;

	if (limit_take(&s->audit_limit, "*", &report)) {
		if (report)
			log_msg(LOG_WARNING,
				"more than %u refused enrolments a minute: "
				"the rest are not audited",
				s->audit_limit.rate);
		return;
	}
	if (hqpool_get(s->pool, &db, &err) < 0 ||
	    hqenroll_audit_refusal(db, hlc_wall_ms(), peer, error, &err) < 0)
		log_msg(LOG_ERR, "audit a refused enrolment: %s", err.msg);
	hqpool_put(s->pool, db);
}

/* 429 with Retry-After; the first refusal in a row is audited. */
static enum MHD_Result send_rate_limited(struct server *s, struct MHD_Connection *conn,
					 const char *peer, unsigned wait, int report)
{
	char retry[16];

	if (report)
		audit_refusal(s, peer, "rate_limited");
	if (report)
		log_msg(LOG_WARNING, "enrolment attempts from %s limited", peer);
	snprintf(retry, sizeof(retry), "%u", wait);
	return send_error(conn, 429, "rate_limited",
			  "too many enrolment attempts from this address; retry after the time "
			  "in Retry-After",
			  NULL, retry);
}

static enum MHD_Result do_enroll(struct server *s, struct MHD_Connection *conn,
				 const struct request *rq)
{
	struct hqenroll_result res = { 0 };
	struct fs_error err = { 0 };
	char peer[INET6_ADDRSTRLEN];
	struct hqsql *db = NULL;
	enum MHD_Result ret;
	int r;

	peer_address(conn, peer);
	if ((r = hqpool_get(s->pool, &db, &err)) < 0 ||
	    (r = hqenroll_device(db, s->hq, (const char *)rq->body, rq->len, hlc_wall_ms(), &res,
				 &err)) < 0) {
		hqpool_put(s->pool, db);
		return send_internal(conn, "enrolment", &err);
	}
	hqpool_put(s->pool, db);
	/* A refusal is audited with the peer's address and the reason, never
	 * the token. */
	if (res.status != 200)
		audit_refusal(s, peer, res.error);
	if (res.status == 200) {
		log_msg(LOG_INFO, "enrolled device %s",
			cJSON_GetObjectItem(res.body, "device")->valuestring);
		ret = send_json(conn, MHD_HTTP_OK, res.body, NULL);
		res.body = NULL;
	} else {
		log_msg(LOG_NOTICE, "enrolment from %s refused: %d %s", peer, res.status,
			res.error);
		ret = send_error(conn, (unsigned)res.status, res.error, res.message, NULL, NULL);
	}
	hqenroll_result_clear(&res);
	return ret;
}

/* ---- the access handler ------------------------------------------------- */

/* Route the first call of a request: 0 with rq->ep, rq->limit and
 * rq->by_device set, or -1 when the answer (404, 405) was already queued
 * into *qret.  by_device: admitted once the first bytes of the body say
 * which device sends it (admit_changeset), not before. */
static int route(struct MHD_Connection *conn, const char *url, const char *method,
		 struct request *rq, enum MHD_Result *qret)
{
	static const struct {
		const char *url, *method;
		enum endpoint ep;
		size_t limit;
		int by_device;
	} routes[] = {
		{ "/v1/health", MHD_HTTP_METHOD_GET, EP_HEALTH, 0, 0 },
		{ "/v1/enroll", MHD_HTTP_METHOD_POST, EP_ENROLL, SERVER_ENROLL_MAX, 0 },
		{ "/v1/changesets", MHD_HTTP_METHOD_POST, EP_CHANGESETS, CHANGESET_MAX_BYTES, 1 },
		{ "/v1/audit/consistency", MHD_HTTP_METHOD_POST, EP_CONSISTENCY, SERVER_ENROLL_MAX,
		  0 },
		{ "/v1/pull", MHD_HTTP_METHOD_POST, EP_PULL, SERVER_ENROLL_MAX, 1 },
		{ "/v1/status", MHD_HTTP_METHOD_POST, EP_STATUS, SERVER_ENROLL_MAX, 1 },
		{ "/v1/files", MHD_HTTP_METHOD_POST, EP_FILES, FILEWIRE_CHUNK_BYTES_MAX, 1 }
	};

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(url, routes[i].url))
			continue;
		if (strcmp(method, routes[i].method)) {
			*qret = send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
					   "this path does not take that method", NULL, NULL);
			return -1;
		}
		rq->ep = routes[i].ep;
		rq->limit = routes[i].limit;
		rq->by_device = routes[i].by_device;
		return 0;
	}
	*qret = send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint", NULL, NULL);
	return -1;
}

/* Take a request slot, or answer 503.  Slots are counted until the
 * completion callback (on_completed), whatever the answer.  Requests
 * that do not come from an enrolled device (enrolments, proofs, sets
 * naming nobody known) may fill all but cfg->reserved of them, so that
 * strangers, however many or slow, never lock the devices out. */
static int admit(struct server *s, struct request *rq, int device)
{
	unsigned limit = s->cfg->max_inflight - (device ? 0 : s->cfg->reserved);

	if (atomic_fetch_add(&s->inflight, 1) + 1 <= limit) {
		rq->admitted = 1;
		return 0;
	}
	atomic_fetch_sub(&s->inflight, 1);
	return -1;
}

static enum MHD_Result send_busy(struct MHD_Connection *conn, struct request *rq)
{
	rq->answered = 1;
	return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
			  "HQ is busy; retry after the time in Retry-After", NULL,
			  SERVER_RETRY_AFTER_S);
}

/* A change set is admitted once its first INGEST_DEVICE_PREFIX bytes
 * say which device sends it. */
static int admit_changeset(struct server *s, struct request *rq)
{
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	int known = 0;

	if (hqpool_get(s->pool, &db, &err) == 0)
		known = ingest_device_active(db, rq->body, rq->len, &err);
	hqpool_put(s->pool, db);
	/* The id is not authenticated yet, and ids are not secret: beyond
	 * its first push in flight, a device id counts as a stranger. */
	if (known > 0) {
		uint8_t h[crypto_shorthash_BYTES];
		unsigned i;

		crypto_shorthash(h, rq->body + 8, CHANGESET_DEVICE_BYTES, s->dev_key);
		i = (unsigned)(bytes_get_le(h, 4) % SERVER_LIMIT_BUCKETS);
		if (atomic_fetch_add(&s->dev_inflight[i], 1) < SERVER_DEVICE_RESERVED) {
			rq->dev_slot = i + 1;
		} else {
			atomic_fetch_sub(&s->dev_inflight[i], 1);
			known = 0;
		}
	}
	/* A database error here is only a missed reservation: the set is
	 * checked in full, with its errors answered, once it has arrived. */
	if (admit(s, rq, known > 0) == 0)
		return 0;
	if (rq->dev_slot) {
		atomic_fetch_sub(&s->dev_inflight[rq->dev_slot - 1], 1);
		rq->dev_slot = 0;
	}
	return -1;
}

static enum MHD_Result count_length_header(void *cls, enum MHD_ValueKind kind, const char *key,
					   const char *value)
{
	unsigned *n = cls;

	(void)kind;
	(void)value;
	if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH))
		n[0]++;
	else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		n[1]++;
	return MHD_YES;
}

static int ambiguous_length(struct MHD_Connection *conn)
{
	unsigned n[2] = { 0, 0 };

	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_length_header, n);
	return n[0] > 1 || (n[0] && n[1]);
}

static enum MHD_Result first_call(struct server *s, struct MHD_Connection *conn, const char *url,
				  const char *method, void **con_cls)
{
	struct request *rq = calloc(1, sizeof(*rq));
	enum MHD_Result qret;
	uint64_t declared;

	if (!rq)
		return MHD_NO;
	*con_cls = rq;
	rq->started_ms = hlc_wall_ms();
	rq->mono_ms = hlc_mono_ms();
	/* Two lengths, or a length and chunking: a proxy in front may frame
	 * the body one way and HQ the other (request smuggling). */
	if (ambiguous_length(conn)) {
		rq->answered = 1;
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
				  "ambiguous body length: Content-Length given twice, or with "
				  "Transfer-Encoding",
				  NULL, CLOSE_AFTER);
	}
	/* Answers that do no work (health, 404, 405) take no slot: a full
	 * server still says it is alive. */
	if (route(conn, url, method, rq, &qret) < 0) {
		rq->answered = 1;
		return qret;
	}
	if (rq->ep == EP_HEALTH) {
		rq->answered = 1;
		return do_health(conn);
	}
	if (rq->ep == EP_ENROLL) {
		char peer[INET6_ADDRSTRLEN], key[WEB_PEER_KEY_MAX];
		unsigned wait;
		int report;

		peer_address(conn, peer);
		web_peer_key(conn, key);
		if ((wait = limit_take(&s->enroll_limit, key, &report))) {
			rq->answered = 1;
			return send_rate_limited(s, conn, peer, wait, report);
		}
	}
	/* A proof reads the audit tree: cheap now (O(log^2 n)), and limited
	 * per address all the same, since anyone may ask. */
	if (rq->ep == EP_CONSISTENCY) {
		char peer[WEB_PEER_KEY_MAX], retry[16];
		unsigned wait;
		int report;

		web_peer_key(conn, peer);
		if ((wait = limit_take(&s->proof_limit, peer, &report))) {
			if (report)
				log_msg(LOG_WARNING, "proof requests from %s limited", peer);
			rq->answered = 1;
			snprintf(retry, sizeof(retry), "%u", wait);
			return send_error(conn, 429, "rate_limited",
					  "too many proof requests from this address; retry after "
					  "the time in Retry-After",
					  NULL, retry);
		}
	}
	if (!rq->by_device && admit(s, rq, 0) < 0)
		return send_busy(conn, rq);
	/* Refused before a byte of the body is read. */
	if (header_u64(conn, MHD_HTTP_HEADER_CONTENT_LENGTH, &declared) == 0 &&
	    declared > rq->limit)
		return send_too_large(conn, rq);
	return MHD_YES;
}

/* Is the upload too slow?  After SERVER_UPLOAD_GRACE_S, a body must
 * have averaged cfg->min_upload_rate bytes a second: libmicrohttpd's
 * timeout restarts with every byte, so without this one byte every few
 * seconds would hold a request slot for hours. */
static int too_slow(const struct server *s, const struct request *rq, size_t received)
{
	uint64_t elapsed = hlc_mono_ms() - rq->mono_ms, grace = SERVER_UPLOAD_GRACE_S * 1000ULL;

	return elapsed > grace &&
	       (uint64_t)received * 1000 < (elapsed - grace) * s->cfg->min_upload_rate;
}

static int append(struct request *rq, const char *data, size_t n)
{
	if (n > rq->limit - rq->len)
		return -FS_ELIMIT;
	if (rq->len + n > rq->cap) {
		size_t cap = rq->cap ? rq->cap : 4096;
		uint8_t *p;

		while (cap < rq->len + n)
			cap *= 2;
		if (cap > rq->limit)
			cap = rq->limit;
		if (!(p = realloc(rq->body, cap)))
			return -ENOMEM;
		rq->body = p;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, n);
	rq->len += n;
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct server *s = cls;
	struct request *rq = *con_cls;
	int r;

	(void)version;
	if (!rq)
		return first_call(s, conn, url, method, con_cls);
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (too_slow(s, rq, rq->len + rq->discarded + n)) {
			log_msg(LOG_NOTICE,
				"upload slower than %u bytes/s: connection "
				"closed",
				s->cfg->min_upload_rate);
			return MHD_NO;
		}
		if (rq->answered)
			return MHD_YES;
		if (rq->overflow) {
			/* Past the cap (a chunked body): count, keep nothing, and
			 * close the connection if it goes on for too long. */
			rq->discarded += n;
			return rq->discarded > SERVER_DISCARD_FACTOR * rq->limit ? MHD_NO : MHD_YES;
		}
		if ((r = append(rq, upload_data, n)) == -FS_ELIMIT) {
			rq->overflow = 1;
			rq->discarded = rq->len + n;
			free(rq->body);
			rq->body = NULL;
			rq->len = rq->cap = 0;
			return MHD_YES;
		}
		if (r < 0)
			return MHD_NO;
		if (!rq->admitted && rq->len >= INGEST_DEVICE_PREFIX &&
		    admit_changeset(s, rq) < 0) {
			/* libmicrohttpd answers only once the body is in:
			 * drain it, keeping nothing and holding no slot. */
			rq->busy = rq->overflow = 1;
			rq->discarded = rq->len;
			free(rq->body);
			rq->body = NULL;
			rq->len = rq->cap = 0;
		}
		return MHD_YES;
	}
	if (rq->answered)
		return MHD_YES;
	if (rq->busy)
		return send_busy(conn, rq);
	if (rq->overflow)
		return send_too_large(conn, rq);
	/* A body too short to name a device: refused by the full check. */
	if (!rq->admitted && admit(s, rq, 0) < 0)
		return send_busy(conn, rq);
	rq->answered = 1;
	if (rq->ep == EP_ENROLL)
		return do_enroll(s, conn, rq);
	if (rq->ep == EP_CONSISTENCY)
		return do_consistency(s, conn, rq);
	if (rq->ep == EP_PULL)
		return do_pull(s, conn, rq);
	if (rq->ep == EP_STATUS)
		return do_status(s, conn, rq);
	if (rq->ep == EP_FILES)
		return do_files(s, conn, rq);
	return do_changeset(s, conn, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct request *rq = *con_cls;

	(void)conn;
	(void)toe;
	if (!rq)
		return;
	if (rq->admitted)
		atomic_fetch_sub(&s->inflight, 1);
	if (rq->dev_slot)
		atomic_fetch_sub(&s->dev_inflight[rq->dev_slot - 1], 1);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
}

/* Count open connections, and make the server reachable from a
 * connection (send_text) through its socket context. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct server *s = cls;

	(void)conn;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = s;
		atomic_fetch_add(&s->connections, 1);
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		atomic_fetch_sub(&s->connections, 1);
	}
}

/* ---- start/stop --------------------------------------------------------- */

int server_read_pem(const char *path, int secret, char **ret, struct fs_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int r = 0;

	if (fd < 0)
		return fs_error_set(err, -errno, "TLS file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > SERVER_PEM_MAX) {
		r = fs_error_set(err, -FS_EFORMAT,
				 "TLS file %s: not a regular file of 1 byte to "
				 "1 MiB",
				 path);
		goto out;
	}
	buf = secret ? secmem_alloc((size_t)st.st_size + 1) : malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = fs_error_set(err, -ENOMEM, "TLS file %s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = fs_error_set(err, n < 0 ? -errno : -EIO, "TLS file %s: read failed",
					 path);
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*ret = buf;
	buf = NULL;
out:
	if (buf && secret)
		secmem_free(buf);
	else
		free(buf);
	close(fd);
	return r;
}

static int server_tls_load(struct server *s, struct fs_error *err)
{
	int r;

	if (!s->cfg->tls_cert)
		return 0;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return fs_error_set(err, -FS_EUSAGE,
				    "TLS is configured but libmicrohttpd was "
				    "built without TLS");
	if ((r = server_read_pem(s->cfg->tls_cert, 0, &s->tls_cert, err)) < 0 ||
	    (r = server_read_pem(s->cfg->tls_key, 1, &s->tls_key, err)) < 0)
		return r;
	return 0;
}

int server_start(const struct hq_config *cfg, const struct identity *hq,
		 const struct hq_forms *forms, struct server **ret, struct fs_error *err)
{
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_storage addr;
	socklen_t alen;
	/* MHD_USE_ITC: without it MHD_stop_daemon() wakes the workers only by
	 * shutting the listening socket, and a worker at its share of the
	 * connection limit no longer polls that socket: it slept out its
	 * idle connections' timeout (SERVER_TIMEOUT_S) before HQ could exit. */
	unsigned flags =
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	const union MHD_DaemonInfo *info;
	int loopback = 0, r;

	if (!s)
		return fs_error_set(err, -ENOMEM, "out of memory");
	s->cfg = cfg;
	s->hq = hq;
	s->forms = forms;
	for (size_t i = 0; i < SERVER_LIMIT_BUCKETS; i++)
		atomic_init(&s->dev_inflight[i], 0);
	randombytes_buf(s->dev_key, sizeof(s->dev_key));
	limiter_init(&s->enroll_limit, cfg->enroll_rate);
	limiter_init(&s->proof_limit, cfg->proof_rate);
	/* Refusals audited, from every address together: bounds how fast
	 * anyone holding many addresses can grow the append-only log. */
	limiter_init(&s->audit_limit, cfg->enroll_rate * SERVER_AUDIT_REFUSALS_FACTOR);
	atomic_init(&s->inflight, 0);
	atomic_init(&s->connections, 0);
	/* As many idle connections as there are threads to use them. */
	if ((r = hqpool_new(cfg, cfg->threads, &s->pool, err)) < 0 ||
	    (r = hqfiles_open(cfg->data_dir, hq, &s->files, err)) < 0 ||
	    (r = web_listen_parse(cfg->listen, &addr, &alen, &loopback, err)) < 0 ||
	    (r = server_tls_load(s, err)) < 0)
		goto out;
	if (!s->tls_cert && !loopback) {
		r = fs_error_set(err, -FS_EUSAGE,
				 "listen %s: plain HTTP is allowed only on a "
				 "loopback address; configure tls_cert and tls_key",
				 cfg->listen);
		goto out;
	}
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (s->tls_cert)
		flags |= MHD_USE_TLS;
	s->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, MHD_OPTION_CONNECTION_LIMIT,
		cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_peer,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVER_TIMEOUT_S,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
		on_connection, s, s->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
		s->tls_cert, MHD_OPTION_HTTPS_MEM_KEY, s->tls_key, MHD_OPTION_END);
	if (!s->mhd) {
		r = fs_error_set(err, -EADDRINUSE,
				 "listen %s: could not start the server (address "
				 "in use, or a bad TLS certificate or key)",
				 cfg->listen);
		goto out;
	}
	info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	*ret = s;
	s = NULL;
out:
	server_stop(s);
	return r;
}

uint16_t server_port(const struct server *s)
{
	return s->port;
}

struct server *server_stop(struct server *s)
{
	if (!s)
		return NULL;
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	/* After the daemon: no request holds a connection any more. */
	hqpool_free(s->pool);
	hqfiles_close(s->files);
	free(s->tls_cert);
	secmem_free(s->tls_key);
	pthread_mutex_destroy(&s->enroll_limit.lock);
	pthread_mutex_destroy(&s->proof_limit.lock);
	pthread_mutex_destroy(&s->audit_limit.lock);
	free(s);
	return NULL;
}
