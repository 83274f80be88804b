/* test_merkle.c - sync/merkle and sync/note against published vectors:
 * the Certificate Transparency (RFC 6962) reference tree, and the signed
 * note of the Go golang.org/x/mod/sumdb/note tests; then every proof of
 * every tree up to 40 leaves, and tampering.
 */
#include <errno.h>
#include <stdlib.h>

#include "sync/merkle.h"
#include "sync/note.h"
#include "tests/test.h"

static void unhex(const char *hex, uint8_t *out, size_t n)
{
	size_t len = 0;

	ASSERT_OK(sodium_hex2bin(out, n, hex, strlen(hex), NULL, &len, NULL));
	ASSERT_EQ(len, n);
}

/* The CT reference leaves and the root of each prefix, sizes 0..8. */
static const char *const ct_leaves[] = { "",
					 "00",
					 "10",
					 "2021",
					 "3031",
					 "40414243",
					 "5051525354555657",
					 "606162636465666768696a6b6c6d6e6f" };
static const char *const ct_roots[] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static void ct_tree(merkle_hash leaves[8])
{
	for (int i = 0; i < 8; i++) {
		uint8_t data[16];
		size_t n = strlen(ct_leaves[i]) / 2;

		unhex(ct_leaves[i], data, n);
		merkle_leaf_hash(data, n, leaves[i]);
	}
}

static void assert_proof(const merkle_hash *proof, size_t len, const char *const *want,
			 size_t nwant)
{
	ASSERT_EQ(len, nwant);
	for (size_t i = 0; i < nwant; i++) {
		merkle_hash h;

		unhex(want[i], h, sizeof(h));
		ASSERT_MEM_EQ(proof[i], h, sizeof(h));
	}
}

TEST(merkle_rfc6962_vectors)
{
	static const char *const incl0[] = {
		"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
	};
	static const char *const incl5[] = {
		"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
		"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
	};
	static const char *const cons25[] = {
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
	};
	merkle_hash leaves[8], root, proof[MERKLE_MAX_PROOF], r2, r5, r8;
	size_t len;

	ct_tree(leaves);
	for (uint64_t n = 0; n <= 8; n++) {
		merkle_hash want;

		merkle_root(leaves, n, root);
		unhex(ct_roots[n], want, sizeof(want));
		ASSERT_MEM_EQ(root, want, sizeof(want));
	}
	ASSERT_OK(merkle_inclusion_proof(leaves, 8, 0, proof, &len));
	assert_proof(proof, len, incl0, 3);
	ASSERT_OK(merkle_inclusion_proof(leaves, 8, 5, proof, &len));
	assert_proof(proof, len, incl5, 3);
	ASSERT_OK(merkle_consistency_proof(leaves, 5, 2, proof, &len));
	assert_proof(proof, len, cons25, 2);
	merkle_root(leaves, 2, r2);
	merkle_root(leaves, 5, r5);
	merkle_root(leaves, 8, r8);
	ASSERT_OK(merkle_consistency_verify(2, 5, r2, r5, proof, len));
	/* The same proof does not connect other trees. */
	ASSERT_EQ(merkle_consistency_verify(2, 8, r2, r8, proof, len), -FS_EAUTH);
	ASSERT_EQ(merkle_consistency_verify(2, 5, r5, r2, proof, len), -FS_EAUTH);
	ASSERT_EQ(merkle_inclusion_proof(leaves, 8, 8, proof, &len), -EINVAL);
	ASSERT_EQ(merkle_consistency_proof(leaves, 8, 0, proof, &len), -EINVAL);
}

TEST(merkle_every_proof_verifies_and_tampering_fails)
{
	enum { N = 40 };
	merkle_hash leaves[N], roots[N + 1], proof[MERKLE_MAX_PROOF];
	size_t len;

	for (int i = 0; i < N; i++) {
		uint8_t e[2] = { (uint8_t)i, (uint8_t)(i * 7) };

		merkle_leaf_hash(e, sizeof(e), leaves[i]);
	}
	for (uint64_t n = 0; n <= N; n++)
		merkle_root(leaves, n, roots[n]);
	for (uint64_t n = 1; n <= N; n++) {
		for (uint64_t m = 0; m < n; m++) {
			ASSERT_OK(merkle_inclusion_proof(leaves, n, m, proof, &len));
			ASSERT_OK(merkle_inclusion_verify(leaves[m], m, n, proof, len, roots[n]));
			/* Another leaf, or another tree's root: refused. */
			ASSERT_EQ(merkle_inclusion_verify(leaves[(m + 1) % n], m, n, proof, len,
							  roots[n]),
				  n == 1 ? 0 : -FS_EAUTH);
			/* (Size alone is not bound: a proof for leaf 0 of 3 also
			 * fits "leaf 0 of 4" with the same root; the root is what
			 * a checkpoint signs together with its size.) */
			if (m < n - 1)
				ASSERT_EQ(merkle_inclusion_verify(leaves[m], m, n, proof, len,
								  roots[n - 1]),
					  -FS_EAUTH);
			if (len) {
				proof[len - 1][0] ^= 1;
				ASSERT_EQ(merkle_inclusion_verify(leaves[m], m, n, proof, len,
								  roots[n]),
					  -FS_EAUTH);
			}
		}
		for (uint64_t m = 1; m <= n; m++) {
			ASSERT_OK(merkle_consistency_proof(leaves, n, m, proof, &len));
			ASSERT_OK(merkle_consistency_verify(m, n, roots[m], roots[n], proof, len));
			/* A rewritten history: the old root of another tree. */
			if (m > 1)
				ASSERT_EQ(merkle_consistency_verify(m, n, roots[m - 1], roots[n],
								    proof, len),
					  -FS_EAUTH);
			if (len) {
				proof[0][5] ^= 0x80;
				ASSERT_EQ(merkle_consistency_verify(m, n, roots[m], roots[n], proof,
								    len),
					  -FS_EAUTH);
			}
		}
	}
}

