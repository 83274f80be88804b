/* upload.c - attached files arriving from devices (hq/upload.h).
 *
 * Sections: small steps; the database; abandoned uploads; the request.
 */
#include "hq/upload.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hq/audit.h"
#include "hq/hqenroll.h"
#include "hq/refusal.h"
#include "sync/filewire.h"

/* ---- small steps ------------------------------------------------------------ */

static double mb(uint64_t bytes)
{
	return (double)bytes / 1e6;
}

/* The answer {"complete": true, "stored": stored}. */
static int answer_complete(struct upload_result *res, int stored, struct fs_error *err)
{
	if (!(res->answer = cJSON_CreateObject()) ||
	    !cJSON_AddBoolToObject(res->answer, "complete", 1) ||
	    !cJSON_AddBoolToObject(res->answer, "stored", stored))
		return fs_error_set(err, -ENOMEM, "out of memory");
	res->status = 200;
	return 0;
}

/* The answer to a query for an upload in progress: which chunks HQ has,
 * as a bitmap in base64. */
static int answer_have(struct upload_ctx *ctx, struct upload_result *res, const char *hex,
		       uint64_t size, uint32_t chunk_size, struct fs_error *err)
{
	uint32_t n = filewire_chunks(size, chunk_size), have = 0;
	size_t bytes = ((size_t)n + 7) / 8;
	uint8_t *bitmap = calloc(1, bytes);
	char *b64 = NULL;
	int r;

	if (!bitmap ||
	    !(b64 = malloc(sodium_base64_ENCODED_LEN(bytes, sodium_base64_VARIANT_ORIGINAL)))) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = hqfiles_part_count(ctx->files, res->device, hex, n, bitmap, &have, err)) < 0)
		goto out;
	sodium_bin2base64(b64, sodium_base64_ENCODED_LEN(bytes, sodium_base64_VARIANT_ORIGINAL),
			  bitmap, bytes, sodium_base64_VARIANT_ORIGINAL);
	if (!(res->answer = cJSON_CreateObject()) ||
	    !cJSON_AddBoolToObject(res->answer, "complete", 0) ||
	    !cJSON_AddNumberToObject(res->answer, "chunk_size", chunk_size) ||
	    !cJSON_AddNumberToObject(res->answer, "chunks", n) ||
	    !cJSON_AddNumberToObject(res->answer, "held", have) ||
	    !cJSON_AddStringToObject(res->answer, "have", b64)) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	res->status = 200;
out:
	free(b64);
	free(bitmap);
	return r;
}

/* ---- the database ------------------------------------------------------------ */

int upload_file_known(struct hqsql *db, const char *hex, uint64_t *ret_size, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(db, "SELECT size FROM files WHERE sha256 = ?1", &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, hex);
	rc = hqsql_step(st);
	if (rc == HQSQL_ROW && ret_size)
		*ret_size = (uint64_t)hqsql_column_int64(st, 0);
	r = rc == HQSQL_ROW ? 1 : rc == HQSQL_DONE ? 0 : hqsql_fail(db, "look up a file", err);
	hqsql_finalize(st);
	return r;
}

/* The upload of hex by device: 1 with its size and chunk size, or 0. */
static int upload_row(struct hqsql *db, const char *device, const char *hex, uint64_t *size,
		      uint32_t *chunk_size, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(db,
			       "SELECT size, chunk_size FROM uploads WHERE device = ?1 AND "
			       "sha256 = ?2",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, device);
	hqsql_bind_text(st, 2, hex);
	rc = hqsql_step(st);
	if (rc == HQSQL_ROW) {
		*size = (uint64_t)hqsql_column_int64(st, 0);
		*chunk_size = (uint32_t)hqsql_column_int64(st, 1);
	}
	r = rc == HQSQL_ROW ? 1 : rc == HQSQL_DONE ? 0 : hqsql_fail(db, "look up an upload", err);
	hqsql_finalize(st);
	return r;
}

/* What the device holds at HQ or has on its way there, but hex. */
static int device_bytes(struct hqsql *db, const char *device, const char *hex, uint64_t *ret,
			struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(db,
			       "SELECT (SELECT coalesce(sum(size), 0) FROM files WHERE device = "
			       "?1) + (SELECT coalesce(sum(size), 0) FROM uploads WHERE device = "
			       "?1 AND sha256 <> ?2)",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, device);
	hqsql_bind_text(st, 2, hex);
	if (hqsql_step(st) == HQSQL_ROW)
		*ret = (uint64_t)hqsql_column_int64(st, 0);
	else
		r = hqsql_fail(db, "count a device's files", err);
	hqsql_finalize(st);
	return r;
}

