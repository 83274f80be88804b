/* push.c - the libcurl transport, and pushing change sets with receipts.
 *
 * Sections: responses and JSON helpers; the libcurl transport; reading
 * outgoing; one set; the loop.
 */
#include "agent/push.h"
#include "agent/hqhistory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "sync/changeset.h"
#include "sync/downset.h"
#include "sync/receipt.h"

/* Statement slots in the store's cache (0-1 store.c, 2-15 records.c,
 * 16-19 pack.c). */
enum {
	SLOT_NEXT_SET = 20,
	SLOT_STORE_RECEIPT,
	SLOT_HAVE_SEQ,
	SLOT_COUNT_SETS,
	SLOT_BACKLOG = 29, /* 24..28: enroll.c, synclog.c */
	SLOT_DROP_ACKED = 31,
	SLOT_QUARANTINED = 47,
};

/* How often one push may rewind to an earlier sequence HQ asks for. */
#define PUSH_MAX_REWINDS 3

/* ---- responses and JSON helpers ----------------------------------------- */

void push_response_clear(struct push_response *r)
{
	if (!r)
		return;
	free(r->body);
	free(r->checkpoint);
	memset(r, 0, sizeof(*r));
}

int push_json_base64(const cJSON *o, const char *name, uint8_t *out, size_t cap, size_t want,
                     size_t *ret_len)
{
	static const int variants[] = {sodium_base64_VARIANT_ORIGINAL,
	                               sodium_base64_VARIANT_ORIGINAL_NO_PADDING};
	const cJSON *v = name ? cJSON_GetObjectItemCaseSensitive(o, name) : o;
	size_t n = 0;

	if (!cJSON_IsString(v) || !v->valuestring)
		return -EPROTO;
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		const char *end = NULL;

		if (sodium_base642bin(out, cap, v->valuestring, strlen(v->valuestring), NULL, &n,
		                      &end, variants[i]) == 0 &&
		    *end == '\0') {
			if (want && n != want)
				return -EPROTO;
			if (ret_len)
				*ret_len = n;
			return 0;
		}
	}
	return -EPROTO;
}

/* Copy printable ASCII only: HQ's text goes into our messages. */
static void safe_copy(char *out, size_t cap, const char *in)
{
	size_t j = 0;

	for (size_t i = 0; in && in[i] && j + 1 < cap; i++)
		out[j++] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
	out[j] = '\0';
}

void push_hq_error(const struct push_response *r, char *out, size_t cap)
{
	char code[48] = "", msg[128] = "";
	cJSON *o = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "error");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");

	if (cJSON_IsString(c))
		safe_copy(code, sizeof(code), c->valuestring);
	if (cJSON_IsString(m))
		safe_copy(msg, sizeof(msg), m->valuestring);
	if (code[0] || msg[0])
		snprintf(out, cap, "%s%s%s", code, code[0] && msg[0] ? ": " : "", msg);
	else
		snprintf(out, cap, "no error description");
	cJSON_Delete(o);
}

/* ---- the libcurl transport ------------------------------------------------ */

struct curl_transport {
	struct push_transport base; /* first: the seam */
	CURL *easy;                 /* reused, so connections are kept */
	const _Atomic int *cancel;  /* abandon the transfer when non-zero */
	long connect_s, stall_s;    /* timeouts */
};

/* libcurl calls this at least once a second during a transfer. */
static int curl_xferinfo(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
	const struct curl_transport *ct = ctx;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return ct->cancel && *ct->cancel ? 1 : 0;
}

void push_transport_curl_cancel_on(struct push_transport *t, const _Atomic int *flag)
{
	((struct curl_transport *)t)->cancel = flag;
}

void push_transport_curl_timeouts(struct push_transport *t, unsigned connect_s, unsigned stall_s)
{
	struct curl_transport *ct = (struct curl_transport *)t;

	if (connect_s)
		ct->connect_s = (long)connect_s;
	if (stall_s)
		ct->stall_s = (long)stall_s;
}

struct body_sink {
	char *buf;
	size_t len, cap;
	int overflow; /* the answer passed PUSH_RESPONSE_MAX */
};

