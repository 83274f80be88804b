/* hqcurl.c - see hqcurl.h. */
#include "agent/hqcurl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "sync/downset.h"
#include "sync/hlc.h"

struct curl_transport {
	struct hqlink base;	 /* first: the seam */
	CURL *easy;		 /* reused, so connections are kept */
	long connect_s, stall_s; /* timeouts */
	uint64_t wall_ms;	 /* Fieldsync-Time; 0: now */
};

void hqcurl_timeouts(struct hqlink *t, unsigned connect_s, unsigned stall_s)
{
	struct curl_transport *ct = (struct curl_transport *)t;

	ct->connect_s = connect_s ? (long)connect_s : HQLINK_CONNECT_TIMEOUT_S;
	ct->stall_s = stall_s ? (long)stall_s : HQLINK_LOW_SPEED_TIME_S;
}

void hqcurl_wall_clock(struct hqlink *t, uint64_t wall_ms)
{
	((struct curl_transport *)t)->wall_ms = wall_ms;
}

struct body_sink {
	char *buf;
	size_t len, cap;
	int overflow; /* the answer passed HQLINK_RESPONSE_MAX */
};

static size_t sink_write(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct body_sink *b = ctx;
	size_t n = size * nmemb;

	if (n > HQLINK_RESPONSE_MAX - b->len) {
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
					    HQLINK_RESPONSE_MAX);
		return fs_error_set(err, -ENOMEM, "HQ at %s: out of memory reading the answer",
				    url);
	case CURLE_OUT_OF_MEMORY:
		return fs_error_set(err, -ENOMEM, "HQ at %s: out of memory", url);
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return fs_error_set(err, -FS_EUSAGE, "HQ URL %s: %s", url, why);
	default:
		return fs_error_set(err, -EHOSTUNREACH, "HQ unreachable at %s: %s", url, why);
	}
}

static int curl_post(struct hqlink *t, const char *url, const char *content_type,
		     const uint8_t *body, size_t len, const char *tls_pin,
		     struct hqlink_response *ret, struct fs_error *err)
{
	struct curl_transport *ct = (struct curl_transport *)t;
	char errbuf[CURL_ERROR_SIZE] = "", ctype[128], now[64];
	struct curl_slist *headers = NULL, *h;
	struct body_sink sink = { 0 };
	CURL *e = ct->easy;
	CURLcode rc = CURLE_OK;
	long status = 0;
	int r = 0;

	snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
	/* Our wall clock, so HQ can audit a device whose clock is wrong
	 * (docs/PROTOCOL.md); it orders nothing. */
	snprintf(now, sizeof(now), "Fieldsync-Time: %llu",
		 (unsigned long long)(ct->wall_ms ? ct->wall_ms : hlc_wall_ms()));
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
	SET(CURLOPT_LOW_SPEED_LIMIT, (long)HQLINK_LOW_SPEED_BYTES);
	SET(CURLOPT_LOW_SPEED_TIME, ct->stall_s);
	SET(CURLOPT_WRITEFUNCTION, sink_write);
	SET(CURLOPT_WRITEDATA, &sink);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_USERAGENT, "fieldsync/" FS_VERSION);
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

static void curl_destroy(struct hqlink *t)
{
	struct curl_transport *ct = (struct curl_transport *)t;

	curl_easy_cleanup(ct->easy);
	free(ct);
	curl_global_cleanup();
}

int hqcurl_new(struct hqlink **ret, struct fs_error *err)
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
	ct->connect_s = HQLINK_CONNECT_TIMEOUT_S;
	ct->stall_s = HQLINK_LOW_SPEED_TIME_S;
	ct->base.post = curl_post;
	ct->base.destroy = curl_destroy;
	*ret = &ct->base;
	return 0;
}
