/* sniff.h - what a file is, by its first bytes, never by its name: the
 * content types an attachment field may accept (sync/form.h, "accept").
 *
 *   image/jpeg       FF D8 FF
 *   image/png        89 50 4E 47 0D 0A 1A 0A
 *   application/pdf  "%PDF-"
 *
 * A file that names itself photo.jpg but starts otherwise is not a JPEG.
 * Types are bits, so a set of them (a field's accept list) is a mask.
 * Pure functions; thread-safe.
 */
#ifndef FS_SNIFF_H
#define FS_SNIFF_H

#include <stddef.h>
#include <stdint.h>

enum sniff_type {
	SNIFF_NONE = 0,
	SNIFF_JPEG = 1u << 0,
	SNIFF_PNG = 1u << 1,
	SNIFF_PDF = 1u << 2,
};
#define SNIFF_ALL (SNIFF_JPEG | SNIFF_PNG | SNIFF_PDF)
/* The bytes sniff_bytes needs to tell every type apart. */
#define SNIFF_PREFIX 8

/* The type len bytes (the file's start) show, or SNIFF_NONE. */
enum sniff_type sniff_bytes(const uint8_t *buf, size_t len);
/* "image/jpeg" for SNIFF_JPEG; NULL for anything but one known type. */
const char *sniff_name(enum sniff_type t);
/* SNIFF_JPEG for "image/jpeg" (exact, lower case); SNIFF_NONE otherwise. */
enum sniff_type sniff_from_name(const char *name);

#endif
