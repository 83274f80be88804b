/* test_changeset.c - sync/: change sets, the pinned vector, the merge rule. */
#include <stdio.h>
#include <zstd.h>

#include "sync/changeset.h"
#include "sync/envelope.h"
#include "sync/merge.h"
#include "sync/zmem.h"
#include "tests/fixture.h"
#include "tests/test.h"
#include "tests/vectors/changeset_vector.h"

struct keys {
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], sign_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES], box_sk[crypto_box_SECRETKEYBYTES];
};

static void encode_vector_changes(const struct keys *k, uint64_t seq, uint8_t **buf, size_t *len)
{
	struct changeset_header h = { .seq = seq };
	struct change ch[VECTOR_CHANGES];
	struct fs_error err = { 0 };

	vector_device_id(k->sign_pk, h.device);
	if (seq > 1)
		memset(h.prev, 0xab, sizeof(h.prev));
	ASSERT_OK(vector_changes(ch));
	if (changeset_encode(&h, ch, VECTOR_CHANGES, k->box_pk, k->sign_sk, buf, len, &err) < 0)
		TEST_FAIL("encode: %s", err.msg);
	for (int i = 0; i < VECTOR_CHANGES; i++)
		cJSON_Delete(ch[i].value);
}

/* Decode, verify and open; return 0 or the first error. */
static int accept(const struct keys *k, const uint8_t *buf, size_t len)
{
	struct changeset_header h;
	struct change *ch = NULL;
	size_t n = 0;
	int r;

	if ((r = changeset_parse(buf, len, &h, NULL)) < 0 ||
	    (r = changeset_verify(buf, len, k->sign_pk)) < 0 ||
	    (r = changeset_open(buf, len, k->box_pk, k->box_sk, &ch, &n, NULL)) < 0)
		return r;
	changes_free(ch, n);
	return 0;
}

static void check_vector_changes(const struct change *ch, size_t n, uint8_t version)
{
	ASSERT_EQ(n, VECTOR_CHANGES);
	/* Form versions travel from version 3; before, every change reads
	 * as made under the device's own form. */
	ASSERT_EQ(ch[0].form_version, version >= 3 ? 2u : 0u);
	ASSERT_EQ(ch[1].form_version, version >= 3 ? 2u : 0u);
	ASSERT_EQ(ch[2].form_version, 0u);
	for (size_t i = 0; i < n; i++) {
		ASSERT_STR_EQ(ch[i].record_id, VECTOR_RECORD);
		ASSERT_STR_EQ(ch[i].collection, "beneficiaries");
	}
	ASSERT_STR_EQ(ch[0].field, "full_name");
	ASSERT_STR_EQ(ch[0].value->valuestring, "Ружичић Ђорђе");
	ASSERT_STR_EQ(ch[1].field, "household_size");
	ASSERT_EQ(ch[1].value->valueint, 4);
	ASSERT_STR_EQ(ch[2].field, "_deleted");
	ASSERT_TRUE(cJSON_IsTrue(ch[2].value));
	ASSERT_EQ(ch[0].hlc, 0x0193a1b2c3d40000ULL);
	ASSERT_EQ(ch[2].hlc, 0x0193a1b2c3d50001ULL);
}

/* Parse, verify and open buf; it must hold the vector's changes as seq. */
static void check_vector_set(const struct keys *k, const uint8_t *buf, size_t len, uint64_t seq,
			     uint8_t version)
{
	struct changeset_header h;
	struct change *ch = NULL;
	uint8_t device[16];
	size_t n;

	vector_device_id(k->sign_pk, device);
	ASSERT_OK(changeset_parse(buf, len, &h, NULL));
	ASSERT_MEM_EQ(h.device, device, 16);
	ASSERT_EQ(h.seq, seq);
	ASSERT_EQ(h.count, 3);
	ASSERT_EQ(h.hlc_min, 0x0193a1b2c3d40000ULL);
	ASSERT_EQ(h.hlc_max, 0x0193a1b2c3d50001ULL);
	ASSERT_OK(changeset_verify(buf, len, k->sign_pk));
	ASSERT_OK(changeset_open(buf, len, k->box_pk, k->box_sk, &ch, &n, NULL));
	ASSERT_EQ(h.version, version);
	check_vector_changes(ch, n, version);
	changes_free(ch, n);
}

TEST(changeset_roundtrip)
{
	struct keys k;
	uint8_t *buf = NULL;
	size_t len;

	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	encode_vector_changes(&k, 7, &buf, &len);
	check_vector_set(&k, buf, len, 7, CHANGESET_VERSION);
	free(buf);
}

TEST(changeset_every_flipped_byte_rejected)
{
	struct keys k;
	uint8_t *buf = NULL;
	size_t len;

	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	encode_vector_changes(&k, 1, &buf, &len);
	ASSERT_OK(accept(&k, buf, len));
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			buf[i] ^= (uint8_t)(1 << bit);
			if (accept(&k, buf, len) == 0)
				TEST_FAIL("flipping bit %d of byte %zu was accepted", bit, i);
			buf[i] ^= (uint8_t)(1 << bit);
		}
	}
	/* Every truncation. */
	for (size_t cut = 0; cut < len; cut++)
		ASSERT_TRUE(accept(&k, buf, cut) < 0);
	free(buf);
}

