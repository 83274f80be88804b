/* keyfile.h - versioned key files on disk.
 *
 * Layout, version 1 (integers big-endian):
 *
 *   offset  size  field
 *   0       8     magic "FSYNCKEY"
 *   8       1     version, 1
 *   9       1     kind (enum keyfile_kind); a reader asks for one kind
 *   10      2     payload length n, 1..KEYFILE_MAX_PAYLOAD
 *   12      n     payload (kind-specific; secrets inside are AEAD-sealed
 *                 by the caller, except KEYFILE_WRAPKEY which is the key)
 *   12+n    16    BLAKE2b-128 of bytes [0, 12+n): catches truncation and
 *                 bit rot before anyone tries a key; not authentication
 *
 * Files are written with mode 0600 through a temporary file, fsync,
 * rename and a directory fsync, so a crash leaves the old or the new
 * file, never half of one.  Readers refuse a file that group or others
 * may access (-FS_EKEYPERM), a file that is not regular, and any
 * malformation (-FS_EFORMAT).  Payloads come back in secure memory.
 * Errors fill err with the path and the reason.  Thread-safe.
 */
#ifndef FS_KEYFILE_H
#define FS_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/fserr.h"

#define KEYFILE_MAGIC "FSYNCKEY"
#define KEYFILE_VERSION 1
#define KEYFILE_MAX_PAYLOAD 4096
#define KEYFILE_HEADER_BYTES 12
#define KEYFILE_CHECK_BYTES 16

enum keyfile_kind {
	KEYFILE_WRAPKEY = 1,  /* 32 raw bytes that wrap a store's data key */
	KEYFILE_ENVELOPE = 2, /* a store's wrapped data key (agent/keystore.c) */
	KEYFILE_DEVICE = 3,   /* a device identity, secret half sealed */
};

enum keyfile_flags {
	KEYFILE_REPLACE = 0,	/* atomically replace an existing file */
	KEYFILE_NO_REPLACE = 1, /* -FS_EEXIST if the path exists */
};

int keyfile_write(const char *path, uint8_t kind, const uint8_t *payload, size_t n, int flags,
		  struct fs_error *err) FS_WUR;

/* *ret_payload is secure memory (secmem_free it); written only on success. */
int keyfile_read(const char *path, uint8_t kind, uint8_t **ret_payload, size_t *ret_len,
		 struct fs_error *err) FS_WUR;

/* Read a passphrase file: its first line, without the newline, into
 * secure memory as a NUL-terminated string.  Same permission rules;
 * an empty passphrase is -FS_EFORMAT. */
int keyfile_read_passphrase(const char *path, char **ret_pass, size_t *ret_len,
			    struct fs_error *err) FS_WUR;

/* Write data to path durably (temp file, fsync, rename, fsync dir) with
 * the given mode.  Used for every small state file. */
int keyfile_write_atomic(const char *path, const uint8_t *data, size_t n, unsigned mode, int flags,
			 struct fs_error *err) FS_WUR;

#endif
