/* keystore.c - wrapping and unwrapping the store's data key.
 *
 * Sections: secrets; deriving the wrapping key; envelope create, open,
 * re-wrap.
 */
#include "agent/keystore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "crypto/keyfile.h"
#include "crypto/secmem.h"

#define ENVELOPE_VERSION 1
#define ENVELOPE_AD_LABEL "fieldsync-envelope-v1"
#define ENVELOPE_CLEAR_BYTES (2 + KEYSTORE_ID_BYTES + PWHASH_PARAMS_BYTES)

/* ---- secrets ---------------------------------------------------------- */

int keystore_secret_from_passphrase(const char *pass, size_t len,
				    struct keystore_secret **ret_secret)
{
	struct keystore_secret *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->method = KEYSTORE_PASSPHRASE;
	s->passphrase = secmem_alloc(len + 1);
	if (!s->passphrase) {
		free(s);
		return -ENOMEM;
	}
	memcpy(s->passphrase, pass, len);
	s->passphrase[len] = '\0';
	s->passlen = len;
	*ret_secret = s;
	return 0;
}

int keystore_secret_from_passphrase_file(const char *path, struct keystore_secret **ret_secret,
					 struct fs_error *err)
{
	struct keystore_secret *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return fs_error_set(err, -ENOMEM, "read passphrase %s: out of memory", path);
	s->method = KEYSTORE_PASSPHRASE;
	r = keyfile_read_passphrase(path, &s->passphrase, &s->passlen, err);
	if (r < 0) {
		free(s);
		return r;
	}
	*ret_secret = s;
	return 0;
}

int keystore_secret_from_key_file(const char *path, struct keystore_secret **ret_secret,
				  struct fs_error *err)
{
	struct keystore_secret *s = calloc(1, sizeof(*s));
	size_t len;
	int r;

	if (!s)
		return fs_error_set(err, -ENOMEM, "read key %s: out of memory", path);
	s->method = KEYSTORE_KEYFILE;
	r = keyfile_read(path, KEYFILE_WRAPKEY, &s->wrapkey, &len, err);
	if (r < 0) {
		free(s);
		return r;
	}
	if (len != AEAD_KEYBYTES) {
		keystore_secret_free(s);
		return fs_error_set(err, -FS_EFORMAT, "read key %s: wrong key length", path);
	}
	*ret_secret = s;
	return 0;
}

int keystore_secret_from_wrapkey(const uint8_t *key, size_t len,
				 struct keystore_secret **ret_secret)
{
	struct keystore_secret *s;

	if (len != AEAD_KEYBYTES)
		return -FS_EFORMAT;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->method = KEYSTORE_KEYFILE;
	if (secmem_dup(key, len, &s->wrapkey) < 0) {
		free(s);
		return -ENOMEM;
	}
	*ret_secret = s;
	return 0;
}

struct keystore_secret *keystore_secret_free(struct keystore_secret *s)
{
	if (!s)
		return NULL;
	secmem_free(s->passphrase);
	secmem_free(s->wrapkey);
	free(s);
	return NULL;
}

int keystore_keygen(const char *path, struct fs_error *err)
{
	uint8_t *k = NULL;
	int r = secmem_random_key(AEAD_KEYBYTES, &k);

	if (r < 0)
		return fs_error_set(err, r, "write key %s: out of secure memory", path);
	r = keyfile_write(path, KEYFILE_WRAPKEY, k, AEAD_KEYBYTES, KEYFILE_NO_REPLACE, err);
	secmem_free(k);
	return r;
}

/* ---- deriving the wrapping key ---------------------------------------- */

static int derive_wrap_key(const struct keystore_secret *s, const struct pwhash_params *p,
			   uint8_t **ret_key, struct fs_error *err)
{
	uint8_t *k = secmem_alloc(AEAD_KEYBYTES);
	int r = 0;

	if (!k)
		return fs_error_set(err, -ENOMEM, "derive key: out of secure memory");
	if (s->method == KEYSTORE_PASSPHRASE) {
		r = pwhash_derive(k, AEAD_KEYBYTES, s->passphrase, s->passlen, p);
		if (r < 0)
			fs_error_set(err, r,
				     "derive key from passphrase: Argon2id needs %llu MiB "
				     "of memory it could not get",
				     (unsigned long long)(p->memlimit >> 20));
	} else {
		/* Domain-separate: the key file's bytes wrap, never encrypt pages. */
		aead_derive_subkey(k, 1, "fswrap01", s->wrapkey);
	}
	if (r < 0) {
		secmem_free(k);
		return r;
	}
	*ret_key = k;
	return 0;
}

/* ---- envelope --------------------------------------------------------- */

static void envelope_ad(const uint8_t *clear, uint8_t *ad)
{
	memcpy(ad, ENVELOPE_AD_LABEL, sizeof(ENVELOPE_AD_LABEL) - 1);
	memcpy(ad + sizeof(ENVELOPE_AD_LABEL) - 1, clear, ENVELOPE_CLEAR_BYTES);
}

#define ENVELOPE_AD_BYTES (sizeof(ENVELOPE_AD_LABEL) - 1 + ENVELOPE_CLEAR_BYTES)

