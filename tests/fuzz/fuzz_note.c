/* fuzz_note.c - signed notes, checkpoints and verifier keys (the agent
 * reading HQ's checkpoints; anyone reading `audit export`). */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "sync/note.h"
#include "tests/fuzz/fuzz.h"

static uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[32] = { 4 };

	(void)argc, (void)argv;
	if (sodium_init() < 0)
		return -1;
	crypto_sign_seed_keypair(pk, sk, seed);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), name[NOTE_NAME_MAX + 1], origin[NOTE_NAME_MAX + 1];
	uint8_t key[crypto_sign_PUBLICKEYBYTES];
	merkle_hash root;
	uint64_t n;
	size_t text_len;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (note_verify(text, size, "fieldsync-hq/0011223344556677", pk, &text_len) == 0)
		(void)!checkpoint_parse(text, text_len, origin, &n, root);
	(void)!checkpoint_parse(text, size, origin, &n, root);
	(void)!note_vkey_parse(text, name, key);
	free(text);
	return 0;
}
