/* zmem.h - zstd contexts whose memory is wiped before it is freed.
 *
 * A zstd context's workspace holds what it compresses or decompresses:
 * literals, the window, its hash tables' view of the input.  For change
 * sets and down-sets that is personal data, and the default allocator
 * hands it back to malloc as it is.  These contexts allocate through
 * zstd's ZSTD_customMem (the advanced API: stable since zstd 1.0, and
 * exported by Debian's libzstd), and every block is wiped with
 * sodium_memzero before free().
 *
 * Contexts are freed with zstd's own ZSTD_freeCCtx / ZSTD_freeDCtx, which
 * call back here.  NULL when out of memory.  Thread-safe: the counters
 * are atomic, and a context is the caller's, as with zstd.
 */
#ifndef FS_ZMEM_H
#define FS_ZMEM_H

#include <stddef.h>
#include <zstd.h>

ZSTD_CCtx *zmem_cctx_new(void);
ZSTD_DCtx *zmem_dctx_new(void);

/* Bytes these contexts hold now, and bytes wiped since the process
 * started: a test checks that a seal or an open went through here. */
void zmem_stats(size_t *ret_live, unsigned long long *ret_wiped);

#endif
