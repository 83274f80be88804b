/* note.c - signed notes and checkpoints (see note.h). */
#include "sync/note.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EM_DASH "\xe2\x80\x94"

static int name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > NOTE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] <= 0x20 || name[i] == '+' || name[i] == 0x7f)
			return 0;
	return 1;
}

void note_key_id(const char *name, const uint8_t pk[crypto_sign_PUBLICKEYBYTES], uint8_t out[4])
{
	crypto_hash_sha256_state st;
	uint8_t h[crypto_hash_sha256_BYTES];
	const uint8_t sep[2] = { 0x0a, 0x01 };

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
	crypto_hash_sha256_update(&st, sep, 2);
	crypto_hash_sha256_update(&st, pk, crypto_sign_PUBLICKEYBYTES);
	crypto_hash_sha256_final(&st, h);
	memcpy(out, h, 4);
}

/* Text a note may carry: ends in '\n', no empty line, no control bytes. */
static int text_ok(const char *text, size_t len)
{
	if (len == 0 || text[len - 1] != '\n' || text[0] == '\n')
		return 0;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)text[i] < 0x20 && text[i] != '\n')
			return 0;
		if (text[i] == '\n' && i + 1 < len && text[i + 1] == '\n')
			return 0;
	}
	return 1;
}

int note_sign(const char *text, const char *name, const uint8_t sk[crypto_sign_SECRETKEYBYTES],
	      char **ret)
{
	uint8_t blob[4 + crypto_sign_BYTES];
	char b64[sodium_base64_ENCODED_LEN(sizeof(blob), sodium_base64_VARIANT_ORIGINAL)];
	size_t len = strlen(text), total;
	char *out;

	if (!name_ok(name) || !text_ok(text, len) || len > NOTE_MAX)
		return -EINVAL;
	/* The public key is the second half of libsodium's secret key. */
	note_key_id(name, sk + crypto_sign_SEEDBYTES, blob);
	crypto_sign_detached(blob + 4, NULL, (const uint8_t *)text, len, sk);
	sodium_bin2base64(b64, sizeof(b64), blob, sizeof(blob), sodium_base64_VARIANT_ORIGINAL);
	total = len + 1 + strlen(EM_DASH " ") + strlen(name) + 1 + strlen(b64) + 2;
	out = malloc(total);
	if (!out)
		return -ENOMEM;
	snprintf(out, total, "%s\n" EM_DASH " %s %s\n", text, name, b64);
	*ret = out;
	return 0;
}