TEST(changeset_wrong_keys_and_versions)
{
	struct keys k, other;
	struct changeset_header h;
	struct change *ch = NULL;
	struct fs_error err = { 0 };
	uint8_t *buf = NULL;
	size_t len, n;

	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	crypto_sign_keypair(other.sign_pk, other.sign_sk);
	crypto_box_keypair(other.box_pk, other.box_sk);
	encode_vector_changes(&k, 1, &buf, &len);
	ASSERT_EQ(changeset_verify(buf, len, other.sign_pk), -FS_EAUTH);
	ASSERT_EQ(changeset_open(buf, len, other.box_pk, other.box_sk, &ch, &n, &err), -FS_EAUTH);
	buf[4] = CHANGESET_VERSION_COLUMNS + 1;
	ASSERT_EQ(changeset_parse(buf, len, &h, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "version 6");
	buf[4] = 0;
	ASSERT_EQ(changeset_parse(buf, len, &h, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "version 0");
	buf[4] = CHANGESET_VERSION;
	/* Sequence 1 must not claim a predecessor. */
	buf[32] = 1;
	ASSERT_EQ(changeset_parse(buf, len, &h, &err), -FS_EFORMAT);
	free(buf);
	/* Oversized input is refused before it is looked at. */
	buf = calloc(1, CHANGESET_MAX_BYTES + 1);
	ASSERT_EQ(changeset_parse(buf, CHANGESET_MAX_BYTES + 1, &h, &err), -FS_ELIMIT);
	free(buf);
}

/* A vector pins the layout in docs/PROTOCOL.md byte for byte. */
static void check_vector_file(const char *path, uint8_t version, const char *hash_hex)
{
	const uint8_t head[] = { 'F', 'S', 'C', 'S', version, 1, 0, 0 };
	struct keys k;
	uint8_t buf[4096], device[16], hash[32], want_hash[32];
	size_t len;

	len = test_read_hex(path, buf, sizeof(buf));
	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	vector_device_id(k.sign_pk, device);
	ASSERT_MEM_EQ(buf, head, sizeof(head));
	ASSERT_MEM_EQ(buf + 8, device, 16);
	ASSERT_EQ(len, 88 +
			       (((size_t)buf[84] << 24) | ((size_t)buf[85] << 16) |
				((size_t)buf[86] << 8) | buf[87]) +
			       64);
	check_vector_set(&k, buf, len, 1, version);
	changeset_hash(buf, len, hash);
	ASSERT_OK(sodium_hex2bin(want_hash, sizeof(want_hash), hash_hex, 64, NULL, NULL, NULL));
	ASSERT_MEM_EQ(hash, want_hash, 32);
}

/* Version 1 (no binding) is still read: sets packed before version 2. */
TEST(changeset_vector_v1)
{
	check_vector_file(FS_SOURCE_DIR "/tests/vectors/changeset-v1.hex", 1,
			  "263ae8ac5cc3b2a3fef28f387620da97850e6a270edbcc4a8930f2849c30cf9c");
}

TEST(changeset_vector_v3)
{
	check_vector_file(FS_SOURCE_DIR "/tests/vectors/changeset-v3.hex", 3,
			  "0098b8a80b736cfafc4b6cea8572d7c7280167b9bdf50c95a03ebe58aa3f8a4b");
}

/* Version 4: version 3's changes, the rows grouped by record. */
TEST(changeset_vector_v4)
{
	check_vector_file(FS_SOURCE_DIR "/tests/vectors/changeset-v4.hex", 4,
			  "3a2ce5216865be9954fa4621aded0a04391d5f88f704710a3083e230b54ab078");
}

/* Version 2 (no form versions) is still read: sets packed before. */
TEST(changeset_vector_v2)
{
	check_vector_file(FS_SOURCE_DIR "/tests/vectors/changeset-v2.hex", 2,
			  "881aa7d3f104d98d0e2bf65f97ff093f7f1ff1603510074229188d6f1ac7c9b9");
}

/* The sealed payload names its device, sequence and previous hash: a set
 * re-signed under another header does not open, though its signature
 * (by whoever re-signed it) verifies. */
TEST(changeset_binding_refuses_resigned_payload)
{
	struct keys k, other;
	struct change *ch = NULL;
	struct fs_error err = { 0 };
	uint8_t *buf = NULL, device[16];
	size_t len, n;

	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	crypto_sign_keypair(other.sign_pk, other.sign_sk);
	encode_vector_changes(&k, 1, &buf, &len);
	ASSERT_OK(accept(&k, buf, len));
	/* Another device's id, or another sequence: each re-signed. */
	for (int what = 0; what < 3; what++) {
		uint8_t *copy = malloc(len);

		ASSERT_TRUE(copy);
		memcpy(copy, buf, len);
		if (what == 0) {
			vector_device_id(other.sign_pk, device);
			memcpy(copy + 8, device, 16);
		} else if (what == 1) {
			copy[31] = 2;
			memset(copy + 32, 0xab, 32);
		} else {
			copy[63] ^= 1; /* only the previous hash (seq 1 wants zeros: use 2) */
			copy[31] = 2;
		}
		crypto_sign_detached(copy + len - 64, NULL, copy, len - 64, other.sign_sk);
		ASSERT_OK(changeset_verify(copy, len, other.sign_pk));
		ASSERT_EQ(changeset_open(copy, len, k.box_pk, k.box_sk, &ch, &n, &err), -FS_EAUTH);
		ASSERT_STR_CONTAINS(err.msg, "bound to another device, sequence or previous hash");
		free(copy);
	}
	free(buf);
}

/* Version 4 carries the same changes with one row per record, HLC and
 * form version; the pinned text is its canonical form. */
TEST(changeset_v4_rows_by_record)
{
	int version = CHANGESET_VERSION_GROUPED;
	static const char want[] =
		"[[\"" VECTOR_RECORD "\",\"beneficiaries\",\"0193a1b2c3d40000\",2,"
		"{\"full_name\":\"Ружичић Ђорђе\",\"household_size\":4}],"
		"[\"" VECTOR_RECORD "\",\"beneficiaries\",\"0193a1b2c3d50001\",0,"
		"{\"_deleted\":true}]]";
	struct changeset_header h = { .version = CHANGESET_VERSION_GROUPED, .seq = 1 };
	struct change ch[VECTOR_CHANGES];
	struct fs_error err = { 0 };
	uint8_t *buf = NULL;
	size_t len;
	char *text;
	struct keys k;

	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	vector_device_id(k.sign_pk, h.device);
	ASSERT_OK(vector_changes(ch));
	text = changeset_payload_print(ch, VECTOR_CHANGES, &version);
	ASSERT_TRUE(text);
	ASSERT_STR_EQ(text, want);
	free(text);
	if (changeset_encode(&h, ch, VECTOR_CHANGES, k.box_pk, k.sign_sk, &buf, &len, &err) < 0)
		TEST_FAIL("encode: %s", err.msg);
	check_vector_set(&k, buf, len, 1, CHANGESET_VERSION_GROUPED);
	free(buf);
	h.version = CHANGESET_VERSION_COLUMNS + 1;
	ASSERT_EQ(changeset_encode(&h, ch, VECTOR_CHANGES, k.box_pk, k.sign_sk, &buf, &len, &err),
		  -FS_EUSAGE);
	for (int i = 0; i < VECTOR_CHANGES; i++)
		cJSON_Delete(ch[i].value);
}

/* More fields of one record and HLC than a row holds go in the next row,
 * in order; a row over the limit is refused. */
TEST(changeset_v4_long_rows_split)
{
	int version = CHANGESET_VERSION_GROUPED;
	enum { N = CHANGESET_MAX_ROW_FIELDS + 44 };
	struct changeset_header h = { .version = CHANGESET_VERSION_GROUPED, .seq = 1 };
	struct change *ch = calloc(N, sizeof(*ch)), *got = NULL;
	struct fs_error err = { 0 };
	uint8_t *buf = NULL;
	size_t len, n = 0;
	cJSON *rows;
	char *text;
	struct keys k;

	ASSERT_TRUE(ch);
	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	vector_device_id(k.sign_pk, h.device);
	for (int i = 0; i < N; i++) {
		strcpy(ch[i].record_id, VECTOR_RECORD);
		strcpy(ch[i].collection, "beneficiaries");
		snprintf(ch[i].field, sizeof(ch[i].field), "f%d", i);
		ch[i].hlc = 0x0193a1b2c3d40000ULL;
		ASSERT_TRUE((ch[i].value = cJSON_CreateNumber(i)));
	}
	text = changeset_payload_print(ch, N, &version);
	ASSERT_TRUE((rows = cJSON_Parse(text)));
	ASSERT_EQ(cJSON_GetArraySize(rows), 2);
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetArrayItem(rows, 0), 4)),
		  CHANGESET_MAX_ROW_FIELDS);
	cJSON_Delete(rows);
	if (changeset_encode(&h, ch, N, k.box_pk, k.sign_sk, &buf, &len, &err) < 0)
		TEST_FAIL("encode: %s", err.msg);
	ASSERT_OK(changeset_open(buf, len, k.box_pk, k.box_sk, &got, &n, &err));
	ASSERT_EQ(n, N);
	for (int i = 0; i < N; i++) {
		ASSERT_STR_EQ(got[i].field, ch[i].field);
		ASSERT_EQ(got[i].value->valueint, i);
	}
	changes_free(got, n);
	free(buf);
	/* One row of all of them, as a hostile device could write it. */
	h.count = N;
	h.hlc_min = h.hlc_max = ch[0].hlc;
	{
		char *p = strstr(text, "}],[");
		char *q = p ? strchr(p + 3, '{') : NULL;

		ASSERT_TRUE(p && q);
		memmove(p, q, strlen(q) + 1);
		*p = ',';
	}
	fixture_raw_changeset(&h, text, strlen(text), k.box_pk, k.sign_sk, &buf, &len);
	ASSERT_EQ(changeset_open(buf, len, k.box_pk, k.box_sk, &got, &n, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "row 1 has more than 256 fields");
	free(buf);
	free(text);
	changes_free(ch, N);
}

