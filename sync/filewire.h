/* filewire.h - attached files on the wire (docs/PROTOCOL.md, "Attached
 * files"): a device asks HQ which chunks of a file it holds (a query),
 * then sends the ones it lacks (chunks), each signed by the device and
 * sealed to HQ.
 *
 * Both start with the same 80 bytes:
 *
 *   0   4   magic "FSFQ" (query) or "FSFC" (chunk)
 *   4   1   version, 1
 *   5   3   zero
 *   8   16  device id
 *   24  32  the file's SHA-256
 *   56  8   the file's size, 1 to FILEWIRE_FILE_MAX
 *   64  4   chunk size C, FILEWIRE_CHUNK_MIN to FILEWIRE_CHUNK_MAX
 *   68  4   chunk index (a query: zero), below the file's chunk count
 *   72  8   the device's clock, Unix ms (informational)
 *
 * A query ends there, with the Ed25519 signature by the device over
 * bytes [0, 80).  A chunk goes on:
 *
 *   80  4   sealed length N: the chunk's length + FILEWIRE_BINDING + 48
 *   84  N   crypto_box_seal(bytes [8, 80) ‖ the chunk, HQ's X25519 key)
 *   84+N 64 Ed25519 signature by the device over bytes [0, 84+N)
 *
 * Chunk i holds the file's bytes [i·C, min((i+1)·C, size)).  The copy
 * of header bytes 8 to 79 inside the seal (the binding) ties the bytes
 * to this device, file, chunk size and index: a chunk re-signed under
 * another header is found once opened, as for change sets.  Integers are
 * big-endian.
 *
 * filewire_parse checks shape and limits only; the message is the
 * device's word once filewire_verify succeeds with its enrolled key, and
 * a chunk's bytes are read by filewire_open.  Errors: -FS_EFORMAT,
 * -FS_ELIMIT, -FS_EAUTH, -ENOMEM, naming the part, never the bytes.  No
 * state: thread-safe.
 */
#ifndef FS_FILEWIRE_H
#define FS_FILEWIRE_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "crypto/fserr.h"

#define FILEWIRE_QUERY_MAGIC "FSFQ"
#define FILEWIRE_CHUNK_MAGIC "FSFC"
#define FILEWIRE_VERSION 1
#define FILEWIRE_HEAD 80
#define FILEWIRE_BINDING (FILEWIRE_HEAD - 8)
#define FILEWIRE_QUERY_BYTES (FILEWIRE_HEAD + crypto_sign_BYTES)
#define FILEWIRE_CHUNK_FIXED (FILEWIRE_HEAD + 4)
#define FILEWIRE_CHUNK_MIN (16 * 1024)
#define FILEWIRE_CHUNK_MAX (960 * 1024)
#define FILEWIRE_CHUNK_DEFAULT (256 * 1024)
#define FILEWIRE_FILE_MAX (4ULL << 30)
/* A whole chunk message at most: it fits a request of 1 MiB. */
#define FILEWIRE_CHUNK_BYTES_MAX                                                                   \
	(FILEWIRE_CHUNK_FIXED + crypto_box_SEALBYTES + FILEWIRE_BINDING + FILEWIRE_CHUNK_MAX +     \
	 crypto_sign_BYTES)
#define FILEWIRE_CONTENT_TYPE "application/vnd.fieldsync.file"

enum filewire_kind { FILEWIRE_QUERY, FILEWIRE_CHUNK };

struct filewire_head {
	enum filewire_kind kind;
	uint8_t device[16];
	uint8_t sha256[32];
	uint64_t size;
	uint32_t chunk_size;
	uint32_t index;
	uint64_t wall_ms;
};

/* How many chunks a file of size has at chunk size c (both valid). */
uint32_t filewire_chunks(uint64_t size, uint32_t c);

/* How long chunk h->index of h's file is. */
size_t filewire_chunk_len(const struct filewire_head *h);

/* A query for h (h->index is ignored and sent as 0); out holds
 * FILEWIRE_QUERY_BYTES. */
int filewire_query_encode(const struct filewire_head *h,
			  const uint8_t sign_sk[crypto_sign_SECRETKEYBYTES],
			  uint8_t out[FILEWIRE_QUERY_BYTES], struct fs_error *err) FS_WUR;

/* Chunk h->index, whose bytes are data (exactly filewire_chunk_len(h)),
 * sealed to hq_box_pk and signed; *ret is malloc'd. */
int filewire_chunk_encode(const struct filewire_head *h, const uint8_t *data, size_t len,
			  const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
			  const uint8_t sign_sk[crypto_sign_SECRETKEYBYTES], uint8_t **ret,
			  size_t *ret_len, struct fs_error *err) FS_WUR;

/* Shape and limits of a query or a chunk, into *h. */
int filewire_parse(const uint8_t *b, size_t len, struct filewire_head *h,
		   struct fs_error *err) FS_WUR;

/* The signature, with the device's key: 0 or -FS_EAUTH. */
int filewire_verify(const uint8_t *b, size_t len,
		    const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES]) FS_WUR;

/* Open a parsed chunk with HQ's keys and check its binding: out gets
 * filewire_chunk_len(h) bytes.  -FS_EAUTH when the seal does not open
 * or binds another header. */
int filewire_open(const uint8_t *b, size_t len, const struct filewire_head *h,
		  const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
		  const uint8_t hq_box_sk[crypto_box_SECRETKEYBYTES], uint8_t *out,
		  struct fs_error *err) FS_WUR;

#endif
