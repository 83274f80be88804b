/* fuzz_changeset.c - change-set decoding and verification (HQ's side of
 * POST /v1/changesets): parse the header, verify the signature against a
 * fixed device key, hash, and, for inputs that verify, open the payload.
 * The seeds are the vectors tests/vectors/changeset-v1.hex to v5. */
#include <sodium.h>

#include "sync/changeset.h"
#include "tests/fuzz/fuzz.h"
#include "tests/vectors/changeset_vector.h"

static uint8_t dev_pk[crypto_sign_PUBLICKEYBYTES], dev_sk[crypto_sign_SECRETKEYBYTES];
static uint8_t hq_pk[crypto_box_PUBLICKEYBYTES], hq_sk[crypto_box_SECRETKEYBYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (sodium_init() < 0)
		return -1;
	/* The test vector's keys: its seed verifies and opens, so mutations
	 * start from a set that reaches every layer. */
	vector_keys(dev_pk, dev_sk, hq_pk, hq_sk);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct changeset_header h;
	struct fs_error err = { 0 };
	uint8_t hash[CHANGESET_HASH_BYTES];
	struct change *ch = NULL;
	size_t n = 0;

	changeset_hash(data, size, hash);
	if (changeset_parse(data, size, &h, &err) < 0)
		return 0;
	if (changeset_verify(data, size, dev_pk) < 0)
		return 0;
	if (changeset_open(data, size, hq_pk, hq_sk, &ch, &n, &err) == 0)
		changes_free(ch, n);
	return 0;
}
