/* secmem.c - sodium_malloc-backed memory for secrets. */
#include "crypto/secmem.h"

#include <errno.h>
#include <string.h>
#include <sodium.h>

int secmem_init(void)
{
	return sodium_init() < 0 ? -FS_EBASE : 0;
}

void *secmem_alloc(size_t len)
{
	if (len == 0)
		return NULL;
	/* sodium_malloc already mlock()s and surrounds the block with guard
	 * pages; a failed mlock (RLIMIT_MEMLOCK) still returns memory. */
	return sodium_malloc(len);
}

void *secmem_free(void *p)
{
	if (p)
		sodium_free(p); /* wipes before unmapping */
	return NULL;
}

int secmem_random_key(size_t len, unsigned char **ret_key)
{
	unsigned char *k = secmem_alloc(len);

	if (!k)
		return -ENOMEM;
	randombytes_buf(k, len);
	*ret_key = k;
	return 0;
}

int secmem_dup(const void *src, size_t len, unsigned char **ret_copy)
{
	unsigned char *k = secmem_alloc(len);

	if (!k)
		return -ENOMEM;
	memcpy(k, src, len);
	*ret_copy = k;
	return 0;
}
