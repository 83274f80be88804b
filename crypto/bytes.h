/* bytes.h - big-endian integers in wire and file formats.
 *
 * Every fixed layout in fieldsync (key files, change sets, receipts,
 * page associated data) stores integers big-endian; these are the one
 * place that says how.  n is the width in bytes, 1 to 8.  Header-only,
 * no state, thread-safe.
 */
#ifndef FS_BYTES_H
#define FS_BYTES_H

#include <stdint.h>

static inline void bytes_put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t bytes_get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t bytes_get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#endif
