/* bench_codec.c - how a change set's payload is compressed, measured
 * against today's codec (zstd level 19 within a 128 KiB window, no
 * dictionary: sync/envelope.h) in the same run.
 *
 * For sets of 10, 100 and 1,000 synthetic visits (bench/synthvisit.h),
 * each variant prints the wire bytes per visit (compressed payload plus
 * the set's fixed bytes: header, binding, seal and signature) against
 * the raw JSON of the same visits, its compression and decompression
 * speed, and the memory its contexts hold (ZSTD_sizeof_*):
 *   - zstd levels 1, 3 and 19, in zstd's own window;
 *   - the same with a dictionary trained by ZDICT on other visits of the
 *     same generator (a fresh random draw, a year later);
 *   - level 3 and 19 with the rows grouped by record: change set
 *     version 4 (CHANGESET_VERSION_GROUPED), one row per record with an
 *     object of its fields, where version 3 has one row per field.
 * The dictionary is trained and tested on one generator, which flatters
 * it: real visits vary more than sixteen words.  Nothing is asserted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <zdict.h>
#include <zstd.h>

#include "bench/synthvisit.h"
#include "sync/changeset.h"
#include "sync/envelope.h"

/* What a set carries besides its compressed payload. */
#define SET_FIXED_BYTES                                                                            \
	(CHANGESET_HEADER_BYTES + CHANGESET_BINDING_BYTES + crypto_box_SEALBYTES +                 \
	 CHANGESET_SIG_BYTES)
#define VISITS 5000
#define TRAIN_SETS 2000 /* samples of TRAIN_BATCH visits each */
#define TRAIN_BATCH 10

struct corpus {
	char **text;
	size_t *len;
	size_t sets, visits, raw;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void corpus_free(struct corpus *c)
{
	for (size_t i = 0; c->text && i < c->sets; i++)
		free(c->text[i]);
	free(c->text);
	free(c->len);
	memset(c, 0, sizeof(*c));
}

/* visits in sets of batch, made from Unix ms on; payloads as the encoder
 * prints them, or grouped by record. */
static int corpus_make(struct corpus *c, size_t batch, size_t visits, uint64_t ms, int grouped)
{
	struct synthvisit *v = calloc(batch, sizeof(*v));
	struct change *ch = calloc(batch * SYNTHVISIT_FIELDS, sizeof(*ch));
	int r = -1;

	memset(c, 0, sizeof(*c));
	c->sets = visits / batch;
	c->visits = c->sets * batch;
	c->text = calloc(c->sets, sizeof(*c->text));
	c->len = calloc(c->sets, sizeof(*c->len));
	if (!v || !ch || !c->text || !c->len)
		goto out;
	for (size_t s = 0; s < c->sets; s++) {
		for (size_t i = 0; i < batch; i++) {
			synthvisit_make(&v[i], ms += 60000, (int)i);
			c->raw += synthvisit_raw_json_len(&v[i]);
			if (synthvisit_changes(&v[i], ch + i * SYNTHVISIT_FIELDS) < 0)
				goto out;
		}
		c->text[s] = changeset_payload_print(ch, batch * SYNTHVISIT_FIELDS,
						     grouped ? CHANGESET_VERSION_GROUPED
							     : CHANGESET_VERSION);
		for (size_t i = 0; i < batch * SYNTHVISIT_FIELDS; i++) {
			cJSON_Delete(ch[i].value);
			ch[i].value = NULL;
		}
		if (!c->text[s])
			goto out;
		c->len[s] = strlen(c->text[s]);
	}
	r = 0;
out:
	free(v);
	free(ch);
	if (r < 0) {
		fprintf(stderr, "bench_codec: out of memory\n");
		corpus_free(c);
	}
	return r;
}

/* A dictionary of up to cap bytes from TRAIN_SETS sets of other visits,
 * printed in the shape the payloads it serves have. */
static void *dict_train(size_t cap, int grouped, size_t *ret_len)
{
	struct corpus t;
	size_t total = 0, off = 0, len;
	char *samples = NULL;
	void *dict = malloc(cap);

	*ret_len = 0;
	if (!dict ||
	    corpus_make(&t, TRAIN_BATCH, TRAIN_SETS * TRAIN_BATCH, 1826000000000ULL, grouped) < 0) {
		free(dict);
		return NULL;
	}
	for (size_t i = 0; i < t.sets; i++)
		total += t.len[i];
	if (!(samples = malloc(total))) {
		len = (size_t)-1;
		goto out;
	}
	for (size_t i = 0; i < t.sets; off += t.len[i], i++)
		memcpy(samples + off, t.text[i], t.len[i]);
	len = ZDICT_trainFromBuffer(dict, cap, samples, t.len, (unsigned)t.sets);
	if (ZDICT_isError(len))
		fprintf(stderr, "bench_codec: train: %s\n", ZDICT_getErrorName(len));
out:
	free(samples);
	corpus_free(&t);
	if (len == (size_t)-1 || ZDICT_isError(len)) {
		free(dict);
		return NULL;
	}
	*ret_len = len;
	return dict;
}

struct result {
	double wire_per_visit, raw_per_visit, c_mbs, d_mbs;
	size_t c_mem, d_mem;
};

/* Compress and decompress every set of c with one context each, as a
 * device packs and HQ opens them in turn. */
static int measure(const struct corpus *c, int level, int window_log, const void *dict,
		   size_t dict_len, struct result *res)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	ZSTD_CDict *cd = NULL;
	ZSTD_DDict *dd = NULL;
	size_t cap = 0, in = 0, out = 0;
	uint8_t **z = calloc(c->sets, sizeof(*z));
	size_t *zlen = calloc(c->sets, sizeof(*zlen));
	char *back = NULL;
	double t0, tc, td;
	int r = -1;

