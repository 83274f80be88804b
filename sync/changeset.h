/* changeset.h - the signed, sealed change set: what a device sends HQ.
 *
 * docs/PROTOCOL.md, "Change set", is the byte-by-byte contract; the
 * vector in tests/vectors/ pins it.  In short (big-endian):
 *
 *   0   4   magic "FSCS"          8   16  device id
 *   4   1   version, 3 to 5 (1, 2 read) 24 8 sequence number (>= 1)
 *   5   1   codec, 1 = zstd JSON  32  32  BLAKE2b-256 of the previous set
 *   6   2   reserved, 0           64  8   lowest HLC    72  8  highest HLC
 *   80  4   change count          84  4   sealed length N
 *   88  N   crypto_box_seal(bytes 8..63 || zstd(payload), HQ box key);
 *           version 1: crypto_box_seal(zstd(payload), HQ box key)
 * Version 3 adds each change's form version to its payload row; 4 groups
 * the rows by record, 5 writes them column by column.
 *   88+N 64 Ed25519 signature by the device over bytes [0, 88+N)
 *
 * Trust: changeset_parse() checks only shape and limits; nothing in a
 * parsed header is authentic until changeset_verify() succeeds with the
 * enrolled device key.  Every length is checked against the buffer and a
 * cap before use.  Errors: -FS_EFORMAT (malformed, unknown version),
 * -FS_ELIMIT (over a cap), -FS_EAUTH (signature or seal).  Thread-safe;
 * no I/O.
 */
#ifndef FS_CHANGESET_H
#define FS_CHANGESET_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <sodium.h>

#include "crypto/fserr.h"
#include "sync/hlc.h"
#include "sync/uuid.h"

#define CHANGESET_MAGIC "FSCS"
/* Version 3: each change says which version of HQ's form it was made
 * under.  Version 2 seals the binding (header bytes 8..63) with the
 * payload; version 1 (no binding) is still read, for sets packed before.
 * Versions 1 and 2 are read as made under form version 0. */
#define CHANGESET_VERSION 3
#define CHANGESET_VERSION_BOUND 2
#define CHANGESET_VERSION_UNBOUND 1
/* Version 4: version 3's changes, with the payload's rows grouped by
 * record (one row per record, collection, HLC and form version, with an
 * object of its fields), which saves about 16% of the wire at sets of
 * 100 visits (bench_codec).  HQ reads it; a device writes it only once
 * HQ has said it reads it, since an older HQ refuses it as unsupported. */
#define CHANGESET_VERSION_GROUPED 4
/* Version 5: version 4's rows written column by column, in a table per
 * shape (collection, form version, field names); about 7% smaller again
 * at sets of 100 visits (22% smaller than version 3; bench_ingest).  A reader sorts
 * the rows by HLC, so a set whose rows come in another order is written
 * in version 4 instead (changeset_encode says which in the header).  The
 * same rollout as version 4. */
#define CHANGESET_VERSION_COLUMNS 5
/* Fields in one row of a version 4 payload (a table of version 5), at
 * most: a reader checks
 * each field's name against the row's others.  The encoder starts a
 * new row for the same record past it. */
#define CHANGESET_MAX_ROW_FIELDS 256
/* A form version in a change, at most (PROTOCOL.md). */
#define CHANGESET_MAX_FORM_VERSION 2147483647u
#define CHANGESET_BINDING_BYTES 56
#define CHANGESET_CODEC_ZSTD_JSON 1
#define CHANGESET_HEADER_BYTES 88
#define CHANGESET_SIG_BYTES crypto_sign_BYTES
#define CHANGESET_HASH_BYTES 32
#define CHANGESET_DEVICE_BYTES 16
#define CHANGESET_MAX_BYTES (1024 * 1024)	/* whole encoding */
#define CHANGESET_MAX_PAYLOAD (8 * 1024 * 1024) /* after decompression */
#define CHANGESET_MAX_CHANGES 20000
/* JSON values in a payload, counted by changeset_payload_nodes(): bounds
 * the parse tree (about 64 bytes a value), whatever the payload's shape.
 * A change is 7 values, plus one per extra multi_choice item. */
#define CHANGESET_MAX_NODES (1 << 17)
#define CHANGESET_MAX_NAME 64 /* collection, field */

struct changeset_header {
	uint8_t version;			/* to write: 0 or 3 to 5; read: 1 to 5 */
	uint8_t device[CHANGESET_DEVICE_BYTES]; /* device id, raw */
	uint64_t seq;				/* per-device, from 1, no gaps */
	uint8_t prev[CHANGESET_HASH_BYTES];	/* hash of set seq-1; zero for seq 1 */
	hlc_t hlc_min, hlc_max;			/* bounds of the changes' HLCs */
	uint32_t count;				/* number of changes */
};