/* A payload made by hand, sealed in a set of version, hlc_min to
 * hlc_max, and count changes: why is the error it must be refused with,
 * or NULL when it must open (ok then checks the changes). */
struct payload_case {
	const char *text;
	uint32_t count;
	const char *why;
};

static void check_payload_cases(uint8_t version, const struct payload_case *cases, size_t ncases,
				void (*ok)(const struct change *ch, size_t n))
{
	struct changeset_header h = { .version = version, .seq = 1 };
	struct fs_error err = { 0 };
	struct change *ch = NULL;
	uint8_t *buf = NULL;
	size_t len, n = 0;
	struct keys k;

	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	vector_device_id(k.sign_pk, h.device);
	h.hlc_min = 0x0193a1b2c3d40000ULL;
	h.hlc_max = 0x0193a1b2c3d50001ULL;
	for (size_t i = 0; i < ncases; i++) {
		h.count = cases[i].count;
		fixture_raw_changeset(&h, cases[i].text, strlen(cases[i].text), k.box_pk, k.sign_sk,
				      &buf, &len);
		memset(&err, 0, sizeof(err));
		if (!cases[i].why) {
			ASSERT_OK(changeset_open(buf, len, k.box_pk, k.box_sk, &ch, &n, &err));
			ok(ch, n);
			changes_free(ch, n);
		} else {
			ASSERT_EQ(changeset_open(buf, len, k.box_pk, k.box_sk, &ch, &n, &err),
				  -FS_EFORMAT);
			ASSERT_STR_CONTAINS(err.msg, cases[i].why);
		}
		free(buf);
	}
}

