/* fuzz_receipt.c - the agent reading HQ's receipts. */
#include <sodium.h>

#include "sync/receipt.h"
#include "tests/fuzz/fuzz.h"

static uint8_t hq_pk[crypto_sign_PUBLICKEYBYTES], hq_sk[crypto_sign_SECRETKEYBYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[32] = { 3 };

	(void)argc, (void)argv;
	if (sodium_init() < 0)
		return -1;
	crypto_sign_seed_keypair(hq_pk, hq_sk, seed);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct receipt rc = { 0 };

	if (receipt_verify(data, size, hq_pk, &rc) == 0)
		receipt_clear(&rc);
	return 0;
}