/* golang.org/x/mod/sumdb/note note_test.go: the PeterNeumann key. */
#define GO_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define GO_SKEY_B64 "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
#define GO_TEXT                                                                                    \
	"If you think cryptography is the answer to your problem,\n"                               \
	"then you don't know what your problem is.\n"
#define GO_NOTE                                                                                    \
	GO_TEXT "\n\xe2\x80\x94 PeterNeumann "                                                     \
		"x08go/ZJkuBS9UG/"                                                                 \
		"SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6"               \
		"RyyBwJnAM=\n"

TEST(note_go_sumdb_vector)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], seed[1 + crypto_sign_SEEDBYTES];
	uint8_t pk2[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	char name[NOTE_NAME_MAX + 1], vkey[256], *signed_note = NULL, *copy;
	size_t len = 0, text_len = 0;

	ASSERT_OK(note_vkey_parse(GO_VKEY, name, pk));
	ASSERT_STR_EQ(name, "PeterNeumann");
	ASSERT_OK(note_vkey_format(name, pk, vkey, sizeof(vkey)));
	ASSERT_STR_EQ(vkey, GO_VKEY);
	/* Ed25519 is deterministic: the same key signs the same bytes. */
	ASSERT_OK(sodium_base642bin(seed, sizeof(seed), GO_SKEY_B64, strlen(GO_SKEY_B64), NULL,
				    &len, NULL, sodium_base64_VARIANT_ORIGINAL));
	ASSERT_EQ(len, sizeof(seed));
	ASSERT_EQ(seed[0], 0x01);
	ASSERT_OK(crypto_sign_seed_keypair(pk2, sk, seed + 1));
	ASSERT_MEM_EQ(pk, pk2, sizeof(pk));
	ASSERT_OK(note_sign(GO_TEXT, "PeterNeumann", sk, &signed_note));
	ASSERT_STR_EQ(signed_note, GO_NOTE);
	ASSERT_OK(note_verify(GO_NOTE, strlen(GO_NOTE), "PeterNeumann", pk, &text_len));
	ASSERT_EQ(text_len, strlen(GO_TEXT));
	/* One changed letter, another name, another key: refused. */
	copy = strdup(GO_NOTE);
	copy[10] = 'C';
	ASSERT_EQ(note_verify(copy, strlen(copy), "PeterNeumann", pk, &text_len), -FS_EAUTH);
	ASSERT_EQ(note_verify(GO_NOTE, strlen(GO_NOTE), "EnochRoot", pk, &text_len), -FS_EAUTH);
	pk2[0] ^= 1;
	ASSERT_EQ(note_verify(GO_NOTE, strlen(GO_NOTE), "PeterNeumann", pk2, &text_len), -FS_EAUTH);
	/* A key ID that does not match its name and key is refused. */
	ASSERT_EQ(note_vkey_parse(
			  "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
			  name, pk2),
		  -EINVAL);
	/* Text a note cannot carry. */
	ASSERT_EQ(note_sign("no newline", "x", sk, &copy), -EINVAL);
	ASSERT_EQ(note_sign("a\n\nb\n", "x", sk, &copy), -EINVAL);
	ASSERT_EQ(note_sign("a\n", "bad name", sk, &copy), -EINVAL);
	free(signed_note);
	free(copy);
}

TEST(checkpoint_roundtrip_and_strict)
{
	merkle_hash root, back;
	char text[512], origin[NOTE_NAME_MAX + 1];
	uint64_t size = 0;

	memset(root, 0xab, sizeof(root));
	ASSERT_OK(
		checkpoint_format("fieldsync.invalid/hq/0123abcd", 1234, root, text, sizeof(text)));
	ASSERT_STR_EQ(text, "fieldsync.invalid/hq/0123abcd\n1234\n"
			    "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n");
	ASSERT_OK(checkpoint_parse(text, strlen(text), origin, &size, back));
	ASSERT_STR_EQ(origin, "fieldsync.invalid/hq/0123abcd");
	ASSERT_EQ(size, 1234);
	ASSERT_MEM_EQ(root, back, sizeof(root));
	ASSERT_EQ(checkpoint_parse("o\n012\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n", 50,
				   origin, &size, back),
		  -EINVAL);
	ASSERT_EQ(checkpoint_parse("o\n12\nshort=\n", 13, origin, &size, back), -EINVAL);
	ASSERT_EQ(checkpoint_parse("o\n12", 4, origin, &size, back), -EINVAL);
}