static size_t sink_write(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct body_sink *b = ctx;
	size_t n = size * nmemb;

	if (n > PUSH_RESPONSE_MAX - b->len) {
		b->overflow = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->buf, cap);
		if (!p)
			return 0;
		b->buf = p;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

static int curl_fail(CURLcode rc, const char *url, const char *detail, const char *tls_pin,
                     const struct body_sink *sink, struct fs_error *err)
{
	const char *why = detail && detail[0] ? detail : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return fs_error_set(err, -FS_EKEY,
		                    "HQ at %s: TLS public key does not match the pin "
		                    "from enrolment (%s); not sending anything",
		                    url, tls_pin ? tls_pin : "none");
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return fs_error_set(err, -FS_EKEY, "HQ at %s: TLS certificate not trusted: %s", url,
		                    why);
	case CURLE_WRITE_ERROR:
		if (sink->overflow)
			return fs_error_set(err, -FS_ELIMIT,
			                    "HQ at %s: answer larger than %d bytes", url,
			                    PUSH_RESPONSE_MAX);
		return fs_error_set(err, -ENOMEM, "HQ at %s: out of memory reading the answer",
		                    url);
	case CURLE_OUT_OF_MEMORY:
		return fs_error_set(err, -ENOMEM, "HQ at %s: out of memory", url);
	case CURLE_ABORTED_BY_CALLBACK:
		return fs_error_set(err, -ECANCELED, "HQ at %s: transfer abandoned", url);
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return fs_error_set(err, -FS_EUSAGE, "HQ URL %s: %s", url, why);
	default:
		return fs_error_set(err, -EHOSTUNREACH, "HQ unreachable at %s: %s", url, why);
	}
}

static int curl_post(struct push_transport *t, const char *url, const char *content_type,
                     const uint8_t *body, size_t len, const char *tls_pin,
                     struct push_response *ret, struct fs_error *err)
{
	struct curl_transport *ct = (struct curl_transport *)t;
	char errbuf[CURL_ERROR_SIZE] = "", ctype[128], now[64];
	struct curl_slist *headers = NULL, *h;
	struct body_sink sink = {0};
	CURL *e = ct->easy;
	CURLcode rc = CURLE_OK;
	long status = 0;
	int r = 0;

	snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
	/* Our wall clock, so HQ can audit a device whose clock is wrong
	 * (docs/PROTOCOL.md); it orders nothing. */
	snprintf(now, sizeof(now), "Fieldsync-Time: %llu", (unsigned long long)hlc_wall_ms());
	headers = curl_slist_append(NULL, ctype);
	h = headers ? curl_slist_append(headers, "Expect:") : NULL;
	h = h ? curl_slist_append(headers, now) : NULL;
	if (!h) {
		r = fs_error_set(err, -ENOMEM, "HQ at %s: out of memory", url);
		goto out;
	}
	headers = h;
	curl_easy_reset(e);
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(e, opt, val);                                        \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "https,http");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, (const char *)body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_CONNECTTIMEOUT, ct->connect_s);
	SET(CURLOPT_LOW_SPEED_LIMIT, (long)PUSH_LOW_SPEED_BYTES);
	SET(CURLOPT_LOW_SPEED_TIME, ct->stall_s);
	SET(CURLOPT_WRITEFUNCTION, sink_write);
	SET(CURLOPT_WRITEDATA, &sink);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_USERAGENT, "fieldsync/" FS_VERSION);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, curl_xferinfo);
	SET(CURLOPT_XFERINFODATA, ct);
	/* Plain http is for a loopback HQ only; an http_proxy from the
	 * environment must not carry it (and an enrolment token) off the
	 * machine in clear.  https may use https_proxy: it stays encrypted. */
	if (!strncmp(url, "http://", 7))
		SET(CURLOPT_NOPROXY, "*");
	if (tls_pin && tls_pin[0]) {
		/* The pin from the token is the trust anchor. */
		SET(CURLOPT_PINNEDPUBLICKEY, tls_pin);
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
#undef SET
	if (rc != CURLE_OK) {
		r = fs_error_set(err, -EPROTO, "HQ at %s: libcurl option: %s", url,
		                 curl_easy_strerror(rc));
		goto out;
	}
	rc = curl_easy_perform(e);
	if (rc != CURLE_OK) {
		r = curl_fail(rc, url, errbuf, tls_pin, &sink, err);
		goto out;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	ret->status = status;
	{
		curl_off_t after = 0;

		if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
			ret->retry_after = after > 86400 ? 86400 : (long)after;
	}
	{
		struct curl_header *hd = NULL;

		/* An overlong one is kept cut, so that it fails as malformed. */
		if (curl_easy_header(e, DOWNSET_CHECKPOINT_HEADER, 0, CURLH_HEADER, -1, &hd) ==
			    CURLHE_OK &&
		    !(ret->checkpoint = strndup(hd->value, DOWNSET_CHECKPOINT_MAX + 1))) {
			r = fs_error_set(err, -ENOMEM, "HQ at %s: out of memory", url);
			goto out;
		}
	}
	ret->body = sink.buf;
	ret->len = sink.len;
	sink.buf = NULL;
out:
	/* The request body may be secret (an enrolment token): drop libcurl's
	 * reference to it and our header list. */
	curl_easy_reset(e);
	curl_slist_free_all(headers);
	free(sink.buf);
	return r;
}

static void curl_destroy(struct push_transport *t)
{
	struct curl_transport *ct = (struct curl_transport *)t;

	curl_easy_cleanup(ct->easy);
	free(ct);
	curl_global_cleanup();
}

int push_transport_curl_new(struct push_transport **ret, struct fs_error *err)
{
	struct curl_transport *ct;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return fs_error_set(err, -ENOMEM, "libcurl failed to initialise");
	ct = calloc(1, sizeof(*ct));
	if (ct)
		ct->easy = curl_easy_init();
	if (!ct || !ct->easy) {
		free(ct);
		curl_global_cleanup();
		return fs_error_set(err, -ENOMEM, "libcurl: out of memory");
	}
	ct->connect_s = PUSH_CONNECT_TIMEOUT_S;
	ct->stall_s = PUSH_LOW_SPEED_TIME_S;
	ct->base.post = curl_post;
	ct->base.destroy = curl_destroy;
	*ret = &ct->base;
	return 0;
}

struct push_transport *push_transport_free(struct push_transport *t)
{
	if (t && t->destroy)
		t->destroy(t);
	return NULL;
}

/* ---- reading outgoing ------------------------------------------------------ */

/* One set to send, copied out so no statement stays open across I/O. */
struct outgoing_set {
	uint64_t seq;
	uint8_t hash[CHANGESET_HASH_BYTES];
	uint8_t *body; /* malloc'd */
	size_t len;
	unsigned long long changes;
};

/* The first set at or after from that has no receipt, or any set below
 * resend_below (HQ asked for those again).  ret->body NULL: none left. */
static int next_set(struct store *s, uint64_t from, uint64_t resend_below, struct outgoing_set *ret,
                    struct fs_error *err)
{
	sqlite3_stmt *st;
	int r, rc;

	memset(ret, 0, sizeof(*ret));
	r = store_stmt(s, SLOT_NEXT_SET,
	               "SELECT seq, hash, body, changes FROM outgoing"
	               " WHERE seq >= ?1 AND (receipt IS NULL OR seq < ?2) ORDER BY seq LIMIT 1",
	               &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)resend_below);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int len = sqlite3_column_bytes(st, 2);

		if (len == 0 && sqlite3_column_int64(st, 0) > 0 &&
		    (uint64_t)sqlite3_column_int64(st, 0) < resend_below) {
			/* push_drop_acked() made room on a full disk. */
			r = fs_error_set(err, -EBADMSG,
			                 "HQ asks again for change set %lld, which it had "
			                 "acknowledged and this device no longer holds (dropped to "
			                 "make room on a full disk)",
			                 (long long)sqlite3_column_int64(st, 0));
		} else if (sqlite3_column_int64(st, 0) <= 0 ||
		    sqlite3_column_bytes(st, 1) != CHANGESET_HASH_BYTES || len <= 0 ||
		    len > CHANGESET_MAX_BYTES) {
			r = fs_error_set(err, -FS_ECORRUPT,
			                 "read outgoing change sets in %s: "
			                 "malformed row",
			                 store_path(s));
		} else if (!(ret->body = malloc((size_t)len))) {
			r = fs_error_set(err, -ENOMEM, "read outgoing change sets: out of memory");
		} else {
			ret->seq = (uint64_t)sqlite3_column_int64(st, 0);
			memcpy(ret->hash, sqlite3_column_blob(st, 1), CHANGESET_HASH_BYTES);
			memcpy(ret->body, sqlite3_column_blob(st, 2), (size_t)len);
			ret->len = (size_t)len;
			ret->changes = (unsigned long long)sqlite3_column_int64(st, 3);
		}
	} else if (rc != SQLITE_DONE) {
		r = store_fail(s, "read outgoing change sets in", err);
	}
	sqlite3_reset(st);
	return r;
}

