/* zmem.c - see zmem.h. */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem, ZSTD_create?Ctx_advanced */
#include "sync/zmem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sodium.h>

/* Each block is [its size][what zstd asked for]; the header is a full
 * max_align_t, so zstd gets malloc's alignment. */
#define HEADER sizeof(max_align_t)

static _Atomic size_t live;
static _Atomic unsigned long long wiped;

static void *zmem_alloc(void *opaque, size_t size)
{
	unsigned char *p;

	(void)opaque;
	if (size > SIZE_MAX - HEADER || !(p = malloc(HEADER + size)))
		return NULL;
	*(size_t *)(void *)p = size;
	atomic_fetch_add(&live, size);
	return p + HEADER;
}

static void zmem_free(void *opaque, void *addr)
{
	unsigned char *p;
	size_t size;

	(void)opaque;
	if (!addr)
		return;
	p = (unsigned char *)addr - HEADER;
	size = *(size_t *)(void *)p;
	sodium_memzero(addr, size);
	atomic_fetch_sub(&live, size);
	atomic_fetch_add(&wiped, size);
	free(p);
}

static const ZSTD_customMem wiped_mem = { zmem_alloc, zmem_free, NULL };

ZSTD_CCtx *zmem_cctx_new(void)
{
	return ZSTD_createCCtx_advanced(wiped_mem);
}

ZSTD_DCtx *zmem_dctx_new(void)
{
	return ZSTD_createDCtx_advanced(wiped_mem);
}

void zmem_stats(size_t *ret_live, unsigned long long *ret_wiped)
{
	*ret_live = atomic_load(&live);
	*ret_wiped = atomic_load(&wiped);
}