/* Run sql with ?1 device, ?2 hex and ?3, ?4, ?5 the numbers, in the
 * caller's transaction. */
static int run_counted(struct hqsql *db, const char *sql, const char *device, const char *hex,
		       const int64_t *nums, int nnums, const char *what, int64_t *ret_changed,
		       struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(db, sql, &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, device);
	hqsql_bind_text(st, 2, hex);
	for (int i = 0; i < nnums; i++)
		hqsql_bind_int64(st, 3 + i, nums[i]);
	if (hqsql_step(st) != HQSQL_DONE)
		r = hqsql_fail(db, what, err);
	else if (ret_changed)
		*ret_changed = hqsql_changes(st);
	hqsql_finalize(st);
	return r;
}

static int run(struct hqsql *db, const char *sql, const char *device, const char *hex,
	       const int64_t *nums, int nnums, const char *what, struct fs_error *err)
{
	return run_counted(db, sql, device, hex, nums, nnums, what, NULL, err);
}

/* Note the file as held, end the device's upload of it, and audit it
 * when this noted it first (two devices may finish one hash at once);
 * one transaction.  Also for a file found in the store with no row (HQ
 * stopped between the two). */
static int note_file(struct upload_ctx *ctx, const char *device, const char *hex, uint64_t size,
		     struct fs_error *err)
{
	int64_t nums[2] = { (int64_t)size, (int64_t)ctx->now_ms }, added = 0;
	char sz[24];
	int r;

	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	if ((r = hqsql_begin(ctx->db, HQSQL_WRITE, err)) < 0)
		return r;
	if ((r = run_counted(ctx->db,
			     "INSERT INTO files(sha256, size, device, received_at) VALUES (?2, "
			     "?3, ?1, ?4) ON CONFLICT DO NOTHING",
			     device, hex, nums, 2, "note a file", &added, err)) == 0 &&
	    (r = run(ctx->db, "DELETE FROM uploads WHERE device = ?1 AND sha256 = ?2", device, hex,
		     NULL, 0, "end an upload", err)) == 0 &&
	    added > 0)
		r = audit_append_strings(ctx->db, ctx->now_ms, "file_received", device, err,
					 "sha256", hex, "size", sz, (const char *)NULL);
	if (r == 0)
		r = hqsql_commit(ctx->db, err);
	if (r < 0)
		hqsql_rollback(ctx->db);
	return r;
}

/* ---- abandoned uploads ------------------------------------------------------ */

/* Whether nothing happened since last for idle_ms; a time ahead of now
 * (the clock was set back) is not idle. */
static int idle_for(uint64_t now_ms, int64_t last, uint64_t idle_ms)
{
	return last >= 0 && (uint64_t)last <= now_ms && now_ms - (uint64_t)last >= idle_ms;
}

struct stale {
	char device[33], hex[HQFILES_HEX + 1];
	const char *reason;
};

/* Drop one upload: its row and the audit entry in one transaction, then
 * its chunks (a failure there leaves a directory no upload names, for a
 * later sweep). */
static int drop_upload(struct hqsql *db, const struct hqfiles *files, const struct stale *u,
		       uint64_t now_ms, struct fs_error *err)
{
	int r;

	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		return r;
	if ((r = run(db, "DELETE FROM uploads WHERE device = ?1 AND sha256 = ?2", u->device, u->hex,
		     NULL, 0, "drop an upload", err)) < 0 ||
	    (r = audit_append_strings(db, now_ms, "upload_dropped", u->device, err, "sha256",
				      u->hex, "reason", u->reason, (const char *)NULL)) < 0 ||
	    (r = hqsql_commit(db, err)) < 0) {
		hqsql_rollback(db);
		return r;
	}
	return hqfiles_part_drop(files, u->device, u->hex, err);
}

static int stale_add(struct stale **list, size_t *n, size_t *cap, const char *device,
		     const char *hex, const char *reason)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct stale *p = realloc(*list, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*list = p;
		*cap = c;
	}
	snprintf((*list)[*n].device, sizeof((*list)[*n].device), "%s", device);
	snprintf((*list)[*n].hex, sizeof((*list)[*n].hex), "%s", hex);
	(*list)[(*n)++].reason = reason;
	return 0;
}

/* The uploads to drop, listed first: nothing is deleted while a
 * statement reads. */