static int envelope_write(const char *path, const struct keystore_secret *s,
			  enum pwhash_profile profile, const uint8_t *data_key,
			  const uint8_t id[KEYSTORE_ID_BYTES], int flags, struct fs_error *err)
{
	uint8_t payload[KEYSTORE_PAYLOAD_BYTES], ad[ENVELOPE_AD_BYTES];
	struct pwhash_params params = { 0 };
	uint8_t *wrap = NULL;
	int r;

	memset(payload, 0, sizeof(payload));
	payload[0] = ENVELOPE_VERSION;
	payload[1] = (uint8_t)s->method;
	memcpy(payload + 2, id, KEYSTORE_ID_BYTES);
	if (s->method == KEYSTORE_PASSPHRASE) {
		pwhash_params_new(profile, &params);
		pwhash_params_encode(&params, payload + 2 + KEYSTORE_ID_BYTES);
	}
	r = derive_wrap_key(s, &params, &wrap, err);
	if (r < 0)
		return r;
	envelope_ad(payload, ad);
	aead_seal(payload + ENVELOPE_CLEAR_BYTES, data_key, AEAD_KEYBYTES, ad, sizeof(ad), wrap);
	r = keyfile_write(path, KEYFILE_ENVELOPE, payload, sizeof(payload), flags, err);
	secmem_free(wrap);
	return r;
}

int keystore_create(const char *path, const struct keystore_secret *s, enum pwhash_profile profile,
		    uint8_t **ret_key, uint8_t ret_id[KEYSTORE_ID_BYTES], struct fs_error *err)
{
	uint8_t id[KEYSTORE_ID_BYTES];
	uint8_t *key = NULL;
	int r;

	r = secmem_random_key(AEAD_KEYBYTES, &key);
	if (r < 0)
		return fs_error_set(err, r, "create key: out of secure memory");
	randombytes_buf(id, sizeof(id));
	r = envelope_write(path, s, profile, key, id, KEYFILE_NO_REPLACE, err);
	if (r < 0) {
		secmem_free(key);
		return r;
	}
	memcpy(ret_id, id, KEYSTORE_ID_BYTES);
	*ret_key = key;
	return 0;
}

int keystore_open(const char *path, const struct keystore_secret *s, uint8_t **ret_key,
		  uint8_t ret_id[KEYSTORE_ID_BYTES], struct fs_error *err)
{
	uint8_t ad[ENVELOPE_AD_BYTES];
	struct pwhash_params params = { 0 };
	uint8_t *payload = NULL, *wrap = NULL, *key = NULL;
	size_t len;
	int r;

	r = keyfile_read(path, KEYFILE_ENVELOPE, &payload, &len, err);
	if (r < 0)
		return r;
	if (len != KEYSTORE_PAYLOAD_BYTES || payload[0] != ENVELOPE_VERSION ||
	    (payload[1] != KEYSTORE_PASSPHRASE && payload[1] != KEYSTORE_KEYFILE)) {
		r = fs_error_set(err, -FS_EFORMAT, "open key %s: unsupported envelope", path);
		goto out;
	}
	if (payload[1] != s->method) {
		r = fs_error_set(err, -FS_EKEY,
				 "open key %s: the store is unlocked with a %s, "
				 "not a %s",
				 path,
				 payload[1] == KEYSTORE_PASSPHRASE ? "passphrase" : "key file",
				 s->method == KEYSTORE_PASSPHRASE ? "passphrase" : "key file");
		goto out;
	}
	if (s->method == KEYSTORE_PASSPHRASE &&
	    pwhash_params_decode(payload + 2 + KEYSTORE_ID_BYTES, &params) < 0) {
		r = fs_error_set(err, -FS_EFORMAT, "open key %s: Argon2id parameters out of range",
				 path);
		goto out;
	}
	r = derive_wrap_key(s, &params, &wrap, err);
	if (r < 0)
		goto out;
	key = secmem_alloc(AEAD_KEYBYTES);
	if (!key) {
		r = fs_error_set(err, -ENOMEM, "open key %s: out of secure memory", path);
		goto out;
	}
	envelope_ad(payload, ad);
	if (aead_open(key, payload + ENVELOPE_CLEAR_BYTES, AEAD_OVERHEAD + AEAD_KEYBYTES, ad,
		      sizeof(ad), wrap) < 0) {
		r = fs_error_set(err, -FS_EKEY, "open key %s: wrong %s", path,
				 s->method == KEYSTORE_PASSPHRASE ? "passphrase" : "key file");
		goto out;
	}
	memcpy(ret_id, payload + 2, KEYSTORE_ID_BYTES);
	*ret_key = key;
	key = NULL;
out:
	secmem_free(key);
	secmem_free(wrap);
	secmem_free(payload);
	return r;
}

int keystore_rewrap(const char *path, const struct keystore_secret *old_secret,
		    const struct keystore_secret *new_secret, enum pwhash_profile profile,
		    struct fs_error *err)
{
	uint8_t id[KEYSTORE_ID_BYTES];
	uint8_t *key = NULL;
	int r;

	r = keystore_open(path, old_secret, &key, id, err);
	if (r < 0)
		return r;
	r = envelope_write(path, new_secret, profile, key, id, KEYFILE_REPLACE, err);
	secmem_free(key);
	return r;
}