static void v4_case_ok(const struct change *ch, size_t n)
{
	ASSERT_EQ(n, 2);
	ASSERT_STR_EQ(ch[1].field, "household_size");
	ASSERT_EQ(ch[1].form_version, 2u);
	ASSERT_TRUE(ch[1].value->string == NULL);
}

/* Each rule of a version 4 row, broken by a hand-made set; the first
 * text is well formed, so the refusals are the rows' own. */
TEST(changeset_v4_malformed_rows_refused)
{
#define ROW(hlc, fields) "[\"" VECTOR_RECORD "\",\"beneficiaries\",\"" hlc "\",2," fields "]"
	static const struct payload_case cases[] = {
		{ "[" ROW("0193a1b2c3d40000", "{\"full_name\":\"Ana\",\"household_size\":4}") "]",
		  2, NULL },
		{ "[" ROW("0193a1b2c3d40000", "{\"full_name\":\"Ana\",\"full_name\":\"Ivo\"}") "]",
		  2, "names a field twice" },
		{ "[" ROW("0193a1b2c3d40000", "{}") "]", 1, "row 1 is malformed" },
		{ "[" ROW("0193a1b2c3d40000", "[\"full_name\",\"Ana\"]") "]", 1,
		  "row 1 is malformed" },
		{ "[[\"" VECTOR_RECORD "\",\"beneficiaries\",\"full_name\",\"Ana\","
		  "\"0193a1b2c3d40000\",2]]",
		  1, "row 1 is malformed" },
		{ "[" ROW("0193a1b2c3d40000", "{\"full_name\":\"Ana\",\"household_size\":4}") "]",
		  3, "is not 3 changes" },
		{ "[" ROW("0193a1b2c3d40000", "{\"full_name\":\"Ana\",\"household_size\":4}") "]",
		  1, "is not 1 changes" },
		{ "[" ROW("0193a1b2c3d40000", "{\"Full-Name\":\"Ana\"}") "]", 1,
		  "change 1 is malformed" },
		{ "[" ROW("0193a1b2c3d40000", "{\"full_name\":\"Ana\"}") "," ROW(
			  "0193a1b2c3d60000", "{\"household_size\":4}") "]",
		  2, "change 2 is malformed" },
		{ "{\"full_name\":\"Ana\"}", 1, "is not 1 changes" },
	};
#undef ROW
	check_payload_cases(CHANGESET_VERSION_GROUPED, cases, sizeof(cases) / sizeof(cases[0]),
			    v4_case_ok);
}

/* Version 5: version 4's rows by column, a table per shape. */
TEST(changeset_vector_v5)
{
	check_vector_file(FS_SOURCE_DIR "/tests/vectors/changeset-v5.hex", 5,
			  "cedfa706bb9f30fad107a133bc7c2556a5b20e9e60ec61f42da6e2eb7f1c67bf");
}

/* The vector's changes in version 5 are two tables (form versions 2 and
 * 0); the canonical text is pinned. */
TEST(changeset_v5_tables_by_shape)
{
	static const char want[] =
		"[[\"beneficiaries\",2,[\"" VECTOR_RECORD "\"],[\"0193a1b2c3d40000\"],"
		"{\"full_name\":[\"Ружичић Ђорђе\"],\"household_size\":[4]}],"
		"[\"beneficiaries\",0,[\"" VECTOR_RECORD "\"],[\"0193a1b2c3d50001\"],"
		"{\"_deleted\":[true]}]]";
	struct change ch[VECTOR_CHANGES];
	int version = CHANGESET_VERSION_COLUMNS;
	char *text;

	ASSERT_OK(vector_changes(ch));
	text = changeset_payload_print(ch, VECTOR_CHANGES, &version);
	ASSERT_TRUE(text);
	ASSERT_EQ(version, CHANGESET_VERSION_COLUMNS);
	ASSERT_STR_EQ(text, want);
	free(text);
	for (int i = 0; i < VECTOR_CHANGES; i++)
		cJSON_Delete(ch[i].value);
}

/* changes[0..n): households and visits in turn, as a team records them,
 * each new record at a later HLC; 2 fields a household, 3 a visit, and
 * every fifth visit a note as well (another shape). */
static size_t interleaved_changes(struct change *ch, size_t records)
{
	static const char *const hh[] = { "full_name", "household_size" };
	static const char *const visit[] = { "beneficiary_id", "visit_date", "visit_type",
					     "notes" };
	size_t n = 0;

	for (size_t r = 0; r < records; r++) {
		int is_visit = r % 2, width = is_visit ? (r % 10 == 1 ? 4 : 3) : 2;

		for (int f = 0; f < width; f++, n++) {
			snprintf(ch[n].record_id, sizeof(ch[n].record_id),
				 "0193a1b2-c3d4-7abc-8def-%012x", (unsigned)r);
			strcpy(ch[n].collection, is_visit ? "visits" : "beneficiaries");
			strcpy(ch[n].field, is_visit ? visit[f] : hh[f]);
			ch[n].hlc = 0x0193a1b2c3d40000ULL + ((hlc_t)r << 16);
			ch[n].form_version = is_visit ? 1 : 3;
			ASSERT_TRUE((ch[n].value = f == 1 && !is_visit
							   ? cJSON_CreateNumber((double)r)
							   : cJSON_CreateString(
								     is_visit && f == 3
									     ? "Ђорђе, кров"
									     : "Ana Petrović")));
		}
	}
	return n;
}

