/* filewire.c - queries and chunks of attached files (sync/filewire.h). */
#include "sync/filewire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bytes.h"

uint32_t filewire_chunks(uint64_t size, uint32_t c)
{
	return (uint32_t)((size + c - 1) / c);
}

size_t filewire_chunk_len(const struct filewire_head *h)
{
	uint64_t start = (uint64_t)h->index * h->chunk_size;

	return start >= h->size				   ? 0
	       : h->size - start < (uint64_t)h->chunk_size ? (size_t)(h->size - start)
							   : h->chunk_size;
}

static void put_head(const struct filewire_head *h, const char *magic, uint32_t index, uint8_t *b)
{
	memcpy(b, magic, 4);
	b[4] = FILEWIRE_VERSION;
	memset(b + 5, 0, 3);
	memcpy(b + 8, h->device, 16);
	memcpy(b + 24, h->sha256, 32);
	bytes_put_be(b + 56, h->size, 8);
	bytes_put_be(b + 64, h->chunk_size, 4);
	bytes_put_be(b + 68, index, 4);
	bytes_put_be(b + 72, h->wall_ms, 8);
}

static int head_ok(const struct filewire_head *h)
{
	return h->size >= 1 && h->size <= FILEWIRE_FILE_MAX &&
	       h->chunk_size >= FILEWIRE_CHUNK_MIN && h->chunk_size <= FILEWIRE_CHUNK_MAX &&
	       (h->kind == FILEWIRE_QUERY || h->index < filewire_chunks(h->size, h->chunk_size));
}

int filewire_query_encode(const struct filewire_head *h,
			  const uint8_t sign_sk[crypto_sign_SECRETKEYBYTES],
			  uint8_t out[FILEWIRE_QUERY_BYTES], struct fs_error *err)
{
	struct filewire_head q = *h;

	q.kind = FILEWIRE_QUERY;
	if (!head_ok(&q))
		return fs_error_set(err, -FS_ELIMIT, "file query: size or chunk size out of range");
	put_head(&q, FILEWIRE_QUERY_MAGIC, 0, out);
	crypto_sign_detached(out + FILEWIRE_HEAD, NULL, out, FILEWIRE_HEAD, sign_sk);
	return 0;
}

int filewire_chunk_encode(const struct filewire_head *h, const uint8_t *data, size_t len,
			  const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
			  const uint8_t sign_sk[crypto_sign_SECRETKEYBYTES], uint8_t **ret,
			  size_t *ret_len, struct fs_error *err)
{
	struct filewire_head c = *h;
	size_t plain = FILEWIRE_BINDING + len, sealed = plain + crypto_box_SEALBYTES;
	size_t total = FILEWIRE_CHUNK_FIXED + sealed + crypto_sign_BYTES;
	uint8_t *b = NULL, *m = NULL;

	*ret = NULL;
	c.kind = FILEWIRE_CHUNK;
	if (!head_ok(&c) || len != filewire_chunk_len(&c) || len == 0)
		return fs_error_set(err, -FS_ELIMIT,
				    "file chunk %u: size, chunk size or length out of range",
				    (unsigned)c.index);
	if (!(b = malloc(total)) || !(m = malloc(plain))) {
		free(b);
		return fs_error_set(err, -ENOMEM, "out of memory");
	}
	put_head(&c, FILEWIRE_CHUNK_MAGIC, c.index, b);
	bytes_put_be(b + FILEWIRE_HEAD, sealed, 4);
	memcpy(m, b + 8, FILEWIRE_BINDING);
	memcpy(m + FILEWIRE_BINDING, data, len);
	if (crypto_box_seal(b + FILEWIRE_CHUNK_FIXED, m, plain, hq_box_pk) != 0) {
		sodium_memzero(m, plain);
		free(m);
		free(b);
		return fs_error_set(err, -FS_EAUTH, "file chunk %u: cannot seal to HQ's key",
				    (unsigned)c.index);
	}
	sodium_memzero(m, plain);
	free(m);
	crypto_sign_detached(b + total - crypto_sign_BYTES, NULL, b, total - crypto_sign_BYTES,
			     sign_sk);
	*ret = b;
	*ret_len = total;
	return 0;
}

