/* bench_aead.c - what sealing and opening one store page costs, by AEAD.
 *
 * The store seals every 4 KiB page it writes and opens every page it
 * reads past SQLite's cache (agent/vfs.h).  This measures, on this
 * machine and in one run, each candidate libsodium offers on a page of
 * 4056 bytes with 37 bytes of associated data, as the store seals:
 *
 *   - XChaCha20-Poly1305 (IETF), what the store uses;
 *   - ChaCha20-Poly1305 (IETF), the same without the HChaCha20 subkey;
 *   - AES-256-GCM, only where the CPU has AES-NI and CLMUL (libsodium
 *     offers it nowhere else);
 *   - AEGIS-256, where the libsodium in use has it (1.0.19 and later;
 *     Debian 12 ships 1.0.18, so it is reported as missing);
 *
 * and, as the baseline every ratio is against, a pread(2) of one page
 * from the page cache, with randombytes_buf(24) (a random nonce per
 * page, one getrandom(2) each) beside it.  Speed is reported, never
 * asserted.
 *
 *   bench_aead [pages]   (default 200000 per measurement)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#define PAGE 4096
#define DATA (PAGE - 40) /* the store's page less nonce and tag */
#define AD 37		 /* store id, kind, number and the WAL binding */
#define DEFAULT_PAGES 200000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef int (*seal_fn)(unsigned char *c, unsigned char *tag, const unsigned char *m,
		       unsigned long long mlen, const unsigned char *ad, unsigned long long adlen,
		       const unsigned char *npub, const unsigned char *k);
typedef int (*open_fn)(unsigned char *m, const unsigned char *c, unsigned long long clen,
		       const unsigned char *tag, const unsigned char *ad, unsigned long long adlen,
		       const unsigned char *npub, const unsigned char *k);

static int xchacha_seal(unsigned char *c, unsigned char *tag, const unsigned char *m,
			unsigned long long mlen, const unsigned char *ad, unsigned long long adlen,
			const unsigned char *npub, const unsigned char *k)
{
	return crypto_aead_xchacha20poly1305_ietf_encrypt_detached(c, tag, NULL, m, mlen, ad, adlen,
								   NULL, npub, k);
}

static int xchacha_open(unsigned char *m, const unsigned char *c, unsigned long long clen,
			const unsigned char *tag, const unsigned char *ad, unsigned long long adlen,
			const unsigned char *npub, const unsigned char *k)
{
	return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(m, NULL, c, clen, tag, ad, adlen,
								   npub, k);
}

static int chacha_seal(unsigned char *c, unsigned char *tag, const unsigned char *m,
		       unsigned long long mlen, const unsigned char *ad, unsigned long long adlen,
		       const unsigned char *npub, const unsigned char *k)
{
	return crypto_aead_chacha20poly1305_ietf_encrypt_detached(c, tag, NULL, m, mlen, ad, adlen,
								  NULL, npub, k);
}

static int chacha_open(unsigned char *m, const unsigned char *c, unsigned long long clen,
		       const unsigned char *tag, const unsigned char *ad, unsigned long long adlen,
		       const unsigned char *npub, const unsigned char *k)
{
	return crypto_aead_chacha20poly1305_ietf_decrypt_detached(m, NULL, c, clen, tag, ad, adlen,
								  npub, k);
}

static int aes_seal(unsigned char *c, unsigned char *tag, const unsigned char *m,
		    unsigned long long mlen, const unsigned char *ad, unsigned long long adlen,
		    const unsigned char *npub, const unsigned char *k)
{
	return crypto_aead_aes256gcm_encrypt_detached(c, tag, NULL, m, mlen, ad, adlen, NULL, npub,
						      k);
}

static int aes_open(unsigned char *m, const unsigned char *c, unsigned long long clen,
		    const unsigned char *tag, const unsigned char *ad, unsigned long long adlen,
		    const unsigned char *npub, const unsigned char *k)
{
	return crypto_aead_aes256gcm_decrypt_detached(m, NULL, c, clen, tag, ad, adlen, npub, k);
}

struct aead {
	const char *name;
	seal_fn seal;
	open_fn open;
	int available;
};

/* Seconds per page to seal, then to open, n pages; -1 when a page does
 * not open (the measurement would be of a failure). */
static int measure(const struct aead *a, size_t n, const unsigned char *key, double *seal_s,
		   double *open_s)
{
	static unsigned char page[PAGE], out[PAGE], ad[AD], nonce[32], tag[16];
	double t0;

	randombytes_buf(page, sizeof(page));
	randombytes_buf(ad, sizeof(ad));
	randombytes_buf(nonce, sizeof(nonce));
	t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		nonce[0] = (unsigned char)i; /* a new nonce each page, as the store's counter */
		a->seal(out, tag, page, DATA, ad, AD, nonce, key);
	}
	*seal_s = (now_s() - t0) / (double)n;
	t0 = now_s();
	for (size_t i = 0; i < n; i++)
		if (a->open(page, out, DATA, tag, ad, AD, nonce, key) != 0) {
			fprintf(stderr, "bench_aead: %s: a sealed page did not open\n", a->name);
			return -1;
		}
	*open_s = (now_s() - t0) / (double)n;
	return 0;
}

