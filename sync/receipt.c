/* receipt.c - encode and verify HQ's signed receipts. */
#include "sync/receipt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bytes.h"

int receipt_encode(const struct receipt *r, const uint8_t hq_sign_sk[crypto_sign_SECRETKEYBYTES],
		   uint8_t **ret_buf, size_t *ret_len)
{
	size_t len = RECEIPT_FIXED_BYTES + 4 * (size_t)r->quarantined + crypto_sign_BYTES;
	uint8_t *buf;

	if (r->quarantined > RECEIPT_MAX_QUARANTINED)
		return -FS_ELIMIT;
	for (uint32_t i = 1; i < r->quarantined; i++)
		if (r->index[i] <= r->index[i - 1])
			return -FS_EUSAGE;
	buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, RECEIPT_MAGIC, 4);
	buf[4] = RECEIPT_VERSION;
	memcpy(buf + 8, r->device, CHANGESET_DEVICE_BYTES);
	bytes_put_be(buf + 24, r->seq, 8);
	memcpy(buf + 32, r->hash, CHANGESET_HASH_BYTES);
	bytes_put_be(buf + 64, r->accepted_ms, 8);
	bytes_put_be(buf + 72, r->merged, 4);
	bytes_put_be(buf + 76, r->quarantined, 4);
	for (uint32_t i = 0; i < r->quarantined; i++)
		bytes_put_be(buf + RECEIPT_FIXED_BYTES + 4 * (size_t)i, r->index[i], 4);
	crypto_sign_detached(buf + len - crypto_sign_BYTES, NULL, buf, len - crypto_sign_BYTES,
			     hq_sign_sk);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int receipt_verify(const uint8_t *buf, size_t len,
		   const uint8_t hq_sign_pk[crypto_sign_PUBLICKEYBYTES], struct receipt *ret)
{
	struct receipt r = { 0 };
	uint64_t q;

	if (len < RECEIPT_FIXED_BYTES + crypto_sign_BYTES || len > RECEIPT_MAX_BYTES ||
	    memcmp(buf, RECEIPT_MAGIC, 4) != 0 || buf[4] != RECEIPT_VERSION || buf[5] || buf[6] ||
	    buf[7])
		return -FS_EFORMAT;
	q = bytes_get_be(buf + 76, 4);
	/* The count is checked against the real length before any use. */
	if (q > RECEIPT_MAX_QUARANTINED || len != RECEIPT_FIXED_BYTES + 4 * q + crypto_sign_BYTES)
		return -FS_EFORMAT;
	if (crypto_sign_verify_detached(buf + len - crypto_sign_BYTES, buf, len - crypto_sign_BYTES,
					hq_sign_pk) != 0)
		return -FS_EAUTH;
	memcpy(r.device, buf + 8, CHANGESET_DEVICE_BYTES);
	r.seq = bytes_get_be(buf + 24, 8);
	memcpy(r.hash, buf + 32, CHANGESET_HASH_BYTES);
	r.accepted_ms = bytes_get_be(buf + 64, 8);
	r.merged = (uint32_t)bytes_get_be(buf + 72, 4);
	r.quarantined = (uint32_t)q;
	if (q) {
		r.index = malloc(4 * (size_t)q);
		if (!r.index)
			return -ENOMEM;
		for (uint64_t i = 0; i < q; i++) {
			r.index[i] = (uint32_t)bytes_get_be(buf + RECEIPT_FIXED_BYTES + 4 * i, 4);
			if (i && r.index[i] <= r.index[i - 1]) {
				free(r.index);
				return -FS_EFORMAT;
			}
		}
	}
	*ret = r;
	return 0;
}

void receipt_clear(struct receipt *r)
{
	if (!r)
		return;
	free(r->index);
	memset(r, 0, sizeof(*r));
}
