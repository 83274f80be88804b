/* gen_downset_vector.c - writes tests/vectors/downset-v1.hex, or with
 * the argument 2, downset-v2.hex.
 *
 * Sealing uses a fresh ephemeral key, so a down-set is not reproducible
 * byte for byte; the vector is generated once, committed, and from then
 * on must decode and verify exactly as docs/PROTOCOL.md ("Down-set test
 * vector") says.  Run: build/tests/gen_downset_vector [2] > FILE.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sync/downset.h"
#include "tests/vectors/downset_vector.h"

int main(int argc, char **argv)
{
	uint8_t hq_pk[crypto_sign_PUBLICKEYBYTES], hq_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES], box_sk[crypto_box_SECRETKEYBYTES];
	uint8_t device[CHANGESET_DEVICE_BYTES], *buf = NULL, hash[32];
	struct fs_error err = { 0 };
	struct downset d;
	size_t len;
	int r;

	if (sodium_init() < 0)
		return 1;
	dvector_keys(hq_pk, hq_sk, box_pk, box_sk, device);
	r = argc > 1 && argv[1][0] == '2' ? dvector_downset_v2(&d, device)
					  : dvector_downset(&d, device);
	if (r < 0 || downset_encode(&d, box_pk, hq_sk, &buf, &len, &err) < 0) {
		fprintf(stderr, "gen_downset_vector: %s\n", r < 0 ? "out of memory" : err.msg);
		downset_clear(&d);
		return 1;
	}
	for (size_t i = 0; i < len; i++)
		printf("%02x%s", buf[i], (i % 32 == 31 || i + 1 == len) ? "\n" : "");
	changeset_hash(buf, len, hash);
	fprintf(stderr, "hash ");
	for (int i = 0; i < 32; i++)
		fprintf(stderr, "%02x", hash[i]);
	fprintf(stderr, "\n");
	downset_clear(&d);
	free(buf);
	return 0;
}
