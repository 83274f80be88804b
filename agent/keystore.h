/* keystore.h - the store's data key, wrapped on disk.
 *
 * The data key is 32 random bytes made once by keystore_create().  It is
 * stored only wrapped (XChaCha20-Poly1305) under a key derived from a
 * passphrase with Argon2id, or from a key file (KEYFILE_WRAPKEY, e.g. a
 * systemd credential).  Changing the passphrase re-wraps 32 bytes and
 * never touches the database.  The envelope is a KEYFILE_ENVELOPE file
 * whose payload is:
 *
 *   offset size field
 *   0      1    envelope version, 1
 *   1      1    method: 1 passphrase (Argon2id), 2 key file
 *   2      16   store id (binds every page to this store; see vfs.h)
 *   18     33   Argon2id parameters (pwhash.h); zero for a key file
 *   51     24   nonce
 *   75     32   wrapped data key
 *   107    16   tag
 *
 * The associated data is "fieldsync-envelope-v1" || bytes 0..50, so the
 * method, store id and cost parameters cannot be altered either.  A wrong
 * passphrase or key file is -FS_EKEY.  Secrets are in secure memory.
 */
#ifndef FS_KEYSTORE_H
#define FS_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"
#include "crypto/fserr.h"
#include "crypto/pwhash.h"

#define KEYSTORE_ID_BYTES 16
#define KEYSTORE_PAYLOAD_BYTES                                                                     \
	(2 + KEYSTORE_ID_BYTES + PWHASH_PARAMS_BYTES + AEAD_OVERHEAD + AEAD_KEYBYTES)

enum keystore_method {
	KEYSTORE_PASSPHRASE = 1,
	KEYSTORE_KEYFILE = 2,
};

/* What unlocks a store: a passphrase or the contents of a key file. */
struct keystore_secret {
	enum keystore_method method;
	char *passphrase; /* secure memory, NUL-terminated (PASSPHRASE) */
	size_t passlen;
	uint8_t *wrapkey; /* secure memory, AEAD_KEYBYTES (KEYFILE) */
};

int keystore_secret_from_passphrase(const char *pass, size_t len,
				    struct keystore_secret **ret_secret) FS_WUR;
int keystore_secret_from_passphrase_file(const char *path, struct keystore_secret **ret_secret,
					 struct fs_error *err) FS_WUR;
int keystore_secret_from_key_file(const char *path, struct keystore_secret **ret_secret,
				  struct fs_error *err) FS_WUR;
/* The contents of a key file already read (AEAD_KEYBYTES), e.g. passed
 * to the agent by `fieldsync unlock`.  -FS_EFORMAT on a wrong length. */
int keystore_secret_from_wrapkey(const uint8_t *key, size_t len,
				 struct keystore_secret **ret_secret) FS_WUR;
/* Wipes; NULL-safe; returns NULL. */
struct keystore_secret *keystore_secret_free(struct keystore_secret *s);

/* Write a new random wrap key to path (mode 0600); never replaces a file. */
int keystore_keygen(const char *path, struct fs_error *err) FS_WUR;

/* Make a data key and store id, and write the envelope at path (which
 * must not exist).  *ret_key is secure memory (AEAD_KEYBYTES). */
int keystore_create(const char *path, const struct keystore_secret *s, enum pwhash_profile profile,
		    uint8_t **ret_key, uint8_t ret_id[KEYSTORE_ID_BYTES],
		    struct fs_error *err) FS_WUR;

/* Unwrap.  -FS_EKEY when s is not the secret the envelope was made with. */
int keystore_open(const char *path, const struct keystore_secret *s, uint8_t **ret_key,
		  uint8_t ret_id[KEYSTORE_ID_BYTES], struct fs_error *err) FS_WUR;

/* Re-wrap the same data key under a new secret, atomically. */
int keystore_rewrap(const char *path, const struct keystore_secret *old_secret,
		    const struct keystore_secret *new_secret, enum pwhash_profile profile,
		    struct fs_error *err) FS_WUR;

#endif