/* Seconds per pread(2) of one page of a file in the page cache. */
static int measure_pread(size_t n, double *ret)
{
	char path[] = "/tmp/bench_aead.XXXXXX";
	static unsigned char page[PAGE];
	int fd = mkstemp(path);
	double t0;
	int r = -1;

	if (fd < 0) {
		fprintf(stderr, "bench_aead: temp file: %s\n", strerror(errno));
		return -1;
	}
	unlink(path);
	for (int i = 0; i < 256; i++)
		if (write(fd, page, PAGE) != PAGE) {
			fprintf(stderr, "bench_aead: write temp file: %s\n", strerror(errno));
			goto out;
		}
	t0 = now_s();
	for (size_t i = 0; i < n; i++)
		if (pread(fd, page, PAGE, (off_t)(i % 256) * PAGE) != PAGE) {
			fprintf(stderr, "bench_aead: pread: %s\n", strerror(errno));
			goto out;
		}
	*ret = (now_s() - t0) / (double)n;
	r = 0;
out:
	close(fd);
	return r;
}

static double measure_random(size_t n)
{
	unsigned char nonce[24];
	double t0 = now_s();

	for (size_t i = 0; i < n; i++)
		randombytes_buf(nonce, sizeof(nonce));
	return (now_s() - t0) / (double)n;
}

int main(int argc, char **argv)
{
	struct aead aeads[] = {
		{ "XChaCha20-Poly1305", xchacha_seal, xchacha_open, 1 },
		{ "ChaCha20-Poly1305", chacha_seal, chacha_open, 1 },
		{ "AES-256-GCM", aes_seal, aes_open, 0 },
	};
	unsigned char key[32];
	double pread_s = 0, rnd_s, seal_s, open_s;
	size_t n = DEFAULT_PAGES;
	char *end = NULL;

	if (argc == 2) {
		errno = 0;
		n = strtoul(argv[1], &end, 10);
	}
	if (argc > 2 ||
	    (argc == 2 && (errno || *end || argv[1][0] == '-' || n < 1 || n > 100000000))) {
		fprintf(stderr, "usage: bench_aead [pages, 1 to 100000000]\n");
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "bench_aead: cannot start libsodium\n");
		return 1;
	}
	aeads[2].available = crypto_aead_aes256gcm_is_available();
	randombytes_buf(key, sizeof(key));
	if (measure_pread(n, &pread_s) < 0)
		return 1;
	rnd_s = measure_random(n);
	printf("bench_aead: %zu pages of %d bytes each, libsodium %s\n", n, DATA,
	       sodium_version_string());
	printf("pread of a 4 KiB page (page cache): %.2f us\n", pread_s * 1e6);
	printf("randombytes_buf(24), a random nonce: %.2f us\n", rnd_s * 1e6);
	printf("row\tpage nonce: randombytes_buf(24)\t%.2f us\tpread %.2f us\t%.2f\n", rnd_s * 1e6,
	       pread_s * 1e6, rnd_s / pread_s);
	for (size_t i = 0; i < sizeof(aeads) / sizeof(aeads[0]); i++) {
		if (!aeads[i].available) {
			printf("%s: not available (no AES-NI and CLMUL)\n", aeads[i].name);
			continue;
		}
		if (measure(&aeads[i], n, key, &seal_s, &open_s) < 0)
			return 1;
		printf("%s: seal %.2f us, open %.2f us per page (%.2f and %.2f x a pread)\n",
		       aeads[i].name, seal_s * 1e6, open_s * 1e6, seal_s / pread_s,
		       open_s / pread_s);
		printf("row\tpage open: %s\t%.2f us\tpread %.2f us\t%.2f\n", aeads[i].name,
		       open_s * 1e6, pread_s * 1e6, open_s / pread_s);
		printf("row\tpage seal: %s\t%.2f us\tpread %.2f us\t%.2f\n", aeads[i].name,
		       seal_s * 1e6, pread_s * 1e6, seal_s / pread_s);
	}
#ifdef crypto_aead_aegis256_KEYBYTES
	printf("AEGIS-256: in this libsodium, not yet measured here\n");
#else
	printf("AEGIS-256: not in libsodium %s (it came in 1.0.19)\n", sodium_version_string());
#endif
	sodium_memzero(key, sizeof(key));
	return 0;
}
