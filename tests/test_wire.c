/* test_wire.c - sync/: HQ receipts and enrolment tokens. */
#include "sync/receipt.h"
#include "sync/token.h"
#include "tests/test.h"

TEST(receipt_sign_verify_and_tamper)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t opk[crypto_sign_PUBLICKEYBYTES], osk[crypto_sign_SECRETKEYBYTES];
	uint32_t idx[] = { 2, 5, 9 };
	struct receipt r = { .seq = 42,
			     .accepted_ms = 1795000000123ULL,
			     .merged = 7,
			     .quarantined = 3,
			     .index = idx },
		       back;
	uint8_t *buf = NULL;
	size_t len;

	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(opk, osk);
	memset(r.device, 0x5a, sizeof(r.device));
	memset(r.hash, 0xc3, sizeof(r.hash));
	ASSERT_OK(receipt_encode(&r, sk, &buf, &len));
	ASSERT_EQ(len, RECEIPT_FIXED_BYTES + 12 + crypto_sign_BYTES);
	ASSERT_OK(receipt_verify(buf, len, pk, &back));
	ASSERT_EQ(back.seq, 42);
	ASSERT_EQ(back.merged, 7);
	ASSERT_EQ(back.quarantined, 3);
	ASSERT_EQ(back.index[2], 9);
	ASSERT_MEM_EQ(back.hash, r.hash, sizeof(r.hash));
	receipt_clear(&back);
	/* Another key, any flipped bit, any truncation: refused. */
	ASSERT_EQ(receipt_verify(buf, len, opk, &back), -FS_EAUTH);
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x10;
		ASSERT_TRUE(receipt_verify(buf, len, pk, &back) < 0);
		buf[i] ^= 0x10;
	}
	for (size_t cut = 0; cut < len; cut++)
		ASSERT_TRUE(receipt_verify(buf, cut, pk, &back) < 0);
	free(buf);
	/* Indexes must ascend. */
	idx[1] = 2;
	ASSERT_EQ(receipt_encode(&r, sk, &buf, &len), -FS_EUSAGE);
}

TEST(token_roundtrip_and_rejects)
{
	struct enroll_token t = { 0 }, back;
	char text[TOKEN_TEXT_MAX], bad[TOKEN_TEXT_MAX + 8];
	uint8_t spk[crypto_sign_PUBLICKEYBYTES], ssk[crypto_sign_SECRETKEYBYTES];
	uint8_t bpk[crypto_box_PUBLICKEYBYTES], bsk[crypto_box_SECRETKEYBYTES];
	uint8_t fp[TOKEN_FP_BYTES], fp2[TOKEN_FP_BYTES];

	crypto_sign_keypair(spk, ssk);
	crypto_box_keypair(bpk, bsk);
	randombytes_buf(t.secret, sizeof(t.secret));
	token_hq_fingerprint(spk, bpk, t.hq_fp);
	token_format(&t, text);
	ASSERT_TRUE(!strncmp(text, "FS1-", 4));
	ASSERT_OK(token_parse(text, &back));
	ASSERT_MEM_EQ(back.secret, t.secret, TOKEN_SECRET_BYTES);
	ASSERT_MEM_EQ(back.hq_fp, t.hq_fp, TOKEN_FP_BYTES);
	ASSERT_EQ(back.has_tls_pin, 0);
	t.has_tls_pin = 1;
	memset(t.tls_pin, 0x77, sizeof(t.tls_pin));
	token_format(&t, text);
	ASSERT_OK(token_parse(text, &back));
	ASSERT_EQ(back.has_tls_pin, 1);
	ASSERT_MEM_EQ(back.tls_pin, t.tls_pin, TOKEN_TLS_PIN_BYTES);
	/* The fingerprint covers both keys. */
	crypto_box_keypair(bpk, bsk);
	token_hq_fingerprint(spk, bpk, fp2);
	memcpy(fp, t.hq_fp, sizeof(fp));
	ASSERT_TRUE(memcmp(fp, fp2, sizeof(fp)) != 0);
	/* Malformed: wrong prefix, cut short, a stray character, bad flags. */
	ASSERT_EQ(token_parse("FS2-AAAA", &back), -FS_EFORMAT);
	snprintf(bad, sizeof(bad), "%.*s", (int)strlen(text) - 5, text);
	ASSERT_EQ(token_parse(bad, &back), -FS_EFORMAT);
	snprintf(bad, sizeof(bad), "%s!", text);
	ASSERT_EQ(token_parse(bad, &back), -FS_EFORMAT);
	ASSERT_EQ(token_parse("", &back), -FS_EFORMAT);
}
