/* aead.h - XChaCha20-Poly1305 (IETF) helpers.
 *
 * Combined form: out = nonce || ciphertext || tag, so a sealed message is
 * AEAD_OVERHEAD bytes longer than the plaintext.  The nonce is random per
 * call (192 bits make random nonces safe).  Detached form is for callers
 * that keep nonce and tag elsewhere (the store's page reserve bytes).
 *
 * aead_open*() return -FS_EAUTH when the tag does not verify and then
 * leave no plaintext in the output buffer.  Thread-safe.
 */
#ifndef FS_AEAD_H
#define FS_AEAD_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "crypto/fserr.h"

#define AEAD_KEYBYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define AEAD_NONCEBYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define AEAD_TAGBYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define AEAD_OVERHEAD (AEAD_NONCEBYTES + AEAD_TAGBYTES)

/* out must hold mlen + AEAD_OVERHEAD bytes. */
void aead_seal(uint8_t *out, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
	       const uint8_t key[AEAD_KEYBYTES]);

/* out must hold clen - AEAD_OVERHEAD bytes; clen < AEAD_OVERHEAD is -FS_EFORMAT. */
int aead_open(uint8_t *out, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
	      const uint8_t key[AEAD_KEYBYTES]) FS_WUR;

/* Detached: c and m may be the same buffer (in place). nonce is filled. */
void aead_seal_detached(uint8_t *c, uint8_t tag[AEAD_TAGBYTES], uint8_t nonce[AEAD_NONCEBYTES],
			const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
			const uint8_t key[AEAD_KEYBYTES]);

/* The same with the caller's nonce, which must never repeat under key
 * (agent/vfs.c: a random prefix and a counter). */
void aead_seal_detached_nonce(uint8_t *c, uint8_t tag[AEAD_TAGBYTES],
			      const uint8_t nonce[AEAD_NONCEBYTES], const uint8_t *m, size_t mlen,
			      const uint8_t *ad, size_t adlen, const uint8_t key[AEAD_KEYBYTES]);

int aead_open_detached(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t tag[AEAD_TAGBYTES],
		       const uint8_t nonce[AEAD_NONCEBYTES], const uint8_t *ad, size_t adlen,
		       const uint8_t key[AEAD_KEYBYTES]) FS_WUR;

/* Derive a 32-byte subkey for one purpose from a master key (BLAKE2b KDF).
 * ctx is exactly 8 characters naming the purpose. */
void aead_derive_subkey(uint8_t sub[AEAD_KEYBYTES], uint64_t id, const char ctx[8],
			const uint8_t master[AEAD_KEYBYTES]);

#endif
