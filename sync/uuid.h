/* uuid.h - UUIDv7 record ids, made offline.
 *
 * RFC 9562 version 7: 48-bit Unix milliseconds, version nibble 7, 12
 * random bits, variant 10, 62 random bits.  Ids sort by creation time
 * and need no coordination between devices.  Text form is the canonical
 * lower-case 8-4-4-4-12.  Thread-safe.
 */
#ifndef FS_UUID_H
#define FS_UUID_H

#include <stdint.h>

#include "crypto/fserr.h"

#define UUID_TEXT_LEN 36

void uuid_v7_new(uint64_t unix_ms, char out[UUID_TEXT_LEN + 1]);

/* Accepts any RFC 9562 UUID in 8-4-4-4-12 form (either case) and writes
 * the lower-case canonical form; -FS_EFORMAT otherwise. */
int uuid_normalize(const char *text, char out[UUID_TEXT_LEN + 1]) FS_WUR;

#endif
