/* fuzz_status.c - devices' status reports, as HQ reads them from anyone
 * on the network (sync/status.h): parse, verify, and a parsed report
 * encodes again without error. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "sync/status.h"
#include "tests/fuzz/fuzz.h"

static uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[32] = { 5 };

	(void)argc, (void)argv;
	if (sodium_init() < 0)
		return -1;
	crypto_sign_seed_keypair(pk, sk, seed);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct status_report r;
	cJSON *json = NULL;
	uint8_t *again = NULL;
	size_t len = 0;

	if (status_parse(data, size, &r, &json, NULL) == 0) {
		(void)!status_verify(data, size, pk);
		/* What was read is within the limits the encoder keeps. */
		if (status_encode(&r, sk, &again, &len, NULL) != 0)
			abort();
		free(again);
		cJSON_Delete(json);
	}
	return 0;
}
