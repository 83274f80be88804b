/* test_crypto.c - crypto/: AEAD, key files, Argon2id parameters, identity. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "crypto/identity.h"
#include "crypto/keyfile.h"
#include "crypto/pwhash.h"
#include "crypto/secmem.h"
#include "tests/test.h"

TEST(aead_roundtrip_and_tamper)
{
	uint8_t key[AEAD_KEYBYTES], other[AEAD_KEYBYTES], c[64 + AEAD_OVERHEAD], m[64];
	const char *msg = "Ружичић Ružičić visit notes";
	size_t n = strlen(msg);

	randombytes_buf(key, sizeof(key));
	randombytes_buf(other, sizeof(other));
	aead_seal(c, (const uint8_t *)msg, n, (const uint8_t *)"ad", 2, key);
	ASSERT_OK(aead_open(m, c, n + AEAD_OVERHEAD, (const uint8_t *)"ad", 2, key));
	ASSERT_MEM_EQ(m, msg, n);
	ASSERT_EQ(aead_open(m, c, n + AEAD_OVERHEAD, (const uint8_t *)"ad", 2, other), -FS_EAUTH);
	ASSERT_EQ(aead_open(m, c, n + AEAD_OVERHEAD, (const uint8_t *)"AD", 2, key), -FS_EAUTH);
	for (size_t i = 0; i < n + AEAD_OVERHEAD; i++) {
		c[i] ^= 0x01;
		ASSERT_EQ(aead_open(m, c, n + AEAD_OVERHEAD, (const uint8_t *)"ad", 2, key),
			  -FS_EAUTH);
		c[i] ^= 0x01;
	}
	ASSERT_EQ(aead_open(m, c, AEAD_OVERHEAD - 1, NULL, 0, key), -FS_EFORMAT);
}

static void path_in_tmp(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", test_tmpdir(), name);
}

TEST(keyfile_roundtrip_mode_0600)
{
	uint8_t payload[100], *back = NULL;
	struct fs_error err = { 0 };
	char path[4096];
	struct stat st;
	size_t len;

	path_in_tmp(path, sizeof(path), "k");
	randombytes_buf(payload, sizeof(payload));
	umask(0);
	ASSERT_OK(keyfile_write(path, KEYFILE_WRAPKEY, payload, sizeof(payload), KEYFILE_NO_REPLACE,
				&err));
	umask(022);
	ASSERT_OK(stat(path, &st));
	ASSERT_EQ(st.st_mode & 07777, 0600);
	ASSERT_OK(keyfile_read(path, KEYFILE_WRAPKEY, &back, &len, &err));
	ASSERT_EQ(len, sizeof(payload));
	ASSERT_MEM_EQ(back, payload, len);
	secmem_free(back);
	/* Wrong kind, and never silently replaced. */
	ASSERT_EQ(keyfile_read(path, KEYFILE_DEVICE, &back, &len, &err), -FS_EFORMAT);
	ASSERT_EQ(keyfile_write(path, KEYFILE_WRAPKEY, payload, 10, KEYFILE_NO_REPLACE, &err),
		  -FS_EEXIST);
	ASSERT_OK(keyfile_read(path, KEYFILE_WRAPKEY, &back, &len, &err));
	ASSERT_EQ(len, sizeof(payload));
	secmem_free(back);
}

TEST(keyfile_refuses_readable_by_others)
{
	uint8_t payload[32] = { 1 }, *back = NULL;
	struct fs_error err = { 0 };
	char path[4096];
	size_t len;

	path_in_tmp(path, sizeof(path), "k");
	ASSERT_OK(keyfile_write(path, KEYFILE_WRAPKEY, payload, sizeof(payload), 0, &err));
	ASSERT_OK(chmod(path, 0640));
	ASSERT_EQ(keyfile_read(path, KEYFILE_WRAPKEY, &back, &len, &err), -FS_EKEYPERM);
	ASSERT_STR_CONTAINS(err.msg, path);
	ASSERT_STR_CONTAINS(err.msg, "0640");
	ASSERT_OK(chmod(path, 0604));
	ASSERT_EQ(keyfile_read(path, KEYFILE_WRAPKEY, &back, &len, &err), -FS_EKEYPERM);
	ASSERT_OK(chmod(path, 0600));
	ASSERT_OK(keyfile_read(path, KEYFILE_WRAPKEY, &back, &len, &err));
	secmem_free(back);
}

