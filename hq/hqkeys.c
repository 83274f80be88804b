/* hqkeys.c - create and read HQ's identity key file. */
#include "hq/hqkeys.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keyfile.h"
#include "crypto/secmem.h"

static int key_path(char out[PATH_MAX], const char *data_dir, struct fs_error *err)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", data_dir, HQKEYS_FILE) >= PATH_MAX)
		return fs_error_set(err, -ENAMETOOLONG, "data directory %s: path too long",
				    data_dir);
	return 0;
}

int hqkeys_create(const char *data_dir, struct fs_error *err)
{
	struct identity *id = NULL;
	uint8_t *payload = NULL;
	char path[PATH_MAX];
	int r;

	if ((r = key_path(path, data_dir, err)) < 0)
		return r;
	if ((r = identity_generate(&id)) < 0)
		return fs_error_set(err, r, "generate HQ keys: %s", fs_strerror(r));
	payload = secmem_alloc(HQKEYS_PAYLOAD_BYTES);
	if (!payload) {
		r = fs_error_set(err, -ENOMEM, "generate HQ keys: out of secure memory");
		goto out;
	}
	/* libsodium's Ed25519 secret key is seed || public key. */
	memcpy(payload, id->sign_sk, crypto_sign_SEEDBYTES);
	memcpy(payload + crypto_sign_SEEDBYTES, id->box_sk, crypto_box_SECRETKEYBYTES);
	r = keyfile_write(path, HQ_KEYFILE_IDENTITY, payload, HQKEYS_PAYLOAD_BYTES,
			  KEYFILE_NO_REPLACE, err);
out:
	secmem_free(payload);
	identity_free(id);
	return r;
}

int hqkeys_load(const char *data_dir, struct identity **ret, struct fs_error *err)
{
	struct identity *id = NULL;
	uint8_t *payload = NULL;
	size_t n = 0;
	char path[PATH_MAX];
	int r;

	const char *creds = getenv("CREDENTIALS_DIRECTORY");

	if (creds && creds[0] &&
	    (size_t)snprintf(path, sizeof(path), "%s/%s", creds, HQKEYS_CREDENTIAL) <
		    sizeof(path) &&
	    access(path, F_OK) == 0) {
		/* The credential, decrypted by systemd into its own memory-backed
		 * directory: hq.key need not exist on disk. */
	} else if ((r = key_path(path, data_dir, err)) < 0) {
		return r;
	} else if (access(path, F_OK) != 0 && errno == ENOENT) {
		return fs_error_set(err, -ENOENT,
				    "HQ key %s: no such file (run init, or pass the "
				    "key as the systemd credential %s)",
				    path, HQKEYS_CREDENTIAL);
	}
	if ((r = keyfile_read(path, HQ_KEYFILE_IDENTITY, &payload, &n, err)) < 0)
		return r;
	if (n != HQKEYS_PAYLOAD_BYTES) {
		r = fs_error_set(err, -FS_EFORMAT, "HQ key %s: payload of %zu bytes, expected %d",
				 path, n, HQKEYS_PAYLOAD_BYTES);
		goto out;
	}
	/* identity_generate allocates the secure halves; they are then
	 * replaced by the stored keys. */
	if ((r = identity_generate(&id)) < 0) {
		r = fs_error_set(err, r, "HQ key %s: %s", path, fs_strerror(r));
		goto out;
	}
	if (crypto_sign_seed_keypair(id->sign_pk, id->sign_sk, payload) != 0 ||
	    crypto_scalarmult_base(id->box_pk, payload + crypto_sign_SEEDBYTES) != 0) {
		r = fs_error_set(err, -FS_EFORMAT, "HQ key %s: unusable key", path);
		goto out;
	}
	memcpy(id->box_sk, payload + crypto_sign_SEEDBYTES, crypto_box_SECRETKEYBYTES);
	identity_device_id(id->sign_pk, id->id);
	*ret = id;
	id = NULL;
out:
	secmem_free(payload);
	identity_free(id);
	return r;
}
