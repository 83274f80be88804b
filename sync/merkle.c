/* merkle.c - RFC 6962 hashing, proofs (RFC 6962 2.1) and their
 * verification (RFC 9162 2.1.3.2 and 2.1.4.2). */
#include "sync/merkle.h"

#include <errno.h>
#include <string.h>
#include <sodium.h>

void merkle_leaf_hash(const void *entry, size_t len, merkle_hash out)
{
	crypto_hash_sha256_state st;
	const uint8_t zero = 0x00;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &zero, 1);
	crypto_hash_sha256_update(&st, entry, len);
	crypto_hash_sha256_final(&st, out);
}

void merkle_node_hash(const merkle_hash left, const merkle_hash right, merkle_hash out)
{
	crypto_hash_sha256_state st;
	const uint8_t one = 0x01;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &one, 1);
	crypto_hash_sha256_update(&st, left, MERKLE_HASH_BYTES);
	crypto_hash_sha256_update(&st, right, MERKLE_HASH_BYTES);
	crypto_hash_sha256_final(&st, out);
}

/* The largest power of two strictly below n (n >= 2). */
static uint64_t split(uint64_t n)
{
	uint64_t k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

void merkle_root(const merkle_hash *leaves, uint64_t n, merkle_hash out)
{
	merkle_hash l, r;
	uint64_t k;

	if (n == 0) {
		crypto_hash_sha256(out, NULL, 0);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[0], MERKLE_HASH_BYTES);
		return;
	}
	k = split(n);
	merkle_root(leaves, k, l);
	merkle_root(leaves + k, n - k, r);
	merkle_node_hash(l, r, out);
}

/* PATH(m, D[n]) of RFC 6962 2.1.1: inner-most sibling first. */
static void path(const merkle_hash *leaves, uint64_t n, uint64_t m, merkle_hash *proof,
		 size_t *len)
{
	uint64_t k;

	if (n <= 1)
		return;
	k = split(n);
	if (m < k) {
		path(leaves, k, m, proof, len);
		merkle_root(leaves + k, n - k, proof[(*len)++]);
	} else {
		path(leaves + k, n - k, m - k, proof, len);
		merkle_root(leaves, k, proof[(*len)++]);
	}
}

int merkle_inclusion_proof(const merkle_hash *leaves, uint64_t n, uint64_t m,
			   merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len)
{
	if (m >= n)
		return -EINVAL;
	*ret_len = 0;
	path(leaves, n, m, proof, ret_len);
	return 0;
}

/* SUBPROOF(m, D[n], b) of RFC 6962 2.1.2. */
static void subproof(const merkle_hash *leaves, uint64_t n, uint64_t m, int whole,
		     merkle_hash *proof, size_t *len)
{
	uint64_t k;

	if (m == n) {
		if (!whole)
			merkle_root(leaves, n, proof[(*len)++]);
		return;
	}
	k = split(n);
	if (m <= k) {
		subproof(leaves, k, m, whole, proof, len);
		merkle_root(leaves + k, n - k, proof[(*len)++]);
	} else {
		subproof(leaves + k, n - k, m - k, 0, proof, len);
		merkle_root(leaves, k, proof[(*len)++]);
	}
}

int merkle_consistency_proof(const merkle_hash *leaves, uint64_t n, uint64_t m,
			     merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len)
{
	if (m == 0 || m > n)
		return -EINVAL;
	*ret_len = 0;
	subproof(leaves, n, m, 1, proof, ret_len);
	return 0;
}

int merkle_inclusion_verify(const merkle_hash leaf, uint64_t m, uint64_t n,
			    const merkle_hash *proof, size_t len, const merkle_hash root)
{
	uint64_t fn = m, sn;
	merkle_hash r;

	if (m >= n)
		return -FS_EAUTH;
	sn = n - 1;
	memcpy(r, leaf, MERKLE_HASH_BYTES);
	for (size_t i = 0; i < len; i++) {
		if (sn == 0)
			return -FS_EAUTH;
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof[i], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_node_hash(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && sodium_memcmp(r, root, MERKLE_HASH_BYTES) == 0 ? 0 : -FS_EAUTH;
}

int merkle_consistency_verify(uint64_t m, uint64_t n, const merkle_hash root_m,
			      const merkle_hash root_n, const merkle_hash *proof, size_t len)
{
	merkle_hash fr, sr;
	uint64_t fn, sn;
	size_t i = 0;

	if (m == 0 || m > n)
		return -FS_EAUTH;
	if (m == n)
		return len == 0 && sodium_memcmp(root_m, root_n, MERKLE_HASH_BYTES) == 0 ? 0
											   : -FS_EAUTH;
	/* A first tree whose size is a power of two is itself a node of the
	 * second: its root starts the walk instead of a proof hash. */
	if ((m & (m - 1)) == 0) {
		memcpy(fr, root_m, MERKLE_HASH_BYTES);
	} else {
		if (len == 0)
			return -FS_EAUTH;
		memcpy(fr, proof[0], MERKLE_HASH_BYTES);
		i = 1;
	}
	memcpy(sr, fr, MERKLE_HASH_BYTES);
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < len; i++) {
		if (sn == 0)
			return -FS_EAUTH;
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof[i], fr, fr);
			merkle_node_hash(proof[i], sr, sr);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_node_hash(sr, proof[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && sodium_memcmp(fr, root_m, MERKLE_HASH_BYTES) == 0 &&
			       sodium_memcmp(sr, root_n, MERKLE_HASH_BYTES) == 0
		       ? 0
		       : -FS_EAUTH;
}
