/* files.h - HQ's store of attached files (issue 17): outside the
 * database, under DATA_DIR/attachments/, one file per SHA-256, sealed.
 *
 * A file is kept once, by the SHA-256 of its bytes (hex; two levels of
 * directories by its first two digits), encrypted with
 * crypto_secretstream_xchacha20poly1305 in HQFILES_BLOCK pieces under a
 * key derived from HQ's X25519 secret key (BLAKE2b, context "fsfiles1"),
 * so a copy of the data directory without hq.key holds nothing readable,
 * and a block changed, dropped, moved or cut off is found when read.
 * Writing goes to a temporary file, synced, then renamed: a crash leaves
 * the old state or the new, never half a file under a hash's name.  The
 * bytes are hashed as they are sealed; a file whose bytes do not hash to
 * the name it is given is refused, so a name always says what it holds.
 *
 * Thread safety: an hqfiles is read-only after hqfiles_open and may be
 * shared; two writers of the same hash both write whole files and the
 * last rename wins, with the same content.  Errors name the hash, never
 * the content.
 */
#ifndef FS_HQFILES_H
#define FS_HQFILES_H

#include <stdint.h>
#include <stdio.h>

#include "crypto/fserr.h"
#include "crypto/identity.h"

#define HQFILES_DIR "attachments"
#define HQFILES_BLOCK (64 * 1024)
#define HQFILES_HEX 64

struct hqfiles;

/* The store under data_dir (created 0700 when missing), its key from hq. */
int hqfiles_open(const char *data_dir, const struct identity *hq, struct hqfiles **ret,
		 struct fs_error *err) FS_WUR;
/* NULL-safe; wipes the key.  Returns NULL. */
struct hqfiles *hqfiles_close(struct hqfiles *f);

/* 1 when the store holds hex, 0 when not. */
int hqfiles_has(const struct hqfiles *f, const char *hex);

/* Keep what in holds (to its end) as hex: -FS_EVALID when it does not
 * hash to hex (nothing kept); 0, and nothing written, when it is already
 * held. */
int hqfiles_put(const struct hqfiles *f, const char *hex, FILE *in, struct fs_error *err) FS_WUR;

/* Write the file named hex to out: -FS_ENOTFOUND when not held;
 * -FS_ECORRUPT when it fails its seal or its hash (out may then hold a
 * part of it; the caller discards it). */
int hqfiles_get(const struct hqfiles *f, const char *hex, FILE *out, struct fs_error *err) FS_WUR;

/* ---- files on their way (hq/upload.h) ----------------------------------
 *
 * While a device sends a file, HQ keeps each chunk as it arrived, still
 * sealed to HQ's key (sync/filewire.h), as DIR/incoming/DEVICE/HEX/INDEX
 * (index in 8 hex digits), written to a temporary name and renamed: a
 * chunk is there whole or not at all (one a crash cut short fails its
 * seal when the file is made, and the upload begins again), and one sent
 * twice is kept once.  Each device's chunks are its own, so a device that sends
 * wrong bytes under a hash spoils only its own upload. */

/* Keep chunk idx of hex from device (32 hex digits): 1 when kept now, 0
 * when it was already there (nothing written). */
int hqfiles_part_put(const struct hqfiles *f, const char *device, const char *hex, uint32_t idx,
		     const uint8_t *msg, size_t len, struct fs_error *err) FS_WUR;

/* 1 when chunk idx of hex from device is kept, else 0. */
int hqfiles_part_has(const struct hqfiles *f, const char *device, const char *hex, uint32_t idx);

/* How many of chunks 0 to n - 1 are kept; bitmap (NULL, or (n + 7) / 8
 * bytes) gets bit i % 8 of byte i / 8 set for each. */
int hqfiles_part_count(const struct hqfiles *f, const char *device, const char *hex, uint32_t n,
		       uint8_t *bitmap, uint32_t *ret_have, struct fs_error *err) FS_WUR;

/* Opens kept chunk idx (msg, len bytes as it arrived) into out (room for
 * HQFILES_PART_MAX bytes), its length into *out_len. */
typedef int (*hqfiles_open_fn)(void *ctx, uint32_t idx, const uint8_t *msg, size_t len,
			       uint8_t *out, size_t *out_len, struct fs_error *err);
#define HQFILES_PART_MAX (1024 * 1024)

/* Chunks 0 to n - 1, all kept, opened in order by open, into the store
 * as hex (hqfiles_put; -FS_EVALID when they do not hash to it); the
 * chunks are then dropped, and also when they do not hash to it, since
 * they never will. */
int hqfiles_part_finish(const struct hqfiles *f, const char *device, const char *hex, uint32_t n,
			hqfiles_open_fn open, void *ctx, struct fs_error *err) FS_WUR;

/* Drop whatever is kept of hex from device. */
int hqfiles_part_drop(const struct hqfiles *f, const char *device, const char *hex,
		      struct fs_error *err) FS_WUR;

/* When a chunk of hex from device last came (the modification time of
 * its directory, which each chunk's temporary name and rename change),
 * in Unix ms; 0 when nothing is kept. */
int64_t hqfiles_part_touched(const struct hqfiles *f, const char *device, const char *hex);

/* One upload's chunks as found on disk. */
struct hqfiles_parts {
	char device[33], hex[HQFILES_HEX + 1];
	int64_t touched_ms;
};

/* Every directory of chunks under incoming, into *ret (malloc'd, *ret_n
 * of them; NULL when none); names that are not a device and a hash are
 * passed over. */
int hqfiles_part_list(const struct hqfiles *f, struct hqfiles_parts **ret, size_t *ret_n,
		      struct fs_error *err) FS_WUR;

#endif