int note_verify(const char *note, size_t len, const char *name,
		const uint8_t pk[crypto_sign_PUBLICKEYBYTES], size_t *ret_text_len)
{
	uint8_t want[4], blob[4 + crypto_sign_BYTES + 1];
	size_t text_len = 0, nlen = strlen(name), blen;
	const char *p, *end = note + len;
	int found = 0;

	if (len == 0 || len > NOTE_MAX || note[len - 1] != '\n' || !name_ok(name))
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (note[i] == '\0' || ((unsigned char)note[i] < 0x20 && note[i] != '\n'))
			return -EINVAL;
	/* The text ends at the last blank line. */
	for (size_t i = len - 1; i > 0; i--)
		if (note[i - 1] == '\n' && note[i] == '\n') {
			text_len = i;
			break;
		}
	if (text_len == 0)
		return -EINVAL;
	note_key_id(name, pk, want);
	for (p = note + text_len + 1; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *sig;

		if (!eol || (size_t)(eol - p) < strlen(EM_DASH " ") + 2 ||
		    memcmp(p, EM_DASH " ", strlen(EM_DASH " ")) != 0)
			return -EINVAL;
		p += strlen(EM_DASH " ");
		sig = memchr(p, ' ', (size_t)(eol - p));
		if (!sig)
			return -EINVAL;
		/* Only our key's line counts; others are ignored (the spec). */
		if ((size_t)(sig - p) == nlen && memcmp(p, name, nlen) == 0 &&
		    sodium_base642bin(blob, sizeof(blob), sig + 1, (size_t)(eol - sig - 1), NULL,
				      &blen, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
		    blen == sizeof(blob) - 1 && memcmp(blob, want, 4) == 0) {
			if (crypto_sign_verify_detached(blob + 4, (const uint8_t *)note, text_len,
							pk) != 0)
				return -FS_EAUTH;
			found = 1;
		}
		p = eol + 1;
	}
	if (!found)
		return -FS_EAUTH;
	*ret_text_len = text_len;
	return 0;
}

int note_vkey_format(const char *name, const uint8_t pk[crypto_sign_PUBLICKEYBYTES], char *out,
		     size_t cap)
{
	uint8_t id[4], key[1 + crypto_sign_PUBLICKEYBYTES] = { 0x01 };
	char b64[sodium_base64_ENCODED_LEN(sizeof(key), sodium_base64_VARIANT_ORIGINAL)];

	if (!name_ok(name))
		return -EINVAL;
	note_key_id(name, pk, id);
	memcpy(key + 1, pk, crypto_sign_PUBLICKEYBYTES);
	sodium_bin2base64(b64, sizeof(b64), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
	if ((size_t)snprintf(out, cap, "%s+%02x%02x%02x%02x+%s", name, id[0], id[1], id[2], id[3],
			     b64) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

int note_vkey_parse(const char *vkey, char name[NOTE_NAME_MAX + 1],
		    uint8_t pk[crypto_sign_PUBLICKEYBYTES])
{
	const char *p1 = strchr(vkey, '+'), *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
	uint8_t key[1 + crypto_sign_PUBLICKEYBYTES + 1], id[4], want[4];
	size_t klen, idlen;

	if (!p1 || !p2 || (size_t)(p1 - vkey) > NOTE_NAME_MAX || p2 - p1 - 1 != 8)
		return -EINVAL;
	memcpy(name, vkey, (size_t)(p1 - vkey));
	name[p1 - vkey] = '\0';
	if (!name_ok(name) || sodium_hex2bin(id, sizeof(id), p1 + 1, 8, NULL, &idlen, NULL) != 0 ||
	    idlen != 4 ||
	    sodium_base642bin(key, sizeof(key), p2 + 1, strlen(p2 + 1), NULL, &klen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    klen != 1 + crypto_sign_PUBLICKEYBYTES || key[0] != 0x01)
		return -EINVAL;
	note_key_id(name, key + 1, want);
	if (memcmp(id, want, 4) != 0)
		return -EINVAL;
	memcpy(pk, key + 1, crypto_sign_PUBLICKEYBYTES);
	return 0;
}

int checkpoint_format(const char *origin, uint64_t size, const merkle_hash root, char *out,
		      size_t cap)
{
	char b64[sodium_base64_ENCODED_LEN(MERKLE_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL)];

	if (!origin[0] || strlen(origin) > NOTE_NAME_MAX || strchr(origin, '\n'))
		return -EINVAL;
	sodium_bin2base64(b64, sizeof(b64), root, MERKLE_HASH_BYTES,
			  sodium_base64_VARIANT_ORIGINAL);
	if ((size_t)snprintf(out, cap, "%s\n%llu\n%s\n", origin, (unsigned long long)size, b64) >=
	    cap)
		return -ENAMETOOLONG;
	return 0;
}

int checkpoint_parse(const char *text, size_t len, char *origin, uint64_t *ret_size,
		     merkle_hash root)
{
	const char *l1 = memchr(text, '\n', len), *l2, *l3, *p;
	uint64_t size = 0;
	size_t rlen;

	if (!l1 || l1 == text || (size_t)(l1 - text) > NOTE_NAME_MAX)
		return -EINVAL;
	l2 = memchr(l1 + 1, '\n', len - (size_t)(l1 + 1 - text));
	l3 = l2 ? memchr(l2 + 1, '\n', len - (size_t)(l2 + 1 - text)) : NULL;
	if (!l2 || !l3 || l2 == l1 + 1 || l2 - l1 - 1 > 19 || (l1[1] == '0' && l2 - l1 > 2))
		return -EINVAL;
	for (p = l1 + 1; p < l2; p++) {
		if (*p < '0' || *p > '9' || size > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		size = size * 10 + (uint64_t)(*p - '0');
	}
	if (sodium_base642bin(root, MERKLE_HASH_BYTES, l2 + 1, (size_t)(l3 - l2 - 1), NULL, &rlen,
			      NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    rlen != MERKLE_HASH_BYTES)
		return -EINVAL;
	memcpy(origin, text, (size_t)(l1 - text));
	origin[l1 - text] = '\0';
	*ret_size = size;
	return 0;
}

void checkpoint_origin(const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES],
		       char out[NOTE_NAME_MAX + 1])
{
	uint8_t h[crypto_hash_sha256_BYTES];
	char hex[17];

	crypto_hash_sha256(h, sign_pk, crypto_sign_PUBLICKEYBYTES);
	sodium_bin2hex(hex, sizeof(hex), h, 8);
	snprintf(out, NOTE_NAME_MAX + 1, "fieldsync-hq/%s", hex);
}
