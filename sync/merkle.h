/* merkle.h - RFC 6962 / RFC 9162 Merkle tree hashes and proofs (SHA-256).
 *
 * HQ's audit log is a Merkle tree over its entries, so that a verifier
 * holding an old signed tree head can check that today's log extends it
 * (a consistency proof) and that an entry is in it (an inclusion proof),
 * without trusting HQ.  The hashes are exactly RFC 6962's:
 *
 *   leaf  = SHA-256(0x00 || entry)
 *   node  = SHA-256(0x01 || left || right)
 *   empty = SHA-256("")
 *
 * and the tree splits at the largest power of two below its size, so any
 * other RFC 6962 implementation computes the same roots and proofs.
 * tests/test_merkle.c pins the published Certificate Transparency
 * vectors.  Pure functions; thread-safe.  Over an array of leaf hashes
 * a root or proof costs O(n).  Through a merkle_source, which supplies
 * the roots of perfect subtrees (HQ keeps them in its database), a root
 * costs O(log n) lookups and a proof O(log^2 n).  Proofs have at most
 * MERKLE_MAX_PROOF hashes.
 */
#ifndef FS_MERKLE_H
#define FS_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/fserr.h"

#define MERKLE_HASH_BYTES 32
#define MERKLE_MAX_PROOF 64 /* a tree of 2^63 leaves */

typedef uint8_t merkle_hash[MERKLE_HASH_BYTES];

void merkle_leaf_hash(const void *entry, size_t len, merkle_hash out);
void merkle_node_hash(const merkle_hash left, const merkle_hash right, merkle_hash out);

/* Roots of perfect subtrees: perfect(ctx, start, level, out) writes the
 * root of the 2^level leaves from start (a multiple of 2^level; level 0
 * is the leaf hash itself) and returns 0, or a negative error code that
 * the function asking passes on. */
struct merkle_source {
	int (*perfect)(void *ctx, uint64_t start, unsigned level, merkle_hash out);
	void *ctx;
};

/* The root of the first n leaves; the audit path of leaf m (m < n); the
 * proof that the first m leaves are a prefix of the first n (0 < m <= n).
 * -EINVAL for bad sizes, or the source's error. */
int merkle_root_from(const struct merkle_source *src, uint64_t n, merkle_hash out) FS_WUR;
int merkle_inclusion_proof_from(const struct merkle_source *src, uint64_t n, uint64_t m,
				merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len) FS_WUR;
int merkle_consistency_proof_from(const struct merkle_source *src, uint64_t n, uint64_t m,
				  merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len) FS_WUR;

/* The root of the 2^level leaves of the array from start. */
int merkle_perfect_root(const merkle_hash *leaves, uint64_t start, unsigned level, merkle_hash out);

/* The root of the tree of the first n leaves (n = 0: the empty tree). */
void merkle_root(const merkle_hash *leaves, uint64_t n, merkle_hash out);

/* The audit path of leaf m in the tree of the first n leaves (m < n).
 * -EINVAL for m >= n. */
int merkle_inclusion_proof(const merkle_hash *leaves, uint64_t n, uint64_t m,
			   merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len) FS_WUR;

/* 0 when proof shows leaf is leaf m of the tree of size n with root;
 * -FS_EAUTH otherwise. */
int merkle_inclusion_verify(const merkle_hash leaf, uint64_t m, uint64_t n,
			    const merkle_hash *proof, size_t len, const merkle_hash root) FS_WUR;

/* The proof that the tree of the first m leaves is a prefix of the tree
 * of the first n (0 < m <= n; empty when m == n).  -EINVAL otherwise. */
int merkle_consistency_proof(const merkle_hash *leaves, uint64_t n, uint64_t m,
			     merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len) FS_WUR;

/* 0 when proof shows the tree of size m with root_m is a prefix of the
 * tree of size n with root_n; -FS_EAUTH otherwise (also for m > n, for
 * m == 0, and for m == n with different roots or a non-empty proof). */
int merkle_consistency_verify(uint64_t m, uint64_t n, const merkle_hash root_m,
			      const merkle_hash root_n, const merkle_hash *proof,
			      size_t len) FS_WUR;

#endif
