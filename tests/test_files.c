/* test_files.c - HQ's sealed store of attached files (hq/files.h): what
 * goes in comes out; a name that is not the bytes' hash is refused; and
 * a stored file that was changed, cut short, renamed or read with
 * another HQ's key is found out.  Nothing of a file is on disk in the
 * clear. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/identity.h"
#include "hq/files.h"
#include "tests/test.h"

#define MARKER "FIELDSYNC-HQ-FILE-MARKER-51c9"

static const char *hex_of(const uint8_t *b, size_t n)
{
	static char hex[HQFILES_HEX + 1];
	uint8_t d[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(d, b, n);
	sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
	return hex;
}

static FILE *stream_of(const uint8_t *b, size_t n)
{
	FILE *f = tmpfile();

	ASSERT_TRUE(f != NULL);
	ASSERT_EQ(fwrite(b, 1, n, f), n);
	rewind(f);
	return f;
}

/* What get gives back, and its code. */
static int get(const struct hqfiles *f, const char *hex, char **ret, size_t *len,
	       struct fs_error *err)
{
	FILE *out = open_memstream(ret, len);
	int r;

	ASSERT_TRUE(out != NULL);
	r = hqfiles_get(f, hex, out, err);
	fclose(out);
	return r;
}

/* Where the stored file of hex is, to change it as an attacker would. */
static void stored_at(const char *dir, const char *hex, char path[2048])
{
	snprintf(path, 2048, "%.1024s/%s/%.2s/%s", dir, HQFILES_DIR, hex, hex);
}

TEST(hqfiles_sealed_and_checked)
{
	size_t n = 3 * HQFILES_BLOCK + 1234, len = 0;
	uint8_t *data = malloc(n);
	struct identity *hq = NULL, *other = NULL;
	struct hqfiles *f = NULL, *g = NULL;
	struct fs_error err = { 0 };
	char hex[HQFILES_HEX + 1], dir[1024], *back = NULL, *disk = NULL, cmd[6400];
	char at_path[2048], wrong_path[2048];
	FILE *in;
	size_t dlen = 0;

	ASSERT_TRUE(data != NULL);
	randombytes_buf(data, n);
	memcpy(data + 100, MARKER, strlen(MARKER));
	memcpy(hex, hex_of(data, n), sizeof(hex));
	snprintf(dir, sizeof(dir), "%s/hq", test_tmpdir());
	ASSERT_EQ(mkdir(dir, 0700), 0);
	stored_at(dir, hex, at_path);
	ASSERT_OK(identity_generate(&hq));
	ASSERT_OK(identity_generate(&other));
	ASSERT_OK(hqfiles_open(dir, hq, &f, &err));

	/* In and out, whole, once. */
	ASSERT_EQ(hqfiles_has(f, hex), 0);
	ASSERT_EQ(get(f, hex, &back, &len, &err), -FS_ENOTFOUND);
	free(back);
	in = stream_of(data, n);
	ASSERT_OK(hqfiles_put(f, hex, in, &err));
	fclose(in);
	ASSERT_EQ(hqfiles_has(f, hex), 1);
	ASSERT_OK(get(f, hex, &back, &len, &err));
	ASSERT_EQ(len, n);
	ASSERT_TRUE(memcmp(back, data, n) == 0);
	free(back);
	in = stream_of(data, n);
	ASSERT_OK(hqfiles_put(f, hex, in, &err)); /* held: nothing written */
	fclose(in);

	/* Nothing of it in the clear: the file on disk has no marker. */
	in = fopen(at_path, "r");
	ASSERT_TRUE(in != NULL);
	{
		FILE *m = open_memstream(&disk, &dlen);
		int ch;

		while ((ch = fgetc(in)) != EOF)
			fputc(ch, m);
		fclose(m);
	}
	fclose(in);
	ASSERT_TRUE(memmem(disk, dlen, MARKER, strlen(MARKER)) == NULL);
	ASSERT_TRUE(dlen > n);

	/* A name that is not the bytes' hash keeps nothing. */
	{
		char wrong[HQFILES_HEX + 1];

		memcpy(wrong, hex_of((const uint8_t *)"x", 1), sizeof(wrong));
		in = stream_of(data, n);
		ASSERT_EQ(hqfiles_put(f, wrong, in, &err), -FS_EVALID);
		ASSERT_STR_CONTAINS(err.msg, "do not hash to its name");
		fclose(in);
		ASSERT_EQ(hqfiles_has(f, wrong), 0);
		/* The stored file copied under that name does not open. */
		stored_at(dir, wrong, wrong_path);
		snprintf(cmd, sizeof(cmd), "mkdir -p %s/%s/%.2s && cp %s %s", dir, HQFILES_DIR,
			 wrong, at_path, wrong_path);
		ASSERT_EQ(system(cmd), 0);
		ASSERT_EQ(get(f, wrong, &back, &len, &err), -FS_ECORRUPT);
		free(back);
	}
	ASSERT_EQ(hqfiles_put(f, "not-hex", NULL, &err), -FS_EUSAGE);

	/* Another HQ's key reads nothing. */
	ASSERT_OK(hqfiles_open(dir, other, &g, &err));
	ASSERT_EQ(get(g, hex, &back, &len, &err), -FS_ECORRUPT);
	free(back);

	/* A byte changed anywhere, or the file cut short, is found out. */
	for (size_t at = 0; at < dlen; at += dlen / 7) {
		FILE *w = fopen(at_path, "r+b");

		ASSERT_TRUE(w != NULL);
		ASSERT_EQ(fseek(w, (long)at, SEEK_SET), 0);
		fputc(disk[at] ^ 0x01, w);
		fclose(w);
		ASSERT_EQ(get(f, hex, &back, &len, &err), -FS_ECORRUPT);
		ASSERT_STR_CONTAINS(err.msg, "fails its seal or its hash");
		free(back);
		w = fopen(at_path, "r+b");
		ASSERT_EQ(fseek(w, (long)at, SEEK_SET), 0);
		fputc(disk[at], w);
		fclose(w);
	}
	ASSERT_OK(get(f, hex, &back, &len, &err));
	free(back);
	ASSERT_EQ(truncate(at_path, (off_t)(dlen - 10)), 0);
	ASSERT_EQ(get(f, hex, &back, &len, &err), -FS_ECORRUPT);
	free(back);
	/* ... as is one with something after its final block. */
	{
		FILE *w = fopen(at_path, "wb");

		ASSERT_EQ(fwrite(disk, 1, dlen, w), dlen);
		fputc('x', w);
		fclose(w);
	}
	ASSERT_EQ(get(f, hex, &back, &len, &err), -FS_ECORRUPT);
	free(back);

	free(disk);
	free(data);
	hqfiles_close(f);
	hqfiles_close(g);
	identity_free(hq);
	identity_free(other);
}
