/* photo.h - a photo made fit to keep (issue 17): a JPEG's metadata
 * stripped, and, when the form asks, the photo scaled down; with
 * libjpeg-turbo.
 *
 * A camera writes where and when a photo was taken (EXIF, with GPS), on
 * what device, and often a thumbnail, into the file: for a household
 * that fled, where it lives now.  So every JPEG is rewritten before the
 * store keeps it, with only the markers that say how to show it (the ICC
 * colour profile; JFIF and Adobe as libjpeg writes them), unless the
 * form keeps the location ("keep_location": EXIF stays whole).  Without
 * "max_side" the rewrite is lossless: the DCT coefficients are copied,
 * not decoded.  With it, the photo is decoded at the largest of
 * libjpeg's scales M/8 (M = 1..8) whose longest side is at most
 * max_side, and encoded at the form's quality; a photo already small
 * enough is only stripped.
 *
 * A photo whose camera only tagged it as turned (EXIF orientation 2 to
 * 8) is first turned for real, losslessly, with TurboJPEG's transform
 * (libexif reads the tag): its edge blocks that would not fit are
 * trimmed (up to 15 pixels), and its colour profile is not kept.  With
 * "keep_location" the EXIF stays, the tag with it, and nothing is turned.
 *
 * Errors: -FS_EVALID for what libjpeg cannot read as a JPEG (its message
 * names no content), -FS_ELIMIT past PHOTO_INPUT_MAX, -ENOMEM.  No
 * state: thread-safe.
 */
#ifndef FS_PHOTO_H
#define FS_PHOTO_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/fserr.h"

/* The largest JPEG rewritten, read whole into memory: a camera's photo
 * is a few MB. */
#define PHOTO_INPUT_MAX (64 * 1024 * 1024)

/* Rewrite the JPEG in (len bytes): *ret (malloc'd, free()) and its
 * length.  max_side 0: not scaled. */
int photo_clean(const uint8_t *in, size_t len, unsigned max_side, unsigned quality,
		int keep_location, uint8_t **ret, size_t *ret_len, struct fs_error *err) FS_WUR;

#endif