/* One field-level change. */
struct change {
	char record_id[UUID_TEXT_LEN + 1];
	char collection[CHANGESET_MAX_NAME + 1];
	char field[CHANGESET_MAX_NAME + 1]; /* a form field, or "_deleted" */
	cJSON *value;			    /* owned; JSON null when cleared */
	hlc_t hlc;
	/* The version of HQ's form of the collection the change was made
	 * under; 0 for the device's own form (or a set before version 3). */
	uint32_t form_version;
};

/* Build, seal to HQ and sign, in version h->version (0 or 3:
 * CHANGESET_VERSION; 4 or 5; anything else is -FS_EUSAGE; 5 may be written
 * as 4, above).
 * h->count,
 * hlc_min and hlc_max are computed from changes (the caller's values are
 * ignored).  *ret_buf is malloc'd. */
int changeset_encode(const struct changeset_header *h, const struct change *changes, size_t n,
		     const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
		     const uint8_t device_sign_sk[crypto_sign_SECRETKEYBYTES], uint8_t **ret_buf,
		     size_t *ret_len, struct fs_error *err) FS_WUR;

/* Check shape and limits, and read the header; see the trust note. */
int changeset_parse(const uint8_t *buf, size_t len, struct changeset_header *ret_header,
		    struct fs_error *err) FS_WUR;

/* Verify the device's signature over the whole set. */
int changeset_verify(const uint8_t *buf, size_t len,
		     const uint8_t device_sign_pk[crypto_sign_PUBLICKEYBYTES]) FS_WUR;

/* Open the sealed payload (HQ side) and check every change: well-formed,
 * count as in the header, HLCs within the header's bounds.  Call after
 * changeset_verify.  *ret_changes is freed with changes_free(). */
int changeset_open(const uint8_t *buf, size_t len,
		   const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
		   const uint8_t hq_box_sk[crypto_box_SECRETKEYBYTES], struct change **ret_changes,
		   size_t *ret_n, struct fs_error *err) FS_WUR;

/* The checks of changeset_open on a payload already opened: text, tlen
 * bytes of JSON, against h's version (1 to 5), change count and HLC
 * range.  For fuzzing the readers without sealing; HQ calls
 * changeset_open.  -FS_EUSAGE for a header changeset_parse refuses. */
int changeset_payload_open(const char *text, size_t tlen, const struct changeset_header *h,
			   struct change **ret_changes, size_t *ret_n, struct fs_error *err) FS_WUR;

/* An upper bound on the JSON values in the len bytes of text, counted
 * without parsing: the one rule both sides apply against
 * CHANGESET_MAX_NODES (the encoder refuses with -FS_ELIMIT, so the packer
 * splits; HQ refuses before it builds a tree). */
size_t changeset_payload_nodes(const char *text, size_t len);

/* The canonical JSON payload of changes[0..n) in *version (3, 4 or 5),
 * as the encoder compresses and seals it: 5 may come back as 4, and
 * *version says so.  The caller frees it.  NULL when out of memory.  For
 * benchmarks of the wire and tests; devices call changeset_encode. */
char *changeset_payload_print(const struct change *changes, size_t n, int *version);

/* One change as its payload row [record id, collection, field, value,
 * hlc]; NULL when out of memory.  Down-sets use the same rows. */
cJSON *changeset_change_row(const struct change *c);

/* An untrusted row of width elements (the first five as above) into c,
 * its HLC within [lo, hi]; -FS_EFORMAT, or -ENOMEM.  On success c->value
 * is owned by c. */
int changeset_change_from_row(const cJSON *row, int width, hlc_t lo, hlc_t hi,
			      struct change *c) FS_WUR;

/* An untrusted form version: a JSON integer from 0 to
 * CHANGESET_MAX_FORM_VERSION into *ret; -FS_EFORMAT otherwise. */
int changeset_form_version_from(const cJSON *v, uint32_t *ret) FS_WUR;

/* A collection ([a-z][a-z0-9_]*) or, with allow_underscore_start, a field
 * name ("_deleted"), at most CHANGESET_MAX_NAME bytes. */
int changeset_name_ok(const char *s, int allow_underscore_start);

/* BLAKE2b-256 of the whole encoding: the chain link and the dedup key. */
void changeset_hash(const uint8_t *buf, size_t len, uint8_t out[CHANGESET_HASH_BYTES]);

void changes_free(struct change *changes, size_t n);

#endif
