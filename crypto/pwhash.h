/* pwhash.h - Argon2id key derivation from a passphrase.
 *
 * The parameters (algorithm, opslimit, memlimit, salt) travel with the
 * result in PWHASH_PARAMS_BYTES bytes, so a store created with one cost
 * profile opens on a machine whose default is another.  Parameters read
 * back from disk are bounded (pwhash_params_decode) so a crafted file
 * cannot make us allocate gigabytes.  Thread-safe.
 */
#ifndef FS_PWHASH_H
#define FS_PWHASH_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "crypto/fserr.h"

#define PWHASH_SALTBYTES crypto_pwhash_SALTBYTES
/* alg(1) opslimit(8, big-endian) memlimit(8, big-endian) salt(16) */
#define PWHASH_PARAMS_BYTES (1 + 8 + 8 + PWHASH_SALTBYTES)
#define PWHASH_ALG_ARGON2ID13 1

enum pwhash_profile {
	PWHASH_INTERACTIVE, /* 64 MiB, 2 passes: tests and small machines */
	PWHASH_MODERATE,    /* 256 MiB, 3 passes: the default */
	PWHASH_SENSITIVE,   /* 1 GiB, 4 passes */
};

struct pwhash_params {
	uint8_t alg;	   /* PWHASH_ALG_ARGON2ID13 */
	uint64_t opslimit; /* Argon2 passes */
	uint64_t memlimit; /* bytes */
	uint8_t salt[PWHASH_SALTBYTES];
};

/* Parse "interactive", "moderate" or "sensitive"; -FS_EUSAGE otherwise. */
int pwhash_profile_parse(const char *name, enum pwhash_profile *ret_profile) FS_WUR;

/* Fresh parameters for a profile, with a random salt. */
void pwhash_params_new(enum pwhash_profile profile, struct pwhash_params *ret_params);

void pwhash_params_encode(const struct pwhash_params *p, uint8_t out[PWHASH_PARAMS_BYTES]);

/* -FS_EFORMAT on an unknown algorithm or out-of-range costs. */
int pwhash_params_decode(const uint8_t in[PWHASH_PARAMS_BYTES],
			 struct pwhash_params *ret_params) FS_WUR;

/* Derive keylen bytes into key (which should be secure memory).
 * -ENOMEM when the machine cannot give Argon2 its memory. */
int pwhash_derive(uint8_t *key, size_t keylen, const char *pass, size_t passlen,
		  const struct pwhash_params *p) FS_WUR;

#endif
