/* upload.c - sending attached files to HQ (agent/upload.h). */
#include "agent/upload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "agent/attach.h"
#include "sync/filewire.h"
#include "sync/hlc.h"

/* How often one file may be begun again in one attempt (HQ forgot its
 * upload, or dropped chunks that did not hash): then it is HQ's fault or
 * ours, and the attempt ends with the error. */
#define UPLOAD_MAX_RESTARTS 2

/* HQ's 200 answer: *complete, and for a query the upload's chunk size
 * and which chunks HQ has (bitmap malloc'd, (chunks + 7) / 8 bytes). */
struct answer {
	int complete;
	uint32_t chunk_size, chunks;
	uint8_t *bitmap;
};

static int read_answer(const char *url, const struct hqlink_response *resp, int query,
		       const struct filewire_head *h, struct answer *a, struct fs_error *err)
{
	cJSON *o = resp->body ? cJSON_ParseWithLength(resp->body, resp->len) : NULL;
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "complete");
	const cJSON *cs = cJSON_GetObjectItemCaseSensitive(o, "chunk_size");
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "chunks");
	size_t len = 0;
	int r = 0;

	memset(a, 0, sizeof(*a));
	if (!cJSON_IsBool(c)) {
		r = -EPROTO;
		goto out;
	}
	a->complete = cJSON_IsTrue(c);
	if (a->complete || !query)
		goto out;
	if (!cJSON_IsNumber(cs) || cs->valuedouble < FILEWIRE_CHUNK_MIN ||
	    cs->valuedouble > FILEWIRE_CHUNK_MAX || !cJSON_IsNumber(n)) {
		r = -EPROTO;
		goto out;
	}
	a->chunk_size = (uint32_t)cs->valuedouble;
	a->chunks = filewire_chunks(h->size, a->chunk_size);
	if (n->valuedouble != (double)a->chunks ||
	    !(a->bitmap = calloc(1, ((size_t)a->chunks + 7) / 8))) {
		r = a->bitmap || n->valuedouble != (double)a->chunks ? -EPROTO : -ENOMEM;
		goto out;
	}
	r = hqlink_json_base64(o, "have", a->bitmap, ((size_t)a->chunks + 7) / 8,
			       ((size_t)a->chunks + 7) / 8, &len);
out:
	cJSON_Delete(o);
	if (r < 0) {
		free(a->bitmap);
		a->bitmap = NULL;
		return r == -ENOMEM ? fs_error_set(err, r, "out of memory")
				    : fs_error_set(err, -EPROTO,
						   "%s: HQ's answer about a file is not the "
						   "protocol's",
						   url);
	}
	return 0;
}

/* Post body; 200 into *a; 409 not_begun or upload_mismatch as 1 (begin
 * again); anything else an error. */
static int exchange(struct hqlink *t, const struct enrolment *en, const char *url,
		    const uint8_t *body, size_t len, int query, const struct filewire_head *h,
		    struct answer *a, struct fs_error *err)
{
	struct hqlink_response resp = { 0 };
	char what[64];
	int r;

	r = t->post(t, url, FILEWIRE_CONTENT_TYPE, body, len,
		    en->target.tls_pin[0] ? en->target.tls_pin : NULL, &resp, err);
	if (r < 0)
		return r;
	if (resp.status == 200) {
		r = read_answer(url, &resp, query, h, a, err);
	} else if (resp.status == 409 || resp.status == 422) {
		/* HQ forgot the upload or dropped what did not hash: again. */
		r = 1;
	} else {
		snprintf(what, sizeof(what), "file %02x%02x%02x%02x%02x%02x", h->sha256[0],
			 h->sha256[1], h->sha256[2], h->sha256[3], h->sha256[4], h->sha256[5]);
		r = hqlink_answer_error(url, what, &resp, err);
	}
	hqlink_response_clear(&resp);
	return r;
}

