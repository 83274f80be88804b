/* test_filewire.c - attached files on the wire (sync/filewire.h): a
 * query's bytes are pinned (Ed25519 signatures are deterministic); a
 * chunk round-trips through parse, verify and open; every flipped byte
 * of a chunk is refused by one of the three; a chunk's binding refuses
 * it under another header; and shapes out of range are refused. */
#include <string.h>

#include "crypto/bytes.h"
#include "sync/filewire.h"
#include "tests/test.h"

static void keys(uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES],
		 uint8_t sign_sk[crypto_sign_SECRETKEYBYTES],
		 uint8_t box_pk[crypto_box_PUBLICKEYBYTES],
		 uint8_t box_sk[crypto_box_SECRETKEYBYTES])
{
	uint8_t seed[32];

	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(0x41 + i);
	crypto_sign_seed_keypair(sign_pk, sign_sk, seed);
	seed[0] ^= 0xff;
	crypto_box_seed_keypair(box_pk, box_sk, seed);
}

static struct filewire_head head(void)
{
	struct filewire_head h;

	memset(&h, 0, sizeof(h));
	memset(h.device, 0x0a, 16);
	for (int i = 0; i < 32; i++)
		h.sha256[i] = (uint8_t)i;
	h.size = 40000;
	h.chunk_size = FILEWIRE_CHUNK_MIN;
	h.wall_ms = 1764979200000ULL;
	return h;
}

TEST(filewire_query_pinned_and_chunk_roundtrip)
{
	/* FSFQ, 01, 000000, device 0a*16, hash 00..1f, size 40000, chunk
	 * 16384, index 0, clock; then the signature. */
	static const char want_head[] =
		"4653465101000000"
		"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
		"0000000000009c40"
		"00004000"
		"00000000"
		"0000019af0f55000";
	uint8_t spk[crypto_sign_PUBLICKEYBYTES], ssk[crypto_sign_SECRETKEYBYTES];
	uint8_t bpk[crypto_box_PUBLICKEYBYTES], bsk[crypto_box_SECRETKEYBYTES];
	uint8_t q[FILEWIRE_QUERY_BYTES], data[FILEWIRE_CHUNK_MIN], out[FILEWIRE_CHUNK_MIN];
	char hex[2 * FILEWIRE_HEAD + 1];
	struct filewire_head h = head(), got;
	struct fs_error err = { 0 };
	uint8_t *msg = NULL;
	size_t len = 0;

	keys(spk, ssk, bpk, bsk);
	ASSERT_OK(filewire_query_encode(&h, ssk, q, &err));
	sodium_bin2hex(hex, sizeof(hex), q, FILEWIRE_HEAD);
	ASSERT_STR_EQ(hex, want_head);
	ASSERT_OK(filewire_parse(q, sizeof(q), &got, &err));
	ASSERT_EQ(got.kind, FILEWIRE_QUERY);
	ASSERT_OK(filewire_verify(q, sizeof(q), spk));
	ASSERT_EQ(filewire_chunks(40000, FILEWIRE_CHUNK_MIN), 3);
	/* The last chunk is the rest: 40000 - 2 * 16384. */
	h.index = 2;
	ASSERT_EQ(filewire_chunk_len(&h), 40000 - 2 * FILEWIRE_CHUNK_MIN);
	h.index = 1;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	ASSERT_OK(filewire_chunk_encode(&h, data, sizeof(data), bpk, ssk, &msg, &len, &err));
	ASSERT_EQ(len, FILEWIRE_CHUNK_FIXED + 72 + crypto_box_SEALBYTES + sizeof(data) + 64);
	ASSERT_EQ(bytes_get_be(msg + 68, 4), 1);
	ASSERT_OK(filewire_parse(msg, len, &got, &err));
	ASSERT_EQ(got.kind, FILEWIRE_CHUNK);
	ASSERT_EQ(got.index, 1);
	ASSERT_OK(filewire_verify(msg, len, spk));
	ASSERT_OK(filewire_open(msg, len, &got, bpk, bsk, out, &err));
	ASSERT_TRUE(!memcmp(out, data, sizeof(data)));
	free(msg);
	msg = NULL;
	/* A chunk of the wrong length for its index is not encoded. */
	h.index = 2;
	ASSERT_EQ(filewire_chunk_encode(&h, data, sizeof(data), bpk, ssk, &msg, &len, &err),
		  -FS_ELIMIT);
	free(msg);
}