int filewire_parse(const uint8_t *b, size_t len, struct filewire_head *h, struct fs_error *err)
{
	memset(h, 0, sizeof(*h));
	if (len < FILEWIRE_QUERY_BYTES)
		return fs_error_set(err, -FS_EFORMAT, "file message: %zu bytes, too short", len);
	if (!memcmp(b, FILEWIRE_QUERY_MAGIC, 4))
		h->kind = FILEWIRE_QUERY;
	else if (!memcmp(b, FILEWIRE_CHUNK_MAGIC, 4))
		h->kind = FILEWIRE_CHUNK;
	else
		return fs_error_set(err, -FS_EFORMAT, "file message: bad magic");
	if (b[4] != FILEWIRE_VERSION || b[5] || b[6] || b[7])
		return fs_error_set(err, -FS_EFORMAT, "file message: unsupported version %u",
				    (unsigned)b[4]);
	memcpy(h->device, b + 8, 16);
	memcpy(h->sha256, b + 24, 32);
	h->size = bytes_get_be(b + 56, 8);
	h->chunk_size = (uint32_t)bytes_get_be(b + 64, 4);
	h->index = (uint32_t)bytes_get_be(b + 68, 4);
	h->wall_ms = bytes_get_be(b + 72, 8);
	if (!head_ok(h))
		return fs_error_set(err, -FS_ELIMIT,
				    "file message: size, chunk size or chunk index out of range");
	if (h->kind == FILEWIRE_QUERY) {
		if (len != FILEWIRE_QUERY_BYTES || h->index != 0)
			return fs_error_set(err, -FS_EFORMAT,
					    "file query: %zu bytes or a chunk index", len);
		return 0;
	}
	/* The length field is checked against the real length, and must be
	 * what this chunk's length makes it: never trusted to read further. */
	if (len < FILEWIRE_CHUNK_FIXED + crypto_sign_BYTES ||
	    bytes_get_be(b + FILEWIRE_HEAD, 4) != len - FILEWIRE_CHUNK_FIXED - crypto_sign_BYTES ||
	    len - FILEWIRE_CHUNK_FIXED - crypto_sign_BYTES !=
		    filewire_chunk_len(h) + FILEWIRE_BINDING + crypto_box_SEALBYTES)
		return fs_error_set(err, -FS_EFORMAT,
				    "file chunk %u: its length does not match its header",
				    (unsigned)h->index);
	return 0;
}

int filewire_verify(const uint8_t *b, size_t len, const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES])
{
	if (len < crypto_sign_BYTES ||
	    crypto_sign_verify_detached(b + len - crypto_sign_BYTES, b, len - crypto_sign_BYTES,
					sign_pk) != 0)
		return -FS_EAUTH;
	return 0;
}

int filewire_open(const uint8_t *b, size_t len, const struct filewire_head *h,
		  const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
		  const uint8_t hq_box_sk[crypto_box_SECRETKEYBYTES], uint8_t *out,
		  struct fs_error *err)
{
	size_t n = filewire_chunk_len(h), plain = FILEWIRE_BINDING + n;
	size_t sealed = plain + crypto_box_SEALBYTES;
	uint8_t *m;
	int r = 0;

	if (h->kind != FILEWIRE_CHUNK || len != FILEWIRE_CHUNK_FIXED + sealed + crypto_sign_BYTES)
		return fs_error_set(err, -FS_EFORMAT, "file chunk: not a parsed chunk");
	if (!(m = malloc(plain)))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (crypto_box_seal_open(m, b + FILEWIRE_CHUNK_FIXED, sealed, hq_box_pk, hq_box_sk) != 0)
		r = fs_error_set(err, -FS_EAUTH,
				 "file chunk %u: the seal does not open with HQ's key",
				 (unsigned)h->index);
	else if (sodium_memcmp(m, b + 8, FILEWIRE_BINDING) != 0)
		r = fs_error_set(err, -FS_EAUTH,
				 "file chunk %u: the sealed bytes are bound to another device, "
				 "file or chunk",
				 (unsigned)h->index);
	else
		memcpy(out, m + FILEWIRE_BINDING, n);
	sodium_memzero(m, plain);
	free(m);
	return r;
}
