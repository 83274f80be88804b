/* test_downset.c - sync/downset: the down-set HQ sends a device, its
 * pinned vector, and what a device must refuse. */
#include <stdio.h>

#include "crypto/bytes.h"
#include "sync/downset.h"
#include "sync/envelope.h"
#include "tests/test.h"
#include "tests/vectors/downset_vector.h"

struct dkeys {
	uint8_t hq_pk[crypto_sign_PUBLICKEYBYTES], hq_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES], box_sk[crypto_box_SECRETKEYBYTES];
	uint8_t device[CHANGESET_DEVICE_BYTES];
};

static void encode_vector(const struct dkeys *k, uint8_t **buf, size_t *len)
{
	struct fs_error err = { 0 };
	struct downset d;

	ASSERT_OK(dvector_downset(&d, k->device));
	if (downset_encode(&d, k->box_pk, k->hq_sk, buf, len, &err) < 0)
		TEST_FAIL("encode: %s", err.msg);
	downset_clear(&d);
}

/* Parse, verify and open; 0 or the first error. */
static int accept(const struct dkeys *k, const uint8_t *buf, size_t len, struct downset *ret)
{
	struct downset_header h;
	struct downset d;
	int r;

	if ((r = downset_parse(buf, len, &h, NULL)) < 0 ||
	    (r = downset_verify(buf, len, k->hq_pk)) < 0 ||
	    (r = downset_open(buf, len, k->box_pk, k->box_sk, &d, NULL)) < 0)
		return r;
	if (ret)
		*ret = d;
	else
		downset_clear(&d);
	return 0;
}

static void check_vector(const struct dkeys *k, const struct downset *d)
{
	char dev_hex[DOWNSET_DEVICE_HEX];
	char *form;

	sodium_bin2hex(dev_hex, sizeof(dev_hex), k->device, CHANGESET_DEVICE_BYTES);
	ASSERT_EQ(d->h.flags, DOWNSET_FLAG_MORE);
	ASSERT_MEM_EQ(d->h.device, k->device, CHANGESET_DEVICE_BYTES);
	ASSERT_EQ(d->h.seq, 1);
	ASSERT_EQ(d->h.cursor, DVECTOR_CURSOR);
	ASSERT_EQ(d->h.hq_time_ms, DVECTOR_TIME_MS);
	ASSERT_EQ(d->h.count, 4);
	ASSERT_EQ(d->nscope, 2);
	ASSERT_STR_EQ(d->scope[0], "Tutin");
	ASSERT_STR_EQ(d->scope[1], "Бујановац");
	ASSERT_EQ(d->nchanges, 2);
	ASSERT_STR_EQ(d->changes[0].c.record_id, VECTOR_RECORD);
	ASSERT_STR_EQ(d->changes[0].c.field, "full_name");
	ASSERT_STR_EQ(d->changes[0].c.value->valuestring, "Ружичић Ђорђе");
	ASSERT_EQ(d->changes[0].c.hlc, 0x0193a1b2c3d40000ULL);
	ASSERT_STR_EQ(d->changes[0].device, dev_hex);
	ASSERT_STR_EQ(d->changes[1].c.field, "municipality");
	ASSERT_EQ(d->changes[1].c.hlc, 0x0193a1b2c3d40001ULL);
	ASSERT_EQ(d->nconflicts, 1);
	ASSERT_STR_EQ(d->conflicts[0].field, "household_size");
	ASSERT_STR_EQ(d->conflicts[0].device_a, DVECTOR_DEVICE_A);
	ASSERT_EQ(d->conflicts[0].value_a->valueint, 4);
	ASSERT_STR_EQ(d->conflicts[0].device_b, dev_hex);
	ASSERT_EQ(d->conflicts[0].hlc_b, 0x0193a1b2c3d50000ULL);
	ASSERT_EQ(d->conflicts[0].value_b->valueint, 5);
	ASSERT_EQ(d->nforms, 1);
	ASSERT_STR_EQ(d->forms[0].collection, "visits");
	ASSERT_EQ(d->forms[0].version, 2);
	form = cJSON_PrintUnformatted(d->forms[0].definition);
	ASSERT_STR_EQ(form, DVECTOR_FORM);
	cJSON_free(form);
}