/* Encode changes[0..n) asking for version 5; the set must be in version
 * want and open to exactly the changes, in order. */
static void v5_round_trip(struct change *ch, size_t n, uint8_t want)
{
	struct changeset_header h = { .version = CHANGESET_VERSION_COLUMNS, .seq = 1 }, got_h;
	struct fs_error err = { 0 };
	struct change *got = NULL;
	uint8_t *buf = NULL;
	size_t len, got_n = 0;
	struct keys k;

	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	vector_device_id(k.sign_pk, h.device);
	if (changeset_encode(&h, ch, n, k.box_pk, k.sign_sk, &buf, &len, &err) < 0)
		TEST_FAIL("encode: %s", err.msg);
	ASSERT_OK(changeset_parse(buf, len, &got_h, &err));
	ASSERT_EQ(got_h.version, want);
	ASSERT_OK(changeset_open(buf, len, k.box_pk, k.box_sk, &got, &got_n, &err));
	ASSERT_EQ(got_n, n);
	for (size_t i = 0; i < n; i++) {
		char *a = cJSON_PrintUnformatted(ch[i].value);
		char *b = cJSON_PrintUnformatted(got[i].value);

		ASSERT_STR_EQ(got[i].record_id, ch[i].record_id);
		ASSERT_STR_EQ(got[i].collection, ch[i].collection);
		ASSERT_STR_EQ(got[i].field, ch[i].field);
		ASSERT_STR_EQ(b, a);
		ASSERT_EQ(got[i].hlc, ch[i].hlc);
		ASSERT_EQ(got[i].form_version, ch[i].form_version);
		free(a);
		free(b);
	}
	changes_free(got, got_n);
	free(buf);
	for (size_t i = 0; i < n; i++) {
		cJSON_Delete(ch[i].value);
		ch[i].value = NULL;
	}
}

static void v5_change(struct change *c, unsigned record, const char *collection, const char *field,
		      hlc_t hlc)
{
	snprintf(c->record_id, sizeof(c->record_id), "0193a1b2-c3d4-7abc-8def-%012x", record);
	strcpy(c->collection, collection);
	strcpy(c->field, field);
	c->hlc = hlc;
	c->form_version = 1;
	ASSERT_TRUE((c->value = cJSON_CreateNumber(record)));
}

/* Opened, a version 5 set gives back every change in the order packed,
 * though its tables hold them by shape; a set whose HLCs go back is
 * written in version 4, and gives them back the same. */
TEST(changeset_v5_order_kept)
{
	enum { RECORDS = 40, MAX = RECORDS * 4 };
	struct change *ch = calloc(MAX, sizeof(*ch));

	ASSERT_TRUE(ch);
	for (int round = 0; round < 2; round++) {
		size_t n = interleaved_changes(ch, RECORDS);

		/* Round 2: the last household comes first, at its later HLC. */
		if (round == 1) {
			struct change last[2] = { ch[n - 5], ch[n - 4] };

			memmove(ch + 2, ch, (n - 5) * sizeof(*ch));
			ch[0] = last[0];
			ch[1] = last[1];
			ASSERT_STR_EQ(ch[n - 1].field, "visit_type");
		}
		v5_round_trip(ch, n, round ? CHANGESET_VERSION_GROUPED : CHANGESET_VERSION_COLUMNS);
		memset(ch, 0, MAX * sizeof(*ch));
	}
	free(ch);
}

/* The second row of the table that opens is the earlier: it comes
 * first. */
static void v5_case_ok(const struct change *ch, size_t n)
{
	ASSERT_EQ(n, 4);
	ASSERT_STR_EQ(ch[0].record_id, "0193a1b2-c3d4-7abc-8def-0123456789ac");
	ASSERT_STR_EQ(ch[0].value->valuestring, "Ivo");
	ASSERT_STR_EQ(ch[1].field, "household_size");
	ASSERT_EQ(ch[1].value->valueint, 5);
	ASSERT_STR_EQ(ch[2].record_id, VECTOR_RECORD);
	ASSERT_STR_EQ(ch[3].field, "household_size");
	ASSERT_EQ(ch[3].form_version, 2u);
	ASSERT_EQ(ch[3].hlc, 0x0193a1b2c3d50000ULL);
	ASSERT_TRUE(ch[3].value->string == NULL);
}

