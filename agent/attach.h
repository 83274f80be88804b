/* attach.h - files attached to records (issue 17), kept on the device.
 *
 * A file is kept by its SHA-256, once however many records name it, in
 * the encrypted store itself: table attachments (hash, size, content
 * type) and attachment_chunks, ATTACH_CHUNK bytes each.  So nothing of it
 * is ever on disk in the clear, it is authenticated page by page like
 * every record, and it commits or rolls back with the store's WAL; the
 * price is that a file is written twice (WAL, then database), which a
 * field laptop's photos and scans afford.
 *
 * A record holds only the reference, {"sha256", "size", "type"}
 * (sync/form.h, type attachment), checked by the form's one rule: the
 * size against max_bytes and the type, decided by the file's first bytes
 * (sync/sniff.h), against accept.
 *
 * Thread safety: as the store's (one thread at a time).  Errors name the
 * field and the file's path, never its content.
 */
#ifndef FS_ATTACH_H
#define FS_ATTACH_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "agent/store.h"
#include "crypto/fserr.h"
#include "sync/form.h"

#define ATTACH_CHUNK (256 * 1024)
#define ATTACH_HEX 64
/* The stdio buffer of a file read from memory (a photo, the field app's
 * upload): ours, so that it is wiped. */
#define ATTACH_IOBUF (64 * 1024)

/* Keep the file in (a seekable stream, read from its start; path names
 * it in errors) for field of form f, in one transaction.  *ret_ref gets
 * the reference (the caller's); *ret_new is 1 when the store did not hold
 * the file before.  for_draft: a new file is named by a draft only (the
 * field app): it is not sent until a record names it, and goes when no
 * draft does (attach_settle_drafts).  -FS_EVALID: not a type the field takes, or too large
 * ("photo is 14.0 MB, the form allows 10.0 MB"); -EIO: it changed while
 * it was read. */
int attach_store(struct store *s, const struct form *f, const char *field, FILE *in,
		 const char *path, int for_draft, cJSON **ret_ref, int *ret_new,
		 struct fs_error *err) FS_WUR;

/* In the caller's transaction, when a draft is finalised or discarded
 * (not on every save, which may race a file being attached): the files
 * only drafts named that record record_id (NULL: none) now names are a
 * record's, to be sent; and the files only drafts named that no draft
 * names any more are dropped (a draft discarded, a photo replaced). */
int attach_settle_drafts(struct store *s, const char *record_id, struct fs_error *err) FS_WUR;

/* Remove the file with hash hex (a store_file whose record was then
 * refused); nothing when it is not there. */
int attach_forget(struct store *s, const char *hex, struct fs_error *err) FS_WUR;

/* Write the file with hash hex to out, checking its size and hash as it
 * goes: -FS_ENOTFOUND when the store does not hold it, -FS_ECORRUPT when
 * what is stored does not hash to its name. */
int attach_write(struct store *s, const char *hex, FILE *out, struct fs_error *err) FS_WUR;

/* ---- sending (agent/upload.h) ---- */

/* Where a walk over the files to send stands: zeroed, before the first. */
struct attach_cursor {
	int64_t added_ms;
	char hex[ATTACH_HEX + 1]; /* the file last given; "" before the first */
};

/* The oldest file after *c that a record names and HQ has not said it
 * holds: 1 with its hash (also in c->hex) and size, 0 when none is left.
 * A walk passes each file once, so a file HQ refuses does not stop the
 * files after it. */
int attach_next_unsent(struct store *s, struct attach_cursor *c, uint64_t *ret_size,
		       struct fs_error *err) FS_WUR;

/* Files records name that HQ has not said it holds, and their bytes. */
int attach_unsent(struct store *s, unsigned long long *ret_files, unsigned long long *ret_bytes,
		  struct fs_error *err) FS_WUR;

/* HQ holds hex: it is sent no more. */
int attach_mark_sent(struct store *s, const char *hex, uint64_t now_ms,
		     struct fs_error *err) FS_WUR;

/* Bytes [offset, offset + len) of file hex into out: -FS_ECORRUPT when
 * the store holds fewer. */
int attach_read(struct store *s, const char *hex, uint64_t offset, size_t len, uint8_t *out,
		struct fs_error *err) FS_WUR;

#endif
