/* utf8.h - strict UTF-8 (RFC 3629), decoded in one place.
 *
 * No overlong forms, no surrogates, nothing above U+10FFFF, no sequence
 * cut short.  Form validation and text folding both read UTF-8 through
 * here.  Pure functions, thread-safe.
 */
#ifndef FS_UTF8_H
#define FS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode the sequence at s (n > 0 bytes left): its length (1..4) with
 * *cp set, or 0 when it is not valid UTF-8. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Is the NUL-terminated str valid UTF-8? */
bool utf8_valid(const char *str);

#endif