/* A reader refuses a version 5 table that breaks a rule, naming it. */
TEST(changeset_v5_malformed_tables_refused)
{
#define TABLE(hlcs, fields)                                                                        \
	"[\"beneficiaries\",2,[\"" VECTOR_RECORD "\"," VECTOR_RECORD_2 "]," hlcs "," fields "]"
#define VECTOR_RECORD_2 "\"0193a1b2-c3d4-7abc-8def-0123456789ac\""
#define HLCS "[\"0193a1b2c3d50000\",\"0193a1b2c3d40000\"]"
#define ONE(fields)                                                                                \
	"[\"beneficiaries\",2,[\"" VECTOR_RECORD "\"],[\"0193a1b2c3d40000\"]," fields "]"
	static const struct payload_case cases[] = {
		{ "[" TABLE(HLCS, "{\"full_name\":[\"Ana\",\"Ivo\"],\"household_size\":[4,5]}") "]",
		  4, NULL },
		{ "[" TABLE(HLCS, "{\"full_name\":[\"Ana\"],\"household_size\":[4,5]}") "]", 3,
		  "column 1 is not 2 values" },
		{ "[" TABLE("[\"0193a1b2c3d40000\"]", "{\"full_name\":[\"Ana\",\"Ivo\"]}") "]", 2,
		  "2 ids and 1 HLCs" },
		{ "[" TABLE(HLCS,
			    "{\"full_name\":[\"Ana\",\"Ivo\"],\"full_name\":[\"A\",\"I\"]}") "]",
		  4, "names a field twice" },
		{ "[" TABLE(HLCS, "{}") "]", 2, "table 1 is malformed" },
		{ "[" TABLE(HLCS, "{\"full_name\":\"Ana\"}") "]", 2, "column 1 is not 2 values" },
		{ "[[\"beneficiaries\",2,[],[],{\"full_name\":[]}]]", 1, "table 1 is malformed" },
		{ "[" TABLE(HLCS, "{\"full_name\":[\"Ana\",\"Ivo\"]}") "]", 3, "is not 3 changes" },
		{ "[" TABLE(HLCS, "{\"full_name\":[\"Ana\",\"Ivo\"]}") "]", 1, "is not 1 changes" },
		{ "[" TABLE("[\"0193a1b2c3d40000\",\"0193a1b2c3d60000\"]",
			    "{\"full_name\":[\"Ana\",\"Ivo\"]}") "]",
		  2, "change 2 is malformed" },
		{ "[[\"" VECTOR_RECORD "\",\"beneficiaries\",\"0193a1b2c3d40000\",2,"
		  "{\"full_name\":\"Ana\"}]]",
		  1, "table 1 is malformed" },
		{ "[[\"beneficiaries\",-1,[\"" VECTOR_RECORD "\"],[\"0193a1b2c3d40000\"],"
		  "{\"full_name\":[\"Ana\"]}]]",
		  1, "table 1 is malformed" },
		/* The second table's changes past the header's count are
		 * refused before any is written. */
		{ "[" ONE("{\"full_name\":[\"Ana\"]}") "," TABLE(
			  HLCS, "{\"full_name\":[\"Ana\",\"Ivo\"]}") "]",
		  2, "is not 2 changes" },
		{ "[" ONE("{\"Full-Name\":[\"Ana\"]}") "]", 1, "table 1: column 1 is malformed" },
		{ "[\"beneficiaries\"]", 1, "table 1 is malformed" },
		{ "[" ONE("{\"full_name\":[\"Ana\"]}") ",1]", 2, "table 2 is malformed" },
		{ "[[\"beneficiaries\",2,[\"" VECTOR_RECORD "\"],\"0193a1b2c3d40000\","
		  "{\"full_name\":[\"Ana\"]}]]",
		  1, "table 1 is malformed" },
		{ "[[\"beneficiaries\",2,[\"" VECTOR_RECORD "\"],[\"0193a1b2c3d40000\"],"
		  "{\"full_name\":[\"Ana\"]},0]]",
		  1, "table 1 is malformed" },
		{ "[[7,2,[\"" VECTOR_RECORD
		  "\"],[\"0193a1b2c3d40000\"],{\"full_name\":[\"Ana\"]}]]",
		  1, "change 1 is malformed" },
		{ "[[\"beneficiaries\",2,[7],[\"0193a1b2c3d40000\"],{\"full_name\":[\"Ana\"]}]]", 1,
		  "change 1 is malformed" },
	};
#undef TABLE
#undef HLCS
#undef ONE
#undef VECTOR_RECORD_2
	check_payload_cases(CHANGESET_VERSION_COLUMNS, cases, sizeof(cases) / sizeof(cases[0]),
			    v5_case_ok);
}

/* A table of more fields than a row may hold is refused. */
TEST(changeset_v5_wide_table_refused)
{
	enum { WIDTH = CHANGESET_MAX_ROW_FIELDS + 1 };
	char *text = malloc(WIDTH * 16 + 256);
	struct payload_case wide = { text, WIDTH, "table 1 has more than 256 fields" };
	size_t at;

	ASSERT_TRUE(text);
	at = (size_t)sprintf(text, "[[\"beneficiaries\",2,[\"" VECTOR_RECORD
				   "\"],[\"0193a1b2c3d40000\"],{");
	for (int f = 0; f < WIDTH; f++)
		at += (size_t)sprintf(text + at, "%s\"f%d\":[%d]", f ? "," : "", f, f);
	strcpy(text + at, "}]]");
	check_payload_cases(CHANGESET_VERSION_COLUMNS, &wide, 1, NULL);
	free(text);
}

/* Where the reader's sort would not give back the order packed, the set
 * is version 4; where it would, version 5, whatever the rows' shapes. */
TEST(changeset_v5_falls_back_to_v4)
{
	enum { MAX = CHANGESET_MAX_ROW_FIELDS + 80 };
	const hlc_t t = 0x0193a1b2c3d40000ULL;
	struct change *ch = calloc(MAX, sizeof(*ch));
	char name[16];
	size_t n;

	ASSERT_TRUE(ch);
	/* Three records at one HLC, shapes X, Y, X: the reader would put
	 * the second X before Y. */
	v5_change(&ch[0], 1, "visits", "notes", t);
	v5_change(&ch[1], 2, "beneficiaries", "full_name", t);
	v5_change(&ch[2], 3, "visits", "notes", t);
	v5_round_trip(ch, 3, CHANGESET_VERSION_GROUPED);
	/* X, X, Y at one HLC comes back as it is. */
	v5_change(&ch[0], 1, "visits", "notes", t);
	v5_change(&ch[1], 3, "visits", "notes", t);
	v5_change(&ch[2], 2, "beneficiaries", "full_name", t);
	v5_round_trip(ch, 3, CHANGESET_VERSION_COLUMNS);
	/* 65 shapes (a field each, HLCs rising) are more tables than a set
	 * makes; 64 are not. */
	for (int shapes = 64; shapes <= 65; shapes++) {
		for (int i = 0; i < shapes; i++) {
			snprintf(name, sizeof(name), "f%d", i);
			v5_change(&ch[i], (unsigned)i, "visits", name, t + ((hlc_t)i << 16));
		}
		v5_round_trip(ch, (size_t)shapes,
			      shapes == 64 ? CHANGESET_VERSION_COLUMNS : CHANGESET_VERSION_GROUPED);
	}
	/* One record's 300 fields and f300 at one HLC are two rows (256
	 * fields, then 45), and f300 again starts a third: three shapes. */
	for (n = 0; n < CHANGESET_MAX_ROW_FIELDS + 44; n++) {
		snprintf(name, sizeof(name), "f%zu", n);
		v5_change(&ch[n], 7, "visits", name, t);
	}
	v5_change(&ch[n++], 7, "visits", "f300", t);
	v5_change(&ch[n++], 7, "visits", "f300", t);
	v5_round_trip(ch, n, CHANGESET_VERSION_COLUMNS);
	free(ch);
}

