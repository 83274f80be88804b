/* tlspin.h - the TLS pin an enrolment token carries.
 *
 * SHA-256 of the SubjectPublicKeyInfo of the first certificate in a PEM
 * file: what curl's CURLOPT_PINNEDPUBLICKEY "sha256//..." compares.
 * Errors: -errno when the file cannot be read, -FS_EFORMAT when it holds
 * no certificate.  Thread-safe.
 */
#ifndef FS_TLSPIN_H
#define FS_TLSPIN_H

#include <stdint.h>

#include "crypto/fserr.h"

#define TLSPIN_BYTES 32

int tlspin_from_cert(const char *path, uint8_t out[TLSPIN_BYTES], struct fs_error *err) FS_WUR;

#endif
