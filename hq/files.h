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

#endif