TEST(keyfile_rejects_damage)
{
	uint8_t payload[32], buf[256], *back = (uint8_t *)1;
	struct fs_error err = { 0 };
	char path[4096];
	ssize_t n;
	size_t len;
	int fd;

	path_in_tmp(path, sizeof(path), "k");
	randombytes_buf(payload, sizeof(payload));
	ASSERT_OK(keyfile_write(path, KEYFILE_WRAPKEY, payload, sizeof(payload), 0, &err));
	fd = open(path, O_RDWR);
	ASSERT_GE(fd, 0);
	n = read(fd, buf, sizeof(buf));
	ASSERT_EQ(n, KEYFILE_HEADER_BYTES + 32 + KEYFILE_CHECK_BYTES);
	/* Every single flipped byte is caught before any key is used. */
	for (ssize_t i = 0; i < n; i++) {
		buf[i] ^= 0x40;
		ASSERT_EQ(pwrite(fd, buf, (size_t)n, 0), n);
		ASSERT_TRUE(keyfile_read(path, KEYFILE_WRAPKEY, &back, &len, &err) < 0);
		buf[i] ^= 0x40;
	}
	/* Truncated. */
	ASSERT_EQ(pwrite(fd, buf, (size_t)n, 0), n);
	ASSERT_OK(ftruncate(fd, n - 1));
	ASSERT_TRUE(keyfile_read(path, KEYFILE_WRAPKEY, &back, &len, &err) < 0);
	close(fd);
	ASSERT_TRUE(back == (uint8_t *)1); /* never written on failure */
}

TEST(pwhash_params_roundtrip_and_bounds)
{
	struct pwhash_params p, q;
	uint8_t enc[PWHASH_PARAMS_BYTES], k1[32], k2[32];
	enum pwhash_profile prof;

	ASSERT_OK(pwhash_profile_parse("interactive", &prof));
	ASSERT_EQ(pwhash_profile_parse("fast", &prof), -FS_EUSAGE);
	pwhash_params_new(PWHASH_INTERACTIVE, &p);
	pwhash_params_encode(&p, enc);
	ASSERT_OK(pwhash_params_decode(enc, &q));
	ASSERT_EQ(q.opslimit, p.opslimit);
	ASSERT_EQ(q.memlimit, p.memlimit);
	ASSERT_MEM_EQ(q.salt, p.salt, sizeof(p.salt));
	ASSERT_OK(pwhash_derive(k1, sizeof(k1), "correct horse", 13, &q));
	ASSERT_OK(pwhash_derive(k2, sizeof(k2), "correct horse", 13, &p));
	ASSERT_MEM_EQ(k1, k2, sizeof(k1));
	ASSERT_OK(pwhash_derive(k2, sizeof(k2), "correct horsf", 13, &p));
	ASSERT_TRUE(memcmp(k1, k2, sizeof(k1)) != 0);
	/* A crafted file may not ask for 1 pass or 64 GiB. */
	memset(enc + 1, 0, 8);
	enc[8] = 1; /* opslimit = 1 */
	ASSERT_EQ(pwhash_params_decode(enc, &q), -FS_EFORMAT);
	pwhash_params_encode(&p, enc);
	memset(enc + 9, 0, 8);
	enc[11] = 0x10; /* memlimit = 2^40 */
	ASSERT_EQ(pwhash_params_decode(enc, &q), -FS_EFORMAT);
	pwhash_params_encode(&p, enc);
	enc[0] = 2;
	ASSERT_EQ(pwhash_params_decode(enc, &q), -FS_EFORMAT);
}

TEST(identity_seal_roundtrip)
{
	uint8_t key[AEAD_KEYBYTES], sealed[IDENTITY_SEALED_BYTES], sig[crypto_sign_BYTES];
	struct identity *a = NULL, *b = NULL;

	randombytes_buf(key, sizeof(key));
	ASSERT_OK(identity_generate(&a));
	ASSERT_EQ(strlen(a->id), IDENTITY_ID_HEXLEN);
	ASSERT_OK(identity_seal(a, key, sealed));
	ASSERT_OK(identity_unseal(sealed, sizeof(sealed), key, &b));
	ASSERT_STR_EQ(a->id, b->id);
	crypto_sign_detached(sig, NULL, (const uint8_t *)"m", 1, b->sign_sk);
	ASSERT_OK(crypto_sign_verify_detached(sig, (const uint8_t *)"m", 1, a->sign_pk));
	ASSERT_MEM_EQ(a->box_sk, b->box_sk, crypto_box_SECRETKEYBYTES);
	identity_free(b);
	b = NULL;
	/* Swapping in someone else's public key is caught. */
	sealed[0] ^= 1;
	ASSERT_EQ(identity_unseal(sealed, sizeof(sealed), key, &b), -FS_EAUTH);
	sealed[0] ^= 1;
	key[0] ^= 1;
	ASSERT_EQ(identity_unseal(sealed, sizeof(sealed), key, &b), -FS_EAUTH);
	ASSERT_EQ(identity_unseal(sealed, sizeof(sealed) - 1, key, &b), -FS_EFORMAT);
	ASSERT_TRUE(b == NULL);
	identity_free(a);
	ASSERT_TRUE(identity_free(NULL) == NULL);
}
