/* pwhash.c - Argon2id via crypto_pwhash, with self-describing parameters. */
#include "crypto/pwhash.h"

#include <errno.h>
#include <string.h>

#include "crypto/bytes.h"

int pwhash_profile_parse(const char *name, enum pwhash_profile *ret_profile)
{
	if (!strcmp(name, "interactive"))
		*ret_profile = PWHASH_INTERACTIVE;
	else if (!strcmp(name, "moderate"))
		*ret_profile = PWHASH_MODERATE;
	else if (!strcmp(name, "sensitive"))
		*ret_profile = PWHASH_SENSITIVE;
	else
		return -FS_EUSAGE;
	return 0;
}

void pwhash_params_new(enum pwhash_profile profile, struct pwhash_params *ret_params)
{
	struct pwhash_params p = { .alg = PWHASH_ALG_ARGON2ID13 };

	switch (profile) {
	case PWHASH_INTERACTIVE:
		p.opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
		p.memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
		break;
	case PWHASH_SENSITIVE:
		p.opslimit = crypto_pwhash_OPSLIMIT_SENSITIVE;
		p.memlimit = crypto_pwhash_MEMLIMIT_SENSITIVE;
		break;
	case PWHASH_MODERATE:
	default:
		p.opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
		p.memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
		break;
	}
	randombytes_buf(p.salt, sizeof(p.salt));
	*ret_params = p;
}

void pwhash_params_encode(const struct pwhash_params *p, uint8_t out[PWHASH_PARAMS_BYTES])
{
	out[0] = p->alg;
	bytes_put_be(out + 1, p->opslimit, 8);
	bytes_put_be(out + 9, p->memlimit, 8);
	memcpy(out + 17, p->salt, PWHASH_SALTBYTES);
}

int pwhash_params_decode(const uint8_t in[PWHASH_PARAMS_BYTES], struct pwhash_params *ret_params)
{
	struct pwhash_params p;

	p.alg = in[0];
	p.opslimit = bytes_get_be(in + 1, 8);
	p.memlimit = bytes_get_be(in + 9, 8);
	memcpy(p.salt, in + 17, PWHASH_SALTBYTES);
	/* Never weaker than interactive, never dearer than sensitive: both
	 * ends matter, one against brute force, one against a file that
	 * asks for all the memory of the machine. */
	if (p.alg != PWHASH_ALG_ARGON2ID13 || p.opslimit < crypto_pwhash_OPSLIMIT_INTERACTIVE ||
	    p.opslimit > crypto_pwhash_OPSLIMIT_SENSITIVE ||
	    p.memlimit < crypto_pwhash_MEMLIMIT_INTERACTIVE ||
	    p.memlimit > crypto_pwhash_MEMLIMIT_SENSITIVE)
		return -FS_EFORMAT;
	*ret_params = p;
	return 0;
}

int pwhash_derive(uint8_t *key, size_t keylen, const char *pass, size_t passlen,
		  const struct pwhash_params *p)
{
	if (p->alg != PWHASH_ALG_ARGON2ID13)
		return -FS_EFORMAT;
	if (crypto_pwhash(key, keylen, pass, passlen, p->salt, p->opslimit, (size_t)p->memlimit,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -ENOMEM; /* the only documented failure */
	return 0;
}
