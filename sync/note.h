/* note.h - C2SP signed notes and tlog checkpoints, Ed25519 only.
 *
 * HQ signs the heads of its audit log as C2SP tlog-checkpoint notes
 * (c2sp.org/tlog-checkpoint, c2sp.org/signed-note), so that existing
 * transparency-log verifiers and witnesses can read them:
 *
 *   <origin>\n
 *   <tree size, decimal>\n
 *   <root hash, base64>\n
 *   \n
 *   — <key name> <base64(key ID (4, big-endian) || Ed25519 signature)>\n
 *
 * The signature covers the text before the blank line, final newline
 * included; key ID = SHA-256(key name || 0x0A || 0x01 || public key)[:4].
 * A verifier key is written "<name>+<hex key ID>+<base64(0x01 || key)>".
 * tests/test_merkle.c checks the reference vector of the Go sumdb/note
 * package.  Pure; thread-safe.
 */
#ifndef FS_NOTE_H
#define FS_NOTE_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "crypto/fserr.h"
#include "sync/merkle.h"

#define NOTE_NAME_MAX 128
#define NOTE_MAX (64 * 1024)

void note_key_id(const char *name, const uint8_t pk[crypto_sign_PUBLICKEYBYTES], uint8_t out[4]);

/* Sign text (non-empty, ending in '\n', no blank line, no control
 * characters but '\n') as name.  *ret is malloc'd, NUL-terminated.
 * -EINVAL for a bad name or text. */
int note_sign(const char *text, const char *name, const uint8_t sk[crypto_sign_SECRETKEYBYTES],
	      char **ret) FS_WUR;

/* Verify note (len bytes) against one known key: the signature line of
 * that name and key ID must verify.  On success *ret_text_len is the
 * length of the signed text at the start of note.  -FS_EAUTH for a note
 * without a valid signature by the key, -EINVAL when malformed. */
int note_verify(const char *note, size_t len, const char *name,
		const uint8_t pk[crypto_sign_PUBLICKEYBYTES], size_t *ret_text_len) FS_WUR;

/* "<name>+<hex key ID>+<base64(0x01 || pk)>" into out. */
int note_vkey_format(const char *name, const uint8_t pk[crypto_sign_PUBLICKEYBYTES], char *out,
		     size_t cap) FS_WUR;
/* Parse and check a verifier key (the key ID must match). */
int note_vkey_parse(const char *vkey, char name[NOTE_NAME_MAX + 1],
		    uint8_t pk[crypto_sign_PUBLICKEYBYTES]) FS_WUR;

/* The origin (and key name) of HQ's audit log: "fieldsync-hq/" and the
 * first 16 hex digits of SHA-256 of HQ's Ed25519 public key. */
void checkpoint_origin(const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES],
		       char out[NOTE_NAME_MAX + 1]);

/* A checkpoint's text (the first three lines; no extension lines). */
int checkpoint_format(const char *origin, uint64_t size, const merkle_hash root, char *out,
		      size_t cap) FS_WUR;
/* Parse the text of a checkpoint (extension lines are allowed and
 * ignored).  origin must hold NOTE_NAME_MAX + 1 bytes. */
int checkpoint_parse(const char *text, size_t len, char *origin, uint64_t *ret_size,
		     merkle_hash root) FS_WUR;

#endif
