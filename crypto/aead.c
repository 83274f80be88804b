/* aead.c - XChaCha20-Poly1305, combined and detached. */
#include "crypto/aead.h"

#include <string.h>

void aead_seal(uint8_t *out, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
	       const uint8_t key[AEAD_KEYBYTES])
{
	randombytes_buf(out, AEAD_NONCEBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out + AEAD_NONCEBYTES,
							    out + AEAD_NONCEBYTES + mlen, NULL, m,
							    mlen, ad, adlen, NULL, out, key);
}

int aead_open(uint8_t *out, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
	      const uint8_t key[AEAD_KEYBYTES])
{
	size_t mlen;

	if (clen < AEAD_OVERHEAD)
		return -FS_EFORMAT;
	mlen = clen - AEAD_OVERHEAD;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, NULL, c + AEAD_NONCEBYTES,
								mlen, c + AEAD_NONCEBYTES + mlen,
								ad, adlen, c, key) != 0) {
		sodium_memzero(out, mlen);
		return -FS_EAUTH;
	}
	return 0;
}

void aead_seal_detached(uint8_t *c, uint8_t tag[AEAD_TAGBYTES], uint8_t nonce[AEAD_NONCEBYTES],
			const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
			const uint8_t key[AEAD_KEYBYTES])
{
	randombytes_buf(nonce, AEAD_NONCEBYTES);
	aead_seal_detached_nonce(c, tag, nonce, m, mlen, ad, adlen, key);
}

void aead_seal_detached_nonce(uint8_t *c, uint8_t tag[AEAD_TAGBYTES],
			      const uint8_t nonce[AEAD_NONCEBYTES], const uint8_t *m, size_t mlen,
			      const uint8_t *ad, size_t adlen, const uint8_t key[AEAD_KEYBYTES])
{
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(c, tag, NULL, m, mlen, ad, adlen, NULL,
							    nonce, key);
}

int aead_open_detached(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t tag[AEAD_TAGBYTES],
		       const uint8_t nonce[AEAD_NONCEBYTES], const uint8_t *ad, size_t adlen,
		       const uint8_t key[AEAD_KEYBYTES])
{
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(m, NULL, c, clen, tag, ad, adlen,
								nonce, key) != 0) {
		sodium_memzero(m, clen);
		return -FS_EAUTH;
	}
	return 0;
}

void aead_derive_subkey(uint8_t sub[AEAD_KEYBYTES], uint64_t id, const char ctx[8],
			const uint8_t master[AEAD_KEYBYTES])
{
	crypto_kdf_derive_from_key(sub, AEAD_KEYBYTES, id, ctx, master);
}
