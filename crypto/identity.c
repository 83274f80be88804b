/* identity.c - Ed25519 + X25519 device keys, sealed for storage. */
#include "crypto/identity.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/secmem.h"

#define IDENTITY_AD_LABEL "fieldsync-device-v1"

static struct identity *identity_alloc(void)
{
	struct identity *id = calloc(1, sizeof(*id));

	if (!id)
		return NULL;
	id->sign_sk = secmem_alloc(crypto_sign_SECRETKEYBYTES);
	id->box_sk = secmem_alloc(crypto_box_SECRETKEYBYTES);
	if (!id->sign_sk || !id->box_sk)
		return identity_free(id);
	return id;
}

struct identity *identity_free(struct identity *id)
{
	if (!id)
		return NULL;
	secmem_free(id->sign_sk);
	secmem_free(id->box_sk);
	free(id);
	return NULL;
}

void identity_device_id(const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES],
			char out[IDENTITY_ID_HEXLEN + 1])
{
	uint8_t h[crypto_generichash_BYTES];

	crypto_generichash(h, sizeof(h), sign_pk, crypto_sign_PUBLICKEYBYTES, NULL, 0);
	sodium_bin2hex(out, IDENTITY_ID_HEXLEN + 1, h, IDENTITY_ID_BYTES);
}

int identity_id_text_ok(const char *s)
{
	if (!s || strlen(s) != IDENTITY_ID_HEXLEN)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

int identity_generate(struct identity **ret_id)
{
	struct identity *id = identity_alloc();

	if (!id)
		return -ENOMEM;
	crypto_sign_keypair(id->sign_pk, id->sign_sk);
	crypto_box_keypair(id->box_pk, id->box_sk);
	identity_device_id(id->sign_pk, id->id);
	*ret_id = id;
	return 0;
}

static void identity_ad(const uint8_t *sign_pk, const uint8_t *box_pk, uint8_t *ad)
{
	memcpy(ad, IDENTITY_AD_LABEL, sizeof(IDENTITY_AD_LABEL) - 1);
	memcpy(ad + sizeof(IDENTITY_AD_LABEL) - 1, sign_pk, crypto_sign_PUBLICKEYBYTES);
	memcpy(ad + sizeof(IDENTITY_AD_LABEL) - 1 + crypto_sign_PUBLICKEYBYTES, box_pk,
	       crypto_box_PUBLICKEYBYTES);
}

#define IDENTITY_AD_BYTES                                                                          \
	(sizeof(IDENTITY_AD_LABEL) - 1 + crypto_sign_PUBLICKEYBYTES + crypto_box_PUBLICKEYBYTES)
#define IDENTITY_SECRET_BYTES (crypto_sign_SEEDBYTES + crypto_box_SECRETKEYBYTES)

int identity_seal(const struct identity *id, const uint8_t key[AEAD_KEYBYTES],
		  uint8_t out[IDENTITY_SEALED_BYTES])
{
	uint8_t ad[IDENTITY_AD_BYTES];
	uint8_t *secret = secmem_alloc(IDENTITY_SECRET_BYTES);
	uint8_t *p = out;

	memcpy(p, id->sign_pk, crypto_sign_PUBLICKEYBYTES);
	p += crypto_sign_PUBLICKEYBYTES;
	memcpy(p, id->box_pk, crypto_box_PUBLICKEYBYTES);
	p += crypto_box_PUBLICKEYBYTES;
	identity_ad(id->sign_pk, id->box_pk, ad);
	if (!secret)
		return -ENOMEM;
	crypto_sign_ed25519_sk_to_seed(secret, id->sign_sk);
	memcpy(secret + crypto_sign_SEEDBYTES, id->box_sk, crypto_box_SECRETKEYBYTES);
	aead_seal(p, secret, IDENTITY_SECRET_BYTES, ad, sizeof(ad), key);
	secmem_free(secret);
	return 0;
}

int identity_unseal(const uint8_t *payload, size_t len, const uint8_t key[AEAD_KEYBYTES],
		    struct identity **ret_id)
{
	uint8_t ad[IDENTITY_AD_BYTES], pk_check[crypto_sign_PUBLICKEYBYTES];
	uint8_t box_pk_check[crypto_box_PUBLICKEYBYTES];
	struct identity *id = NULL;
	uint8_t *secret = NULL;
	const uint8_t *sealed;
	int r;

	if (len != IDENTITY_SEALED_BYTES)
		return -FS_EFORMAT;
	id = identity_alloc();
	secret = secmem_alloc(IDENTITY_SECRET_BYTES);
	if (!id || !secret) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(id->sign_pk, payload, crypto_sign_PUBLICKEYBYTES);
	memcpy(id->box_pk, payload + crypto_sign_PUBLICKEYBYTES, crypto_box_PUBLICKEYBYTES);
	sealed = payload + crypto_sign_PUBLICKEYBYTES + crypto_box_PUBLICKEYBYTES;
	identity_ad(id->sign_pk, id->box_pk, ad);
	r = aead_open(secret, sealed, AEAD_OVERHEAD + IDENTITY_SECRET_BYTES, ad, sizeof(ad), key);
	if (r < 0)
		goto out;
	crypto_sign_seed_keypair(pk_check, id->sign_sk, secret);
	memcpy(id->box_sk, secret + crypto_sign_SEEDBYTES, crypto_box_SECRETKEYBYTES);
	crypto_scalarmult_base(box_pk_check, id->box_sk);
	/* The AD already binds the public halves; this catches a sealed
	 * payload built from mismatched halves by a buggy writer. */
	if (sodium_memcmp(pk_check, id->sign_pk, sizeof(pk_check)) != 0 ||
	    sodium_memcmp(box_pk_check, id->box_pk, sizeof(box_pk_check)) != 0) {
		r = -FS_EAUTH;
		goto out;
	}
	identity_device_id(id->sign_pk, id->id);
	*ret_id = id;
	id = NULL;
out:
	secmem_free(secret);
	identity_free(id);
	return r;
}