static int have_seq(struct store *s, uint64_t seq, int *ret_have, struct fs_error *err)
{
	sqlite3_stmt *st;
	int r, rc;

	r = store_stmt(s, SLOT_HAVE_SEQ, "SELECT 1 FROM outgoing WHERE seq = ?1", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		*ret_have = rc == SQLITE_ROW;
	else
		r = store_fail(s, "read outgoing change sets in", err);
	sqlite3_reset(st);
	return r;
}

int push_count(struct store *s, unsigned long long *ret_pending, unsigned long long *ret_acked,
               struct fs_error *err)
{
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s, SLOT_COUNT_SETS,
	               "SELECT count(*) FILTER (WHERE receipt IS NULL),"
	               " count(*) FILTER (WHERE receipt IS NOT NULL) FROM outgoing",
	               &st, err);
	if (r < 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*ret_pending = (unsigned long long)sqlite3_column_int64(st, 0);
		if (ret_acked)
			*ret_acked = (unsigned long long)sqlite3_column_int64(st, 1);
	} else {
		r = store_fail(s, "count outgoing change sets in", err);
	}
	sqlite3_reset(st);
	return r;
}

/* ---- one set ------------------------------------------------------------------ */

/* Verify HQ's 200 answer o (parsed; may be NULL) for set and keep its
 * receipt. */
/* The skew as kept in meta "clock_skew": "<skew ms> <measured at ms>". */
static int skew_save(struct store *s, int64_t skew_ms, struct fs_error *err)
{
	char v[64];

	snprintf(v, sizeof(v), "%lld %llu", (long long)skew_ms, (unsigned long long)store_wall_ms(s));
	return store_meta_put(s, "clock_skew", v, err);
}

int push_skew_load(struct store *s, int64_t *ret_skew_ms, uint64_t *ret_at_ms, int *ret_found,
                   struct fs_error *err)
{
	char v[64];
	long long skew;
	unsigned long long at;
	int r, found = 0;

	if ((r = store_meta_get(s, "clock_skew", v, sizeof(v), &found, err)) < 0)
		return r;
	if (found && sscanf(v, "%lld %llu", &skew, &at) != 2)
		return fs_error_set(err, -FS_ECORRUPT, "clock skew in %s: unreadable",
		                    store_path(s));
	*ret_found = found;
	if (found) {
		*ret_skew_ms = skew;
		*ret_at_ms = at;
	}
	return 0;
}

void push_skew_text(int64_t skew_ms, char out[PUSH_SKEW_TEXT_MAX])
{
	uint64_t a = skew_ms < 0 ? (uint64_t)-(skew_ms + 1) + 1 : (uint64_t)skew_ms;
	const char *dir = skew_ms < 0 ? "behind" : "ahead of";
	/* Rounded at the last unit shown: the measurement is good to a
	 * round trip, and "1094 d 23 h" for a clock set 3 years off reads
	 * wrong. */
	uint64_t h = (a + 1800000) / 3600000, m = (a + 30000) / 60000, s = (a + 500) / 1000;

	if (a < 1000)
		snprintf(out, PUSH_SKEW_TEXT_MAX, "within 1 s of HQ");
	else if (h >= 24)
		snprintf(out, PUSH_SKEW_TEXT_MAX, "%llu d %llu h %s HQ", (unsigned long long)(h / 24),
		         (unsigned long long)(h % 24), dir);
	else if (m >= 60)
		snprintf(out, PUSH_SKEW_TEXT_MAX, "%llu h %llu min %s HQ", (unsigned long long)(m / 60),
		         (unsigned long long)(m % 60), dir);
	else if (s >= 60)
		snprintf(out, PUSH_SKEW_TEXT_MAX, "%llu min %llu s %s HQ", (unsigned long long)(s / 60),
		         (unsigned long long)(s % 60), dir);
	else
		snprintf(out, PUSH_SKEW_TEXT_MAX, "%llu s %s HQ", (unsigned long long)s, dir);
}

