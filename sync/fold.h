/* fold.h - the one rule for "is this the same name": case, diacritics
 * and Serbian script folded away.
 *
 * Serbian is written in Cyrillic and in Latin, and field workers type
 * without diacritics: "Bujanovac", "Бујановац" and "BUJANOVAC" name one
 * municipality, and "djordje" is "Đorđe".  fold_text() maps a UTF-8 text
 * to a key in which all of these agree:
 *   - Serbian Cyrillic letters become their Latin transliteration
 *     (ђ -> dj, љ -> lj, њ -> nj, џ -> dz; ћ and ч -> c; ж -> z; ш -> s);
 *   - Latin č ć -> c, đ -> dj, š -> s, ž -> z, and the Latin-1 accented
 *     vowels lose their accent;
 *   - letters are lower case; runs of white space become one space, and
 *     leading and trailing space goes.
 * Any other character is kept as it is.  Two texts match when their
 * keys are equal: HQ's scope check (hq/scope.h) and, later, search use
 * this and nothing else, so the rule lives here once.
 *
 * The input must be valid UTF-8 (form validation guarantees it for field
 * values); an invalid sequence is -FS_EFORMAT.  The key is never longer
 * than twice the input.  Thread-safe, no allocation but the result.
 */
#ifndef FS_FOLD_H
#define FS_FOLD_H

#include <stddef.h>

#include "crypto/fserr.h"

/* *ret: malloc'd NUL-terminated key; the caller frees it.  -ENOMEM,
 * -FS_EFORMAT (not UTF-8, or a NUL inside len). */
int fold_text(const char *text, size_t len, char **ret) FS_WUR;

/* 1 when a and b (NUL-terminated) fold to the same key, 0 when not, or
 * either is not valid UTF-8; < 0 only on -ENOMEM. */
int fold_equal(const char *a, const char *b);

#endif