	for (size_t i = 0; i < c->sets; i++)
		cap = c->len[i] > cap ? c->len[i] : cap;
	back = malloc(cap);
	if (!cc || !dc || !z || !zlen || !back)
		goto out;
	if (dict &&
	    (!(cd = ZSTD_createCDict(dict, dict_len, level)) ||
	     !(dd = ZSTD_createDDict(dict, dict_len)) || ZSTD_isError(ZSTD_CCtx_refCDict(cc, cd)) ||
	     ZSTD_isError(ZSTD_DCtx_refDDict(dc, dd))))
		goto out;
	if (!dict && ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level)))
		goto out;
	if (window_log && ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, window_log)))
		goto out;
	t0 = now_s();
	for (size_t i = 0; i < c->sets; i++) {
		if (!(z[i] = malloc(ZSTD_compressBound(c->len[i]))))
			goto out;
		zlen[i] = ZSTD_compress2(cc, z[i], ZSTD_compressBound(c->len[i]), c->text[i],
					 c->len[i]);
		if (ZSTD_isError(zlen[i])) {
			fprintf(stderr, "bench_codec: %s\n", ZSTD_getErrorName(zlen[i]));
			goto out;
		}
		in += c->len[i];
		out += zlen[i];
	}
	tc = now_s() - t0;
	t0 = now_s();
	for (size_t i = 0; i < c->sets; i++) {
		size_t got = ZSTD_decompressDCtx(dc, back, cap, z[i], zlen[i]);

		if (ZSTD_isError(got) || got != c->len[i] || memcmp(back, c->text[i], got)) {
			fprintf(stderr, "bench_codec: set %zu did not come back\n", i);
			goto out;
		}
	}
	td = now_s() - t0;
	res->wire_per_visit = (double)(out + c->sets * SET_FIXED_BYTES) / (double)c->visits;
	res->raw_per_visit = (double)c->raw / (double)c->visits;
	res->c_mbs = (double)in / tc / 1e6;
	res->d_mbs = (double)in / td / 1e6;
	res->c_mem = ZSTD_sizeof_CCtx(cc) + ZSTD_sizeof_CDict(cd);
	res->d_mem = ZSTD_sizeof_DCtx(dc) + ZSTD_sizeof_DDict(dd);
	r = 0;
out:
	for (size_t i = 0; z && i < c->sets; i++)
		free(z[i]);
	free(z);
	free(zlen);
	free(back);
	ZSTD_freeCDict(cd);
	ZSTD_freeDDict(dd);
	ZSTD_freeCCtx(cc);
	ZSTD_freeDCtx(dc);
	if (r < 0)
		fprintf(stderr, "bench_codec: level %d%s failed\n", level,
			dict ? " with a dictionary" : "");
	return r;
}

struct variant {
	const char *name;
	int level, grouped;
	size_t dict_cap; /* 0: none */
	int window_log;	 /* 0: zstd's own */
};