int push_hq_time_skew(const cJSON *answer, uint64_t sent_ms, int64_t *ret_skew_ms)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(answer, "hq_time");

	/* An upload's length is not skew: HQ stamps the headers' arrival. */
	if (!cJSON_IsNumber(t) || t->valuedouble < 0 || t->valuedouble >= (double)(1ULL << 48))
		return 0;
	*ret_skew_ms = (int64_t)sent_ms - (int64_t)t->valuedouble;
	return 1;
}

int push_skew_warning(int64_t skew_ms, char out[PUSH_SKEW_WARNING_MAX])
{
	char text[PUSH_SKEW_TEXT_MAX];

	if (skew_ms <= (int64_t)PUSH_SKEW_REPORT_MS && skew_ms >= -(int64_t)PUSH_SKEW_REPORT_MS)
		return 0;
	push_skew_text(skew_ms, text);
	snprintf(out, PUSH_SKEW_WARNING_MAX, "this device's clock is %s: set it right%s", text,
	         skew_ms > 0 ? ", then run `fieldsync status --verify-hq`; HQ quarantines changes "
	                       "stamped more than 5 min ahead of its clock"
	                     : "; meanwhile new changes are ordered after HQ's time");
	return 1;
}

/* Keep the store's clock in step with HQ's, inside the receipt's
 * transaction.  HQ's signed receipt time moves it forward, so a device
 * whose wall clock is behind orders its next writes after what HQ had; but
 * not past what HQ's clock says now (a receipt time ahead of that is not
 * believed).  A clock that ran far ahead of HQ's while the wall clock was
 * wrong is set back once the wall clock agrees with HQ again. */
static void hlc_follow_hq(struct store *s, int64_t skew, const uint64_t *accepted_ms)
{
	int64_t wall = (int64_t)store_wall_ms(s), hq_now = wall - skew;

	if (skew <= (int64_t)PUSH_SKEW_REPORT_MS && skew >= -(int64_t)PUSH_SKEW_REPORT_MS &&
	    (int64_t)store_hlc_physical_ms(s) > hq_now + (int64_t)PUSH_SKEW_REPORT_MS)
		store_hlc_rewind(s, (uint64_t)wall);
	if (accepted_ms && (int64_t)*accepted_ms <= hq_now + (int64_t)PUSH_SKEW_REPORT_MS)
		store_hlc_observe(s, *accepted_ms);
}

int push_clock_check(struct store *s, int64_t skew_ms, struct fs_error *err)
{
	int r;

	if ((r = store_begin(s, err)) < 0)
		return r;
	/* No receipt: an unsigned time may set the clock back to our own
	 * wall clock, never forward. */
	hlc_follow_hq(s, skew_ms, NULL);
	if ((r = skew_save(s, skew_ms, err)) < 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s, err);
}