TEST(downset_roundtrip)
{
	struct downset d;
	struct dkeys k;
	uint8_t *buf = NULL;
	size_t len;

	dvector_keys(k.hq_pk, k.hq_sk, k.box_pk, k.box_sk, k.device);
	encode_vector(&k, &buf, &len);
	ASSERT_OK(accept(&k, buf, len, &d));
	check_vector(&k, &d);
	downset_clear(&d);
	free(buf);
}

/* A vector file, byte by byte as docs/PROTOCOL.md says: its header, its
 * signature, every entry and its hash; *d the opened down-set. */
static void check_vector_file(const char *path, uint8_t version, const char *hash_hex,
			      struct downset *d)
{
	const uint8_t head[] = { 'F', 'S', 'D', 'S', version, 1, DOWNSET_FLAG_MORE, 0 };
	uint8_t buf[4096], hash[32], want[32];
	struct dkeys k;
	size_t len = test_read_hex(path, buf, sizeof(buf));

	dvector_keys(k.hq_pk, k.hq_sk, k.box_pk, k.box_sk, k.device);
	ASSERT_MEM_EQ(buf, head, sizeof(head));
	ASSERT_MEM_EQ(buf + 8, k.device, 16);
	ASSERT_EQ(bytes_get_be(buf + 24, 8), 1);
	ASSERT_EQ(bytes_get_be(buf + 64, 8), DVECTOR_CURSOR);
	ASSERT_EQ(bytes_get_be(buf + 72, 8), DVECTOR_TIME_MS);
	ASSERT_EQ(bytes_get_be(buf + 80, 4), 4); /* teams are not entries */
	ASSERT_EQ(len, 88 + bytes_get_be(buf + 84, 4) + 64);
	ASSERT_OK(accept(&k, buf, len, d));
	check_vector(&k, d);
	changeset_hash(buf, len, hash);
	ASSERT_OK(sodium_hex2bin(want, sizeof(want), hash_hex, 64, NULL, NULL, NULL));
	ASSERT_MEM_EQ(hash, want, 32);
}

/* Made once by tests/tools/gen_downset_vector. */
TEST(downset_vector_v1)
{
	struct downset d;

	check_vector_file(FS_SOURCE_DIR "/tests/vectors/downset-v1.hex", 1,
			  "3b685c33ef843b987c2993d6e8b1c2bdc23bb38f76febab2776800bd7de02b06", &d);
	ASSERT_EQ(d.nteams, 0);
	downset_clear(&d);
}

/* Made once by tests/tools/gen_downset_vector 2: the version 1 vector's
 * entries, and the teams. */
TEST(downset_vector_v2)
{
	struct downset d;

	check_vector_file(FS_SOURCE_DIR "/tests/vectors/downset-v2.hex", 2, DVECTOR_V2_HASH, &d);
	ASSERT_EQ(d.nteams, 2);
	ASSERT_STR_EQ(d.teams[0].device, DVECTOR_DEVICE_A);
	ASSERT_STR_EQ(d.teams[0].team, "Tim Бујановац");
	ASSERT_STR_EQ(d.teams[1].team, "Tim Tutin");
	downset_clear(&d);
}

TEST(downset_every_flipped_byte_rejected)
{
	struct dkeys k;
	uint8_t *buf = NULL;
	size_t len;

	dvector_keys(k.hq_pk, k.hq_sk, k.box_pk, k.box_sk, k.device);
	encode_vector(&k, &buf, &len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			buf[i] ^= (uint8_t)(1 << bit);
			if (accept(&k, buf, len, NULL) == 0)
				TEST_FAIL("flipping bit %d of byte %zu was accepted", bit, i);
			buf[i] ^= (uint8_t)(1 << bit);
		}
	}
	for (size_t cut = 0; cut < len; cut++)
		ASSERT_TRUE(accept(&k, buf, cut, NULL) < 0);
	ASSERT_OK(accept(&k, buf, len, NULL));
	free(buf);
}

