/* upload.h - attached files arriving from devices: POST /v1/files
 * (docs/PROTOCOL.md, "Attached files").
 *
 * A device first asks which chunks of a file HQ holds (a query, sync/
 * filewire.h), which begins the upload: HQ notes it in table uploads
 * with its size and chunk size, once the device's quota allows it.  The
 * device then sends the chunks HQ lacks, in any order; each is checked
 * (shape, the device's signature, not revoked, the seal and its
 * binding) and kept as it arrived, sealed, under the data directory
 * (hq/files.h).  With the last one, HQ opens them in order into its
 * sealed file store, checks that they hash to the file's name, and, in
 * one transaction, notes the file in table files, ends the upload and
 * appends "file_received" {device, sha256, size} to the audit log.
 *
 * So a chunk sent twice (a lost answer, a replay) is kept once and
 * changes nothing; a file HQ holds, from any device, is answered
 * complete at once (deduplication by hash); chunks that do not hash to
 * the name are dropped (422 hash_mismatch) and the device starts again.
 * Quota: the files a device was first to send plus its uploads in
 * progress, at most quota_bytes (0: no quota).  Before a device begins
 * an upload, its uploads no chunk reached for idle_ms are dropped
 * (upload_sweep), so one it gave up does not hold its quota for ever.
 *
 * Thread safety: one context per request (its own database connection);
 * two requests for the same device and file at once keep each chunk
 * once, and the file once.  Errors < 0 are HQ's own (database, disk:
 * -ENOSPC, -EBUSY ...); a refusal of the request is res->status with
 * res->error and a message that names the device and the file's hash
 * prefix, never its bytes.
 */
#ifndef FS_UPLOAD_H
#define FS_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "crypto/fserr.h"
#include "crypto/identity.h"
#include "hq/files.h"
#include "hq/hqsql.h"

struct upload_ctx {
	struct hqsql *db;
	const struct identity *hq;
	const struct hqfiles *files;
	uint64_t quota_bytes; /* per device; 0: none */
	uint64_t idle_ms;     /* a device's uploads idle this long are dropped */
	uint64_t now_ms;
};

struct upload_result {
	int status;	    /* 200, or a refusal's */
	const char *error;  /* with a refusal: the code */
	char message[256];  /* with a refusal */
	char device[33];    /* as the message named it, or "" */
	cJSON *answer;	    /* with 200: the JSON body (the caller's) */
	int stored;	    /* a chunk kept now */
	int completed;	    /* the file was assembled now */
	uint64_t file_size; /* with completed */
};

int upload_handle(struct upload_ctx *ctx, const uint8_t *body, size_t len,
		  struct upload_result *res, struct fs_error *err) FS_WUR;

/* Drop uploads no chunk reached for idle_ms (counted from when the
 * upload began or its last chunk came), with their chunks: of device
 * only, or, with device NULL, of every device, together with every
 * upload of a revoked device whatever its age, and every directory of
 * chunks no upload names (HQ stopped between the two) once as old.
 * Each is audited "upload_dropped" {sha256, reason: idle, revoked or
 * unnamed} and counted in *ret_dropped.  Nothing is lost: a device keeps
 * each file until HQ holds it, and begins its upload again.  Its own
 * transactions; a chunk that arrives while its upload is dropped leaves
 * a directory no upload names, dropped by a later sweep. */
int upload_sweep(struct hqsql *db, const struct hqfiles *files, const char *device, uint64_t now_ms,
		 uint64_t idle_ms, unsigned long long *ret_dropped, struct fs_error *err) FS_WUR;

/* Whether HQ holds the file hex (table files): 1, 0, or < 0. */
int upload_file_known(struct hqsql *db, const char *hex, uint64_t *ret_size,
		      struct fs_error *err) FS_WUR;

#endif