static const struct variant variants[] = {
	{ "zstd 19, 128 KiB window (today)", ENVELOPE_ZSTD_LEVEL, 0, 0, ENVELOPE_ZSTD_WINDOW_LOG },
	{ "zstd 19", 19, 0, 0, 0 },
	{ "zstd 3", 3, 0, 0, 0 },
	{ "zstd 1", 1, 0, 0, 0 },
	{ "zstd 19 + 16 KiB dictionary", 19, 0, 16 * 1024, 0 },
	{ "zstd 3 + 16 KiB dictionary", 3, 0, 16 * 1024, 0 },
	{ "zstd 19 + 64 KiB dictionary", 19, 0, 64 * 1024, 0 },
	{ "zstd 3 + 64 KiB dictionary", 3, 0, 64 * 1024, 0 },
	{ "zstd 1 + 64 KiB dictionary", 1, 0, 64 * 1024, 0 },
	{ "zstd 19, rows by record", 19, 1, 0, 0 },
	{ "zstd 3, rows by record", 3, 1, 0, 0 },
	{ "zstd 19 + 64 KiB dictionary, rows by record", 19, 1, 64 * 1024, 0 },
	{ "zstd 3 + 64 KiB dictionary, rows by record", 3, 1, 64 * 1024, 0 },
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

int main(int argc, char **argv)
{
	static const size_t batches[] = { 10, 100, 1000 };
	void *dict[2][2] = { { NULL } }; /* [grouped][16 KiB, 64 KiB] */
	size_t dict_len[2][2] = { { 0 } };
	int r = 1;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr,
			"usage: bench_codec\n"
			"  a change set's payload by zstd level, dictionary and row shape,\n"
			"  against today's level 19 in the same run\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	if (sodium_init() < 0)
		return 1;
	for (int k = 0; k < 2; k++)
		if (!(dict[0][k] = dict_train(k ? 64 * 1024 : 16 * 1024, 0, &dict_len[0][k])))
			goto out;
	printf("bench_codec: %d synthetic visits per batch size; dictionaries of %zu and %zu "
	       "bytes trained on %d other sets of %d\n",
	       VISITS, dict_len[0][0], dict_len[0][1], TRAIN_SETS, TRAIN_BATCH);
	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		struct corpus c[2] = { { 0 } };
		struct result base = { 0 };

		if (corpus_make(&c[0], batches[b], VISITS, 1795000000000ULL, 0) < 0 ||
		    corpus_make(&c[1], batches[b], VISITS, 1795000000000ULL, 1) < 0) {
			corpus_free(&c[0]);
			goto out;
		}
		printf("sets of %zu visits: %-44s %9s %9s %10s %10s %9s %9s\n", batches[b],
		       "variant", "B/visit", "vs JSON", "pack MB/s", "open MB/s", "pack mem",
		       "open mem");
		for (size_t v = 0; v < NVARIANTS; v++) {
			const struct variant *x = &variants[v];
			int k = x->dict_cap == 64 * 1024;
			struct result res;

			/* A grouped payload needs a dictionary of its own shape. */
			if (x->dict_cap && !dict[x->grouped][k] &&
			    !(dict[x->grouped][k] = dict_train(x->dict_cap, x->grouped,
							       &dict_len[x->grouped][k])))
				goto out_batch;
			if (measure(&c[x->grouped], x->level, x->window_log,
				    x->dict_cap ? dict[x->grouped][k] : NULL,
				    x->dict_cap ? dict_len[x->grouped][k] : 0, &res) < 0)
				goto out_batch;
			if (v == 0)
				base = res;
			printf("sets of %zu visits: %-44s %9.1f %9.3f %10.1f %10.1f %8zuK %8zuK\n",
			       batches[b], x->name, res.wire_per_visit,
			       res.wire_per_visit / res.raw_per_visit, res.c_mbs, res.d_mbs,
			       res.c_mem / 1024, res.d_mem / 1024);
			if (batches[b] == 100 && v > 0)
				printf("row\tchange set codec, sets of 100: %s\t%.1f B/visit (%.3f "
				       "of JSON), packs %.1f MB/s\tzstd 19: %.1f B (%.3f), %.1f "
				       "MB/s\t%.2f\n",
				       x->name, res.wire_per_visit,
				       res.wire_per_visit / res.raw_per_visit, res.c_mbs,
				       base.wire_per_visit,
				       base.wire_per_visit / base.raw_per_visit, base.c_mbs,
				       res.wire_per_visit / base.wire_per_visit);
		}
		corpus_free(&c[0]);
		corpus_free(&c[1]);
		continue;
	out_batch:
		corpus_free(&c[0]);
		corpus_free(&c[1]);
		goto out;
	}
	r = 0;
out:
	for (int g = 0; g < 2; g++)
		for (int k = 0; k < 2; k++)
			free(dict[g][k]);
	return r;
}