static int stale_uploads(struct hqsql *db, const struct hqfiles *files, const char *device,
			 uint64_t now_ms, uint64_t idle_ms, struct stale **list, size_t *n,
			 size_t *cap, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(
		     db,
		     "SELECT u.device, u.sha256, u.started_at, CASE WHEN d.state = 'revoked' "
		     "THEN 1 ELSE 0 END FROM "
		     "uploads u LEFT JOIN devices d ON d.id = u.device WHERE ?1 = '' OR "
		     "u.device = ?1",
		     &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, device ? device : "");
	while (r == 0 && (rc = hqsql_step(st)) == HQSQL_ROW) {
		const char *dev = hqsql_column_text(st, 0), *hex = hqsql_column_text(st, 1);
		int64_t last = hqsql_column_int64(st, 2), touched;

		if (!dev || !hex)
			continue;
		touched = hqfiles_part_touched(files, dev, hex);
		if (touched > last)
			last = touched;
		if (!device && hqsql_column_int64(st, 3))
			r = stale_add(list, n, cap, dev, hex, "revoked");
		else if (idle_for(now_ms, last, idle_ms))
			r = stale_add(list, n, cap, dev, hex, "idle");
	}
	if (r < 0)
		r = fs_error_set(err, r, "out of memory");
	else if (rc != HQSQL_DONE)
		r = hqsql_fail(db, "list the uploads", err);
	hqsql_finalize(st);
	return r;
}

/* Directories of chunks no upload names, as old as idle_ms, or of a
 * revoked device. */
static int stale_parts(struct hqsql *db, const struct hqfiles *files, uint64_t now_ms,
		       uint64_t idle_ms, struct stale **list, size_t *n, size_t *cap,
		       struct fs_error *err)
{
	struct hqfiles_parts *parts = NULL;
	size_t np = 0;
	int r;

	if ((r = hqfiles_part_list(files, &parts, &np, err)) < 0)
		return r;
	for (size_t i = 0; r == 0 && i < np; i++) {
		uint64_t size = 0;
		uint32_t chunk = 0;
		int revoked = 0;
		uint8_t spk[crypto_sign_PUBLICKEYBYTES], bpk[crypto_box_PUBLICKEYBYTES];

		int named = upload_row(db, parts[i].device, parts[i].hex, &size, &chunk, err);

		if (named != 0) {
			r = named < 0 ? named : 0;
			continue;
		}
		if ((r = hqenroll_device_keys(db, parts[i].device, spk, bpk, &revoked, err)) < 0)
			break;
		r = 0;
		if (revoked || idle_for(now_ms, parts[i].touched_ms, idle_ms))
			if (stale_add(list, n, cap, parts[i].device, parts[i].hex, "unnamed") < 0)
				r = fs_error_set(err, -ENOMEM, "out of memory");
	}
	free(parts);
	return r < 0 ? r : 0;
}

int upload_sweep(struct hqsql *db, const struct hqfiles *files, const char *device, uint64_t now_ms,
		 uint64_t idle_ms, unsigned long long *ret_dropped, struct fs_error *err)
{
	struct stale *list = NULL;
	size_t n = 0, cap = 0;
	int r;

	*ret_dropped = 0;
	if ((r = stale_uploads(db, files, device, now_ms, idle_ms, &list, &n, &cap, err)) < 0 ||
	    (!device && (r = stale_parts(db, files, now_ms, idle_ms, &list, &n, &cap, err)) < 0))
		goto out;
	for (size_t i = 0; i < n; i++) {
		if ((r = drop_upload(db, files, &list[i], now_ms, err)) < 0)
			goto out;
		(*ret_dropped)++;
	}
out:
	free(list);
	return r;
}

/* ---- the request -------------------------------------------------------------- */

struct opener {
	const struct upload_ctx *ctx;
	const struct filewire_head *h;
};

/* Open a kept chunk again: it was checked when it came, so a failure now
 * is damage at rest. */
static int open_part(void *arg, uint32_t idx, const uint8_t *msg, size_t len, uint8_t *out,
		     size_t *out_len, struct fs_error *err)
{
	const struct opener *o = arg;
	struct fs_error why = { 0 };
	struct filewire_head h;

	if (filewire_parse(msg, len, &h, &why) < 0)
		return fs_error_set(err, -FS_ECORRUPT, "kept chunk %u: %s", (unsigned)idx, why.msg);
	if (h.kind != FILEWIRE_CHUNK || h.index != idx || h.size != o->h->size ||
	    h.chunk_size != o->h->chunk_size || memcmp(h.sha256, o->h->sha256, 32) ||
	    memcmp(h.device, o->h->device, 16))
		return fs_error_set(err, -FS_ECORRUPT, "kept chunk %u: not the chunk named",
				    (unsigned)idx);
	if (filewire_open(msg, len, &h, o->ctx->hq->box_pk, o->ctx->hq->box_sk, out, &why) < 0)
		return fs_error_set(err, -FS_ECORRUPT, "kept chunk %u: %s", (unsigned)idx, why.msg);
	*out_len = filewire_chunk_len(&h);
	return 0;
}

