/* envelope.h - the sealed, compressed body that change sets (device to
 * HQ) and down-sets (HQ to device) both carry.
 *
 * Sealing: prefix || zstd(payload), sealed with crypto_box_seal to the
 * recipient's X25519 key.  The prefix (a change set's binding; empty for
 * a down-set) is checked byte for byte when opened.  The zstd frame must
 * state its content size, which is checked against a cap before anything
 * is allocated.  Plaintext buffers are wiped before they are freed.
 *
 * what names the container in messages ("change set", "down-set").
 * Errors: -FS_EAUTH (not sealed to this key, or another prefix),
 * -FS_EFORMAT (no size, does not decompress), -FS_ELIMIT (over the cap),
 * -ENOMEM.  Thread-safe; no I/O.
 */
#ifndef FS_ENVELOPE_H
#define FS_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "crypto/fserr.h"

#define ENVELOPE_ZSTD_LEVEL 19

/* *ret: malloc'd sealed bytes (crypto_box_SEALBYTES + prefix_len + the
 * compressed payload). */
int envelope_seal(const uint8_t *prefix, size_t prefix_len, const char *payload, size_t plen,
		  const uint8_t box_pk[crypto_box_PUBLICKEYBYTES], uint8_t **ret, size_t *ret_len,
		  const char *what, struct fs_error *err) FS_WUR;

/* *ret_text: malloc'd, NUL-terminated payload of *ret_len bytes (at most
 * max_payload, and not 0); the caller wipes and frees it. */
int envelope_open(const uint8_t *sealed, size_t slen,
		  const uint8_t box_pk[crypto_box_PUBLICKEYBYTES],
		  const uint8_t box_sk[crypto_box_SECRETKEYBYTES], const uint8_t *prefix,
		  size_t prefix_len, size_t max_payload, char **ret_text, size_t *ret_len,
		  const char *what, struct fs_error *err) FS_WUR;

#endif
