/* identity.h - a device's long-term keys.
 *
 * Each field device has an Ed25519 key pair (it signs change sets) and an
 * X25519 key pair (HQ can seal to it).  The device id is the first 16
 * bytes of BLAKE2b-256 over the Ed25519 public key, in lower-case hex, so
 * an id cannot be claimed without the key.
 *
 * Secret halves live in secure memory.  identity_seal() produces the
 * payload of a KEYFILE_DEVICE file:
 *
 *   sign_pk(32) box_pk(32) nonce(24) AEAD(sign_seed(32) box_sk(32)) tag(16)
 *
 * with associated data "fieldsync-device-v1" || sign_pk || box_pk, so the
 * public halves cannot be swapped without detection.  Not thread-safe per
 * object; distinct objects are independent.
 */
#ifndef FS_IDENTITY_H
#define FS_IDENTITY_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "crypto/aead.h"
#include "crypto/fserr.h"

#define IDENTITY_ID_BYTES 16
#define IDENTITY_ID_HEXLEN (2 * IDENTITY_ID_BYTES)
#define IDENTITY_SEALED_BYTES                                                                      \
	(crypto_sign_PUBLICKEYBYTES + crypto_box_PUBLICKEYBYTES + AEAD_OVERHEAD +                  \
	 crypto_sign_SEEDBYTES + crypto_box_SECRETKEYBYTES)

struct identity {
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES]; /* Ed25519 public key */
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES];   /* X25519 public key */
	uint8_t *sign_sk;			     /* secure memory, crypto_sign_SECRETKEYBYTES */
	uint8_t *box_sk;			     /* secure memory, crypto_box_SECRETKEYBYTES */
	char id[IDENTITY_ID_HEXLEN + 1];	     /* device id, hex, NUL-terminated */
};

int identity_generate(struct identity **ret_id) FS_WUR;

/* NULL-safe; wipes the secret halves.  Returns NULL. */
struct identity *identity_free(struct identity *id);

/* out must hold IDENTITY_SEALED_BYTES.  -ENOMEM when no secure memory
 * is left; out is then not a valid sealed identity. */
int identity_seal(const struct identity *id, const uint8_t key[AEAD_KEYBYTES],
		  uint8_t out[IDENTITY_SEALED_BYTES]) FS_WUR;

/* -FS_EFORMAT on a wrong length, -FS_EAUTH when the key is wrong or the
 * payload was altered. */
int identity_unseal(const uint8_t *payload, size_t len, const uint8_t key[AEAD_KEYBYTES],
		    struct identity **ret_id) FS_WUR;

void identity_device_id(const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES],
			char out[IDENTITY_ID_HEXLEN + 1]);

/* Is s a device id as text: IDENTITY_ID_HEXLEN lower-case hex digits? */
int identity_id_text_ok(const char *s);

#endif
