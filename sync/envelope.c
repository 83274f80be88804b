/* envelope.c - see envelope.h. */
#include "sync/envelope.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "crypto/bytes.h"
#include "sync/zmem.h"

int envelope_seal(const uint8_t *prefix, size_t prefix_len, const char *payload, size_t plen,
		  int level, unsigned window_log, const uint8_t box_pk[crypto_box_PUBLICKEYBYTES],
		  uint8_t **ret, size_t *ret_len, const char *what, struct fs_error *err)
{
	size_t zcap = prefix_len + ZSTD_compressBound(plen), zlen;
	uint8_t *z = malloc(zcap), *out = NULL;
	ZSTD_CCtx *cc = zmem_cctx_new(); /* its workspace holds the payload */
	int r = 0;

	if (!z || !cc) {
		r = fs_error_set(err, -ENOMEM, "%s: out of memory", what);
		goto out;
	}
	if (prefix_len)
		memcpy(z, prefix, prefix_len);
	/* The frame states its content size (ZSTD_c_contentSizeFlag is on
	 * by default), which envelope_open insists on. */
	zlen = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(zlen) && window_log)
		zlen = ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, (int)window_log);
	if (!ZSTD_isError(zlen))
		zlen = ZSTD_compress2(cc, z + prefix_len, zcap - prefix_len, payload, plen);
	if (ZSTD_isError(zlen)) {
		r = fs_error_set(err, -FS_EFORMAT, "%s: zstd: %s", what, ZSTD_getErrorName(zlen));
		goto out;
	}
	zlen += prefix_len;
	if (!(out = malloc(zlen + crypto_box_SEALBYTES))) {
		r = fs_error_set(err, -ENOMEM, "%s: out of memory", what);
		goto out;
	}
	if (crypto_box_seal(out, z, zlen, box_pk) != 0) {
		free(out);
		r = fs_error_set(err, -FS_EAUTH, "%s: cannot seal to the recipient's key", what);
		goto out;
	}
	*ret = out;
	*ret_len = zlen + crypto_box_SEALBYTES;
out:
	ZSTD_freeCCtx(cc);
	/* Plaintext personal data, compressed or not: wiped before freed. */
	if (z)
		sodium_memzero(z, zcap);
	free(z);
	return r;
}

int envelope_open(const uint8_t *sealed, size_t slen,
		  const uint8_t box_pk[crypto_box_PUBLICKEYBYTES],
		  const uint8_t box_sk[crypto_box_SECRETKEYBYTES], const uint8_t *prefix,
		  size_t prefix_len, size_t max_payload, char **ret_text, size_t *ret_len,
		  const char *what, struct fs_error *err)
{
	size_t zlen, got;
	unsigned long long size = 0;
	uint8_t *z;
	char *text = NULL;
	ZSTD_DCtx *dc = NULL;
	int r = 0;

	if (slen <= crypto_box_SEALBYTES)
		return fs_error_set(err, -FS_EFORMAT, "%s: sealed payload too short", what);
	zlen = slen - crypto_box_SEALBYTES;
	if (!(z = malloc(zlen)))
		return fs_error_set(err, -ENOMEM, "%s: out of memory", what);
	if (crypto_box_seal_open(z, sealed, slen, box_pk, box_sk) != 0) {
		r = fs_error_set(err, -FS_EAUTH, "%s: payload not sealed to this key", what);
		goto out;
	}
	if (prefix_len && (zlen <= prefix_len || sodium_memcmp(z, prefix, prefix_len) != 0)) {
		r = fs_error_set(err, -FS_EAUTH,
				 "%s: the sealed payload is bound to another "
				 "device, sequence or previous hash",
				 what);
		goto out;
	}
	/* zstd's frame states its content size; we insist on it, and on a
	 * cap, before allocating anything. */
	size = ZSTD_getFrameContentSize(z + prefix_len, zlen - prefix_len);
	if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size == 0) {
		r = fs_error_set(err, -FS_EFORMAT, "%s: payload size missing", what);
		goto out;
	}
	if (size > max_payload) {
		r = fs_error_set(err, -FS_ELIMIT, "%s: payload of %llu bytes over the limit", what,
				 size);
		goto out;
	}
	/* The context's literals are the payload's: it is wiped when freed. */
	if (!(text = malloc((size_t)size + 1)) || !(dc = zmem_dctx_new())) {
		r = fs_error_set(err, -ENOMEM, "%s: out of memory", what);
		goto out;
	}
	got = ZSTD_decompressDCtx(dc, text, (size_t)size, z + prefix_len, zlen - prefix_len);
	if (ZSTD_isError(got) || got != size) {
		r = fs_error_set(err, -FS_EFORMAT, "%s: payload does not decompress", what);
		goto out;
	}
	text[got] = '\0';
	*ret_text = text;
	*ret_len = got;
	text = NULL;
