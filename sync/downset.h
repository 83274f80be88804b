/* downset.h - the signed, sealed down-set: what HQ sends a device.
 *
 * docs/PROTOCOL.md, "Down-set", is the byte-by-byte contract; the vector
 * in tests/vectors/ pins it.  In short (big-endian):
 *
 *   0   4   magic "FSDS"          8   16  device id (the recipient)
 *   4   1   version, 1 or 2       24  8   sequence number (>= 1)
 *   5   1   codec, 1 = zstd JSON  32  32  BLAKE2b-256 of the previous down-set
 *   6   1   flags (1: more)       64  8   cursor (HQ's, opaque to the device)
 *   7   1   reserved, 0           72  8   HQ's clock, Unix ms
 *   80  4   entry count           84  4   sealed length N
 *   88  N   crypto_box_seal(zstd(payload), the device's X25519 key)
 *   88+N 64 Ed25519 signature by HQ over bytes [0, 88+N)
 *
 * The payload is a JSON object: the device's scope, the merged value of
 * every changed field in it with the clock and device of the write that
 * won, the conflicts HQ decided, and HQ's form definitions with their
 * versions (see PROTOCOL.md for the canonical form); from version 2,
 * also the team of each device those name, so that a field worker sees
 * which team recorded a visit.  HQ makes version 2 only for a device
 * whose pull request says it reads it (pull request version 2).
 *
 * Trust: downset_parse() checks only shape and limits; nothing in a
 * parsed header is authentic until downset_verify() succeeds with HQ's
 * pinned key.  The caller then checks that the device id is its own and
 * that the sequence and previous hash follow the last down-set it
 * applied.  Errors: -FS_EFORMAT, -FS_ELIMIT, -FS_EAUTH, -ENOMEM; messages
 * never carry a value.  Thread-safe; no I/O.
 */
#ifndef FS_DOWNSET_H
#define FS_DOWNSET_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <sodium.h>

#include "crypto/fserr.h"
#include "sync/changeset.h"
#include "sync/hlc.h"

#define DOWNSET_MAGIC "FSDS"
#define DOWNSET_VERSION_MIN 1
#define DOWNSET_VERSION 2 /* adds "teams" */
#define DOWNSET_CODEC_ZSTD_JSON 1
#define DOWNSET_FLAG_MORE 0x01 /* HQ holds more for this device: pull again */
#define DOWNSET_HEADER_BYTES 88
#define DOWNSET_SIG_BYTES crypto_sign_BYTES
#define DOWNSET_MAX_BYTES CHANGESET_MAX_BYTES
#define DOWNSET_MAX_PAYLOAD CHANGESET_MAX_PAYLOAD
/* Changes, conflicts and forms together; and JSON values in all. */
#define DOWNSET_MAX_ENTRIES CHANGESET_MAX_CHANGES
#define DOWNSET_MAX_NODES CHANGESET_MAX_NODES
#define DOWNSET_MAX_SCOPE 64
#define DOWNSET_MAX_SCOPE_NAME 200 /* bytes of UTF-8, no control characters */
#define DOWNSET_DEVICE_HEX (2 * CHANGESET_DEVICE_BYTES + 1)
#define DOWNSET_MAX_TEAM_NAME 200 /* bytes of UTF-8, no control characters */
#define DOWNSET_MAX_TEAMS DOWNSET_MAX_ENTRIES

struct downset_header {
	uint8_t version;			/* 1 or 2; 0 when encoding: 1 */
	uint8_t flags;				/* DOWNSET_FLAG_MORE */
	uint8_t device[CHANGESET_DEVICE_BYTES]; /* the recipient's id, raw */
	uint64_t seq;				/* per device, from 1, no gaps */
	uint8_t prev[CHANGESET_HASH_BYTES];	/* hash of down-set seq-1; zero for 1 */
	uint64_t cursor;			/* HQ's position; opaque */
	uint64_t hq_time_ms;			/* HQ's clock when made */
	uint32_t count;				/* changes + conflicts + forms */
};

/* A field's merged value: the change, and the device whose write won
 * (lower-case hex id). */
struct downset_change {
	struct change c;
	char device[DOWNSET_DEVICE_HEX];
};