/* Not signed by the pinned HQ key, or sealed to another device: refused. */
TEST(downset_wrong_keys)
{
	uint8_t other_pk[crypto_sign_PUBLICKEYBYTES], other_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t obox_pk[crypto_box_PUBLICKEYBYTES], obox_sk[crypto_box_SECRETKEYBYTES];
	struct fs_error err = { 0 };
	struct downset d;
	struct dkeys k;
	uint8_t *buf = NULL;
	size_t len;

	dvector_keys(k.hq_pk, k.hq_sk, k.box_pk, k.box_sk, k.device);
	crypto_sign_keypair(other_pk, other_sk);
	crypto_box_keypair(obox_pk, obox_sk);
	encode_vector(&k, &buf, &len);
	ASSERT_EQ(downset_verify(buf, len, other_pk), -FS_EAUTH);
	ASSERT_EQ(downset_open(buf, len, obox_pk, obox_sk, &d, &err), -FS_EAUTH);
	ASSERT_STR_CONTAINS(err.msg, "not sealed to this key");
	/* Re-signed by another key: the pinned key refuses it. */
	crypto_sign_detached(buf + len - 64, NULL, buf, len - 64, other_sk);
	ASSERT_EQ(downset_verify(buf, len, k.hq_pk), -FS_EAUTH);
	free(buf);
}

/* A down-set whose payload is text, sealed and signed with the vector's
 * keys and count entries: what a buggy or hostile HQ could send. */
static int open_raw_v(const struct dkeys *k, uint8_t version, const char *text, uint32_t count,
		      struct fs_error *err)
{
	uint8_t *sealed = NULL, *buf;
	size_t slen = 0, len;
	struct downset d;
	int r;

	ASSERT_OK(envelope_seal(NULL, 0, text, strlen(text), ENVELOPE_ZSTD_LEVEL_FAST, 0, k->box_pk,
				&sealed, &slen, "test", NULL));
	len = 88 + slen + 64;
	buf = calloc(1, len);
	ASSERT_TRUE(buf);
	memcpy(buf, "FSDS\1\1\0\0", 8);
	buf[4] = version;
	memcpy(buf + 8, k->device, 16);
	bytes_put_be(buf + 24, 1, 8);
	bytes_put_be(buf + 80, count, 4);
	bytes_put_be(buf + 84, slen, 4);
	memcpy(buf + 88, sealed, slen);
	crypto_sign_detached(buf + len - 64, NULL, buf, len - 64, k->hq_sk);
	ASSERT_OK(downset_verify(buf, len, k->hq_pk));
	r = downset_open(buf, len, k->box_pk, k->box_sk, &d, err);
	if (r == 0)
		downset_clear(&d);
	free(sealed);
	free(buf);
	return r;
}

static int open_raw(const struct dkeys *k, const char *text, uint32_t count, struct fs_error *err)
{
	return open_raw_v(k, 1, text, count, err);
}

#define ROW_ID "\"0193a1b2-c3d4-7abc-8def-0123456789ab\""
#define ROW_DEV "\"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a\""
#define ROW_HLC "\"0193a1b2c3d40000\""

/* Malformed payloads are refused whole, naming the part, and nothing
 * leaks (ASan): each is signed by HQ's key, so only the payload checks
 * stand between it and the store. */