/* Send what HQ lacks of one file.  1: HQ holds it; 0: yielded. */
static int send_file(struct store *s, const struct enrolment *en, struct hqlink *t, const char *url,
		     struct filewire_head *h, const char *hex, const _Atomic int *yield,
		     struct upload_stats *stats, uint8_t *buf, struct fs_error *err)
{
	uint8_t query[FILEWIRE_QUERY_BYTES];
	struct answer a = { 0 };
	int r, restarts = 0;

again:
	free(a.bitmap);
	a.bitmap = NULL;
	h->wall_ms = store_wall_ms(s);
	if ((r = filewire_query_encode(h, store_identity(s)->sign_sk, query, err)) < 0 ||
	    (r = exchange(t, en, url, query, sizeof(query), 1, h, &a, err)) < 0)
		goto out;
	if (r == 1)
		goto restart;
	if (a.complete) {
		r = 1;
		goto out;
	}
	h->chunk_size = a.chunk_size;
	for (uint32_t i = 0; i < a.chunks; i++) {
		struct answer c = { 0 };
		uint8_t *msg = NULL;
		size_t len = 0, n;

		if (a.bitmap[i / 8] & (1u << (i % 8)))
			continue;
		if (yield && *yield) {
			stats->yielded = 1;
			r = 0;
			goto out;
		}
		h->index = i;
		h->wall_ms = store_wall_ms(s);
		n = filewire_chunk_len(h);
		if ((r = attach_read(s, hex, (uint64_t)i * h->chunk_size, n, buf, err)) < 0)
			goto out;
		r = filewire_chunk_encode(h, buf, n, en->hq_box_pk, store_identity(s)->sign_sk,
					  &msg, &len, err);
		sodium_memzero(buf, n);
		if (r < 0)
			goto out;
		r = exchange(t, en, url, msg, len, 0, h, &c, err);
		free(msg);
		if (r < 0)
			goto out;
		if (r == 1)
			goto restart;
		stats->chunks++;
		stats->bytes += len;
		if (c.complete) {
			r = 1;
			goto out;
		}
	}
	/* Every chunk went and HQ did not say complete: ask again. */
restart:
	if (++restarts > UPLOAD_MAX_RESTARTS) {
		r = fs_error_set(err, -EBADMSG,
				 "%s: HQ did not take file %.12s after %d tries (its chunks did "
				 "not hash to its name, or HQ forgot the upload)",
				 url, hex, restarts);
		goto out;
	}
	goto again;
out:
	free(a.bitmap);
	return r;
}

int upload_pending(struct store *s, const struct enrolment *en, struct hqlink *t,
		   uint32_t chunk_size, const _Atomic int *yield, struct upload_stats *stats,
		   struct fs_error *err)
{
	char url[HQLINK_URL_MAX + 16];
	struct attach_cursor walk = { 0 };
	struct fs_error refusal = { 0 };
	struct filewire_head h;
	uint8_t *buf = NULL;
	uint64_t size = 0;
	int r;

	memset(stats, 0, sizeof(*stats));
	if (!chunk_size)
		chunk_size = FILEWIRE_CHUNK_DEFAULT;
	snprintf(url, sizeof(url), "%s/v1/files", en->target.url);
	if (!(buf = malloc(FILEWIRE_CHUNK_MAX)))
		return fs_error_set(err, -ENOMEM, "out of memory");
	while ((r = attach_next_unsent(s, &walk, &size, err)) == 1) {
		memset(&h, 0, sizeof(h));
		if (sodium_hex2bin(h.device, sizeof(h.device), store_identity(s)->id,
				   strlen(store_identity(s)->id), NULL, NULL, NULL) < 0 ||
		    sodium_hex2bin(h.sha256, sizeof(h.sha256), walk.hex, ATTACH_HEX, NULL, NULL,
				   NULL) < 0) {
			r = fs_error_set(err, -FS_ECORRUPT, "%s: a name is damaged", store_path(s));
			break;
		}
		h.size = size;
		h.chunk_size = chunk_size;
		r = send_file(s, en, t, url, &h, walk.hex, yield, stats, buf, err);
		if (r == -FS_ELIMIT) {
			/* HQ will not take this file (its quota): the others may
			 * still fit, and go; the first refusal is the answer. */
			if (!stats->refused++)
				refusal = *err;
			continue;
		}
		if (r <= 0)
			break;
		if ((r = attach_mark_sent(s, walk.hex, store_wall_ms(s), err)) < 0)
			break;
		stats->files++;
	}
	free(buf);
	if (r == 0 && stats->refused) {
		*err = refusal;
		r = refusal.code;
	}
	return r < 0 ? r : 0;
}