/* A conflict HQ recorded: a is the lower write by the merge order, b the
 * higher, which won. */
struct downset_conflict {
	char record_id[UUID_TEXT_LEN + 1];
	char field[CHANGESET_MAX_NAME + 1];
	char device_a[DOWNSET_DEVICE_HEX];
	hlc_t hlc_a;
	cJSON *value_a; /* owned */
	char device_b[DOWNSET_DEVICE_HEX];
	hlc_t hlc_b;
	cJSON *value_b; /* owned */
};

/* One form definition HQ validates with, and its version (from 1). */
struct downset_form {
	char collection[CHANGESET_MAX_NAME + 1];
	uint32_t version;
	cJSON *definition; /* owned; checked by form_load_json when used */
};

/* Version 2: the team a device was enrolled for (lower-case hex id). */
struct downset_team {
	char device[DOWNSET_DEVICE_HEX];
	char team[DOWNSET_MAX_TEAM_NAME + 1];
};

struct downset {
	struct downset_header h;
	char **scope; /* municipality names, or "*" alone; owned */
	size_t nscope;
	struct downset_change *changes;
	size_t nchanges;
	struct downset_conflict *conflicts;
	size_t nconflicts;
	struct downset_form *forms;
	size_t nforms;
	struct downset_team *teams; /* version 2 only; not counted in h.count */
	size_t nteams;
};

/* A pull request (POST /v1/pull): magic "FSPL", version, 3 reserved
 * zero bytes, device id, the last down-set applied (sequence, 0 for none,
 * and its hash, zero for none), the device's clock (Unix ms), and the
 * device's Ed25519 signature over bytes [0, 72).  Its version is the
 * newest down-set version the device reads: 1 or 2. */
#define DOWNSET_PULL_MAGIC "FSPL"
#define DOWNSET_PULL_VERSION 2
#define DOWNSET_PULL_BYTES (72 + crypto_sign_BYTES)
/* A 200 answer to a pull carries HQ's latest signed audit checkpoint
 * note, base64 (RFC 4648, padded), in this header (PROTOCOL.md). */
#define DOWNSET_CHECKPOINT_HEADER "Fieldsync-Checkpoint"
/* The longest such header this device reads: a note is well under 4 KiB. */
#define DOWNSET_CHECKPOINT_MAX 8192

/* after_hash NULL: zeros (nothing applied yet). */
void downset_pull_request(const uint8_t device[CHANGESET_DEVICE_BYTES], uint64_t after_seq,
			  const uint8_t *after_hash, uint64_t now_ms,
			  const uint8_t sign_sk[crypto_sign_SECRETKEYBYTES],
			  uint8_t out[DOWNSET_PULL_BYTES]);

/* Build, seal to the device and sign with HQ's key.  d->h.count is
 * computed (the caller's value is ignored); d->h.seq >= 1.  *ret_buf is
 * malloc'd.  An empty down-set (no entry) is allowed: it moves the cursor
 * and tells the device its scope. */
int downset_encode(const struct downset *d, const uint8_t device_box_pk[crypto_box_PUBLICKEYBYTES],
		   const uint8_t hq_sign_sk[crypto_sign_SECRETKEYBYTES], uint8_t **ret_buf,
		   size_t *ret_len, struct fs_error *err) FS_WUR;

/* Check shape and limits, and read the header; see the trust note. */
int downset_parse(const uint8_t *buf, size_t len, struct downset_header *ret,
		  struct fs_error *err) FS_WUR;

/* Verify HQ's signature over the whole down-set. */
int downset_verify(const uint8_t *buf, size_t len,
		   const uint8_t hq_sign_pk[crypto_sign_PUBLICKEYBYTES]) FS_WUR;

/* Open the payload with the device's keys and check every entry.  Call
 * after downset_verify.  Free ret with downset_clear(). */
int downset_open(const uint8_t *buf, size_t len,
		 const uint8_t device_box_pk[crypto_box_PUBLICKEYBYTES],
		 const uint8_t device_box_sk[crypto_box_SECRETKEYBYTES], struct downset *ret,
		 struct fs_error *err) FS_WUR;

/* Free what d owns and zero it; NULL-safe. */
void downset_clear(struct downset *d);

#endif