/* The last chunk came: make the file, or drop what does not hash to it. */
static int assemble(struct upload_ctx *ctx, const struct filewire_head *h, const char *hex,
		    struct upload_result *res, struct fs_error *err)
{
	struct opener o = { .ctx = ctx, .h = h };
	uint32_t n = filewire_chunks(h->size, h->chunk_size);
	int r;

	r = hqfiles_part_finish(ctx->files, res->device, hex, n, open_part, &o, err);
	if (r == -FS_EVALID || r == -FS_ECORRUPT) {
		/* They never will hash to it: the device sends it again. */
		int d = hqfiles_part_drop(ctx->files, res->device, hex, err);

		if (d == 0)
			d = run(ctx->db, "DELETE FROM uploads WHERE device = ?1 AND sha256 = ?2",
				res->device, hex, NULL, 0, "end an upload", err);
		if (d < 0)
			return d;
		return REFUSE(res, 422, "hash_mismatch",
			      "device %s: the chunks of file %.12s do not hash to its name; "
			      "send it again",
			      res->device, hex);
	}
	if (r < 0)
		return r;
	if ((r = note_file(ctx, res->device, hex, h->size, err)) < 0)
		return r;
	res->completed = 1;
	res->file_size = h->size;
	return answer_complete(res, res->stored, err);
}

/* A chunk, checked: keep it; with the last one, make the file. */
static int take_chunk(struct upload_ctx *ctx, const struct filewire_head *h, const uint8_t *body,
		      size_t len, const char *hex, struct upload_result *res, struct fs_error *err)
{
	uint32_t n = filewire_chunks(h->size, h->chunk_size), have = 0;
	int r;

	if ((r = hqfiles_part_put(ctx->files, res->device, hex, h->index, body, len, err)) < 0)
		return r;
	res->stored = r;
	/* Counting reads the directory: only once the last chunk is there. */
	if (hqfiles_part_has(ctx->files, res->device, hex, n - 1) &&
	    (r = hqfiles_part_count(ctx->files, res->device, hex, n, NULL, &have, err)) < 0)
		return r;
	if (have == n)
		return assemble(ctx, h, hex, res, err);
	if (!(res->answer = cJSON_CreateObject()) ||
	    !cJSON_AddBoolToObject(res->answer, "complete", 0) ||
	    !cJSON_AddBoolToObject(res->answer, "stored", res->stored))
		return fs_error_set(err, -ENOMEM, "out of memory");
	res->status = 200;
	return 0;
}

/* A query for a file HQ does not hold: begin its upload, within the
 * quota, or go on with the one begun. */
static int begin(struct upload_ctx *ctx, const struct filewire_head *h, const char *hex,
		 struct upload_result *res, struct fs_error *err)
{
	int64_t nums[3] = { (int64_t)h->size, (int64_t)h->chunk_size, (int64_t)ctx->now_ms };
	uint64_t used = 0;
	int r;

	/* Counted in the writers' transaction: queries sent side by side
	 * for several files are counted one after another. */
	if ((r = hqsql_begin(ctx->db, HQSQL_WRITE, err)) < 0)
		return r;
	if ((r = device_bytes(ctx->db, res->device, hex, &used, err)) < 0)
		goto out;
	if (ctx->quota_bytes && used + h->size > ctx->quota_bytes) {
		r = REFUSE(res, 413, "quota_exceeded",
			   "device %s: file %.12s is %.1f MB, and the device holds %.1f MB at "
			   "HQ; its quota is %.1f MB",
			   res->device, hex, mb(h->size), mb(used), mb(ctx->quota_bytes));
		goto out;
	}
	if ((r = run(ctx->db,
		     "INSERT INTO uploads(device, sha256, size, chunk_size, started_at) VALUES "
		     "(?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
		     res->device, hex, nums, 3, "begin an upload", err)) == 0)
		r = hqsql_commit(ctx->db, err);
out:
	if (r < 0 || res->status)
		hqsql_rollback(ctx->db);
	return r;
}

