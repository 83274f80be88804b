/* secmem.h - memory for secrets.
 *
 * Every key, passphrase and decrypted secret lives in memory from
 * secmem_alloc(): guarded, locked against swapping (sodium_malloc) and
 * wiped when freed.  secmem_free() is NULL-safe and returns NULL so
 * callers can write `k = secmem_free(k);`.
 */
#ifndef FS_SECMEM_H
#define FS_SECMEM_H

#include <stddef.h>
#include <stdio.h>

#include "crypto/fserr.h"

/* Initialise libsodium; call once before anything else in crypto/.
 * Returns 0, or -FS_EBASE when the library cannot start. */
int secmem_init(void) FS_WUR;

/* Locked, guarded allocation of len bytes (len > 0).  NULL on ENOMEM. */
void *secmem_alloc(size_t len);

/* Wipe and free; NULL-safe.  Always returns NULL. */
void *secmem_free(void *p);

/* New secret of len random bytes in secure memory.  *ret_key is written
 * only on success; free it with secmem_free(). */
int secmem_random_key(size_t len, unsigned char **ret_key) FS_WUR;

/* Duplicate len bytes into secure memory. */
int secmem_dup(const void *src, size_t len, unsigned char **ret_copy) FS_WUR;

/* A stdio stream whose buffer is ours: glibc's own would hold a copy of
 * what passed through (a photo, a file being assembled), freed without
 * being wiped; and an unbuffered stream reads a byte at a time. */
struct secmem_stream {
	FILE *fp;
	unsigned char *buf;
	size_t size;
};

/* Give fp (owned from now on, closed on failure) a buffer of size bytes
 * from malloc, wiped by secmem_stream_close().  -ENOMEM. */
int secmem_stream_take(struct secmem_stream *s, FILE *fp, size_t size) FS_WUR;

/* The same for a read stream over len bytes at mem (fmemopen). */
int secmem_stream_mem(struct secmem_stream *s, void *mem, size_t len, size_t size) FS_WUR;

/* Close the stream, then wipe and free its buffer; NULL-safe, and safe
 * on a zeroed struct. */
void secmem_stream_close(struct secmem_stream *s);

#endif