/* skew: this device's clock minus HQ's from this answer, or NULL. */
static int accept_receipt(struct store *s, const struct push_target *target,
                          const struct outgoing_set *set, const cJSON *o, const int64_t *skew,
                          unsigned long long *ret_quarantined, struct fs_error *err)
{
	uint8_t device[CHANGESET_DEVICE_BYTES], *buf = NULL;
	const char *hex = store_identity(s)->id;
	struct receipt rc = {0};
	sqlite3_stmt *st;
	size_t len = 0;
	int r;

	if (sodium_hex2bin(device, sizeof(device), hex, strlen(hex), NULL, &len, NULL) != 0 ||
	    len != sizeof(device))
		return fs_error_set(err, -FS_ECORRUPT, "push: bad device id in %s", store_path(s));
	buf = malloc(RECEIPT_MAX_BYTES);
	if (!buf)
		return fs_error_set(err, -ENOMEM, "push: out of memory");
	if (!cJSON_IsObject(o) ||
	    push_json_base64(o, "receipt", buf, RECEIPT_MAX_BYTES, 0, &len) < 0) {
		r = fs_error_set(err, -EPROTO,
		                 "HQ at %s: change set %llu: answer 200 without a "
		                 "readable receipt",
		                 target->url, (unsigned long long)set->seq);
		goto out;
	}
	if (receipt_verify(buf, len, target->hq_sign_pk, &rc) < 0) {
		r = fs_error_set(
		    err, -FS_EAUTH,
		    "HQ at %s: change set %llu: receipt signature does "
		    "not verify with the HQ key pinned at enrolment; not marked as sent",
		    target->url, (unsigned long long)set->seq);
		goto out;
	}
	if (memcmp(rc.device, device, sizeof(device)) != 0 || rc.seq != set->seq ||
	    memcmp(rc.hash, set->hash, CHANGESET_HASH_BYTES) != 0) {
		r = fs_error_set(err, -FS_EAUTH,
		                 "HQ at %s: change set %llu: receipt is for a "
		                 "different device, sequence or hash; not marked as sent",
		                 target->url, (unsigned long long)set->seq);
		goto out;
	}
	if ((r = store_begin(s, err)) < 0)
		goto out;
	r = store_stmt(s, SLOT_STORE_RECEIPT,
	               "UPDATE outgoing SET receipt = ?1, acked_at = ?2 WHERE seq = ?3", &st, err);
	if (r == 0) {
		sqlite3_bind_blob(st, 1, buf, (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)store_wall_ms(s));
		sqlite3_bind_int64(st, 3, (sqlite3_int64)set->seq);
		if (sqlite3_step(st) != SQLITE_DONE)
			r = store_fail(s, "store receipt in", err);
		else if (sqlite3_changes(store_db(s)) != 1)
			r = fs_error_set(err, -FS_ECORRUPT,
			                 "store receipt in %s: change set %llu "
			                 "is gone",
			                 store_path(s), (unsigned long long)set->seq);
		sqlite3_reset(st);
	}
	/* The changes HQ quarantined, by their place in the set (the set's
	 * outbox rows in order, agent/pack.c). */
	for (uint32_t i = 0; r == 0 && i < rc.quarantined; i++) {
		r = store_stmt(s, SLOT_QUARANTINED,
		               "UPDATE outbox SET quarantined = 1 WHERE seq = (SELECT seq FROM "
		               "outbox WHERE changeset = ?1 ORDER BY seq LIMIT 1 OFFSET ?2)",
		               &st, err);
		if (r < 0)
			break;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)set->seq);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)rc.index[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			r = store_fail(s, "note quarantined changes in", err);
		else if (sqlite3_changes(store_db(s)) != 1)
			r = fs_error_set(err, -EPROTO,
			                 "HQ at %s: change set %llu: the receipt quarantines change "
			                 "%u, which the set does not have",
			                 target->url, (unsigned long long)set->seq, rc.index[i] + 1);
		sqlite3_reset(st);
	}
	if (skew)
		hlc_follow_hq(s, *skew, &rc.accepted_ms);
	else
		store_hlc_observe(s, rc.accepted_ms);
	if (r == 0 && skew)
		r = skew_save(s, *skew, err);
	if (r == 0)
		r = store_commit(s, err);
	else
		store_rollback(s);
	if (r == 0)
		*ret_quarantined = rc.quarantined;
out:
	receipt_clear(&rc);
	free(buf);
	return r;
}

int push_answer_error(const char *url, const char *what, const struct push_response *resp,
                      struct fs_error *err)
{
	char why[200];

