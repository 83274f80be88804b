/* changeset_vector.h - the keys and changes of the change-set test
 * vectors, as docs/PROTOCOL.md ("Test vectors") describes them. */
#ifndef FS_CHANGESET_VECTOR_H
#define FS_CHANGESET_VECTOR_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "sync/changeset.h"

#define VECTOR_CHANGES 3
#define VECTOR_RECORD "0193a1b2-c3d4-7abc-8def-0123456789ab"

/* Device Ed25519 seed: bytes 0x01..0x20; HQ X25519 seed: 0x21..0x40. */
static inline void vector_keys(uint8_t *sign_pk, uint8_t *sign_sk, uint8_t *box_pk, uint8_t *box_sk)
{
	uint8_t seed[32];

	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i + 1);
	crypto_sign_seed_keypair(sign_pk, sign_sk, seed);
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i + 0x21);
	crypto_box_seed_keypair(box_pk, box_sk, seed);
}

/* Device id: the first 16 bytes of BLAKE2b-256 of the Ed25519 key. */
static inline void vector_device_id(const uint8_t *sign_pk, uint8_t *device)
{
	uint8_t h[32];

	crypto_generichash(h, sizeof(h), sign_pk, crypto_sign_PUBLICKEYBYTES, NULL, 0);
	memcpy(device, h, CHANGESET_DEVICE_BYTES);
}

static inline int vector_changes(struct change *c)
{
	static const char *const fields[VECTOR_CHANGES] = { "full_name", "household_size",
							    "_deleted" };
	static const char *const values[VECTOR_CHANGES] = { "\"Ружичић Ђорђе\"", "4", "true" };
	static const hlc_t hlcs[VECTOR_CHANGES] = { 0x0193a1b2c3d40000ULL, 0x0193a1b2c3d40000ULL,
						    0x0193a1b2c3d50001ULL };
	/* Version 3 carries them; earlier versions read as 0. */
	static const uint32_t form_versions[VECTOR_CHANGES] = { 2, 2, 0 };

	memset(c, 0, sizeof(*c) * VECTOR_CHANGES);
	for (int i = 0; i < VECTOR_CHANGES; i++) {
		strcpy(c[i].record_id, VECTOR_RECORD);
		strcpy(c[i].collection, "beneficiaries");
		strcpy(c[i].field, fields[i]);
		c[i].value = cJSON_Parse(values[i]);
		c[i].hlc = hlcs[i];
		c[i].form_version = form_versions[i];
		if (!c[i].value)
			return -ENOMEM;
	}
	return 0;
}

#endif