TEST(filewire_every_flipped_byte_and_rebinding_refused)
{
	uint8_t spk[crypto_sign_PUBLICKEYBYTES], ssk[crypto_sign_SECRETKEYBYTES];
	uint8_t bpk[crypto_box_PUBLICKEYBYTES], bsk[crypto_box_SECRETKEYBYTES];
	uint8_t data[40000 - 2 * FILEWIRE_CHUNK_MIN], out[sizeof(data)];
	struct filewire_head h = head(), got;
	struct fs_error err = { 0 };
	uint8_t *msg = NULL;
	size_t len = 0;

	keys(spk, ssk, bpk, bsk);
	memset(data, 'x', sizeof(data));
	h.index = 2;
	ASSERT_OK(filewire_chunk_encode(&h, data, sizeof(data), bpk, ssk, &msg, &len, &err));
	for (size_t i = 0; i < len; i++) {
		int refused;

		msg[i] ^= 0x20;
		refused = filewire_parse(msg, len, &got, &err) < 0 ||
			  filewire_verify(msg, len, spk) < 0 ||
			  filewire_open(msg, len, &got, bpk, bsk, out, &err) < 0;
		if (!refused)
			TEST_FAIL("flipping byte %zu of a chunk went unnoticed", i);
		msg[i] ^= 0x20;
	}
	/* Re-signed under another clock, another index or device: the
	 * signature holds, the binding does not. */
	bytes_put_be(msg + 72, h.wall_ms + 1, 8);
	crypto_sign_detached(msg + len - 64, NULL, msg, len - 64, ssk);
	ASSERT_OK(filewire_parse(msg, len, &got, &err));
	ASSERT_OK(filewire_verify(msg, len, spk));
	ASSERT_EQ(filewire_open(msg, len, &got, bpk, bsk, out, &err), -FS_EAUTH);
	ASSERT_TRUE(strstr(err.msg, "bound to another"));
	free(msg);
	/* Shapes: too short, bad magic, version, sizes out of range. */
	{
		uint8_t q[FILEWIRE_QUERY_BYTES];

		h = head();
		ASSERT_OK(filewire_query_encode(&h, ssk, q, &err));
		ASSERT_EQ(filewire_parse(q, 10, &got, &err), -FS_EFORMAT);
		ASSERT_EQ(filewire_parse(q, sizeof(q) - 1, &got, &err), -FS_EFORMAT);
		q[4] = 2;
		ASSERT_EQ(filewire_parse(q, sizeof(q), &got, &err), -FS_EFORMAT);
		q[4] = 1;
		bytes_put_be(q + 64, FILEWIRE_CHUNK_MIN - 1, 4);
		ASSERT_EQ(filewire_parse(q, sizeof(q), &got, &err), -FS_ELIMIT);
		bytes_put_be(q + 64, FILEWIRE_CHUNK_MIN, 4);
		bytes_put_be(q + 56, FILEWIRE_FILE_MAX + 1, 8);
		ASSERT_EQ(filewire_parse(q, sizeof(q), &got, &err), -FS_ELIMIT);
		bytes_put_be(q + 56, 0, 8);
		ASSERT_EQ(filewire_parse(q, sizeof(q), &got, &err), -FS_ELIMIT);
		memcpy(q, "FSXX", 4);
		ASSERT_EQ(filewire_parse(q, sizeof(q), &got, &err), -FS_EFORMAT);
	}
}
