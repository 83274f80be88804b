/* receipt.h - HQ's signed acknowledgement of a change set.
 *
 * Layout, version 1 (big-endian):
 *
 *   0     4   magic "FSRC"
 *   4     1   version, 1
 *   5     3   reserved, 0
 *   8     16  device id
 *   24    8   sequence number
 *   32    32  hash of the change set (changeset_hash)
 *   64    8   HQ time of acceptance, Unix milliseconds
 *   72    4   changes merged
 *   76    4   Q, changes quarantined
 *   80    4Q  indexes (0-based, strictly ascending) of quarantined changes
 *   80+4Q 64  Ed25519 signature by HQ over all the bytes before it
 *
 * HQ stores the receipt it first issued and returns it verbatim for a
 * duplicate, so a replay gets byte-identical proof.  The agent accepts a
 * receipt only when receipt_verify() succeeds with the HQ key it pinned
 * at enrolment and device, sequence and hash are the ones it sent.
 * Errors: -FS_EFORMAT, -FS_ELIMIT, -FS_EAUTH.  Thread-safe; no I/O.
 */
#ifndef FS_RECEIPT_H
#define FS_RECEIPT_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "crypto/fserr.h"
#include "sync/changeset.h"

#define RECEIPT_MAGIC "FSRC"
#define RECEIPT_VERSION 1
#define RECEIPT_FIXED_BYTES 80
#define RECEIPT_MAX_QUARANTINED CHANGESET_MAX_CHANGES
#define RECEIPT_MAX_BYTES (RECEIPT_FIXED_BYTES + 4 * RECEIPT_MAX_QUARANTINED + crypto_sign_BYTES)

struct receipt {
	uint8_t device[CHANGESET_DEVICE_BYTES];
	uint64_t seq;
	uint8_t hash[CHANGESET_HASH_BYTES];
	uint64_t accepted_ms;
	uint32_t merged;
	uint32_t quarantined; /* number of entries in index */
	uint32_t *index;      /* malloc'd, quarantined entries; NULL when 0 */
};

/* Sign a receipt with HQ's key; *ret_buf is malloc'd. */
int receipt_encode(const struct receipt *r, const uint8_t hq_sign_sk[crypto_sign_SECRETKEYBYTES],
		   uint8_t **ret_buf, size_t *ret_len) FS_WUR;

/* Check shape and signature, then fill *ret (free with receipt_clear). */
int receipt_verify(const uint8_t *buf, size_t len,
		   const uint8_t hq_sign_pk[crypto_sign_PUBLICKEYBYTES],
		   struct receipt *ret) FS_WUR;

void receipt_clear(struct receipt *r);

#endif