	push_hq_error(resp, why, sizeof(why));
	switch (resp->status) {
	case 403:
		return fs_error_set(err, -EACCES,
		                    "HQ at %s refused %s: this device has been revoked; ask your "
		                    "HQ administrator (%s)",
		                    url, what, why);
	case 401:
		return fs_error_set(err, -EPERM, "HQ at %s refused %s: this device is not accepted (%s)",
		                    url, what, why);
	case 400:
		return fs_error_set(err, -EBADMSG, "HQ at %s rejected %s as malformed (%s)", url, what,
		                    why);
	case 413:
		return fs_error_set(err, -FS_ELIMIT, "HQ at %s rejected %s as too large (%s)", url,
		                    what, why);
	case 429:
	case 503:
		return fs_error_set(err, -EBUSY, "HQ at %s is overloaded; retry later (%s)", url, why);
	default:
		return fs_error_set(err, -EPROTO, "HQ at %s answered HTTP %ld for %s (%s)", url,
		                    resp->status, what, why);
	}
}

/* What HQ's refusal means; *ret_rewind is set for a gap we can fill. */
static int refusal(struct store *s, const struct push_target *target,
                   const struct outgoing_set *set, const struct push_response *resp,
                   uint64_t *ret_rewind, struct fs_error *err)
{
	unsigned long long seq = (unsigned long long)set->seq;
	char why[200], what[48];
	cJSON *o = NULL;
	const cJSON *code, *exp;
	int r, have = 0;

	if (resp->status != 409) {
		snprintf(what, sizeof(what), "change set %llu", seq);
		return push_answer_error(target->url, what, resp, err);
	}
	push_hq_error(resp, why, sizeof(why));
	o = resp->body ? cJSON_ParseWithLength(resp->body, resp->len) : NULL;
	code = cJSON_GetObjectItemCaseSensitive(o, "error");
	exp = cJSON_GetObjectItemCaseSensitive(o, "expected_seq");
	if (!cJSON_IsString(code) || strcmp(code->valuestring, "sequence_gap") != 0) {
		r = fs_error_set(err, -EBADMSG, "HQ at %s refused change set %llu (%s)",
		                 target->url, seq, why);
		goto out;
	}
	if (!cJSON_IsNumber(exp) || exp->valuedouble < 1 || exp->valuedouble > 9e15 ||
	    (double)(uint64_t)exp->valuedouble != exp->valuedouble) {
		r = fs_error_set(err, -EPROTO,
		                 "HQ at %s: sequence gap at change set %llu without "
		                 "a valid expected_seq",
		                 target->url, seq);
		goto out;
	}
	if ((uint64_t)exp->valuedouble < set->seq &&
	    (r = have_seq(s, (uint64_t)exp->valuedouble, &have, err)) < 0)
		goto out;
	if (!have) {
		r = fs_error_set(err, -EBADMSG,
		                 "HQ at %s expects change set %llu from this device, "
		                 "but its next is %llu and it cannot send that one; was the store "
		                 "or HQ restored from a backup?",
		                 target->url, (unsigned long long)exp->valuedouble, seq);
		goto out;
	}
	*ret_rewind = (uint64_t)exp->valuedouble;
	r = 0;
out:
	cJSON_Delete(o);
	return r;
}

/* ---- the loop --------------------------------------------------------------------- */

int push_pending(struct store *s, const struct push_target *target, struct push_transport *t,
                 push_progress_fn progress, void *ctx, struct push_stats *stats,
                 struct fs_error *err)
{
	char url[PUSH_URL_MAX + 32];
	unsigned long long total = 0, done = 0;
	uint64_t from = 1, resend_below = 0;
	char *checked = NULL; /* the last checkpoint note hqhistory accepted */
	int r, rewinds = 0;

