/* hqkeys.h - HQ's long-term identity: Ed25519 (signs receipts) and
 * X25519 (devices seal change sets to it).
 *
 * Stored in DATA_DIR/hq.key as a key file (crypto/keyfile.h) of kind
 * HQ_KEYFILE_IDENTITY, payload = Ed25519 seed (32) || X25519 secret key
 * (32); the public halves are derived when read.  The file is protected
 * by its mode (0600) and the service account, like a TLS key; or, kept
 * off the disk in the clear, it comes as the systemd credential
 * HQKEYS_CREDENTIAL (LoadCredentialEncrypted=, docs/DEPLOY.md), which
 * hqkeys_load() prefers when $CREDENTIALS_DIRECTORY holds it.  Keys are
 * held in a struct identity, secret halves in secure memory.
 * Errors: -FS_EEXIST (init over an existing key), key file errors
 * (-FS_EFORMAT, -FS_EKEYPERM, -errno), -ENOMEM.  Thread-safe; a loaded
 * identity is read-only and may be shared between threads.
 */
#ifndef FS_HQKEYS_H
#define FS_HQKEYS_H

#include "crypto/fserr.h"
#include "crypto/identity.h"

#define HQ_KEYFILE_IDENTITY 4
#define HQKEYS_FILE "hq.key"
#define HQKEYS_CREDENTIAL "fieldsync-hq-key"
#define HQKEYS_PAYLOAD_BYTES (crypto_sign_SEEDBYTES + crypto_box_SECRETKEYBYTES)

/* Generate a new identity and write it to data_dir/hq.key; never
 * replaces an existing file. */
int hqkeys_create(const char *data_dir, struct fs_error *err) FS_WUR;

/* Read $CREDENTIALS_DIRECTORY/HQKEYS_CREDENTIAL if it exists, else
 * data_dir/hq.key; free *ret with identity_free(). */
int hqkeys_load(const char *data_dir, struct identity **ret, struct fs_error *err) FS_WUR;

#endif
