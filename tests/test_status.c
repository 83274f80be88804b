/* test_status.c - a device's signed health report (sync/status.h): it
 * round-trips; its bytes are pinned (Ed25519 signatures are
 * deterministic); a flipped byte, a wrong key and malformed reports are
 * refused. */
#include <string.h>

#include "crypto/bytes.h"
#include "sync/changeset.h"
#include "sync/status.h"
#include "tests/test.h"

static void keys(uint8_t pk[crypto_sign_PUBLICKEYBYTES], uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
	uint8_t seed[32];

	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(0x21 + i);
	crypto_sign_seed_keypair(pk, sk, seed);
}

static struct status_report sample(void)
{
	struct status_report r;

	memset(&r, 0, sizeof(r));
	memset(r.device, 0x0a, 16);
	r.wall_ms = 1764979200000ULL;
	r.pending_changes = 2620;
	r.oldest_unsent_age_s = 93600;
	strcpy(r.last_error, "unreachable");
	strcpy(r.agent_version, "0.9.0");
	strcpy(r.forms[0].collection, "beneficiaries");
	r.forms[0].version = 3;
	strcpy(r.forms[1].collection, "visits");
	r.forms[1].version = 0;
	r.nforms = 2;
	r.has_skew = 1;
	r.clock_skew_ms = -1500;
	r.free_disk_bytes = 4194304;
	return r;
}

TEST(status_report_roundtrip_and_pinned)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], hash[32], *buf;
	struct status_report in = sample(), out;
	struct fs_error err = { 0 };
	char hex[65];
	size_t len;

	keys(pk, sk);
	ASSERT_OK(status_encode(&in, sk, &buf, &len, &err));
	ASSERT_MEM_EQ(buf, "FSST\1\0\0\0", 8);
	ASSERT_STR_CONTAINS(
		(const char *)buf + STATUS_FIXED,
		"{\"pending_changes\":2620,\"oldest_unsent_age_s\":93600,\"last_error\":"
		"\"unreachable\",\"agent_version\":\"0.9.0\",\"form_version\":{"
		"\"beneficiaries\":3,\"visits\":0},\"clock_skew_ms\":-1500,"
		"\"free_disk_bytes\":4194304}");
	ASSERT_OK(status_verify(buf, len, pk));
	ASSERT_OK(status_parse(buf, len, &out, NULL, &err));
	ASSERT_MEM_EQ(out.device, in.device, 16);
	ASSERT_EQ(out.wall_ms, in.wall_ms);
	ASSERT_EQ(out.pending_changes, 2620);
	ASSERT_EQ(out.oldest_unsent_age_s, 93600);
	ASSERT_STR_EQ(out.last_error, "unreachable");
	ASSERT_EQ(out.nforms, 2);
	ASSERT_STR_EQ(out.forms[1].collection, "visits");
	ASSERT_EQ(out.clock_skew_ms, -1500);
	ASSERT_EQ(out.free_disk_bytes, 4194304);
	/* The bytes, pinned: docs/PROTOCOL.md, "Status report". */
	changeset_hash(buf, len, hash);
	sodium_bin2hex(hex, sizeof(hex), hash, 32);
	ASSERT_STR_EQ(hex, "ad5d5e2ed6a4a0c79ecf8abf19af46047b5a15e0b2b8792088b4238b4d51f67c");
	/* Every flipped byte is refused, by shape or by the signature. */
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x01;
		if (status_parse(buf, len, &out, NULL, NULL) == 0 &&
		    status_verify(buf, len, pk) == 0)
			TEST_FAIL("a report with byte %zu flipped was accepted", i);
		buf[i] ^= 0x01;
	}
	pk[0] ^= 1;
	ASSERT_EQ(status_verify(buf, len, pk), -FS_EAUTH);
	free(buf);
	/* Nothing unsent, no error, no skew: nulls. */
	in.oldest_unsent_age_s = -1;
	in.last_error[0] = '\0';
	in.has_skew = 0;
	ASSERT_OK(status_encode(&in, sk, &buf, &len, &err));
	ASSERT_STR_CONTAINS((const char *)buf + STATUS_FIXED,
			    "\"oldest_unsent_age_s\":null,\"last_error\":null");
	ASSERT_OK(status_parse(buf, len, &out, NULL, &err));
	ASSERT_EQ(out.oldest_unsent_age_s, -1);
	ASSERT_EQ(out.has_skew, 0);
	free(buf);
}

/* A report signed right but malformed inside is refused by shape. */
static int parse_json(const char *json)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], buf[4096];
	struct status_report out;
	size_t n = strlen(json);

	keys(pk, sk);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "FSST\1\0\0\0", 8);
	bytes_put_be(buf + 32, n, 4);
	memcpy(buf + STATUS_FIXED, json, n);
	crypto_sign_detached(buf + STATUS_FIXED + n, NULL, buf, STATUS_FIXED + n, sk);
	return status_parse(buf, STATUS_FIXED + n + crypto_sign_BYTES, &out, NULL, NULL);
}

TEST(status_report_malformed_refused)
{
	static const char good[] =
		"{\"pending_changes\":0,\"oldest_unsent_age_s\":null,"
		"\"last_error\":null,\"agent_version\":\"1\",\"form_version\":{},"
		"\"clock_skew_ms\":null,\"free_disk_bytes\":0}";
	static const char *const bad[] = {
		"[]",
		"{\"pending_changes\":0}",
		"{\"pending_changes\":-1,\"oldest_unsent_age_s\":null,\"last_error\":null,"
		"\"agent_version\":\"1\",\"form_version\":{},\"clock_skew_ms\":null,"
		"\"free_disk_bytes\":0}",
		"{\"pending_changes\":1.5,\"oldest_unsent_age_s\":null,\"last_error\":null,"
		"\"agent_version\":\"1\",\"form_version\":{},\"clock_skew_ms\":null,"
		"\"free_disk_bytes\":0}",
		"{\"oldest_unsent_age_s\":null,\"pending_changes\":0,\"last_error\":null,"
		"\"agent_version\":\"1\",\"form_version\":{},\"clock_skew_ms\":null,"
		"\"free_disk_bytes\":0}",
		"{\"pending_changes\":0,\"oldest_unsent_age_s\":null,\"last_error\":\"a\\nb\","
		"\"agent_version\":\"1\",\"form_version\":{},\"clock_skew_ms\":null,"
		"\"free_disk_bytes\":0}",
		"{\"pending_changes\":0,\"oldest_unsent_age_s\":null,\"last_error\":null,"
		"\"agent_version\":\"\",\"form_version\":{},\"clock_skew_ms\":null,"
		"\"free_disk_bytes\":0}",
		"{\"pending_changes\":0,\"oldest_unsent_age_s\":null,\"last_error\":null,"
		"\"agent_version\":\"1\",\"form_version\":{\"visits\":\"2\"},\"clock_skew_ms\":"
		"null,"
		"\"free_disk_bytes\":0}",
		"{\"pending_changes\":0,\"oldest_unsent_age_s\":null,\"last_error\":null,"
		"\"agent_version\":\"1\",\"form_version\":{},\"clock_skew_ms\":null,"
		"\"free_disk_bytes\":0,\"more\":1}",
	};

	ASSERT_OK(parse_json(good));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_json(bad[i]) != -FS_EFORMAT)
			TEST_FAIL("malformed report %zu was accepted", i);
}