TEST(downset_malformed_payloads_refused)
{
	static const struct {
		const char *text;
		uint32_t count;
		const char *why;
	} bad[] = {
		{ "[]", 0, "not a JSON object" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[]}", 0, "member missing" },
		{ "{\"changes\":[],\"scope\":[\"Tutin\"],\"conflicts\":[],\"forms\":[]}", 0,
		  "members are not" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[],\"x\":[]}",
		  0, "members are not" },
		{ "{\"scope\":[],\"changes\":[],\"conflicts\":[],\"forms\":[]}", 0, "scope of 0" },
		{ "{\"scope\":[\"\"],\"changes\":[],\"conflicts\":[],\"forms\":[]}", 0,
		  "scope name 1" },
		{ "{\"scope\":[\"Tut\xc0\xafin\"],\"changes\":[],\"conflicts\":[],\"forms\":[]}", 0,
		  "scope name 1" },
		{ "{\"scope\":[\"Tut\\u0007in\"],\"changes\":[],\"conflicts\":[],\"forms\":[]}", 0,
		  "scope name 1" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[]}", 1,
		  "not 1 entries" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[[" ROW_ID ",\"beneficiaries\",\"status\","
		  "\"idp\"," ROW_HLC "]],\"conflicts\":[],\"forms\":[]}",
		  1, "change 1" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[[" ROW_ID ",\"beneficiaries\",\"status\","
		  "\"idp\"," ROW_HLC ",\"0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A\"]],\"conflicts\":[],"
		  "\"forms\":[]}",
		  1, "change 1" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[[\"0193A1B2-C3D4-7ABC-8DEF-0123456789AB\","
		  "\"beneficiaries\",\"status\",\"idp\"," ROW_HLC "," ROW_DEV "]],\"conflicts\":[],"
		  "\"forms\":[]}",
		  1, "change 1" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[[" ROW_ID
		  ",\"status\"," ROW_DEV "," ROW_HLC ",1," ROW_DEV ",\"zz\",2]],\"forms\":[]}",
		  1, "conflict 1" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[[\"visits\",0,"
		  "{}]]}",
		  1, "form 1" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[[\"visits\",1."
		  "5,"
		  "{}]]}",
		  1, "form 1" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[[\"Visits\",1,"
		  "{}]]}",
		  1, "form 1" },
		{ "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[[\"visits\",1,"
		  "[]]]}",
		  1, "form 1" },
		{ "{\"scope\":[\"Tutin\"],", 0, "not JSON" },
	};
	struct fs_error err;
	struct dkeys k;

	dvector_keys(k.hq_pk, k.hq_sk, k.box_pk, k.box_sk, k.device);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		if (open_raw(&k, bad[i].text, bad[i].count, &err) == 0)
			TEST_FAIL("payload %zu was accepted", i);
		if (!strstr(err.msg, bad[i].why))
			TEST_FAIL("payload %zu: \"%s\" does not say \"%s\"", i, err.msg,
				  bad[i].why);
	}
	/* The well-formed neighbour of those opens: the checks are not
	 * refusing everything. */
	ASSERT_OK(open_raw(
		&k,
		"{\"scope\":[\"*\"],\"changes\":[[" ROW_ID ",\"beneficiaries\",\"status\","
		"\"idp\"," ROW_HLC "," ROW_DEV "]],\"conflicts\":[[" ROW_ID ",\"status\"," ROW_DEV
		"," ROW_HLC ",1," ROW_DEV "," ROW_HLC ",2]],\"forms\":[[\"visits\","
		"1,{}]]}",
		3, NULL));
}

/* Version 2 adds the teams of the devices a set names: it round-trips,
 * and malformed teams are refused whole like any other entry. */
TEST(downset_v2_teams)
{
	static const struct {
		uint8_t version;
		const char *text;
		const char *why;
	} bad[] = {
		{ 2, "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[]}",
		  "member missing" },
		{ 1,
		  "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[],"
		  "\"teams\":[]}",
		  "members are not those of version 1" },
		{ 2,
		  "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[],"
		  "\"teams\":[[\"0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A\",\"Tim Jug\"]]}",
		  "team 1" },
		{ 2,
		  "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[],"
		  "\"teams\":[[" ROW_DEV ",\"\"]]}",
		  "team 1" },
		{ 2,
		  "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[],"
		  "\"teams\":[[" ROW_DEV ",\"Tim\\nJug\"]]}",
		  "team 1" },
		{ 2,
		  "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[],"
		  "\"teams\":[[" ROW_DEV ",\"Tim Jug\",1]]}",
		  "team 1" },
		{ 2,
		  "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],\"forms\":[],"
		  "\"teams\":[[" ROW_DEV ",\"Tim Jug\"],7]}",
		  "team 2" },
	};
	struct fs_error err = { 0 };
	struct downset d, back;
	struct dkeys k;
	uint8_t *buf = NULL;
	size_t len;

	dvector_keys(k.hq_pk, k.hq_sk, k.box_pk, k.box_sk, k.device);
	ASSERT_OK(dvector_downset(&d, k.device));
	d.teams = calloc(2, sizeof(*d.teams));
	ASSERT_TRUE(d.teams);
	d.nteams = 2;
	strcpy(d.teams[0].device, DVECTOR_DEVICE_A);
	strcpy(d.teams[0].team, "Tim Бујановац");
	sodium_bin2hex(d.teams[1].device, sizeof(d.teams[1].device), k.device, 16);
	strcpy(d.teams[1].team, "Tim Tutin");
	/* Version 1 has no teams to carry. */
	ASSERT_EQ(downset_encode(&d, k.box_pk, k.hq_sk, &buf, &len, &err), -FS_EUSAGE);
	d.h.version = 2;
	if (downset_encode(&d, k.box_pk, k.hq_sk, &buf, &len, &err) < 0)
		TEST_FAIL("encode: %s", err.msg);
	ASSERT_EQ(buf[4], 2);
	ASSERT_OK(accept(&k, buf, len, &back));
	check_vector(&k, &back);
	ASSERT_EQ(back.h.version, 2);
	ASSERT_EQ(back.nteams, 2);
	ASSERT_STR_EQ(back.teams[0].device, DVECTOR_DEVICE_A);
	ASSERT_STR_EQ(back.teams[0].team, "Tim Бујановац");
	ASSERT_STR_EQ(back.teams[1].team, "Tim Tutin");
	downset_clear(&back);
	downset_clear(&d);
	free(buf);
	/* A version this device does not read is refused. */
	ASSERT_TRUE(open_raw_v(&k, 3,
			       "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],"
			       "\"forms\":[],\"teams\":[]}",
			       0, &err) < 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		if (open_raw_v(&k, bad[i].version, bad[i].text, 0, &err) == 0)
			TEST_FAIL("payload %zu was accepted", i);
		if (!strstr(err.msg, bad[i].why))
			TEST_FAIL("payload %zu: \"%s\" does not say \"%s\"", i, err.msg,
				  bad[i].why);
	}
	ASSERT_OK(open_raw_v(&k, 2,
			     "{\"scope\":[\"Tutin\"],\"changes\":[],\"conflicts\":[],"
			     "\"forms\":[],\"teams\":[[" ROW_DEV ",\"Tim Jug\"]]}",
			     0, NULL));
}

/* Over the limits: refused before anything big is built. */
TEST(downset_limits)
{
	struct fs_error err = { 0 };
	struct downset d = { 0 };
	struct dkeys k;
	uint8_t *buf = NULL;
	size_t len;
	char *text;

	dvector_keys(k.hq_pk, k.hq_sk, k.box_pk, k.box_sk, k.device);
	/* Encoding refuses what a device would refuse. */
	d.h.seq = 1;
	ASSERT_EQ(downset_encode(&d, k.box_pk, k.hq_sk, &buf, &len, &err), -FS_EUSAGE);
	/* A few hundred bytes of zstd that expand to a million arrays. */
	text = malloc(3000000);
	ASSERT_TRUE(text);
	len = (size_t)snprintf(text, 100, "{\"scope\":[\"Tutin\"],\"changes\":[");
	while (len < 2999000)
		len += (size_t)snprintf(text + len, 3000000 - len, "[],");
	snprintf(text + len, 3000000 - len, "[]],\"conflicts\":[],\"forms\":[]}");
	ASSERT_EQ(open_raw(&k, text, 1, &err), -FS_ELIMIT);
	ASSERT_STR_CONTAINS(err.msg, "JSON values");
	free(text);
}