int upload_handle(struct upload_ctx *ctx, const uint8_t *body, size_t len,
		  struct upload_result *res, struct fs_error *err)
{
	struct filewire_head h;
	struct fs_error why = { 0 };
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], box_pk[crypto_box_PUBLICKEYBYTES];
	char hex[HQFILES_HEX + 1];
	uint8_t *plain = NULL;
	uint64_t size = 0;
	uint32_t chunk_size = 0;
	int r, revoked = 0;

	memset(res, 0, sizeof(*res));
	if (filewire_parse(body, len, &h, &why) < 0)
		return REFUSE(res, 400, "malformed", "%s", why.msg);
	sodium_bin2hex(res->device, sizeof(res->device), h.device, sizeof(h.device));
	sodium_bin2hex(hex, sizeof(hex), h.sha256, sizeof(h.sha256));
	if ((r = hqenroll_device_keys(ctx->db, res->device, sign_pk, box_pk, &revoked, err)) < 0)
		return r;
	if (r == 0)
		return REFUSE(res, 401, "unknown_device", "the device is not enrolled");
	if (filewire_verify(body, len, sign_pk) < 0)
		return REFUSE(res, 401, "bad_signature",
			      "the signature does not verify with the enrolled key");
	if (revoked)
		return REFUSE(res, 403, "revoked", "the device has been revoked");
	if (h.kind == FILEWIRE_CHUNK) {
		/* Opened only to check it: it is kept as it came, sealed. */
		if (!(plain = malloc(filewire_chunk_len(&h))))
			return fs_error_set(err, -ENOMEM, "out of memory");
		r = filewire_open(body, len, &h, ctx->hq->box_pk, ctx->hq->box_sk, plain, &why);
		sodium_memzero(plain, filewire_chunk_len(&h));
		free(plain);
		if (r < 0)
			return REFUSE(res, 400, "malformed", "%s", why.msg);
	}
	/* Held already, from this device or another: nothing to send. */
	if (hqfiles_has(ctx->files, hex)) {
		if ((r = upload_file_known(ctx->db, hex, NULL, err)) < 0 ||
		    (r == 0 && (r = note_file(ctx, res->device, hex, h.size, err)) < 0))
			return r;
		if ((r = run(ctx->db, "DELETE FROM uploads WHERE device = ?1 AND sha256 = ?2",
			     res->device, hex, NULL, 0, "end an upload", err)) < 0 ||
		    (r = hqfiles_part_drop(ctx->files, res->device, hex, err)) < 0)
			return r;
		return answer_complete(res, 0, err);
	}
	if ((r = upload_row(ctx->db, res->device, hex, &size, &chunk_size, err)) < 0)
		return r;
	if (r == 0 && h.kind == FILEWIRE_CHUNK)
		return REFUSE(res, 409, "not_begun",
			      "device %s: no upload of file %.12s begun; ask which chunks HQ "
			      "holds first",
			      res->device, hex);
	if (r == 0) {
		unsigned long long dropped = 0;

		/* The device's uploads it gave up on no longer count against
		 * its quota. */
		if (ctx->idle_ms && (r = upload_sweep(ctx->db, ctx->files, res->device, ctx->now_ms,
						      ctx->idle_ms, &dropped, err)) < 0)
			return r;
		if ((r = begin(ctx, &h, hex, res, err)) < 0 || res->status)
			return r;
		size = h.size;
		chunk_size = h.chunk_size;
	}
	if (size != h.size)
		return REFUSE(res, 409, "upload_mismatch",
			      "device %s: file %.12s was begun with another size", res->device,
			      hex);
	if (h.kind == FILEWIRE_QUERY) {
		uint32_t n = filewire_chunks(size, chunk_size), have = 0;

		/* Every chunk came, but the file was not made (HQ stopped, its
		 * disk was full): make it now, or the device waits for ever. */
		if ((r = hqfiles_part_count(ctx->files, res->device, hex, n, NULL, &have, err)) < 0)
			return r;
		if (have == n) {
			h.chunk_size = chunk_size;
			return assemble(ctx, &h, hex, res, err);
		}
		return answer_have(ctx, res, hex, size, chunk_size, err);
	}
	if (chunk_size != h.chunk_size)
		return REFUSE(res, 409, "upload_mismatch",
			      "device %s: file %.12s was begun with chunks of %u bytes",
			      res->device, hex, (unsigned)chunk_size);
	return take_chunk(ctx, &h, body, len, hex, res, err);
}