/* The payload readers without the seal (what fuzz_changeset_payload
 * drives): a header changeset_parse would refuse is a usage error, and
 * a payload opens as it would sealed. */
TEST(changeset_payload_open_checks_header)
{
	static const char text[] = "[[\"beneficiaries\",2,[\"" VECTOR_RECORD
				   "\"],[\"0193a1b2c3d40000\"],{\"full_name\":[\"Ana\"]}]]";
	struct changeset_header h = { .version = CHANGESET_VERSION_COLUMNS,
				      .count = 1,
				      .hlc_min = 0x0193a1b2c3d40000ULL,
				      .hlc_max = 0x0193a1b2c3d40000ULL };
	struct fs_error err = { 0 };
	struct change *ch = NULL;
	size_t n = 0;

	ASSERT_OK(changeset_payload_open(text, strlen(text), &h, &ch, &n, &err));
	ASSERT_EQ(n, 1);
	ASSERT_STR_EQ(ch[0].value->valuestring, "Ana");
	changes_free(ch, n);
	h.version = CHANGESET_VERSION_COLUMNS + 1;
	ASSERT_EQ(changeset_payload_open(text, strlen(text), &h, &ch, &n, &err), -FS_EUSAGE);
	h.version = CHANGESET_VERSION_COLUMNS;
	h.count = 0;
	ASSERT_EQ(changeset_payload_open(text, strlen(text), &h, &ch, &n, &err), -FS_EUSAGE);
	h.count = CHANGESET_MAX_CHANGES + 1;
	ASSERT_EQ(changeset_payload_open(text, strlen(text), &h, &ch, &n, &err), -FS_EUSAGE);
	/* The same text as a version 4 payload is not one. */
	h.count = 1;
	h.version = CHANGESET_VERSION_GROUPED;
	ASSERT_EQ(changeset_payload_open(text, strlen(text), &h, &ch, &n, &err), -FS_EFORMAT);
}

/* zstd's workspaces hold the payload: sealing and opening a set each
 * go through the wiping allocator, and give back all they took. */
TEST(changeset_zstd_workspaces_wiped)
{
	struct keys k;
	struct change *ch = NULL;
	uint8_t *buf = NULL;
	size_t len, n = 0, live0, live1, live2;
	unsigned long long wiped0, wiped1, wiped2;

	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	zmem_stats(&live0, &wiped0);
	encode_vector_changes(&k, 1, &buf, &len);
	zmem_stats(&live1, &wiped1);
	ASSERT_EQ(live1, live0);
	/* Level 19's tables alone are hundreds of KiB. */
	ASSERT_GT(wiped1, wiped0 + 100000);
	ASSERT_OK(changeset_open(buf, len, k.box_pk, k.box_sk, &ch, &n, NULL));
	zmem_stats(&live2, &wiped2);
	ASSERT_EQ(live2, live0);
	ASSERT_GT(wiped2, wiped1 + 10000);
	changes_free(ch, n);
	free(buf);
}

/* A version 3 row refused for its form version after its value was
 * copied: the refusal frees it (the ASan build finds a leak). */
TEST(changeset_bad_form_version_refused_whole)
{
	static const char text[] = "[[\"" VECTOR_RECORD "\",\"beneficiaries\",\"full_name\","
				   "\"Ружичић Ђорђе\",\"0193a1b2c3d40000\",-1]]";
	struct changeset_header h = { .version = CHANGESET_VERSION, .seq = 1, .count = 1 };
	struct fs_error err = { 0 };
	struct change *ch = NULL;
	uint8_t *buf = NULL;
	size_t len, n = 0;
	struct keys k;

	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	vector_device_id(k.sign_pk, h.device);
	h.hlc_min = h.hlc_max = 0x0193a1b2c3d40000ULL;
	fixture_raw_changeset(&h, text, strlen(text), k.box_pk, k.sign_sk, &buf, &len);
	ASSERT_EQ(changeset_open(buf, len, k.box_pk, k.box_sk, &ch, &n, &err), -FS_EFORMAT);
	ASSERT_STR_CONTAINS(err.msg, "change 1 is malformed");
	free(buf);
}

/* Whether the zstd frame in the sealed plaintext of an envelope (after
 * skip bytes) decompresses within a window of 2^window_log bytes.  The
 * streaming decoder refuses a frame that asks for more. */
