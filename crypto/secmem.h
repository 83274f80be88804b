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

#endif
