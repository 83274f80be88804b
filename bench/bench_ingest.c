/* bench_ingest.c - bytes on the wire per visit, against the baselines
 * measured in the same run: the raw JSON of the same visits, and one
 * OpenRosa-style XML submission per visit (what ODK, KoboToolbox and
 * CommCare send).  Change sets are built by the real encoder
 * (sync/changeset.c: canonical JSON, zstd, sealed box, signature).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/secmem.h"
#include "sync/changeset.h"

#define FIELDS 6

static const char *const visit_types[] = {"needs_assessment", "housing_construction",
					  "prefab_installation", "sme_grant_followup",
					  "vocational_training", "legal_assistance"};
static const char *const words[] = {"kuća", "krov", "prozor", "dokumenta", "pomoć", "porodica",
				    "deca", "zima", "ogrev", "voda", "struja", "opština",
				    "кућа", "помоћ", "документи", "породица"};

struct visit {
	char id[UUID_TEXT_LEN + 1];
	char beneficiary[UUID_TEXT_LEN + 1];
	char date[16], next[16], gps[32], notes[256];
	const char *type;
	hlc_t hlc;
};

static void make_visit(struct visit *v, uint64_t ms, int i)
{
	size_t n = 0;

	uuid_v7_new(ms, v->id);
	uuid_v7_new(ms - 86400000ULL * 30, v->beneficiary);
	snprintf(v->date, sizeof(v->date), "2026-11-%02d", 1 + i % 28);
	snprintf(v->next, sizeof(v->next), "2026-12-%02d", 1 + i % 28);
	snprintf(v->gps, sizeof(v->gps), "44.%04u,19.%04u", randombytes_uniform(10000),
		 randombytes_uniform(10000));
	v->type = visit_types[i % 6];
	for (int w = 0; w < 10; w++)
		n += (size_t)snprintf(v->notes + n, sizeof(v->notes) - n, "%s%s", w ? " " : "",
				      words[randombytes_uniform(16)]);
	v->hlc = (hlc_t)ms << 16;
}

static size_t raw_json_len(const struct visit *v)
{
	char buf[1024];

	return (size_t)snprintf(buf, sizeof(buf),
				"{\"id\":\"%s\",\"collection\":\"visits\",\"fields\":{"
				"\"beneficiary_id\":\"%s\",\"visit_date\":\"%s\",\"visit_type\":\"%s\","
				"\"notes\":\"%s\",\"gps\":\"%s\",\"next_visit\":\"%s\"}}",
				v->id, v->beneficiary, v->date, v->type, v->notes, v->gps, v->next);
}

/* One OpenRosa instance document, as a form submission carries it (the
 * multipart envelope around it is not counted, in its favour). */
static size_t openrosa_len(const struct visit *v)
{
	char buf[2048];

	return (size_t)snprintf(
		buf, sizeof(buf),
		"<?xml version='1.0' ?><data id=\"visits\" version=\"2026112401\" "
		"xmlns:jr=\"http://openrosa.org/javarosa\" "
		"xmlns:orx=\"http://openrosa.org/xforms\"><beneficiary_id>%s</beneficiary_id>"
		"<visit_date>%s</visit_date><visit_type>%s</visit_type><notes>%s</notes>"
		"<gps>%s 0 0</gps><next_visit>%s</next_visit><meta><instanceID>uuid:%s"
		"</instanceID></meta></data>",
		v->beneficiary, v->date, v->type, v->notes, v->gps, v->next, v->id);
}

static int fill_changes(const struct visit *v, struct change *c)
{
	const char *names[FIELDS] = {"beneficiary_id", "visit_date", "visit_type",
				     "notes", "gps", "next_visit"};
	const char *vals[FIELDS] = {v->beneficiary, v->date, v->type, v->notes, v->gps, v->next};

	for (int f = 0; f < FIELDS; f++) {
		strcpy(c[f].record_id, v->id);
		strcpy(c[f].collection, "visits");
		strcpy(c[f].field, names[f]);
		c[f].value = cJSON_CreateString(vals[f]);
		c[f].hlc = v->hlc;
		if (!c[f].value)
			return -1;
	}
	return 0;
}

static int measure(size_t batch, size_t nsets, const uint8_t *box_pk, const uint8_t *sign_sk)
{
	struct changeset_header h = {.seq = 1};
	size_t wire = 0, raw = 0, xml = 0, visits = batch * nsets;
	struct change *c = calloc(batch * FIELDS, sizeof(*c));
	struct visit v;
	uint64_t ms = 1795000000000ULL;
	int r = -1;

	if (!c)
		return -1;
	for (size_t s = 0; s < nsets; s++, h.seq++) {
		struct fs_error err = {0};
		uint8_t *buf = NULL;
		size_t len;

		for (size_t i = 0; i < batch; i++) {
			make_visit(&v, ms += 60000, (int)i);
			raw += raw_json_len(&v);
			xml += openrosa_len(&v);
			if (fill_changes(&v, c + i * FIELDS) < 0)
				goto out;
		}
		if (changeset_encode(&h, c, batch * FIELDS, box_pk, sign_sk, &buf, &len, &err) < 0) {
			fprintf(stderr, "bench_ingest: %s\n", err.msg);
			goto out;
		}
		changeset_hash(buf, len, h.prev);
		wire += len;
		free(buf);
		for (size_t i = 0; i < batch * FIELDS; i++) {
			cJSON_Delete(c[i].value);
			c[i].value = NULL;
		}
	}
	printf("wire bytes per visit, batch %zu: change set %.1f B, raw JSON %.1f B, ratio %.3f; "
	       "OpenRosa XML %.1f B, ratio %.3f\n",
	       batch, (double)wire / visits, (double)raw / visits, (double)wire / raw,
	       (double)xml / visits, (double)wire / xml);
	r = 0;
out:
	for (size_t i = 0; i < batch * FIELDS; i++)
		cJSON_Delete(c[i].value);
	free(c);
	return r;
}

int main(void)
{
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], sign_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES], box_sk[crypto_box_SECRETKEYBYTES];
	static const size_t batches[] = {1, 10, 100, 1000};

	if (secmem_init() < 0)
		return 1;
	crypto_sign_keypair(sign_pk, sign_sk);
	crypto_box_keypair(box_pk, box_sk);
	printf("bench_ingest: synthetic visits, 6 fields each, notes of 10 words; "
	       "target: ratio <= 0.25 against raw JSON for batches of 100 or more\n");
	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++)
		if (measure(batches[i], batches[i] >= 100 ? 5 : 50, box_pk, sign_sk) < 0)
			return 1;
	sodium_memzero(sign_sk, sizeof(sign_sk));
	sodium_memzero(box_sk, sizeof(box_sk));
	return 0;
}