static int window_fits(const struct keys *k, const uint8_t *sealed, size_t slen, size_t skip,
		       int window_log)
{
	uint8_t *plain = malloc(slen), out[16384];
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	ZSTD_inBuffer in;
	size_t rc = 1;

	ASSERT_TRUE(plain && dc && slen > crypto_box_SEALBYTES + skip);
	ASSERT_EQ(crypto_box_seal_open(plain, sealed, slen, k->box_pk, k->box_sk), 0);
	in = (ZSTD_inBuffer){ plain + skip, slen - crypto_box_SEALBYTES - skip, 0 };
	ASSERT_TRUE(!ZSTD_isError(ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, window_log)));
	while (rc != 0) {
		ZSTD_outBuffer o = { out, sizeof(out), 0 };

		rc = ZSTD_decompressStream(dc, &o, &in);
		if (ZSTD_isError(rc))
			break;
		ASSERT_TRUE(rc == 0 || in.pos < in.size || o.pos > 0);
	}
	sodium_memzero(plain, slen);
	free(plain);
	ZSTD_freeDCtx(dc);
	return rc == 0;
}

/* A change set is compressed within ENVELOPE_ZSTD_WINDOW_LOG whatever
 * its payload, so that level 19 keeps a small context on the laptop
 * (zstd would size it to a payload of up to 4 MiB: 49 MiB). */
TEST(changeset_compressed_within_bounded_window)
{
	int version = CHANGESET_VERSION;
	static const char *const words[] = { "kuća", "krov", "огрев", "prozor", "помоћ", "voda" };
	struct changeset_header h = { .seq = 1 };
	struct change *ch = calloc(400, sizeof(*ch));
	struct fs_error err = { 0 };
	uint8_t *buf = NULL, *sealed = NULL;
	size_t len = 0, slen = 0;
	char *text, note[2048];
	struct keys k;

	ASSERT_TRUE(ch);
	vector_keys(k.sign_pk, k.sign_sk, k.box_pk, k.box_sk);
	vector_device_id(k.sign_pk, h.device);
	/* 400 long notes: about 0.8 MB of JSON, several windows' worth. */
	for (int i = 0; i < 400; i++) {
		size_t n = 0;

		while (n < sizeof(note) - 16)
			n += (size_t)snprintf(note + n, sizeof(note) - n, "%s %u ",
					      words[randombytes_uniform(6)],
					      randombytes_uniform(1000));
		snprintf(ch[i].record_id, sizeof(ch[i].record_id), "0193a1b2-c3d4-7abc-8def-%012d",
			 i);
		strcpy(ch[i].collection, "visits");
		strcpy(ch[i].field, "notes");
		ch[i].hlc = ((hlc_t)1795000000000ULL + (hlc_t)i) << 16;
		ASSERT_TRUE((ch[i].value = cJSON_CreateString(note)));
	}
	text = changeset_payload_print(ch, 400, &version);
	ASSERT_TRUE(text && strlen(text) > 700 * 1024);
	if (changeset_encode(&h, ch, 400, k.box_pk, k.sign_sk, &buf, &len, &err) < 0)
		TEST_FAIL("encode: %s", err.msg);
	ASSERT_OK(accept(&k, buf, len));
	ASSERT_TRUE(window_fits(&k, buf + CHANGESET_HEADER_BYTES,
				len - CHANGESET_HEADER_BYTES - CHANGESET_SIG_BYTES,
				CHANGESET_BINDING_BYTES, ENVELOPE_ZSTD_WINDOW_LOG));
	/* The check can fail: zstd's own window for the same payload is
	 * larger, and the same decoder refuses it. */
	ASSERT_OK(envelope_seal(NULL, 0, text, strlen(text), ENVELOPE_ZSTD_LEVEL, 0, k.box_pk,
				&sealed, &slen, "test", &err));
	ASSERT_TRUE(!window_fits(&k, sealed, slen, 0, ENVELOPE_ZSTD_WINDOW_LOG));
	ASSERT_TRUE(window_fits(&k, sealed, slen, 0, 27 /* zstd decoders default */));
	free(sealed);
	free(text);
	free(buf);
	changes_free(ch, 400);
}

TEST(merge_rule_total_order)
{
	static const char *const devs[] = { "0a", "0b", "ff" };
	hlc_t hlcs[] = { 5, 5, 7, 7, 9 };

	ASSERT_GT(merge_compare(6, "00", 5, "ff"), 0); /* later HLC wins */
	ASSERT_LT(merge_compare(5, "0a", 5, "0b"), 0); /* tie: greater device */
	ASSERT_EQ(merge_compare(5, "0a", 5, "0a"), 0);
	/* Antisymmetric and transitive over a grid: the winner of a set of
	 * writes is the same whatever order they are compared in. */
	for (int a = 0; a < 5; a++)
		for (int b = 0; b < 5; b++)
			for (int da = 0; da < 3; da++)
				for (int db = 0; db < 3; db++) {
					int x = merge_compare(hlcs[a], devs[da], hlcs[b], devs[db]);
					int y = merge_compare(hlcs[b], devs[db], hlcs[a], devs[da]);

					ASSERT_EQ(x, -y);
				}
	for (int trial = 0; trial < 200; trial++) {
		hlc_t h[6];
		const char *d[6];
		int best = 0, best_rev = 5;

		for (int i = 0; i < 6; i++) {
			h[i] = randombytes_uniform(4);
			d[i] = devs[randombytes_uniform(3)];
		}
		for (int i = 1; i < 6; i++)
			if (merge_compare(h[i], d[i], h[best], d[best]) > 0)
				best = i;
		for (int i = 4; i >= 0; i--)
			if (merge_compare(h[i], d[i], h[best_rev], d[best_rev]) > 0)
				best_rev = i;
		ASSERT_EQ(h[best], h[best_rev]);
		ASSERT_STR_EQ(d[best], d[best_rev]);
	}
}
