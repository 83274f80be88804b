/* gen_changeset_vector.c - writes tests/vectors/changeset-v3.hex (version
 * 3, the default), changeset-v4.hex (argument 4) or changeset-v5.hex
 * (argument 5).
 *
 * Sealing uses a fresh ephemeral key, so a change set is not
 * reproducible byte for byte; the vector is generated once, committed,
 * and from then on must decode and verify exactly as docs/PROTOCOL.md
 * ("Test vectors") says.  Run: build/tests/gen_changeset_vector [3|4|5] > FILE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/changeset.h"
#include "tests/vectors/changeset_vector.h"

int main(int argc, char **argv)
{
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], sign_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES], box_sk[crypto_box_SECRETKEYBYTES];
	struct changeset_header h = { .seq = 1 };
	struct change ch[VECTOR_CHANGES];
	struct fs_error err = { 0 };
	uint8_t *buf = NULL, hash[32];
	size_t len;

	if (argc > 2 ||
	    (argc == 2 && strcmp(argv[1], "3") && strcmp(argv[1], "4") && strcmp(argv[1], "5"))) {
		fprintf(stderr, "usage: gen_changeset_vector [3|4|5]\n");
		return 2;
	}
	h.version = argc == 2 ? (uint8_t)atoi(argv[1]) : CHANGESET_VERSION;
	if (sodium_init() < 0)
		return 1;
	vector_keys(sign_pk, sign_sk, box_pk, box_sk);
	vector_device_id(sign_pk, h.device);
	if (vector_changes(ch) < 0 ||
	    changeset_encode(&h, ch, VECTOR_CHANGES, box_pk, sign_sk, &buf, &len, &err) < 0) {
		fprintf(stderr, "gen_changeset_vector: %s\n", err.msg);
		return 1;
	}
	for (size_t i = 0; i < len; i++)
		printf("%02x%s", buf[i], (i % 32 == 31 || i + 1 == len) ? "\n" : "");
	changeset_hash(buf, len, hash);
	fprintf(stderr, "hash ");
	for (int i = 0; i < 32; i++)
		fprintf(stderr, "%02x", hash[i]);
	fprintf(stderr, "\n");
	for (int i = 0; i < VECTOR_CHANGES; i++)
		cJSON_Delete(ch[i].value);
	free(buf);
	return 0;
}
