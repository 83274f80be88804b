/* fuzz_downset.c - down-set decoding on the device: the header, HQ's
 * signature, the seal and the payload.  The first byte picks the layer:
 * 0, the rest is a whole down-set, checked as a device checks one (the
 * seed is tests/vectors/downset-v1.hex); 1, the rest is payload text,
 * sealed and signed here with the vector's keys, so that mutations reach
 * the payload parser past the signature. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bytes.h"
#include "sync/downset.h"
#include "sync/envelope.h"
#include "tests/fuzz/fuzz.h"
#include "tests/vectors/downset_vector.h"

static uint8_t hq_pk[crypto_sign_PUBLICKEYBYTES], hq_sk[crypto_sign_SECRETKEYBYTES];
static uint8_t box_pk[crypto_box_PUBLICKEYBYTES], box_sk[crypto_box_SECRETKEYBYTES];
static uint8_t device[CHANGESET_DEVICE_BYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (sodium_init() < 0)
		return -1;
	dvector_keys(hq_pk, hq_sk, box_pk, box_sk, device);
	return 0;
}

static void check(const uint8_t *buf, size_t len)
{
	struct downset_header h;
	struct fs_error err = { 0 };
	struct downset d;

	if (downset_parse(buf, len, &h, &err) < 0 || downset_verify(buf, len, hq_pk) < 0)
		return;
	if (downset_open(buf, len, box_pk, box_sk, &d, &err) == 0)
		downset_clear(&d);
}

/* Seal text as a payload of count entries (bytes 1..4 of the input)
 * and sign it. */
static void check_payload(const uint8_t *data, size_t size)
{
	uint8_t *sealed = NULL, *buf;
	size_t slen = 0, len;
	char *text;

	if (size < 5)
		return;
	if (!(text = malloc(size - 3)))
		return;
	memcpy(text, data + 4, size - 4);
	text[size - 4] = '\0';
	if (envelope_seal(NULL, 0, text, strlen(text), ENVELOPE_ZSTD_LEVEL_FAST, 0, box_pk, &sealed,
			  &slen, "fuzz", NULL) < 0 ||
	    !(buf = calloc(1, DOWNSET_HEADER_BYTES + slen + DOWNSET_SIG_BYTES))) {
		free(sealed);
		free(text);
		return;
	}
	len = DOWNSET_HEADER_BYTES + slen + DOWNSET_SIG_BYTES;
	memcpy(buf, "FSDS\1\1\0\0", 8);
	memcpy(buf + 8, device, sizeof(device));
	bytes_put_be(buf + 24, 1, 8);
	bytes_put_be(buf + 80, bytes_get_be(data, 4) % (DOWNSET_MAX_ENTRIES + 2), 4);
	bytes_put_be(buf + 84, slen, 4);
	memcpy(buf + DOWNSET_HEADER_BYTES, sealed, slen);
	crypto_sign_detached(buf + len - DOWNSET_SIG_BYTES, NULL, buf, len - DOWNSET_SIG_BYTES,
			     hq_sk);
	check(buf, len);
	free(buf);
	free(sealed);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		check_payload(data + 1, size - 1);
	else
		check(data + 1, size - 1);
	return 0;
}
