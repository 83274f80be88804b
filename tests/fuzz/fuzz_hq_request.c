/* fuzz_hq_request.c - HQ's request bodies, through the same functions the
 * HTTP server calls, against a real HQ database: POST /v1/enroll
 * (hqenroll_device) and POST /v1/changesets (ingest_changeset).
 *
 * The first byte picks how far the input can reach:
 *   0  an enrolment body as sent;
 *   1  an enrolment body whose "token" is replaced by a live token, so
 *      the token lookup and the proof check run;
 *   2  a change set as sent;
 *   3  a change set re-signed by an enrolled device (the device id in the
 *      header is rewritten to it), so sequence, chain, seal and payload
 *      checks run;
 *   4  a payload (the canonical JSON array of changes) that the harness
 *      compresses, seals to HQ and signs as a device's first set, so the
 *      payload rules, form validation, quarantine and merge run.
 * Each input that needs one gets a fresh device (keys derived from a
 * counter), enrolled directly in the database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <sodium.h>
#include <zstd.h>

#include "hq/hqdb.h"
#include "hq/hqenroll.h"
#include "hq/hqforms.h"
#include "hq/hqkeys.h"
#include "hq/ingest.h"
#include "sync/changeset.h"
#include "sync/hlc.h"
#include "tests/fuzz/fuzz.h"

/* The database grows with every input; start a fresh one after this many. */
#define FRESH_AFTER 5000
#define NOW_MS 1795000000000ULL

static char dir[] = "/tmp/fuzz_hq_request.XXXXXX";
static struct identity *hq;
static struct hq_forms *forms;
static struct hqsql *db;
static char token[TOKEN_TEXT_MAX];
static unsigned inputs;
static uint64_t device_counter;

struct device {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	char id[IDENTITY_ID_HEXLEN + 1];
};

static uint64_t fixed_clock(void)
{
	return NOW_MS;
}

static void db_fresh(void)
{
	struct fs_error err = { 0 };
	char path[sizeof(dir) + 32];
	static const char *const files[] = { HQDB_FILE, HQDB_FILE "-wal", HQDB_FILE "-shm" };

	db = hqdb_close(db);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		(void)unlink(path);
	}
	if (hqdb_open(dir, HQDB_CREATE, &db, &err) < 0 ||
	    hqsql_exec(db, "PRAGMA synchronous=OFF", "fuzz", &err) < 0 ||
	    hqenroll_token_create(db, hq, "Tim Fuzz", "Кикинда", NULL, NOW_MS, NOW_MS + 86400000ULL,
				  NULL, token, &err) < 0) {
		fprintf(stderr, "fuzz_hq_request: HQ database in %s: %s\n", dir, err.msg);
		abort();
	}
	inputs = 0;
}

static void cleanup(void)
{
	char cmd[sizeof(dir) + 16];

	db = hqdb_close(db);
	hq = identity_free(hq);
	forms = hqforms_free(forms);
	sodium_memzero(token, sizeof(token));
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_hq_request: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct fs_error err = { 0 };

	(void)argc, (void)argv;
	if (sodium_init() < 0 || !mkdtemp(dir))
		abort();
	if (hqkeys_create(dir, &err) < 0 || hqkeys_load(dir, &hq, &err) < 0 ||
	    hqforms_load(FS_SOURCE_DIR "/conf/forms", &forms, &err) < 0) {
		fprintf(stderr, "fuzz_hq_request: HQ in %s: %s\n", dir, err.msg);
		abort();
	}
	atexit(cleanup);
	db_fresh();
	return 0;
}

/* A new device, enrolled the way hqenroll.c registers one. */
static void device_enrol(struct device *d)
{
	uint8_t seed[crypto_sign_SEEDBYTES] = { 0 };
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES] = { 0 };
	struct hqsql_stmt *st = NULL;

	device_counter++;
	memcpy(seed, &device_counter, sizeof(device_counter));
	if (crypto_sign_seed_keypair(d->pk, d->sk, seed) != 0)
		abort();
	identity_device_id(d->pk, d->id);
	if (hqsql_prepare(db,
			  "INSERT INTO devices(id, sign_pk, box_pk, team, municipality,"
			  " enrolled_at) VALUES(?1, ?2, ?3, 'Tim Fuzz', 'Кикинда', 0)",
			  &st, NULL) < 0)
		abort();
	hqsql_bind_text(st, 1, d->id);
	hqsql_bind_blob(st, 2, d->pk, sizeof(d->pk));
	hqsql_bind_blob(st, 3, box_pk, sizeof(box_pk));
	if (hqsql_step(st) != HQSQL_DONE)
		abort();
	hqsql_finalize(st);
}

