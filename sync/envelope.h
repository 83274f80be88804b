/* envelope.h - the sealed, compressed body that change sets (device to
 * HQ) and down-sets (HQ to device) both carry.
 *
 * Sealing: prefix || zstd(payload), sealed with crypto_box_seal to the
 * recipient's X25519 key.  The prefix (a change set's binding; empty for
 * a down-set) is checked byte for byte when opened.  The zstd frame must
 * state its content size, which is checked against a cap before anything
 * is allocated.  Plaintext buffers are wiped before they are freed, and
 * so are zstd's workspaces (sync/zmem.h).
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

/* Change sets: a device packs little at a time and the link is the
 * scarce thing.  Down-sets: HQ packs every device's scope, and level 19
 * spent most of a first pull's time on compression (bench_pull). */
#define ENVELOPE_ZSTD_LEVEL 19
#define ENVELOPE_ZSTD_LEVEL_FAST 3
/* Change sets are compressed within a window of 2^17 bytes.  Level 19
 * sizes its tables to the window, which zstd would size to the payload:
 * a set of up to PACK_DEFAULT_BYTES (4 MiB) of long notes would hold a
 * 49 MiB context on the laptop, where this holds about 2.7 MiB whatever
 * the payload.  bench_ingest's sets of 1,000 visits (6,000 changes, 0.5
 * MiB of JSON) grew 0.8%; the packer's sets (1,000 changes) are within
 * the window anyway.  Down-sets keep zstd's own window: HQ packs them at
 * level 3, whose context is small at any size. */
#define ENVELOPE_ZSTD_WINDOW_LOG 17

/* The frame both carry (big-endian): magic 0..3, version 4, codec 5
 * (1: zstd JSON), flags 6, reserved 7, device 8..23, sequence 24..31,
 * previous hash 32..63, two 8-byte words of the container's own 64..79,
 * entry count 80..83, sealed length N 84..87, sealed bytes 88..88+N, and
 * a 64-byte Ed25519 signature over everything before it. */
#define ENVELOPE_HEADER_BYTES 88
#define ENVELOPE_SIG_BYTES crypto_sign_BYTES
#define ENVELOPE_DEVICE_BYTES 16
#define ENVELOPE_HASH_BYTES 32

struct envelope_frame {
	uint8_t version;
	uint8_t flags;
	uint8_t device[ENVELOPE_DEVICE_BYTES];
	uint64_t seq;
	uint8_t prev[ENVELOPE_HASH_BYTES];
	uint64_t word[2]; /* bytes 64..71 and 72..79 */
	uint32_t count;
};

/* Check the frame of what (magic, at most max bytes, a version from
 * v_min to v, flag bits within flags_allowed, codec 1, the sealed
 * length against the real length, sequence >= 1 and a zero previous
 * hash for sequence 1) and read it.  Nothing in it is authentic yet.
 * -FS_ELIMIT, -FS_EFORMAT with err naming what. */
int envelope_parse(const uint8_t *buf, size_t len, const char *magic, const char *what, size_t max,
		   uint8_t v_min, uint8_t v, uint8_t flags_allowed, struct envelope_frame *ret,
		   struct fs_error *err) FS_WUR;

/* Write f's frame with magic and codec 1 into out (ENVELOPE_HEADER_BYTES),
 * for sealed bytes of length sealed_len. */
void envelope_frame_put(uint8_t *out, const char *magic, const struct envelope_frame *f,
			size_t sealed_len);

/* Verify the Ed25519 signature at the end of buf (at most max bytes):
 * 0, -FS_EAUTH, or -FS_EFORMAT when too short or long. */
int envelope_verify(const uint8_t *buf, size_t len, size_t max,
		    const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES]) FS_WUR;

/* *ret: malloc'd sealed bytes (crypto_box_SEALBYTES + prefix_len + the
 * payload compressed at zstd level, within a window of 2^window_log
 * bytes at most; 0 leaves the window to zstd). */
int envelope_seal(const uint8_t *prefix, size_t prefix_len, const char *payload, size_t plen,
		  int level, unsigned window_log, const uint8_t box_pk[crypto_box_PUBLICKEYBYTES],
		  uint8_t **ret, size_t *ret_len, const char *what, struct fs_error *err) FS_WUR;

/* *ret_text: malloc'd, NUL-terminated payload of *ret_len bytes (at most
 * max_payload, and not 0); the caller wipes and frees it. */
int envelope_open(const uint8_t *sealed, size_t slen,
		  const uint8_t box_pk[crypto_box_PUBLICKEYBYTES],
		  const uint8_t box_sk[crypto_box_SECRETKEYBYTES], const uint8_t *prefix,
		  size_t prefix_len, size_t max_payload, char **ret_text, size_t *ret_len,
		  const char *what, struct fs_error *err) FS_WUR;

#endif
