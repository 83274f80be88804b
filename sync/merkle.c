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

/* ---- any tree, through a source of perfect subtrees --------------------- */

/* MTH(D[start : start + n]).  Every range the RFC 6962 recursions ask
 * for splits into O(log n) perfect subtrees, each aligned to its size,
 * which the source supplies. */
static int range_root(const struct merkle_source *src, uint64_t start, uint64_t n, merkle_hash out)
{
	merkle_hash l, r;
	unsigned level = 0;
	uint64_t k;
	int rc;

	if (n == 0) {
		crypto_hash_sha256(out, NULL, 0);
		return 0;
	}
	if ((n & (n - 1)) == 0) {
		while ((1ULL << level) < n)
			level++;
		return src->perfect(src->ctx, start, level, out);
	}
	k = split(n);
	if ((rc = range_root(src, start, k, l)) < 0 ||
	    (rc = range_root(src, start + k, n - k, r)) < 0)
		return rc;
	merkle_node_hash(l, r, out);
	return 0;
}

int merkle_root_from(const struct merkle_source *src, uint64_t n, merkle_hash out)
{
	return range_root(src, 0, n, out);
}

/* PATH(m, D[start : start + n]) of RFC 6962 2.1.1: inner-most sibling first. */
static int path(const struct merkle_source *src, uint64_t start, uint64_t n, uint64_t m,
		merkle_hash *proof, size_t *len)
{
	uint64_t k;
	int rc;

	if (n <= 1)
		return 0;
	k = split(n);
	if (m < k) {
		if ((rc = path(src, start, k, m, proof, len)) < 0)
			return rc;
		return range_root(src, start + k, n - k, proof[(*len)++]);
	}
	if ((rc = path(src, start + k, n - k, m - k, proof, len)) < 0)
		return rc;
	return range_root(src, start, k, proof[(*len)++]);
}

int merkle_inclusion_proof_from(const struct merkle_source *src, uint64_t n, uint64_t m,
				merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len)
{
	if (m >= n)
		return -EINVAL;
	*ret_len = 0;
	return path(src, 0, n, m, proof, ret_len);
}

/* SUBPROOF(m, D[start : start + n], b) of RFC 6962 2.1.2. */
static int subproof(const struct merkle_source *src, uint64_t start, uint64_t n, uint64_t m,
		    int whole, merkle_hash *proof, size_t *len)
{
	uint64_t k;
	int rc;

	if (m == n)
		return whole ? 0 : range_root(src, start, n, proof[(*len)++]);
	k = split(n);
	if (m <= k) {
		if ((rc = subproof(src, start, k, m, whole, proof, len)) < 0)
			return rc;
		return range_root(src, start + k, n - k, proof[(*len)++]);
	}
	if ((rc = subproof(src, start + k, n - k, m - k, 0, proof, len)) < 0)
		return rc;
	return range_root(src, start, k, proof[(*len)++]);
}

int merkle_consistency_proof_from(const struct merkle_source *src, uint64_t n, uint64_t m,
				  merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len)
{
	if (m == 0 || m > n)
		return -EINVAL;
	*ret_len = 0;
	return subproof(src, 0, n, m, 1, proof, ret_len);
}

/* ---- a tree in an array of leaf hashes ------------------------------------ */

/* The perfect subtree of 2^level leaves from start, hashed pairwise. */
static int array_perfect(void *ctx, uint64_t start, unsigned level, merkle_hash out)
{
	const merkle_hash *leaves = ctx;
	merkle_hash l, r;

	if (level == 0) {
		memcpy(out, leaves[start], MERKLE_HASH_BYTES);
		return 0;
	}
	array_perfect(ctx, start, level - 1, l);
	array_perfect(ctx, start + (1ULL << (level - 1)), level - 1, r);
	merkle_node_hash(l, r, out);
	return 0;
}

#define ARRAY_SOURCE(leaves)                                                                       \
	(&(const struct merkle_source){ .perfect = array_perfect, .ctx = (void *)(leaves) })

void merkle_root(const merkle_hash *leaves, uint64_t n, merkle_hash out)
{
	(void)!merkle_root_from(ARRAY_SOURCE(leaves), n, out); /* an array cannot fail */
}

int merkle_perfect_root(const merkle_hash *leaves, uint64_t start, unsigned level, merkle_hash out)
{
	return array_perfect((void *)leaves, start, level, out);
}

int merkle_inclusion_proof(const merkle_hash *leaves, uint64_t n, uint64_t m,
			   merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len)
{
	return merkle_inclusion_proof_from(ARRAY_SOURCE(leaves), n, m, proof, ret_len);
}

int merkle_consistency_proof(const merkle_hash *leaves, uint64_t n, uint64_t m,
			     merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len)
{
	return merkle_consistency_proof_from(ARRAY_SOURCE(leaves), n, m, proof, ret_len);
}

/* ---- verification ---------------------------------------------------------- */

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
		return len == 0 && sodium_memcmp(root_m, root_n, MERKLE_HASH_BYTES) == 0
			       ? 0
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
