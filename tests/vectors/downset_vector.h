/* downset_vector.h - the keys and entries of the down-set test vector,
 * as docs/PROTOCOL.md ("Down-set test vector") describes them. */
#ifndef FS_DOWNSET_VECTOR_H
#define FS_DOWNSET_VECTOR_H

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "sync/downset.h"
#include "tests/vectors/changeset_vector.h"

#define DVECTOR_CURSOR 0x0102030405060708ULL
/* The hash of tests/vectors/downset-v2.hex, as made once. */
#define DVECTOR_V2_HASH "cf1023228d55e784a361fab7e4f986d3584bd4590d4bf187a4ec02896322d186"
#define DVECTOR_TIME_MS 1764979200000ULL /* 2025-12-06T00:00:00Z */
#define DVECTOR_DEVICE_A "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
#define DVECTOR_FORM                                                                               \
	"{\"format\":\"fieldsync-form/1\",\"collection\":\"visits\",\"fields\":"                   \
	"[{\"name\":\"notes\",\"type\":\"text\"}]}"

/* HQ Ed25519 seed: bytes 0x41..0x60; device X25519 seed: 0x61..0x80.  The
 * device id is the change-set vector's (Ed25519 seed 0x01..0x20). */
static inline void dvector_keys(uint8_t *hq_sign_pk, uint8_t *hq_sign_sk, uint8_t *dev_box_pk,
				uint8_t *dev_box_sk, uint8_t *device)
{
	uint8_t seed[32], pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t bpk[crypto_box_PUBLICKEYBYTES], bsk[crypto_box_SECRETKEYBYTES];

	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i + 0x41);
	crypto_sign_seed_keypair(hq_sign_pk, hq_sign_sk, seed);
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i + 0x61);
	crypto_box_seed_keypair(dev_box_pk, dev_box_sk, seed);
	vector_keys(pk, sk, bpk, bsk);
	vector_device_id(pk, device);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(bsk, sizeof(bsk));
}

/* Sequence 1, flag "more", scope Tutin and Бујановац; two changes, one
 * conflict, one form.  Free with downset_clear(). */
static inline int dvector_downset(struct downset *d, const uint8_t *device)
{
	static const char *const scope[] = { "Tutin", "Бујановац" };
	char dev_hex[DOWNSET_DEVICE_HEX];

	memset(d, 0, sizeof(*d));
	sodium_bin2hex(dev_hex, sizeof(dev_hex), device, CHANGESET_DEVICE_BYTES);
	d->h.flags = DOWNSET_FLAG_MORE;
	memcpy(d->h.device, device, CHANGESET_DEVICE_BYTES);
	d->h.seq = 1;
	d->h.cursor = DVECTOR_CURSOR;
	d->h.hq_time_ms = DVECTOR_TIME_MS;
	d->nscope = 2;
	d->nchanges = 2;
	d->nconflicts = 1;
	d->nforms = 1;
	if (!(d->scope = calloc(2, sizeof(*d->scope))) ||
	    !(d->changes = calloc(2, sizeof(*d->changes))) ||
	    !(d->conflicts = calloc(1, sizeof(*d->conflicts))) ||
	    !(d->forms = calloc(1, sizeof(*d->forms))))
		return -1;
	for (int i = 0; i < 2; i++) {
		struct change *c = &d->changes[i].c;

		if (!(d->scope[i] = strdup(scope[i])))
			return -1;
		strcpy(c->record_id, VECTOR_RECORD);
		strcpy(c->collection, "beneficiaries");
		strcpy(c->field, i ? "municipality" : "full_name");
		c->value = cJSON_CreateString(i ? "Tutin" : "Ружичић Ђорђе");
		c->hlc = 0x0193a1b2c3d40000ULL + (hlc_t)i;
		strcpy(d->changes[i].device, dev_hex);
		if (!c->value)
			return -1;
	}
	strcpy(d->conflicts[0].record_id, VECTOR_RECORD);
	strcpy(d->conflicts[0].field, "household_size");
	strcpy(d->conflicts[0].device_a, DVECTOR_DEVICE_A);
	d->conflicts[0].hlc_a = 0x0193a1b2c3d40000ULL;
	d->conflicts[0].value_a = cJSON_CreateNumber(4);
	strcpy(d->conflicts[0].device_b, dev_hex);
	d->conflicts[0].hlc_b = 0x0193a1b2c3d50000ULL;
	d->conflicts[0].value_b = cJSON_CreateNumber(5);
	strcpy(d->forms[0].collection, "visits");
	d->forms[0].version = 2;
	d->forms[0].definition = cJSON_Parse(DVECTOR_FORM);
	return d->conflicts[0].value_a && d->conflicts[0].value_b && d->forms[0].definition ? 0
											    : -1;
}

/* Version 2: the same, with the teams of the two devices it names. */
static inline int dvector_downset_v2(struct downset *d, const uint8_t *device)
{
	if (dvector_downset(d, device) < 0 || !(d->teams = calloc(2, sizeof(*d->teams))))
		return -1;
	d->h.version = 2;
	d->nteams = 2;
	strcpy(d->teams[0].device, DVECTOR_DEVICE_A);
	strcpy(d->teams[0].team, "Tim Бујановац");
	sodium_bin2hex(d->teams[1].device, sizeof(d->teams[1].device), device,
		       CHANGESET_DEVICE_BYTES);
	strcpy(d->teams[1].team, "Tim Tutin");
	return 0;
}

#endif
