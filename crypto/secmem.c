/* secmem.c - sodium_malloc-backed memory for secrets. */
#include "crypto/secmem.h"

#include <errno.h>
#include <stdlib.h>
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

int secmem_stream_take(struct secmem_stream *s, FILE *fp, size_t size)
{
	s->fp = fp;
	s->size = size;
	if (!fp || !(s->buf = malloc(size)) || setvbuf(fp, (char *)s->buf, _IOFBF, size) != 0) {
		secmem_stream_close(s);
		return -ENOMEM;
	}
	return 0;
}

int secmem_stream_mem(struct secmem_stream *s, void *mem, size_t len, size_t size)
{
	return secmem_stream_take(s, fmemopen(mem, len, "rb"), size);
}

void secmem_stream_close(struct secmem_stream *s)
{
	if (!s)
		return;
	if (s->fp)
		fclose(s->fp);
	if (s->buf) {
		sodium_memzero(s->buf, s->size);
		free(s->buf);
	}
	s->fp = NULL;
	s->buf = NULL;
}