out:
	ZSTD_freeDCtx(dc);
	if (text) {
		sodium_memzero(text, (size_t)size + 1);
		free(text);
	}
	sodium_memzero(z, zlen);
	free(z);
	return r;
}

int envelope_parse(const uint8_t *buf, size_t len, const char *magic, const char *what, size_t max,
		   uint8_t v_min, uint8_t v, uint8_t flags_allowed, struct envelope_frame *ret,
		   struct fs_error *err)
{
	static const uint8_t zero[ENVELOPE_HASH_BYTES];
	struct envelope_frame f;
	uint64_t sealed;

	if (len > max)
		return fs_error_set(err, -FS_ELIMIT, "%s of %zu bytes, more than %zu", what, len,
				    max);
	if (len < ENVELOPE_HEADER_BYTES + crypto_box_SEALBYTES + 1 + ENVELOPE_SIG_BYTES ||
	    memcmp(buf, magic, 4) != 0)
		return fs_error_set(err, -FS_EFORMAT, "not a %s", what);
	if (buf[4] < v_min || buf[4] > v)
		return fs_error_set(err, -FS_EFORMAT, "%s version %u is not supported", what,
				    buf[4]);
	if (buf[5] != 1 || (buf[6] & ~flags_allowed) || buf[7])
		return fs_error_set(err, -FS_EFORMAT, "%s: unknown codec or flags", what);
	f.version = buf[4];
	f.flags = buf[6];
	memcpy(f.device, buf + 8, ENVELOPE_DEVICE_BYTES);
	f.seq = bytes_get_be(buf + 24, 8);
	memcpy(f.prev, buf + 32, ENVELOPE_HASH_BYTES);
	f.word[0] = bytes_get_be(buf + 64, 8);
	f.word[1] = bytes_get_be(buf + 72, 8);
	f.count = (uint32_t)bytes_get_be(buf + 80, 4);
	sealed = bytes_get_be(buf + 84, 4);
	/* The length field is checked against the real length, never used
	 * to read past it. */
	if (sealed != len - ENVELOPE_HEADER_BYTES - ENVELOPE_SIG_BYTES)
		return fs_error_set(err, -FS_EFORMAT, "%s: sealed length does not match", what);
	if (f.seq == 0 || (f.seq == 1 && memcmp(f.prev, zero, sizeof(zero)) != 0))
		return fs_error_set(err, -FS_EFORMAT, "%s: bad sequence or previous hash", what);
	*ret = f;
	return 0;
}

void envelope_frame_put(uint8_t *out, const char *magic, const struct envelope_frame *f,
			size_t sealed_len)
{
	memcpy(out, magic, 4);
	out[4] = f->version;
	out[5] = 1;
	out[6] = f->flags;
	out[7] = 0;
	memcpy(out + 8, f->device, ENVELOPE_DEVICE_BYTES);
	bytes_put_be(out + 24, f->seq, 8);
	memcpy(out + 32, f->prev, ENVELOPE_HASH_BYTES);
	bytes_put_be(out + 64, f->word[0], 8);
	bytes_put_be(out + 72, f->word[1], 8);
	bytes_put_be(out + 80, f->count, 4);
	bytes_put_be(out + 84, sealed_len, 4);
}

int envelope_verify(const uint8_t *buf, size_t len, size_t max,
		    const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES])
{
	if (len < ENVELOPE_HEADER_BYTES + ENVELOPE_SIG_BYTES || len > max)
		return -FS_EFORMAT;
	if (crypto_sign_verify_detached(buf + len - ENVELOPE_SIG_BYTES, buf,
					len - ENVELOPE_SIG_BYTES, sign_pk) != 0)
		return -FS_EAUTH;
	return 0;
}