static void ingest(const uint8_t *body, size_t len)
{
	struct ingest_ctx ctx = { .db = db, .hq = hq, .forms = forms, .wall_ms = fixed_clock };
	struct ingest_result res = { 0 };
	struct fs_error err = { 0 };

	if (ingest_changeset(&ctx, body, len, &res, &err) < 0) {
		/* HQ's own failure (database, memory) would be a 500: never
		 * from the bytes of a request. */
		fprintf(stderr, "fuzz_hq_request: ingest failed: %s\n", err.msg);
		abort();
	}
	ingest_result_clear(&res);
}

static void enrol(const uint8_t *body, size_t len, int live_token)
{
	struct hqenroll_result res = { 0 };
	struct fs_error err = { 0 };
	char *text = NULL;
	cJSON *o = NULL;

	if (live_token) {
		o = cJSON_ParseWithLength((const char *)body, len);
		if (!cJSON_IsObject(o))
			goto out;
		cJSON_DeleteItemFromObjectCaseSensitive(o, "token");
		if (!cJSON_AddStringToObject(o, "token", token) ||
		    !(text = cJSON_PrintUnformatted(o)))
			goto out;
		body = (const uint8_t *)text;
		len = strlen(text);
	}
	if (hqenroll_device(db, hq, (const char *)body, len, NOW_MS, &res, &err) < 0) {
		fprintf(stderr, "fuzz_hq_request: enrol failed: %s\n", err.msg);
		abort();
	}
	hqenroll_result_clear(&res);
out:
	cJSON_Delete(o);
	free(text);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Sign [0, len - 64) into the last 64 bytes, as device d. */
static void sign_tail(const struct device *d, uint8_t *buf, size_t len)
{
	crypto_sign_detached(buf + len - CHANGESET_SIG_BYTES, NULL, buf, len - CHANGESET_SIG_BYTES,
			     d->sk);
}

static void resigned(const uint8_t *data, size_t size)
{
	struct device d;
	uint8_t *buf;

	if (size < CHANGESET_HEADER_BYTES + CHANGESET_SIG_BYTES)
		return;
	if (!(buf = malloc(size)))
		return;
	memcpy(buf, data, size);
	device_enrol(&d);
	if (sodium_hex2bin(buf + 8, CHANGESET_DEVICE_BYTES, d.id, IDENTITY_ID_HEXLEN, NULL, NULL,
			   NULL) != 0)
		abort();
	sign_tail(&d, buf, size);
	ingest(buf, size);
	free(buf);
}

/* The layout of docs/PROTOCOL.md, "Change set, version 1", around a
 * payload of the fuzzer's choosing. */
static void from_payload(const uint8_t *data, size_t size)
{
	cJSON *arr = cJSON_ParseWithLength((const char *)data, size);
	int count = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 1;
	size_t zcap = ZSTD_compressBound(size), zlen, sealed, total;
	uint8_t *z = malloc(zcap ? zcap : 1), *buf = NULL;
	struct device d;

	cJSON_Delete(arr);
	if (!z)
		return;
	zlen = ZSTD_compress(z, zcap, data, size, 1);
	if (ZSTD_isError(zlen))
		goto out;
	sealed = zlen + crypto_box_SEALBYTES;
	total = CHANGESET_HEADER_BYTES + sealed + CHANGESET_SIG_BYTES;
	if (!(buf = calloc(1, total)))
		goto out;
	device_enrol(&d);
	memcpy(buf, CHANGESET_MAGIC, 4);
	buf[4] = CHANGESET_VERSION;
	buf[5] = CHANGESET_CODEC_ZSTD_JSON;
	if (sodium_hex2bin(buf + 8, CHANGESET_DEVICE_BYTES, d.id, IDENTITY_ID_HEXLEN, NULL, NULL,
			   NULL) != 0)
		abort();
	put_be64(buf + 24, 1);
	put_be64(buf + 64, 0);
	put_be64(buf + 72, UINT64_MAX);
	put_be32(buf + 80, (uint32_t)count);
	put_be32(buf + 84, (uint32_t)sealed);
	if (crypto_box_seal(buf + CHANGESET_HEADER_BYTES, z, zlen, hq->box_pk) != 0)
		goto out;
	sign_tail(&d, buf, total);
	ingest(buf, total);
out:
	free(z);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (++inputs >= FRESH_AFTER)
		db_fresh();
	switch (data[0] % 5) {
	case 0:
	case 1:
		enrol(data + 1, size - 1, data[0] % 5 == 1);
		break;
	case 2:
		ingest(data + 1, size - 1);
		break;
	case 3:
		resigned(data + 1, size - 1);
		break;
	default:
		from_payload(data + 1, size - 1);
		break;
	}
	return 0;
}