	if ((size_t)snprintf(url, sizeof(url), "%s/v1/changesets", target->url) >= sizeof(url))
		return fs_error_set(err, -FS_EUSAGE, "HQ URL too long");
	if ((r = push_count(s, &total, NULL, err)) < 0)
		return r;
	for (;;) {
		struct push_response resp = {0};
		struct hqhistory_result hist;
		struct outgoing_set set;
		cJSON *answer = NULL;
		unsigned long long q = 0;
		uint64_t rewind = 0, sent_ms;
		const cJSON *note;
		int64_t skew = 0;
		int acked = 0, have_skew = 0;

		if ((r = next_set(s, from, resend_below, &set, err)) < 0 || !set.body)
			break;
		sent_ms = store_wall_ms(s);
		r = t->post(t, url, PUSH_CHANGESET_TYPE, set.body, set.len,
		            target->tls_pin[0] ? target->tls_pin : NULL, &resp, err);
		if (r == 0 && resp.status == 200) {
			answer = resp.body ? cJSON_ParseWithLength(resp.body, resp.len) : NULL;
			have_skew = push_hq_time_skew(answer, sent_ms, &skew);
			acked = (r = accept_receipt(s, target, &set, answer, have_skew ? &skew : NULL,
			                            &q, err)) == 0;
			if (acked && have_skew) {
				stats->clock_checked = 1;
				stats->clock_skew_ms = skew;
			}
		} else if (r == 0)
			r = refusal(s, target, &set, &resp, &rewind, err);
		if (r == -EBUSY)
			stats->retry_after = resp.retry_after;
		if (acked) {
			/* Counted as soon as the receipt is stored, whatever the
			 * history check below says. */
			stats->sets++;
			stats->changes += set.changes;
			stats->quarantined += q;
			stats->bytes += set.len;
			from = set.seq + 1;
			if (set.seq >= resend_below && done < total)
				done++;
			/* The checkpoint that came with the receipt. */
			note = cJSON_GetObjectItemCaseSensitive(answer, "checkpoint");
			/* Sets in a row mostly carry the checkpoint just checked. */
			if (cJSON_IsString(note) && !(checked && !strcmp(checked, note->valuestring))) {
				r = hqhistory_observe(s, target, t, note->valuestring, &hist, err);
				free(checked);
				checked = r == 0 ? strdup(note->valuestring) : NULL;
			}
		}
		cJSON_Delete(answer);
		push_response_clear(&resp);
		free(set.body);
		if (r < 0)
			break;
		if (rewind) {
			/* HQ lost sets it had acknowledged: send them again. */
			if (++rewinds > PUSH_MAX_REWINDS) {
				r = fs_error_set(err, -EBADMSG,
				                 "HQ at %s keeps asking for earlier "
				                 "change sets; giving up",
				                 target->url);
				break;
			}
			resend_below = set.seq > resend_below ? set.seq : resend_below;
			from = rewind;
			continue;
		}
		if (progress)
			progress(done, total, ctx);
	}
	free(checked);
	return r;
}

int push_drop_acked(struct store *s, struct fs_error *err)
{
	sqlite3_stmt *st;
	int r;

	if ((r = store_begin(s, err)) < 0)
		return r;
	r = store_stmt(s, SLOT_DROP_ACKED,
	               "UPDATE outgoing SET body = x'' WHERE receipt IS NOT NULL AND length(body) > 0",
	               &st, err);
	if (r == 0 && sqlite3_step(st) != SQLITE_DONE)
		r = store_fail(s, "make room in", err);
	if (r == 0)
		sqlite3_reset(st);
	if (r == 0)
		return store_commit(s, err);
	store_rollback(s);
	return r;
}

int push_backlog(struct store *s, unsigned long long *ret_changes, unsigned long long *ret_bytes,
                 struct fs_error *err)
{
	sqlite3_stmt *st;
	int r;

	/* Unpacked changes count their text; packed ones their set's bytes. */
	r = store_stmt(s, SLOT_BACKLOG,
	               "SELECT (SELECT count(*) FROM outbox WHERE changeset IS NULL)"
	               "     + (SELECT coalesce(sum(changes), 0) FROM outgoing"
	               "        WHERE receipt IS NULL),"
	               "       (SELECT coalesce(sum(length(record_id) + length(field)"
	               "                            + coalesce(length(value), 0)), 0)"
	               "        FROM outbox WHERE changeset IS NULL)"
	               "     + (SELECT coalesce(sum(length(body)), 0) FROM outgoing"
	               "        WHERE receipt IS NULL)",
	               &st, err);
	if (r < 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*ret_changes = (unsigned long long)sqlite3_column_int64(st, 0);
		*ret_bytes = (unsigned long long)sqlite3_column_int64(st, 1);
	} else {
		r = store_fail(s, "count pending changes in", err);
	}
	sqlite3_reset(st);
	return r;
}
