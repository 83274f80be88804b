/* tlspin.c - SHA-256 of a certificate's SubjectPublicKeyInfo (GnuTLS). */
#include "hq/tlspin.h"

#include <errno.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

int tlspin_from_cert(const char *path, uint8_t out[TLSPIN_BYTES], struct fs_error *err)
{
	gnutls_datum_t pem = { NULL, 0 };
	gnutls_x509_crt_t crt = NULL;
	size_t n = TLSPIN_BYTES;
	int r = 0;

	if (gnutls_load_file(path, &pem) < 0)
		return fs_error_set(err, -ENOENT, "TLS certificate %s: cannot read", path);
	if (gnutls_x509_crt_init(&crt) < 0) {
		r = fs_error_set(err, -ENOMEM, "TLS certificate %s: out of memory", path);
		goto out;
	}
	/* GNUTLS_KEYID_USE_SHA256 hashes the DER SubjectPublicKeyInfo. */
	if (gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) < 0 ||
	    gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, out, &n) < 0 ||
	    n != TLSPIN_BYTES)
		r = fs_error_set(err, -FS_EFORMAT, "TLS certificate %s: no usable certificate",
				 path);
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	gnutls_free(pem.data);
	return r;
}
